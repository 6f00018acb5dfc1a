"""Workload manifests from files -> ``numasched.Requests`` with a name per request.

The manifests are read by ``numasched.control.manifests`` (the controller's own parser, so the
CLI and the controller read a Pod the same way); this module only finds the files, expands
Deployment replicas into one request each, and applies Namespace defaults of the NUMA mode.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..api import Requests
from ..control import manifests
from .topology import read_text

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Workloads:
    """Requests read from manifests: ``labels[i]`` names request i (``namespace/name`` or
    ``namespace/name-<replica>``), ``specs[i]`` is the manifest's spec it came from, ``notes``
    what was skipped."""

    requests: Requests
    labels: tuple[str, ...]
    specs: tuple[manifests.WorkloadSpec, ...]
    notes: tuple[str, ...] = ()

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
    """(where, manifest) for every document of a file or a directory of files."""
    out = []
    for file in manifest_files(path):
        try:
            docs = manifests.load_documents(read_text(file))
        except ValueError as exc:
            raise ValueError(f"{file}: {exc}") from None
        for i, doc in enumerate(docs):
            out.append((f"{file}" if len(docs) == 1 else f"{file} (document {i + 1})", doc))
    return out


def specs_from(documents: list[tuple[str, dict]]) -> tuple[list[tuple[str, manifests.WorkloadSpec]], list[str]]:
    """Workload specs, with the NUMA default of their Namespace manifest (if given) applied."""
    namespace_numa: dict[str, str | None] = {}
    found: list[tuple[str, manifests.WorkloadSpec]] = []
    notes: list[str] = []
    for where, doc in documents:
        try:
            kind = manifests.kind_of(doc)
            if kind == "Namespace":
                ns = manifests.namespace_spec(doc)
                namespace_numa[ns.name] = ns.numa
            elif kind == "ResourceQuota":
                notes.append(f"{where}: ResourceQuota skipped (quotas are the controller's)")
            else:
                found.append((where, manifests.workload_spec(doc)))
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
    out = []
    for where, spec in found:
        if spec.numa is None and namespace_numa.get(spec.namespace):
            spec = spec._replace(numa=namespace_numa[spec.namespace])
        out.append((where, spec))
    return out, notes


def to_requests(specs: list[manifests.WorkloadSpec]) -> tuple[Requests, list[str], list]:
    """One request per Pod, VM and Deployment replica. A workload that requests nothing of a
    resource asks for the smallest positive amount (1 millicore, 1 byte), as the controller
    does, so it is still placed."""
    cpu, mem, numa, vnuma, priority, labels, owners = [], [], [], [], [], [], []
    for spec in specs:
        for r in range(spec.replicas):
            cpu.append(max(spec.cpu, 1))
            mem.append(max(spec.mem, 1))
            numa.append(spec.numa)
            vnuma.append(spec.vnuma)
            priority.append(spec.priority)
            suffix = f"-{r}" if spec.kind == "Deployment" else ""
            labels.append(f"{spec.namespace}/{spec.name}{suffix}")
            owners.append(spec)
    return Requests(cpu=cpu, mem=mem, numa=numa, vnuma=vnuma, priority=priority), labels, owners


def read_workloads(path) -> Workloads:
    """Pods, Deployments and KubeVirt VirtualMachines from a manifest file or directory."""
    specs, notes = specs_from(read_manifests(path))
    if not specs:
        raise ValueError(f"{path}: no Pod, Deployment or VirtualMachine manifests")
    requests, labels, owners = to_requests([s for _, s in specs])
    empty = [f"{s.namespace}/{s.name}" for _, s in specs if s.replicas == 0]
    if empty:
        notes.append(f"Deployments with 0 replicas: {', '.join(empty)}")
    return Workloads(requests=requests, labels=tuple(labels), specs=tuple(owners), notes=tuple(notes))


__all__ = ["Workloads", "read_workloads", "read_manifests", "specs_from", "to_requests",
           "manifest_files"]
