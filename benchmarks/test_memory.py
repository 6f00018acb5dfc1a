"""Group "memory": peak RSS of one ``place()`` call beyond its inputs, bytes per request.

Each benchmark runs ``memory.py``'s measurement once in a fresh child process (see that module
for the method: ``VmHWM`` reset through ``/proc/self/clear_refs`` just before the call) on
``min(1,000,000, NUMASCHED_BENCH_MAX)`` requests of the mixed workload on requests / 10 demo
hosts, ``numa="restricted"``. DESIGN.md's target at 1,000,000 requests / 100,000 hosts is 200
bytes per request; the figure and the verdict land in ``extra_info`` and in the summary (the
benchmark's time is the whole child process). With a scanning kernel, best-fit at 1M takes many
minutes: ``NUMASCHED_BENCH_MAX`` defaults to 100,000.
"""
from __future__ import annotations

import os

import pytest

import memory

N = min(1_000_000, int(os.environ.get("NUMASCHED_BENCH_MAX", "100000")))


@pytest.mark.benchmark(group="memory")
@pytest.mark.parametrize("policy", ["first-fit", "best-fit"])
def test_memory(benchmark, policy, figures):
    result = benchmark.pedantic(memory.measure, args=(N, N // 10, policy), rounds=1, iterations=1,
                                warmup_rounds=0)
    benchmark.extra_info.update(result)
    per = result["bytes_per_request"]
    verdict = "within" if per <= memory.TARGET_BYTES_PER_REQUEST else "OVER"
    figures(f"memory {policy:<9} {N:,} requests / {N // 10:,} hosts ({result['backend']}): peak "
            f"{per:.0f} bytes/request beyond the inputs ({verdict} the "
            f"{memory.TARGET_BYTES_PER_REQUEST} target; outputs alone "
            f"{result['output_bytes_per_request']:.0f}); {result['method']}")
