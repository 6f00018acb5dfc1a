"""The desired-state controller: eventual consistency, one kernel call, quotas, host lifecycle."""
from __future__ import annotations


import pytest

import numasched
from numasched import codes
from numasched.control import Controller, NotFound, QuotaExceeded, ReconcileResult
from numasched.control import controller as controller_module

from test_control_statemachine import check_controller

BACKEND = "cython" if "cython" in numasched.available_backends() else "reference"
GiB = 2**30
NODE = ("8", "32Gi")  # 8 cores, 32 GiB per NUMA node


def new(**kwargs) -> Controller:
    return Controller(backend=BACKEND, **kwargs)


def pod(name, cpu="1", memory="1Gi", *, namespace=None, numa=None, priority=None):
    meta = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if numa:
        meta["annotations"] = {"numasched.io/numa": numa}
    spec = {"containers": [{"name": "app", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]}
    if priority is not None:
        spec["priority"] = priority
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def deployment(name, replicas, cpu="4", memory="8Gi", *, namespace=None, priority=None):
    meta = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    template = pod("x", cpu, memory, priority=priority)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
            "spec": {"replicas": replicas, "template": {"spec": template["spec"]}}}


def vm(name, sockets=1, cores=2, memory="4Gi", *, vnuma=False, namespace=None):
    cpu = {"sockets": sockets, "cores": cores}
    if vnuma:
        cpu["numa"] = {"guestMappingPassthrough": {}}
    meta = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": meta,
            "spec": {"running": True, "template": {"spec": {"domain": {
                "cpu": cpu, "memory": {"guest": memory}}}}}}


def phases(c: Controller, kind="Pod", namespace=None) -> dict[str, str]:
    return {p["metadata"]["name"]: p["status"]["phase"] for p in c.list(kind, namespace)}


def snapshot(c: Controller):
    """Everything a user can observe, to prove a refused call changed nothing."""
    kinds = ("Namespace", "ResourceQuota", "Pod", "Deployment", "VirtualMachine", "Host", "Event")
    return {k: c.list(k) for k in kinds}, c._store.rv, c.audit()


# ------------------------------------------------------------------------------------------
# Eventual consistency
# ------------------------------------------------------------------------------------------
def test_five_replicas_four_fit_then_a_new_host_runs_the_fifth():
    c = new()
    c.ops.add_host("h1", nodes=[NODE, NODE])          # room for 4 replicas of 4 cores
    c.apply(deployment("web", 5))
    assert set(phases(c).values()) == {"Pending"}     # nothing runs before a reconcile
    r = c.reconcile()
    assert isinstance(r, ReconcileResult)
    assert r.count("placed") == 4 and r.kernel_calls == 1
    assert r.pending == {("Pod", "default", "web-4"): "insufficient-cpu"}
    assert r.pending_by_reason == {"insufficient-cpu": 1}
    assert phases(c) == {"web-0": "Running", "web-1": "Running", "web-2": "Running",
                         "web-3": "Running", "web-4": "Pending"}
    status = c.get("Pod", "default", "web-4")["status"]
    assert status == {**status, "phase": "Pending", "host": None, "nodes": [],
                      "reason": "insufficient-cpu",
                      "message": codes.REASON_MESSAGES[codes.REASON_NO_CPU]}
    view = c.get("Deployment", "default", "web")
    dep = view["status"]
    assert (dep["replicas"], dep["runningReplicas"], dep["pendingReplicas"]) == (5, 4, 1)
    rv = int(view["metadata"]["resourceVersion"])
    assert dep["pendingByReason"] == {"insufficient-cpu": 1}
    # a reconcile with nothing new changes nothing and places nothing twice
    again = c.reconcile()
    assert not again.changed and again.count("placed") == 0
    c.ops.add_host("h2", nodes=[NODE, NODE])
    r = c.reconcile()
    assert r.placed == [("Pod", "default", "web-4")]
    assert set(phases(c).values()) == {"Running"}
    assert c.get("Pod", "default", "web-4")["status"]["host"] == "h2"
    assert int(c.get("Deployment", "default", "web")["metadata"]["resourceVersion"]) > rv
    # the events tell the story per Deployment
    messages = [(e.reason, e.message) for e in c.events(kind="Deployment", name="web")]
    assert ("Scheduled", "4 replicas scheduled") in messages
    assert ("FailedScheduling", "1 replica Pending: insufficient-cpu: "
            + codes.REASON_MESSAGES[codes.REASON_NO_CPU]) in messages
    assert ("Scheduled", "1 replica scheduled") in messages
    check_controller(c)


def test_run_loops_until_nothing_changes():
    c = new()
    c.ops.add_host("h1", nodes=[NODE])
    c.apply([pod("a", "4"), pod("b", "4"), pod("c", "4")])
    results = c.run(max_rounds=5)
    assert [r.count("placed") for r in results] == [2, 0]
    assert not results[-1].changed
    with pytest.raises(ValueError, match="max_rounds must be a positive integer"):
        c.run(max_rounds=0)


def test_every_reconcile_makes_one_kernel_call_in_priority_then_creation_order(monkeypatch):
    calls = []

    def spy(cluster, requests, **kwargs):
        calls.append((requests, kwargs))
        return numasched.place(cluster, requests, **kwargs)

    monkeypatch.setattr(controller_module, "place", spy)
    c = new()
    c.ops.add_host("h1", nodes=[NODE])
    c.apply([pod("low", "1", priority=0), pod("high", "2", priority=10),
             deployment("mid", 3, cpu="3", priority=5), pod("low2", "4", priority=0)])
    c.reconcile()
    assert len(calls) == 1
    requests, kwargs = calls[0]
    assert kwargs["order"] == "given" and kwargs["policy"] == "best-fit"
    # priority 10, then the three priority-5 replicas, then priority 0 in creation order
    assert requests.cpu.tolist() == [2000, 3000, 3000, 3000, 1000, 4000]
    # 8 cores: high (2) + two replicas (6) fit; the rest waits although "low" would fit alone
    assert phases(c) == {"low": "Pending", "high": "Running", "mid-0": "Running",
                         "mid-1": "Running", "mid-2": "Pending", "low2": "Pending"}
    calls.clear()
    c.reconcile()
    assert len(calls) == 1 and len(calls[0][0]) == 3   # only the pending work is sent again
    calls.clear()
    c.delete("Pod", "default", "high")
    c.delete("Pod", "default", "mid-0")   # a replica: the Deployment replaces it
    c.reconcile()
    assert len(calls) == 1
    check_controller(c)


def test_deletion_frees_capacity_for_pending_work():
    c = new()
    c.ops.add_host("h1", nodes=[NODE])
    c.apply([pod("big", "6"), pod("waiting", "4")])
    c.reconcile()
    assert phases(c) == {"big": "Running", "waiting": "Pending"}
    c.delete("Pod", "default", "big")
    with pytest.raises(NotFound, match="Pod default/big not found"):
        c.get("Pod", "default", "big")
    host = c.get("Host", None, "h1")["status"]
    assert host["terminating"] == 1                   # its capacity is held until reconcile
    r = c.reconcile()
    assert r.released == [("Pod", "default", "big")]
    assert r.placed == [("Pod", "default", "waiting")]
    assert c.get("Host", None, "h1")["status"]["terminating"] == 0
    check_controller(c)


def test_deleting_a_deployment_releases_all_replicas():
    c = new()
    c.ops.add_host("h1", nodes=[NODE, NODE])
    c.apply([deployment("a", 4), pod("later", "8")])
    c.reconcile()
    assert phases(c)["later"] == "Pending"
    c.delete("Deployment", "default", "a")
    assert phases(c) == {"later": "Pending"}
    r = c.reconcile()
    assert sorted(r.released) == [("Pod", "default", f"a-{i}") for i in range(4)]
    assert phases(c) == {"later": "Running"}
    check_controller(c)


# ------------------------------------------------------------------------------------------
# Quotas
# ------------------------------------------------------------------------------------------
def test_quota_refuses_a_pod_with_the_exact_message_and_stores_nothing():
    c = new()
    c.ops.add_host("h1", nodes=[NODE, NODE])
    c.ops.create_namespace("team-a", quota={"cpu": "4", "memory": "8Gi", "count": 3})
    c.apply(pod("one", "3", "2Gi", namespace="team-a"))
    before = snapshot(c)
    with pytest.raises(QuotaExceeded) as info:
        c.apply(pod("two", "2", "1Gi", namespace="team-a"))
    assert str(info.value) == (
        "Pod team-a/two: exceeded quota of namespace 'team-a' (operator quota), "
        "requested: requests.cpu=2, used: requests.cpu=3, limited: requests.cpu=4")
    assert isinstance(info.value, ValueError)
    e = info.value
    assert (e.namespace, e.resource, e.requested, e.used, e.limit) == ("team-a", "cpu", 2000, 3000, 4000)
    assert snapshot(c) == before
    # every exceeded resource is named
    with pytest.raises(QuotaExceeded, match=r"requested: requests\.cpu=2,requests\.memory=7Gi, "
                                            r"used: requests\.cpu=3,requests\.memory=2Gi, "
                                            r"limited: requests\.cpu=4,requests\.memory=8Gi$"):
        c.apply(pod("three", "2", "7Gi", namespace="team-a"))
    c.apply(pod("small", "1", "1Gi", namespace="team-a"))   # cpu: 4 of 4 used
    c.ops.set_quota("team-a", cpu="10", memory="10Gi", count=2)
    with pytest.raises(QuotaExceeded, match=r"requested: count=1, used: count=2, limited: count=2$"):
        c.apply(pod("third", "1", "1Gi", namespace="team-a"))
    ns = c.get("Namespace", None, "team-a")["status"]
    assert ns["used"] == {"requests.cpu": 4000, "requests.memory": 3 * GiB, "count": 2}
    assert ns["hard"] == {"requests.cpu": 10_000, "requests.memory": 10 * GiB, "count": 2}
    check_controller(c)


def test_create_namespace_takes_quota_names_of_either_plane_and_refuses_others():
    c = new()
    c.ops.create_namespace("a", quota={"requests.cpu": "2", "requests.memory": "1Gi", "pods": 3})
    assert c.get("Namespace", None, "a")["status"]["hard"] == {
        "requests.cpu": 2000, "requests.memory": GiB, "count": 3}
    before = snapshot(c)
    for quota, match in [({"gpu": 1}, r"^quota: unknown resource 'gpu'; known: requests\.cpu"),
                         ({"cpu": 1, "requests.cpu": 2}, r"^quota: cpu is limited twice"),
                         ({"memory": "-1Gi"}, r"^quota memory: quantity must not be negative")]:
        with pytest.raises(ValueError, match=match):
            c.ops.create_namespace("b", quota=quota)
    with pytest.raises(ValueError, match=r"^name: namespace 'a' already exists"):
        c.ops.create_namespace("a")
    with pytest.raises(ValueError, match=r"unknown numa mode 'strict'"):
        c.ops.create_namespace("b", numa="strict")
    with pytest.raises(NotFound, match=r"namespace 'nope' not found"):
        c.ops.set_quota("nope", cpu="1")
    assert snapshot(c) == before


def test_resource_quota_objects_and_the_operator_quota_combine():
    c = new()
    c.ops.create_namespace("team-a", quota={"cpu": 10_000})     # ints are millicores
    c.apply({"kind": "ResourceQuota", "metadata": {"name": "compute", "namespace": "team-a"},
             "spec": {"hard": {"requests.cpu": "2", "requests.memory": "4Gi"}}})
    with pytest.raises(QuotaExceeded, match=r"\(ResourceQuota 'compute'\), requested: requests\.cpu=3"):
        c.apply(pod("p", "3", namespace="team-a"))
    quota = c.get("ResourceQuota", "team-a", "compute")
    assert quota["status"] == {"hard": {"requests.cpu": "2", "requests.memory": "4Gi"},
                               "used": {"requests.cpu": "0", "requests.memory": "0"}}
    c.delete("ResourceQuota", "team-a", "compute")
    c.apply(pod("p", "3", namespace="team-a"))
    with pytest.raises(QuotaExceeded, match=r"\(operator quota\)"):
        c.apply(pod("q", "8", namespace="team-a"))


def test_deployment_creates_only_the_replicas_quota_allows_and_says_why():
    c = new()
    c.ops.add_host("h1", nodes=[NODE, NODE])
    c.ops.create_namespace("team-a", quota={"cpu": "10"})
    c.apply(deployment("api", 4, cpu="3", namespace="team-a"))
    assert sorted(phases(c, namespace="team-a")) == ["api-0", "api-1", "api-2"]
    status = c.get("Deployment", "team-a", "api")["status"]
    assert (status["replicas"], status["desiredReplicas"], status["reason"]) == (3, 4, "QuotaExceeded")
    assert status["message"] == ("created 3 of 4 replicas: exceeded quota of namespace 'team-a' "
                                 "(operator quota), requested: requests.cpu=3, used: "
                                 "requests.cpu=9, limited: requests.cpu=10")
    warnings = [e for e in c.events(namespace="team-a") if e.reason == "QuotaExceeded"]
    assert [e.message for e in warnings] == [status["message"]]
    c.reconcile()
    c.ops.set_quota("team-a", cpu="12")
    r = c.reconcile()
    assert r.created == [("Pod", "team-a", "api-3")]
    assert ("Pod", "team-a", "api-3") in r.placed
    status = c.get("Deployment", "team-a", "api")["status"]
    assert (status["replicas"], status["runningReplicas"], status["reason"]) == (4, 4, None)
    assert status["message"] == "4 of 4 replicas Running"
    check_controller(c)


def test_a_pod_without_requests_is_refused_only_where_quota_limits_requests():
    c = new()
    c.ops.add_host("h1", nodes=[NODE])
    c.ops.create_namespace("limited", quota={"memory": "1Gi"})
    empty = {"kind": "Pod", "metadata": {"name": "best-effort", "namespace": "limited"},
             "spec": {"containers": [{"name": "app"}]}}
    before = snapshot(c)
    with pytest.raises(ValueError, match=r"^spec\.containers\[\*\]\.resources\.requests\.memory: "
                                         r"required, because namespace 'limited' has a quota on "
                                         r"requests\.memory"):
        c.apply(empty)
    assert snapshot(c) == before
    empty["metadata"]["namespace"] = "default"
    c.apply(empty)
    c.reconcile()
    status = c.get("Pod", "default", "best-effort")["status"]
    assert status["phase"] == "Running" and status["requests"] == {"cpu": 0, "memory": 0}
    check_controller(c)


# ------------------------------------------------------------------------------------------
# Host lifecycle
# ------------------------------------------------------------------------------------------
def test_failed_host_workloads_become_pending_and_are_replaced_elsewhere():
    c = new()
    c.ops.add_host("h1", nodes=[NODE, NODE])
    c.apply(deployment("web", 4))
    c.reconcile()
    assert {p["status"]["host"] for p in c.list("Pod")} == {"h1"}
    c.ops.fail_host("h1")
    r = c.reconcile()
    assert sorted(r.evicted) == [("Pod", "default", f"web-{i}") for i in range(4)]
    assert set(phases(c).values()) == {"Pending"}
    assert r.pending_by_reason == {"insufficient-cpu": 4}   # no ready host has any CPU
    assert c.get("Host", None, "h1")["status"]["state"] == "failed"
    c.ops.add_host("h2", nodes=[NODE, NODE, NODE])
    r = c.reconcile()
    assert r.count("placed") == 4
    assert {p["status"]["host"] for p in c.list("Pod")} == {"h2"}
    assert any(e.reason == "Evicted" and e.kind == "Host" and e.name == "h1" for e in c.events())
    c.ops.recover_host("h1")
    assert not c.reconcile().changed                         # running work stays where it is
    check_controller(c)


def test_maintenance_moves_workloads_off_in_the_same_reconcile_where_they_fit():
    c = new()
    c.ops.add_host("h1", nodes=[NODE])
    c.apply([pod("a", "3"), pod("b", "3")])
    c.reconcile()
    c.ops.add_host("h2", nodes=[("4", "32Gi")])
    c.ops.enter_maintenance("h1")
    r = c.reconcile()
    assert sorted(r.evicted) == [("Pod", "default", "a"), ("Pod", "default", "b")]
    assert r.placed == [("Pod", "default", "a")]             # re-placed in the same round
    assert phases(c) == {"a": "Running", "b": "Pending"}
    assert c.get("Pod", "default", "a")["status"]["host"] == "h2"
    c.apply(pod("c", "2"))                                   # h2 has 1 core left
    c.reconcile()
    assert c.get("Pod", "default", "c")["status"]["phase"] == "Pending"  # h1 takes no new work
    assert c.get("Host", None, "h1")["status"]["workloads"] == 0
    c.ops.exit_maintenance("h1")
    c.reconcile()
    assert phases(c) == {"a": "Running", "b": "Running", "c": "Running"}
    assert {c.get("Pod", "default", n)["status"]["host"] for n in "bc"} == {"h1"}
    check_controller(c)


def test_host_state_transitions_are_checked():
    c = new()
    c.ops.add_host("h1", nodes=[NODE])
    c.ops.fail_host("h1")
    with pytest.raises(ValueError, match="host 'h1' is failed; cannot enter maintenance"):
        c.ops.enter_maintenance("h1")
    with pytest.raises(ValueError, match="host 'h1' is failed; cannot exit maintenance"):
        c.ops.exit_maintenance("h1")
    c.ops.recover_host("h1")
    with pytest.raises(NotFound, match="Host 'nope' not found"):
        c.ops.fail_host("nope")
    with pytest.raises(ValueError, match="name: host 'h1' already exists"):
        c.ops.add_host("h1", nodes=[NODE])


def test_removing_a_host_keeps_other_bindings_and_the_name_can_return():
    c = new()
    for h in ("h1", "h2", "h3"):
        c.ops.add_host(h, nodes=[NODE, NODE])
    c.apply([pod(f"p{i}", "6") for i in range(6)])
    c.reconcile()
    where = {p["metadata"]["name"]: p["status"]["host"] for p in c.list("Pod")}
    c.ops.remove_host("h2")
    for name, h in where.items():   # its workloads are Pending at once: the host is gone
        if h == "h2":
            s = c.get("Pod", "default", name)["status"]
            assert (s["phase"], s["host"], s["reason"]) == ("Pending", None, "not-yet-reconciled")
    r = c.reconcile()
    assert sorted(r.evicted) == sorted(("Pod", "default", n) for n, h in where.items() if h == "h2")
    after = {p["metadata"]["name"]: p["status"]["host"] for p in c.list("Pod")}
    assert all(after[n] == h for n, h in where.items() if h != "h2")
    assert [h["metadata"]["name"] for h in c.list("Host")] == ["h1", "h3"]
    c.ops.add_host("h2", nodes=[NODE, NODE])
    c.reconcile()
    assert set(phases(c).values()) == {"Running"}
    _, names = c.cluster()
    assert names == ["h1", "h3", "h2"]
    check_controller(c)


def test_hosts_with_more_nodes_widen_the_pool_without_moving_bindings():
    c = new()
    c.ops.add_host("small", nodes=[NODE])
    c.apply(pod("a", "6"))
    c.reconcile()
    c.ops.add_host("wide", nodes=[NODE] * 4, distance=[[10, 12, 21, 21], [12, 10, 21, 21],
                                                       [21, 21, 10, 12], [21, 21, 12, 10]])
    c.apply(vm("db", sockets=2, cores=6, memory="40Gi", vnuma=True))
    c.reconcile()
    status = c.get("VirtualMachine", "default", "db")["status"]
    assert status["host"] == "wide" and status["nodes"] == [0, 1] and status["vnuma"]
    assert [a["cpu"] for a in status["allocated"]] == [6000, 6000]
    assert c.get("Pod", "default", "a")["status"]["allocated"] == [
        {"node": 0, "cpu": 6000, "memory": GiB}]
    cluster, names = c.cluster()
    assert cluster.nodes == 4 and names == ["small", "wide"]
    check_controller(c)


@pytest.mark.parametrize("kwargs, match", [
    ({"name": "H1", "nodes": [NODE]}, r"^name: must be a DNS-1123 name"),
    ({"name": "h", "nodes": []}, r"^nodes: expected a non-empty list"),
    ({"name": "h", "nodes": [("8",)]}, r"^nodes\[0\]: expected a \(cpu, memory\) pair"),
    ({"name": "h", "nodes": [("-8", "1Gi")]}, r"^nodes\[0\]\.cpu: quantity must not be negative"),
    ({"name": "h", "nodes": [("8", "lots")]}, r"^nodes\[0\]\.memory: invalid quantity 'lots'"),
    ({"name": "h", "nodes": [(0, 0)]}, r"^nodes: every node is empty"),
    ({"name": "h", "nodes": [NODE, NODE], "distance": [[10]]}, r"^distance: expected shape \(2, 2\)"),
])
def test_add_host_refuses_bad_input_and_changes_nothing(kwargs, match):
    c = new()
    before = snapshot(c)
    with pytest.raises(ValueError, match=match):
        c.ops.add_host(**kwargs)
    assert snapshot(c) == before


# ------------------------------------------------------------------------------------------
# NUMA defaults, VMs, Deployments
# ------------------------------------------------------------------------------------------
def test_namespace_numa_default_applies_unless_the_workload_says_otherwise():
    c = new()
    c.ops.add_host("h1", nodes=[NODE, NODE])
    c.ops.create_namespace("strict", numa="single-numa-node")
    c.apply([pod("wide", "12", namespace="strict"),
             pod("wide-ok", "12", namespace="strict", numa="restricted"),
             pod("plain", "2")])
    c.reconcile()
    wide = c.get("Pod", "strict", "wide")["status"]
    assert (wide["phase"], wide["reason"], wide["numa"]) == ("Pending", "too-large", "single-numa-node")
    ok = c.get("Pod", "strict", "wide-ok")["status"]
    assert (ok["phase"], ok["numa"], ok["nodes"]) == ("Running", "restricted", [0, 1])
    assert c.get("Pod", "default", "plain")["status"]["numa"] == "restricted"   # controller default
    # a Namespace manifest can change the default
    c.apply({"kind": "Namespace", "metadata": {"name": "strict",
                                               "annotations": {"numasched.io/numa": "best-effort"}}})
    assert c.get("Namespace", None, "strict")["status"]["numa"] == "best-effort"
    check_controller(c)


def test_mixed_numa_modes_go_to_the_kernel_per_request(monkeypatch):
    calls = []

    def spy(cluster, requests, **kwargs):
        calls.append(requests.numa.tolist())
        return numasched.place(cluster, requests, **kwargs)

    monkeypatch.setattr(controller_module, "place", spy)
    c = new(numa="best-effort")
    c.ops.add_host("h1", nodes=[NODE, NODE])
    c.ops.create_namespace("strict", numa="single-numa-node")
    c.apply([pod("a", namespace="strict"), pod("b", numa="none"), pod("c")])
    c.reconcile()
    modes = codes.NUMA_MODES
    # each request carries its mode; -1 (the call's, best-effort) for those without one
    assert calls == [[modes["single-numa-node"], modes["none"], -1]]
    assert [p["status"]["numa"] for p in c.list("Pod")] == ["single-numa-node", "none", "best-effort"]


def test_a_policy_that_fixes_the_numa_mode_does_not_override_a_namespace_default():
    c = new(policy="esxi")                      # ESXi: restricted home nodes
    c.ops.add_host("h1", nodes=[NODE, NODE])
    c.ops.create_namespace("strict", numa="single-numa-node")
    c.apply(pod("wide", "12", namespace="strict"))   # a batch of namespace defaults only
    c.reconcile()
    assert c.get("Pod", "strict", "wide")["status"]["reason"] == "too-large"
    c.apply(pod("wide", "12"))
    c.reconcile()
    assert c.get("Pod", "default", "wide")["status"]["nodes"] == [0, 1]


def test_virtual_machines_are_placed_with_their_vcpus_and_vnuma():
    c = new()
    c.ops.add_host("h1", nodes=[NODE, NODE])
    c.apply("""
apiVersion: kubevirt.io/v1
kind: VirtualMachine
metadata: {name: db}
spec:
  running: true
  template:
    spec:
      domain:
        cpu: {sockets: 2, cores: 6, numa: {guestMappingPassthrough: {}}}
        memory: {guest: 48Gi}
""")
    c.reconcile()
    status = c.get("VirtualMachine", "default", "db")["status"]
    assert status["phase"] == "Running" and status["vnuma"] and status["nodes"] == [0, 1]
    assert status["allocated"] == [{"node": 0, "cpu": 6000, "memory": 24 * GiB},
                                   {"node": 1, "cpu": 6000, "memory": 24 * GiB}]
    assert phases(c, "VirtualMachine") == {"db": "Running"}
    assert phases(c) == {}
    check_controller(c)


def test_deployment_scale_down_up_template_change_and_replica_replacement():
    c = new()
    c.ops.add_host("h1", nodes=[NODE, NODE])
    c.apply(deployment("web", 5))
    c.reconcile()                                  # web-0..3 Running, web-4 Pending
    c.apply(deployment("web", 4))                  # the Pending replica goes first
    assert sorted(phases(c)) == ["web-0", "web-1", "web-2", "web-3"]
    c.apply(deployment("web", 2))                  # then the newest
    assert sorted(phases(c)) == ["web-0", "web-1"]
    c.reconcile()
    c.apply(deployment("web", 3))
    assert sorted(phases(c)) == ["web-0", "web-1", "web-5"]    # ordinals are never reused
    assert c.apply(deployment("web", 3))[0].action == "unchanged"
    c.delete("Pod", "default", "web-1")             # the Deployment replaces it next round
    r = c.reconcile()
    assert r.created == [("Pod", "default", "web-6")]
    assert sorted(phases(c)) == ["web-0", "web-5", "web-6"]
    c.apply(deployment("web", 3, cpu="2"))          # a new template recreates every replica
    assert sorted(phases(c)) == ["web-7", "web-8", "web-9"]
    c.run()
    assert set(phases(c).values()) == {"Running"}
    assert {p["status"]["requests"]["cpu"] for p in c.list("Pod")} == {2000}
    check_controller(c)


def test_replaced_single_pod_is_recreated_with_its_new_spec():
    c = new()
    c.ops.add_host("h1", nodes=[NODE])
    assert c.apply(pod("a", "2"))[0].action == "created"
    assert c.apply(pod("a", "2"))[0].action == "unchanged"
    c.reconcile()
    uid = c.get("Pod", "default", "a")["metadata"]["uid"]
    assert c.apply(pod("a", "3"))[0].action == "configured"
    fresh = c.get("Pod", "default", "a")
    assert fresh["metadata"]["uid"] != uid and fresh["status"]["phase"] == "Pending"
    r = c.reconcile()
    assert r.released == [("Pod", "default", "a")] and r.placed == [("Pod", "default", "a")]
    assert c.get("Pod", "default", "a")["status"]["allocated"][0]["cpu"] == 3000
    check_controller(c)


def test_replica_names_cannot_be_taken_by_pods():
    c = new()
    c.apply(deployment("web", 2))
    with pytest.raises(ValueError, match=r"^metadata\.name: 'web-7' is a replica name of Deployment"):
        c.apply(pod("web-7"))
    c.apply(pod("api-1"))
    with pytest.raises(ValueError, match=r"^metadata\.name: replicas of Deployment 'api' would be named"):
        c.apply(deployment("api", 1))


# ------------------------------------------------------------------------------------------
# Bad input changes nothing; reading the store
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("manifest, match", [
    ({"kind": "Service", "metadata": {"name": "x"}}, r"^kind: unknown kind 'Service'"),
    ({"kind": "Pod", "metadata": {}, "spec": {"containers": [{}]}}, r"^metadata\.name: required"),
    (pod("neg", "-1"), r"^spec\.containers\[0\]\.resources\.requests\.cpu: quantity must not be negative"),
    (pod("bad", "2GB"), r"^spec\.containers\[0\]\.resources\.requests\.cpu: invalid quantity '2GB'"),
    (pod("lost", namespace="nowhere"), r"^metadata\.namespace: namespace 'nowhere' not found"),
    ("kind: Pod\nmetadata: {name: [\n", r"^invalid YAML at line"),
])
def test_bad_manifests_are_refused_and_the_store_is_unchanged(manifest, match):
    c = new()
    c.ops.add_host("h1", nodes=[NODE])
    c.apply(pod("existing"))
    c.reconcile()
    before = snapshot(c)
    with pytest.raises(ValueError, match=match):
        c.apply(manifest)
    assert snapshot(c) == before


def test_a_multi_document_apply_is_all_or_nothing():
    c = new()
    c.ops.add_host("h1", nodes=[NODE])
    before = snapshot(c)
    text = """
kind: Namespace
metadata: {name: team-a}
---
kind: Deployment
metadata: {name: api, namespace: team-a}
spec:
  replicas: 2
  template:
    spec:
      containers: [{name: app, resources: {requests: {cpu: 500m, memory: 1Gi}}}]
---
kind: Pod
metadata: {name: broken, namespace: team-a}
spec:
  containers: [{name: app, resources: {requests: {cpu: lots}}}]
"""
    with pytest.raises(ValueError, match=r"^document 3: spec\.containers\[0\]\.resources\.requests\.cpu"):
        c.apply(text)
    assert snapshot(c) == before
    applied = c.apply(text.rsplit("---", 1)[0])
    assert [(a.kind, a.name, a.action) for a in applied] == [("Namespace", "team-a", "created"),
                                                             ("Deployment", "api", "created")]
    c.ops.set_quota("team-a", cpu="1")
    with pytest.raises(QuotaExceeded):          # the quota refusal also rolls back document 1
        c.apply([pod("ok", "100m"), pod("x", "2", namespace="team-a")])
    with pytest.raises(NotFound):
        c.get("Pod", "default", "ok")


def test_get_list_events_and_not_found():
    c = new()
    c.ops.add_host("h1", nodes=[NODE])
    c.apply(pod("a"))
    view = c.get("Pod", None, "a")
    assert view["metadata"]["namespace"] == "default" and view["kind"] == "Pod"
    view["spec"]["containers"].clear()                       # a copy: the store is untouched
    assert c.get("Pod", "default", "a")["spec"]["containers"]
    rv = int(c.get("Pod", "default", "a")["metadata"]["resourceVersion"])
    c.reconcile()
    assert int(c.get("Pod", "default", "a")["metadata"]["resourceVersion"]) > rv
    events = c.list("Event", "default")
    assert [e["reason"] for e in events] == ["Created", "Scheduled"]
    assert events[1]["message"] == "placed on h1, NUMA nodes [0]"
    assert [n["metadata"]["name"] for n in c.list("Namespace")] == ["default"]
    for kind, ns, name, match in [("Pod", "default", "b", "Pod default/b not found"),
                                  ("Deployment", "default", "b", "Deployment default/b not found"),
                                  ("Namespace", None, "x", "Namespace 'x' not found"),
                                  ("Host", None, "x", "Host 'x' not found")]:
        with pytest.raises(NotFound, match=match):
            c.get(kind, ns, name)
    with pytest.raises(ValueError, match="kind: unknown kind 'Service'"):
        c.list("Service")
    with pytest.raises(ValueError, match="the 'default' namespace cannot be deleted"):
        c.delete("Namespace", None, "default")
    with pytest.raises(NotFound, match="Namespace 'x' not found"):
        c.delete("Namespace", None, "x")
    with pytest.raises(NotFound, match="Deployment default/x not found"):
        c.delete("Deployment", "default", "x")
    with pytest.raises(NotFound, match="Pod default/b not found"):
        c.delete("Pod", "default", "b")


def test_deleting_a_namespace_deletes_its_objects():
    c = new()
    c.ops.add_host("h1", nodes=[NODE])
    c.ops.create_namespace("team-a", quota={"count": 10})
    c.apply([deployment("api", 2, cpu="1", namespace="team-a"), pod("p", namespace="team-a"),
             pod("keep")])
    c.reconcile()
    c.delete("Namespace", None, "team-a")
    assert list(phases(c)) == ["keep"]
    r = c.reconcile()
    assert r.count("released") == 3
    assert c.get("Host", None, "h1")["status"]["allocated"][0]["cpu"] == 1000
    c.ops.create_namespace("team-a")
    assert c.get("Namespace", None, "team-a")["status"]["used"]["count"] == 0
    check_controller(c)


@pytest.mark.parametrize("kwargs, match", [
    ({"policy": "tightest"}, "unknown"),
    ({"numa": "strict"}, "unknown numa mode 'strict'"),
    ({"backend": "gpu"}, "unknown backend 'gpu'"),
    ({"policy": "binpack"}, "policy 'binpack' fixes the request order to 'decreasing'"),
])
def test_controller_settings_are_validated(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Controller(**kwargs)


def test_the_kernel_sees_current_bindings_as_free_capacity():
    c = new()
    c.ops.add_host("h1", nodes=[NODE, NODE])
    c.apply(pod("a", "3", "10Gi"))
    c.reconcile()
    cluster, names = c.cluster()
    assert names == ["h1"]
    node = c.get("Pod", "default", "a")["status"]["nodes"][0]
    assert cluster.free_cpu[0, node] == 5000 and cluster.free_mem[0, node] == 22 * GiB
    # the same free state is what place() would use for the next batch
    nxt = numasched.place(cluster, numasched.Requests([6000], [GiB]), backend=BACKEND)
    assert nxt.host.tolist() == [0]
    c.ops.enter_maintenance("h1")
    assert c.cluster()[0].schedulable.tolist() == [0]
