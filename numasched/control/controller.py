"""The Controller: the developer plane (apply / delete / get / list) and the reconcile loop.

``reconcile()`` is ``desired := getDesired(); current := getCurrent(); makeChanges(...)``:

1. release the capacity of deleted workloads;
2. evict what is bound to failed or maintenance hosts (it becomes Pending; ``remove_host``
   evicts at once, since the host no longer exists);
3. create the Deployment replicas that quota now allows;
4. place *all* Pending work in ONE ``numasched.place`` call (``order="given"``, pre-sorted by
   priority, then creation order) against a Cluster whose free state is the current bindings and
   whose ``schedulable`` is the ready hosts;
5. write bindings and statuses back (vectorised) and log events: one per single Pod or VM, one
   per Deployment per outcome ("Scheduled 99,998 replicas", "2 replicas Pending: ...").

Nothing on the path of a large reconcile loops over workloads in Python: the work is columns of
``store.Workloads``. Quota is admission (``apply`` refuses), never a placement outcome.
"""
from __future__ import annotations

import copy
import pickle
import re
import time
from typing import NamedTuple

import numpy as np

from .. import _backend, codes, policies
from ..api import Cluster, Requests, place
from ..io.quantity import format_cpu, format_memory
from . import manifests as mf
from . import quota as q
from . import rebalance as rebalancing
from .ops import Operator
from .store import (
    HOST_STATES,
    KIND_POD,
    KIND_VM,
    MAINTENANCE,
    READY,
    REASON_NEW,
    REMOVED,
    ROW_KINDS,
    DeploymentRecord,
    NamespaceRecord,
    QuotaRecord,
    SingleRecord,
    Store,
    default_distance,
)

GET_KINDS = mf.KINDS + ("Host",)
LIST_KINDS = GET_KINDS + ("Event",)
API_VERSIONS = {"Pod": "v1", "Namespace": "v1", "ResourceQuota": "v1", "Deployment": "apps/v1",
                "VirtualMachine": "kubevirt.io/v1", "Host": "numasched.io/v1"}
EVICTION_REASONS = {"failed": "host failed", "maintenance": "host entered maintenance",
                    "removed": "host removed"}


class NotFound(ValueError):
    """The object named does not exist."""


class Applied(NamedTuple):
    kind: str
    namespace: str | None
    name: str
    action: str   # "created", "configured" or "unchanged"


def reason_name(code: int) -> str:
    return "not-yet-reconciled" if code == REASON_NEW else codes.REASONS[code]


def reason_message(code: int) -> str:
    return "waiting for the next reconcile" if code == REASON_NEW else codes.REASON_MESSAGES[code]


def _span(idx: np.ndarray):
    """``idx`` as a slice when it is one ascending run of rows (cheaper to write through)."""
    if idx.size and int(idx[-1]) - int(idx[0]) + 1 == idx.size and (np.diff(idx) > 0).all():
        return slice(int(idx[0]), int(idx[-1]) + 1)
    return idx


class _KeySet:
    """Workload keys ``(kind, namespace, name)`` with an optional per-key value, held as
    (single keys, per-Deployment ordinal arrays) and materialised only when read."""

    def __init__(self):
        self._singles: list[tuple[tuple[str, str, str], object]] = []
        self._groups: list[tuple[str, str, str, np.ndarray, np.ndarray | None]] = []
        self._count = 0

    def add_rows(self, store: Store, idx: np.ndarray, values: np.ndarray | None = None) -> None:
        if idx.size == 0:
            return
        rows = store.rows
        owner = rows.owner[idx]
        self._count += int(idx.size)
        singles = np.flatnonzero(owner < 0)
        for i in singles.tolist():
            value = None if values is None else values[i]
            self._singles.append((store.single_names[int(rows.uid[idx[i]])], value))
        replicas = np.flatnonzero(owner >= 0)
        if replicas.size:
            # replicas come in runs per Deployment, so the stable sort (timsort) is ~linear
            order = replicas[np.argsort(owner[replicas], kind="stable")]
            sorted_owner = owner[order]
            starts = np.flatnonzero(np.r_[True, sorted_owner[1:] != sorted_owner[:-1]])
            bounds = starts[1:].tolist() + [order.size]
            for dep, lo, hi in zip(sorted_owner[starts].tolist(), starts.tolist(), bounds):
                part = order[lo:hi]
                namespace, name = store.deployment_names[dep]
                kind = ROW_KINDS[int(rows.kind[idx[part[0]]])]
                self._groups.append((kind, namespace, name, rows.ordinal[idx[part]].copy(),
                                     None if values is None else values[part].copy()))

    def __len__(self) -> int:
        return self._count

    def items(self):
        for key, value in self._singles:
            yield key, value
        for kind, namespace, name, ordinals, values in self._groups:
            for j, ordinal in enumerate(ordinals.tolist()):
                yield (kind, namespace, f"{name}-{ordinal}"), (None if values is None else values[j])


class ReconcileResult:
    """What one reconcile did. Keys are ``(kind, namespace, name)``.

    - ``placed``: workloads that became Running in this round;
    - ``pending``: ``{key: reason}`` for every workload still Pending after it (reason names of
      ``numasched.codes.REASONS``), and ``pending_by_reason`` their counts;
    - ``evicted``: workloads moved off failed, removed or maintenance hosts (``placed`` tells
      which found a new home in the same round);
    - ``released``: deleted workloads whose capacity was given back;
    - ``created``: Deployment replicas created because quota now allows them;
    - ``changed``: whether anything changed at all (``run()`` stops at the first round where
      nothing did); ``kernel_calls`` is 0 or 1.

    The key lists are built on first access, so a round that places 100,000 replicas costs
    nothing until someone reads them.
    """

    def __init__(self, round_: int):
        self.round = round_
        self._sets = {name: _KeySet() for name in ("placed", "pending", "evicted", "released",
                                                   "created")}
        self._cache: dict = {}
        self.pending_by_reason: dict[str, int] = {}
        self.status_changes = 0
        self.kernel_calls = 0
        self.kernel_seconds = 0.0
        self.rebalanced = None   # the plan the periodic mode applied this round, if any

    def _keys(self, name: str) -> list:
        if name not in self._cache:
            self._cache[name] = [k for k, _ in self._sets[name].items()]
        return self._cache[name]

    @property
    def placed(self) -> list:
        return self._keys("placed")

    @property
    def evicted(self) -> list:
        return self._keys("evicted")

    @property
    def released(self) -> list:
        return self._keys("released")

    @property
    def created(self) -> list:
        return self._keys("created")

    @property
    def pending(self) -> dict:
        if "pending_map" not in self._cache:
            self._cache["pending_map"] = {k: reason_name(int(v))
                                          for k, v in self._sets["pending"].items()}
        return self._cache["pending_map"]

    def count(self, name: str) -> int:
        """How many keys ``placed`` / ``pending`` / ``evicted`` / ``released`` / ``created``
        holds, without building the list."""
        return len(self._sets[name])

    @property
    def changed(self) -> bool:
        return bool(self.count("placed") or self.count("evicted") or self.count("released")
                    or self.count("created") or self.status_changes)

    def __repr__(self) -> str:
        counts = ", ".join(f"{n}={self.count(n)}" for n in self._sets)
        return f"ReconcileResult(round={self.round}, {counts}, pending_by_reason={self.pending_by_reason})"


class Controller:
    """A desired-state controller over one pool of hosts.

    ``policy``, ``numa``, ``node`` and ``backend`` are those of ``numasched.place`` (the
    controller always places in the order it computes: priority, then creation order).
    ``controller.ops`` is the operator plane; ``apply`` / ``delete`` / ``get`` / ``list`` the
    developer plane; ``reconcile`` / ``run`` the loop. A ``default`` namespace always exists.
    """

    def __init__(self, *, policy="best-fit", numa: str = "restricted", node: str = "pack",
                 backend: str = "auto", event_limit: int = 100_000,
                 rebalance_every: int | None = None, rebalance_threshold: float = 0.1,
                 rebalance_moves: int = 10):
        compiled = policies.get(policy).compile(numa=numa, node=node, order="given")
        if compiled.order != codes.ORDER_GIVEN:
            raise ValueError(f"policy {policy!r} fixes the request order to "
                             f"{codes.name_of(codes.ORDERS, compiled.order)!r}; the controller "
                             f"places in its own order (priority, then creation) and needs a "
                             f"policy that leaves order open or sets 'given'")
        _backend.get(backend)
        if isinstance(event_limit, bool) or not isinstance(event_limit, int) or event_limit < 1:
            raise ValueError(f"event_limit must be a positive integer, got {event_limit!r}")
        self.policy, self.numa, self.node, self.backend = policy, numa, node, backend
        self._periodic = None if rebalance_every is None else rebalancing.Periodic(
            rebalance_every, rebalance_threshold, rebalance_moves)
        self._numa_code = compiled.numa
        self._store = Store(event_limit=event_limit)
        self.ops = Operator(self)
        self._create_namespace("default", None)

    # ======================================================================================
    # Developer plane
    # ======================================================================================
    def apply(self, obj) -> list[Applied]:
        """Create or update the objects of a manifest (dict, list of dicts or YAML text).

        All documents are applied or none: a refused document (bad manifest, missing namespace,
        ``QuotaExceeded``) leaves the store exactly as it was.
        """
        docs = mf.load_documents(obj)
        if len(docs) <= 1:
            return [self._apply_one(doc, None) for doc in docs]
        snapshot = self._store.snapshot()
        out = []
        try:
            for i, doc in enumerate(docs):
                out.append(self._apply_one(doc, i + 1))
        except ValueError:
            self._store = snapshot
            raise
        return out

    def _apply_one(self, manifest: dict, position: int | None) -> Applied:
        try:
            kind = mf.kind_of(manifest)
            if kind == "Namespace":
                return self._apply_namespace(mf.namespace_spec(manifest), manifest)
            if kind == "ResourceQuota":
                return self._apply_quota(mf.quota_spec(manifest), manifest)
            spec = mf.workload_spec(manifest)
            if kind == "Deployment":
                return self._apply_deployment(spec, manifest)
            return self._apply_single(spec, manifest)
        except q.QuotaExceeded:
            raise
        except ValueError as exc:
            if position is None:
                raise
            raise type(exc)(f"document {position}: {exc}") from None

    def _namespace(self, name: str) -> NamespaceRecord:
        record = self._store.namespaces.get(name)
        if record is None:
            raise NotFound(f"metadata.namespace: namespace {name!r} not found; create it first "
                           f"(kind: Namespace, or ops.create_namespace)")
        return record

    def _create_namespace(self, name: str, numa: str | None, manifest=None) -> NamespaceRecord:
        st = self._store
        record = NamespaceRecord(name, len(st.namespace_names), numa, st.new_meta(),
                                 manifest=copy.deepcopy(manifest))
        st.namespaces[name] = record
        st.namespace_names.append(name)
        st.usage[name] = [0, 0, 0]
        st.event("Normal", "Created", "Namespace", None, name, f"namespace {name} created")
        return record

    def _apply_namespace(self, spec: mf.NamespaceSpec, manifest: dict) -> Applied:
        st = self._store
        record = st.namespaces.get(spec.name)
        if record is None:
            self._create_namespace(spec.name, spec.numa, manifest)
            return Applied("Namespace", None, spec.name, "created")
        if record.numa == spec.numa:
            return Applied("Namespace", None, spec.name, "unchanged")
        record.numa = spec.numa
        record.manifest = copy.deepcopy(manifest)
        record.meta.rv = st.bump()
        st.event("Normal", "Updated", "Namespace", None, spec.name,
                 f"default NUMA mode is now {spec.numa or 'the controller default'}")
        return Applied("Namespace", None, spec.name, "configured")

    def _apply_quota(self, spec: mf.QuotaSpec, manifest: dict) -> Applied:
        st = self._store
        self._namespace(spec.namespace)
        limits = {r: v for r, v in zip(q.RESOURCES, (spec.cpu, spec.memory, spec.count))
                  if v is not None}
        key = (spec.namespace, spec.name)
        record = st.quotas.get(key)
        if record is not None and record.limits == limits:
            return Applied("ResourceQuota", spec.namespace, spec.name, "unchanged")
        if record is None:
            st.quotas[key] = QuotaRecord(spec.namespace, spec.name, limits, st.new_meta(),
                                         copy.deepcopy(manifest))
            action = "created"
        else:
            record.limits, record.manifest = limits, copy.deepcopy(manifest)
            record.meta.rv = st.bump()
            action = "configured"
        st.event("Normal", "QuotaSet", "ResourceQuota", spec.namespace, spec.name,
                 "hard: " + ", ".join(f"{q.LABELS[r]}={q.format_amount(r, v)}"
                                      for r, v in limits.items()))
        self._mark_all_short(spec.namespace)
        return Applied("ResourceQuota", spec.namespace, spec.name, action)

    def _mark_all_short(self, namespace: str) -> None:
        """A quota changed: Deployments of the namespace below their replicas may grow."""
        st = self._store
        for dep in st.deployments.values():
            if dep.namespace == namespace and dep.created < dep.spec.replicas:
                st.short.add(dep.id)

    def _replica_owner(self, namespace: str, name: str) -> DeploymentRecord | None:
        """The Deployment whose replica names look like ``name`` (``<deployment>-<digits>``)."""
        match = re.match(r"^(.*)-(\d+)$", name)
        if not match:
            return None
        return self._store.deployments.get((namespace, match.group(1)))

    def _apply_single(self, spec: mf.WorkloadSpec, manifest: dict) -> Applied:
        st = self._store
        ns = self._namespace(spec.namespace)
        dep = self._replica_owner(spec.namespace, spec.name)
        if dep is not None and spec.kind == "Pod":
            raise ValueError(f"metadata.name: {spec.name!r} is a replica name of Deployment "
                             f"{spec.namespace}/{dep.name}; choose another name")
        if spec.kind == "Pod":
            q.require_requests(st, spec.namespace, spec.cpu, spec.mem, "spec.containers")
        key = (spec.kind, spec.namespace, spec.name)
        old = st.singles.get(key)
        subject = f"{spec.kind} {spec.namespace}/{spec.name}"
        if old is not None:
            if old.spec == spec:
                return Applied(spec.kind, spec.namespace, spec.name, "unchanged")
            freed = (old.spec.cpu, old.spec.mem, 1)
            q.check(st, spec.namespace, subject, spec.cpu, spec.mem, 1, freed)
            self._delete_single(old, "Replaced", "spec changed; the workload is re-created")
        else:
            q.check(st, spec.namespace, subject, spec.cpu, spec.mem, 1)
        rows = self._new_rows(spec, ns, 1, KIND_VM if spec.kind == "VirtualMachine" else KIND_POD)
        uid = int(st.rows.uid[rows.start])
        st.singles[key] = SingleRecord(spec.kind, spec.namespace, spec.name, uid, spec,
                                       copy.deepcopy(manifest), uid)
        st.single_names[uid] = key
        q.add_usage(st, spec.namespace, spec.cpu, spec.mem, 1)
        st.event("Normal", "Created", spec.kind, spec.namespace, spec.name,
                 f"requests cpu={format_cpu(spec.cpu)} memory={format_memory(spec.mem)}")
        return Applied(spec.kind, spec.namespace, spec.name, "configured" if old else "created")

    def _new_rows(self, spec: mf.WorkloadSpec, ns: NamespaceRecord, count: int, kind: int,
                  owner: int = -1, ordinals=-1) -> slice:
        st = self._store
        uids = st.new_uids(count)
        rv = st.bump(count)
        mode = -1 if spec.numa is None else codes.NUMA_MODES[spec.numa]
        return st.rows.extend(count, uid=uids, owner=owner, ordinal=ordinals, kind=kind, ns=ns.id,
                              cpu=spec.cpu, mem=spec.mem, mode=mode, vnuma=int(spec.vnuma),
                              priority=spec.priority,
                              rv=np.arange(rv, rv + count, dtype=np.int64))

    def _apply_deployment(self, spec: mf.WorkloadSpec, manifest: dict) -> Applied:
        st = self._store
        self._namespace(spec.namespace)
        q.require_requests(st, spec.namespace, spec.cpu, spec.mem, "spec.template.spec.containers")
        key = (spec.namespace, spec.name)
        dep = st.deployments.get(key)
        if dep is None:
            clash = [n for (k, ns_, n) in st.singles
                     if k == "Pod" and ns_ == spec.namespace and re.match(
                         rf"^{re.escape(spec.name)}-\d+$", n)]
            if clash:
                raise ValueError(f"metadata.name: replicas of Deployment {spec.name!r} would be "
                                 f"named like the existing Pod {spec.namespace}/{clash[0]}")
            dep_id = len(st.deployment_names)
            dep = DeploymentRecord(spec.namespace, spec.name, dep_id, spec,
                                   copy.deepcopy(manifest), st.new_meta())
            st.deployments[key] = dep
            st.deployment_names[dep_id] = key
            st.event("Normal", "Created", "Deployment", spec.namespace, spec.name,
                     f"{spec.replicas} replicas of cpu={format_cpu(spec.cpu)} "
                     f"memory={format_memory(spec.mem)}")
            self._scale(dep)
            return Applied("Deployment", spec.namespace, spec.name, "created")
        if dep.spec == spec:
            return Applied("Deployment", spec.namespace, spec.name, "unchanged")
        template_changed = dep.spec._replace(replicas=0) != spec._replace(replicas=0)
        if template_changed:  # recreate: every replica is replaced by one of the new template
            live = self._replica_rows(dep)
            self._kill_rows(live, dep)
            st.event("Normal", "Recreate", "Deployment", spec.namespace, spec.name,
                     f"template changed: {live.size} replicas replaced")
        dep.spec = spec
        dep.manifest = copy.deepcopy(manifest)
        dep.meta.rv = st.bump()
        self._scale(dep)
        return Applied("Deployment", spec.namespace, spec.name, "configured")

    def _replica_rows(self, dep: DeploymentRecord) -> np.ndarray:
        rows = self._store.rows
        return np.flatnonzero((rows.view("owner") == dep.id) & rows.view("live"))

    def _kill_rows(self, idx: np.ndarray, dep: DeploymentRecord | None) -> None:
        """Delete workload rows from the desired state (a reconcile releases their capacity)."""
        st = self._store
        rows = st.rows
        if idx.size == 0:
            return
        rows.live[idx] = False
        rows.rv[idx] = st.bump(idx.size) + np.arange(idx.size)
        by_ns = np.bincount(rows.ns[idx], minlength=len(st.namespace_names))
        for ns_id in np.flatnonzero(by_ns).tolist():
            sel = idx[rows.ns[idx] == ns_id]
            q.add_usage(st, st.namespace_names[ns_id], -int(rows.cpu[sel].sum()),
                        -int(rows.mem[sel].sum()), -int(sel.size))
        if dep is not None:
            dep.created -= int(idx.size)

    def _scale(self, dep: DeploymentRecord) -> int:
        """Bring a Deployment's replicas towards ``spec.replicas``: scale down at once (Pending
        replicas first, then the newest); scale up as far as quota allows. Returns how many
        replicas were created."""
        st = self._store
        spec = dep.spec
        created = 0
        if dep.created > spec.replicas:
            live = self._replica_rows(dep)
            rows = st.rows
            pending_first = np.lexsort((-rows.ordinal[live], rows.host[live] >= 0))
            victims = live[pending_first[: dep.created - spec.replicas]]
            self._kill_rows(np.sort(victims), dep)
            st.event("Normal", "ScalingDown", "Deployment", dep.namespace, dep.name,
                     f"deleted {victims.size} replicas (Pending first, then the newest)")
        elif dep.created < spec.replicas:
            wanted = spec.replicas - dep.created
            n, why = q.allowed(st, dep.namespace, spec.cpu, spec.mem, wanted)
            if n:
                ordinals = np.arange(dep.next_ordinal, dep.next_ordinal + n, dtype=np.int64)
                self._new_rows(spec, st.namespaces[dep.namespace], n, KIND_POD, dep.id, ordinals)
                dep.next_ordinal += n
                dep.created += n
                q.add_usage(st, dep.namespace, spec.cpu * n, spec.mem * n, n)
                created = n
                st.event("Normal", "ScalingUp", "Deployment", dep.namespace, dep.name,
                         f"created {n} replicas")
            if why is not None:
                if why != dep.shortfall:
                    st.event("Warning", "QuotaExceeded", "Deployment", dep.namespace, dep.name,
                             why)
                dep.shortfall = why
                st.short.add(dep.id)
                return created
        dep.shortfall = None
        st.short.discard(dep.id)
        return created

    # -- delete -----------------------------------------------------------------------------
    def delete(self, kind: str, namespace: str | None, name: str) -> None:
        """Delete an object (a reconcile then frees its capacity). Deleting a Namespace deletes
        everything in it; deleting one replica of a Deployment makes the Deployment create a
        new one; ``delete("Host", None, name)`` is ``ops.remove_host``."""
        st = self._store
        if kind == "Host":
            return self.ops.remove_host(name)
        if kind not in mf.KINDS:
            raise ValueError(f"kind: unknown kind {kind!r}; known: {', '.join(GET_KINDS)}")
        if kind == "Namespace":
            return self._delete_namespace(name)
        namespace = mf.DEFAULT_NAMESPACE if namespace is None else namespace
        self._namespace(namespace)
        if kind == "ResourceQuota":
            if st.quotas.pop((namespace, name), None) is None:
                raise NotFound(f"ResourceQuota {namespace}/{name} not found")
            st.bump()
            st.event("Normal", "Deleted", kind, namespace, name, "quota removed")
            self._mark_all_short(namespace)
            return None
        if kind == "Deployment":
            dep = st.deployments.get((namespace, name))
            if dep is None:
                raise NotFound(f"Deployment {namespace}/{name} not found")
            self._delete_deployment(dep)
            return None
        single = st.singles.get((kind, namespace, name))
        if single is not None:
            self._delete_single(single, "Deleted", f"{kind} deleted")
            return None
        if kind == "Pod":
            dep = self._replica_owner(namespace, name)
            if dep is not None:
                ordinal = int(name.rsplit("-", 1)[1])
                rows = st.rows
                idx = np.flatnonzero((rows.view("owner") == dep.id) & rows.view("live")
                                     & (rows.view("ordinal") == ordinal))
                if idx.size:
                    self._kill_rows(idx, dep)
                    st.event("Normal", "Deleted", "Pod", namespace, name,
                             f"replica of Deployment {dep.name} deleted; it will be replaced")
                    st.short.add(dep.id)
                    return None
        raise NotFound(f"{kind} {namespace}/{name} not found")

    def _delete_single(self, single: SingleRecord, reason: str, message: str) -> None:
        st = self._store
        r = st.rows.row_of(single.uid)
        self._kill_rows(np.array([r]), None)
        del st.singles[(single.kind, single.namespace, single.name)]
        st.event("Normal", reason, single.kind, single.namespace, single.name, message)

    def _delete_deployment(self, dep: DeploymentRecord) -> None:
        st = self._store
        live = self._replica_rows(dep)
        self._kill_rows(live, dep)
        del st.deployments[(dep.namespace, dep.name)]
        st.short.discard(dep.id)
        st.bump()
        st.event("Normal", "Deleted", "Deployment", dep.namespace, dep.name,
                 f"deleted with its {live.size} replicas")

    def _delete_namespace(self, name: str) -> None:
        st = self._store
        if name == mf.DEFAULT_NAMESPACE:
            raise ValueError("metadata.name: the 'default' namespace cannot be deleted")
        self._namespace_named(name)
        for dep in [d for d in st.deployments.values() if d.namespace == name]:
            self._delete_deployment(dep)
        for single in [s for s in st.singles.values() if s.namespace == name]:
            self._delete_single(single, "Deleted", "namespace deleted")
        for key in [k for k in st.quotas if k[0] == name]:
            del st.quotas[key]
        del st.namespaces[name]
        st.bump()
        st.event("Normal", "Deleted", "Namespace", None, name, "namespace and its objects deleted")

    # -- get / list -------------------------------------------------------------------------
    def get(self, kind: str, namespace: str | None, name: str) -> dict:
        """The object as a manifest-like dict with ``metadata`` (uid, resourceVersion),
        ``spec`` and ``status``; ``NotFound`` if it does not exist. The dict is a copy."""
        st = self._store
        if kind not in GET_KINDS:
            raise ValueError(f"kind: unknown kind {kind!r}; known: {', '.join(GET_KINDS)}")
        if kind == "Namespace":
            return self._namespace_view(self._namespace_named(name))
        if kind == "Host":
            record = st.host_names.get(name)
            if record is None:
                raise NotFound(f"Host {name!r} not found")
            return self._host_view(record)
        namespace = mf.DEFAULT_NAMESPACE if namespace is None else namespace
        if kind == "ResourceQuota":
            record = st.quotas.get((namespace, name))
            if record is None:
                raise NotFound(f"ResourceQuota {namespace}/{name} not found")
            return self._quota_view(record)
        if kind == "Deployment":
            dep = st.deployments.get((namespace, name))
            if dep is None:
                raise NotFound(f"Deployment {namespace}/{name} not found")
            return self._deployment_view(dep)
        single = st.singles.get((kind, namespace, name))
        if single is not None:
            return self._workload_views(np.array([st.rows.row_of(single.uid)]))[0]
        if kind == "Pod":
            dep = self._replica_owner(namespace, name)
            if dep is not None:
                rows = st.rows
                idx = np.flatnonzero((rows.view("owner") == dep.id) & rows.view("live")
                                     & (rows.view("ordinal") == int(name.rsplit("-", 1)[1])))
                if idx.size:
                    return self._workload_views(idx)[0]
        raise NotFound(f"{kind} {namespace}/{name} not found")

    def _namespace_named(self, name: str) -> NamespaceRecord:
        record = self._store.namespaces.get(name)
        if record is None:
            raise NotFound(f"Namespace {name!r} not found")
        return record

    def list(self, kind: str, namespace: str | None = None) -> list[dict]:
        """Every object of a kind (in one namespace, or all), in creation order. ``"Event"``
        lists the event log like ``kubectl get events``."""
        st = self._store
        if kind not in LIST_KINDS:
            raise ValueError(f"kind: unknown kind {kind!r}; known: {', '.join(LIST_KINDS)}")
        if namespace is not None and kind not in ("Namespace", "Host"):
            self._namespace(namespace)
        if kind == "Event":
            return [e._asdict() for e in self.events(namespace=namespace)]
        if kind == "Namespace":
            return [self._namespace_view(r) for r in
                    sorted(st.namespaces.values(), key=lambda r: r.meta.created)]
        if kind == "Host":
            return [self._host_view(r) for r in sorted(st.host_names.values(), key=lambda r: r.row)]
        if kind == "ResourceQuota":
            return [self._quota_view(r) for r in sorted(st.quotas.values(), key=lambda r: r.meta.created)
                    if namespace in (None, r.namespace)]
        if kind == "Deployment":
            return [self._deployment_view(d) for d in sorted(st.deployments.values(),
                                                             key=lambda d: d.meta.created)
                    if namespace in (None, d.namespace)]
        rows = st.rows
        sel = rows.view("live") & (rows.view("kind") == (KIND_VM if kind == "VirtualMachine" else KIND_POD))
        if namespace is not None:
            sel &= rows.view("ns") == st.namespaces[namespace].id
        return self._workload_views(np.flatnonzero(sel))

    def events(self, namespace: str | None = None, kind: str | None = None,
               name: str | None = None) -> list:
        """The event log (oldest first), optionally for one namespace / kind / object."""
        return [e for e in self._store.events
                if (namespace is None or e.namespace == namespace)
                and (kind is None or e.kind == kind) and (name is None or e.name == name)]

    # -- views ------------------------------------------------------------------------------
    def _meta(self, name, namespace, meta) -> dict:
        out = {"name": name, "uid": str(meta.uid), "resourceVersion": str(meta.rv),
               "creationIndex": meta.created}
        if namespace is not None:
            out["namespace"] = namespace
        return out

    def _workload_views(self, idx: np.ndarray) -> list[dict]:
        st = self._store
        rows, hosts = st.rows, st.hosts
        cols = {name: rows.view(name)[idx].tolist() for name in
                ("uid", "owner", "ordinal", "kind", "ns", "cpu", "mem", "mode", "vnuma",
                 "host", "nodes", "reason", "rv")}
        cpu_by, mem_by = rows.cpu_by[idx].tolist(), rows.mem_by[idx].tolist()
        ns_modes = self._namespace_modes()
        templates: dict[int, bytes] = {}   # Deployment id -> its pickled (spec, annotations)
        out = []
        for i in range(idx.size):
            owner, kind = cols["owner"][i], ROW_KINDS[cols["kind"][i]]
            if owner < 0:
                single = st.singles[st.single_names[cols["uid"][i]]]
                name, namespace, manifest = single.name, single.namespace, single.manifest
                spec, annotations = copy.deepcopy((manifest["spec"],
                                                   manifest["metadata"].get("annotations")))
                meta = {"name": name, "namespace": namespace}
            else:
                dep = st.deployments[st.deployment_names[owner]]
                namespace, name = dep.namespace, f"{dep.name}-{cols['ordinal'][i]}"
                if owner not in templates:  # a fresh copy per view, ~10x cheaper than deepcopy
                    template = dep.manifest["spec"]["template"]
                    templates[owner] = pickle.dumps(
                        (template["spec"], (template.get("metadata") or {}).get("annotations")))
                spec, annotations = pickle.loads(templates[owner])
                meta = {"name": name, "namespace": namespace,
                        "ownerReferences": [{"kind": "Deployment", "name": dep.name}]}
            if annotations:
                meta["annotations"] = annotations
            meta.update(uid=str(cols["uid"][i]), resourceVersion=str(cols["rv"][i]),
                        creationIndex=cols["uid"][i])
            h, code = cols["host"][i], cols["reason"][i]
            mode = cols["mode"][i]
            if mode < 0:
                mode = ns_modes[cols["ns"][i]]
            mode_name = codes.name_of(codes.NUMA_MODES, mode if mode >= 0 else self._numa_code)
            status = {"phase": "Running" if h >= 0 else "Pending",
                      "host": hosts.names[h] if h >= 0 else None,
                      "nodes": [k for k in range(st.width) if cols["nodes"][i] >> k & 1],
                      "reason": None if h >= 0 else reason_name(code),
                      "message": None if h >= 0 else reason_message(code),
                      "requests": {"cpu": cols["cpu"][i], "memory": cols["mem"][i]},
                      "numa": mode_name, "vnuma": bool(cols["vnuma"][i]),
                      "allocated": [{"node": k, "cpu": cpu_by[i][k], "memory": mem_by[i][k]}
                                    for k in range(st.width) if cols["nodes"][i] >> k & 1]}
            if h >= 0:
                status["message"] = (f"running on {hosts.names[h]}, NUMA nodes "
                                     f"{status['nodes']}")
            out.append({"apiVersion": API_VERSIONS[kind], "kind": kind, "metadata": meta,
                        "spec": spec, "status": status})
        return out

    def _deployment_view(self, dep: DeploymentRecord) -> dict:
        st = self._store
        rows = st.rows
        live = self._replica_rows(dep)
        host = rows.host[live]
        running = int((host >= 0).sum())
        reasons = np.bincount(rows.reason[live[host < 0]].astype(np.int64), minlength=REASON_NEW + 1)
        by_reason = {reason_name(c): int(reasons[c]) for c in np.flatnonzero(reasons).tolist()}
        pending = live.size - running
        if dep.shortfall is not None:
            reason, message = "QuotaExceeded", dep.shortfall
        elif pending:
            reason = "ReplicasPending"
            message = f"{pending} of {live.size} replicas Pending: " + ", ".join(
                f"{n} {r}" for r, n in by_reason.items())
        else:
            reason, message = None, f"{running} of {dep.spec.replicas} replicas Running"
        return {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": self._meta(dep.name, dep.namespace, dep.meta),
                "spec": copy.deepcopy(dep.manifest["spec"]),
                "status": {"replicas": int(live.size), "desiredReplicas": dep.spec.replicas,
                           "runningReplicas": running, "readyReplicas": running,
                           "pendingReplicas": pending, "pendingByReason": by_reason,
                           "reason": reason, "message": message}}

    def _namespace_view(self, record: NamespaceRecord) -> dict:
        st = self._store
        limits = q.limits(st, record.name)
        used = q.usage(st, record.name)
        return {"apiVersion": "v1", "kind": "Namespace",
                "metadata": self._meta(record.name, None, record.meta),
                "spec": {"numa": record.numa,
                         "quota": {q.LABELS[r]: v for r, v in record.ops_quota.items()}},
                "status": {"numa": record.numa or self.numa,
                           "hard": {q.LABELS[r]: v[0] for r, v in limits.items()},
                           "used": dict(zip(q.LABELS.values(), used))}}

    def _quota_view(self, record: QuotaRecord) -> dict:
        used = q.usage(self._store, record.namespace)
        hard = {q.LABELS[r]: q.format_amount(r, v) for r, v in record.limits.items()}
        return {"apiVersion": "v1", "kind": "ResourceQuota",
                "metadata": self._meta(record.name, record.namespace, record.meta),
                "spec": {"hard": dict(hard)},
                "status": {"hard": hard,
                           "used": {q.LABELS[r]: q.format_amount(r, used[i])
                                    for i, r in enumerate(q.RESOURCES) if r in record.limits}}}

    def _host_view(self, record) -> dict:
        st = self._store
        hosts, rows = st.hosts, st.rows
        r = record.row
        present = [k for k in range(st.width) if hosts.node_cpu[r, k] or hosts.node_mem[r, k]]
        bound = rows.view("host") == r
        return {"apiVersion": "numasched.io/v1", "kind": "Host",
                "metadata": self._meta(record.name, None, record.meta),
                "spec": {"nodes": [{"cpu": int(hosts.node_cpu[r, k]),
                                    "memory": int(hosts.node_mem[r, k])} for k in present],
                         "distance": hosts.distance[r][np.ix_(present, present)].tolist()},
                "status": {"state": HOST_STATES[int(hosts.state[r])],
                           "free": [{"node": k, "cpu": int(hosts.free_cpu[r, k]),
                                     "memory": int(hosts.free_mem[r, k])} for k in present],
                           "allocated": [{"node": k,
                                          "cpu": int(hosts.node_cpu[r, k] - hosts.free_cpu[r, k]),
                                          "memory": int(hosts.node_mem[r, k] - hosts.free_mem[r, k])}
                                         for k in present],
                           "workloads": int((bound & rows.view("live")).sum()),
                           "terminating": int((bound & ~rows.view("live")).sum())}}

    # ======================================================================================
    # The loop
    # ======================================================================================
    def _namespace_modes(self) -> np.ndarray:
        """Default NUMA mode code per namespace id (-1 = the controller's)."""
        st = self._store
        out = np.full(max(len(st.namespace_names), 1), -1, dtype=np.int8)
        for record in st.namespaces.values():
            if record.numa is not None:
                out[record.id] = codes.NUMA_MODES[record.numa]
        return out

    def cluster(self) -> tuple[Cluster, list[str]]:
        """The kernel's view of the pool now: a ``Cluster`` of every host that is not removed
        (free = capacity minus current bindings; ``schedulable`` = ready), and the host names
        in its row order."""
        cluster, host_rows = self._cluster()
        return cluster, [self._store.hosts.names[r] for r in host_rows.tolist()]

    def _cluster(self) -> tuple[Cluster, np.ndarray]:
        st = self._store
        hosts = st.hosts
        state = hosts.view("state")
        host_rows = np.flatnonzero(state != REMOVED)
        width = st.width
        if hosts.view("custom_distance")[host_rows].any():
            distance = np.stack([hosts.distance[r] for r in host_rows.tolist()])
        else:
            distance = default_distance(width)
        cluster = Cluster(hosts.node_cpu[host_rows], hosts.node_mem[host_rows], distance,
                          schedulable=state[host_rows] == READY,
                          free_cpu=hosts.free_cpu[host_rows], free_mem=hosts.free_mem[host_rows])
        return cluster, host_rows

    def _requests(self, idx: np.ndarray) -> Requests:
        """The kernel batch for rows ``idx`` (in order). Each request carries its own NUMA mode
        (its own, else its namespace's) unless it is the controller's, so a policy that fixes
        the call's mode never overrides a namespace default."""
        rows = self._store.rows
        cpu = np.maximum(rows.cpu[idx], 1)
        mem = np.maximum(rows.mem[idx], 1)
        own = rows.mode[idx]
        modes = np.where(own >= 0, own, self._namespace_modes()[rows.ns[idx]]).astype(np.int8)
        requests = Requests(cpu, mem, vnuma=rows.vnuma[idx])
        if (modes >= 0).any():
            # Requests(numa=<sequence>) resolves modes one Python call per request (~0.17 s per
            # 100,000); these codes are valid by construction (-1 = the call's mode), so the
            # column is set directly, in Requests' own representation.
            modes.setflags(write=False)
            requests.numa = modes
        return requests

    def reconcile(self) -> ReconcileResult:
        """One round of the loop; see the module docstring. Returns what it did."""
        st = self._store
        st.round += 1
        result = ReconcileResult(st.round)
        rows, hosts = st.rows, st.hosts

        # 1. release what was deleted
        released = np.flatnonzero(~rows.view("live") & (rows.view("host") >= 0))
        if released.size:
            result._sets["released"].add_rows(st, released)
            self._group_events(released, "Normal", "Released", "capacity released")
            st.unbind(released)
        st.compact()

        # 2. evict from failed and maintenance hosts (remove_host evicted at once)
        host = rows.view("host")
        state = hosts.view("state")
        bound = host >= 0
        off = np.zeros(rows.n, dtype=bool)
        off[bound] = state[host[bound]] != READY
        evicted = np.flatnonzero(off)
        if st.evicted_uids:  # evicted by remove_host since the last round, and still there
            uids = np.concatenate(st.evicted_uids)
            st.evicted_uids.clear()
            at = np.searchsorted(rows.view("uid"), uids)
            found = at < rows.n
            at = at[found][rows.uid[at[found]] == uids[found]]
            earlier = at[rows.live[at] & (rows.host[at] < 0)]
            result._sets["evicted"].add_rows(st, np.sort(earlier))
        if evicted.size:
            result._sets["evicted"].add_rows(st, evicted)
            self._evict(evicted)

        # 3. scale Deployments that quota held back
        for dep_id in sorted(st.short):
            dep = st.deployments.get(st.deployment_names[dep_id])
            if dep is None:
                st.short.discard(dep_id)
                continue
            before = rows.n
            if self._scale(dep):
                result._sets["created"].add_rows(st, np.arange(before, rows.n))

        # 4. place all pending work in one kernel call
        pending = np.flatnonzero(rows.view("live") & (rows.view("host") < 0))
        if pending.size:
            priority = rows.priority[pending]
            if priority.min() != priority.max():
                pending = pending[np.argsort(-priority, kind="stable")]
            cluster, host_rows = self._cluster()
            requests = self._requests(pending)
            t0 = time.perf_counter()
            p = place(cluster, requests, policy=self.policy, numa=self.numa, order="given",
                      node=self.node, backend=self.backend)
            result.kernel_seconds = time.perf_counter() - t0
            result.kernel_calls = 1
            self._write_back(p, pending, host_rows, result)
        if self._periodic is not None and self._periodic.due(st.round):
            result.rebalanced = self._periodic.run(self)
        return result

    def rebalance(self, max_moves: int = 10, objective: str = "hosts", dry_run: bool = True,
                  **options):
        """A migration plan over the Running workloads (``numasched.control.rebalance``),
        applied (VMs migrate live, Pods are evicted and re-placed) unless ``dry_run``."""
        planned = rebalancing.plan(self, max_moves=max_moves, objective=objective, **options)
        return planned if dry_run else rebalancing.apply(self, planned)

    def _evict(self, idx: np.ndarray) -> None:
        """Unbind the rows ``idx`` from hosts that left service, with events per host, per
        single workload and per Deployment; they are Pending until placed again."""
        if idx.size == 0:
            return
        st = self._store
        rows, hosts = st.rows, st.hosts
        host = rows.host[idx]
        for h in np.unique(host).tolist():
            why = HOST_STATES[int(hosts.state[h])]
            sel = idx[host == h]
            st.event("Warning", "Evacuated" if hosts.state[h] == MAINTENANCE else "Evicted",
                     "Host", None, hosts.names[h],
                     f"{sel.size} workloads moved off: {EVICTION_REASONS[why]}", int(sel.size))
            self._group_events(sel, "Warning", "Evicted", f"{EVICTION_REASONS[why]} "
                               f"({hosts.names[h]})")
        st.unbind(idx)
        rows.reason[idx] = REASON_NEW
        rows.rv[idx] = st.bump(idx.size) + np.arange(idx.size)

    def _write_back(self, p, pending: np.ndarray, host_rows: np.ndarray,
                    result: ReconcileResult) -> None:
        """Bindings, statuses, versions and events from the kernel's placement."""
        st = self._store
        rows, hosts = st.rows, st.hosts
        placed = p.host >= 0
        new_reason = p.reason.astype(np.int16)
        changed = placed | (rows.reason[pending] != new_reason)
        idx = pending[placed]
        # a big batch is usually all placed and contiguous in the table: then slices, not
        # masked fancy indexing (~5 ms per [N, K] column at 100,000 rows)
        src = slice(None) if idx.size == pending.size else placed
        dst = _span(idx)
        rows.host[dst] = host_rows[p.host[src]]
        rows.nodes[dst] = p.nodes[src]
        rows.cpu_by[dst] = p.cpu_by_node[src]
        rows.mem_by[dst] = p.mem_by_node[src]
        rows.reason[_span(pending)] = new_reason
        hosts.free_cpu[host_rows] = p.free_cpu
        hosts.free_mem[host_rows] = p.free_mem
        touched = pending[changed]
        rows.rv[_span(touched)] = st.bump(touched.size) + np.arange(touched.size)
        result.status_changes = int(touched.size)
        result._sets["placed"].add_rows(st, idx)
        still = ~placed
        result._sets["pending"].add_rows(st, pending[still], new_reason[still])
        counts = np.bincount(new_reason[still].astype(np.int64), minlength=len(codes.REASONS))
        result.pending_by_reason = {codes.REASONS[c]: int(counts[c])
                                    for c in np.flatnonzero(counts).tolist()}
        # events: per single workload, aggregated per Deployment and outcome
        self._group_events(idx, "Normal", "Scheduled", None)
        newly_pending = pending[still & changed]
        for code in np.unique(new_reason[still & changed]).tolist():
            sel = newly_pending[rows.reason[newly_pending] == code]
            self._group_events(sel, "Warning", "FailedScheduling",
                               f"{reason_name(code)}: {reason_message(code)}")

    def _group_events(self, idx: np.ndarray, type_: str, reason: str, message: str | None) -> None:
        """One event per single workload in ``idx`` and one per Deployment (with a count)."""
        if idx.size == 0:
            return
        st = self._store
        rows, hosts = st.rows, st.hosts
        owner = rows.owner[idx]
        for r in idx[owner < 0].tolist():
            kind, namespace, name = st.single_names[int(rows.uid[r])]
            text = message
            if text is None:
                nodes = [k for k in range(st.width) if int(rows.nodes[r]) >> k & 1]
                text = f"placed on {hosts.names[int(rows.host[r])]}, NUMA nodes {nodes}"
            st.event(type_, reason, kind, namespace, name, text)
        per_owner = np.bincount(owner[owner >= 0])
        owners = np.flatnonzero(per_owner)
        for dep_id, n in zip(owners.tolist(), per_owner[owners].tolist()):
            namespace, name = st.deployment_names[dep_id]
            dep = st.deployments.get((namespace, name))
            if dep is not None and dep.id == dep_id:   # its status changed: a new version
                dep.meta.rv = st.bump()
            verb = {"Scheduled": "scheduled", "FailedScheduling": "Pending",
                    "Released": "released", "Evicted": "evicted"}.get(reason, reason)
            text = f"{n:,} {'replica' if n == 1 else 'replicas'} {verb}" + (f": {message}" if message else "")
            st.event(type_, reason, "Deployment", namespace, name, text, n)

    def run(self, max_rounds: int = 10) -> list[ReconcileResult]:
        """Reconcile until a round changes nothing (or ``max_rounds`` rounds); the results."""
        if isinstance(max_rounds, bool) or not isinstance(max_rounds, int) or max_rounds < 1:
            raise ValueError(f"max_rounds must be a positive integer, got {max_rounds!r}")
        results = []
        for _ in range(max_rounds):
            results.append(self.reconcile())
            if not results[-1].changed:
                break
        return results

    def audit(self) -> list[str]:
        """Broken invariants of the store (capacity accounting, bindings); empty if none."""
        return self._store.audit()

    def __repr__(self) -> str:
        st = self._store
        live = st.rows.view("live")
        running = int((live & (st.rows.view("host") >= 0)).sum())
        return (f"Controller(hosts={len(st.host_names)}, workloads={int(live.sum())}, "
                f"running={running}, round={st.round})")
