"""The operator plane: namespaces and quotas, and the host lifecycle.

``controller.ops`` shares the store with the developer plane (``apply``). Amounts are
Kubernetes quantity strings (``"64"`` cores, ``"256Gi"``) or ints already in millicores and
bytes. Every call validates first and changes nothing when it refuses.

Host states: ``ready`` -> ``maintenance`` (no new work; the next reconcile moves its workloads
off, re-placing them elsewhere where they fit) -> ``ready`` again with ``exit_maintenance``;
``failed`` (the next reconcile evicts its workloads; ``recover_host`` makes it ready again);
``remove_host`` forgets the host at once: its workloads become Pending immediately (they are
re-placed by the next reconcile, which reports them as evicted) and the name can be added again.
"""
from __future__ import annotations

import re

import numpy as np

from .. import codes
from .._validate import int_array
from ..api import MAX_DISTANCE
from ..codes import MAX_HOST_AMOUNT, MAX_NODE_AMOUNT, MAX_NODES
from ..io.quantity import count as parse_count
from ..io.quantity import cpu_millicores, format_cpu, format_memory, memory_bytes
from . import quota as q
from .atomic import transaction
from .manifests import QUOTA_KEYS
from .store import FAILED, HOST_STATES, MAINTENANCE, READY, REMOVED, HostRecord, default_distance

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def validate_name(name, field: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"{field}: must be a DNS-1123 name (lower-case letters, digits, '-', "
                         f"'.'), got {name!r}")
    return name


def quota_limits(cpu=None, memory=None, count=None) -> dict[str, int]:
    """Validated limits (None = not limited): quantity strings or ints in millicores / bytes."""
    limits = {}
    if cpu is not None:
        limits["cpu"] = cpu_millicores(cpu, "quota cpu")
    if memory is not None:
        limits["memory"] = memory_bytes(memory, "quota memory")
    if count is not None:
        limits["count"] = parse_count(count, "quota count")
    return limits


class Operator:
    """Operator API over a Controller's store (``controller.ops``). Every call is one
    transaction of the controller (all-or-nothing, committed when it returns)."""

    def __init__(self, controller):
        self._controller = controller

    @property
    def _store(self):
        return self._controller._store  # looked up on each call: apply may swap the store

    # -- namespaces and quotas --------------------------------------------------------------
    @transaction
    def create_namespace(self, name: str, quota: dict | None = None, numa: str | None = None):
        """Create a namespace with an optional quota (``{"cpu": ..., "memory": ...,
        "count": ...}``; the ResourceQuota names ``requests.cpu``, ``requests.memory`` and
        ``pods`` work too) and a default NUMA mode for its workloads."""
        validate_name(name, "name")
        if len(name) > 63 or "." in name:
            raise ValueError(f"name: a namespace must be a DNS-1123 label, got {name!r}")
        if numa is not None:
            codes.resolve(codes.NUMA_MODES, numa, "numa mode")
            if not isinstance(numa, str):
                raise ValueError(f"numa: expected a NUMA mode name, got {numa!r}")
        if quota is not None and not isinstance(quota, dict):
            raise ValueError(f"quota: expected a dict with cpu / memory / count, got {quota!r}")
        named: dict[str, object] = {}
        for key, value in (quota or {}).items():   # also the ResourceQuota keys (pods, ...)
            resource = QUOTA_KEYS.get(key)
            if resource is None:
                raise ValueError(f"quota: unknown resource {key!r}; known: "
                                 + ", ".join(QUOTA_KEYS))
            if resource in named:
                raise ValueError(f"quota: {resource} is limited twice ({key!r})")
            named[resource] = value
        limits = quota_limits(**named)
        if name in self._store.namespaces:
            raise ValueError(f"name: namespace {name!r} already exists")
        record = self._controller._create_namespace(name, numa)
        self._store.save(record)
        record.ops_quota = limits
        return self._controller.get("Namespace", None, name)

    @transaction
    def set_quota(self, namespace: str, cpu=None, memory=None, count=None) -> None:
        """Set the operator's quota of a namespace to exactly these limits (None = no limit
        on that resource). ResourceQuota objects in the namespace still apply."""
        limits = quota_limits(cpu, memory, count)
        record = self._controller._namespace(namespace)
        st = self._store
        if record.ops_quota == limits:
            return
        st.save(record)
        record.ops_quota = limits
        record.meta.rv = st.bump()
        st.touch("Namespace", None, namespace)
        st.event("Normal", "QuotaSet", "Namespace", None, namespace,
                 "hard: " + (", ".join(f"{q.LABELS[r]}={q.format_amount(r, v)}"
                                      for r, v in limits.items()) or "none"))
        self._controller._mark_all_short(namespace)

    # -- hosts ------------------------------------------------------------------------------
    @transaction
    def add_host(self, name: str, nodes, distance=None) -> None:
        """Add a host of NUMA nodes ``[(cpu, memory), ...]`` (quantities or millicores /
        bytes) with an optional ``[K, K]`` SLIT distance matrix (default 10 local, 21 remote)."""
        validate_name(name, "name")
        st = self._store
        if name in st.host_names:
            raise ValueError(f"name: host {name!r} already exists")
        if not isinstance(nodes, (list, tuple)) or not nodes:
            raise ValueError(f"nodes: expected a non-empty list of (cpu, memory) pairs, got {nodes!r}")
        if len(nodes) > MAX_NODES:
            raise ValueError(f"nodes: at most {MAX_NODES} NUMA nodes per host, got {len(nodes)}")
        cpu, mem = [], []
        for k, pair in enumerate(nodes):
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise ValueError(f"nodes[{k}]: expected a (cpu, memory) pair, got {pair!r}")
            c = cpu_millicores(pair[0], f"nodes[{k}].cpu")
            m = memory_bytes(pair[1], f"nodes[{k}].memory")
            for field, v in ((f"nodes[{k}].cpu", c), (f"nodes[{k}].memory", m)):
                if v > MAX_NODE_AMOUNT:
                    raise ValueError(f"{field}: {v} is above the per-node limit {MAX_NODE_AMOUNT}")
            cpu.append(c)
            mem.append(m)
        if sum(cpu) > MAX_HOST_AMOUNT or sum(mem) > MAX_HOST_AMOUNT:
            raise ValueError(f"nodes: the host's total is above the limit {MAX_HOST_AMOUNT}")
        if not any(c or m for c, m in zip(cpu, mem)):
            raise ValueError("nodes: every node is empty (zero CPU and memory)")
        k = len(nodes)
        if distance is None:
            dist = default_distance(k)
        else:
            dist = int_array(distance, "distance", ndim=2, lo=1, hi=MAX_DISTANCE)
            if dist.shape != (k, k):
                raise ValueError(f"distance: expected shape ({k}, {k}) for {k} nodes, got {dist.shape}")
        # all checks done: change the store
        st.widen(k)
        width = st.width
        row_cpu = np.zeros(width, dtype=np.int64)
        row_mem = np.zeros(width, dtype=np.int64)
        row_cpu[:k], row_mem[:k] = cpu, mem
        hosts = st.hosts
        rows = hosts.extend(1, node_cpu=row_cpu, node_mem=row_mem, free_cpu=row_cpu,
                            free_mem=row_mem, state=READY, custom_distance=distance is not None)
        full = default_distance(width)
        full[:k, :k] = dist
        hosts.distance.append(full)
        hosts.names.append(name)
        st.host_names[name] = HostRecord(name, rows.start, st.new_meta())
        st.touch("Host", None, name)
        st.event("Normal", "HostAdded", "Host", None, name,
                 f"{k} NUMA nodes, cpu={format_cpu(sum(cpu))} memory={format_memory(sum(mem))}")

    def _host(self, name: str) -> HostRecord:
        record = self._store.host_names.get(name)
        if record is None:
            from .controller import NotFound
            raise NotFound(f"Host {name!r} not found")
        return record

    def _set_state(self, name: str, state: int, allowed: tuple[int, ...], verb: str,
                   reason: str, message: str) -> None:
        st = self._store
        record = self._host(name)
        now = int(st.hosts.state[record.row])
        if now == state:
            return
        if now not in allowed:
            raise ValueError(f"host {name!r} is {HOST_STATES[now]}; cannot {verb}")
        st.hosts.state[record.row] = state
        st.save(record)
        record.meta.rv = st.bump()
        st.touch("Host", None, name)
        st.event("Warning" if state != READY else "Normal", reason, "Host", None, name, message)

    @transaction
    def fail_host(self, name: str) -> None:
        """The host is down: the next reconcile evicts its workloads (they become Pending and
        are re-placed where capacity allows)."""
        self._set_state(name, FAILED, (READY, MAINTENANCE), "fail", "HostFailed",
                        "host failed; its workloads will be evicted")

    @transaction
    def recover_host(self, name: str) -> None:
        """A failed host is back and takes work again."""
        self._set_state(name, READY, (FAILED,), "recover (only a failed host can)",
                        "HostRecovered", "host recovered")

    @transaction
    def enter_maintenance(self, name: str) -> None:
        """The host takes no new work; the next reconcile moves its workloads off."""
        self._set_state(name, MAINTENANCE, (READY,), "enter maintenance", "HostMaintenance",
                        "host entered maintenance; its workloads will be moved off")

    @transaction
    def exit_maintenance(self, name: str) -> None:
        """The host takes work again."""
        self._set_state(name, READY, (MAINTENANCE,), "exit maintenance (it is not in it)",
                        "HostReady", "host left maintenance")

    @transaction
    def remove_host(self, name: str) -> None:
        """Forget the host: what it held becomes Pending now (the next reconcile re-places it).
        Other hosts' bindings are untouched (host rows never move)."""
        st = self._store
        record = self._host(name)
        st.hosts.state[record.row] = REMOVED
        del st.host_names[name]
        st.touch("Host", None, name)
        st.event("Warning", "HostRemoved", "Host", None, name, "host removed")
        rows = st.rows
        held = np.flatnonzero(rows.view("host") == record.row)
        live = held[rows.live[held]]
        st.evicted_uids.append(rows.uid[live].copy())  # the next ReconcileResult reports them
        self._controller._evict(live)
        st.unbind(held[~rows.live[held]])  # deleted work on it goes with the host
