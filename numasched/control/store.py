"""The controller's in-memory store: desired objects, bindings, versions and the event log.

Layout
    - ``Workloads``: one columnar table holding every workload *instance* (a Pod, a VM, or one
      replica of a Deployment) as a row of numpy columns: what it asks for, how to place it and
      where it is bound. Rows stay in creation order (``uid`` increases with the row index, and
      compaction keeps the order), so "creation order" is the row order and a uid is found by
      binary search. Deployments of 100,000 replicas are 100,000 rows, never 100,000 objects;
      Pod views are materialised only on ``get`` / ``list``.
    - ``Hosts``: one row per host ever added (a removed host is a tombstone, so the row numbers
      held by bindings never move). ``free_*`` is kept equal to capacity minus the per-node
      amounts of every row bound to the host.
    - records for Namespaces, ResourceQuotas, Deployments and single workloads (plain Python
      objects; there are few of them), and the event log.

Invariants (checked by ``Store.audit``)
    - ``0 <= free <= capacity`` on every host node, and ``capacity - free`` equals the sum of
      ``cpu_by`` / ``mem_by`` over the rows bound to that host.
    - a row is bound (``host >= 0``) exactly when its ``nodes`` mask is non-zero; a bound row's
      per-node amounts sum to its kernel amounts (``max(cpu, 1)``, ``max(mem, 1)``).
    - a row whose object was deleted (``live`` false) is only kept until the next reconcile
      releases its capacity.

Versions, Kubernetes- and etcd-style: every public call of the controller is one transaction
(``Store.begin``); everything it writes takes the same resource version, the store revision
``rv + 1`` of that transaction (``Store.bump``), and the revision only moves when something was
written. ``dirty`` collects the keys ``(kind, namespace, name)`` of the objects a transaction
touched (workload rows are found by their version instead), so a durable store writes only those.
"""
from __future__ import annotations

import copy
from collections import deque
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from ..api import DEFAULT_LOCAL_DISTANCE, DEFAULT_REMOTE_DISTANCE

# Host states
READY, MAINTENANCE, FAILED, REMOVED = 0, 1, 2, 3
HOST_STATES = {READY: "ready", MAINTENANCE: "maintenance", FAILED: "failed", REMOVED: "removed"}

# Workload kinds in the table
KIND_POD, KIND_VM = 0, 1
ROW_KINDS = {KIND_POD: "Pod", KIND_VM: "VirtualMachine"}

# Status reasons beyond the kernel's (0 placed, 1..5 pending codes of numasched.codes.REASONS)
REASON_NEW = 100       # created, not reconciled yet
REASON_NO_HOST = 101   # bound (spec.nodeName) to a host that does not exist or is not ready

DEFAULT_EVENT_LIMIT = 100_000


class Event(NamedTuple):
    """One entry of the event log (``kubectl get events``)."""
    seq: int            # position in the log, increasing
    round: int          # the reconcile round it happened in (0 = before the first)
    type: str           # "Normal" or "Warning"
    reason: str         # Created, Scheduled, FailedScheduling, Evicted, Released, ...
    kind: str
    namespace: str | None
    name: str
    message: str
    count: int          # how many instances it stands for (a Deployment's replicas)


class _Columns:
    """Growable numpy columns sharing one length ``n`` (capacity doubles as rows are added)."""

    def __init__(self, spec: dict[str, tuple[Any, Any, tuple]]):
        # spec: name -> (dtype, fill value, trailing shape)
        self._spec = dict(spec)
        self.n = 0
        self._cap = 0
        for name, (dtype, fill, tail) in self._spec.items():
            setattr(self, name, np.full((0,) + tail, fill, dtype=dtype))

    def _grow(self, need: int) -> None:
        if need <= self._cap:
            return
        cap = max(need, 2 * self._cap, 64)
        for name, (dtype, fill, tail) in self._spec.items():
            old = getattr(self, name)
            new = np.full((cap,) + tail, fill, dtype=dtype)
            new[: self.n] = old[: self.n]
            setattr(self, name, new)
        self._cap = cap

    def extend(self, count: int, **values) -> slice:
        """Append ``count`` rows (unnamed columns get their fill value); return their slice."""
        self._grow(self.n + count)
        rows = slice(self.n, self.n + count)
        for name, (dtype, fill, tail) in self._spec.items():
            col = getattr(self, name)
            col[rows] = values.pop(name, fill)
        if values:
            raise KeyError(f"unknown columns {sorted(values)}")
        self.n += count
        return rows

    def keep(self, mask: np.ndarray) -> None:
        """Keep only the rows where ``mask`` is true, in order."""
        idx = np.flatnonzero(mask)
        for name in self._spec:
            col = getattr(self, name)
            col[: idx.size] = col[idx]
            col[idx.size: self.n] = self._spec[name][1]
        self.n = int(idx.size)

    def widen(self, width: int) -> None:
        """Pad the per-node columns (trailing shape ``(K,)``) to ``width`` nodes with zeros."""
        for name, (dtype, fill, tail) in list(self._spec.items()):
            if len(tail) == 1 and tail[0] < width:
                old = getattr(self, name)
                new = np.zeros((old.shape[0], width), dtype=dtype)
                new[:, : tail[0]] = old
                setattr(self, name, new)
                self._spec[name] = (dtype, fill, (width,))

    def view(self, name: str) -> np.ndarray:
        return getattr(self, name)[: self.n]

    def copy(self):
        """An independent copy (the columns are copied, nothing is shared)."""
        clone = copy.copy(self)
        clone._spec = dict(self._spec)
        for name in self._spec:
            setattr(clone, name, getattr(self, name).copy())
        return clone


class Workloads(_Columns):
    """Every workload instance as columns; see the module docstring."""

    def __init__(self, width: int):
        super().__init__({
            "uid": (np.int64, 0, ()),           # unique, increasing with the row index
            "owner": (np.int64, -1, ()),        # Deployment id, -1 for a single Pod / VM
            "ordinal": (np.int64, -1, ()),      # replica number within its Deployment
            "kind": (np.int8, KIND_POD, ()),
            "ns": (np.int32, 0, ()),            # namespace id
            "cpu": (np.int64, 0, ()),           # requested millicores (0 = none)
            "mem": (np.int64, 0, ()),           # requested bytes (0 = none)
            "mode": (np.int8, -1, ()),          # own NUMA mode code, -1 = the namespace's
            "vnuma": (np.uint8, 0, ()),
            "priority": (np.int64, 0, ()),
            "live": (np.bool_, True, ()),       # false once its object is deleted
            "host": (np.int32, -1, ()),         # host row, -1 = not bound (Pending)
            "nodes": (np.uint64, 0, ()),        # bit mask of the NUMA nodes it is bound to
            "cpu_by": (np.int64, 0, (width,)),  # millicores taken on each node of its host
            "mem_by": (np.int64, 0, (width,)),  # bytes taken on each node of its host
            "reason": (np.int16, REASON_NEW, ()),
            "rv": (np.int64, 0, ()),            # resourceVersion of its last write
            "placed_mode": (np.int8, -1, ()),   # NUMA mode code it was bound under, -1 unbound
            "pin": (np.int32, -1, ()),          # spec.nodeName (index in Store.pin_names), -1 none
        })

    def row_of(self, uid: int) -> int:
        """The row of a live-or-terminating uid, or -1."""
        uids = self.view("uid")
        r = int(np.searchsorted(uids, uid))
        return r if r < uids.size and uids[r] == uid else -1


class Hosts(_Columns):
    """One row per host ever added; removed hosts stay as tombstones (state REMOVED)."""

    def __init__(self, width: int):
        super().__init__({
            "node_cpu": (np.int64, 0, (width,)),
            "node_mem": (np.int64, 0, (width,)),
            "free_cpu": (np.int64, 0, (width,)),
            "free_mem": (np.int64, 0, (width,)),
            "state": (np.int8, READY, ()),
            "custom_distance": (np.bool_, False, ()),
        })
        self.distance: list[np.ndarray] = []  # [K, K] per row
        self.names: list[str] = []

    def copy(self):
        clone = super().copy()
        clone.distance, clone.names = list(self.distance), list(self.names)
        return clone

    def widen(self, width: int) -> None:
        super().widen(width)
        for i, d in enumerate(self.distance):
            if d.shape[0] < width:
                self.distance[i] = pad_distance(d, width)


def default_distance(width: int) -> np.ndarray:
    d = np.full((width, width), DEFAULT_REMOTE_DISTANCE, dtype=np.int64)
    d[np.diag_indices(width)] = DEFAULT_LOCAL_DISTANCE
    return d


def pad_distance(d: np.ndarray, width: int) -> np.ndarray:
    out = default_distance(width)
    out[: d.shape[0], : d.shape[1]] = d
    return out


@dataclass
class Meta:
    """Metadata shared by every stored object."""
    uid: int
    rv: int
    created: int        # creation order (the uid counter at creation)


@dataclass
class NamespaceRecord:
    name: str
    id: int
    numa: str | None
    meta: Meta
    ops_quota: dict = field(default_factory=dict)   # set by the operator plane
    manifest: dict | None = None
    # resource -> usage when a quota was set below it (lowering a quota evicts nothing; usage
    # may stay above the limit until it falls below, never grow): what audit allows
    over: dict = field(default_factory=dict)


@dataclass
class QuotaRecord:
    namespace: str
    name: str
    limits: dict          # resource -> limit (cpu millicores, memory bytes, count)
    meta: Meta
    manifest: dict | None = None


@dataclass
class DeploymentRecord:
    namespace: str
    name: str
    id: int
    spec: Any             # manifests.WorkloadSpec
    manifest: dict
    meta: Meta
    created: int = 0      # replicas that exist (live rows)
    next_ordinal: int = 0
    shortfall: str | None = None  # why fewer replicas exist than desired (quota), or None


@dataclass
class SingleRecord:
    kind: str             # "Pod" or "VirtualMachine"
    namespace: str
    name: str
    uid: int              # its row's uid
    spec: Any
    manifest: dict
    created: int


@dataclass
class HostRecord:
    name: str
    row: int
    meta: Meta


class Store:
    """Every piece of controller state; ``snapshot()`` is a consistent copy to roll back to."""

    def __init__(self, width: int = 1, event_limit: int = DEFAULT_EVENT_LIMIT):
        self.rv = 0                 # the revision of the last committed transaction
        self.txn_rv = 0             # the revision the open transaction writes (rv + 1)
        self.wrote = False          # whether the open transaction wrote anything
        self.txn_uid = 0            # the uid counter when the open transaction began
        self.txn_events = 0         # events logged by the open transaction
        self.dirty: set[tuple] = set()  # (kind, namespace, name) touched by the transaction
        self.saved: dict[int, tuple] = {}  # records as they were before the transaction
        self.uid = 0
        self.round = 0
        self.event_seq = 0
        self.width = width
        self.rows = Workloads(width)
        self.hosts = Hosts(width)
        self.host_names: dict[str, HostRecord] = {}    # live (not removed) hosts by name
        self.namespaces: dict[str, NamespaceRecord] = {}
        self.namespace_names: list[str] = []           # id -> name (ids are never reused)
        self.quotas: dict[tuple[str, str], QuotaRecord] = {}
        self.deployments: dict[tuple[str, str], DeploymentRecord] = {}
        self.deployment_names: dict[int, tuple[str, str]] = {}  # id -> (namespace, name), kept
        self.next_deployment = 0                       # the next Deployment id
        self.singles: dict[tuple[str, str, str], SingleRecord] = {}
        self.single_names: dict[int, tuple[str, str, str]] = {}  # uid -> key, until compaction
        self.short: set[int] = set()                   # Deployments below their replicas
        self.evicted_uids: list[np.ndarray] = []       # evicted by remove_host, to report
        self.usage: dict[str, list[int]] = {}          # namespace -> [cpu, memory, count]
        self.events: deque[Event] = deque(maxlen=event_limit)
        self.pin_names: list[str] = []                 # host names rows are bound to by name
        self.pin_ids: dict[str, int] = {}

    def pin_id(self, host: str) -> int:
        """The index of a host name in ``pin_names`` (added if new; never removed)."""
        if host not in self.pin_ids:
            self.pin_ids[host] = len(self.pin_names)
            self.pin_names.append(host)
        return self.pin_ids[host]

    def snapshot(self) -> "Store":
        """A copy to roll back to, taken when a transaction begins. The columns and the
        containers are copied; the records in them are shared, and a transaction saves a
        record (``save``) before it first changes one, so ``restore`` puts it back. Events,
        manifests, specs and limit dicts are only ever replaced, never written into."""
        clone = copy.copy(self)
        clone.rows, clone.hosts = self.rows.copy(), self.hosts.copy()
        clone.dirty = set(self.dirty)
        for name in ("host_names", "namespaces", "quotas", "deployments", "singles",
                     "deployment_names", "single_names", "pin_ids"):
            setattr(clone, name, dict(getattr(self, name)))
        clone.namespace_names = list(self.namespace_names)
        clone.pin_names = list(self.pin_names)
        clone.short = set(self.short)
        clone.evicted_uids = list(self.evicted_uids)
        clone.usage = {k: list(v) for k, v in self.usage.items()}
        clone.events = deque(self.events, maxlen=self.events.maxlen)
        clone.saved = {}
        return clone

    def save(self, record) -> None:
        """Keep the state of ``record`` as it was before the open transaction changed it."""
        if id(record) not in self.saved:
            state = dict(record.__dict__)
            if "meta" in state:
                state["meta"] = copy.copy(state["meta"])
            self.saved[id(record)] = (record, state)

    def restore(self) -> None:
        """Put back every record the failed transaction changed (see ``save``)."""
        for record, state in self.saved.values():
            record.__dict__.clear()
            record.__dict__.update(state)
        self.saved = {}

    # -- transactions and counters ---------------------------------------------------------
    def begin(self) -> None:
        """Open a transaction: what it writes takes revision ``rv + 1``."""
        self.txn_rv = self.rv + 1
        self.wrote = False
        self.txn_uid = self.uid
        self.txn_events = 0
        self.dirty.clear()
        self.saved = {}

    def end(self) -> None:
        """The transaction was committed: the revision moves if it wrote anything."""
        if self.wrote:
            self.rv = self.txn_rv
        self.wrote = False
        self.dirty.clear()

    def bump(self) -> int:
        """The resource version of a write in the open transaction."""
        self.wrote = True
        return self.txn_rv

    def touch(self, kind: str, namespace: str | None, name: str) -> None:
        """The object ``(kind, namespace, name)`` was created, changed or deleted."""
        self.wrote = True
        self.dirty.add((kind, namespace, name))

    def new_meta(self) -> Meta:
        self.uid += 1
        return Meta(uid=self.uid, rv=self.bump(), created=self.uid)

    def new_uids(self, count: int) -> np.ndarray:
        first = self.uid + 1
        self.uid += count
        return np.arange(first, first + count, dtype=np.int64)

    def event(self, type_: str, reason: str, kind: str, namespace: str | None, name: str,
              message: str, count: int = 1) -> None:
        self.event_seq += 1
        self.txn_events += 1
        self.wrote = True
        self.events.append(Event(self.event_seq, self.round, type_, reason, kind, namespace,
                                 name, message, count))

    # -- width -----------------------------------------------------------------------------
    def widen(self, width: int) -> None:
        if width > self.width:
            self.rows.widen(width)
            self.hosts.widen(width)
            self.width = width

    # -- bindings --------------------------------------------------------------------------
    def unbind(self, idx: np.ndarray) -> None:
        """Give the capacity of the bound rows ``idx`` back to their hosts; they become
        unbound (the caller sets their reason and version)."""
        rows = self.rows
        host = rows.host[idx]
        np.add.at(self.hosts.free_cpu, host, rows.cpu_by[idx])
        np.add.at(self.hosts.free_mem, host, rows.mem_by[idx])
        rows.host[idx] = -1
        rows.nodes[idx] = 0
        rows.cpu_by[idx] = 0
        rows.mem_by[idx] = 0
        rows.placed_mode[idx] = -1
        if idx.size:
            self.touch("Terminating", None, "-")   # dead rows are stored until released

    def compact(self) -> None:
        """Drop the rows of deleted objects that hold no capacity."""
        rows = self.rows
        live, host = rows.view("live"), rows.view("host")
        drop = ~live & (host < 0)
        if not drop.any():
            return
        for uid in rows.view("uid")[drop & (rows.view("owner") < 0)].tolist():
            self.single_names.pop(uid, None)
        rows.keep(~drop)

    def key_of_row(self, r: int) -> tuple[str, str, str]:
        rows = self.rows
        owner = int(rows.owner[r])
        if owner < 0:
            return self.single_names[int(rows.uid[r])]
        namespace, name = self.deployment_names[owner]
        return (ROW_KINDS[int(rows.kind[r])], namespace, f"{name}-{int(rows.ordinal[r])}")

    # -- self-check ------------------------------------------------------------------------
    def audit(self) -> list[str]:
        """Every broken invariant, as readable lines (empty when the store is consistent)."""
        problems = []
        rows, hosts = self.rows, self.hosts
        n, H = rows.n, hosts.n
        host = rows.view("host")
        bound = np.flatnonzero(host >= 0)
        used_c = np.zeros((H, self.width), dtype=np.int64)
        used_m = np.zeros((H, self.width), dtype=np.int64)
        np.add.at(used_c, host[bound], rows.cpu_by[bound])
        np.add.at(used_m, host[bound], rows.mem_by[bound])
        for label, cap, free, used in (("cpu", hosts.node_cpu, hosts.free_cpu, used_c),
                                       ("memory", hosts.node_mem, hosts.free_mem, used_m)):
            cap, free = cap[:H], free[:H]
            for h, k in np.argwhere(free < 0).tolist():
                problems.append(f"host {hosts.names[h]} node {k}: {label} overcommitted "
                                f"(free {free[h, k]})")
            for h, k in np.argwhere(cap - free != used).tolist():
                problems.append(f"host {hosts.names[h]} node {k}: {label} capacity - free = "
                                f"{cap[h, k] - free[h, k]} but bindings hold {used[h, k]}")
        nodes = rows.view("nodes")
        if ((host >= 0) != (nodes != 0)).any():
            problems.append("a row's host and node mask disagree")
        want_c = np.maximum(rows.view("cpu"), 1)[bound]
        want_m = np.maximum(rows.view("mem"), 1)[bound]
        if (rows.cpu_by[bound].sum(axis=1) != want_c).any() or \
                (rows.mem_by[bound].sum(axis=1) != want_m).any():
            problems.append("a bound row's per-node amounts do not sum to its request")
        used_bits = np.zeros(bound.size, dtype=np.uint64)
        for k in range(self.width):
            taken = (rows.cpu_by[bound, k] != 0) | (rows.mem_by[bound, k] != 0)
            used_bits |= taken.astype(np.uint64) << np.uint64(k)
        if (used_bits & ~nodes[bound]).any():
            problems.append("a bound row takes capacity on a node outside its mask")
        if n and (np.diff(rows.view("uid")) <= 0).any():
            problems.append("rows are not in creation order")
        if ((host >= 0) & (host >= H)).any() or (H and (hosts.view("state")[host[bound]] == REMOVED).any()):
            problems.append("a row is bound to a host that does not exist")
        live = rows.view("live")
        for ns_id, name in enumerate(self.namespace_names):
            if name not in self.namespaces:
                continue
            sel = live & (rows.view("ns") == ns_id)
            used = [int(rows.view("cpu")[sel].sum()), int(rows.view("mem")[sel].sum()),
                    int(sel.sum())]
            if self.usage.get(name, [0, 0, 0]) != used:
                problems.append(f"namespace {name}: usage {self.usage.get(name)} recorded, "
                                f"{used} held by its workloads")
        counts = np.bincount(rows.view("owner")[rows.view("live") & (rows.view("owner") >= 0)],
                             minlength=max(self.deployment_names, default=-1) + 1)
        for dep in self.deployments.values():
            if dep.created != counts[dep.id]:
                problems.append(f"Deployment {dep.namespace}/{dep.name}: {dep.created} replicas "
                                f"recorded, {counts[dep.id]} rows")
        return problems
