"""Group "kernel-vs-reference": the Cython kernel and the pure-Python reference on one instance.

2,000 requests (1,000 Azure-mix VMs + 1,000 containers) on 200 hosts, best-fit + restricted. The
reference takes seconds per call, so it runs a few pedantic rounds; its benchmark records the
speedup of the Cython kernel (``extra_info["speedup_cython_vs_reference"]``, medians).
"""
from __future__ import annotations

import statistics
import time

import numpy as np
import pytest

from numasched import place

from _instances import mixed_instance

N_REQUESTS, N_HOSTS = 2_000, 200
SETTINGS = {"policy": "best-fit", "numa": "restricted"}
REFERENCE_ROUNDS = 3

_medians: dict[str, float] = {}


@pytest.fixture(scope="module")
def instance():
    return mixed_instance(N_REQUESTS, N_HOSTS)


def _median_seconds(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _info(benchmark, placement, backend):
    s = placement.summary()
    benchmark.extra_info.update({"backend": backend, "requests": N_REQUESTS, "hosts": N_HOSTS,
                                 **SETTINGS, "placed": s["placed"], "hosts_used": s["hosts_used"]})


@pytest.mark.benchmark(group="kernel-vs-reference")
def test_cython(benchmark, cython_backend, instance):
    cluster, requests = instance
    placement = benchmark(place, cluster, requests, backend="cython", **SETTINGS)
    _info(benchmark, placement, "cython")
    _medians["cython"] = benchmark.stats.stats.median


@pytest.mark.benchmark(group="kernel-vs-reference")
def test_reference(benchmark, cython_backend, instance, figures):
    cluster, requests = instance
    placement = benchmark.pedantic(place, args=(cluster, requests),
                                   kwargs={"backend": "reference", **SETTINGS},
                                   rounds=REFERENCE_ROUNDS, iterations=1, warmup_rounds=0)
    _info(benchmark, placement, "reference")

    # Same instance, same answer: a benchmark of a wrong kernel would be meaningless.
    fast = place(cluster, requests, backend="cython", **SETTINGS)
    for field in ("host", "cpu_by_node", "mem_by_node", "nodes", "reason"):
        assert np.array_equal(getattr(fast, field), getattr(placement, field)), field

    cython_median = _medians.get("cython") or _median_seconds(
        lambda: place(cluster, requests, backend="cython", **SETTINGS), repeat=50)
    reference_median = benchmark.stats.stats.median
    speedup = reference_median / cython_median
    benchmark.extra_info.update({"cython_median_s": cython_median,
                                 "speedup_cython_vs_reference": speedup})
    figures(f"kernel-vs-reference ({N_REQUESTS:,} requests / {N_HOSTS} hosts, best-fit + "
            f"restricted): reference {reference_median * 1e3:,.0f} ms, cython "
            f"{cython_median * 1e3:,.2f} ms (medians) -> cython is {speedup:,.0f}x faster")
