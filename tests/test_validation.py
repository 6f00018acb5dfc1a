"""Bad input raises ValueError naming the field, before anything is placed."""
from __future__ import annotations

import numpy as np
import pytest

import numasched
from numasched import codes

from conftest import BACKENDS, GiB, assert_same_placement

NAN, INF = float("nan"), float("inf")


def good_cluster(**kw):
    args = dict(node_cpu=[[16000, 16000], [8000, 8000]], node_mem=[[64 * GiB] * 2, [32 * GiB] * 2])
    args.update(kw)
    return numasched.Cluster(args.pop("node_cpu"), args.pop("node_mem"), args.pop("distance", None),
                             **args)


def good_requests(**kw):
    args = dict(cpu=[4000, 8000, 2000], mem=[8 * GiB, 16 * GiB, GiB])
    args.update(kw)
    return numasched.Requests(args.pop("cpu"), args.pop("mem"), **args)


# --------------------------------------------------------------------------------------------
# Requests
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("field", ["cpu", "mem"])
@pytest.mark.parametrize("value, message", [
    (0, ">= 1"),
    (-1, ">= 1"),
    (-4000, ">= 1"),
    (NAN, "finite"),
    (INF, "finite"),
    (-INF, "finite"),
    (1.5, "whole"),
    (4000.25, "whole"),
])
def test_bad_request_amounts(field, value, message):
    values = {"cpu": [4000, 8000, 2000], "mem": [8 * GiB, 16 * GiB, GiB]}
    values[field][1] = value
    with pytest.raises(ValueError, match=rf"\b{field}\b.*{message}"):
        numasched.Requests(values["cpu"], values["mem"])


@pytest.mark.parametrize("field", ["cpu", "mem"])
def test_bad_request_amounts_in_arrays(field):
    values = {"cpu": np.array([4000.0, 8000.0]), "mem": np.array([8.0, 16.0]) * GiB}
    values[field] = values[field].copy()
    values[field][0] = np.nan
    with pytest.raises(ValueError, match=rf"^{field} .*finite"):
        numasched.Requests(values["cpu"], values["mem"])
    values[field][0] = 0.5
    with pytest.raises(ValueError, match=rf"^{field} .*whole"):
        numasched.Requests(values["cpu"], values["mem"])


@pytest.mark.parametrize("field", ["cpu", "mem"])
def test_request_amounts_that_are_not_numbers(field):
    for bad in (["1", "2"], [1, None], [[1, 2]], 5, [True, False]):
        values = {"cpu": [1000, 2000], "mem": [GiB, GiB]}
        values[field] = bad
        with pytest.raises(ValueError, match=rf"^{field}\b"):
            numasched.Requests(values["cpu"], values["mem"])


def test_request_amount_limits():
    with pytest.raises(ValueError, match=r"^cpu .*<="):
        numasched.Requests([codes.MAX_REQUEST_AMOUNT + 1], [1])
    with pytest.raises(ValueError, match=r"^mem\b"):
        numasched.Requests([1], [2**64])
    # the limit itself is fine: a request larger than every host is pending, not an error
    r = numasched.Requests([codes.MAX_REQUEST_AMOUNT], [codes.MAX_REQUEST_AMOUNT])
    for backend in BACKENDS:
        p = numasched.place(good_cluster(), r, backend=backend)
        assert p.host.tolist() == [-1] and p.reason.tolist() == [codes.REASON_TOO_LARGE]


@pytest.mark.parametrize("field", ["mem", "priority", "vnuma", "numa", "required_host"])
@pytest.mark.parametrize("length", [2, 4, 0])
def test_mismatched_lengths(field, length):
    values = {"mem": [GiB] * length, "priority": [0] * length, "vnuma": [False] * length,
              "numa": ["none"] * length, "required_host": [-1] * length}
    with pytest.raises(ValueError, match=rf"^{field} has length {length}, but cpu has 3"):
        good_requests(**{field: values[field]})


def test_two_dimensional_requests():
    with pytest.raises(ValueError, match=r"^cpu must be 1-D"):
        numasched.Requests([[1000, 2000]], [[1, 2]])
    with pytest.raises(ValueError, match=r"^mem must be 1-D"):
        numasched.Requests([1000, 2000], [[1, 2]])
    with pytest.raises(ValueError, match=r"^priority must be 1-D"):
        good_requests(priority=[[0, 0, 0]])


def test_bad_optional_request_fields():
    with pytest.raises(ValueError, match=r"^vnuma must be <= 1"):
        good_requests(vnuma=[0, 2, 1])
    with pytest.raises(ValueError, match=r"^required_host must be >= -1"):
        good_requests(required_host=[-1, -2, 0])
    with pytest.raises(ValueError, match=r"^priority must be whole"):
        good_requests(priority=[0, 0.5, 1])
    with pytest.raises(ValueError, match=r"^priority .*finite"):
        good_requests(priority=[0, NAN, 1])
    with pytest.raises(ValueError, match=r"^required_host .*whole"):
        good_requests(required_host=[0, 0.5, 1])


@pytest.mark.parametrize("numa, match", [
    ("bogus", r"unknown numa mode 'bogus'; known: 'none', 'single-numa-node', 'restricted', "
              r"'best-effort'"),
    (["none", "restricted", "sngle-numa-node"], r"numa\[2\].*'sngle-numa-node'; known: 'none'"),
    (["none", 7, None], r"numa\[1\].*7; known: 'none'"),
    ([None, None, -2], r"numa\[2\].*-2; known: 'none'"),
])
def test_unknown_request_numa_modes(numa, match):
    with pytest.raises(ValueError, match=match):
        good_requests(numa=numa)


# --------------------------------------------------------------------------------------------
# Cluster
# --------------------------------------------------------------------------------------------
def test_cluster_wrong_dimensions():
    with pytest.raises(ValueError, match=r"^node_cpu must be 2-D"):
        numasched.Cluster([16000, 16000], [[GiB, GiB]])
    with pytest.raises(ValueError, match=r"^node_mem must be 2-D"):
        numasched.Cluster([[16000, 16000]], [GiB, GiB])
    with pytest.raises(ValueError, match=r"^node_mem has shape \(1, 3\), but node_cpu has \(1, 2\)"):
        numasched.Cluster([[16000, 16000]], [[GiB, GiB, GiB]])
    with pytest.raises(ValueError, match=r"K >= 1"):
        numasched.Cluster(np.zeros((2, 0), dtype=np.int64), np.zeros((2, 0), dtype=np.int64))


@pytest.mark.parametrize("distance, match", [
    ([10, 21], r"^distance must be 2-D or 3-D"),
    ([[10, 21, 21], [21, 10, 21], [21, 21, 10]], r"^distance must have shape \(2, 2\) or \(2, 2, 2\)"),
    ([[10]], r"^distance must have shape"),
    (np.full((3, 2, 2), 10), r"^distance must have shape .* got \(3, 2, 2\)"),
    ([[10, -21], [21, 10]], r"^distance must be >= 0"),
    ([[10, 21.5], [21, 10]], r"^distance must be whole"),
    ([[10, NAN], [21, 10]], r"^distance .*finite"),
])
def test_bad_distance(distance, match):
    with pytest.raises(ValueError, match=match):
        good_cluster(distance=distance)


def test_distance_shapes_that_are_accepted():
    one = [[10, 21], [21, 10]]
    per_host = [[[10, 21], [21, 10]], [[10, 32], [32, 10]]]
    assert good_cluster(distance=one).distance.shape in ((1, 2, 2), (2, 2))
    assert good_cluster(distance=per_host).distance.shape == (2, 2, 2)
    assert good_cluster(distance=[one]).distance.shape == (1, 2, 2)


def test_too_many_nodes():
    with pytest.raises(ValueError, match=r"^node_cpu has K = 65 .* at most 64"):
        numasched.Cluster(np.ones((2, 65), dtype=np.int64), np.ones((2, 65), dtype=np.int64))
    cluster = numasched.Cluster(np.ones((1, 64), dtype=np.int64), np.ones((1, 64), dtype=np.int64))
    assert cluster.nodes == 64


@pytest.mark.parametrize("field", ["node_cpu", "node_mem"])
@pytest.mark.parametrize("bad, match", [
    ([[-1, 16000]], ">= 0"),
    ([[NAN, 1]], "finite"),
    ([[INF, 1]], "finite"),
    ([[1.5, 1]], "whole"),
    ([[2**45, 1]], "<="),                        # above the per-node limit
    ([[2**44] * 4 + [1]], "host 0 sums to"),     # every node legal, the host above its limit
])
def test_bad_capacities(field, bad, match):
    args = {"node_cpu": [[1000] * len(bad[0])], "node_mem": [[GiB] * len(bad[0])]}
    args[field] = bad
    with pytest.raises(ValueError, match=rf"^{field}\b.*{match}"):
        numasched.Cluster(args["node_cpu"], args["node_mem"])


@pytest.mark.parametrize("field", ["free_cpu", "free_mem"])
def test_bad_free_state(field):
    cap = {"free_cpu": [[16000, 16000], [8000, 8000]],
           "free_mem": [[64 * GiB] * 2, [32 * GiB] * 2]}
    over = [row[:] for row in cap[field]]
    over[1][0] += 1
    with pytest.raises(ValueError, match=rf"^{field}\[1, 0\] = {over[1][0]} exceeds"):
        good_cluster(**{field: over})
    neg = [row[:] for row in cap[field]]
    neg[0][1] = -1
    with pytest.raises(ValueError, match=rf"^{field} must be >= 0"):
        good_cluster(**{field: neg})
    with pytest.raises(ValueError, match=rf"^{field} has shape \(1, 2\)"):
        good_cluster(**{field: cap[field][:1]})
    with pytest.raises(ValueError, match=rf"^{field} .*whole"):
        good_cluster(**{field: [[0.5, 0], [0, 0]]})


def test_free_on_an_absent_node():
    with pytest.raises(ValueError, match=r"^free_cpu\[0, 1\] = 1 exceeds the node's capacity 0"):
        numasched.Cluster([[1000, 0]], [[GiB, 0]], free_cpu=[[0, 1]])


def test_bad_schedulable():
    with pytest.raises(ValueError, match=r"^schedulable has length 3, but node_cpu has 2"):
        good_cluster(schedulable=[True, True, False])
    with pytest.raises(ValueError, match=r"^schedulable must be <= 1"):
        good_cluster(schedulable=[1, 2])
    with pytest.raises(ValueError, match=r"^schedulable must be 1-D"):
        good_cluster(schedulable=[[1, 1]])


def test_bad_uniform_cluster():
    for kw, field in ((dict(hosts=-1), "hosts"), (dict(nodes_per_host=0), "nodes_per_host"),
                      (dict(cpu_per_node=0), "cpu_per_node"), (dict(mem_per_node=1.5), "mem_per_node"),
                      (dict(cpu_per_node=True), "cpu_per_node")):
        args = dict(hosts=2, nodes_per_host=2, cpu_per_node=1000, mem_per_node=GiB)
        args.update(kw)
        with pytest.raises(ValueError, match=rf"^{field} must be a positive integer"):
            numasched.Cluster.uniform(**args)


# --------------------------------------------------------------------------------------------
# place()
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("keyword, value, match", [
    ("policy", "bogus", r"unknown policy 'bogus'; known: 'first-fit', 'best-fit', 'worst-fit', "
                        r"'balanced', 'dot-product'"),
    ("policy", "best_fit", r"known: 'first-fit'"),
    ("numa", "strict", r"unknown numa mode 'strict'; known: 'none', 'single-numa-node', "
                       r"'restricted', 'best-effort'"),
    ("numa", None, r"unknown numa mode None; known: 'none'"),
    ("order", "increasing", r"unknown order 'increasing'; known: 'decreasing', 'given'"),
    ("node", "scatter", r"unknown node choice 'scatter'; known: 'pack', 'spread'"),
    ("backend", "fortran", r"unknown backend 'fortran'; known: 'auto', .*'reference'"),
    ("backend", "", r"unknown backend ''; known: 'auto'"),
])
def test_unknown_names(keyword, value, match):
    cluster, requests = good_cluster(), good_requests()
    free_c, free_m = cluster.free_cpu.copy(), cluster.free_mem.copy()
    with pytest.raises(ValueError, match=match):
        numasched.place(cluster, requests, **{keyword: value})
    assert np.array_equal(cluster.free_cpu, free_c) and np.array_equal(cluster.free_mem, free_m)


@pytest.mark.parametrize("backend", BACKENDS)
def test_required_host_out_of_range(backend):
    cluster = good_cluster(free_cpu=[[16000, 1000], [8000, 8000]])
    requests = good_requests(required_host=[-1, 2, 0])
    free_c, free_m = cluster.free_cpu.copy(), cluster.free_mem.copy()
    with pytest.raises(ValueError, match=r"^required_host\[1\] = 2 is not a host index"):
        numasched.place(cluster, requests, backend=backend)
    # nothing was placed or changed: the same cluster still gives a fresh placement
    assert np.array_equal(cluster.free_cpu, free_c) and np.array_equal(cluster.free_mem, free_m)
    fixed = good_requests(required_host=[-1, 1, 0])
    fresh = good_cluster(free_cpu=[[16000, 1000], [8000, 8000]])
    assert_same_placement(numasched.place(cluster, fixed, backend=backend),
                          numasched.place(fresh, fixed, backend=backend))


def test_required_host_on_a_cluster_without_hosts():
    empty = numasched.Cluster(np.zeros((0, 2), dtype=np.int64), np.zeros((0, 2), dtype=np.int64))
    with pytest.raises(ValueError, match=r"^required_host\[0\] = 0"):
        numasched.place(empty, numasched.Requests([1], [1], required_host=[0]))


def test_place_needs_cluster_and_requests():
    with pytest.raises(ValueError, match=r"^cluster must be a numasched.Cluster"):
        numasched.place({"node_cpu": [[1]]}, good_requests())
    with pytest.raises(ValueError, match=r"^requests must be a numasched.Requests"):
        numasched.place(good_cluster(), ([1], [1]))


def test_failed_place_changes_nothing():
    cluster = good_cluster(free_cpu=[[10000, 16000], [8000, 0]])
    requests = good_requests()
    before = numasched.place(cluster, requests)
    snapshot = {n: getattr(cluster, n).copy() for n in ("free_cpu", "free_mem", "node_cpu",
                                                         "node_mem", "schedulable", "distance")}
    for bad in (dict(policy="x"), dict(numa="x"), dict(order="x"), dict(node="x"),
                dict(backend="x")):
        with pytest.raises(ValueError):
            numasched.place(cluster, requests, **bad)
        for name, value in snapshot.items():
            assert np.array_equal(getattr(cluster, name), value), name
    assert_same_placement(numasched.place(cluster, requests), before)


# --------------------------------------------------------------------------------------------
# Per-request NUMA overrides that are neither a name, a code, -1 nor None. Every other field
# refuses non-whole floats, NaN and booleans with a ValueError naming the field, and
# codes.resolve() refuses booleans as codes; the numa override must do the same instead of
# truncating the value with int().
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [1.5, NAN, True], ids=["non-whole", "nan", "bool"])
def test_bad_numa_override_values_are_refused_naming_the_field(bad):
    with pytest.raises(ValueError, match=r"numa"):
        good_requests(numa=[None, bad, "none"])


def test_scalar_numa_code_is_accepted_or_refused_with_a_value_error():
    """A scalar code is either taken as every request's mode (like a scalar name) or refused
    with a ValueError naming the field; it must not escape as a TypeError."""
    try:
        r = good_requests(numa=codes.MODE_RESTRICTED)
    except ValueError as exc:
        assert "numa" in str(exc)
    else:
        assert (r.numa == codes.MODE_RESTRICTED).all()
