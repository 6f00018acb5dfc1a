"""The metric kernels of numasched.kernels.metrics against naive implementations.

``martello_toth_l2`` (Numba, O(n log n)) against the definition evaluated naively, against
brute-force optima of tiny bin-packing instances and against the trivial bound;
``request_stats`` (Numba) against a straightforward numpy computation; ``fractional_host_bound``
against ceil(demand / capacity) and a brute force. CI also runs this file with
NUMBA_DISABLE_JIT=1, so the kernel bodies are covered as plain Python.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numasched
from numasched.kernels.metrics import fractional_host_bound, martello_toth_l2, request_stats

from conftest import GiB, build, examples, random_instance


# --------------------------------------------------------------------------------------------
# Naive implementations
# --------------------------------------------------------------------------------------------
def l2_naive(sizes: list[int], capacity: int, alphas=None) -> int:
    """Martello and Toth's L2 straight from its definition, O(n) per alpha.

    For alpha in 0..C/2: J1 = items > C - alpha, J2 = C/2 < items <= C - alpha,
    J3 = alpha <= items <= C/2, L(alpha) = |J1| + |J2| + max(0, ceil((sum J3 - (|J2| C - sum J2))
    / C)). By default alpha runs over 0 and the item sizes up to C/2 (where the maximum is
    attained), which makes this O(n^2)."""
    if alphas is None:
        alphas = {0} | {s for s in sizes if 2 * s <= capacity}
    best = 0
    for alpha in alphas:
        j1 = [s for s in sizes if s > capacity - alpha]
        j2 = [s for s in sizes if 2 * s > capacity and s <= capacity - alpha]
        j3 = [s for s in sizes if alpha <= s and 2 * s <= capacity]
        excess = sum(j3) - (len(j2) * capacity - sum(j2))
        best = max(best, len(j1) + len(j2) + max(0, -(-excess // capacity)))
    return best


def optimum_bins(sizes: list[int], capacity: int) -> int:
    """The fewest bins of ``capacity`` holding every item (exhaustive search, tiny n only)."""
    items = sorted(sizes, reverse=True)
    best = len(items)

    def search(i: int, loads: list[int]) -> None:
        nonlocal best
        if len(loads) >= best:
            return
        if i == len(items):
            best = len(loads)
            return
        seen = set()
        for b, load in enumerate(loads):
            if load + items[i] <= capacity and load not in seen:
                seen.add(load)  # bins with equal loads are interchangeable
                loads[b] += items[i]
                search(i + 1, loads)
                loads[b] -= items[i]
        loads.append(items[i])
        search(i + 1, loads)
        loads.pop()

    search(0, [])
    return best


def l2(sizes, capacity) -> int:
    return int(martello_toth_l2(np.sort(np.asarray(sizes, dtype=np.int64)), capacity))


@st.composite
def bin_instances(draw, max_items: int = 12, max_capacity: int = 60):
    """(sizes, capacity): items in (0, C], with many duplicates and items at C/2 and C."""
    capacity = draw(st.integers(1, max_capacity))
    special = [1, capacity, max(1, capacity // 2), capacity // 2 + 1, (capacity + 1) // 2]
    item = st.integers(1, capacity) | st.sampled_from([s for s in special if 1 <= s <= capacity])
    sizes = draw(st.lists(item, min_size=0, max_size=max_items))
    return sizes, capacity


# --------------------------------------------------------------------------------------------
# martello_toth_l2
# --------------------------------------------------------------------------------------------
@settings(max_examples=examples(300))
@given(inst=bin_instances())
def test_l2_equals_the_naive_definition(inst):
    sizes, capacity = inst
    got = l2(sizes, capacity)
    assert got == l2_naive(sizes, capacity)
    # ... which is also the maximum over every integer alpha in 0..C/2, not only item sizes
    assert got == l2_naive(sizes, capacity, alphas=range(capacity // 2 + 1))


@settings(max_examples=examples(200))
@given(inst=bin_instances(max_items=8, max_capacity=30))
def test_l2_is_a_lower_bound_on_tiny_instances(inst):
    sizes, capacity = inst
    got = l2(sizes, capacity)
    assert -(-sum(sizes) // capacity) <= got <= optimum_bins(sizes, capacity)


@settings(max_examples=examples(100))
@given(sizes=st.lists(st.integers(1, 2**40), max_size=30),
       slack=st.integers(0, 2**40))
def test_l2_on_large_amounts(sizes, slack):
    """Byte-sized amounts (2**40 scale): exact integers, no overflow, at least the trivial bound."""
    capacity = max(sizes, default=1) + slack
    got = l2(sizes, capacity)
    assert got == l2_naive(sizes, capacity)
    assert got >= -(-sum(sizes) // capacity)
    assert got <= len(sizes)


@pytest.mark.parametrize("sizes, capacity, expected", [
    ([], 10, 0),
    ([10, 10, 10], 10, 3),               # every item fills a bin
    ([6, 6, 6], 10, 3),                  # every item above C/2: one bin each (ceil bound: 2)
    ([5, 5, 5, 5], 10, 2),               # items of exactly C/2 pair up
    ([4, 4, 4, 6, 6, 6], 10, 3),
    ([3, 3, 3, 7, 7, 7], 10, 3),
    ([2, 2, 2, 2, 2, 9, 9], 10, 3),      # 9s take a bin each, the 2s need another
    ([1] * 25, 10, 3),
    ([7] * 3 + [4] * 3, 10, 5),          # the 4s cannot join a 7: 3 + ceil(12 / 10)
])
def test_l2_hand_computed(sizes, capacity, expected):
    assert l2(sizes, capacity) == expected
    assert expected <= optimum_bins(sizes, capacity)


def test_summary_uses_l2_on_identical_empty_hosts():
    """Three requests of 60 % of a host: ceil(1.8) = 2 hosts by volume, but L2 (and the truth)
    says 3."""
    cluster = numasched.Cluster.uniform(4, 1, 10_000, 10 * GiB)
    p = numasched.place(cluster, numasched.Requests([6000] * 3, [GiB] * 3))
    s = p.summary()
    assert s["hosts_used"] == 3
    assert s["hosts_lower_bound_l2"] == 3
    assert s["hosts_lower_bound"] == 3
    # not on a cluster that did not start empty
    used = cluster.with_free([[9000]] * 4, [[10 * GiB]] * 4)
    assert numasched.place(used, numasched.Requests([1000], [GiB])).summary()[
        "hosts_lower_bound_l2"] is None


# --------------------------------------------------------------------------------------------
# request_stats
# --------------------------------------------------------------------------------------------
def stats_numpy(host, cpu_by_node, mem_by_node, nodes, mem, equal_clients):
    placed = host >= 0
    popcount = np.array([bin(int(x)).count("1") for x in nodes], dtype=np.int64)
    c = cpu_by_node.astype(np.float64)
    m = mem_by_node.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        local = np.where(equal_clients.astype(bool), 1.0,
                         (c * m).sum(axis=1) / (c.sum(axis=1) * m.sum(axis=1)))
    mem_placed = mem[placed].astype(np.float64)
    return (int(placed.sum()), int((placed & (popcount == 1)).sum()),
            math.fsum(mem_placed * local[placed]), math.fsum(mem_placed))


def check_stats(host, cpu_by_node, mem_by_node, nodes, mem, equal_clients):
    got = request_stats(host, cpu_by_node, mem_by_node, nodes, mem, equal_clients)
    want = stats_numpy(host, cpu_by_node, mem_by_node, nodes, mem, equal_clients)
    assert (int(got[0]), int(got[1])) == want[:2]
    assert got[2] == pytest.approx(want[2], rel=1e-12, abs=1e-9)
    assert got[3] == pytest.approx(want[3], rel=1e-12, abs=1e-9)
    return got


@st.composite
def stats_inputs(draw):
    n = draw(st.integers(0, 20))
    k = draw(st.integers(1, 6))
    scale = draw(st.sampled_from([1, 1000, GiB, 2**40]))
    host = np.array([draw(st.sampled_from([-1, 0, 1, 2])) for _ in range(n)], dtype=np.int32)
    cpu_by = np.zeros((n, k), dtype=np.int64)
    mem_by = np.zeros((n, k), dtype=np.int64)
    for i in range(n):
        if host[i] < 0:
            continue
        for arr, unit in ((cpu_by, 1000), (mem_by, scale)):
            used = draw(st.lists(st.integers(0, k - 1), min_size=1, max_size=k, unique=True))
            for j in used:
                arr[i, j] = draw(st.integers(1, 64)) * unit + draw(st.integers(0, 3))
    bits = st.integers(0, 63).map(lambda b: 1 << b)
    masks = st.sampled_from([0, 1, 3, 0b110, 2**63, 2**63 + 1, 2**64 - 1]) | bits
    nodes = np.array([draw(masks) for _ in range(n)], dtype=np.uint64)
    mem = mem_by.sum(axis=1)
    mem[host < 0] = draw(st.integers(1, 2**40))
    equal = np.array([draw(st.booleans()) for _ in range(n)], dtype=np.uint8)
    return host, cpu_by, mem_by, nodes, mem.astype(np.int64), equal


@settings(max_examples=examples(200))
@given(args=stats_inputs())
def test_request_stats_matches_numpy(args):
    placed, single, weighted, total = check_stats(*args)
    assert 0 <= single <= placed <= len(args[0])
    assert 0.0 <= weighted <= total * (1 + 1e-12)


def test_request_stats_hand_computed():
    host = np.array([0, -1, 1, 0], dtype=np.int32)
    cpu_by = np.array([[4, 0], [0, 0], [2, 2], [3, 1]], dtype=np.int64)
    mem_by = np.array([[8, 0], [0, 0], [4, 4], [2, 6]], dtype=np.int64)
    nodes = np.array([0b01, 0, 0b11, 0b11], dtype=np.uint64)
    mem = np.array([8, 5, 8, 8], dtype=np.int64)
    equal = np.array([0, 0, 1, 0], dtype=np.uint8)
    placed, single, weighted, total = check_stats(host, cpu_by, mem_by, nodes, mem, equal)
    # local fractions: 1 (one node), 1 (vNUMA equal clients), 3/4 * 2/8 + 1/4 * 6/8 = 0.375
    assert (placed, single, total) == (3, 1, 24.0)
    assert weighted == pytest.approx(8 + 8 + 8 * 0.375)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_summary_metrics_match_numpy_on_real_placements(seed):
    rng = np.random.default_rng(seed)
    cluster, requests = build(random_instance(rng, hosts=6, nodes=[2, 3, 4][seed], n=40))
    for numa in ("none", "restricted", "best-effort"):
        p = numasched.place(cluster, requests, numa=numa)
        equal = ((requests.vnuma == 1) & (p.modes != 0)).astype(np.uint8)
        placed, single, weighted, total = check_stats(p.host, p.cpu_by_node, p.mem_by_node,
                                                      p.nodes, requests.mem, equal)
        s = p.summary()
        assert s["placed"] == placed
        assert s["single_node_fraction"] == pytest.approx(single / placed if placed else 0.0)
        assert s["locality"] == pytest.approx(weighted / total if total else 0.0)


# --------------------------------------------------------------------------------------------
# fractional_host_bound
# --------------------------------------------------------------------------------------------
@settings(max_examples=examples(200))
@given(hosts=st.integers(1, 50), cap=st.integers(1, 2**46), data=st.data())
def test_fractional_bound_on_uniform_capacities_is_ceil(hosts, cap, data):
    demand = data.draw(st.integers(0, hosts * cap) | st.sampled_from([cap, hosts * cap, 1]))
    got = fractional_host_bound(demand, np.full(hosts, cap, dtype=np.int64))
    assert got == -(-demand // cap)


@settings(max_examples=examples(200))
@given(caps=st.lists(st.integers(0, 1000), min_size=1, max_size=12), data=st.data())
def test_fractional_bound_on_mixed_capacities(caps, data):
    demand = data.draw(st.integers(0, sum(caps)))
    got = fractional_host_bound(demand, np.array(caps, dtype=np.int64))
    top = sorted(caps, reverse=True)
    assert got == min(k for k in range(len(caps) + 1) if sum(top[:k]) >= demand)


def test_fractional_bound_edge_cases():
    assert fractional_host_bound(0, np.array([], dtype=np.int64)) == 0
    assert fractional_host_bound(-5, np.array([10], dtype=np.int64)) == 0
    # a demand no set of these hosts covers needs more hosts than there are
    assert fractional_host_bound(31, np.array([10, 10, 10], dtype=np.int64)) > 3
    assert fractional_host_bound(1, np.array([], dtype=np.int64)) > 0
