"""Group "scaling": placements/s at 1k, 10k, 100k and 1M requests, hosts = requests / 10.

The mixed workload of the other benchmarks (half Azure-mix VMs, half containers) on demo hosts
(2 NUMA nodes x 32 cores x 256 GiB), ``numa="restricted"``, best-fit and first-fit, on:

- ``cython`` and ``numba`` (numasched's kernels; Numba compiled by an untimed tiny call first);
- ``numpy-scan``, the exact NumPy full scan of ``peers/numpy_scan.py``, up to
  ``NUMASCHED_BENCH_SCAN_MAX`` requests (default 100,000: it does O(hosts) work per request).

A full scan costs O(hosts) per placement, so with hosts = requests / 10 its placements/s falls
about 10x per decade; an index over hosts keeps it nearly flat. Sizes above
``NUMASCHED_BENCH_MAX`` (default 100,000) are skipped, so a quick run stops at 100k; the 1M point
(1,000,000 requests on 100,000 hosts) needs ``NUMASCHED_BENCH_MAX=1000000`` and, with a scanning
kernel, many minutes for best-fit. ``NUMASCHED_BENCH_BACKENDS`` (default ``cython,numba,numpy-scan``)
picks the contenders. Sizes >= 100k run one pedantic round, smaller ones 3. On a shared machine
``--benchmark-timer=time.process_time`` (CPU time of this process; every kernel here runs on one
thread) is much steadier than wall time; each row records its timer.

To put an older kernel on the same plot, run this file from that checkout (with these benchmark
files) with ``NUMASCHED_BENCH_KERNEL=<name>`` and ``NUMASCHED_BENCH_OUT=<this checkout>/benchmarks/out``.

At the end of the module the rows measured are merged into ``benchmarks/out/scaling.json``
(git-ignored; ``NUMASCHED_BENCH_OUT`` names another folder) and the CSV and the log-log plot are
written beside it (``scaling_plot.py``; ``python benchmarks/scaling_plot.py --json FILE`` redraws
from a JSON).
"""
from __future__ import annotations

import os
import subprocess
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

import numasched
from numasched import Requests, place

import scaling_plot
from _instances import mixed_instance
from peers.numpy_scan import place_scan

SIZES = (1_000, 10_000, 100_000, 1_000_000)
BENCH_MAX = int(os.environ.get("NUMASCHED_BENCH_MAX", "100000"))
SCAN_MAX = int(os.environ.get("NUMASCHED_BENCH_SCAN_MAX", "100000"))
BACKENDS = os.environ.get("NUMASCHED_BENCH_BACKENDS", "cython,numba,numpy-scan").split(",")
#: A name for the kernel measured, kept in every row (e.g. "pre-index" for an older checkout);
#: rows of different kernels are separate lines of the plot.
KERNEL = os.environ.get("NUMASCHED_BENCH_KERNEL", "")
POLICIES = ("best-fit", "first-fit")
NUMA = "restricted"
REPO = Path(__file__).resolve().parents[1]

_rows: list[dict] = []


def _commit() -> str:
    """HEAD of this checkout, or ``NUMASCHED_BENCH_COMMIT`` (for a copy that is not a git tree)."""
    if os.environ.get("NUMASCHED_BENCH_COMMIT"):
        return os.environ["NUMASCHED_BENCH_COMMIT"]
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, text=True,
                              capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


#: HEAD when this module was imported, i.e. when numasched's kernels were loaded: a commit landing
#: during a long run must not relabel the kernel that was measured.
COMMIT = _commit()


@pytest.fixture(scope="module", autouse=True)
def write_results(figures):
    yield
    if _rows:
        rows = scaling_plot.merge(_rows)
        figures(f"scaling: wrote {scaling_plot.JSON_PATH}")
        for path in scaling_plot.write_all(rows):
            figures(f"scaling: wrote {path}")


def _timer_name(config) -> str:
    """pytest-benchmark's timer (``--benchmark-timer``): wall time unless asked otherwise."""
    timer = config.getoption("benchmark_timer", None)
    return getattr(timer, "__name__", None) or str(timer or "perf_counter").rsplit(".", 1)[-1]


_instances: dict[int, tuple] = {}


def instance(n: int):
    """Built once per size (the 1M instance takes seconds to draw)."""
    if n not in _instances:
        _instances.clear()
        _instances[n] = mixed_instance(n, n // 10)
    return _instances[n]


@pytest.mark.benchmark(group="scaling")
@pytest.mark.parametrize("n", SIZES, ids=lambda n: f"{n // 1000}k")
@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_scaling(benchmark, backend, policy, n, figures, pytestconfig):
    if n > BENCH_MAX:
        pytest.skip(f"{n:,} requests is above NUMASCHED_BENCH_MAX={BENCH_MAX:,}")
    if backend == "numpy-scan" and n > SCAN_MAX:
        pytest.skip(f"the NumPy scan stops at NUMASCHED_BENCH_SCAN_MAX={SCAN_MAX:,} requests")
    if backend == "cython" and "cython" not in numasched.available_backends():
        pytest.skip("the Cython backend (numasched._core) is not built")
    benchmark.group = f"scaling-{policy}"
    cluster, requests = instance(n)
    settings = {"policy": policy, "numa": NUMA}
    if backend == "numpy-scan":
        fn, kwargs = place_scan, settings
    else:
        if backend == "numba":
            place(cluster, Requests(requests.cpu[:4], requests.mem[:4]), backend="numba")  # JIT
        fn, kwargs = place, {"backend": backend, **settings}
    rounds = 1 if n >= 100_000 else 3
    result = benchmark.pedantic(fn, args=(cluster, requests), kwargs=kwargs, rounds=rounds,
                                iterations=1, warmup_rounds=0)
    hosts = result["host"] if backend == "numpy-scan" else result.host
    median = benchmark.stats.stats.median
    row = {"backend": backend, "kernel": KERNEL if backend != "numpy-scan" else "",
           "policy": policy, "numa": NUMA, "requests": n, "hosts": n // 10,
           "seconds": median, "rounds": rounds, "placements_per_s": n / median,
           "timer": _timer_name(pytestconfig),
           "hosts_used": int(np.unique(hosts[hosts >= 0]).size),
           "commit": COMMIT, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    _rows.append(row)
    benchmark.extra_info.update(row)
    figures(f"scaling {backend:<10} {policy:<9} {n:>9,} requests / {n // 10:>7,} hosts: "
            f"{median:9.3f} s -> {n / median:>12,.0f} placements/s")
