"""Manifests as kubectl reads them and real cluster state as input: unknown fields, skipped
kinds, every workload kind, kubectl lists, bound and finished pods, kubelet QoS semantics."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from numasched.control.manifests import (
    ManifestWarning,
    load_documents,
    pod_facts,
    workload_spec,
)
from numasched.io import limits
from numasched.io.report import place_report
from numasched.io.topology import read_topology
from numasched.io.workloads import (
    existing_load,
    kubelet_mode,
    kubelet_policy,
    read_workloads,
    with_load,
)

GiB = 2**30


def container(name="app", cpu=None, mem=None, *, limit_cpu=None, limit_mem=None, **extra):
    resources = {}
    if cpu is not None or mem is not None:
        resources["requests"] = {k: v for k, v in (("cpu", cpu), ("memory", mem)) if v is not None}
    if limit_cpu is not None or limit_mem is not None:
        resources["limits"] = {k: v for k, v in (("cpu", limit_cpu), ("memory", limit_mem))
                               if v is not None}
    return {"name": name, "resources": resources, **extra}


def guaranteed(name="app", cpu="2", mem="4Gi"):
    return container(name, cpu, mem, limit_cpu=cpu, limit_mem=mem)


def pod(name="web", *containers, node=None, phase=None, **spec):
    manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                "spec": {"containers": list(containers) or [guaranteed()], **spec}}
    if node:
        manifest["spec"]["nodeName"] = node
    if phase:
        manifest["status"] = {"phase": phase}
    return manifest


def template_kind(kind, name="w", containers=None, **spec):
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name},
            "spec": {**spec, "template": {"spec": {"containers": containers or [guaranteed()]}}}}


INVENTORY = """\
hosts:
- name: a
  nodes: [{cpu: 8, memory: 16Gi}, {cpu: 8, memory: 16Gi}]
  attributes: {topologyManagerPolicy: single-numa-node, topologyManagerScope: pod}
- name: b
  nodes: [{cpu: 8, memory: 16Gi}, {cpu: 8, memory: 16Gi}]
  attributes: {topologyManagerPolicy: single-numa-node, topologyManagerScope: pod}
"""


@pytest.fixture
def topology(tmp_path):
    path = tmp_path / "inv.yaml"
    path.write_text(INVENTORY)
    return read_topology(path)


def write(tmp_path, docs, name="w.yaml"):
    path = tmp_path / name
    path.write_text(json.dumps(docs) if isinstance(docs, dict) else
                    "\n---\n".join(json.dumps(d) for d in docs))
    return path


# --------------------------------------------------------------------------------------------
# Unknown fields: a warning with the path and a suggestion; an error under strict
# --------------------------------------------------------------------------------------------
def test_a_typo_in_resources_is_reported_with_its_path_and_a_suggestion():
    manifest = template_kind("Deployment", containers=[{"name": "a", "resouces": {}}])
    with pytest.warns(ManifestWarning) as caught:
        workload_spec(manifest)
    assert [str(w.message) for w in caught] == [
        "spec.template.spec.containers[0].resouces: unknown field, did you mean resources?"]
    with pytest.raises(ValueError, match=r"^spec.template.spec.containers\[0\].resouces: unknown "
                                         r"field, did you mean resources\?$"):
        workload_spec(manifest, strict=True)


@pytest.mark.parametrize("edit, message", [
    (lambda m: m["spec"].update(replica=5), "spec.replica: unknown field, did you mean replicas?"),
    (lambda m: m["spec"]["template"]["spec"]["containers"][0]["resources"].update(
        request={"cpu": "1"}), "resources.request: unknown field, did you mean requests?"),
    (lambda m: m["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"].update(
        cpus="2"), "requests.cpus: unknown field, did you mean cpu?"),
    (lambda m: m["metadata"].update(Labels={}), "metadata.Labels: unknown field, did you mean labels?"),
    (lambda m: m["spec"].update(zzz=1), "spec.zzz: unknown field"),
])
def test_other_typos(edit, message):
    manifest = template_kind("Deployment", replicas=5)
    edit(manifest)
    with pytest.raises(ValueError) as info:
        workload_spec(manifest, strict=True)
    assert str(info.value).endswith(message)


def test_known_extras_do_not_warn():
    manifest = pod("x", container("a", "1", "1Gi", ports=[{"containerPort": 80}],
                                  env=[{"name": "A", "value": "b"}]),
                   tolerations=[], nodeSelector={"disk": "ssd"})
    manifest["spec"]["containers"][0]["resources"]["requests"]["nvidia.com/gpu"] = 1
    manifest["spec"]["containers"][0]["resources"]["requests"]["hugepages-2Mi"] = "1Gi"
    manifest["metadata"]["labels"] = {"anything": "goes"}
    manifest["status"] = {"whatever": {"is": "not looked into"}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        workload_spec(manifest, strict=True)


def test_read_workloads_names_the_file_in_warnings_and_errors(tmp_path):
    path = write(tmp_path, template_kind("Deployment", replica=3))
    with pytest.warns(ManifestWarning, match=rf"^{path}: spec.replica: unknown field"):
        read_workloads(path)
    with pytest.raises(ValueError, match=rf"^{path}: spec.replica: unknown field"):
        read_workloads(path, strict=True)


# --------------------------------------------------------------------------------------------
# Kinds
# --------------------------------------------------------------------------------------------
def test_kinds_without_workloads_are_skipped_with_one_note(tmp_path):
    docs = [{"apiVersion": "v1", "kind": k, "metadata": {"name": "x"}}
            for k in ("Service", "ConfigMap", "Secret", "Service", "Ingress", "ServiceAccount")]
    path = write(tmp_path, docs + [pod()])
    work = read_workloads(path)
    assert work.labels == ("default/web",)
    assert "Service skipped (no workload): 2 object(s)" in work.notes
    assert sum("skipped" in n for n in work.notes) == 5


def test_an_unknown_kind_warns_with_a_suggestion_or_fails_under_strict(tmp_path):
    path = write(tmp_path, [template_kind("Deploymnet"), pod()])
    with pytest.warns(ManifestWarning, match="kind 'Deploymnet' .* skipped .did you mean Deployment"):
        assert read_workloads(path).labels == ("default/web",)
    with pytest.raises(ValueError, match="did you mean Deployment"):
        read_workloads(path, strict=True)


def test_every_workload_kind_expands_to_its_replicas(tmp_path, topology):
    vmi_spec = {"domain": {"cpu": {"cores": 2, "dedicatedCpuPlacement": True},
                           "memory": {"guest": "4Gi"}}}
    docs = [
        template_kind("StatefulSet", "db", replicas=2),
        template_kind("ReplicaSet", "rs", replicas=1),
        template_kind("DaemonSet", "agent"),
        template_kind("Job", "job", parallelism=3, completions=2),
        template_kind("Job", "idle", parallelism=4, suspend=True),
        {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachineInstance",
         "metadata": {"name": "vmi"}, "spec": vmi_spec},
        {"apiVersion": "pool.kubevirt.io/v1alpha1", "kind": "VirtualMachinePool",
         "metadata": {"name": "pool"},
         "spec": {"replicas": 2, "virtualMachineTemplate": {"spec": {"template": {
             "spec": vmi_spec}}}}},
    ]
    work = read_workloads(write(tmp_path, docs), topology)
    assert work.labels == ("default/db-0", "default/db-1", "default/rs-0", "default/agent@a",
                           "default/agent@b", "default/job-0", "default/job-1", "default/vmi",
                           "default/pool-0", "default/pool-1")
    assert work.requests.required_host.tolist() == [-1, -1, -1, 0, 1, -1, -1, -1, -1, -1]
    assert int(work.requests.cpu[-1]) == 2000 and int(work.requests.mem[-1]) == 4 * GiB
    assert workload_spec(docs[-1]).qos == "Guaranteed"
    with pytest.raises(ValueError, match="a DaemonSet runs one pod per host"):
        read_workloads(write(tmp_path, docs, "again.yaml"))


def test_a_daemonset_skips_unschedulable_hosts(tmp_path):
    inv = tmp_path / "inv.yaml"
    inv.write_text(INVENTORY + "- {name: c, schedulable: false, nodes: [{cpu: 4, memory: 4Gi}]}\n")
    work = read_workloads(write(tmp_path, template_kind("DaemonSet", "agent")), read_topology(inv))
    assert work.labels == ("default/agent@a", "default/agent@b")


# --------------------------------------------------------------------------------------------
# kubectl lists, bound and finished pods
# --------------------------------------------------------------------------------------------
def test_kubectl_lists_and_typed_lists_are_flattened():
    items = [{"metadata": {"name": "a"}, "spec": {"containers": [guaranteed()]}}]
    docs = load_documents({"apiVersion": "v1", "kind": "PodList", "items": items})
    assert docs[0]["kind"] == "Pod"                    # the API omits kind in list items
    docs = load_documents({"apiVersion": "v1", "kind": "List", "items": [pod("b")]})
    assert [d["metadata"]["name"] for d in docs] == ["b"]


def test_a_typed_nrt_list_without_item_kinds_is_a_topology(tmp_path):
    import yaml

    from numasched.io.topology import to_nrt

    inv = tmp_path / "inv.yaml"
    inv.write_text(INVENTORY)
    items = to_nrt(read_topology(inv))
    for item in items:
        del item["kind"]                    # as the API server writes list items
    path = tmp_path / "nrts.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "topology.node.k8s.io/v1alpha2",
                                    "kind": "NodeResourceTopologyList", "items": items}))
    topo = read_topology(path)
    assert topo.names == ("a", "b") and topo.topology_manager_scope() == "pod"


def test_bound_pods_are_load_never_moved_and_finished_pods_are_ignored(tmp_path, topology):
    docs = {"apiVersion": "v1", "kind": "List", "items": [
        pod("running", guaranteed(cpu="6", mem="8Gi"), node="b", phase="Running"),
        pod("assigned", guaranteed(cpu="6", mem="8Gi"), node="b"),
        pod("done", guaranteed(cpu="8"), node="a", phase="Succeeded"),
        pod("failed", guaranteed(cpu="8"), phase="Failed"),
        pod("elsewhere", guaranteed(), node="zz", phase="Running"),
        pod("new", guaranteed(cpu="8", mem="8Gi")),
    ]}
    work = read_workloads(write(tmp_path, docs), topology)
    assert work.labels == ("default/new",)
    assert [label for label, _ in work.bound] == ["default/running", "default/assigned"]
    assert any("2 pod(s) in phase Succeeded or Failed ignored" in n for n in work.notes)
    assert any("hosts the topology lacks ignored: default/elsewhere" in n for n in work.notes)

    load = existing_load(topology, work.bound, numa="single-numa-node",
                         modes=["single-numa-node"] * 2)
    assert load.cpu[1].tolist() == [6000, 6000] and load.cpu[0].tolist() == [0, 0]
    held = with_load(topology, load)
    assert held.cluster.free_cpu[1].tolist() == [2000, 2000]

    report, _ = place_report(topology, work)
    rows = {r["workload"]: r for r in report["placements"]}
    assert rows["default/running"]["status"] == rows["default/assigned"]["status"] == "bound"
    assert rows["default/running"]["host"] == "b"
    # b has 2 cores left per node: the 8-core single-numa-node pod must go to a
    assert rows["default/new"]["host"] == "a" and rows["default/new"]["status"] == "placed"
    assert report["bound"] == 2


def test_existing_load_is_not_counted_twice(topology):
    c = topology.cluster
    free = c.node_cpu.copy()
    free[1, 0] -= 6000           # the topology already reflects the pod (NRT `available`)
    from numasched.api import Cluster
    from numasched.io.topology import Topology
    reflected = Topology(Cluster(c.node_cpu, c.node_mem, c.distance, free_cpu=free,
                                 free_mem=c.free_mem), topology.names, topology.attributes,
                         topology.sources)
    spec = workload_spec(pod("p", guaranteed(cpu="6", mem="1Gi"), node="b"))
    held = with_load(reflected, existing_load(reflected, [("default/p", spec)],
                                              numa="single-numa-node"))
    assert held.cluster.free_cpu[1].tolist() == [2000, 8000]


def test_a_bound_pod_that_no_longer_fits_is_still_load_with_a_note(topology):
    spec = workload_spec(pod("p", guaranteed(cpu="20", mem="1Gi"), node="a"))
    load = existing_load(topology, [("default/p", spec)], numa="single-numa-node")
    assert load.cpu[0].tolist() == [8000, 8000]          # all of it, clamped at capacity
    assert "over-committed" in load.notes[0]


# --------------------------------------------------------------------------------------------
# kubelet semantics
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("containers, qos, integer", [
    ([guaranteed(cpu="2")], "Guaranteed", True),
    ([guaranteed(cpu="1500m")], "Guaranteed", False),
    ([container("a", limit_cpu="2", limit_mem="1Gi")], "Guaranteed", True),   # request = limit
    ([container("a", "1", "1Gi", limit_cpu="2", limit_mem="1Gi")], "Burstable", True),
    ([container("a", "1", "1Gi")], "Burstable", True),
    ([container("a")], "BestEffort", False),
    ([guaranteed(), container("b")], "Burstable", False),
])
def test_qos_class(containers, qos, integer):
    facts = pod_facts({"containers": containers})
    assert (facts.qos, facts.integer_cpu) == (qos, integer)


def test_init_containers_count_as_the_kubelet_counts_them():
    facts = pod_facts({
        "initContainers": [guaranteed("init", cpu="6", mem="1Gi"),
                           dict(guaranteed("side", cpu="1", mem="1Gi"), restartPolicy="Always")],
        "containers": [guaranteed("a", cpu="2", mem="2Gi"), guaranteed("b", cpu="1", mem="1Gi")]})
    # cpu: max(init 6, app 2 + 1 + sidecar 1) = 6; memory: max(1, 2 + 1 + 1) = 4 Gi
    assert (facts.cpu, facts.mem, facts.containers) == (6000, 4 * GiB, 3)
    assert facts.qos == "Guaranteed"


@pytest.mark.parametrize("containers, scope, policy, mode", [
    ([guaranteed()], "pod", "single-numa-node", "single-numa-node"),
    ([container("a", "2", "1Gi")], "pod", "single-numa-node", "none"),        # Burstable floats
    ([guaranteed(cpu="1500m")], "pod", "single-numa-node", "none"),           # not whole CPUs
    ([guaranteed("a"), guaranteed("b")], "pod", "single-numa-node", "single-numa-node"),
    ([guaranteed("a"), guaranteed("b")], "container", "single-numa-node", "restricted"),
    ([guaranteed("a")], "container", "single-numa-node", "single-numa-node"),
    ([guaranteed("a"), guaranteed("b")], "container", "best-effort", "best-effort"),
    ([guaranteed()], "pod", "none", "none"),
])
def test_kubelet_mode(containers, scope, policy, mode):
    assert kubelet_mode(workload_spec(pod("p", *containers)), policy, scope) == mode


def test_a_vnuma_or_dedicated_cpu_vm_is_guaranteed():
    def vm(cpu):
        return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": "v"},
                "spec": {"template": {"spec": {"domain": {"cpu": cpu, "memory": {"guest": "8Gi"}}}}}}
    assert workload_spec(vm({"cores": 4})).qos == "Burstable"
    assert workload_spec(vm({"cores": 4, "dedicatedCpuPlacement": True})).aligned
    assert workload_spec(vm({"cores": 4, "numa": {"guestMappingPassthrough": {}}})).aligned


def test_the_annotation_wins_over_the_kubelet_mode():
    manifest = pod("p", container("a", "1", "1Gi"))
    manifest["metadata"]["annotations"] = {"numasched.io/numa": "restricted"}
    assert kubelet_mode(workload_spec(manifest), "single-numa-node", "pod") == "restricted"


def test_hosts_with_different_policies_take_the_strictest(tmp_path):
    inv = tmp_path / "inv.yaml"
    inv.write_text(INVENTORY.replace("single-numa-node, topologyManagerScope: pod}\n- name: b",
                                     "best-effort}\n- name: b"))
    policy, scope, note = kubelet_policy(read_topology(inv))
    assert (policy, scope) == ("single-numa-node", "container")
    assert "different kubelet topologyManagerPolicy values" in note


def test_place_gives_burstable_pods_none_and_guaranteed_pods_the_policy(tmp_path, topology):
    docs = [pod("g", guaranteed(cpu="8", mem="1Gi")), pod("b", container("x", "10", "1Gi"))]
    report, placement = place_report(topology, read_workloads(write(tmp_path, docs), topology))
    rows = {r["workload"]: r for r in report["placements"]}
    assert rows["default/g"]["numa"] == "single-numa-node" and len(rows["default/g"]["nodes"]) == 1
    assert rows["default/b"]["numa"] == "none" and rows["default/b"]["status"] == "placed"
    assert np.all(placement.free_cpu >= 0)
    forced, _ = place_report(topology, read_workloads(write(tmp_path, docs), topology),
                             numa="single-numa-node")
    assert {r["status"] for r in forced["placements"]} == {"placed", "too-large"}


def test_the_replica_limit_applies_to_every_replicated_kind():
    with limits.override(max_replicas=3):
        for kind, key in (("StatefulSet", "replicas"), ("ReplicaSet", "replicas"),
                          ("Job", "parallelism")):
            with pytest.raises(ValueError, match=rf"spec.{key}: must be between 0 and 3"):
                workload_spec(template_kind(kind, **{key: 4}))
