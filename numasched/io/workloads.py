"""Workload manifests and cluster state from files -> requests to place and existing load.

The manifests are read by ``numasched.control.manifests`` (the controller's own parser, so the
CLI and the controller read a Pod the same way); this module finds the files, sorts what they
hold, expands replicas into one request each, and applies Namespace defaults of the NUMA mode:

- workloads of every kind ``manifests.READ_KINDS`` lists are read (Pods, Deployments,
  StatefulSets, ReplicaSets, DaemonSets, Jobs, KubeVirt VirtualMachines, VirtualMachineInstances
  and VirtualMachinePools); ``kubectl get ... -o yaml|json`` lists are flattened;
- kinds that carry no workload (Service, ConfigMap, Secret...) are skipped with one note each;
  an unknown kind is a ``ManifestWarning`` (a ``ValueError`` under ``strict``);
- a pod in phase Succeeded or Failed is ignored (a note counts them);
- a pod already bound to a host (``spec.nodeName``) is *existing load* on that host: it is
  never placed again (``Workloads.bound``; ``existing_load`` turns those pods into per-host,
  per-NUMA-node amounts);
- a DaemonSet is one replica per schedulable host of the topology, each required on its host.

``kubelet_modes`` gives each request the NUMA mode the kubelet's Topology Manager would: see its
docstring.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import codes
from ..api import Cluster, Requests, place
from ..control import manifests
from . import limits
from .files import read_text
from .topology import Topology

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Workloads:
    """Requests read from manifests: ``labels[i]`` names request i (``namespace/name`` or
    ``namespace/name-<replica>``; a DaemonSet's replicas are ``namespace/name@<host>``),
    ``specs[i]`` is the spec it came from, ``notes`` what was skipped or assumed.

    ``bound`` holds the pods (and VMIs) already bound to a host, as ``(label, spec)`` pairs with
    ``spec.node`` the host's name: existing load, never placed."""

    requests: Requests
    labels: tuple[str, ...]
    specs: tuple[manifests.WorkloadSpec, ...]
    notes: tuple[str, ...] = ()
    bound: tuple[tuple[str, manifests.WorkloadSpec], ...] = ()

    def __len__(self) -> int:
        return len(self.labels)


def manifest_files(path) -> list[Path]:
    """``path`` itself, or the ``*.yaml``, ``*.yml``, ``*.json`` files directly inside it."""
    p = Path(path)
    if p.is_dir():
        files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in MANIFEST_SUFFIXES)
        if not files:
            raise ValueError(f"{p}: no manifest files (*.yaml, *.yml, *.json)")
        return files
    if not p.exists():
        raise ValueError(f"{p}: no such file or directory")
    return [p]


def read_manifests(path) -> list[tuple[str, dict]]:
    """(where, manifest) for every document of a file or a directory of files; lists
    (``kind: List``, ``PodList``...) are flattened into their items."""
    out = []
    for file in manifest_files(path):
        try:
            docs = manifests.load_documents(read_text(file, "a manifest file"))
        except ValueError as exc:
            raise ValueError(f"{file}: {exc}") from None
        for i, doc in enumerate(docs):
            out.append((f"{file}" if len(docs) == 1 else f"{file} (document {i + 1})", doc))
    return out


def specs_from(documents: list[tuple[str, dict]], *, strict: bool = False
               ) -> tuple[list[tuple[str, manifests.WorkloadSpec]], list[str]]:
    """Workload specs, with the NUMA default of their Namespace manifest (if given) applied,
    and notes on what was skipped. Unknown fields and kinds warn (``ManifestWarning``, with the
    document named) or, under ``strict``, raise ``ValueError``."""
    namespace_numa: dict[str, str | None] = {}
    found: list[tuple[str, manifests.WorkloadSpec]] = []
    notes: list[str] = []
    skipped: dict[str, int] = {}
    for where, doc in documents:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", manifests.ManifestWarning)
            try:
                spec = _read_one(doc, strict, namespace_numa, skipped)
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
        if spec is not None:
            found.append((where, spec))
        for w in caught:     # again, outside, with the document named
            if issubclass(w.category, manifests.ManifestWarning):
                warnings.warn(f"{where}: {w.message}", manifests.ManifestWarning, stacklevel=2)
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    for kind, n in skipped.items():
        why = "quotas are the controller's" if kind == "ResourceQuota" else "no workload"
        notes.append(f"{kind} skipped ({why}): {n} object(s)")
    out = []
    for where, spec in found:
        if spec.numa is None and namespace_numa.get(spec.namespace):
            spec = spec._replace(numa=namespace_numa[spec.namespace])
        out.append((where, spec))
    return out, notes


def _read_one(doc, strict: bool, namespace_numa: dict, skipped: dict):
    """The workload spec of one document, or None (a Namespace is recorded in
    ``namespace_numa``, a skipped kind counted in ``skipped``)."""
    kind = doc.get("kind") if isinstance(doc, dict) else None
    if kind in manifests.NON_WORKLOAD_KINDS or kind == "ResourceQuota":
        if kind == "ResourceQuota":
            manifests.quota_spec(doc, strict=strict)
        skipped[kind] = skipped.get(kind, 0) + 1
        return None
    known = manifests.READ_KINDS + ("Namespace",)
    if isinstance(kind, str) and kind not in known:
        hint = manifests.schema.suggestion(kind, manifests.READ_KINDS)
        message = (f"kind {kind!r:.60} carries no workload numasched knows; skipped"
                   + (f" (did you mean {hint}?)" if hint else ""))
        if strict:
            raise ValueError(message)
        warnings.warn(message, manifests.ManifestWarning)
        return None
    if manifests.kind_of(doc, known) == "Namespace":
        ns = manifests.namespace_spec(doc, strict=strict)
        namespace_numa[ns.name] = ns.numa
        return None
    return manifests.workload_spec(doc, strict=strict)


def _label(spec: manifests.WorkloadSpec, replica: int | None, host: str | None = None) -> str:
    base = f"{spec.namespace}/{spec.name}"
    if host is not None:
        return f"{base}@{host}"
    return base if replica is None else f"{base}-{replica}"


def to_requests(specs: list[manifests.WorkloadSpec], topology: Topology | None = None
                ) -> tuple[Requests, list[str], list]:
    """One request per Pod, VM and replica (a DaemonSet: one per schedulable host of
    ``topology``, required on it). A workload that requests nothing of a resource asks for the
    smallest positive amount (1 millicore, 1 byte), as the controller does, so it is still
    placed. At most ``limits.max_requests`` requests in all."""
    most = limits.current().max_requests
    total = 0
    for spec in specs:
        if spec.per_host:
            if topology is None:
                raise ValueError(f"{spec.namespace}/{spec.name}: a DaemonSet runs one pod per "
                                 "host; read it with the topology")
            total += int(np.count_nonzero(topology.cluster.schedulable))
        else:
            total += spec.replicas
        if total > most:
            raise ValueError(f"{spec.namespace}/{spec.name}: the workloads expand to more than "
                             f"{most:,} requests (limits.max_requests)")
    cpu, mem, numa, vnuma, priority, required, labels, owners = [], [], [], [], [], [], [], []
    for spec in specs:
        if spec.per_host:
            places = [(None, h, name) for h, name in enumerate(topology.names)
                      if topology.cluster.schedulable[h]]
        else:
            single = spec.kind in manifests.SINGLE_KINDS
            places = [(None if single else r, -1, None) for r in range(spec.replicas)]
        for replica, host, host_name in places:
            cpu.append(max(spec.cpu, 1))
            mem.append(max(spec.mem, 1))
            numa.append(spec.numa)
            vnuma.append(spec.vnuma)
            priority.append(spec.priority)
            required.append(host)
            labels.append(_label(spec, replica, host_name))
            owners.append(spec)
    return (Requests(cpu=cpu, mem=mem, numa=numa, vnuma=vnuma, priority=priority,
                     required_host=required), labels, owners)


def read_workloads(path, topology: Topology | None = None, *, strict: bool = False) -> Workloads:
    """Workloads from a manifest file or directory (see the module docstring). ``topology``
    is needed for DaemonSets and to check that bound pods name a known host."""
    specs, notes = specs_from(read_manifests(path), strict=strict)
    finished = [s for _, s in specs if s.finished]
    if finished:
        notes.append(f"{len(finished)} pod(s) in phase Succeeded or Failed ignored")
    bound = [(_label(s, None), s) for _, s in specs if s.bound]
    if topology is not None:
        unknown = [label for label, s in bound if s.node not in topology]
        if unknown:
            notes.append(f"{len(unknown)} bound pod(s) on hosts the topology lacks ignored: "
                         + ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else ""))
            bound = [(label, s) for label, s in bound if s.node in topology]
    pending = [s for _, s in specs if not s.finished and s.node is None]
    if not pending and not bound:
        raise ValueError(f"{path}: no workload manifests (Pods, Deployments, StatefulSets, "
                         "ReplicaSets, DaemonSets, Jobs, VirtualMachines...)")
    requests, labels, owners = to_requests(pending, topology)
    empty = [f"{s.namespace}/{s.name}" for s in pending if s.replicas == 0]
    if empty:
        notes.append(f"workloads with 0 replicas: {', '.join(empty)}")
    return Workloads(requests=requests, labels=tuple(labels), specs=tuple(owners),
                     notes=tuple(notes), bound=tuple(bound))


# --------------------------------------------------------------------------------------------
# The kubelet's NUMA modes
# --------------------------------------------------------------------------------------------
def kubelet_mode(spec: manifests.WorkloadSpec, policy: str, scope: str | None = None) -> str:
    """The NUMA mode the kubelet's Topology Manager gives ``spec`` on a node running
    ``policy`` (its ``topologyManagerPolicy``) with ``scope`` (``topologyManagerScope``,
    default ``container``, as the kubelet's):

    - the ``numasched.io/numa`` annotation (or the Namespace's default) wins;
    - a pod that is not Guaranteed with whole CPUs (``spec.aligned``) gets no CPU or memory
      alignment: ``none``, it floats over the host;
    - an aligned pod gets ``policy``. Under ``container`` scope each container is aligned on its
      own, so a pod of several containers under ``single-numa-node`` may still span nodes, one
      whole container on each: numasched places such a pod as one request in ``restricted``
      mode (the fewest nodes that can hold it, split evenly). ``pod`` scope, or one container,
      keeps ``policy`` exactly.
    """
    if spec.numa is not None:
        return spec.numa
    if policy not in codes.NUMA_MODES or policy == "none" or not spec.aligned:
        return "none"
    if (scope or "container") == "container" and spec.containers > 1 \
            and policy == "single-numa-node":
        return "restricted"
    return policy


_STRICTNESS = ("none", "best-effort", "restricted", "single-numa-node")


def kubelet_policy(topology: Topology) -> tuple[str | None, str | None, str | None]:
    """(policy, scope, note): the kubelet Topology Manager policy and scope the hosts state
    (NodeResourceTopology attributes ``topologyManagerPolicy`` / ``topologyManagerScope``);
    policy None when no host states one.

    A request has one NUMA mode on every host, so when hosts state different policies the
    strictest of them is taken (``single-numa-node`` > ``restricted`` > ``best-effort`` >
    ``none``): a pod placed under it is admitted by the kubelet of any of those hosts. The
    note says so. Likewise ``pod`` scope is taken only when every host states it."""
    policies = [a.get("topologyManagerPolicy") for a in topology.attributes]
    if all(p is None for p in policies):
        return None, None, None
    known = [p for p in policies if p in _STRICTNESS]
    policy = max(known, key=_STRICTNESS.index) if known else "none"
    scopes = {a.get("topologyManagerScope") or "container" for a in topology.attributes}
    scope = "pod" if scopes == {"pod"} else "container"
    note = None
    if len(set(policies)) > 1 or len(scopes) > 1:
        seen = ", ".join(f"{p or 'unset'} on {policies.count(p)}" for p in dict.fromkeys(policies))
        note = (f"hosts state different kubelet topologyManagerPolicy values ({seen} host(s)); "
                f"Guaranteed whole-CPU pods are placed under the strictest, {policy}, "
                f"{scope} scope")
    return policy, scope, note


def kubelet_modes(topology: Topology, specs) -> tuple[list[str] | None, str | None]:
    """(modes, note): per-spec kubelet modes (``kubelet_mode`` under ``kubelet_policy``), or
    None when no host states a policy."""
    policy, scope, note = kubelet_policy(topology)
    if policy is None:
        return None, None
    return [kubelet_mode(spec, policy, scope) for spec in specs], note


# --------------------------------------------------------------------------------------------
# Existing load: pods already bound
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ExistingLoad:
    """What bound pods hold, per host and NUMA node (``cpu``/``mem`` ``[H, K]``, millicores and
    bytes), and where each went: ``rows[i] = (label, host index, nodes, cpu_by_node,
    mem_by_node)``. ``notes`` say which hosts they over-commit."""

    cpu: np.ndarray
    mem: np.ndarray
    rows: tuple
    notes: tuple[str, ...] = ()


def existing_load(topology: Topology, bound, *, policy="best-fit", numa: str = "restricted",
                  modes=None, backend: str = "auto") -> ExistingLoad:
    """Per-host, per-node load of ``bound`` pods ((label, spec) pairs, ``spec.node`` in
    ``topology``). A pod does not say which NUMA nodes it uses, so each is placed on its own
    host's full capacity (``required_host``, in the given order) under its NUMA mode
    (``modes[i]``, else its annotation, else ``numa``) with ``policy``; a pod that no longer
    fits there is taken from the host's emptiest nodes, clamped at zero, with a note."""
    c = topology.cluster
    load_cpu = np.zeros_like(c.node_cpu)
    load_mem = np.zeros_like(c.node_mem)
    if not bound:
        return ExistingLoad(load_cpu, load_mem, ())
    specs = [s for _, s in bound]
    full = Cluster(c.node_cpu, c.node_mem, c.distance)
    requests = Requests(cpu=[max(s.cpu, 1) for s in specs], mem=[max(s.mem, 1) for s in specs],
                        numa=list(modes) if modes is not None else [s.numa for s in specs],
                        vnuma=[s.vnuma for s in specs],
                        required_host=[topology.index(s.node) for s in specs])
    placement = place(full, requests, policy=policy, numa=numa, order="given", backend=backend)
    free_cpu = placement.free_cpu.copy()
    free_mem = placement.free_mem.copy()
    rows, over = [], []
    for i, (label, spec) in enumerate(bound):
        h = topology.index(spec.node)
        if placement.host[i] >= 0:
            nodes = [k for k in range(c.nodes) if (int(placement.nodes[i]) >> k) & 1]
            rows.append((label, h, nodes, {k: int(placement.cpu_by_node[i, k]) for k in nodes},
                         {k: int(placement.mem_by_node[i, k]) for k in nodes}))
            continue
        cpu_by = _take(free_cpu[h], int(requests.cpu[i]))
        mem_by = _take(free_mem[h], int(requests.mem[i]))
        nodes = sorted(set(cpu_by) | set(mem_by))
        rows.append((label, h, nodes, cpu_by, mem_by))
        over.append(label)
    load_cpu = c.node_cpu - free_cpu
    load_mem = c.node_mem - free_mem
    notes = [f"{len(over)} bound pod(s) do not fit their host's NUMA nodes as the topology "
             f"gives them (over-committed): {', '.join(over[:5])}{' ...' if len(over) > 5 else ''}"
             ] if over else []
    return ExistingLoad(load_cpu, load_mem, tuple(rows), tuple(notes))


def _take(free: np.ndarray, amount: int) -> dict[int, int]:
    """Take ``amount`` from ``free`` (one host's nodes, changed in place), emptiest-last order;
    what does not fit is dropped (the host is over-committed)."""
    taken = {}
    for k in np.argsort(-free, kind="stable"):
        if amount <= 0:
            break
        part = min(int(free[k]), amount)
        if part > 0:
            free[k] -= part
            taken[int(k)] = part
            amount -= part
    return taken


def with_load(topology: Topology, load: ExistingLoad) -> Topology:
    """The topology with ``load`` held: free = min(the topology's free, capacity - load) per
    node, so load the topology already counts (NodeResourceTopology ``available``) is not
    counted twice."""
    c = topology.cluster
    free_cpu = np.minimum(c.free_cpu, np.maximum(c.node_cpu - load.cpu, 0))
    free_mem = np.minimum(c.free_mem, np.maximum(c.node_mem - load.mem, 0))
    cluster = Cluster(c.node_cpu, c.node_mem, c.distance, schedulable=c.schedulable,
                      free_cpu=free_cpu, free_mem=free_mem)
    return Topology(cluster=cluster, names=topology.names, attributes=topology.attributes,
                    sources=topology.sources, details=topology.details, notes=topology.notes)


__all__ = ["Workloads", "read_workloads", "read_manifests", "specs_from", "to_requests",
           "manifest_files", "kubelet_mode", "kubelet_modes", "kubelet_policy", "ExistingLoad", "existing_load",
           "with_load"]
