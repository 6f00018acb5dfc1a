"""Determinism, equivalent input types, and inputs that are never modified."""
from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given, settings

import numasched
from numasched import codes

from conftest import (
    GiB,
    RESULT_FIELDS,
    assert_same_placement,
    build,
    check_invariants,
    examples,
    instances,
    place_settings,
)

INT_FIELDS_CLUSTER = ("node_cpu", "node_mem", "distance", "free_cpu", "free_mem")
INT_FIELDS_REQUESTS = ("cpu", "mem", "priority", "required_host")


def _convert(instance: dict, how: str) -> dict:
    """The same instance with every array field as lists, int64 arrays or whole float arrays."""
    def conv(value):
        if not isinstance(value, np.ndarray):
            return value
        if how == "list":
            # a [0, K] array has no list form that keeps K: keep the array
            return value if 0 in value.shape else value.tolist()
        if how == "float" and value.dtype != bool:
            return value.astype(np.float64)
        return np.ascontiguousarray(value)

    out = {"cluster": {}, "requests": {}}
    for part in ("cluster", "requests"):
        for key, value in instance[part].items():
            if how == "float" and key in ("node_cpu", "node_mem", "free_cpu", "free_mem", "cpu",
                                          "mem") and isinstance(value, np.ndarray) \
                    and value.size and value.max() >= 2**53:
                out[part][key] = value  # not exactly representable as float64: keep
            else:
                out[part][key] = conv(value)
    return out


@settings(max_examples=examples(60))
@given(inst=instances(), kw=place_settings)
def test_same_call_twice_is_identical(inst, kw, backend):
    cluster, requests = build(inst)
    a = numasched.place(cluster, requests, backend=backend, **kw)
    b = numasched.place(cluster, requests, backend=backend, **kw)
    assert_same_placement(a, b)
    # and an independently built copy of the same inputs
    cluster2, requests2 = build(copy.deepcopy(inst))
    c = numasched.place(cluster2, requests2, backend=backend, **kw)
    assert_same_placement(a, c)


@settings(max_examples=examples(60))
@given(inst=instances(), kw=place_settings)
def test_lists_arrays_and_whole_floats_give_the_same_placement(inst, kw, backend):
    results = []
    for how in ("array", "list", "float"):
        cluster, requests = build(_convert(inst, how))
        results.append(numasched.place(cluster, requests, backend=backend, **kw))
    assert_same_placement(results[0], results[1], "lists: ")
    assert_same_placement(results[0], results[2], "floats: ")


def test_auto_backend_is_the_first_available():
    cluster = numasched.Cluster.uniform(2, 2, 8000, 16 * GiB)
    requests = numasched.Requests([1000, 9000], [GiB, 3 * GiB])
    auto = numasched.place(cluster, requests, backend="auto")
    assert auto.settings["backend"] == numasched.available_backends()[0]
    default = numasched.place(cluster, requests)
    assert_same_placement(auto, default)
    assert default.settings.items() >= {"policy": "best-fit", "numa": "restricted", "order": "decreasing",
                                          "node": "pack",
                                          "backend": numasched.available_backends()[0]}.items()


# --------------------------------------------------------------------------------------------
# Inputs are never modified.
# --------------------------------------------------------------------------------------------
def _inputs(small_dtypes: bool = True):
    """C-contiguous arrays already of the dtype the wrapper stores (``small_dtypes``: uint8
    schedulable and vnuma, int32 required_host), or int64 throughout: either way a lazy wrapper
    could be tempted to keep the caller's object instead of copying it."""
    node_cpu = np.ascontiguousarray([[16000, 16000, 0], [8000, 8000, 8000], [32000, 0, 32000]],
                                    dtype=np.int64)
    node_mem = np.ascontiguousarray([[64, 64, 0], [32, 32, 32], [128, 0, 128]],
                                    dtype=np.int64) * GiB
    distance = np.ascontiguousarray([[10, 21, 31], [21, 10, 21], [31, 21, 10]], dtype=np.int64)
    free_cpu = node_cpu.copy()
    free_cpu[1, 1] = 0
    free_mem = node_mem.copy()
    free_mem[2, 0] = GiB
    flag_dtype = np.uint8 if small_dtypes else np.int64
    schedulable = np.ascontiguousarray([1, 1, 1], dtype=flag_dtype)
    cpu = np.ascontiguousarray([4000, 24000, 1000, 50000, 7000, 16000], dtype=np.int64)
    mem = np.ascontiguousarray([8, 80, 1, 8, 30, 200], dtype=np.int64) * GiB
    priority = np.ascontiguousarray([0, 1, 0, 2, 0, -1], dtype=np.int64)
    required_host = np.ascontiguousarray([-1, -1, 1, -1, 2, -1],
                                         dtype=np.int32 if small_dtypes else np.int64)
    vnuma = np.ascontiguousarray([0, 1, 0, 1, 0, 0], dtype=flag_dtype)
    cluster_kw = dict(node_cpu=node_cpu, node_mem=node_mem, distance=distance,
                      schedulable=schedulable, free_cpu=free_cpu, free_mem=free_mem)
    requests_kw = dict(cpu=cpu, mem=mem, priority=priority, required_host=required_host,
                       vnuma=vnuma)
    for arr in (*cluster_kw.values(), *requests_kw.values()):
        assert arr.flags.c_contiguous
    return cluster_kw, requests_kw


def _snapshot(obj, names):
    return {name: (getattr(obj, name) if not isinstance(obj, dict) else obj[name]).copy()
            for name in names}


def _assert_unchanged(objects: dict, copies: dict, where: str):
    for name, arr in objects.items():
        assert np.array_equal(arr, copies[name]), f"{name} changed by {where}"
        assert arr.dtype == copies[name].dtype and arr.shape == copies[name].shape, name


@pytest.mark.parametrize("small_dtypes", [True, False], ids=["stored-dtypes", "int64"])
def test_caller_arrays_are_never_modified(backend, small_dtypes):
    cluster_kw, requests_kw = _inputs(small_dtypes)
    passed = {**cluster_kw, **requests_kw}  # the exact objects handed over
    before = {name: arr.copy() for name, arr in passed.items()}
    flags = {name: arr.flags.writeable for name, arr in passed.items()}

    cluster = numasched.Cluster(cluster_kw["node_cpu"], cluster_kw["node_mem"],
                                cluster_kw["distance"], schedulable=cluster_kw["schedulable"],
                                free_cpu=cluster_kw["free_cpu"], free_mem=cluster_kw["free_mem"])
    _assert_unchanged(passed, before, "Cluster()")
    requests = numasched.Requests(**requests_kw)
    _assert_unchanged(passed, before, "Requests()")

    # The wrapper copies: no internal array shares memory with a caller's array.
    for name in ("node_cpu", "node_mem", "distance", "schedulable", "free_cpu", "free_mem"):
        assert not np.shares_memory(getattr(cluster, name), cluster_kw[name]), name
    for name in ("cpu", "mem", "priority", "required_host", "vnuma"):
        assert not np.shares_memory(getattr(requests, name), requests_kw[name]), name

    cluster_names = ("node_cpu", "node_mem", "distance", "schedulable", "free_cpu", "free_mem",
                     "present")
    request_names = ("cpu", "mem", "numa", "vnuma", "priority", "required_host")
    cluster_before = _snapshot(cluster, cluster_names)
    requests_before = _snapshot(requests, request_names)

    for kw in ({}, {"numa": "none"}, {"numa": "best-effort", "policy": "worst-fit"},
               {"numa": "single-numa-node", "order": "given", "node": "spread"}):
        p = numasched.place(cluster, requests, backend=backend, **kw)
        assert (p.host >= 0).any() and (p.host < 0).any()  # it did place something, not all
        s = p.summary()
        assert s["placed"] > 0
        p.cluster_after()
        _assert_unchanged(passed, before, f"place({kw})/summary()")
        _assert_unchanged({n: getattr(cluster, n) for n in cluster_names}, cluster_before,
                          f"place({kw}) [Cluster internals]")
        _assert_unchanged({n: getattr(requests, n) for n in request_names}, requests_before,
                          f"place({kw}) [Requests internals]")
        # results do not alias the cluster's state
        assert not np.shares_memory(p.free_cpu, cluster.free_cpu)
        assert not np.shares_memory(p.free_mem, cluster.free_mem)
        assert not np.array_equal(p.free_cpu, cluster.free_cpu)
    assert all(passed[name].flags.writeable == flags[name] for name in passed)


@settings(max_examples=examples(40))
@given(inst=instances(), kw=place_settings)
def test_random_inputs_are_never_modified(inst, kw, backend):
    before = copy.deepcopy(inst)
    cluster, requests = build(inst)
    state = {n: getattr(cluster, n).copy() for n in ("node_cpu", "node_mem", "distance",
                                                      "schedulable", "free_cpu", "free_mem")}
    state.update({n: getattr(requests, n).copy() for n in ("cpu", "mem", "numa", "vnuma",
                                                           "priority", "required_host")})
    p = numasched.place(cluster, requests, backend=backend, **kw)
    p.summary()
    for part in ("cluster", "requests"):
        for key, value in before[part].items():
            if isinstance(value, np.ndarray):
                assert np.array_equal(inst[part][key], value), key
            else:
                assert inst[part][key] == value, key
    for name, value in state.items():
        obj = cluster if hasattr(cluster, name) else requests
        assert np.array_equal(getattr(obj, name), value), name


def test_internal_arrays_are_read_only():
    cluster_kw, requests_kw = _inputs()
    cluster = numasched.Cluster(**cluster_kw)
    requests = numasched.Requests(**requests_kw)
    p = numasched.place(cluster, requests)
    for obj, names in ((cluster, ("node_cpu", "node_mem", "free_cpu", "free_mem", "distance")),
                       (requests, ("cpu", "mem")), (p, RESULT_FIELDS)):
        for name in names:
            assert not getattr(obj, name).flags.writeable, name
    check_invariants(cluster, requests, p)


def test_numa_overrides_by_name_code_and_none_agree():
    cluster = numasched.Cluster.uniform(3, 2, 16000, 64 * GiB)
    cpu, mem = [20000, 4000, 12000, 30000], [8 * GiB, 70 * GiB, 8 * GiB, 8 * GiB]
    names = ["none", "single-numa-node", None, "best-effort"]
    codes_ = [codes.MODE_NONE, codes.MODE_SINGLE, codes.MODE_DEFAULT, codes.MODE_BEST_EFFORT]
    arr = np.array(codes_, dtype=np.int8)
    a = numasched.place(cluster, numasched.Requests(cpu, mem, numa=names), numa="restricted")
    b = numasched.place(cluster, numasched.Requests(cpu, mem, numa=codes_), numa="restricted")
    c = numasched.place(cluster, numasched.Requests(cpu, mem, numa=arr), numa="restricted")
    assert_same_placement(a, b)
    assert_same_placement(a, c)
    assert a.modes.tolist() == [codes.MODE_NONE, codes.MODE_SINGLE, codes.MODE_RESTRICTED,
                                codes.MODE_BEST_EFFORT]
    # the single-numa-node override makes request 1 (70 GiB > any node) too large
    assert a.reason[1] == codes.REASON_TOO_LARGE
    # a call-wide mode on Requests applies to every request
    d = numasched.place(cluster, numasched.Requests(cpu, mem, numa="single-numa-node"),
                        numa="none")
    assert (d.modes == codes.MODE_SINGLE).all()
