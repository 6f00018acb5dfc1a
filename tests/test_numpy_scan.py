"""The NumPy full scan of ``benchmarks/peers/numpy_scan.py`` gives numasched's placement.

The benchmarks quote numasched's speed as a ratio to this scan, which is only honest if both
compute the same thing: on seeded random instances of every supported case (uniform and
heterogeneous 2-node hosts, a partly used free state, unschedulable hosts, requests too large for
some or all hosts, per-request modes) the scan must give the same hosts, node shares and free
state as ``place(..., backend="cython")`` (the reference backend when the extension is not built).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import numasched
from numasched import Cluster, Requests, codes, place

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from peers.numpy_scan import place_scan  # noqa: E402

BACKEND = "cython" if "cython" in numasched.available_backends() else "reference"
GiB = 2**30
FIELDS = ("host", "cpu_by_node", "mem_by_node", "free_cpu", "free_mem")


def random_instance(seed: int, uniform: bool):
    rng = np.random.default_rng(seed)
    n_hosts = int(rng.integers(1, 25))
    if uniform:
        node_cpu = np.full((n_hosts, 2), int(rng.integers(2, 9)) * 4000, dtype=np.int64)
        node_mem = np.full((n_hosts, 2), int(rng.integers(2, 9)) * 8 * GiB, dtype=np.int64)
    else:
        node_cpu = rng.integers(1, 9, size=(n_hosts, 2)).astype(np.int64) * 4000
        node_mem = rng.integers(1, 9, size=(n_hosts, 2)).astype(np.int64) * 8 * GiB
    used = rng.random((n_hosts, 2)) < 0.4
    free_cpu = np.where(used, node_cpu * rng.integers(0, 4, size=(n_hosts, 2)) // 4, node_cpu)
    free_mem = np.where(used, node_mem * rng.integers(0, 4, size=(n_hosts, 2)) // 4, node_mem)
    schedulable = rng.random(n_hosts) > 0.15
    cluster = Cluster(node_cpu, node_mem, schedulable=schedulable, free_cpu=free_cpu,
                      free_mem=free_mem)
    n = int(rng.integers(0, 70))
    # Sizes from tiny to wider than any node (restricted splits them) and a few too large to fit.
    cpu = rng.integers(1, 80, size=n) * 500 + rng.integers(0, 3, size=n)
    mem = rng.integers(1, 160, size=n) * GiB // 2 + rng.integers(0, 3, size=n)
    numa = rng.choice(np.array([None, "single-numa-node", "restricted"], dtype=object), size=n)
    priority = rng.integers(0, 3, size=n)
    return cluster, Requests(cpu, mem, numa=list(numa), priority=priority)


@pytest.mark.parametrize("uniform", [True, False], ids=["uniform", "heterogeneous"])
@pytest.mark.parametrize("policy", list(codes.HOST_POLICIES))
@pytest.mark.parametrize("seed", range(6))
def test_scan_matches_numasched(seed, policy, uniform):
    cluster, requests = random_instance(seed, uniform)
    for numa, order, node in (("restricted", "decreasing", "pack"),
                              ("single-numa-node", "decreasing", "pack"),
                              ("restricted", "given", "spread"),
                              ("single-numa-node", "fill", "pack")):
        settings = {"policy": policy, "numa": numa, "order": order, "node": node}
        expected = place(cluster, requests, backend=BACKEND, **settings)
        got = place_scan(cluster, requests, **settings)
        for field in FIELDS:
            np.testing.assert_array_equal(got[field], getattr(expected, field),
                                          err_msg=f"{field} differs for {settings}")


def test_scan_matches_on_the_benchmark_mix():
    """The Azure VM mix + containers on demo hosts, the instance the benchmarks time."""
    from numasched.evaluation import workloads

    cluster, requests = workloads.demo_cluster(40), workloads.mixed(300, 300, seed=3)
    for policy in codes.HOST_POLICIES:
        expected = place(cluster, requests, policy=policy, numa="restricted", backend=BACKEND)
        got = place_scan(cluster, requests, policy=policy, numa="restricted")
        for field in FIELDS:
            np.testing.assert_array_equal(got[field], getattr(expected, field), err_msg=policy)


@pytest.mark.parametrize("case, match", [
    ("three-nodes", "exactly 2 NUMA nodes"),
    ("absent-node", "CPU > 0 and memory > 0"),
    ("required-host", "required_host"),
    ("mode-none", "single-numa-node and restricted only"),
    ("preset", "host-score policy"),
])
def test_scan_refuses_what_it_does_not_support(case, match):
    cluster = Cluster.uniform(3, 2, 8000, 16 * GiB)
    requests = Requests([1000, 2000], [GiB, GiB])
    kwargs = {}
    if case == "three-nodes":
        cluster = Cluster.uniform(3, 3, 8000, 16 * GiB)
    elif case == "absent-node":
        cluster = Cluster([[8000, 0]], [[16 * GiB, 0]])
    elif case == "required-host":
        requests = Requests([1000, 2000], [GiB, GiB], required_host=[0, -1])
    elif case == "mode-none":
        kwargs["numa"] = "none"
    else:
        kwargs["policy"] = "esxi"
    with pytest.raises(ValueError, match=match):
        place_scan(cluster, requests, **kwargs)
