"""numasched against its peers, like with like, in one run.

- **full-scan-2k**: 2,000 requests (1,000 Azure-mix VMs + 1,000 containers) on 200 demo hosts,
  best-fit + restricted, on the Cython and Numba backends, the NumPy full scan
  (``peers/numpy_scan.py``: every host scored per request, vectorised over hosts) and the
  pure-Python reference. All four must give the same hosts. The reference benchmark (last) records
  each one's placements/s and its ratio to the scan and to the reference.
- **binpacking-1d-N**: the CPU dimension alone (one-dimensional: the ``binpacking`` package packs
  one size per item), N requests of the mix into bins of 64 cores. ``binpacking.to_constant_volume``
  sorts by decreasing size and puts each item into the least-loaded open bin where it fits, opening
  bins on demand (pure Python, O(items x bins)). numasched gets the same items on 1-NUMA-node hosts
  of 64 cores with 1 byte of memory per request (memory never binds), ``numa="none"``, decreasing
  order, first-fit and best-fit, on a pool of 2 x ceil(total / 64 cores) + 1 hosts (enough for any
  greedy that opens a host only when nothing fits). Bins used are in ``extra_info``.
- **cpsat-CASE**: exact bin packing with OR-Tools CP-SAT on at most 200 items, hosts of one node
  (``numa="none"``: hosts are bins). Cases: N = 25, 50, 100, 200 requests of the mix in two
  dimensions (CPU and memory) on hosts of 32 cores x 128 GiB, then public instances with a
  published optimum: Falkenauer_u120_00 (one-dimensional, 120 items, optimum 48) and CT01
  CL_1_200_1 and CL_9_200_1 (two-dimensional, 200 items, optimum 50), skipped without the data
  sets. numasched best-fit decreasing gives a host count in microseconds to milliseconds; CP-SAT
  (``peers/cpsat.py``, ``NUMASCHED_BENCH_CPSAT_WORKERS`` workers, default 1 like numasched's one
  core, time limit ``NUMASCHED_BENCH_CPSAT_SECONDS`` of wall time, default 30) records when it first
  reaches that host count, the best count it finds and the lower bound it proves, on the clock of
  ``--benchmark-timer``.

``binpacking`` and ``ortools`` are optional (``pip install -e ".[bench]"``): a group whose peer is
missing skips with a message. ``NUMASCHED_BENCH_MAX`` (default 100000) caps N of binpacking-1d.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
from pytest_benchmark.utils import load_timer

import numasched
from numasched import Cluster, Requests, place
from numasched.evaluation import datasets, workloads

from _instances import mixed_instance
from peers.numpy_scan import place_scan

BENCH_MAX = int(os.environ.get("NUMASCHED_BENCH_MAX", "100000"))
GIB, MIB = 2**30, 2**20


# --------------------------------------------------------------------------------------------
# full-scan-2k
# --------------------------------------------------------------------------------------------
FULL_N, FULL_HOSTS = 2_000, 200
FULL_SETTINGS = {"policy": "best-fit", "numa": "restricted"}
_full: dict[str, tuple[float, np.ndarray]] = {}


@pytest.fixture(scope="module")
def full_instance():
    cluster, requests = mixed_instance(FULL_N, FULL_HOSTS)
    place(cluster, Requests(requests.cpu[:4], requests.mem[:4]), backend="numba")  # JIT, untimed
    return cluster, requests


@pytest.mark.benchmark(group="full-scan-2k")
@pytest.mark.parametrize("contender", ["cython", "numba", "numpy-scan", "reference"])
def test_full_scan_2k(benchmark, full_instance, contender, figures):
    if contender == "cython" and "cython" not in numasched.available_backends():
        pytest.skip("the Cython backend (numasched._core) is not built")
    cluster, requests = full_instance
    if contender == "numpy-scan":
        hosts = benchmark(place_scan, cluster, requests, **FULL_SETTINGS)["host"]
    elif contender == "reference":
        hosts = benchmark.pedantic(place, args=(cluster, requests),
                                   kwargs={"backend": "reference", **FULL_SETTINGS},
                                   rounds=2, iterations=1, warmup_rounds=0).host
    else:
        hosts = benchmark(place, cluster, requests, backend=contender, **FULL_SETTINGS).host
    median = benchmark.stats.stats.median
    _full[contender] = (median, hosts)
    benchmark.extra_info.update({"contender": contender, "requests": FULL_N, "hosts": FULL_HOSTS,
                                 **FULL_SETTINGS, "placements_per_s": FULL_N / median})
    for other, (_, other_hosts) in _full.items():  # same instance, same answer
        assert np.array_equal(hosts, other_hosts), f"{contender} and {other} placed differently"
    if contender == "reference":
        scan = _full.get("numpy-scan", (None,))[0]
        for name, (seconds, _) in _full.items():
            ratios = f"{median / seconds:8,.0f}x reference"
            if scan:
                ratios += f", {scan / seconds:6.2f}x NumPy scan"
            benchmark.extra_info[f"{name}_placements_per_s"] = FULL_N / seconds
            figures(f"full-scan-2k {name:<10} {seconds * 1e3:10.2f} ms -> {FULL_N / seconds:>11,.0f} "
                    f"placements/s = {ratios} (same hosts)")


# --------------------------------------------------------------------------------------------
# binpacking-1d
# --------------------------------------------------------------------------------------------
BIN_CPU = 64_000
ONE_D_SIZES = [n for n in (1_000, 10_000, 100_000) if n <= BENCH_MAX]
_one_d: dict[tuple[int, str], tuple[float, int]] = {}


def one_d_instance(n: int):
    """The CPU sizes of n requests of the mix; numasched's view: 1-node hosts, memory never binds."""
    cpu = workloads.mixed(n // 2, n - n // 2, seed=n).cpu
    lower = -(-int(cpu.sum()) // BIN_CPU)
    hosts = 2 * lower + 1
    cluster = Cluster(np.full((hosts, 1), BIN_CPU), np.full((hosts, 1), n))
    return cpu, lower, cluster, Requests(cpu, np.ones(n, dtype=np.int64))


def _rounds(n: int) -> int:
    return 3 if n <= 10_000 else 1


@pytest.mark.parametrize("n", ONE_D_SIZES)
@pytest.mark.parametrize("contender", ["binpacking", "numasched-first-fit", "numasched-best-fit"])
def test_binpacking_1d(benchmark, n, contender, figures):
    benchmark.group = f"binpacking-1d-{n}"
    cpu, lower, cluster, requests = one_d_instance(n)
    if contender == "binpacking":
        binpacking = pytest.importorskip(
            "binpacking", reason='the binpacking peer is not installed: pip install -e ".[bench]"')
        items = cpu.tolist()
        bins = benchmark.pedantic(binpacking.to_constant_volume, args=(items, BIN_CPU),
                                  rounds=_rounds(n), iterations=1, warmup_rounds=0)
        used = len(bins)
        assert sorted(x for b in bins for x in b) == sorted(items)
        assert max(sum(b) for b in bins) <= BIN_CPU
    else:
        backend = "cython" if "cython" in numasched.available_backends() else "numba"
        policy = contender.removeprefix("numasched-")
        placement = benchmark.pedantic(place, args=(cluster, requests),
                                       kwargs={"policy": policy, "numa": "none", "backend": backend},
                                       rounds=_rounds(n), iterations=1, warmup_rounds=1)
        assert placement.placed.all()
        used = int(np.unique(placement.host).size)
    median = benchmark.stats.stats.median
    _one_d[(n, contender)] = (median, used)
    benchmark.extra_info.update({"items": n, "bins_used": used, "lower_bound": lower,
                                 "one_dimensional": True, "items_per_s": n / median})
    line = (f"binpacking-1d-{n:<7} {contender:<20} {median * 1e3:10.2f} ms, {used:,} bins "
            f"(lower bound {lower:,}; CPU only, one-dimensional)")
    if contender != "binpacking" and (n, "binpacking") in _one_d:
        bp_seconds, bp_used = _one_d[(n, "binpacking")]
        line += f"; {bp_seconds / median:,.1f}x binpacking's speed, {used - bp_used:+d} bins"
        benchmark.extra_info.update({"speed_over_binpacking": bp_seconds / median,
                                     "bins_minus_binpacking": used - bp_used})
    figures(line)


# --------------------------------------------------------------------------------------------
# cpsat
# --------------------------------------------------------------------------------------------
#: Instances of the mix (CPU and memory, hosts of one node, 32 cores x 128 GiB), then public
#: instances with a published optimum from the data sets of ``numasched.evaluation.datasets`` (skipped when
#: ``../shared/data`` / ``$NUMASCHED_DATA`` is absent).
CPSAT_CASES = ("mix-25", "mix-50", "mix-100", "mix-200",
               "falkenauer_u:Falkenauer_u120_00", "ct01:CL_1_200_1", "ct01:CL_9_200_1")
CPSAT_HOST = (32_000, 128 * GIB)
CPSAT_SECONDS = float(os.environ.get("NUMASCHED_BENCH_CPSAT_SECONDS", "30"))
CPSAT_WORKERS = int(os.environ.get("NUMASCHED_BENCH_CPSAT_WORKERS", "1"))
_cpsat_numasched: dict[str, float] = {}


def cpsat_instance(case: str):
    """(cluster, requests, bin capacity (cpu, mem) in model units, mem unit, published optimum)."""
    if case.startswith("mix-"):
        n = int(case.removeprefix("mix-"))
        requests = workloads.mixed(n // 2, n - n // 2, seed=n)
        assert not (requests.mem % MIB).any()  # whole MiB: the model works in MiB
        cluster = Cluster.uniform(n, 1, *CPSAT_HOST)  # one host per item is always enough
        return cluster, requests, (CPSAT_HOST[0], CPSAT_HOST[1] // MIB), MIB, None
    set_name, stem = case.split(":")
    data = datasets.default_data_dir()
    if data is None:
        pytest.skip("the benchmark sets are not here (set NUMASCHED_DATA or ../shared/data)")
    path = next((f for f in datasets.set_files(set_name, data) if f.stem == stem), None)
    if path is None:
        pytest.skip(f"{stem} is not in {data}")
    cluster, requests = datasets.as_placement_problem(datasets.load(path))
    caps = (int(cluster.node_cpu[0, 0]), int(cluster.node_mem[0, 0]))
    return cluster, requests, caps, 1, datasets.set_optima(set_name, data).get(stem)


@pytest.mark.parametrize("case", CPSAT_CASES)
@pytest.mark.parametrize("contender", ["numasched", "cp-sat"])
def test_cpsat(benchmark, case, contender, figures, pytestconfig):
    benchmark.group = f"cpsat-{case}"
    cluster, requests, caps, mem_unit, optimum = cpsat_instance(case)
    n = len(requests)
    settings = {"policy": "best-fit", "numa": "none"}
    if contender == "numasched":
        placement = benchmark(place, cluster, requests, **settings)
        assert placement.placed.all()
        benchmark.extra_info.update({"items": n, "hosts_used": placement.summary()["hosts_used"],
                                     "published_optimum": optimum})
        _cpsat_numasched[case] = benchmark.stats.stats.median
        return
    pytest.importorskip("ortools.sat.python.cp_model",
                        reason='the OR-Tools peer is not installed: pip install -e ".[bench]"')
    from peers.cpsat import solve

    target = place(cluster, requests, **settings).summary()["hosts_used"]
    clock = load_timer(pytestconfig.getoption("benchmark_timer")).target
    result = benchmark.pedantic(solve, args=(requests.cpu, requests.mem // mem_unit, *caps),
                                kwargs={"time_limit": CPSAT_SECONDS, "workers": CPSAT_WORKERS,
                                        "clock": clock},
                                rounds=1, iterations=1, warmup_rounds=0)
    reach = result.seconds_to_reach(target)
    benchmark.extra_info.update({
        "items": n, "numasched_hosts": target, "numasched_seconds": _cpsat_numasched.get(case),
        "published_optimum": optimum, "cpsat_status": result.status, "cpsat_bins": result.bins,
        "cpsat_bound": result.bound, "cpsat_seconds_to_numasched_hosts": reach,
        "cpsat_seconds": result.seconds, "cpsat_workers": CPSAT_WORKERS,
        "time_limit_s": CPSAT_SECONDS,
    })
    reach_text = (f"at {reach:.2f} s" if reach is not None
                  else f"not before its time limit ({CPSAT_SECONDS:g} s of wall time)")
    numasched_ms = (f" in {_cpsat_numasched[case] * 1e3:.2f} ms" if case in _cpsat_numasched else "")
    known = f" (published optimum {optimum})" if optimum is not None else ""
    figures(f"cpsat-{case}: {n} items{known}; numasched {target} hosts{numasched_ms}; CP-SAT "
            f"reached {target} {reach_text}, ended {result.status} with {result.bins} bins, "
            f"bound {result.bound}, after {result.seconds:.2f} s ({CPSAT_WORKERS} worker)")
