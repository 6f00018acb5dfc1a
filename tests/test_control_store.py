"""The controller's stores, transactions and threads: reopen, conflicts, watch, rollback."""
from __future__ import annotations

import threading
import time
from base64 import b64encode

import pytest

from numasched.control import Conflict, Controller, Gone, NotFound, NotLeader
from numasched.control import controller as controller_module
from numasched.control.backends import open_store, prefix_end

from test_control import NODE, deployment, pod

KINDS = ("Namespace", "ResourceQuota", "Pod", "Deployment", "VirtualMachine", "Host", "Event")


@pytest.fixture(params=["memory", "sqlite", "etcd"])
def url(request, tmp_path):
    if request.param.startswith("memory"):
        return "memory://"
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/state.db"
    base = request.getfixturevalue("etcd_url")
    # one etcd for the session: start each test from an empty store
    kv = open_store(base)
    kv.call("/v3/kv/deleterange", {"key": b64encode(b"/numasched/").decode(),
                                    "range_end": b64encode(prefix_end("/numasched/").encode()).decode()})
    kv.close()
    return base


def observable(c: Controller):
    return {k: c.list(k) for k in KINDS}, c.revision


def populated(url: str) -> Controller:
    c = Controller(store=url, backend="cython")
    c.apply([{"kind": "Namespace", "metadata": {"name": "team"}},
             {"kind": "ResourceQuota", "metadata": {"name": "q", "namespace": "team"},
              "spec": {"hard": {"requests.cpu": "20"}}}])
    c.ops.add_host("h1", nodes=[NODE, NODE])
    c.ops.add_host("h2", nodes=[NODE, NODE], distance=[[10, 30], [30, 10]])
    c.apply([deployment("web", 5), pod("db", "2", namespace="team", numa="single-numa-node"),
             pod("big", "64")])
    c.reconcile()
    c.ops.enter_maintenance("h2")
    c.delete("Pod", "team", "db")
    return c


def test_a_new_controller_on_the_same_store_sees_exactly_the_same_state(url):
    c = populated(url)
    if url == "memory://":
        assert Controller(store=url).list("Pod") == []   # memory:// is this process only
        return
    before = observable(c)
    d = Controller(store=url, backend="cython")
    assert observable(d) == before
    assert d.audit() == [] and c.audit() == []
    # the reopened controller goes on where the first stopped: the round releases the deleted
    # Pod and evicts from the host in maintenance; the first controller then sees its commit
    on_h2 = sum(p["status"]["host"] == "h2" for k in ("Pod", "VirtualMachine")
                for p in c.list(k) if p["metadata"]["name"] != "db")
    result = d.reconcile()
    assert (result.round, result.released, result.count("evicted")) == \
        (2, [("Pod", "team", "db")], on_h2)
    assert observable(c) == observable(d) and c.audit() == []


def test_stale_resource_version_is_a_conflict_and_changes_nothing(url):
    c = Controller(store=url, backend="cython")
    c.apply(pod("a"))
    rv = c.get("Pod", "default", "a")["metadata"]["resourceVersion"]
    manifest = pod("a", "2")
    manifest["metadata"]["resourceVersion"] = rv
    c.apply(manifest)                                   # based on the current version: fine
    stale = pod("a", "3")
    stale["metadata"]["resourceVersion"] = rv
    before = observable(c)
    with pytest.raises(Conflict, match="was modified") as info:
        c.apply(stale)
    assert info.value.code == 409
    assert observable(c) == before
    with pytest.raises(Conflict):
        c.delete("Pod", "default", "a", resource_version=rv)
    c.delete("Pod", "default", "a",
             resource_version=c.get("Pod", "default", "a")["metadata"]["resourceVersion"])


def test_every_transaction_is_one_revision(url):
    c = Controller(store=url, backend="cython")
    c.ops.add_host("h", nodes=[NODE])
    rev = c.revision
    c.apply([pod("a"), pod("b"), deployment("d", 3, "1")])
    assert c.revision == rev + 1
    assert {p["metadata"]["resourceVersion"] for p in c.list("Pod")} == {str(rev + 1)}
    c.reconcile()
    assert {p["metadata"]["resourceVersion"] for p in c.list("Pod")} == {str(rev + 2)}
    assert not c.reconcile().changed and c.revision == rev + 2


def test_watch_resumes_from_a_list_and_misses_nothing(url):
    c = Controller(store=url, backend="cython", history=5)
    c.ops.add_host("h", nodes=[NODE])
    listed = c.list("Pod")
    c.apply([pod("a"), deployment("d", 2, "1")])
    c.reconcile()
    c.delete("Pod", "default", "a")
    events = list(c.watch("Pod", since=listed.resource_version, timeout=0.2, poll=0.01))
    assert [(e["type"], e["name"]) for e in events] == [
        ("ADDED", "a"), ("ADDED", "d-0"), ("ADDED", "d-1"),
        ("MODIFIED", "a"), ("MODIFIED", "d-0"), ("MODIFIED", "d-1"), ("DELETED", "a")]
    # resuming from the middle yields only what came after
    middle = events[3]["resourceVersion"]
    later = list(c.watch("Pod", since=middle, timeout=0.1, poll=0.01))
    assert [(e["type"], e["name"]) for e in later] == [("DELETED", "a")]
    # since=None: what exists, then the changes
    now = list(c.watch("Deployment", timeout=0.1, poll=0.01))
    assert [(e["type"], e["name"]) for e in now] == [("ADDED", "d")]
    # compacted history answers 410 Gone
    for i in range(6):
        c.apply(pod(f"x{i}"))
    with pytest.raises(Gone, match="too old resource version") as info:
        list(c.watch(since=listed.resource_version, timeout=0.1))
    assert info.value.code == 410


def test_watch_follows_another_thread(url):
    c = Controller(store=url, backend="cython")
    since = c.revision
    seen = []

    def watcher():
        for e in c.watch("Pod", since=since, timeout=0.3, poll=0.01):
            seen.append(e["name"])

    t = threading.Thread(target=watcher)
    t.start()
    for i in range(5):
        c.apply(pod(f"w{i}"))
    t.join(10)
    assert seen == [f"w{i}" for i in range(5)]


def test_a_run_loop_and_applies_in_threads_leave_a_consistent_store():
    c = Controller(backend="cython")
    c.ops.add_host("h", nodes=[NODE, NODE])
    stop = threading.Event()
    errors = []

    def loop():
        try:
            while not stop.is_set():
                c.run(max_rounds=3)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=loop) for _ in range(2)]
    for t in threads:
        t.start()
    for i in range(150):
        c.apply([pod(f"p{i}", "1"), deployment(f"d{i % 7}", i % 5, "1")])
        if i % 3 == 0:
            c.delete("Pod", "default", f"p{i - 1}") if i else None
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    c.run()
    assert c.audit() == [] and len(c.list("Pod")) > 0


class Boom(BaseException):
    pass


@pytest.mark.parametrize("where", ["_write_back", "_evict", "_group_events", "_scale"])
def test_an_exception_anywhere_in_a_round_leaves_the_state_as_before(url, where, monkeypatch):
    c = Controller(store=url, backend="cython")
    c.ops.add_host("h1", nodes=[NODE])
    c.ops.add_host("h2", nodes=[NODE])
    c.apply([{"kind": "ResourceQuota", "metadata": {"name": "q"},
              "spec": {"hard": {"pods": "2"}}}, pod("a", "6"), pod("b", "6")])
    c.apply(deployment("d", 2, "1"))                  # held back by the quota
    c.reconcile()
    c.ops.remove_host(c.get("Pod", "default", "a")["status"]["host"])   # evicted: to report
    c.ops.fail_host(c.get("Pod", "default", "b")["status"]["host"])     # evicted by the round
    c.delete("ResourceQuota", "default", "q")                         # the Deployment may grow
    before = observable(c)
    original = getattr(Controller, where)

    def boom(self, *args, **kwargs):
        original(self, *args, **kwargs)
        raise Boom()

    monkeypatch.setattr(Controller, where, boom)
    with pytest.raises(Boom):
        c.reconcile()
    monkeypatch.undo()
    assert observable(c) == before and c.audit() == []
    result = c.reconcile()
    assert ("Pod", "default", "a") in result.evicted       # the report was not lost
    assert c.audit() == []


def test_keyboard_interrupt_in_the_kernel_call_rolls_the_round_back(monkeypatch):
    c = Controller(backend="cython")
    c.ops.add_host("h", nodes=[NODE])
    c.apply(deployment("d", 3, "1"))
    before = observable(c)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(controller_module, "place", interrupted)
    with pytest.raises(KeyboardInterrupt):
        c.reconcile()
    assert observable(c) == before


def test_a_multi_document_apply_is_all_or_nothing_for_every_error(url):
    c = Controller(store=url, backend="cython")
    before = observable(c)
    huge = pod("huge", str(2**64))
    for bad in (huge, pod("x", "2**70"), {"kind": "Pod"}):
        with pytest.raises(ValueError):
            c.apply([pod("ok"), deployment("dep", 3), bad])
        assert observable(c) == before
    with pytest.raises(ValueError, match="resources.requests.cpu"):
        c.apply(pod("big", f"{2**62 + 1}m"))
    assert observable(c) == before


def test_replica_names_are_exact_and_status_numa_is_the_mode_placed_under(url):
    c = Controller(store=url, backend="cython")
    c.ops.add_host("h", nodes=[NODE, NODE])
    c.apply([{"kind": "Namespace", "metadata": {"name": "t"}}, deployment("web", 2, "1", namespace="t")])
    c.reconcile()
    assert c.get("Pod", "t", "web-0")["metadata"]["name"] == "web-0"
    for alias in ("web-00", "web-000", "web-01", "web-+1"):
        with pytest.raises(NotFound):
            c.get("Pod", "t", alias)
        with pytest.raises(NotFound):
            c.delete("Pod", "t", alias)
    assert c.get("Pod", "t", "web-0")["status"]["numa"] == "restricted"
    c.apply({"kind": "Namespace", "metadata": {"name": "t", "annotations": {
        "numasched.io/numa": "single-numa-node"}}})
    assert c.get("Pod", "t", "web-0")["status"]["numa"] == "restricted"   # placed under it
    c.apply(deployment("web", 3, "1", namespace="t"))
    assert c.get("Pod", "t", "web-2")["status"]["numa"] == "single-numa-node"  # will be


def test_apply_joins_hosts_from_inventories_and_topology_objects(url):
    c = Controller(store=url, backend="cython")
    inventory = {"hosts": [{"name": "rack", "count": 2,
                            "nodes": [{"cpu": 8, "memory": "32Gi"}, {"cpu": 8, "memory": "32Gi"}]}]}
    nrt = {"apiVersion": "topology.node.k8s.io/v1alpha2", "kind": "NodeResourceTopology",
           "metadata": {"name": "worker"}, "zones": [
               {"name": f"node-{k}", "type": "Node", "resources": [
                   {"name": "cpu", "capacity": "16", "allocatable": "16", "available": "16"},
                   {"name": "memory", "capacity": "64Gi", "allocatable": "64Gi",
                    "available": "64Gi"}]} for k in range(2)]}
    applied = c.apply([inventory, nrt, pod("a")])
    assert [(a.kind, a.name, a.action) for a in applied] == [
        ("Host", "worker", "created"), ("Host", "rack-0", "created"),
        ("Host", "rack-1", "created"), ("Pod", "a", "created")]
    assert [(a.name, a.action) for a in c.apply(inventory)] == [("rack-0", "unchanged"),
                                                                 ("rack-1", "unchanged")]
    other = {"hosts": [{"name": "rack-0", "nodes": [{"cpu": 4, "memory": "8Gi"}]}]}
    with pytest.raises(ValueError, match="exists with other NUMA nodes"):
        c.apply(other)


def test_fenced_writes_of_a_deposed_leader_are_refused(etcd_url):
    a = Controller(store=etcd_url, backend="cython")
    b = Controller(store=etcd_url, backend="cython")
    a._kv.resign(a._kv.get("/numasched/leader") or b"")
    token = None
    deadline = time.monotonic() + 15
    while token is None and time.monotonic() < deadline:   # an earlier test's lease may live on
        token = a._kv.elect("a", 1)
        time.sleep(0.2)
    assert token is not None
    a._fence = token
    a.apply(pod("fenced-ok", "1m"))                         # the leader writes
    time.sleep(3.5)                                         # its lease expires (no renewal)
    assert b._kv.elect("b", 5) is not None                  # and another becomes leader
    rev = b.revision
    with pytest.raises(NotLeader):
        a.apply(pod("fenced-late", "1m"))
    assert b.revision == rev
    with pytest.raises(NotFound):
        b.get("Pod", "default", "fenced-late")


def test_store_urls_are_checked():
    for bad, match in (("postgres://x", "unknown scheme"), ("sqlite://rel.db", "absolute path"),
                       ("etcd://host", "etcd://host:port"), ("nothing", "expected a URL"),
                       ("sqlite:///no/such/dir/x.db", "does not exist")):
        with pytest.raises(ValueError, match=match):
            Controller(store=bad)


def test_the_cli_speaks_to_a_store_like_kubectl(tmp_path):
    from click.testing import CliRunner

    from numasched.cli import cli

    store = ["--store", f"sqlite:///{tmp_path}/state.db"]
    run = CliRunner().invoke
    inventory = tmp_path / "hosts.yaml"
    inventory.write_text("hosts:\n- name: rack\n  count: 2\n  nodes: [{cpu: 32, memory: 256Gi}, "
                         "{cpu: 32, memory: 256Gi}]\n")
    r = run(cli, ["apply", "-f", str(inventory), "-f", "docs/examples/shop.yaml", *store])
    assert r.exit_code == 0, r.output
    assert "deployment/web created" in r.output and "host/rack-1 created" in r.output
    r = run(cli, ["controller", "--rounds", "1", "--interval", "0.01", *store])
    assert r.exit_code == 0 and "placed 7" in r.output, r.output
    r = run(cli, ["get", "pods", "-n", "shop", *store])
    assert r.output.count("Running") == 7
    r = run(cli, ["get", "deploy", "web", "-n", "shop", "-o", "json", *store])
    assert '"runningReplicas": 6' in r.output
    r = run(cli, ["delete", "pod", "web-000", "-n", "shop", *store])
    assert r.exit_code == 2 and r.output.startswith("Error: Pod shop/web-000 not found")
    r = run(cli, ["delete", "deploy", "web", "-n", "shop", *store])
    assert r.exit_code == 0
    r = run(cli, ["events", "-n", "shop", "--for", "deployment/web", *store])
    assert "Deleted" in r.output
    r = run(cli, ["describe", "pod", "postgres", "-n", "shop", *store])
    assert "single-numa-node" in r.output and "Scheduled" in r.output
    r = run(cli, ["get", "widgets", *store])
    assert r.exit_code == 2 and "unknown kind" in r.output


def bound(name, host, cpu="2", **kw):
    manifest = pod(name, cpu, **kw)
    manifest["spec"]["nodeName"] = host
    return manifest


def test_pods_bound_by_node_name_stay_on_their_host(url):
    c = Controller(store=url, backend="cython")
    c.ops.add_host("h1", nodes=[NODE, NODE])
    c.ops.add_host("h2", nodes=[NODE, NODE])
    c.apply([bound("on-h2", "h2"), bound("on-h3", "h3"), bound("too-big", "h1", "12",
                                                                  numa="single-numa-node")])
    r = c.reconcile()
    status = {p["metadata"]["name"]: p["status"] for p in c.list("Pod")}
    assert status["on-h2"]["host"] == "h2"                 # where it is bound, not best-fit's
    assert status["on-h3"]["reason"] == "bound-host-unavailable"
    assert "bound to host h3" in status["on-h3"]["message"]
    assert status["too-big"]["reason"] == "too-large"  # 12 cores on one 8-core node: never
    assert r.pending_by_reason == {"bound-host-unavailable": 1, "too-large": 1}
    c.ops.add_host("h3", nodes=[NODE])
    c.reconcile()
    assert c.get("Pod", "default", "on-h3")["status"]["host"] == "h3"
    # a failed host: its bound Pod waits for it, and comes back to it
    c.ops.fail_host("h3")
    c.reconcile()
    assert c.get("Pod", "default", "on-h3")["status"]["reason"] == "bound-host-unavailable"
    c.ops.recover_host("h3")
    c.reconcile()
    assert c.get("Pod", "default", "on-h3")["status"]["host"] == "h3"
    if url != "memory://":
        assert Controller(store=url, backend="cython").list("Pod") == c.list("Pod")
    with pytest.raises(ValueError, match="spec.template.spec.nodeName"):
        d = deployment("d", 1)
        d["spec"]["template"]["spec"]["nodeName"] = "h1"
        c.apply(d)
    with pytest.raises(ValueError, match="spec.nodeName: expected a node name"):
        c.apply(bound("bad", "Not_A_Host"))
    assert c.audit() == []


@pytest.mark.parametrize("url", ["memory://", "sqlite"], indirect=True)
@pytest.mark.parametrize("call", ["reconcile", "apply", "delete", "remove_host"])
def test_an_interruption_at_any_write_rolls_the_call_back(url, call, monkeypatch):
    """Raise inside the k-th write of the call, for every k until the call completes: each
    time the state is exactly as before, and the store stays sound."""
    from numasched.control.store import Store

    c = Controller(store=url, backend="cython")
    c.apply([{"kind": "ResourceQuota", "metadata": {"name": "q"}, "spec": {"hard": {"pods": "9"}}},
             pod("a", "3"), deployment("d", 5, "1")])
    c.ops.add_host("h1", nodes=[NODE, NODE])
    c.ops.add_host("h2", nodes=[NODE])
    c.reconcile()
    c.ops.fail_host("h2")
    calls = {"reconcile": lambda: c.reconcile(),
             "apply": lambda: c.apply([pod("b"), deployment("d", 8, "1"), pod("a", "4")]),
             "delete": lambda: c.delete("Deployment", "default", "d"),
             "remove_host": lambda: c.ops.remove_host("h1")}
    original = {name: getattr(Store, name) for name in ("bump", "touch", "event")}
    for k in range(1, 200):
        before = observable(c)
        count = [0]

        def trap(name):
            def method(self, *args, **kwargs):
                count[0] += 1
                if count[0] == k:
                    raise Boom()
                return original[name](self, *args, **kwargs)
            return method

        for name in original:
            monkeypatch.setattr(Store, name, trap(name))
        try:
            calls[call]()
        except Boom:
            monkeypatch.undo()
            assert observable(c) == before, f"write {k}"
            assert c.audit() == []
            continue
        monkeypatch.undo()
        break
    else:
        pytest.fail("the call never completed")
    assert k > 2 and c.audit() == []


def test_audit_allows_usage_above_a_lowered_quota_but_not_growth(url):
    c = Controller(store=url, backend="cython")
    c.apply([pod("a", "4"), pod("b", "4")])
    c.ops.set_quota("default", cpu="2")          # lowered below usage: evicts nothing
    assert c.audit() == []
    with pytest.raises(ValueError, match="exceeded quota"):
        c.apply(pod("c", "1"))
    if url != "memory://":
        assert Controller(store=url, backend="cython").audit() == []
    c._store.usage["default"][0] += 1000        # what audit exists for: accounting gone wrong
    assert any("requests.cpu used" in p for p in c.audit())
