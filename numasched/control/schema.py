"""The fields of the Kubernetes and KubeVirt objects numasched reads, to report unknown ones.

A schema is ``None`` (any value, not looked into: labels, probes, volumes...), a ``dict`` of
field name -> schema (a mapping whose other keys are unknown), or a one-element ``list``
(a list whose items follow that schema). ``unknown_fields(obj, schema, path)`` yields one
message per unknown field, with its path and, when a known field is close, a suggestion, as
``kubectl apply --validate`` reports them::

    spec.template.spec.containers[0].resouces: unknown field, did you mean resources?

Resource names in ``requests``/``limits`` are checked too: a key without a ``/`` (extended
resources such as ``nvidia.com/gpu`` always have one) must be a resource Kubernetes knows, so
``cpus: 2`` does not silently request nothing.
"""
from __future__ import annotations

import difflib

ANY = None

OBJECT_META = {k: ANY for k in (
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
    "annotations", "ownerReferences", "finalizers", "managedFields")}

RESOURCE_NAMES = ("cpu", "memory", "ephemeral-storage", "storage", "pods")
RESOURCE_LIST = "resource-list"    # a marker: a mapping of resource names to quantities

RESOURCES = {"requests": RESOURCE_LIST, "limits": RESOURCE_LIST, "claims": ANY}

CONTAINER = {k: ANY for k in (
    "name", "image", "command", "args", "workingDir", "ports", "envFrom", "env", "resizePolicy",
    "restartPolicy", "volumeMounts", "volumeDevices", "livenessProbe", "readinessProbe",
    "startupProbe", "lifecycle", "terminationMessagePath", "terminationMessagePolicy",
    "imagePullPolicy", "securityContext", "stdin", "stdinOnce", "tty")}
CONTAINER["resources"] = RESOURCES

POD_SPEC = {k: ANY for k in (
    "volumes", "ephemeralContainers", "restartPolicy", "terminationGracePeriodSeconds",
    "activeDeadlineSeconds", "dnsPolicy", "nodeSelector", "serviceAccountName", "serviceAccount",
    "automountServiceAccountToken", "nodeName", "hostNetwork", "hostPID", "hostIPC",
    "shareProcessNamespace", "securityContext", "imagePullSecrets", "hostname", "subdomain",
    "affinity", "schedulerName", "tolerations", "hostAliases", "priorityClassName", "priority",
    "dnsConfig", "readinessGates", "runtimeClassName", "enableServiceLinks", "preemptionPolicy",
    "topologySpreadConstraints", "setHostnameAsFQDN", "os", "hostUsers",
    "schedulingGates", "resourceClaims")}
POD_SPEC.update(containers=[CONTAINER], initContainers=[CONTAINER], overhead=RESOURCE_LIST,
                resources=RESOURCES)

POD_TEMPLATE = {"metadata": OBJECT_META, "spec": POD_SPEC}

DEPLOYMENT_SPEC = {k: ANY for k in (
    "replicas", "selector", "strategy", "minReadySeconds", "revisionHistoryLimit", "paused",
    "progressDeadlineSeconds")}
DEPLOYMENT_SPEC["template"] = POD_TEMPLATE
STATEFULSET_SPEC = {k: ANY for k in (
    "replicas", "selector", "volumeClaimTemplates", "serviceName", "podManagementPolicy",
    "updateStrategy", "revisionHistoryLimit", "minReadySeconds",
    "persistentVolumeClaimRetentionPolicy", "ordinals")}
STATEFULSET_SPEC["template"] = POD_TEMPLATE
REPLICASET_SPEC = {"replicas": ANY, "minReadySeconds": ANY, "selector": ANY,
                   "template": POD_TEMPLATE}
DAEMONSET_SPEC = {"selector": ANY, "template": POD_TEMPLATE, "updateStrategy": ANY,
                  "minReadySeconds": ANY, "revisionHistoryLimit": ANY}
JOB_SPEC = {k: ANY for k in (
    "parallelism", "completions", "activeDeadlineSeconds", "podFailurePolicy", "successPolicy",
    "backoffLimit", "backoffLimitPerIndex", "maxFailedIndexes", "selector", "manualSelector",
    "ttlSecondsAfterFinished", "completionMode", "suspend", "podReplacementPolicy", "managedBy")}
JOB_SPEC["template"] = POD_TEMPLATE

# KubeVirt (kubevirt.io/v1): the parts numasched reads are spelled out, the rest is ANY.
DOMAIN_CPU = {k: ANY for k in (
    "cores", "sockets", "threads", "maxSockets", "model", "features", "dedicatedCpuPlacement",
    "numa", "isolateEmulatorThread", "realtime")}
DOMAIN_MEMORY = {"guest": ANY, "hugepages": ANY, "maxGuest": ANY}
DOMAIN = {k: ANY for k in (
    "machine", "firmware", "clock", "features", "devices", "ioThreadsPolicy", "ioThreads",
    "chassis", "launchSecurity")}
DOMAIN.update(cpu=DOMAIN_CPU, memory=DOMAIN_MEMORY,
              resources={"requests": RESOURCE_LIST, "limits": RESOURCE_LIST,
                         "overcommitGuestOverhead": ANY})
VMI_SPEC = {k: ANY for k in (
    "priorityClassName", "priority", "nodeSelector", "affinity", "schedulerName", "tolerations",
    "topologySpreadConstraints", "evictionStrategy", "startStrategy",
    "terminationGracePeriodSeconds", "volumes", "readinessProbe", "livenessProbe", "hostname",
    "subdomain", "networks", "dnsPolicy", "dnsConfig", "accessCredentials", "architecture",
    "resourceClaims")}
VMI_SPEC["domain"] = DOMAIN
VM_SPEC = {k: ANY for k in ("running", "runStrategy", "instancetype", "preference",
                            "dataVolumeTemplates", "updateVolumesStrategy")}
VM_SPEC["template"] = {"metadata": OBJECT_META, "spec": VMI_SPEC}
VM_POOL_SPEC = {"replicas": ANY, "selector": ANY, "paused": ANY,
                "virtualMachineTemplate": {"metadata": OBJECT_META, "spec": VM_SPEC}}

SPECS = {
    "Pod": POD_SPEC, "Deployment": DEPLOYMENT_SPEC, "StatefulSet": STATEFULSET_SPEC,
    "ReplicaSet": REPLICASET_SPEC, "DaemonSet": DAEMONSET_SPEC, "Job": JOB_SPEC,
    "VirtualMachine": VM_SPEC, "VirtualMachineInstance": VMI_SPEC,
    "VirtualMachinePool": VM_POOL_SPEC, "Namespace": ANY,
    "ResourceQuota": {"hard": ANY, "scopes": ANY, "scopeSelector": ANY},
}


def object_schema(kind: str) -> dict:
    """The top-level schema of an object of ``kind`` (status is never looked into)."""
    return {"apiVersion": ANY, "kind": ANY, "metadata": OBJECT_META, "spec": SPECS.get(kind),
            "status": ANY}


def suggestion(name: str, known) -> str | None:
    """The known name closest to ``name`` (a different case, or a close spelling), if any."""
    known = list(known)
    for k in known:
        if k.lower() == name.lower():
            return k
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return close[0] if close else None


def _unknown(path: str, name: str, known) -> str:
    hint = suggestion(name, known)
    return f"{path}: unknown field" + (f", did you mean {hint}?" if hint else "")


def unknown_fields(obj, schema, path: str = ""):
    """Messages for the unknown fields of ``obj`` under ``schema`` (an iterative walk: depth
    is already bounded by the YAML loader, but a dict built in Python is walked the same way)."""
    todo = [(obj, schema, path)]
    while todo:
        value, sch, where = todo.pop()
        if sch is ANY:
            continue
        if sch == RESOURCE_LIST:
            if isinstance(value, dict):
                for key in value:
                    if isinstance(key, str) and "/" not in key and key not in RESOURCE_NAMES \
                            and not key.startswith("hugepages-"):
                        yield _unknown(f"{where}.{key}", key, RESOURCE_NAMES)
            continue
        if isinstance(sch, list):
            if isinstance(value, list):
                todo.extend((item, sch[0], f"{where}[{i}]") for i, item in
                            reversed(list(enumerate(value))))
            continue
        if not isinstance(value, dict):
            continue     # a wrong type is the reader's error, with its own message
        children = []
        for key, item in value.items():
            child = f"{where}.{key}" if where else str(key)
            if key not in sch:
                yield _unknown(child, str(key), sch)
            else:
                children.append((item, sch[key], child))
        todo.extend(reversed(children))


__all__ = ["object_schema", "unknown_fields", "suggestion", "SPECS", "RESOURCE_NAMES"]
