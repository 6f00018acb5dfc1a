"""A hypothesis state machine over the controller: random interleavings of apply / delete / add /
fail / maintenance / reconcile, with every invariant checked through the public views after
every step.

``check_controller`` is also used by ``test_control.py``.
"""
from __future__ import annotations

from collections import defaultdict

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import numasched
from numasched.control import Controller, NotFound, QuotaExceeded

BACKEND = "cython" if "cython" in numasched.available_backends() else "reference"
GiB = 2**30
LABELS = {"cpu": "requests.cpu", "memory": "requests.memory", "count": "count"}


def check_controller(c: Controller, *, quota_may_be_below_usage: bool = False) -> dict:
    """Every invariant of the controller that a user can observe; returns the workload views
    by key for further checks."""
    assert c.audit() == []
    workloads = {}
    for kind in ("Pod", "VirtualMachine"):
        for w in c.list(kind):
            key = (kind, w["metadata"]["namespace"], w["metadata"]["name"])
            assert key not in workloads, f"{key} listed twice"
            workloads[key] = w
    hosts = {h["metadata"]["name"]: h for h in c.list("Host")}
    used = defaultdict(lambda: [0, 0])   # (host, node) -> [cpu, memory] of Running workloads
    for key, w in workloads.items():
        s = w["status"]
        assert s["phase"] in ("Running", "Pending"), key
        want_cpu, want_mem = max(s["requests"]["cpu"], 1), max(s["requests"]["memory"], 1)
        if s["phase"] == "Running":     # Running and bound, never Pending as well
            assert s["host"] in hosts, f"{key} runs on unknown host {s['host']}"
            assert s["nodes"] and s["reason"] is None
            assert [a["node"] for a in s["allocated"]] == s["nodes"]
            assert sum(a["cpu"] for a in s["allocated"]) == want_cpu, key
            assert sum(a["memory"] for a in s["allocated"]) == want_mem, key
            if s["numa"] == "single-numa-node":
                assert len(s["nodes"]) == 1
            for a in s["allocated"]:
                used[s["host"], a["node"]][0] += a["cpu"]
                used[s["host"], a["node"]][1] += a["memory"]
        else:
            assert s["host"] is None and s["nodes"] == [] and s["allocated"] == []
            assert s["reason"] and s["message"], key
    cluster, names = c.cluster()
    live = {n: i for i, n in enumerate(names)}
    for name, h in hosts.items():
        status = h["status"]
        i = live[name]
        for free, alloc, cap in zip(status["free"], status["allocated"], h["spec"]["nodes"]):
            k = free["node"]
            # no NUMA node overcommitted
            assert free["cpu"] >= 0 and free["memory"] >= 0, (name, k)
            assert alloc["cpu"] + free["cpu"] == cap["cpu"]
            assert alloc["memory"] + free["memory"] == cap["memory"]
            # the kernel sees exactly this free state
            assert cluster.free_cpu[i, k] == free["cpu"] and cluster.free_mem[i, k] == free["memory"]
            mine = used.pop((name, k), [0, 0])
            if status["terminating"] == 0:   # bindings match the accounting exactly
                assert mine == [alloc["cpu"], alloc["memory"]], (name, k, mine, alloc)
            else:                            # deleted work still holds capacity until reconcile
                assert mine[0] <= alloc["cpu"] and mine[1] <= alloc["memory"]
        assert bool(cluster.schedulable[i]) == (status["state"] == "ready")
    assert not used, f"workloads bound to absent nodes: {dict(used)}"
    # quota: usage is the sum over workloads, and never above a limit
    per_ns = defaultdict(lambda: [0, 0, 0])
    for (kind, ns, _), w in workloads.items():
        r = w["status"]["requests"]
        per_ns[ns][0] += r["cpu"]
        per_ns[ns][1] += r["memory"]
        per_ns[ns][2] += 1
    for ns in c.list("Namespace"):
        name, status = ns["metadata"]["name"], ns["status"]
        assert list(status["used"].values()) == per_ns.get(name, [0, 0, 0]), name
        if not quota_may_be_below_usage:
            for label, limit in status["hard"].items():
                assert status["used"][label] <= limit, (name, label, status)
    # Deployments own exactly the replicas they report
    for d in c.list("Deployment"):
        ns, name = d["metadata"]["namespace"], d["metadata"]["name"]
        mine = [w for (kind, wns, _), w in workloads.items() if kind == "Pod" and wns == ns and
                w["metadata"].get("ownerReferences", [{}])[0].get("name") == name]
        assert len(mine) == d["status"]["replicas"] <= d["status"]["desiredReplicas"]
        running = sum(w["status"]["phase"] == "Running" for w in mine)
        assert d["status"]["runningReplicas"] == running
    return workloads


NAMES = ["a", "b", "c", "d"]
HOSTS = ["h0", "h1", "h2", "h3"]
NAMESPACES = ["default", "quota", "strict"]
CPU = st.sampled_from(["500m", "1", "2", "3", "5"])
MEM = st.sampled_from(["512Mi", "1Gi", "2Gi", "6Gi"])
NUMA = st.sampled_from([None, None, "single-numa-node", "best-effort", "none"])


def pod_manifest(name, ns, cpu, mem, numa, priority):
    meta = {"name": name, "namespace": ns}
    if numa:
        meta["annotations"] = {"numasched.io/numa": numa}
    return {"kind": "Pod", "metadata": meta, "spec": {"priority": priority, "containers": [
        {"name": "app", "resources": {"requests": {"cpu": cpu, "memory": mem}}}]}}


class ControllerMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.c = Controller(backend=BACKEND)
        self.c.ops.create_namespace("quota", quota={"cpu": "6", "memory": "8Gi", "count": 4})
        self.c.ops.create_namespace("strict", numa="single-numa-node")
        self.singles: dict[tuple, dict] = {}      # key -> manifest (the desired state)
        self.deployments: dict[tuple, int] = {}   # (ns, name) -> desired replicas
        self.hosts: set[str] = set()
        self.replaced: set[tuple] = set()         # Deployments missing a deleted replica
        self.deployment_specs: dict[tuple, tuple] = {}   # (ns, name) -> (replicas, cpu, mem)

    # -- developer plane ---------------------------------------------------------------------
    def _apply(self, manifest) -> bool:
        before = (self.c._store.rv, len(self.c.list("Pod")), len(self.c.list("VirtualMachine")))
        try:
            self.c.apply(manifest)
        except QuotaExceeded as exc:
            assert manifest["metadata"]["namespace"] == "quota", exc
            assert (self.c._store.rv, len(self.c.list("Pod")),
                    len(self.c.list("VirtualMachine"))) == before
            return False
        except ValueError as exc:   # a Pod named like a replica, or the reverse
            assert "replica" in str(exc), exc
            assert self.c._store.rv == before[0]
            return False
        return True

    @rule(name=st.sampled_from(NAMES), ns=st.sampled_from(NAMESPACES), cpu=CPU, mem=MEM,
          numa=NUMA, priority=st.integers(0, 2))
    def apply_pod(self, name, ns, cpu, mem, numa, priority):
        manifest = pod_manifest(f"p{name}", ns, cpu, mem, numa, priority)
        if self._apply(manifest):
            self.singles[("Pod", ns, f"p{name}")] = manifest

    @rule(name=st.sampled_from(NAMES), ns=st.sampled_from(NAMESPACES), cores=st.integers(1, 6),
          mem=MEM, vnuma=st.booleans())
    def apply_vm(self, name, ns, cores, mem, vnuma):
        cpu = {"cores": cores}
        if vnuma:
            cpu["numa"] = {"guestMappingPassthrough": {}}
        manifest = {"kind": "VirtualMachine", "metadata": {"name": f"v{name}", "namespace": ns},
                    "spec": {"template": {"spec": {"domain": {"cpu": cpu, "memory": {"guest": mem}}}}}}
        if self._apply(manifest):
            self.singles[("VirtualMachine", ns, f"v{name}")] = manifest

    @rule(name=st.sampled_from(NAMES[:2]), ns=st.sampled_from(NAMESPACES),
          replicas=st.integers(0, 5), cpu=CPU, mem=MEM)
    def apply_deployment(self, name, ns, replicas, cpu, mem):
        template = pod_manifest("x", ns, cpu, mem, None, 0)
        manifest = {"kind": "Deployment", "metadata": {"name": f"d{name}", "namespace": ns},
                    "spec": {"replicas": replicas, "template": {"spec": template["spec"]}}}
        key = (ns, f"d{name}")
        if self._apply(manifest):
            if self.deployment_specs.get(key) != (replicas, cpu, mem):
                self.replaced.discard(key)   # a changed Deployment is scaled at once
            self.deployments[key] = replicas
            self.deployment_specs[key] = (replicas, cpu, mem)

    @rule(name=st.sampled_from(NAMES), ns=st.sampled_from(NAMESPACES), cpu=CPU, mem=MEM,
          bad=st.sampled_from(["-1", "2GB", "lots"]))
    def apply_batch_with_a_bad_document(self, name, ns, cpu, mem, bad):
        """A multi-document apply whose last document is broken changes nothing at all."""
        views = {k: self.c.list(k) for k in ("Pod", "VirtualMachine", "Deployment", "Event")}
        rv = self.c._store.rv
        good = pod_manifest(f"p{name}", ns, cpu, mem, None, 0)
        broken = pod_manifest("broken", ns, bad, mem, None, 0)
        try:
            self.c.apply([good, broken])
            raise AssertionError("a broken document was accepted")
        except ValueError:
            pass
        assert self.c._store.rv == rv
        assert {k: self.c.list(k) for k in views} == views

    @precondition(lambda self: self.singles or self.deployments)
    @rule(data=st.data())
    def delete(self, data):
        keys = sorted(self.singles) + [("Deployment",) + k for k in sorted(self.deployments)]
        key = data.draw(st.sampled_from(keys))
        self.c.delete(*key)
        if key[0] == "Deployment":
            del self.deployments[key[1:]]
            del self.deployment_specs[key[1:]]
            self.replaced.discard(key[1:])
        else:
            del self.singles[key]
        try:
            self.c.get(*key)
            raise AssertionError(f"{key} still there after delete")
        except NotFound:
            pass

    @precondition(lambda self: self.deployments)
    @rule(data=st.data())
    def delete_a_replica(self, data):
        ns, name = data.draw(st.sampled_from(sorted(self.deployments)))
        replicas = [p["metadata"]["name"] for p in self.c.list("Pod", ns)
                    if p["metadata"].get("ownerReferences", [{}])[0].get("name") == name]
        if replicas:
            self.c.delete("Pod", ns, data.draw(st.sampled_from(replicas)))
            self.replaced.add((ns, name))   # the next reconcile creates its replacement

    # -- operator plane ----------------------------------------------------------------------
    @rule(name=st.sampled_from(HOSTS), nodes=st.integers(1, 3),
          cpu=st.sampled_from(["4", "6"]), mem=st.sampled_from(["8Gi", "12Gi"]))
    def add_host(self, name, nodes, cpu, mem):
        if name in self.hosts:
            try:
                self.c.ops.add_host(name, nodes=[(cpu, mem)] * nodes)
                raise AssertionError("a host name was added twice")
            except ValueError:
                return
        self.c.ops.add_host(name, nodes=[(cpu, mem)] * nodes)
        self.hosts.add(name)

    @precondition(lambda self: self.hosts)
    @rule(data=st.data(), action=st.sampled_from(["remove", "fail", "recover", "enter", "exit"]))
    def host_lifecycle(self, data, action):
        name = data.draw(st.sampled_from(sorted(self.hosts)))
        op = {"remove": self.c.ops.remove_host, "fail": self.c.ops.fail_host,
              "recover": self.c.ops.recover_host, "enter": self.c.ops.enter_maintenance,
              "exit": self.c.ops.exit_maintenance}[action]
        before = self.c.get("Host", None, name)
        try:
            op(name)
        except ValueError as exc:   # an illegal transition changes nothing
            assert "cannot" in str(exc)
            assert self.c.get("Host", None, name) == before
            return
        if action == "remove":
            self.hosts.discard(name)

    @rule(cpu=st.sampled_from(["6", "8", "12"]))
    def raise_quota(self, cpu):
        hard = self.c.get("Namespace", None, "quota")["status"]["hard"]
        if int(cpu) * 1000 >= hard["requests.cpu"]:
            self.c.ops.set_quota("quota", cpu=cpu, memory=hard["requests.memory"],
                                 count=hard["count"])

    # -- the loop ----------------------------------------------------------------------------
    @rule()
    def reconcile(self):
        before = {k: (w["status"]["host"], w["metadata"]["uid"])
                  for k, w in check_controller(self.c).items() if w["status"]["phase"] == "Running"}
        states = {h["metadata"]["name"]: h["status"]["state"] for h in self.c.list("Host")}
        result = self.c.reconcile()
        self.replaced.clear()
        assert result.kernel_calls in (0, 1)
        after = check_controller(self.c)
        for key, (host, uid) in before.items():
            # Running work stays put unless its host left service; nothing is placed twice
            if key in after and after[key]["metadata"]["uid"] == uid and states.get(host) == "ready":
                assert after[key]["status"]["host"] == host, key
        for key, w in after.items():
            host = w["status"]["host"]
            assert host is None or states[host] == "ready", f"{key} runs on a {states[host]} host"
        assert len(result.pending) == sum(w["status"]["phase"] == "Pending" for w in after.values())
        assert set(result.placed) <= {k for k, w in after.items() if w["status"]["phase"] == "Running"}
        for h in self.c.list("Host"):
            assert h["status"]["terminating"] == 0

    # -- invariants --------------------------------------------------------------------------
    @invariant()
    def consistent(self):
        workloads = check_controller(self.c)
        # no object lost: the desired singles exist, nothing else does
        singles = {k for k, w in workloads.items() if "ownerReferences" not in w["metadata"]}
        assert singles == set(self.singles)
        for key, manifest in self.singles.items():
            assert workloads[key]["spec"] == manifest["spec"]
        deployments = {(d["metadata"]["namespace"], d["metadata"]["name"]): d["status"]
                       for d in self.c.list("Deployment")}
        assert set(deployments) == set(self.deployments)
        for key, desired in self.deployments.items():
            status = deployments[key]
            assert status["desiredReplicas"] == desired
            if key[0] != "quota" and key not in self.replaced:  # only quota holds replicas back
                assert status["replicas"] == desired, (key, status)
        assert {h["metadata"]["name"] for h in self.c.list("Host")} == self.hosts


ControllerMachine.TestCase.settings = settings(
    max_examples=50, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TestControllerMachine = ControllerMachine.TestCase


def test_check_controller_catches_an_overcommitted_node():
    """The checker can fail: corrupt the accounting behind the controller's back."""
    c = Controller(backend=BACKEND)
    c.ops.add_host("h", nodes=[("4", "8Gi")])
    c.apply({"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "a", "resources": {"requests": {"cpu": "2", "memory": "1Gi"}}}]}})
    c.reconcile()
    check_controller(c)
    c._store.hosts.free_cpu[0, 0] -= 3000
    try:
        check_controller(c)
    except AssertionError:
        return
    raise AssertionError("check_controller missed an overcommitted node")
