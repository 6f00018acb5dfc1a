"""Every available backend gives bit-for-bit the placement of the reference specification."""
from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numasched
from numasched import codes
from numasched.kernels import reference as ref

from conftest import (
    BACKENDS,
    GiB,
    MODES,
    NODE_CHOICES,
    ORDERS,
    OTHER_BACKENDS,
    POLICIES,
    RESULT_FIELDS,
    assert_same_placement,
    build,
    check_invariants,
    check_summary,
    examples,
    instances,
    place_settings,
    random_instance,
)

REPO = Path(__file__).resolve().parents[1]
ALL_SETTINGS = [dict(zip(("policy", "numa", "order", "node"), combo))
                for combo in itertools.product(POLICIES, MODES, ORDERS, NODE_CHOICES)]


def parity(cluster, requests, **kw):
    """Place on every backend, check all agree with the reference; return the reference result."""
    expected = numasched.place(cluster, requests, backend="reference", **kw)
    assert expected.settings["backend"] == "reference"
    for backend in OTHER_BACKENDS:
        got = numasched.place(cluster, requests, backend=backend, **kw)
        assert got.settings["backend"] == backend
        assert_same_placement(got, expected, context=f"{backend} vs reference, {kw}: ")
    return expected


def test_reference_is_always_available():
    assert "reference" in BACKENDS
    assert BACKENDS[0] == numasched.place(
        numasched.Cluster.uniform(1, 1, 1000, GiB), numasched.Requests([1], [1])).settings["backend"]


@settings(max_examples=examples(300))
@given(inst=instances(), kw=place_settings)
def test_parity_random(inst, kw):
    cluster, requests = build(inst)
    expected = parity(cluster, requests, **kw)
    check_invariants(cluster, requests, expected)


@settings(max_examples=examples(80))
@given(inst=instances(max_hosts=4, max_nodes=8, max_requests=8), kw=place_settings)
def test_parity_wide_hosts(inst, kw):
    """K up to 8 on every example (many node sets per width)."""
    cluster, requests = build(inst)
    expected = parity(cluster, requests, **kw)
    check_invariants(cluster, requests, expected)


@pytest.mark.slow
@settings(max_examples=examples(40))
@given(inst=instances(max_hosts=10, max_nodes=4, max_requests=40), kw=place_settings)
def test_parity_larger_batches(inst, kw):
    """Longer batches, so hosts fill up and later requests meet fragmented nodes."""
    cluster, requests = build(inst)
    expected = parity(cluster, requests, **kw)
    check_invariants(cluster, requests, expected)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_parity_every_setting(seed):
    """All 80 combinations of policy, NUMA mode, order and node choice, on seeded instances."""
    rng = np.random.default_rng(seed)
    inst = random_instance(rng, hosts=5, nodes=[2, 3, 4][seed], n=14)
    cluster, requests = build(inst)
    outcomes = set()
    for kw in ALL_SETTINGS:
        expected = parity(cluster, requests, **kw)
        check_invariants(cluster, requests, expected)
        outcomes.add(expected.host.tobytes() + expected.nodes.tobytes())
    assert len(outcomes) > 1  # the settings do change the placement on these instances


@pytest.mark.parametrize("numa", MODES)
def test_parity_sequential_batches(numa):
    """Placing on cluster_after() of a previous placement also agrees across backends."""
    rng = np.random.default_rng(7)
    inst = random_instance(rng, hosts=4, nodes=2, n=10)
    cluster, requests = build(inst)
    for policy in ("best-fit", "worst-fit"):
        current = cluster
        for _ in range(3):
            p = parity(current, requests, policy=policy, numa=numa)
            check_invariants(current, requests, p)
            current = p.cluster_after()
            assert np.array_equal(current.free_cpu, p.free_cpu)
            assert np.array_equal(current.free_mem, p.free_mem)


# --------------------------------------------------------------------------------------------
# Adversarial instances, explicitly.
# --------------------------------------------------------------------------------------------
def _all_settings(cluster, requests, settings_list=ALL_SETTINGS):
    results = {}
    for kw in settings_list:
        p = parity(cluster, requests, **kw)
        check_invariants(cluster, requests, p)
        check_summary(p)
        results[tuple(kw.values())] = p
    return results


def test_all_hosts_identical():
    cluster = numasched.Cluster.uniform(5, 2, 16000, 64 * GiB)
    requests = numasched.Requests([4000, 8000, 12000, 16000, 20000, 2000, 6000] * 2,
                                  [8 * GiB, 16 * GiB, 4 * GiB, 64 * GiB, 32 * GiB, GiB, 40 * GiB] * 2)
    results = _all_settings(cluster, requests)
    # first-fit on identical empty hosts starts on host 0
    p = results[("first-fit", "restricted", "given", "pack")]
    assert p.host[0] == 0


def test_all_requests_identical():
    cluster = numasched.Cluster(
        [[16000, 16000], [8000, 8000], [16000, 0], [12000, 12000]],
        [[64 * GiB, 64 * GiB], [32 * GiB, 32 * GiB], [64 * GiB, 0], [48 * GiB, 48 * GiB]])
    requests = numasched.Requests([6000] * 12, [20 * GiB] * 12)
    results = _all_settings(cluster, requests)
    for (policy, numa, order, node), p in results.items():
        if order == "given" and policy == "first-fit":
            # identical requests under first-fit: a later request never lands on an earlier host
            # than one that already refused it
            placed_hosts = p.host[p.host >= 0]
            assert (np.diff(placed_hosts) >= 0).all(), (numa, node, p.host)


def test_one_huge_request_among_small_ones():
    cluster = numasched.Cluster.uniform(3, 2, 32000, 256 * GiB)
    cpu = [2000] * 10 + [10**6] + [1000] * 5
    mem = [4 * GiB] * 10 + [8 * GiB] + [GiB] * 5
    requests = numasched.Requests(cpu, mem)
    for p in _all_settings(cluster, requests).values():
        assert p.host[10] == -1 and p.reason[10] == codes.REASON_TOO_LARGE
        assert (p.host[np.arange(16) != 10] >= 0).all()


def test_hosts_filling_exactly_to_zero():
    cluster = numasched.Cluster.uniform(2, 2, 8000, 16 * GiB)
    # four single-node requests fill every node exactly; a fifth of one millicore cannot go
    requests = numasched.Requests([8000] * 4 + [1], [16 * GiB] * 4 + [1])
    for (policy, numa, order, node), p in _all_settings(cluster, requests).items():
        assert (p.host[:4] >= 0).all(), (policy, numa, order, node)
        assert not p.free_cpu.any() and not p.free_mem.any()
        assert p.host[4] == -1 and p.reason[4] == codes.REASON_NO_CPU


def test_hosts_filling_exactly_to_zero_with_remainders():
    """Odd amounts whose equal splits carry remainders still fill the nodes to exactly zero."""
    cluster = numasched.Cluster([[7, 7, 7]], [[5, 5, 5]])
    requests = numasched.Requests([7, 14, 3, 8, 5, 7], [5, 10, 2, 7, 6, 5])
    # no setting could do better than using every unit: total demand exceeds capacity
    for (policy, numa, order, node), p in _all_settings(cluster, requests).items():
        check_invariants(cluster, requests, p)


# Large amounts under numa='none': amount * free needs more than 64 bits, so a kernel that got
# this wrong could loop or write out of bounds instead of merely answering wrongly. The compiled
# backends therefore run in a child process (a generous timeout guards against a hang; nothing
# here measures time), and their answers are compared with the reference computed in this one.
BIG = 2**40
LARGE_CLUSTER = dict(
    node_cpu=[[64000, 64000, 0, 32000], [64000, 64000, 64000, 64000]],
    node_mem=[[BIG, BIG - 12345, 0, 2**39 + 777], [BIG, BIG, BIG, BIG]],
    free_cpu=[[64000, 13001, 0, 31999], [64000, 64000, 64000, 64000]],
    free_mem=[[BIG - 3, 2**38 + 5, 0, 2**39 + 11], [BIG, 2**39, BIG - 1, 7]])
LARGE_REQUESTS = dict(
    cpu=[8001, 12003, 16000, 1, 30000, 7],
    mem=[2**38 + 1, 3 * 2**38 + 7, 5 * 2**38 - 1, 2**38, 2**39 + 3, 2**40 + 2**38 + 1])
LARGE_SETTINGS = [dict(policy=p, numa="none", order=o, node=n)
                  for p in POLICIES for o in ORDERS for n in NODE_CHOICES]

_CHILD = """
import json, sys
import numasched
spec = json.loads(sys.stdin.read())
cluster = numasched.Cluster(spec["cluster"].pop("node_cpu"), spec["cluster"].pop("node_mem"),
                            **spec["cluster"])
requests = numasched.Requests(**spec["requests"])
out = []
for backend in spec["backends"]:
    for kw in spec["settings"]:
        p = numasched.place(cluster, requests, backend=backend, **kw)
        out.append({name: getattr(p, name).tolist() for name in spec["fields"]})
print(json.dumps(out))
"""


def _place_in_child(cluster_kw, requests_kw, settings_list, backends):
    spec = {"cluster": cluster_kw, "requests": requests_kw, "settings": settings_list,
            "backends": backends, "fields": list(RESULT_FIELDS)}
    env = {k: v for k, v in os.environ.items()}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    try:
        proc = subprocess.run([sys.executable, "-c", _CHILD], input=json.dumps(spec),
                              capture_output=True, text=True, env=env, cwd=str(REPO), timeout=180)
    except subprocess.TimeoutExpired:
        pytest.fail("the kernel did not finish on large amounts (hang guard)")
    assert proc.returncode == 0, f"the child crashed ({proc.returncode}):\n{proc.stderr[-2000:]}"
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    return {(b, i): results[j * len(settings_list) + i]
            for j, b in enumerate(backends) for i in range(len(settings_list))}


def test_large_memory_numa_none():
    cluster = numasched.Cluster(LARGE_CLUSTER["node_cpu"], LARGE_CLUSTER["node_mem"],
                                free_cpu=LARGE_CLUSTER["free_cpu"],
                                free_mem=LARGE_CLUSTER["free_mem"])
    requests = numasched.Requests(**LARGE_REQUESTS)
    got = _place_in_child(LARGE_CLUSTER, LARGE_REQUESTS, LARGE_SETTINGS, OTHER_BACKENDS)
    for i, kw in enumerate(LARGE_SETTINGS):
        expected = numasched.place(cluster, requests, backend="reference", **kw)
        check_invariants(cluster, requests, expected)
        assert (expected.host >= 0).sum() >= 4
        for backend in OTHER_BACKENDS:
            for name in RESULT_FIELDS:
                assert got[(backend, i)][name] == getattr(expected, name).tolist(), \
                    f"{backend} vs reference, {kw}: {name}"
    if OTHER_BACKENDS:  # the same again in this process, now that it is known not to hang
        for kw in LARGE_SETTINGS[:4]:
            parity(cluster, requests, **kw)


def test_large_memory_numa_none_exact_shares():
    """The proportional split of a 2**38-scale amount, against exact Python integers."""
    free_m = [2**40 - 3, 2**38 + 5, 2**39 + 11]
    free_c = [64000, 13001, 31999]
    cluster_kw = dict(node_cpu=[[64000, 64000, 64000]], node_mem=[[2**40] * 3],
                      free_cpu=[free_c], free_mem=[free_m])
    mem, cpu = 3 * 2**38 + 7, 12003
    requests_kw = dict(cpu=[cpu], mem=[mem])
    kw = dict(policy="best-fit", numa="none", order="given", node="pack")
    got = _place_in_child(cluster_kw, requests_kw, [kw], BACKENDS)
    for backend in BACKENDS:
        p = got[(backend, 0)]
        assert p["mem_by_node"][0] == ref.proportional(mem, free_m), backend
        assert p["cpu_by_node"][0] == ref.proportional(cpu, free_c), backend
        # a float64 computation would lose the low bits
        assert sum(p["mem_by_node"][0]) == mem
        assert p["free_mem"][0] == [f - s for f, s in zip(free_m, ref.proportional(mem, free_m))]


def test_empty_inputs():
    for backend in BACKENDS:
        none = numasched.Requests([], [])
        p = numasched.place(numasched.Cluster.uniform(2, 3, 1000, GiB), none, backend=backend)
        assert p.host.shape == (0,) and p.cpu_by_node.shape == (0, 3)
        no_hosts = numasched.Cluster(np.zeros((0, 2), dtype=np.int64),
                                     np.zeros((0, 2), dtype=np.int64))
        p = numasched.place(no_hosts, numasched.Requests([1, 2], [3, 4]), backend=backend)
        assert p.host.tolist() == [-1, -1]
        assert p.reason.tolist() == [codes.REASON_TOO_LARGE] * 2
        assert p.free_cpu.shape == (0, 2)


# --------------------------------------------------------------------------------------------
# Many NUMA nodes per host: the node-set rule beyond enumeration, on hierarchical topologies.
# --------------------------------------------------------------------------------------------
def many_node_instance(rng, hosts: int, n_nodes: int, n: int):
    """Hosts of n_nodes sub-NUMA nodes with their own hierarchical SLIT matrix, uneven nodes
    (some without CPUs), partly used; requests of 0.5 to 40 cores with odd remainders."""
    from test_nodesets import hierarchical_distance

    node_cpu = rng.choice([8000, 8000, 8000, 4000, 0], size=(hosts, n_nodes)).astype(np.int64)
    node_mem = rng.choice([32, 32, 16], size=(hosts, n_nodes)).astype(np.int64) * GiB
    free_cpu = node_cpu * rng.choice([4, 4, 2, 1, 0], size=node_cpu.shape) // 4
    free_mem = node_mem * rng.choice([4, 4, 3, 1], size=node_mem.shape) // 4
    distance = np.stack([hierarchical_distance(rng, n_nodes) for _ in range(hosts)])
    cluster = numasched.Cluster(node_cpu, node_mem, distance, free_cpu=free_cpu,
                                free_mem=free_mem)
    cpu = rng.integers(1, 81, n) * 500 + rng.choice([0, 0, 1, 7], n)
    mem = cpu * rng.integers(1, 5, n) * (GiB // 1000) + rng.choice([0, 0, 3], n)
    return cluster, numasched.Requests(cpu, mem)


@pytest.mark.parametrize("n_nodes", [16, 34, 64])
@pytest.mark.parametrize("numa", MODES)
def test_parity_many_nodes_hierarchical(n_nodes, numa):
    """K = 16, 34, 64: every backend takes the reference's node sets, pack and spread."""
    rng = np.random.default_rng(n_nodes)
    cluster, requests = many_node_instance(rng, hosts=3, n_nodes=n_nodes, n=10)
    for node in NODE_CHOICES:
        for policy in ("best-fit", "worst-fit"):
            p = parity(cluster, requests, policy=policy, numa=numa, node=node)
            check_invariants(cluster, requests, p)
            if numa != "single-numa-node":
                assert (p.host >= 0).sum() >= 5


@settings(max_examples=examples(30))
@given(seed=st.integers(0, 2**32 - 1), kw=place_settings)
def test_parity_hierarchical_16_nodes(seed, kw):
    """Random hierarchical 16-node hosts and batches, every setting."""
    cluster, requests = many_node_instance(np.random.default_rng(seed), hosts=2, n_nodes=16, n=8)
    expected = parity(cluster, requests, **kw)
    check_invariants(cluster, requests, expected)
