"""Invariants of every placement, on every backend (property tests)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numasched
from numasched import codes
from numasched.kernels import reference as ref

from conftest import (
    GiB,
    MODES,
    build,
    check_invariants,
    check_summary,
    examples,
    instances,
    place_settings,
    ref_host,
)


@settings(max_examples=examples(150))
@given(inst=instances(), kw=place_settings)
def test_invariants_hold(inst, kw, backend):
    cluster, requests = build(inst)
    p = numasched.place(cluster, requests, backend=backend, **kw)
    assert p.settings.items() >= {**kw, "backend": backend}.items()
    check_invariants(cluster, requests, p)
    check_summary(p)


@settings(max_examples=examples(60))
@given(inst=instances(), kw=place_settings)
def test_invariants_hold_on_the_next_batch(inst, kw, backend):
    """cluster_after() is a valid cluster with the placement's free state, and placing on it
    keeps every invariant."""
    cluster, requests = build(inst)
    first = numasched.place(cluster, requests, backend=backend, **kw)
    after = first.cluster_after()
    assert np.array_equal(after.free_cpu, first.free_cpu)
    assert np.array_equal(after.free_mem, first.free_mem)
    assert np.array_equal(after.node_cpu, cluster.node_cpu)
    assert np.array_equal(after.schedulable, cluster.schedulable)
    assert np.array_equal(after.distance, cluster.distance)
    second = numasched.place(after, requests, backend=backend, **kw)
    check_invariants(after, requests, second)
    # Nothing placed in the second batch fits a request that was pending in the first: the free
    # state only shrank, so pending requests of the first batch stay pending.
    assert (second.host[first.host < 0] == -1).all()


@st.composite
def uniform_restricted(draw):
    hosts = draw(st.integers(1, 4))
    k = draw(st.integers(1, 6))
    node_c = draw(st.integers(1, 64)) * draw(st.sampled_from([1, 1000]))
    node_m = draw(st.integers(1, 64)) * draw(st.sampled_from([1, GiB]))
    n = draw(st.integers(1, 10))
    cpu = [draw(st.integers(1, node_c * k + 2)) for _ in range(n)]
    mem = [draw(st.integers(1, node_m * k + 2)) for _ in range(n)]
    return hosts, k, node_c, node_m, cpu, mem


@settings(max_examples=examples(100))
@given(case=uniform_restricted(), kw=place_settings)
def test_restricted_uses_the_kubelet_preferred_width_on_uniform_hosts(case, kw, backend):
    hosts, k, node_c, node_m, cpu, mem = case
    cluster = numasched.Cluster.uniform(hosts, k, node_c, node_m)
    requests = numasched.Requests(cpu, mem)
    p = numasched.place(cluster, requests, backend=backend, **{**kw, "numa": "restricted"})
    check_invariants(cluster, requests, p)
    for i in range(len(cpu)):
        preferred = max(math.ceil(cpu[i] / node_c), math.ceil(mem[i] / node_m))
        if preferred > k:
            assert p.host[i] == -1 and p.reason[i] == codes.REASON_TOO_LARGE
        elif p.host[i] >= 0:
            assert bin(int(p.nodes[i])).count("1") == preferred, (i, cpu[i], mem[i])
        else:
            assert p.reason[i] != codes.REASON_TOO_LARGE


@settings(max_examples=examples(100))
@given(inst=instances(), kw=place_settings)
def test_restricted_uses_min_nodes_on_any_host(inst, kw, backend):
    """Heterogeneous hosts: the width is reference Host.min_nodes at capacity."""
    cluster, requests = build(inst)
    p = numasched.place(cluster, requests, backend=backend, **{**kw, "numa": "restricted"})
    for i in np.flatnonzero((p.host >= 0) & (p.modes == codes.MODE_RESTRICTED)):
        h = int(p.host[i])
        preferred = ref_host(cluster, h).min_nodes(int(requests.cpu[i]), int(requests.mem[i]))
        assert bin(int(p.nodes[i])).count("1") == preferred


@settings(max_examples=examples(60))
@given(inst=instances(), kw=place_settings)
def test_best_effort_is_never_wider_than_needed_on_its_host(inst, kw, backend):
    """Replay: at the moment a best-effort request was placed, no narrower set fitted its host.

    Checked by re-placing the prefix of the batch in the kernel's order: placing requests one by
    one in that order with order='given' gives the same result as the batch.
    """
    cluster, requests = build(inst)
    kw = {**kw, "numa": "best-effort"}
    p = numasched.place(cluster, requests, backend=backend, **kw)
    check_invariants(cluster, requests, p)
    order = ref.request_order(
        requests.cpu.tolist(), requests.mem.tolist(), requests.priority.tolist(),
        requests.required_host.tolist(),
        [ref_host(cluster, h, cluster.free_cpu, cluster.free_mem) for h in range(cluster.hosts)],
        codes.ORDERS[kw["order"]])  # the free state too: the fill order simulates on it
    current = cluster
    for i in order:
        one = numasched.Requests(
            [int(requests.cpu[i])], [int(requests.mem[i])], numa=[int(requests.numa[i])],
            required_host=[int(requests.required_host[i])])
        single = numasched.place(current, one, backend=backend, **{**kw, "order": "given"})
        assert single.host[0] == p.host[i], f"request {i}"
        assert single.cpu_by_node[0].tolist() == p.cpu_by_node[i].tolist()
        assert single.mem_by_node[0].tolist() == p.mem_by_node[i].tolist()
        assert single.nodes[0] == p.nodes[i]
        if p.host[i] >= 0 and p.modes[i] == codes.MODE_BEST_EFFORT:
            width = bin(int(p.nodes[i])).count("1")
            host = ref_host(current, int(p.host[i]), current.free_cpu, current.free_mem)
            for narrower in range(1, width):
                assert host.best_set(int(requests.cpu[i]), int(requests.mem[i]), narrower,
                                     codes.NODE_CHOICES[kw["node"]]) is None
        current = single.cluster_after()
    assert np.array_equal(current.free_cpu, p.free_cpu)
    assert np.array_equal(current.free_mem, p.free_mem)


@pytest.mark.parametrize("numa", MODES)
def test_single_mode_widths(numa, backend):
    """Width rules on a 4-node uniform host, by mode, on an empty host."""
    cluster = numasched.Cluster.uniform(1, 4, 8000, 32 * GiB)
    # 20000m needs 3 nodes at capacity; 2 GiB would fit one
    requests = numasched.Requests([20000], [2 * GiB])
    p = numasched.place(cluster, requests, numa=numa, backend=backend)
    check_invariants(cluster, requests, p)
    width = bin(int(p.nodes[0])).count("1")
    expected = {"none": 4, "single-numa-node": 0, "restricted": 3, "best-effort": 3}[numa]
    assert width == expected
    if numa == "single-numa-node":
        assert p.reason[0] == codes.REASON_TOO_LARGE
    else:
        assert p.host[0] == 0
