"""numasched.control.manifests: YAML/dict manifests -> validated specs, errors naming the field."""
from __future__ import annotations

import pytest

from numasched.control.manifests import (
    NUMA_ANNOTATION,
    WorkloadSpec,
    load_documents,
    namespace_spec,
    parse,
    quota_spec,
    workload_spec,
)

GiB = 2**30


def pod(name="web", requests=None, *, namespace=None, annotations=None, **spec):
    containers = spec.pop("containers", None)
    if containers is None:
        containers = [{"name": "app", "resources": {"requests": requests or {}}}]
    meta = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"containers": containers, **spec}}


def vm(name="db", domain=None, annotations=None):
    template = {"spec": {"domain": domain}}
    if annotations:
        template["metadata"] = {"annotations": annotations}
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": name},
            "spec": {"template": template}}


# ------------------------------------------------------------------------------------------
# load_documents
# ------------------------------------------------------------------------------------------
def test_load_documents_accepts_dict_list_and_multi_document_yaml():
    one = pod()
    assert load_documents(one) == [one]
    assert load_documents([one, one]) == [one, one]
    text = """
kind: Namespace
metadata: {name: team-a}
---
---
kind: Pod
metadata: {name: web, namespace: team-a}
spec:
  containers: [{name: app, resources: {requests: {cpu: 500m, memory: 1Gi}}}]
"""
    docs = load_documents(text)
    assert [d["kind"] for d in docs] == ["Namespace", "Pod"]  # the empty document is skipped
    assert load_documents(text.encode()) == docs


def test_load_documents_flattens_a_list_kind():
    docs = load_documents({"kind": "List", "items": [pod("a"), pod("b")]})
    assert [d["metadata"]["name"] for d in docs] == ["a", "b"]


@pytest.mark.parametrize("text, match", [
    ("kind: Pod\nmetadata: {name: [x\n", r"^invalid YAML at line \d+, column \d+: "),
    ("a: b: c\n", r"^invalid YAML at line 1, column 5: mapping values are not allowed"),
    ("- 1\n- 2\n", r"^document 1: expected a mapping \(a manifest\), got list"),
    ("kind: Pod\n---\n42\n", r"^document 2: expected a mapping"),
])
def test_load_documents_refuses_malformed_yaml_in_one_line(text, match):
    with pytest.raises(ValueError, match=match) as info:
        load_documents(text)
    assert "\n" not in str(info.value)


def test_load_documents_refuses_other_types_and_python_tags():
    with pytest.raises(ValueError, match="must be a dict, a list of dicts or YAML text"):
        load_documents(42)
    # safe_load_all only: no arbitrary Python objects
    with pytest.raises(ValueError, match="invalid YAML"):
        load_documents("!!python/object/apply:os.system ['true']\n")


# ------------------------------------------------------------------------------------------
# Pods
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cpu, millicores", [("500m", 500), ("1.5", 1500), (2, 2000), (1.5, 1500),
                                             ("1e3", 1_000_000), ("0.1m", 1)])
def test_pod_cpu_quantities(cpu, millicores):
    assert workload_spec(pod(requests={"cpu": cpu, "memory": "1Gi"})).cpu == millicores


@pytest.mark.parametrize("mem, num_bytes", [("2Gi", 2 * GiB), ("1G", 10**9), ("1e3", 1000),
                                            (1024, 1024), ("1.5", 2)])
def test_pod_memory_quantities(mem, num_bytes):
    assert workload_spec(pod(requests={"cpu": 1, "memory": mem})).mem == num_bytes


def test_pod_requests_sum_containers_and_take_the_largest_init_container():
    manifest = pod(containers=[
        {"name": "a", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
        {"name": "b", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}},
    ], initContainers=[
        {"name": "migrate", "resources": {"requests": {"cpu": "3", "memory": "512Mi"}}},
        {"name": "warm", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}},
    ])
    spec = workload_spec(manifest)
    # cpu: max(0.5 + 1, 3) = 3 cores; memory: max(2 Gi, 1 Gi) = 2 Gi (per resource)
    assert (spec.cpu, spec.mem) == (3000, 2 * GiB)
    assert spec[:9] == WorkloadSpec("Pod", "default", "web", 3000, 2 * GiB, None, False, 0, 1)[:9]


def test_sidecar_init_containers_run_beside_the_app_and_later_init_containers():
    manifest = pod(containers=[{"name": "a", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}],
                   initContainers=[
                       {"name": "proxy", "restartPolicy": "Always",
                        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}}},
                       {"name": "setup", "resources": {"requests": {"cpu": "2", "memory": "128Mi"}}},
                   ])
    spec = workload_spec(manifest)
    assert spec.cpu == max(1000 + 250, 250 + 2000)
    assert spec.mem == max(GiB + 256 * 2**20, 256 * 2**20 + 128 * 2**20)


def test_limits_stand_in_for_missing_requests_and_overhead_is_added():
    manifest = pod(containers=[{"name": "a", "resources": {"limits": {"cpu": "2", "memory": "1Gi"}}}],
                   overhead={"cpu": "100m", "memory": "64Mi"})
    spec = workload_spec(manifest)
    assert (spec.cpu, spec.mem) == (2100, GiB + 64 * 2**20)


def test_a_pod_may_request_nothing():
    spec = workload_spec(pod(containers=[{"name": "a"}]))
    assert (spec.cpu, spec.mem) == (0, 0)


def test_numa_annotation_priority_and_namespace():
    spec = workload_spec(pod(namespace="team-a", annotations={NUMA_ANNOTATION: "single-numa-node"},
                             requests={"cpu": 1, "memory": "1Gi"}, priority=7))
    assert (spec.namespace, spec.numa, spec.priority) == ("team-a", "single-numa-node", 7)


@pytest.mark.parametrize("manifest, match", [
    (pod(requests={"cpu": "2GB"}),
     r"^spec\.containers\[0\]\.resources\.requests\.cpu: invalid quantity '2GB'"),
    (pod(requests={"memory": "-1Gi"}),
     r"^spec\.containers\[0\]\.resources\.requests\.memory: quantity must not be negative, got '-1Gi'"),
    (pod(requests={"cpu": True}), r"^spec\.containers\[0\]\.resources\.requests\.cpu: expected a Kubernetes quantity"),
    (pod(containers=[{"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}]),
     r"^spec\.containers\[0\]\.resources\.requests\.cpu: '2' is above its limit '1'"),
    (pod(containers=[]), r"^spec\.containers: expected a non-empty list"),
    ({"kind": "Pod", "metadata": {"name": "x"}, "spec": {}}, r"^spec\.containers: required"),
    ({"kind": "Pod", "metadata": {"name": "x"}}, r"^spec: required"),
    ({"kind": "Pod", "metadata": {}, "spec": {"containers": [{}]}}, r"^metadata\.name: required"),
    ({"kind": "Pod", "spec": {"containers": [{}]}}, r"^metadata: required"),
    ({"kind": "Pod", "metadata": {"name": "Web_1"}, "spec": {"containers": [{}]}},
     r"^metadata\.name: must be a DNS-1123 subdomain"),
    ({"kind": "Pod", "metadata": {"name": "x", "namespace": "A"}, "spec": {"containers": [{}]}},
     r"^metadata\.namespace: must be a DNS-1123 label"),
    (pod(annotations={NUMA_ANNOTATION: "strict"}),
     r"^metadata\.annotations\['numasched.io/numa'\]: unknown numa mode 'strict'; known: 'none'"),
    (pod(priority="high"), r"^spec\.priority: expected an integer, got 'high'"),
    (pod(priority=2**40), r"^spec\.priority: must be between"),
    (pod(containers=[{"resources": {"requests": ["cpu"]}}]),
     r"^spec\.containers\[0\]\.resources\.requests: expected a mapping, got list"),
    ({"kind": "Service", "metadata": {"name": "x"}}, r"^kind: unknown kind 'Service'; known: Namespace"),
    ({"metadata": {"name": "x"}}, r"^kind: required"),
])
def test_bad_workload_manifests_name_the_field(manifest, match):
    with pytest.raises(ValueError, match=match):
        workload_spec(manifest)


# ------------------------------------------------------------------------------------------
# Deployments and VMs
# ------------------------------------------------------------------------------------------
def test_deployment_replicas_of_the_template():
    manifest = {"kind": "Deployment", "metadata": {"name": "api", "namespace": "team-a"},
                "spec": {"replicas": 5, "template": {
                    "metadata": {"annotations": {NUMA_ANNOTATION: "best-effort"}},
                    "spec": {"priority": 3, "containers": [
                        {"name": "a", "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}}}]}}}}
    assert workload_spec(manifest)[:9] == WorkloadSpec("Deployment", "team-a", "api", 250,
                                                       512 * 2**20, "best-effort", False, 3, 5)[:9]
    manifest["spec"]["replicas"] = -1
    with pytest.raises(ValueError, match=r"^spec\.replicas: must be between 0 and"):
        workload_spec(manifest)
    manifest["spec"]["replicas"] = 2
    manifest["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "x"
    with pytest.raises(ValueError, match=r"^spec\.template\.spec\.containers\[0\]\.resources\.requests\.cpu: invalid"):
        workload_spec(manifest)


def test_virtual_machine_vcpus_memory_and_vnuma():
    spec = workload_spec(vm(domain={"cpu": {"sockets": 2, "cores": 4, "threads": 2,
                                            "numa": {"guestMappingPassthrough": {}}},
                                    "memory": {"guest": "64Gi"}}))
    assert spec[:9] == WorkloadSpec("VirtualMachine", "default", "db", 16_000, 64 * GiB, None, True, 0, 1)[:9]
    spec = workload_spec(vm(domain={"cpu": {"cores": 2},
                                    "resources": {"requests": {"memory": "8Gi", "cpu": "1500m"}}},
                            annotations={NUMA_ANNOTATION: "single-numa-node"}))
    assert (spec.cpu, spec.mem, spec.vnuma, spec.numa) == (1500, 8 * GiB, False, "single-numa-node")
    # requests.memory (what the launcher pod asks for) wins over the guest size
    spec = workload_spec(vm(domain={"memory": {"guest": "8Gi"}, "resources": {"requests": {"memory": "4Gi"}}}))
    assert (spec.cpu, spec.mem) == (1000, 4 * GiB)


@pytest.mark.parametrize("domain, match", [
    ({"cpu": {"cores": 2}}, r"^spec\.template\.spec\.domain\.memory\.guest: required"),
    ({"cpu": {"cores": 0}, "memory": {"guest": "1Gi"}}, r"^spec\.template\.spec\.domain\.cpu\.cores: must be between 1"),
    ({"memory": {"guest": "lots"}}, r"^spec\.template\.spec\.domain\.memory\.guest: invalid quantity 'lots'"),
    ({"memory": {"guest": "0"}}, r"^spec\.template\.spec\.domain\.memory\.guest: a VM must have some memory"),
    (None, r"^spec\.template\.spec\.domain: required"),
])
def test_bad_virtual_machines_name_the_field(domain, match):
    with pytest.raises(ValueError, match=match):
        workload_spec(vm(domain=domain))


# ------------------------------------------------------------------------------------------
# Namespaces and quotas
# ------------------------------------------------------------------------------------------
def test_namespace_and_quota_specs():
    ns = namespace_spec({"kind": "Namespace", "metadata": {
        "name": "team-a", "annotations": {NUMA_ANNOTATION: "single-numa-node"}}})
    assert (ns.name, ns.numa) == ("team-a", "single-numa-node")
    q = quota_spec({"kind": "ResourceQuota", "metadata": {"name": "compute", "namespace": "team-a"},
                    "spec": {"hard": {"requests.cpu": "10", "requests.memory": "64Gi", "pods": 20}}})
    assert (q.namespace, q.name, q.cpu, q.memory, q.count) == ("team-a", "compute", 10_000, 64 * GiB, 20)
    q = parse({"kind": "ResourceQuota", "metadata": {"name": "q"}, "spec": {"hard": {"memory": "1Gi"}}})
    assert (q.cpu, q.memory, q.count) == (None, GiB, None)


@pytest.mark.parametrize("hard, match", [
    ({"limits.cpu": "4"}, r"^spec\.hard\['limits\.cpu'\]: unsupported quota resource 'limits\.cpu'"),
    ({"cpu": "4", "requests.cpu": "2"}, r"^spec\.hard\['requests\.cpu'\]: cpu is limited twice"),
    ({"pods": "1.5"}, r"^spec\.hard\['pods'\]: a count must be a whole number"),
    ({"requests.memory": "-1"}, r"^spec\.hard\['requests\.memory'\]: quantity must not be negative"),
])
def test_bad_quotas_name_the_field(hard, match):
    with pytest.raises(ValueError, match=match):
        quota_spec({"kind": "ResourceQuota", "metadata": {"name": "q"}, "spec": {"hard": hard}})
