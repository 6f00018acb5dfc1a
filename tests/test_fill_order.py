"""The ``fill`` order (``numasched.kernels.fill``): bin-centric filling as a request permutation.

``naive_fill`` below is the slow, obvious statement of the simulation (lists, ``max`` over every
remaining request, no shapes): the kernel must give exactly its order. First-fit over the order
must then reproduce the simulation's host assignment wherever the simulation's fit test is the
kernel's (one-node hosts, or mode ``none``), and every backend must give the same placement.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numasched
from numasched import codes, policies
from numasched.api import request_order
from numasched.kernels.fill import fill_order

from conftest import (
    MODES,
    NODE_CHOICES,
    OTHER_BACKENDS,
    POLICIES,
    assert_same_placement,
    build,
    check_invariants,
    clusters,
    examples,
    instances,
    request_sets,
)


def naive_fill(cap_c, cap_m, free_c, free_m, sched, cpu, mem, priority, required):
    """(order, host of each request in the simulation, -1 for leftovers)."""
    def fx(x, cap):
        return (x << 16) // cap if cap > 0 else 0

    n, n_hosts = len(cpu), len(cap_c)
    room_c, room_m = list(free_c), list(free_m)
    demand = []
    for amounts, caps in ((cpu, cap_c), (mem, cap_m)):
        largest = max(caps, default=0)
        demand.append(sum(fx(min(a, largest), largest) for a in amounts) if largest > 0 else 0)
    top = max(demand, default=0)
    wc, wm = [max(1, (d << 16) // top) if top else 1 for d in demand]
    order, host = [], [-1] * n
    for p in sorted(set(priority), reverse=True):
        left = [i for i in range(n) if priority[i] == p]
        for h in range(n_hosts):
            if not sched[h]:
                continue
            while True:
                fits = [i for i in left if required[i] in (-1, h)
                        and cpu[i] <= room_c[h] and mem[i] <= room_m[h]]
                if not fits:
                    break
                i = max(fits, key=lambda i: (
                    wc * fx(cpu[i], cap_c[h]) * fx(room_c[h], cap_c[h])
                    + wm * fx(mem[i], cap_m[h]) * fx(room_m[h], cap_m[h]), -i))
                order.append(i)
                host[i] = h
                left.remove(i)
                room_c[h] -= cpu[i]
                room_m[h] -= mem[i]
        order.extend(sorted(left))
    return order, host


def host_totals(cluster):
    return (cluster.node_cpu.sum(axis=1), cluster.node_mem.sum(axis=1),
            cluster.free_cpu.sum(axis=1), cluster.free_mem.sum(axis=1), cluster.schedulable)


def naive_for(cluster, requests):
    return naive_fill(*[a.tolist() for a in host_totals(cluster)], requests.cpu.tolist(),
                      requests.mem.tolist(), requests.priority.tolist(),
                      requests.required_host.tolist())


@st.composite
def raw_problems(draw):
    """Host totals and requests on a small grid, so equal shapes and score ties are common."""
    n_hosts = draw(st.integers(0, 6))
    cap_c = [draw(st.sampled_from([0, 4, 8, 8, 10, 16])) for _ in range(n_hosts)]
    cap_m = [draw(st.sampled_from([0, 4, 8, 10, 10, 20])) for _ in range(n_hosts)]
    free_c = [draw(st.integers(0, c)) if draw(st.booleans()) else c for c in cap_c]
    free_m = [draw(st.integers(0, m)) if draw(st.booleans()) else m for m in cap_m]
    sched = [draw(st.sampled_from([1, 1, 1, 0])) for _ in range(n_hosts)]
    n = draw(st.integers(0, 25))
    cpu = [draw(st.integers(1, 12)) for _ in range(n)]
    mem = [draw(st.integers(1, 12)) for _ in range(n)]
    priority = [draw(st.sampled_from([0, 0, 0, 1, -1])) for _ in range(n)]
    pins = [-1, -1, -1] + list(range(n_hosts))
    required = [draw(st.sampled_from(pins)) for _ in range(n)]
    if draw(st.booleans()):  # mirror images: wc == wm, and (a, b) ties (b, a) on square rooms
        cap_m, free_m, mem = list(cap_c), list(free_c), cpu[::-1]
    return cap_c, cap_m, free_c, free_m, sched, cpu, mem, priority, required


@settings(max_examples=examples(300))
@given(problem=raw_problems())
def test_kernel_equals_naive_simulation(problem):
    got = fill_order(*problem)
    order, _ = naive_fill(*problem)
    assert got.dtype == np.int64
    assert got.tolist() == order
    n = len(problem[5])
    assert sorted(got.tolist()) == list(range(n)), "not a permutation"


@settings(max_examples=examples(60))
@given(problem=raw_problems())
def test_inputs_are_not_modified_and_the_order_is_deterministic(problem):
    arrays = [np.array(a, dtype=np.int64) for a in problem]
    before = [a.copy() for a in arrays]
    first = fill_order(*arrays)
    assert all(np.array_equal(a, b) for a, b in zip(arrays, before))
    # Same values as other dtypes and as lists: the same order, every time.
    assert np.array_equal(fill_order(*[a.astype(np.int32) for a in arrays]), first)
    assert np.array_equal(fill_order(*problem), first)


@settings(max_examples=examples(80))
@given(inst=instances(max_requests=16))
def test_priorities_come_first_and_the_order_is_a_permutation(inst):
    cluster, requests = build(inst)
    order = request_order(cluster, requests, codes.ORDER_FILL)
    assert order.dtype == np.int64 and order.shape == (len(requests),)
    assert np.array_equal(np.sort(order), np.arange(len(requests)))
    prio = requests.priority[order]
    assert (prio[:-1] >= prio[1:]).all(), "a lower priority came before a higher one"
    assert order.tolist() == naive_for(cluster, requests)[0]


@st.composite
def one_node_instances(draw):
    cluster_kwargs = draw(clusters(max_hosts=6, max_nodes=1, wide_nodes=1))
    return {"cluster": cluster_kwargs, "requests": draw(request_sets(cluster_kwargs, 16))}


@settings(max_examples=examples(80))
@given(inst=one_node_instances(), numa=st.sampled_from(MODES), node=st.sampled_from(NODE_CHOICES))
def test_first_fit_over_the_order_is_the_simulation_on_one_node_hosts(inst, numa, node, backend):
    """Each request's own NUMA mode too: on one node every mode's fit test is the totals'."""
    cluster, requests = build(inst)
    p = numasched.place(cluster, requests, policy="first-fit", order="fill", numa=numa,
                        node=node, backend=backend)
    check_invariants(cluster, requests, p)
    assert p.host.tolist() == naive_for(cluster, requests)[1]


@settings(max_examples=examples(60))
@given(inst=instances(max_requests=16))
def test_first_fit_over_the_order_is_the_simulation_under_none(inst, backend):
    """Mode none spreads over a host's nodes, so host totals decide fit on any host."""
    cluster, requests = build({**inst, "requests": {k: v for k, v in inst["requests"].items()
                                                    if k != "numa"}})
    p = numasched.place(cluster, requests, policy="vector-pack", numa="none", backend=backend)
    assert p.settings["order"] == "fill" and p.settings["score"] == "first-fit"
    check_invariants(cluster, requests, p)
    assert p.host.tolist() == naive_for(cluster, requests)[1]


@settings(max_examples=examples(100))
@given(inst=instances(), policy=st.sampled_from(POLICIES), numa=st.sampled_from(MODES),
       node=st.sampled_from(NODE_CHOICES))
def test_every_backend_gives_the_reference_placement(inst, policy, numa, node):
    cluster, requests = build(inst)
    kw = dict(policy=policy, numa=numa, node=node, order="fill")
    expected = numasched.place(cluster, requests, backend="reference", **kw)
    check_invariants(cluster, requests, expected)
    for backend in OTHER_BACKENDS:
        got = numasched.place(cluster, requests, backend=backend, **kw)
        assert_same_placement(got, expected, context=f"{backend} vs reference, {kw}: ")


def test_a_hand_worked_example():
    """Hosts of (10, 10); equal average demand, so wc = wm. Host 0 takes C (5, 5) (score 100
    against 80 for D and 60 for A, B), then D (4, 4) (40 against 30), and is closed at (1, 1);
    host 1 takes A (tie with B at 60, lower index), then B."""
    cluster = numasched.Cluster.uniform(3, 1, 10, 10)
    requests = numasched.Requests([5, 1, 5, 4], [1, 5, 5, 4])
    assert request_order(cluster, requests, codes.ORDER_FILL).tolist() == [2, 3, 0, 1]
    p = numasched.place(cluster, requests, policy="vector-pack")
    assert p.host.tolist() == [1, 1, 0, 0]
    # A higher priority is filled first, from host 0 again: B alone, then the rest.
    prio = numasched.Requests([5, 1, 5, 4], [1, 5, 5, 4], priority=[0, 1, 0, 0])
    assert request_order(cluster, prio, codes.ORDER_FILL).tolist() == [1, 2, 3, 0]
    # Pinned to an unschedulable host, or larger than every host: after the filled batches.
    stuck = numasched.Requests([5, 11, 5, 4], [1, 1, 5, 4], required_host=[2, -1, -1, -1])
    closed = cluster.with_free(cluster.free_cpu, cluster.free_mem, schedulable=[1, 1, 0])
    assert request_order(closed, stuck, codes.ORDER_FILL).tolist() == [2, 3, 0, 1]
    assert numasched.place(closed, stuck, policy="vector-pack").host.tolist() == [-1, -1, 0, 0]


def test_empty_inputs():
    empty = numasched.Requests(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64))
    one = numasched.Requests([1], [1])
    no_hosts = numasched.Cluster(np.zeros((0, 2), dtype=np.int64),
                                 np.zeros((0, 2), dtype=np.int64))
    two_hosts = numasched.Cluster.uniform(2, 2, 4, 4)
    assert request_order(two_hosts, empty, codes.ORDER_FILL).shape == (0,)
    assert request_order(no_hosts, one, codes.ORDER_FILL).tolist() == [0]
    placed = numasched.place(no_hosts, one, policy="vector-pack")
    assert placed.pending_reasons() == {"too-large": 1}


def test_names_codes_and_errors():
    assert codes.ORDER_FILL == 2 and codes.ORDERS["fill"] == codes.ORDER_FILL
    assert codes.resolve(codes.ORDERS, 2, "order") == codes.ORDER_FILL
    preset = policies.get("vector-pack")
    assert (preset.score, preset.order, preset.node) == ("first-fit", "fill", "pack")
    assert "vector-pack" in policies.names()
    cluster = numasched.Cluster.uniform(2, 1, 8, 8)
    requests = numasched.Requests([1, 2], [2, 1])
    with pytest.raises(ValueError, match=r"unknown order 'filled'; known: 'decreasing', 'given', "
                                         r"'fill'"):
        numasched.place(cluster, requests, order="filled")
    pinned = numasched.Requests([1], [1], required_host=[5])
    with pytest.raises(ValueError, match=r"required_host\[0\] = 5 is not a host index "
                                         r"\(the cluster has 2 hosts\)"):
        numasched.place(cluster, pinned, order="fill")
    with pytest.raises(ValueError, match="mem has length 1, expected 2"):
        fill_order([8], [8], [8], [8], [1], [1, 2], [1], [0, 0], [-1, -1])
    with pytest.raises(ValueError, match="cpu must be one-dimensional"):
        fill_order([8], [8], [8], [8], [1], [[1]], [1], [0], [-1])
