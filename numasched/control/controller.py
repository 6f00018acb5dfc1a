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

Transactions and threads
    Every public call (``apply``, ``delete``, each ``ops.*`` call, each ``reconcile`` round) is
    one transaction (``atomic.transaction``): it runs under the controller's lock, and either
    all of it is committed (one store revision, one write to a durable store) or none of it is:
    any exception inside it, ``KeyboardInterrupt`` and ``MemoryError`` included, rolls the state
    back to exactly what it was before the call. Reads (``get``, ``list``, ``events``,
    ``cluster``, ``audit``) take the same lock, so they never see half a transaction. With a
    durable store each transaction first catches up with what other processes committed, and
    its commit is guarded by the store head it read (compare-and-swap): if another process
    committed in between, the transaction is rolled back and run again on the new state.
"""
from __future__ import annotations

import copy
import os
import pickle
import re
import socket
import threading
import time
import uuid
from collections import deque
from typing import NamedTuple

import numpy as np

from .. import _backend, codes, policies
from ..api import Cluster, Requests, place
from ..io.quantity import format_cpu, format_memory
from . import backends, persist
from . import manifests as mf
from . import quota as q
from . import rebalance as rebalancing
from .atomic import Conflict, Gone, NotLeader, Stale, reading, transaction
from .ops import Operator
from .store import (
    HOST_STATES,
    KIND_POD,
    KIND_VM,
    MAINTENANCE,
    READY,
    REASON_NEW,
    REASON_NO_HOST,
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
    """The object named does not exist (Kubernetes' 404)."""

    code = 404


class ObjectList(list):
    """The objects ``list`` returns, with ``resource_version``: the store revision they were
    read at (``watch(since=...)`` resumes from it and misses nothing)."""

    resource_version: str = "0"


COMMIT_ATTEMPTS = 50
#: Replica names are ``<deployment>-<ordinal>`` with the ordinal in canonical decimal form.
_REPLICA = re.compile(r"^(.*)-(0|[1-9][0-9]*)$")


class Applied(NamedTuple):
    kind: str
    namespace: str | None
    name: str
    action: str   # "created", "configured" or "unchanged"


#: Reasons a workload is Pending beyond the kernel's (``numasched.codes.REASONS``).
CONTROLLER_REASONS = {
    REASON_NEW: ("not-yet-reconciled", "waiting for the next reconcile"),
    REASON_NO_HOST: ("bound-host-unavailable", "spec.nodeName names a host that does not exist "
                     "or is not ready; it waits for that host"),
}


def reason_name(code: int) -> str:
    return CONTROLLER_REASONS[code][0] if code in CONTROLLER_REASONS else codes.REASONS[code]


def reason_message(code: int) -> str:
    return CONTROLLER_REASONS[code][1] if code in CONTROLLER_REASONS else codes.REASON_MESSAGES[code]




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


def _is_topology(doc: dict) -> bool:
    """A document of the operator plane: hosts joining (see ``Controller._join_hosts``)."""
    return isinstance(doc, dict) and (doc.get("kind") in ("NodeResourceTopology", "Node")
                                      or (doc.get("kind") is None and "hosts" in doc))


def _expand(entry: dict):
    """The watch events of one change log entry."""
    rev = str(entry["rev"])
    for type_, kind, namespace, name in entry["objects"]:
        yield {"type": type_, "kind": kind, "namespace": namespace, "name": name,
               "resourceVersion": rev}
    for type_, kind, namespace, name, runs in entry["replicas"]:
        for first, count in runs:
            for ordinal in range(first, first + count):
                yield {"type": type_, "kind": kind, "namespace": namespace,
                       "name": f"{name}-{ordinal}", "resourceVersion": rev}


class Controller:
    """A desired-state controller over one pool of hosts.

    ``policy``, ``numa``, ``node`` and ``backend`` are those of ``numasched.place`` (the
    controller always places in the order it computes: priority, then creation order).
    ``controller.ops`` is the operator plane; ``apply`` / ``delete`` / ``get`` / ``list`` the
    developer plane; ``reconcile`` / ``run`` / ``serve`` the loop; ``watch`` follows changes.
    A ``default`` namespace always exists.

    ``store`` chooses where the state lives (``numasched.control.backends``): ``"memory://"``
    (this process only), ``"sqlite:///path/state.db"`` or ``"etcd://host:port"`` (durable and
    shareable: every call that returns has been committed, and a new Controller on the same
    store sees exactly the same objects, statuses, bindings and resource versions). ``history``
    is how many revisions of change log ``watch`` can resume from.

    The controller is safe to share between threads; see the module docstring for what is
    atomic.
    """

    def __init__(self, *, policy="best-fit", numa: str = "restricted", node: str = "pack",
                 backend: str = "auto", event_limit: int = 100_000,
                 rebalance_every: int | None = None, rebalance_threshold: float = 0.1,
                 rebalance_moves: int = 10, store: str = "memory://", history: int = 10_000):
        compiled = policies.get(policy).compile(numa=numa, node=node, order="given")
        if compiled.order != codes.ORDER_GIVEN:
            raise ValueError(f"policy {policy!r} fixes the request order to "
                             f"{codes.name_of(codes.ORDERS, compiled.order)!r}; the controller "
                             f"places in its own order (priority, then creation) and needs a "
                             f"policy that leaves order open or sets 'given'")
        _backend.get(backend)
        if isinstance(event_limit, bool) or not isinstance(event_limit, int) or event_limit < 1:
            raise ValueError(f"event_limit must be a positive integer, got {event_limit!r}")
        if isinstance(history, bool) or not isinstance(history, int) or history < 1:
            raise ValueError(f"history must be a positive integer, got {history!r}")
        self.policy, self.numa, self.node, self.backend = policy, numa, node, backend
        self._periodic = None if rebalance_every is None else rebalancing.Periodic(
            rebalance_every, rebalance_threshold, rebalance_moves)
        self._numa_code = compiled.numa
        self.event_limit, self.history = event_limit, history
        self._lock = threading.RLock()
        self._depth = 0                     # open transactions (nested calls join the outer)
        self._commit_attempts = COMMIT_ATTEMPTS
        self._fence: bytes | None = None    # the leader token writes are fenced on, if any
        self.store_url = store
        self._kv = backends.open_store(store)
        self._store = Store(event_limit=event_limit)
        self._keys: set[tuple] = set()      # object keys the durable store holds
        self._head: bytes | None = None     # the durable store's head this state reflects
        self._log: deque = deque()          # memory://: (revision, change log entry)
        self._log_revs: deque = deque()     # durable: revisions of the stored log entries
        self._event_keys: deque = deque()   # durable: (revision, last sequence) of event values
        self._compacted = 0                 # watch history before this revision is gone
        self.ops = Operator(self)
        self._initialise()

    @transaction
    def _initialise(self) -> None:
        if "default" not in self._store.namespaces:
            self._create_namespace("default", None)

    def close(self) -> None:
        """Close the connection to the store (the state stays there)."""
        if self._kv is not None:
            self._kv.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    @reading
    def revision(self) -> int:
        """The store revision the controller's state reflects (the last commit)."""
        return self._store.rv

    # -- transactions (see numasched.control.atomic) ------------------------------------------
    def _refresh(self) -> None:
        """Catch up with commits of other processes (a durable store only): reload if the
        store's head is not the one this state was read at."""
        if self._kv is None:
            return
        if self._head is None or self._kv.get(persist.HEAD) != self._head:
            self._load()

    def _load(self) -> None:
        self._head = None
        head, objects, events = self._kv.read([persist.HEAD, persist.OBJECTS, persist.EVENTS])
        if persist.HEAD not in head:    # a new store: the transaction creates it
            self._store, self._keys = Store(event_limit=self.event_limit), set()
            self._log_revs, self._event_keys, self._compacted = deque(), deque(), 0
            return
        st, keys, info, event_keys = persist.load(head[persist.HEAD], objects, events,
                                                  self.event_limit)
        self._store, self._keys, self._compacted = st, keys, info["compacted"]
        self._event_keys = deque(event_keys)
        self._log_revs = deque(persist.rev_of(k) for k in self._kv.keys(persist.LOG))
        self._head = head[persist.HEAD]

    def _begin(self):
        """Catch up and open a transaction; returns what ``_rollback`` needs."""
        self._refresh()
        undo = self._store.snapshot() if self._kv is None else None
        self._store.begin()
        return undo

    def _rollback(self, undo) -> None:
        if self._kv is None:
            self._store.restore()
            self._store = undo
            return
        self._head = None            # the state is the store's: read it again
        self._store = Store(event_limit=self.event_limit)
        try:
            self._load()
        except Exception:
            pass                     # the next call retries (its _refresh sees no head)

    def _commit(self) -> None:
        """Commit the open transaction: one revision; with a durable store, one write."""
        st = self._store
        if not st.wrote:
            st.end()
            return
        rev = st.txn_rv
        log, puts, deletes, added, removed = persist.changes(
            st, self._keys, encode=self._kv is not None,
            compress=getattr(self._kv, "compress_rows", True))
        if self._kv is None:
            self._log.append((rev, log))
            while len(self._log) > self.history:
                self._compacted = self._log.popleft()[0]
            st.end()
            self._keys = (self._keys | added) - removed
            return
        puts[persist.log_key(rev)] = persist.pack(log)
        events = persist.events_value(st)
        if events is not None:
            puts[persist.events_key(rev)] = events
        drop_logs = [r for r in self._log_revs if r <= rev - self.history]
        compacted = drop_logs[-1] if drop_logs else self._compacted
        deletes += [persist.log_key(r) for r in drop_logs]
        first_seq = st.events[0].seq if st.events else st.event_seq + 1
        drop_events = [r for r, last in self._event_keys if last < first_seq]
        deletes += [persist.events_key(r) for r in drop_events]
        head = persist.head_value(st, rev, compacted)
        puts[persist.HEAD] = head
        compares = [(persist.HEAD, self._head)]
        if self._fence is not None:
            compares.append((persist.LEADER, self._fence))
        if not self._kv.commit(compares, puts, deletes):
            if self._fence is not None and self._kv.get(persist.LEADER) != self._fence:
                self._fence = None
                raise NotLeader("this controller lost its leader lease; its write was refused")
            raise Stale()
        # committed: bring the bookkeeping up to date
        self._head, self._compacted = head, compacted
        self._keys = (self._keys | added) - removed
        for _ in drop_logs:
            self._log_revs.popleft()
        self._log_revs.append(rev)
        self._event_keys = deque((r, last) for r, last in self._event_keys
                                 if r not in set(drop_events))
        if events is not None:
            self._event_keys.append((rev, st.events[-1].seq))
        st.end()

    # ======================================================================================
    # Developer plane
    # ======================================================================================
    def apply(self, obj) -> list[Applied]:
        """Create or update the objects of a manifest (dict, list of dicts or YAML text).

        All documents are applied or none, in one transaction: a refused document (bad
        manifest, missing namespace, ``QuotaExceeded``, ``Conflict``) or any other exception
        leaves the store exactly as it was. A manifest that carries
        ``metadata.resourceVersion`` is applied only if the object is still at that version
        (else ``Conflict``, Kubernetes' optimistic concurrency); without it, apply is
        last-writer-wins, and no concurrent update is ever lost.
        """
        docs = mf.load_documents(obj)
        return self._apply_documents(docs)

    @transaction
    def _apply_documents(self, docs: list[dict]) -> list[Applied]:
        topology = [(i, d) for i, d in enumerate(docs) if _is_topology(d)]
        out = self._join_hosts(topology) if topology else []
        return out + [self._apply_one(doc, None if len(docs) == 1 else i + 1)
                      for i, doc in enumerate(docs) if not _is_topology(doc)]

    def _join_hosts(self, docs: list[tuple[int, dict]]) -> list[Applied]:
        """The operator plane's objects in a manifest: NodeResourceTopology and Node objects
        and inventories (``hosts:``) make hosts join (read as ``numasched.io.topology`` reads
        them). A host that exists with the same nodes is unchanged; with other nodes, refused."""
        from ..io import topology as tp

        where = {id(d): f"document {i + 1}" for i, d in docs}
        nrts = [(where[id(d)], d) for _, d in docs if d.get("kind") == "NodeResourceTopology"]
        nodes = [(where[id(d)], d) for _, d in docs if d.get("kind") == "Node"]
        hosts, _ = tp.hosts_from_kubernetes(nrts, nodes)
        for _, d in docs:
            if d.get("kind") is None:
                hosts += tp.parse_inventory(d, where[id(d)])[0]
        out = []
        st = self._store
        for h in hosts:
            width = max(h.node_ids) + 1
            pairs = [(h.cpu.get(k, 0), h.mem.get(k, 0)) for k in range(width)]
            distance = None
            if h.distance:
                distance = [[h.distance.get((i, j), 10 if i == j else 20) for j in range(width)]
                            for i in range(width)]
            record = st.host_names.get(h.name)
            if record is not None:
                spec = self._host_view(record)["spec"]["nodes"]
                if [(n["cpu"], n["memory"]) for n in spec] != [p for p in pairs if p != (0, 0)]:
                    raise ValueError(f"{h.source}: host {h.name!r} exists with other NUMA nodes; "
                                     f"remove it first (delete Host {h.name})")
                out.append(Applied("Host", None, h.name, "unchanged"))
                continue
            self.ops.add_host(h.name, pairs, distance)
            if not h.schedulable:
                self.ops.enter_maintenance(h.name)
            out.append(Applied("Host", None, h.name, "created"))
        return out

    def _check_version(self, manifest: dict, kind: str, namespace, name, current) -> None:
        """Kubernetes' optimistic concurrency: ``metadata.resourceVersion``, when given, must
        be the object's current version."""
        wanted = (manifest.get("metadata") or {}).get("resourceVersion")
        if wanted is None:
            return
        subject = f"{kind} {namespace + '/' if namespace else ''}{name}"
        if current is None:
            raise Conflict(f"metadata.resourceVersion: {subject} does not exist (version "
                           f"{wanted!r} given); create it without a resourceVersion")
        if str(wanted) != str(current):
            raise Conflict(f"metadata.resourceVersion: {subject} was modified (now at "
                           f"{current}, the update is based on {wanted}); read it again and "
                           f"retry")

    def _check_amounts(self, spec: mf.WorkloadSpec) -> None:
        """Admission refuses amounts above what the placement kernel accepts."""
        for label, amount in (("cpu", spec.cpu), ("memory", spec.mem)):
            if amount > codes.MAX_REQUEST_AMOUNT:
                raise ValueError(f"resources.requests.{label}: {amount} is above the largest "
                                 f"request numasched accepts ({codes.MAX_REQUEST_AMOUNT})")

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
        except (q.QuotaExceeded, Conflict):
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
        st.touch("Namespace", None, name)
        st.event("Normal", "Created", "Namespace", None, name, f"namespace {name} created")
        return record

    def _apply_namespace(self, spec: mf.NamespaceSpec, manifest: dict) -> Applied:
        st = self._store
        record = st.namespaces.get(spec.name)
        self._check_version(manifest, "Namespace", None, spec.name,
                            None if record is None else record.meta.rv)
        if record is None:
            self._create_namespace(spec.name, spec.numa, manifest)
            return Applied("Namespace", None, spec.name, "created")
        if record.numa == spec.numa:
            return Applied("Namespace", None, spec.name, "unchanged")
        st.save(record)
        record.numa = spec.numa
        record.manifest = copy.deepcopy(manifest)
        record.meta.rv = st.bump()
        st.touch("Namespace", None, spec.name)
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
        self._check_version(manifest, "ResourceQuota", spec.namespace, spec.name,
                            None if record is None else record.meta.rv)
        if record is not None and record.limits == limits:
            return Applied("ResourceQuota", spec.namespace, spec.name, "unchanged")
        if record is None:
            st.quotas[key] = QuotaRecord(spec.namespace, spec.name, limits, st.new_meta(),
                                         copy.deepcopy(manifest))
            action = "created"
        else:
            st.save(record)
            record.limits, record.manifest = limits, copy.deepcopy(manifest)
            record.meta.rv = st.bump()
            action = "configured"
        st.touch("ResourceQuota", spec.namespace, spec.name)
        st.event("Normal", "QuotaSet", "ResourceQuota", spec.namespace, spec.name,
                 "hard: " + ", ".join(f"{q.LABELS[r]}={q.format_amount(r, v)}"
                                      for r, v in limits.items()))
        self._mark_all_short(spec.namespace)
        return Applied("ResourceQuota", spec.namespace, spec.name, action)

    def _mark_all_short(self, namespace: str) -> None:
        """A quota changed: Deployments of the namespace below their replicas may grow, and
        usage already above a new, lower limit is recorded as allowed (it never grows)."""
        st = self._store
        record = st.namespaces[namespace]
        used = q.usage(st, namespace)
        over = {r: used[q.RESOURCES.index(r)] for r, (limit, _) in q.limits(st, namespace).items()
                if used[q.RESOURCES.index(r)] > limit}
        if over != record.over:
            st.save(record)
            record.over = over
            st.touch("Namespace", None, namespace)
        for dep in st.deployments.values():
            if dep.namespace == namespace and dep.created < dep.spec.replicas:
                st.short.add(dep.id)

    def _replica_owner(self, namespace: str, name: str) -> DeploymentRecord | None:
        """The Deployment whose replica names look like ``name`` (``<deployment>-<digits>``)."""
        match = _REPLICA.match(name)
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
        self._check_amounts(spec)
        node = None
        if spec.kind == "Pod":
            q.require_requests(st, spec.namespace, spec.cpu, spec.mem, "spec.containers")
            node = spec.node            # spec.nodeName: bound to that host
        key = (spec.kind, spec.namespace, spec.name)
        old = st.singles.get(key)
        self._check_version(manifest, spec.kind, spec.namespace, spec.name,
                            None if old is None else int(st.rows.rv[st.rows.row_of(old.uid)]))
        subject = f"{spec.kind} {spec.namespace}/{spec.name}"
        if old is not None:
            old_pin = int(st.rows.pin[st.rows.row_of(old.uid)])
            if old.spec == spec and (st.pin_names[old_pin] if old_pin >= 0 else None) == node:
                return Applied(spec.kind, spec.namespace, spec.name, "unchanged")
            freed = (old.spec.cpu, old.spec.mem, 1)
            q.check(st, spec.namespace, subject, spec.cpu, spec.mem, 1, freed)
            self._delete_single(old, "Replaced", "spec changed; the workload is re-created")
        else:
            q.check(st, spec.namespace, subject, spec.cpu, spec.mem, 1)
        rows = self._new_rows(spec, ns, 1, KIND_VM if spec.kind == "VirtualMachine" else KIND_POD)
        if node is not None:
            st.rows.pin[rows] = st.pin_id(node)
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
        mode = -1 if spec.numa is None else codes.NUMA_MODES[spec.numa]
        return st.rows.extend(count, uid=uids, owner=owner, ordinal=ordinals, kind=kind, ns=ns.id,
                              cpu=spec.cpu, mem=spec.mem, mode=mode, vnuma=int(spec.vnuma),
                              priority=spec.priority, rv=st.bump())

    def _apply_deployment(self, spec: mf.WorkloadSpec, manifest: dict) -> Applied:
        st = self._store
        self._namespace(spec.namespace)
        self._check_amounts(spec)
        if (manifest["spec"]["template"].get("spec") or {}).get("nodeName"):
            raise ValueError("spec.template.spec.nodeName: a Deployment's replicas are placed by "
                             "the controller; bind single Pods with spec.nodeName instead")
        q.require_requests(st, spec.namespace, spec.cpu, spec.mem, "spec.template.spec.containers")
        key = (spec.namespace, spec.name)
        dep = st.deployments.get(key)
        self._check_version(manifest, "Deployment", spec.namespace, spec.name,
                            None if dep is None else dep.meta.rv)
        if dep is None:
            clash = [n for (k, ns_, n) in st.singles
                     if k == "Pod" and ns_ == spec.namespace and re.match(
                         rf"^{re.escape(spec.name)}-(0|[1-9][0-9]*)$", n)]
            if clash:
                raise ValueError(f"metadata.name: replicas of Deployment {spec.name!r} would be "
                                 f"named like the existing Pod {spec.namespace}/{clash[0]}")
            dep_id = st.next_deployment
            st.next_deployment += 1
            dep = DeploymentRecord(spec.namespace, spec.name, dep_id, spec,
                                   copy.deepcopy(manifest), st.new_meta())
            st.deployments[key] = dep
            st.deployment_names[dep_id] = key
            st.touch("Deployment", spec.namespace, spec.name)
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
        st.save(dep)
        dep.spec = spec
        dep.manifest = copy.deepcopy(manifest)
        dep.meta.rv = st.bump()
        st.touch("Deployment", spec.namespace, spec.name)
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
        rows.rv[idx] = st.bump()
        st.touch("Terminating", None, "-")
        by_ns = np.bincount(rows.ns[idx], minlength=len(st.namespace_names))
        for ns_id in np.flatnonzero(by_ns).tolist():
            sel = idx[rows.ns[idx] == ns_id]
            q.add_usage(st, st.namespace_names[ns_id], -sum(rows.cpu[sel].tolist()),
                        -sum(rows.mem[sel].tolist()), -int(sel.size))
        if dep is not None:
            st.save(dep)
            dep.created -= int(idx.size)

    def _scale(self, dep: DeploymentRecord) -> int:
        """Bring a Deployment's replicas towards ``spec.replicas``: scale down at once (Pending
        replicas first, then the newest); scale up as far as quota allows. Returns how many
        replicas were created."""
        st = self._store
        st.save(dep)
        before = (dep.created, dep.next_ordinal, dep.shortfall)
        try:
            return self._scale_to(dep)
        finally:
            if (dep.created, dep.next_ordinal, dep.shortfall) != before:
                st.touch("Deployment", dep.namespace, dep.name)

    def _scale_to(self, dep: DeploymentRecord) -> int:
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
    @transaction
    def delete(self, kind: str, namespace: str | None, name: str, *,
               resource_version: str | int | None = None) -> None:
        """Delete an object (a reconcile then frees its capacity). Deleting a Namespace deletes
        everything in it; deleting one replica of a Deployment makes the Deployment create a
        new one; ``delete("Host", None, name)`` is ``ops.remove_host``. With
        ``resource_version``, the object is deleted only if it is still at that version (else
        ``Conflict``)."""
        st = self._store
        if resource_version is not None:
            current = self.get(kind, namespace, name)["metadata"]["resourceVersion"]
            if str(resource_version) != current:
                raise Conflict(f"{kind} {name}: was modified (now at {current}, the delete is "
                               f"based on {resource_version}); read it again and retry")
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
            st.touch(kind, namespace, name)
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
        st.touch("Deployment", dep.namespace, dep.name)
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
            st.touch("ResourceQuota", *key)
        del st.namespaces[name]
        st.touch("Namespace", None, name)
        st.event("Normal", "Deleted", "Namespace", None, name, "namespace and its objects deleted")

    # -- get / list -------------------------------------------------------------------------
    @reading
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

    @reading
    def list(self, kind: str, namespace: str | None = None) -> ObjectList:
        """Every object of a kind (in one namespace, or all), in creation order, as an
        ``ObjectList`` whose ``resource_version`` is the revision read. ``"Event"`` lists the
        event log like ``kubectl get events``."""
        out = ObjectList(self._list(kind, namespace))
        out.resource_version = str(self._store.rv)
        return out

    def _list(self, kind: str, namespace: str | None) -> list[dict]:
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

    @reading
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
                 "host", "nodes", "reason", "rv", "placed_mode", "pin")}
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
            if h >= 0 and cols["placed_mode"][i] >= 0:
                mode = cols["placed_mode"][i]     # the mode it was placed under
            elif mode < 0:
                mode = ns_modes[cols["ns"][i]]    # the mode it will be placed under
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
            elif cols["pin"][i] >= 0 and code != REASON_NEW:
                status["message"] = (f"bound to host {st.pin_names[cols['pin'][i]]} "
                                     f"(spec.nodeName): {status['message']}")
            out.append({"apiVersion": API_VERSIONS[kind], "kind": kind, "metadata": meta,
                        "spec": spec, "status": status})
        return out

    def _deployment_view(self, dep: DeploymentRecord) -> dict:
        st = self._store
        rows = st.rows
        live = self._replica_rows(dep)
        host = rows.host[live]
        running = int((host >= 0).sum())
        reasons = np.bincount(rows.reason[live[host < 0]].astype(np.int64))
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

    @reading
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

    def _modes(self, idx: np.ndarray) -> np.ndarray:
        """The NUMA mode code rows ``idx`` are placed under: their own, else their namespace's
        (-1: the controller's)."""
        rows = self._store.rows
        own = rows.mode[idx]
        return np.where(own >= 0, own, self._namespace_modes()[rows.ns[idx]]).astype(np.int8)

    def _requests(self, idx: np.ndarray) -> Requests:
        """The kernel batch for rows ``idx`` (in order). Each request carries its own NUMA mode
        (its own, else its namespace's) unless it is the controller's, so a policy that fixes
        the call's mode never overrides a namespace default."""
        rows = self._store.rows
        cpu = np.maximum(rows.cpu[idx], 1)
        mem = np.maximum(rows.mem[idx], 1)
        modes = self._modes(idx)
        requests = Requests(cpu, mem, vnuma=rows.vnuma[idx])
        if (modes >= 0).any():
            # Requests(numa=<sequence>) resolves modes one Python call per request (~0.17 s per
            # 100,000); these codes are valid by construction (-1 = the call's mode), so the
            # column is set directly, in Requests' own representation.
            modes.setflags(write=False)
            requests.numa = modes
        return requests

    @transaction
    def reconcile(self) -> ReconcileResult:
        """One round of the loop; see the module docstring. Returns what it did.

        The round is one transaction: every binding and status it changes is committed
        together (one write to a durable store), or, if anything inside it raises, none is."""
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

        # 4. Pods bound by name (spec.nodeName) on their own hosts first (they are load that
        # exists already), then all other pending work in one kernel call
        pending = np.flatnonzero(rows.view("live") & (rows.view("host") < 0))
        bound_by_name = rows.pin[pending] >= 0
        if bound_by_name.any():
            self._place_bound(pending[bound_by_name], result)
            pending = pending[~bound_by_name]
        if pending.size:
            priority = rows.priority[pending]
            if priority.min() != priority.max():
                pending = pending[np.argsort(-priority, kind="stable")]
            cluster, host_rows = self._cluster()
            self._place(cluster, host_rows, pending, result)
        # 5. the periodic rebalancing mode (part of this round's transaction)
        if self._periodic is not None and self._periodic.due(st.round):
            result.rebalanced = self._periodic.run(self)
        return result

    def rebalance(self, max_moves: int = 10, objective: str = "hosts", dry_run: bool = True,
                  **options):
        """A migration plan over the Running workloads (``numasched.control.rebalance``),
        applied (VMs migrate live, Pods are evicted and re-placed) unless ``dry_run``; the
        plan and its moves are one transaction."""
        return self._rebalance(max_moves, objective, dry_run, options)

    @transaction
    def _rebalance(self, max_moves, objective, dry_run, options):
        planned = rebalancing.plan(self, max_moves=max_moves, objective=objective, **options)
        return planned if dry_run else rebalancing.apply(self, planned)

    def _place(self, cluster: Cluster, host_rows: np.ndarray, pending: np.ndarray,
               result: ReconcileResult) -> None:
        """One kernel call for the rows ``pending`` (in that order), written back."""
        requests = self._requests(pending)
        t0 = time.perf_counter()
        p = place(cluster, requests, policy=self.policy, numa=self.numa, order="given",
                  node=self.node, backend=self.backend)
        result.kernel_seconds += time.perf_counter() - t0
        result.kernel_calls += 1
        self._write_back(p, pending, host_rows, result)

    def _place_bound(self, idx: np.ndarray, result: ReconcileResult) -> None:
        """Pods bound to a host by name: each is placed on that host only (on the NUMA nodes
        its mode allows there), never elsewhere; one kernel call per host named. A Pod whose
        host does not exist or is not ready, or where it does not fit, stays Pending and
        waits for it."""
        st = self._store
        rows, hosts = st.rows, st.hosts
        pins = rows.pin[idx]
        for pin in np.unique(pins).tolist():
            group = idx[pins == pin]
            priority = rows.priority[group]
            if priority.min() != priority.max():
                group = group[np.argsort(-priority, kind="stable")]
            record = st.host_names.get(st.pin_names[pin])
            if record is None or hosts.state[record.row] != READY:
                self._pending_outcome(group, np.full(group.size, REASON_NO_HOST, np.int16),
                                      result)
                continue
            r = record.row
            one = np.array([r])
            cluster = Cluster(hosts.node_cpu[one], hosts.node_mem[one], hosts.distance[r][None],
                              free_cpu=hosts.free_cpu[one], free_mem=hosts.free_mem[one])
            self._place(cluster, one, group, result)

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
        rows.rv[idx] = st.bump()

    def _write_back(self, p, pending: np.ndarray, host_rows: np.ndarray,
                    result: ReconcileResult) -> None:
        """Bindings, statuses, versions and events from the kernel's placement."""
        st = self._store
        rows, hosts = st.rows, st.hosts
        placed = p.host >= 0
        new_reason = p.reason.astype(np.int16)
        idx = pending[placed]
        # a big batch is usually all placed and contiguous in the table: then slices, not
        # masked fancy indexing (~5 ms per [N, K] column at 100,000 rows)
        src = slice(None) if idx.size == pending.size else placed
        dst = _span(idx)
        rows.host[dst] = host_rows[p.host[src]]
        rows.nodes[dst] = p.nodes[src]
        rows.cpu_by[dst] = p.cpu_by_node[src]
        rows.mem_by[dst] = p.mem_by_node[src]
        modes = self._modes(idx)
        rows.placed_mode[dst] = np.where(modes >= 0, modes, self._numa_code)
        rows.reason[dst] = new_reason[src]
        hosts.free_cpu[host_rows] = p.free_cpu
        hosts.free_mem[host_rows] = p.free_mem
        touched = pending[placed]
        rows.rv[_span(touched)] = st.bump()
        result.status_changes += int(touched.size)
        result._sets["placed"].add_rows(st, idx)
        # events: per single workload, aggregated per Deployment and outcome
        self._group_events(idx, "Normal", "Scheduled", None)
        still = ~placed
        self._pending_outcome(pending[still], new_reason[still], result)

    def _pending_outcome(self, idx: np.ndarray, reason: np.ndarray,
                         result: ReconcileResult) -> None:
        """Rows ``idx`` stay Pending for ``reason``: statuses, versions, report and events."""
        if idx.size == 0:
            return
        st = self._store
        rows = st.rows
        changed = rows.reason[idx] != reason
        rows.reason[idx] = reason
        if changed.any():
            rows.rv[idx[changed]] = st.bump()
        result.status_changes += int(changed.sum())
        result._sets["pending"].add_rows(st, idx, reason)
        counts = np.bincount(reason.astype(np.int64))
        for c in np.flatnonzero(counts).tolist():
            name = reason_name(c)
            result.pending_by_reason[name] = result.pending_by_reason.get(name, 0) + int(counts[c])
        for code in np.unique(reason[changed]).tolist():
            sel = idx[changed & (reason == code)]
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
                st.save(dep)
                dep.meta.rv = st.bump()
                st.touch("Deployment", namespace, name)
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

    # ======================================================================================
    # Watch and the long-running loop
    # ======================================================================================
    def watch(self, kind: str | None = None, namespace: str | None = None,
              since: str | int | None = None, *, timeout: float | None = None,
              poll: float = 0.1):
        """Yield what changes, in commit order, as ``{"type": "ADDED" | "MODIFIED" |
        "DELETED", "kind", "namespace", "name", "resourceVersion"}`` (``get`` reads the object).

        ``since``: a revision (``list(...).resource_version``, or the ``resourceVersion`` of the
        last event seen): every change after it is yielded, none missed; ``None`` first yields
        ``ADDED`` for every object that exists, then the changes after that. A revision older
        than the change log kept (``history``) raises ``Gone`` (410): list again, then watch
        from the list's revision. ``timeout``: stop after that many seconds without a change
        (``None``: watch forever). Replicas of a Deployment are Pods named ``<name>-<ordinal>``.
        """
        if kind is not None and kind not in GET_KINDS:
            raise ValueError(f"kind: unknown kind {kind!r}; known: {', '.join(GET_KINDS)}")
        if since is None:
            with self._lock:
                self._refresh()
                rev = self._store.rv
                kinds = [kind] if kind else list(GET_KINDS)
                existing = [(k, o) for k in kinds for o in self._list(
                    k, namespace if k not in ("Namespace", "Host") else None)]
            for k, obj in existing:
                meta = obj["metadata"]
                if namespace is None or meta.get("namespace") in (None, namespace):
                    yield {"type": "ADDED", "kind": k, "namespace": meta.get("namespace"),
                           "name": meta["name"], "resourceVersion": meta["resourceVersion"]}
            since = rev
        try:
            since = int(since)
        except (TypeError, ValueError):
            raise ValueError(f"since: expected a resourceVersion, got {since!r}") from None
        quiet_since = time.monotonic()
        while True:
            entries = self._log_after(since)
            for rev, entry in entries:
                for event in _expand(entry):
                    if kind is not None and event["kind"] != kind:
                        continue
                    if namespace is not None and event["namespace"] not in (None, namespace):
                        continue
                    yield event
                since = rev
            if entries:
                quiet_since = time.monotonic()
            elif timeout is not None and time.monotonic() - quiet_since >= timeout:
                return
            else:
                time.sleep(poll)

    def _log_after(self, since: int) -> list[tuple[int, dict]]:
        """The change log entries after revision ``since``, contiguous, or ``Gone``."""
        if self._kv is None:
            with self._lock:
                entries = [(r, e) for r, e in self._log if r > since]
                compacted = self._compacted
        else:
            values = self._kv.scan(persist.log_key(since + 1), backends.prefix_end(persist.LOG))
            entries = [(persist.rev_of(k), persist.unpack(v, k)[0]) for k, v in values]
            head = self._kv.get(persist.HEAD)
            compacted = persist.read_head(head)["compacted"] if head else 0
        if since < compacted or (entries and entries[0][0] != since + 1):
            raise Gone(f"too old resource version: {since} (the change log starts after "
                       f"{compacted}); list again and watch from the list's resourceVersion")
        return entries

    def serve(self, *, interval: float = 1.0, lease: float = 10.0,
              stop: threading.Event | None = None, identity: str | None = None,
              on_round=None) -> None:
        """Reconcile every ``interval`` seconds until ``stop`` is set (the long-running
        controller). On a durable store, several processes may serve one store: exactly one
        (the holder of the leader lease, ``lease`` seconds, renewed every third of it)
        reconciles; every write it makes is fenced on its lease, so a deposed leader (killed,
        paused, cut off) can never write again, and another takes over once the lease expires.
        ``on_round(result_or_None, is_leader)`` is called after each round."""
        stop = stop or threading.Event()
        identity = identity or f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
        token, renewed = None, 0.0
        try:
            while not stop.is_set():
                if self._kv is not None:
                    if token is None:
                        token = self._kv.elect(identity, lease)
                        if token is None:
                            if on_round:
                                on_round(None, False)
                            stop.wait(min(interval, lease / 3))
                            continue
                        self._fence, renewed = token, time.monotonic()
                    elif time.monotonic() - renewed >= lease / 3:
                        if not self._kv.renew(token, lease):
                            token = self._fence = None
                            continue
                        renewed = time.monotonic()
                try:
                    result = self.reconcile()
                except NotLeader:
                    token = self._fence = None
                    continue
                except backends.StoreUnavailable:
                    stop.wait(interval)     # the store is unreachable: try again (the lease
                    continue                # is renewed, or lost and re-elected, on the way)
                if on_round:
                    on_round(result, True)
                stop.wait(interval)
        finally:
            if token is not None:
                self._fence = None
                self._kv.resign(token)

    @reading
    def audit(self) -> list[str]:
        """Broken invariants of the state (capacity accounting, bindings to hosts that exist,
        NUMA nodes over capacity, quota usage); empty if none."""
        problems = self._store.audit()
        st = self._store
        for name, record in st.namespaces.items():
            used = q.usage(st, name)
            for resource, (limit, source) in q.limits(st, name).items():
                i = q.RESOURCES.index(resource)
                # a quota lowered below usage evicts nothing (as in Kubernetes): usage may stay
                # above it, never grow past what it was then
                if used[i] > max(limit, record.over.get(resource, limit)):
                    problems.append(f"namespace {name}: {q.LABELS[resource]} used {used[i]} "
                                    f"above its quota {limit} ({source})")
        return problems

    @reading
    def __repr__(self) -> str:
        st = self._store
        live = st.rows.view("live")
        running = int((live & (st.rows.view("host") >= 0)).sum())
        return (f"Controller(hosts={len(st.host_names)}, workloads={int(live.sum())}, "
                f"running={running}, round={st.round})")
