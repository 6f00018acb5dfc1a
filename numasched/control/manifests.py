"""Kubernetes-style manifests (dicts or YAML text) -> validated, immutable specs.

This is where user input enters the controller; nothing here touches the store. Every error is
a ``ValueError`` whose message starts with the field path (``spec.containers[0].resources.
requests.cpu: invalid quantity '2GB' ...``), so a refused manifest says exactly what to fix.

Documents
    ``load_documents(source)`` takes a dict, a list of dicts, or YAML text (one or several
    ``---`` documents, read with ``yaml.safe_load_all`` only). Empty documents are skipped and a
    ``kind: List`` is flattened into its ``items``.

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
    - ``Deployment``: ``spec.replicas`` (default 1, an integer >= 0) copies of the Pod in
      ``spec.template``.
    - ``VirtualMachine`` (KubeVirt): vCPUs = ``sockets * cores * threads`` of
      ``spec.template.spec.domain.cpu`` (each defaults to 1); CPU is vCPUs x 1000 millicores
      unless ``domain.resources.requests.cpu`` is given. Memory is
      ``domain.resources.requests.memory`` (what the launcher pod requests) if given, else
      ``domain.memory.guest``; one of them is required. ``vnuma`` is true when
      ``domain.cpu.numa.guestMappingPassthrough`` is present (the guest sees its NUMA layout).

Quantities are Kubernetes quantities (``500m``, ``1.5``, ``2Gi``, ``1G``, ``1e3``) read with
``numasched.io.quantity``; a bare YAML number is a quantity too (``cpu: 2`` is two cores, not two
millicores). Negative or unparsable amounts are refused.

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
from typing import NamedTuple

import yaml

from .. import codes
from ..io.quantity import count as parse_count
from ..io.quantity import cpu_millicores, memory_bytes

NUMA_ANNOTATION = "numasched.io/numa"
DEFAULT_NAMESPACE = "default"
WORKLOAD_KINDS = ("Pod", "Deployment", "VirtualMachine")
KINDS = ("Namespace", "ResourceQuota") + WORKLOAD_KINDS
PRIORITY_RANGE = (-(2**31), 2**31 - 1)
MAX_REPLICAS = 10_000_000

#: ResourceQuota ``spec.hard`` keys -> the controller's three quota resources.
QUOTA_KEYS = {
    "requests.cpu": "cpu", "cpu": "cpu",
    "requests.memory": "memory", "memory": "memory",
    "pods": "count", "count/pods": "count", "count": "count",
}

# A DNS-1123 label for namespaces, a DNS-1123 subdomain for other names (Kubernetes' rules).
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


class WorkloadSpec(NamedTuple):
    """One Pod, Deployment or VirtualMachine, validated. Amounts are per replica."""
    kind: str           # "Pod", "Deployment" or "VirtualMachine"
    namespace: str
    name: str
    cpu: int            # millicores per replica (0 = requests none)
    mem: int            # bytes per replica (0 = requests none)
    numa: str | None    # NUMA mode name, or None for the namespace's / controller's default
    vnuma: bool         # the guest sees its NUMA layout
    priority: int       # higher is placed first
    replicas: int       # 1 for a Pod or a VM


class NamespaceSpec(NamedTuple):
    name: str
    numa: str | None    # default NUMA mode of the namespace's workloads


class QuotaSpec(NamedTuple):
    namespace: str
    name: str
    cpu: int | None     # millicores; None = not limited by this quota
    memory: int | None  # bytes
    count: int | None   # workloads (Pods, replicas, VMs)


# --------------------------------------------------------------------------------------------
# Documents
# --------------------------------------------------------------------------------------------
def load_documents(source) -> list[dict]:
    """The manifests in ``source``: a dict, a list of dicts, or YAML text (multi-document).

    Malformed YAML raises ``ValueError`` with one line naming the problem and where it is.
    """
    if isinstance(source, bytes):
        try:
            source = source.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"manifest text is not UTF-8: {exc}") from None
    if isinstance(source, dict):
        docs = [source]
    elif isinstance(source, str):
        try:
            docs = [d for d in yaml.safe_load_all(source) if d is not None]
        except yaml.YAMLError as exc:
            raise ValueError(_yaml_error(exc)) from None
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
        if doc.get("kind") == "List":
            items = doc.get("items", [])
            if not isinstance(items, list):
                raise ValueError(f"document {i + 1}: items: expected a list, got "
                                 f"{type(items).__name__}")
            for j, item in enumerate(items):
                if not isinstance(item, dict):
                    raise ValueError(f"document {i + 1}: items[{j}]: expected a mapping, got "
                                     f"{type(item).__name__}")
            out.extend(items)
        else:
            out.append(doc)
    return out


def _yaml_error(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    context = getattr(exc, "context", None)
    detail = f"{problem} ({context})" if context and context != problem else problem
    return f"invalid YAML{where}: {detail}"


def _short(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
# Pod requests (the kubelet's effective request)
# --------------------------------------------------------------------------------------------
def _container_requests(container, path: str) -> tuple[int, int]:
    if not isinstance(container, dict):
        raise ValueError(f"{path}: expected a mapping (a container), got {_short(container)}")
    resources = _mapping(container, "resources", f"{path}.resources")
    requests = _mapping(resources, "requests", f"{path}.resources.requests")
    limits = _mapping(resources, "limits", f"{path}.resources.limits")
    amounts = []
    for key, parse in (("cpu", manifest_cpu), ("memory", manifest_memory)):
        if key in requests:
            amounts.append(parse(requests[key], f"{path}.resources.requests.{key}"))
        elif key in limits:  # Kubernetes defaults a missing request to the limit
            amounts.append(parse(limits[key], f"{path}.resources.limits.{key}"))
        else:
            amounts.append(0)
        if key in requests and key in limits:
            limit = parse(limits[key], f"{path}.resources.limits.{key}")
            if amounts[-1] > limit:
                raise ValueError(f"{path}.resources.requests.{key}: {requests[key]!r} is above "
                                 f"its limit {limits[key]!r}")
    return amounts[0], amounts[1]


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


def pod_requests(pod_spec: dict, path: str = "spec") -> tuple[int, int]:
    """(millicores, bytes) a pod asks for: the kubelet's effective request, plus overhead."""
    containers = _container_list(pod_spec, "containers", path, required=True)
    cpu = mem = 0
    for i, c in enumerate(containers):
        c_cpu, c_mem = _container_requests(c, f"{path}.containers[{i}]")
        cpu += c_cpu
        mem += c_mem
    init_cpu = init_mem = 0     # the largest ordinary init container, with earlier sidecars
    side_cpu = side_mem = 0     # restartable init containers started so far
    for i, c in enumerate(_container_list(pod_spec, "initContainers", path, required=False)):
        c_cpu, c_mem = _container_requests(c, f"{path}.initContainers[{i}]")
        if c.get("restartPolicy") == "Always":
            side_cpu += c_cpu
            side_mem += c_mem
        else:
            init_cpu = max(init_cpu, side_cpu + c_cpu)
            init_mem = max(init_mem, side_mem + c_mem)
    cpu, mem = max(cpu + side_cpu, init_cpu), max(mem + side_mem, init_mem)
    overhead = _mapping(pod_spec, "overhead", f"{path}.overhead")
    if "cpu" in overhead:
        cpu += manifest_cpu(overhead["cpu"], f"{path}.overhead.cpu")
    if "memory" in overhead:
        mem += manifest_memory(overhead["memory"], f"{path}.overhead.memory")
    return cpu, mem


def _priority(pod_spec: dict, path: str) -> int:
    value = pod_spec.get("priority", 0)
    return _int(0 if value is None else value, f"{path}.priority", *PRIORITY_RANGE)


# --------------------------------------------------------------------------------------------
# Kinds
# --------------------------------------------------------------------------------------------
def kind_of(manifest: dict) -> str:
    if not isinstance(manifest, dict):
        raise ValueError(f"manifest: expected a mapping, got {type(manifest).__name__}")
    kind = manifest.get("kind")
    if kind is None:
        raise ValueError("kind: required; known: " + ", ".join(KINDS))
    if kind not in KINDS:
        raise ValueError(f"kind: unknown kind {_short(kind)}; known: " + ", ".join(KINDS))
    return kind


def workload_spec(manifest: dict) -> WorkloadSpec:
    """The validated spec of a Pod, Deployment or VirtualMachine manifest."""
    kind = kind_of(manifest)
    if kind not in WORKLOAD_KINDS:
        raise ValueError(f"kind: {kind} is not a workload; expected one of "
                         + ", ".join(WORKLOAD_KINDS))
    namespace, name = _metadata(manifest, namespaced=True)
    meta = manifest["metadata"]
    spec = _mapping(manifest, "spec", "spec", required=True)
    if kind == "Pod":
        cpu, mem = pod_requests(spec, "spec")
        return WorkloadSpec(kind, namespace, name, cpu, mem, numa_of((meta, "metadata")),
                            False, _priority(spec, "spec"), 1)
    template = _mapping(spec, "template", "spec.template", required=True)
    t_meta = _mapping(template, "metadata", "spec.template.metadata")
    t_spec = _mapping(template, "spec", "spec.template.spec", required=True)
    numa = numa_of((t_meta, "spec.template.metadata"), (meta, "metadata"))
    priority = _priority(t_spec, "spec.template.spec")
    if kind == "Deployment":
        replicas = spec.get("replicas", 1)
        replicas = _int(1 if replicas is None else replicas, "spec.replicas", 0, MAX_REPLICAS)
        cpu, mem = pod_requests(t_spec, "spec.template.spec")
        return WorkloadSpec(kind, namespace, name, cpu, mem, numa, False, priority, replicas)
    cpu, mem, vnuma = vm_requests(t_spec, "spec.template.spec")
    return WorkloadSpec(kind, namespace, name, cpu, mem, numa, vnuma, priority, 1)


def vm_requests(vmi_spec: dict, path: str) -> tuple[int, int, bool]:
    """(millicores, bytes, vnuma) of a KubeVirt VirtualMachineInstance spec."""
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
    return cpu, mem, vnuma


def namespace_spec(manifest: dict) -> NamespaceSpec:
    kind = kind_of(manifest)
    if kind != "Namespace":
        raise ValueError(f"kind: expected Namespace, got {kind}")
    _, name = _metadata(manifest, namespaced=False)
    return NamespaceSpec(name, numa_of((manifest["metadata"], "metadata")))


def quota_spec(manifest: dict) -> QuotaSpec:
    kind = kind_of(manifest)
    if kind != "ResourceQuota":
        raise ValueError(f"kind: expected ResourceQuota, got {kind}")
    namespace, name = _metadata(manifest, namespaced=True)
    spec = _mapping(manifest, "spec", "spec", required=True)
    hard = _mapping(spec, "hard", "spec.hard", required=True)
    limits: dict[str, int] = {}
    for key, value in hard.items():
        path = f"spec.hard[{key!r}]"
        resource = QUOTA_KEYS.get(key)
        if resource is None:
            raise ValueError(f"{path}: unsupported quota resource {_short(key)}; known: "
                             + ", ".join(QUOTA_KEYS))
        if resource in limits:
            raise ValueError(f"{path}: {resource} is limited twice in spec.hard")
        if resource == "cpu":
            limits[resource] = manifest_cpu(value, path)
        elif resource == "memory":
            limits[resource] = manifest_memory(value, path)
        else:
            limits[resource] = parse_count(_quantity_text(value), path)
    return QuotaSpec(namespace, name, limits.get("cpu"), limits.get("memory"), limits.get("count"))


def parse(manifest: dict):
    """A manifest of any supported kind -> its spec (WorkloadSpec, NamespaceSpec, QuotaSpec)."""
    kind = kind_of(manifest)
    if kind == "Namespace":
        return namespace_spec(manifest)
    if kind == "ResourceQuota":
        return quota_spec(manifest)
    return workload_spec(manifest)


__all__ = ["load_documents", "workload_spec", "namespace_spec", "quota_spec", "parse",
           "WorkloadSpec", "NamespaceSpec", "QuotaSpec", "KINDS", "WORKLOAD_KINDS",
           "NUMA_ANNOTATION", "manifest_cpu", "manifest_memory", "pod_requests", "vm_requests"]
