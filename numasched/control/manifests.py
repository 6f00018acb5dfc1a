"""Kubernetes-style manifests (dicts or YAML text) -> validated, immutable specs.

This is where user input enters the controller; nothing here touches the store. Every error is
a ``ValueError`` whose message starts with the field path (``spec.containers[0].resources.
requests.cpu: invalid quantity '2GB' ...``), so a refused manifest says exactly what to fix.

Documents
    ``load_documents(source)`` takes a dict, a list of dicts, or YAML text (one or several
    ``---`` documents, read by ``numasched.io.files.load_yaml``: safe types only, duplicate
    keys, excessive depth and alias bombs refused). Empty documents are skipped; ``kind: List``
    and typed lists (``PodList``...) as ``kubectl get -o yaml|json`` writes them are flattened.

Unknown fields
    Every field is checked against the Kubernetes / KubeVirt object's fields
    (``numasched.control.schema``): an unknown one is a ``ManifestWarning`` naming its path and
    the closest known field (``spec.template.spec.containers[0].resouces: unknown field, did
    you mean resources?``); with ``strict=True`` it is a ``ValueError`` instead.

Kinds and the choices made for them
    - ``Namespace``: ``metadata.name``; its default NUMA mode is the annotation
      ``numasched.io/numa``.
    - ``ResourceQuota``: ``spec.hard`` with ``requests.cpu`` (or ``cpu``), ``requests.memory``
      (or ``memory``) and ``pods`` (or ``count/pods``, ``count``: the number of workloads, Pods,
      Deployment replicas and VMs alike). Any other key is refused, so a quota never silently
      fails to limit what its author meant.
    - ``Pod``: the request is the kubelet's effective request, per resource: the sum over
      ``spec.containers`` (plus restartable "sidecar" init containers, ``restartPolicy:
      Always``) against the largest ordinary init container (counting the sidecars started
      before it); the larger wins. ``spec.overhead`` is added, as the scheduler does. A
      container's request defaults to its limit when only the limit is given. A Pod may request
      nothing (``cpu``/``mem`` 0): it is still placed (the controller asks the kernel for one
      millicore and one byte, the smallest positive amount), but it is refused in a namespace
      whose quota limits that resource.
    - ``Deployment``, ``ReplicaSet``, ``StatefulSet``: ``spec.replicas`` (default 1, an
      integer in 0..``limits.max_replicas``) copies of the Pod in ``spec.template``. ``Job``:
      ``spec.parallelism`` copies (default 1), at most ``spec.completions``, 0 when suspended.
      ``DaemonSet``: one copy per eligible host (``WorkloadSpec.per_host``; the reader expands
      it over a topology).
    - A Pod's ``spec.nodeName`` and ``status.phase`` are kept (``WorkloadSpec.node``,
      ``.phase``): a bound pod is existing load on that node (``.bound``), a Succeeded or
      Failed one holds nothing (``.finished``). Its QoS class (``.qos``) and whether its
      containers ask for whole CPUs (``.integer_cpu``) say whether the kubelet aligns it to
      NUMA nodes (``.aligned``).
    - ``VirtualMachine`` (KubeVirt): vCPUs = ``sockets * cores * threads`` of
      ``spec.template.spec.domain.cpu`` (each defaults to 1); CPU is vCPUs x 1000 millicores
      unless ``domain.resources.requests.cpu`` is given. Memory is
      ``domain.resources.requests.memory`` (what the launcher pod requests) if given, else
      ``domain.memory.guest``; one of them is required. ``vnuma`` is true when
      ``domain.cpu.numa.guestMappingPassthrough`` is present (the guest sees its NUMA layout).
      ``VirtualMachineInstance`` (its ``spec`` is the template's spec; ``status.nodeName`` binds
      it) and ``VirtualMachinePool`` (``spec.replicas`` VMs of
      ``spec.virtualMachineTemplate``) are read the same way.

Quantities are Kubernetes quantities (``500m``, ``1.5``, ``2Gi``, ``1G``, ``1e3``) read with
``numasched.io.quantity``; a bare YAML number is a quantity too (``cpu: 2`` is two cores, not two
millicores). Negative or unparsable amounts are refused, and so is any amount above
``codes.MAX_REQUEST_AMOUNT`` (2**62, the array API's limit), per container and for a pod's sum,
so nothing admitted here can fail later in a placement call.

The controller manages ``KINDS``; ``workload_spec`` reads every kind of ``READ_KINDS``.

Placement hints, on the workload's own metadata (for a Deployment or a VM, the template's
metadata wins over the object's):
    - NUMA mode: annotation ``numasched.io/numa``, one of ``none``, ``single-numa-node``,
      ``restricted``, ``best-effort``; absent means the namespace's default, then the
      controller's.
    - priority: ``spec.priority`` of the pod spec (``spec.template.spec.priority`` for a
      Deployment or a VM), an int32, default 0; higher is placed first.
"""
from __future__ import annotations

import re
import warnings
from typing import NamedTuple

from .. import codes
from ..io import limits
from ..io.files import check_items, decode, flatten_list, load_yaml
from ..io.quantity import count as parse_count
from ..io.quantity import cpu_millicores, memory_bytes, shown
from . import schema

NUMA_ANNOTATION = "numasched.io/numa"
DEFAULT_NAMESPACE = "default"
#: The workload kinds the controller manages (``Controller.apply``).
WORKLOAD_KINDS = ("Pod", "Deployment", "VirtualMachine")
KINDS = ("Namespace", "ResourceQuota") + WORKLOAD_KINDS
#: Every workload kind ``workload_spec`` reads: one pod (or VM) each, ``replicas`` copies of a
#: template, or one copy per eligible host (``WorkloadSpec.per_host``).
SINGLE_KINDS = ("Pod", "VirtualMachine", "VirtualMachineInstance")
REPLICATED_KINDS = ("Deployment", "StatefulSet", "ReplicaSet", "Job", "VirtualMachinePool")
PER_HOST_KINDS = ("DaemonSet",)
READ_KINDS = SINGLE_KINDS + REPLICATED_KINDS + PER_HOST_KINDS
_ALL_KINDS = tuple(dict.fromkeys(KINDS + READ_KINDS))
#: Kinds that carry no workload: a reader skips them with one line saying so.
NON_WORKLOAD_KINDS = (
    "Service", "ConfigMap", "Secret", "Ingress", "IngressClass", "ServiceAccount", "Role",
    "RoleBinding", "ClusterRole", "ClusterRoleBinding", "PersistentVolumeClaim",
    "PersistentVolume", "StorageClass", "NetworkPolicy", "HorizontalPodAutoscaler",
    "PodDisruptionBudget", "LimitRange", "PriorityClass", "Endpoints", "EndpointSlice",
    "CustomResourceDefinition", "ControllerRevision", "Event", "Lease", "CronJob",
    "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "APIService",
    "Node", "NodeResourceTopology", "DataVolume", "VirtualMachineInstanceMigration",
    "VirtualMachineInstanceReplicaSet", "Gateway", "HTTPRoute", "ServiceMonitor",
    "PodMonitor", "VerticalPodAutoscaler", "RuntimeClass", "CSIDriver", "VolumeSnapshot")
#: Pod phases of pods that hold nothing any more.
FINISHED_PHASES = ("Succeeded", "Failed")
PRIORITY_RANGE = (-(2**31), 2**31 - 1)
QOS_CLASSES = ("Guaranteed", "Burstable", "BestEffort")

#: ResourceQuota ``spec.hard`` keys -> the controller's three quota resources.
QUOTA_KEYS = {
    "requests.cpu": "cpu", "cpu": "cpu",
    "requests.memory": "memory", "memory": "memory",
    "pods": "count", "count/pods": "count", "count": "count",
}

# A DNS-1123 label for namespaces, a DNS-1123 subdomain for other names (Kubernetes' rules).
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


class ManifestWarning(UserWarning):
    """A manifest field numasched does not know (most often a typo: ``resouces``). Issued with
    ``warnings.warn``; the same message is a ``ValueError`` under ``strict=True``."""


class WorkloadSpec(NamedTuple):
    """One workload manifest, validated. Amounts are per replica (per pod or VM)."""
    kind: str           # one of READ_KINDS
    namespace: str
    name: str
    cpu: int            # millicores per replica (0 = requests none)
    mem: int            # bytes per replica (0 = requests none)
    numa: str | None    # NUMA mode name, or None for the namespace's / controller's default
    vnuma: bool         # the guest sees its NUMA layout
    priority: int       # higher is placed first
    replicas: int       # 1 for a Pod or a VM; per eligible host for a DaemonSet
    node: str | None = None      # spec.nodeName (status.nodeName of a VMI): already bound there
    phase: str | None = None     # status.phase as given (Pending, Running, Succeeded, Failed)
    qos: str = "BestEffort"      # the kubelet's QoS class (Guaranteed, Burstable, BestEffort)
    integer_cpu: bool = False    # every container asks for whole CPUs
    containers: int = 1          # containers that run side by side (app and sidecar containers)
    per_host: bool = False       # one replica per eligible host (DaemonSet)

    @property
    def finished(self) -> bool:
        """A pod in phase Succeeded or Failed: it holds nothing and is ignored."""
        return self.phase in FINISHED_PHASES

    @property
    def bound(self) -> bool:
        """Already running (or assigned) on ``node``: existing load there, never moved."""
        return self.node is not None and not self.finished

    @property
    def aligned(self) -> bool:
        """The kubelet's Topology Manager aligns it to NUMA nodes: Guaranteed QoS and whole
        CPUs (the static CPU manager gives it exclusive CPUs). Other pods float over the host."""
        return self.qos == "Guaranteed" and self.integer_cpu


class NamespaceSpec(NamedTuple):
    name: str
    numa: str | None    # default NUMA mode of the namespace's workloads


class QuotaSpec(NamedTuple):
    namespace: str
    name: str
    cpu: int | None     # millicores; None = not limited by this quota
    memory: int | None  # bytes
    count: int | None   # workloads (Pods, replicas, VMs)


class PodFacts(NamedTuple):
    """What the kubelet derives from a pod spec."""
    cpu: int            # effective request (millicores), overhead included
    mem: int            # effective request (bytes), overhead included
    qos: str            # Guaranteed, Burstable or BestEffort
    integer_cpu: bool   # every app and sidecar container asks for whole CPUs (> 0)
    containers: int     # app and sidecar containers


# --------------------------------------------------------------------------------------------
# Documents
# --------------------------------------------------------------------------------------------
def load_documents(source) -> list[dict]:
    """The manifests in ``source``: a dict, a list of dicts, or YAML text (multi-document).

    YAML goes through ``numasched.io.files.load_yaml`` (duplicate keys, depth and size refused).
    Lists are flattened: ``kind: List`` and typed lists as ``kubectl get -o yaml|json`` and the
    API write them (``PodList``, ``DeploymentList``...; an item without ``kind`` takes the
    list's kind without ``List``). Malformed input raises ``ValueError`` in one line naming
    the problem and where it is.
    """
    if isinstance(source, bytes):
        source = decode(source, "manifest text")
    if isinstance(source, dict):
        docs = [source]
    elif isinstance(source, str):
        docs = load_yaml(source)
    elif isinstance(source, (list, tuple)):
        docs = list(source)
    else:
        raise ValueError("manifests must be a dict, a list of dicts or YAML text, got "
                         f"{type(source).__name__}")
    out: list[dict] = []
    for i, doc in enumerate(docs):
        if not isinstance(doc, dict):
            raise ValueError(f"document {i + 1}: expected a mapping (a manifest), got "
                             f"{type(doc).__name__} {_short(doc)}")
        out.extend(flatten_list(doc, f"document {i + 1}"))
        check_items(len(out), "manifests")
    return out


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_fields(manifest: dict, kind: str, *, strict: bool = False) -> list[str]:
    """Unknown fields of a ``kind`` manifest, with their paths and a suggestion: each is a
    ``ManifestWarning``, or, under ``strict``, the first is a ``ValueError``. Returns them."""
    found = list(schema.unknown_fields(manifest, schema.object_schema(kind)))
    if strict and found:
        more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
        raise ValueError(found[0] + more)
    for message in found:
        warnings.warn(message, ManifestWarning, stacklevel=3)
    return found


# --------------------------------------------------------------------------------------------
# Field access with paths
# --------------------------------------------------------------------------------------------
def _mapping(parent: dict, key: str, path: str, *, required: bool = False) -> dict:
    value = parent.get(key)
    if value is None:
        if required:
            raise ValueError(f"{path}: required")
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{path}: expected a mapping, got {type(value).__name__} {_short(value)}")
    return value


def _int(value, path: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{path}: expected an integer, got {_short(value)}")
    if not lo <= value <= hi:
        raise ValueError(f"{path}: must be between {lo} and {hi}, got {value}")
    return value


def _quantity_text(value):
    """A bare YAML number is a quantity in the resource's base unit (cores, bytes)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(value)
    return value


def manifest_cpu(value, path: str) -> int:
    """A CPU quantity in a manifest as millicores (``2`` and ``"2"`` are two cores)."""
    return cpu_millicores(_quantity_text(value), path)


def manifest_memory(value, path: str) -> int:
    """A memory quantity in a manifest as bytes."""
    return memory_bytes(_quantity_text(value), path)


def _metadata(manifest: dict, *, namespaced: bool) -> tuple[str | None, str]:
    meta = _mapping(manifest, "metadata", "metadata", required=True)
    name = meta.get("name")
    if name is None or name == "":
        raise ValueError("metadata.name: required")
    pattern, what = (_LABEL, "a DNS-1123 label") if not namespaced else (_SUBDOMAIN, "a DNS-1123 subdomain")
    if not isinstance(name, str) or not pattern.match(name):
        raise ValueError(f"metadata.name: must be {what} (lower-case letters, digits, '-'), "
                         f"got {_short(name)}")
    if not namespaced:
        return None, name
    namespace = meta.get("namespace", DEFAULT_NAMESPACE)
    if not isinstance(namespace, str) or not _LABEL.match(namespace):
        raise ValueError(f"metadata.namespace: must be a DNS-1123 label, got {_short(namespace)}")
    return namespace, name


def _numa(meta: dict, path: str) -> str | None:
    annotations = _mapping(meta, "annotations", f"{path}.annotations")
    value = annotations.get(NUMA_ANNOTATION)
    if value is None:
        return None
    field = f"{path}.annotations[{NUMA_ANNOTATION!r}]"
    if not isinstance(value, str):
        raise ValueError(f"{field}: expected a NUMA mode name, got {_short(value)}")
    try:
        codes.resolve(codes.NUMA_MODES, value, "numa mode")
    except ValueError as exc:
        raise ValueError(f"{field}: {exc}") from None
    return value


def numa_of(*metas: tuple[dict, str]) -> str | None:
    """The first NUMA annotation found among (metadata, path) pairs."""
    for meta, path in metas:
        mode = _numa(meta, path)
        if mode is not None:
            return mode
    return None


# --------------------------------------------------------------------------------------------
# Pod requests (the kubelet's effective request) and QoS class
# --------------------------------------------------------------------------------------------
class _Container(NamedTuple):
    cpu: int                # request (the limit when only the limit is given)
    mem: int
    limit_cpu: int | None
    limit_mem: int | None
    any_given: bool         # some cpu or memory request or limit is set


def _container(container, path: str) -> _Container:
    if not isinstance(container, dict):
        raise ValueError(f"{path}: expected a mapping (a container), got {_short(container)}")
    resources = _mapping(container, "resources", f"{path}.resources")
    requests = _mapping(resources, "requests", f"{path}.resources.requests")
    limits_ = _mapping(resources, "limits", f"{path}.resources.limits")
    amounts, caps = [], []
    for key, parse in (("cpu", manifest_cpu), ("memory", manifest_memory)):
        request = parse(requests[key], f"{path}.resources.requests.{key}") \
            if key in requests else None
        limit = parse(limits_[key], f"{path}.resources.limits.{key}") if key in limits_ else None
        if request is not None:
            amounts.append(request)
            if limit is not None and request > limit:
                raise ValueError(f"{path}.resources.requests.{key}: {shown(requests[key])} is "
                                 f"above its limit {shown(limits_[key])}")
        else:   # Kubernetes defaults a missing request to the limit
            amounts.append(limit if limit is not None else 0)
        caps.append(limit)
    any_given = any(k in requests or k in limits_ for k in ("cpu", "memory"))
    return _Container(amounts[0], amounts[1], caps[0], caps[1], any_given)


def _container_list(spec: dict, key: str, path: str, *, required: bool) -> list:
    value = spec.get(key)
    if value is None:
        if required:
            raise ValueError(f"{path}.{key}: required (at least one container)")
        return []
    if not isinstance(value, list) or (required and not value):
        raise ValueError(f"{path}.{key}: expected a non-empty list of containers, got "
                         f"{_short(value)}")
    return value


def _within_request_limit(amount: int, path: str, what: str) -> int:
    if amount > codes.MAX_REQUEST_AMOUNT:
        raise ValueError(f"{path}: the pod's {what} request ({amount:,}) is above the largest "
                         f"request numasched accepts ({codes.MAX_REQUEST_AMOUNT:,})")
    return amount


def pod_facts(pod_spec: dict, path: str = "spec") -> PodFacts:
    """The kubelet's view of a pod spec: effective request, QoS class, whole-CPU containers.

    Effective request, per resource: the sum over ``containers`` and restartable ("sidecar")
    init containers (``restartPolicy: Always``), against the largest ordinary init container
    plus the sidecars started before it; the larger wins; ``overhead`` is added. QoS:
    Guaranteed when every container (init ones included) has cpu and memory limits equal to its
    requests, BestEffort when none sets any cpu or memory request or limit, else Burstable.
    """
    containers = _container_list(pod_spec, "containers", path, required=True)
    cpu = mem = 0
    every: list[_Container] = []
    running: list[_Container] = []
    for i, c in enumerate(containers):
        facts = _container(c, f"{path}.containers[{i}]")
        every.append(facts)
        running.append(facts)
        cpu += facts.cpu
        mem += facts.mem
    init_cpu = init_mem = 0     # the largest ordinary init container, with earlier sidecars
    side_cpu = side_mem = 0     # restartable init containers started so far
    for i, c in enumerate(_container_list(pod_spec, "initContainers", path, required=False)):
        facts = _container(c, f"{path}.initContainers[{i}]")
        every.append(facts)
        if c.get("restartPolicy") == "Always":
            running.append(facts)
            side_cpu += facts.cpu
            side_mem += facts.mem
        else:
            init_cpu = max(init_cpu, side_cpu + facts.cpu)
            init_mem = max(init_mem, side_mem + facts.mem)
    cpu, mem = max(cpu + side_cpu, init_cpu), max(mem + side_mem, init_mem)
    overhead = _mapping(pod_spec, "overhead", f"{path}.overhead")
    if "cpu" in overhead:
        cpu += manifest_cpu(overhead["cpu"], f"{path}.overhead.cpu")
    if "memory" in overhead:
        mem += manifest_memory(overhead["memory"], f"{path}.overhead.memory")
    if all(c.limit_cpu is not None and c.limit_mem is not None and c.cpu == c.limit_cpu
           and c.mem == c.limit_mem for c in every):
        qos = "Guaranteed"
    elif not any(c.any_given for c in every):
        qos = "BestEffort"
    else:
        qos = "Burstable"
    integer_cpu = all(c.cpu > 0 and c.cpu % 1000 == 0 for c in running)
    return PodFacts(_within_request_limit(cpu, path, "cpu"),
                    _within_request_limit(mem, path, "memory"), qos, integer_cpu, len(running))


def pod_requests(pod_spec: dict, path: str = "spec") -> tuple[int, int]:
    """(millicores, bytes) a pod asks for: the kubelet's effective request, plus overhead."""
    facts = pod_facts(pod_spec, path)
    return facts.cpu, facts.mem


def _priority(pod_spec: dict, path: str) -> int:
    value = pod_spec.get("priority", 0)
    return _int(0 if value is None else value, f"{path}.priority", *PRIORITY_RANGE)


# --------------------------------------------------------------------------------------------
# Kinds
# --------------------------------------------------------------------------------------------
def kind_of(manifest: dict, known: tuple = KINDS) -> str:
    """The manifest's kind if it is one of ``known`` (the controller's kinds by default)."""
    if not isinstance(manifest, dict):
        raise ValueError(f"manifest: expected a mapping, got {type(manifest).__name__}")
    kind = manifest.get("kind")
    if kind is None:
        raise ValueError("kind: required; known: " + ", ".join(known))
    if kind not in known:
        hint = schema.suggestion(kind, known) if isinstance(kind, str) else None
        raise ValueError(f"kind: unknown kind {_short(kind)}"
                         + (f", did you mean {hint}?" if hint else "")
                         + "; known: " + ", ".join(known))
    return kind


def _replicas(spec: dict, key: str, path: str, default: int = 1) -> int:
    value = spec.get(key, default)
    most = limits.current().max_replicas
    value = default if value is None else value
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{path}: expected an integer, got {_short(value)}")
    if not 0 <= value <= most:
        raise ValueError(f"{path}: must be between 0 and {most:,} (limits.max_replicas), got "
                         f"{shown(value)}")
    return value


def _node_name(value, path: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not _SUBDOMAIN.match(value):
        raise ValueError(f"{path}: expected a node name, got {_short(value)}")
    return value


def _phase(manifest: dict) -> tuple[str | None, dict]:
    status = manifest.get("status")
    if not isinstance(status, dict):
        return None, {}
    phase = status.get("phase")
    return (phase if isinstance(phase, str) else None), status


def workload_spec(manifest: dict, *, strict: bool = False) -> WorkloadSpec:
    """The validated spec of a workload manifest of any of ``READ_KINDS``.

    Unknown fields are ``ManifestWarning``s (``ValueError``s under ``strict``). A Pod's
    ``spec.nodeName`` and ``status.phase`` (a VMI's ``status.nodeName``) are kept: a bound
    workload is existing load on its node (``WorkloadSpec.bound``).
    """
    kind = kind_of(manifest, _ALL_KINDS)
    if kind not in READ_KINDS:
        raise ValueError(f"kind: {kind} is not a workload; expected one of "
                         + ", ".join(READ_KINDS))
    check_fields(manifest, kind, strict=strict)
    namespace, name = _metadata(manifest, namespaced=True)
    meta = manifest["metadata"]
    spec = _mapping(manifest, "spec", "spec", required=True)
    phase, status = _phase(manifest)
    if kind == "Pod":
        facts = pod_facts(spec, "spec")
        node = _node_name(spec.get("nodeName"), "spec.nodeName")
        return WorkloadSpec(kind, namespace, name, facts.cpu, facts.mem,
                            numa_of((meta, "metadata")), False, _priority(spec, "spec"), 1,
                            node, phase, facts.qos, facts.integer_cpu, facts.containers)
    if kind == "VirtualMachineInstance":
        cpu, mem, vnuma, qos = vm_facts(spec, "spec")
        node = _node_name(status.get("nodeName"), "status.nodeName")
        return WorkloadSpec(kind, namespace, name, cpu, mem, numa_of((meta, "metadata")), vnuma,
                            _priority(spec, "spec"), 1, node, phase, qos, cpu % 1000 == 0)
    if kind == "VirtualMachinePool":
        vm_template = _mapping(spec, "virtualMachineTemplate", "spec.virtualMachineTemplate",
                               required=True)
        base = "spec.virtualMachineTemplate.spec"
        vm_spec = _mapping(vm_template, "spec", base, required=True)
        template = _mapping(vm_spec, "template", f"{base}.template", required=True)
        t_meta = _mapping(template, "metadata", f"{base}.template.metadata")
        t_spec = _mapping(template, "spec", f"{base}.template.spec", required=True)
        v_meta = _mapping(vm_template, "metadata", "spec.virtualMachineTemplate.metadata")
        numa = numa_of((t_meta, f"{base}.template.metadata"),
                       (v_meta, "spec.virtualMachineTemplate.metadata"), (meta, "metadata"))
        cpu, mem, vnuma, qos = vm_facts(t_spec, f"{base}.template.spec")
        return WorkloadSpec(kind, namespace, name, cpu, mem, numa, vnuma,
                            _priority(t_spec, f"{base}.template.spec"),
                            _replicas(spec, "replicas", "spec.replicas"), None, phase, qos,
                            cpu % 1000 == 0)
    template = _mapping(spec, "template", "spec.template", required=True)
    t_meta = _mapping(template, "metadata", "spec.template.metadata")
    t_spec = _mapping(template, "spec", "spec.template.spec", required=True)
    numa = numa_of((t_meta, "spec.template.metadata"), (meta, "metadata"))
    priority = _priority(t_spec, "spec.template.spec")
    if kind == "VirtualMachine":
        cpu, mem, vnuma, qos = vm_facts(t_spec, "spec.template.spec")
        return WorkloadSpec(kind, namespace, name, cpu, mem, numa, vnuma, priority, 1, None,
                            phase, qos, cpu % 1000 == 0)
    facts = pod_facts(t_spec, "spec.template.spec")
    per_host = kind in PER_HOST_KINDS
    if per_host:
        replicas = 1
    elif kind == "Job":
        replicas = _replicas(spec, "parallelism", "spec.parallelism")
        if spec.get("completions") is not None:
            replicas = min(replicas, _replicas(spec, "completions", "spec.completions"))
        if spec.get("suspend") is True:
            replicas = 0
    else:
        replicas = _replicas(spec, "replicas", "spec.replicas")
    return WorkloadSpec(kind, namespace, name, facts.cpu, facts.mem, numa, False, priority,
                        replicas, None, phase, facts.qos, facts.integer_cpu, facts.containers,
                        per_host)


def vm_requests(vmi_spec: dict, path: str) -> tuple[int, int, bool]:
    """(millicores, bytes, vnuma) of a KubeVirt VirtualMachineInstance spec."""
    cpu, mem, vnuma, _ = vm_facts(vmi_spec, path)
    return cpu, mem, vnuma


def vm_facts(vmi_spec: dict, path: str) -> tuple[int, int, bool, str]:
    """(millicores, bytes, vnuma, QoS class) of a KubeVirt VirtualMachineInstance spec. The
    launcher pod is Guaranteed with ``domain.cpu.dedicatedCpuPlacement: true`` (KubeVirt then
    sets its limits to its requests; ``guestMappingPassthrough`` requires it), or when
    ``domain.resources`` limits equal the requests."""
    domain = _mapping(vmi_spec, "domain", f"{path}.domain", required=True)
    dpath = f"{path}.domain"
    cpu_spec = _mapping(domain, "cpu", f"{dpath}.cpu")
    vcpus = 1
    for key in ("sockets", "cores", "threads"):
        value = cpu_spec.get(key, 1)
        vcpus *= _int(1 if value is None else value, f"{dpath}.cpu.{key}", 1, 4096)
    numa = cpu_spec.get("numa")
    if numa is not None and not isinstance(numa, dict):
        raise ValueError(f"{dpath}.cpu.numa: expected a mapping, got {_short(numa)}")
    vnuma = bool(numa) and "guestMappingPassthrough" in numa
    resources = _mapping(domain, "resources", f"{dpath}.resources")
    requests = _mapping(resources, "requests", f"{dpath}.resources.requests")
    limits_ = _mapping(resources, "limits", f"{dpath}.resources.limits")
    if "cpu" in requests:
        cpu = manifest_cpu(requests["cpu"], f"{dpath}.resources.requests.cpu")
        if cpu == 0:
            raise ValueError(f"{dpath}.resources.requests.cpu: a VM must request some CPU, "
                             f"got {requests['cpu']!r}")
    else:
        cpu = vcpus * 1000
    memory = _mapping(domain, "memory", f"{dpath}.memory")
    if "memory" in requests:
        mem = manifest_memory(requests["memory"], f"{dpath}.resources.requests.memory")
        field = f"{dpath}.resources.requests.memory"
    elif "guest" in memory:
        mem = manifest_memory(memory["guest"], f"{dpath}.memory.guest")
        field = f"{dpath}.memory.guest"
    else:
        raise ValueError(f"{dpath}.memory.guest: required (or {dpath}.resources.requests.memory)")
    if mem == 0:
        raise ValueError(f"{field}: a VM must have some memory, got 0")
    if cpu_spec.get("dedicatedCpuPlacement") is True or vnuma:
        qos = "Guaranteed"   # KubeVirt requires dedicated CPUs for guestMappingPassthrough
    elif "cpu" in limits_ and "memory" in limits_ and \
            manifest_cpu(limits_["cpu"], f"{dpath}.resources.limits.cpu") == cpu and \
            manifest_memory(limits_["memory"], f"{dpath}.resources.limits.memory") == mem:
        qos = "Guaranteed"
    else:
        qos = "Burstable"
    return cpu, mem, vnuma, qos


def namespace_spec(manifest: dict, *, strict: bool = False) -> NamespaceSpec:
    kind = kind_of(manifest)
    if kind != "Namespace":
        raise ValueError(f"kind: expected Namespace, got {kind}")
    check_fields(manifest, kind, strict=strict)
    _, name = _metadata(manifest, namespaced=False)
    return NamespaceSpec(name, numa_of((manifest["metadata"], "metadata")))


def quota_spec(manifest: dict, *, strict: bool = False) -> QuotaSpec:
    kind = kind_of(manifest)
    if kind != "ResourceQuota":
        raise ValueError(f"kind: expected ResourceQuota, got {kind}")
    check_fields(manifest, kind, strict=strict)
    namespace, name = _metadata(manifest, namespaced=True)
    spec = _mapping(manifest, "spec", "spec", required=True)
    hard = _mapping(spec, "hard", "spec.hard", required=True)
    found: dict[str, int] = {}
    for key, value in hard.items():
        path = f"spec.hard[{key!r}]"
        resource = QUOTA_KEYS.get(key)
        if resource is None:
            raise ValueError(f"{path}: unsupported quota resource {_short(key)}; known: "
                             + ", ".join(QUOTA_KEYS))
        if resource in found:
            raise ValueError(f"{path}: {resource} is limited twice in spec.hard")
        if resource == "cpu":
            found[resource] = manifest_cpu(value, path)
        elif resource == "memory":
            found[resource] = manifest_memory(value, path)
        else:
            found[resource] = parse_count(_quantity_text(value), path)
    return QuotaSpec(namespace, name, found.get("cpu"), found.get("memory"), found.get("count"))


def parse(manifest: dict, *, strict: bool = False):
    """A manifest of any supported kind -> its spec (WorkloadSpec, NamespaceSpec, QuotaSpec)."""
    kind = kind_of(manifest, _ALL_KINDS)
    if kind == "Namespace":
        return namespace_spec(manifest, strict=strict)
    if kind == "ResourceQuota":
        return quota_spec(manifest, strict=strict)
    return workload_spec(manifest, strict=strict)


__all__ = ["load_documents", "flatten_list", "workload_spec", "namespace_spec", "quota_spec",
           "parse", "check_fields", "pod_facts", "vm_facts", "WorkloadSpec", "NamespaceSpec",
           "QuotaSpec", "PodFacts", "ManifestWarning", "KINDS", "WORKLOAD_KINDS", "READ_KINDS",
           "SINGLE_KINDS", "REPLICATED_KINDS", "PER_HOST_KINDS", "NON_WORKLOAD_KINDS",
           "FINISHED_PHASES", "NUMA_ANNOTATION", "manifest_cpu", "manifest_memory",
           "pod_requests", "vm_requests"]
