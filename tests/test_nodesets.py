"""The node-set rule: exact where it enumerates, distance-optimal on hierarchical topologies.

Brute force is ``reference.Host.enumerated_best_set`` (every fitting set compared) and plain
enumeration of widths at capacity; the rule under test is ``Host.best_set`` /
``Host.hierarchy_set`` / ``Host.min_nodes`` / ``Host.first_set`` of the reference, which every
backend follows bit for bit (tests/test_parity.py).

Hierarchical topologies are SLIT matrices where the distance of two nodes is the level of the
smallest group holding both: sub-NUMA groups inside sockets inside the board (10 local, then
e.g. 11 / 12 / 32), with node ids in socket order or shuffled (boards that number CPU nodes
first and memory-only nodes after them), nodes of uneven size, and present nodes without CPUs
or without memory.
"""
from __future__ import annotations

from itertools import combinations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numasched
from numasched import codes
from numasched.kernels import reference as ref

from conftest import BACKENDS, GiB, assert_same_placement, check_invariants, examples

PACK, SPREAD = codes.NODE_PACK, codes.NODE_SPREAD


def hierarchical_distance(rng: np.random.Generator, n_nodes: int, shuffle: bool | None = None):
    """A random hierarchical SLIT matrix [K, K]: up to 4 sockets of up to 3 sub-NUMA groups.

    Levels are increasing: 10 local, then within a sub-group, within a socket, across sockets
    (values drawn, e.g. 11 / 12 / 32). Ids are in socket order, or shuffled when ``shuffle``.
    """
    inner, socket, board = np.sort(rng.choice(np.arange(11, 60), size=3, replace=False))
    sockets = np.sort(rng.integers(0, rng.integers(1, 5), n_nodes))
    groups = rng.integers(0, 3, n_nodes)
    order = (rng.permutation(n_nodes) if (rng.random() < 0.3 if shuffle is None else shuffle)
             else np.arange(n_nodes))
    s, g = sockets[order], groups[order]
    d = np.where(s[:, None] != s[None, :], board, np.where(g[:, None] != g[None, :], socket, inner))
    np.fill_diagonal(d, 10)
    return d.astype(np.int64)


def random_host(rng: np.random.Generator, n_nodes: int, unit: int):
    """Capacities (uneven, some nodes CPU-only or memory-only), free states that often sit on
    exact multiples of ``unit`` (so equal splits meet nodes with exactly their share free)."""
    cap_c = rng.choice([8, 8, 8, 4, 16, 0], n_nodes) * unit
    cap_m = rng.choice([32, 32, 16, 64, 0], n_nodes) * unit
    both_zero = (cap_c == 0) & (cap_m == 0)
    cap_c[both_zero] = 8 * unit
    free_c = np.array([rng.choice([c, c // 2, (c // unit) * unit // 4, rng.integers(0, c + 1)])
                       for c in cap_c], dtype=np.int64)
    free_m = np.array([rng.choice([m, m // 2, rng.integers(0, m + 1)]) for m in cap_m],
                      dtype=np.int64)
    return cap_c.astype(np.int64), cap_m.astype(np.int64), free_c, free_m


def as_host(cap_c, cap_m, free_c, free_m, distance):
    return ref.Host(list(map(int, cap_c)), list(map(int, cap_m)), list(map(int, free_c)),
                    list(map(int, free_m)), np.asarray(distance).tolist(), True)


def random_request(rng, host: ref.Host, unit: int):
    """A width and amounts that often split into exact multiples of the free states."""
    width = int(rng.integers(2, len(host.present) + 1))
    cpu = int(rng.integers(1, 4 * unit + 1)) * width // rng.choice([1, 2, 4])
    cpu = max(1, cpu + int(rng.choice([0, 0, 1, width - 1, width + 1])))
    mem = max(1, int(rng.integers(1, 16 * unit + 1)) * width // 2
              + int(rng.choice([0, 0, 1, 2, width - 1])))
    return width, cpu, mem


def relaxed_fits(host: ref.Host, cpu, mem, width, node_choice) -> bool:
    """Step 1 of the rule applies: the best set of all candidates fits as it is."""
    cand = host.candidates(cpu, mem, width, host.free_cpu, host.free_mem)
    best = host.hierarchy_best(cpu, mem, width, node_choice, set(cand))
    return best is not None and host.set_fits(best, cpu, mem, host.free_cpu, host.free_mem)


# ---------------------------------------------------------------------------------------------
# Distance-optimality against brute force on hierarchical topologies.
# ---------------------------------------------------------------------------------------------
def check_rule_against_brute_force(seed: int, max_nodes: int):
    rng = np.random.default_rng(seed)
    n_nodes = int(rng.integers(2, max_nodes + 1))
    unit = int(rng.choice([1, 1000, GiB // 8]))
    cap_c, cap_m, free_c, free_m = random_host(rng, n_nodes, unit)
    host = as_host(cap_c, cap_m, free_c, free_m, hierarchical_distance(rng, n_nodes))
    if len(host.present) < 2:
        return
    levels = host.levels()
    for _ in range(4):
        width, cpu, mem = random_request(rng, host, unit)
        for node_choice in (PACK, SPREAD):
            expected = host.enumerated_best_set(cpu, mem, width, node_choice)
            got = host.hierarchy_set(cpu, mem, width, node_choice)
            assert (got is None) == (expected is None), (got, expected)
            assert (host.first_set(cpu, mem, width, host.free_cpu, host.free_mem) is None) == (
                expected is None)
            if expected is None:
                continue
            assert len(got) == width and host.set_fits(got, cpu, mem, host.free_cpu,
                                                       host.free_mem)
            # On a hierarchical matrix a pair's level is its distance.
            assert all(levels[i, j] == host.distance[i][j] for i in got for j in got)
            if relaxed_fits(host, cpu, mem, width, node_choice) or max(cpu % width,
                                                                       mem % width) <= 1:
                assert host.distance_sum(got) == host.distance_sum(expected), (got, expected)
            if cpu % width == 0 and mem % width == 0:
                assert got == expected  # the same tie rules too: the very same set


@settings(max_examples=examples(400))
@given(seed=st.integers(0, 2**32 - 1))
def test_rule_is_distance_optimal_on_hierarchical_topologies(seed):
    check_rule_against_brute_force(seed, max_nodes=11)


@pytest.mark.slow
@settings(max_examples=examples(600))
@given(seed=st.integers(0, 2**32 - 1))
def test_rule_is_distance_optimal_up_to_16_nodes(seed):
    check_rule_against_brute_force(seed, max_nodes=16)


def test_rule_uses_the_hierarchy_not_the_first_ids():
    """Two sockets of 17 sub-NUMA nodes (10 / 12 / 32), 8 cores each: 13 nodes' worth of cores
    goes inside the socket that has room (C(34, 13) ~ 1e9 sets would be enumerated)."""
    d = np.where(np.arange(34)[:, None] // 17 != np.arange(34)[None, :] // 17, 32, 12)
    np.fill_diagonal(d, 10)
    cap = np.full(34, 8000, dtype=np.int64)
    free = cap.copy()
    free[:17:3] = 0  # socket 0 has 11 free nodes, socket 1 all 17
    host = as_host(cap, cap * 4, free, cap * 4, d)
    got = host.best_set(13 * 8000, 13 * 4000, 13, PACK)
    assert got == tuple(range(17, 30))  # socket 1, lowest ids
    assert ref.n_choose(len(host.candidates(13 * 8000, 13 * 4000, 13, free, cap * 4)),
                        13) > ref.COMBINATION_LIMIT


def test_pack_and_spread_decide_inside_the_nearest_group():
    """Within one socket the busiest (pack) or the emptiest (spread) nodes win; across sockets
    never, though the other socket's nodes are emptier."""
    k = 24
    d = np.where(np.arange(k)[:, None] // 12 != np.arange(k)[None, :] // 12, 32, 12)
    np.fill_diagonal(d, 10)
    cap = np.full(k, 8000, dtype=np.int64)
    free = np.array([4000] * 6 + [8000] * 6 + [2000] * 12, dtype=np.int64)  # socket 1: too full
    host = as_host(cap, cap * GiB, free, cap * GiB, d)
    pack = host.best_set(6 * 4000, 6 * GiB, 6, PACK)
    spread = host.best_set(6 * 4000, 6 * GiB, 6, SPREAD)
    assert pack == tuple(range(6)) and spread == tuple(range(6, 12))


# ---------------------------------------------------------------------------------------------
# Exactness where the search space is small, and of the existence test and min_nodes always.
# ---------------------------------------------------------------------------------------------
def brute_min_nodes(host: ref.Host, cpu, mem):
    for width in range(1, len(host.present) + 1):
        if any(host.set_fits(s, cpu, mem, host.cap_cpu, host.cap_mem)
               for s in combinations(host.present, width)):
            return width
    return None


@settings(max_examples=examples(250))
@given(seed=st.integers(0, 2**32 - 1), hierarchical=st.booleans())
def test_small_hosts_enumerate_exactly(seed, hierarchical):
    """K <= 8: best_set is the enumeration of every fitting set, on any distance matrix."""
    rng = np.random.default_rng(seed)
    n_nodes = int(rng.integers(1, 9))
    unit = int(rng.choice([1, 1000]))
    cap_c, cap_m, free_c, free_m = random_host(rng, n_nodes, unit)
    d = (hierarchical_distance(rng, n_nodes) if hierarchical
         else rng.choice([10, 11, 12, 21, 32], size=(n_nodes, n_nodes)))
    host = as_host(cap_c, cap_m, free_c, free_m, d)
    if not host.present:
        return
    for _ in range(4):
        width = int(rng.integers(1, len(host.present) + 1))
        cpu = int(rng.integers(1, 3 * int(cap_c.max()) + 2))
        mem = int(rng.integers(1, 3 * int(cap_m.max()) + 2))
        for node_choice in (PACK, SPREAD):
            assert host.best_set(cpu, mem, width, node_choice) == host.enumerated_best_set(
                cpu, mem, width, node_choice)
        assert host.min_nodes(cpu, mem) == brute_min_nodes(host, cpu, mem)


@settings(max_examples=examples(250))
@given(seed=st.integers(0, 2**32 - 1))
def test_existence_test_and_min_nodes_are_exact(seed):
    """first_set finds a set iff one fits, and it is the first in lexicographic order."""
    rng = np.random.default_rng(seed)
    n_nodes = int(rng.integers(1, 11))
    unit = int(rng.choice([1, 1000]))
    cap_c, cap_m, free_c, free_m = random_host(rng, n_nodes, unit)
    host = as_host(cap_c, cap_m, free_c, free_m, hierarchical_distance(rng, n_nodes))
    for _ in range(6):
        width = int(rng.integers(1, n_nodes + 1))
        cpu, mem = int(rng.integers(1, 40 * unit)), int(rng.integers(1, 80 * unit))
        first = next((s for s in combinations(host.present, width)
                      if host.set_fits(s, cpu, mem, host.free_cpu, host.free_mem)), None)
        assert host.first_set(cpu, mem, width, host.free_cpu, host.free_mem) == first
        assert host.min_nodes(cpu, mem) == brute_min_nodes(host, cpu, mem)


# ---------------------------------------------------------------------------------------------
# Many nodes per host on every backend: no freeze, the bit masks at K = 64.
# ---------------------------------------------------------------------------------------------
def gb200_like(hosts: int = 4):
    """34 nodes: 2 CPU nodes (0, 1), 32 memory-only nodes, 16 behind each CPU's socket."""
    k = 34
    socket = np.array([0, 1] + [0] * 16 + [1] * 16)
    d = np.where(socket[:, None] == socket[None, :], 40, 80)
    d[:2, :2] = np.where(np.eye(2, dtype=bool), 10, 40)
    np.fill_diagonal(d, 10)
    node_cpu = np.zeros((hosts, k), dtype=np.int64)
    node_cpu[:, :2] = 72000
    node_mem = np.full((hosts, k), 24 * GiB, dtype=np.int64)
    node_mem[:, :2] = 480 * GiB
    return numasched.Cluster(node_cpu, node_mem, d)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("numa", ["restricted", "best-effort", "single-numa-node"])
def test_many_nodes_do_not_freeze(backend, numa):
    """Hosts of 34 and 64 sub-NUMA nodes: wide requests that used to enumerate ~1e9 sets."""
    for k in (34, 64):
        d = np.where(np.arange(k)[:, None] // 8 != np.arange(k)[None, :] // 8, 32, 12)
        np.fill_diagonal(d, 10)
        cluster = numasched.Cluster.uniform(3, k, 8000, 32 * GiB)
        cluster = numasched.Cluster(cluster.node_cpu, cluster.node_mem, d)
        requests = numasched.Requests([13 * 8000, 100000, 500, 20 * 8000 - 1, 6 * 8000 + 1],
                                      [13 * 32 * GiB, 50 * GiB, GiB, 10 * GiB, 6 * 32 * GiB])
        p = numasched.place(cluster, requests, numa=numa, backend=backend)
        check_invariants(cluster, requests, p)
        if numa != "single-numa-node":
            assert (p.host >= 0).all()
    gb = gb200_like()
    requests = numasched.Requests([144000, 72000, 1000], [900 * GiB, 10 * GiB, GiB])
    p = numasched.place(gb, requests, numa=numa, backend=backend)
    check_invariants(gb, requests, p)
    assert not (p.cpu_by_node[:, 2:].any() or p.mem_by_node[:, 2:].any())  # no CPU there


@pytest.mark.parametrize("backend", BACKENDS)
def test_node_63_mask(backend):
    """The highest node of a 64-node host: bit 63 of the uint64 mask, on every backend."""
    k = 64
    cap = np.full((2, k), 8000, dtype=np.int64)
    free = np.zeros_like(cap)
    free[1, 63] = 8000
    free[1, 62] = 8000
    cluster = numasched.Cluster(cap, cap * GiB // 1000, free_cpu=free, free_mem=free * GiB // 1000)
    requests = numasched.Requests([8000, 4000, 4000], [8 * GiB, 4 * GiB, 4 * GiB],
                                  numa=["single-numa-node", "restricted", "best-effort"])
    for node in ("pack", "spread"):
        p = numasched.place(cluster, requests, backend=backend, node=node, order="given")
        expected = numasched.place(cluster, requests, backend="reference", node=node,
                                   order="given")
        assert_same_placement(p, expected)
        assert p.host.tolist() == [1, 1, 1]
        assert [int(n) for n in p.nodes] == [1 << 62, 1 << 63, 1 << 63]
        assert p.cpu_by_node[:, 63].tolist() == [0, 4000, 4000]
    wide = numasched.Requests([64 * 8000 - 5], [64 * 8 * GiB - 3], numa=["restricted"])
    p = numasched.place(numasched.Cluster(cap, cap * GiB // 1000), wide, backend=backend)
    assert int(p.nodes[0]) == (1 << 64) - 1 and p.cpu_by_node[0, 63] == 7999


@pytest.mark.parametrize("backend", BACKENDS)
def test_too_large_on_many_nodes_is_pending_at_once(backend):
    """could_ever_hold and pending_reason on 64 nodes: exact min_nodes, no enumeration."""
    k = 64
    cluster = numasched.Cluster.uniform(2, k, 8000, 32 * GiB)
    requests = numasched.Requests([k * 8000 + 1, 8001, 40 * 8000],
                                  [GiB, GiB, 40 * 32 * GiB],
                                  numa=["restricted", "single-numa-node", "best-effort"])
    p = numasched.place(cluster, requests, backend=backend)
    assert p.reason.tolist()[:2] == [codes.REASON_TOO_LARGE] * 2
    assert p.host[2] >= 0 and bin(int(p.nodes[2])).count("1") == 40
