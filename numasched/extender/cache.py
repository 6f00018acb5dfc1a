"""The assume cache: capacity taken by pods bound through the extender, until the topology
source shows it.

kube-scheduler binds pods faster than the resource-topology exporter republishes
NodeResourceTopology objects, so ``available`` lags behind reality. Each pod the extender binds
becomes a ``Reservation`` of the CPU and memory it takes on each NUMA node of its node (the node
set numasched chose), and the extender answers every verb from

    free = what the topology source says - every reservation still held

How a reservation ends (``AssumeCache.reconcile``, run on every re-read of the source):

- **confirmed**: the source lists the pod. A topology object accounts for pods by the
  attribute ``PODS_ATTRIBUTE`` (``numasched.io/pods``, v1alpha2 ``attributes``): a
  comma-separated list of ``namespace/name`` of the pods its ``available`` already
  subtracts. Once the pod's node lists it, its capacity is in the source and the reservation
  is dropped; listed on another node, it is dropped too (the pod is accounted there).
- **expired**: ``ttl`` seconds after the bind, whether or not the source ever listed it (a pod
  deleted before it started, a source that lists no pods). Until then a source that does not
  list pods is over-reserved: the pod counts twice once ``available`` reflects it, which
  wastes room for a while but never over-commits a NUMA node. Set ``ttl`` above the exporter's
  update period plus a pod's admission time.
- **forgotten**: ``forget(uid)`` (the bind was not carried out).

The cache is a plain object with its own lock; ``Extender`` owns one.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

PODS_ATTRIBUTE = "numasched.io/pods"


@dataclass(frozen=True)
class Reservation:
    """One bound pod's share of its node, held until the source accounts for it."""

    uid: str
    namespace: str
    name: str
    node: str                  # host name
    cpu: tuple[int, ...]       # millicores taken on each NUMA node of the host (K entries)
    mem: tuple[int, ...]       # bytes taken on each NUMA node
    numa_nodes: int            # bit mask of the NUMA nodes used
    bound_at: float            # time.time() of the bind (reported)
    expires: float = field(compare=False)   # clock() deadline

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def to_dict(self) -> dict:
        return {"podUID": self.uid, "namespace": self.namespace, "name": self.name,
                "node": self.node, "numaNodes": [k for k in range(64) if self.numa_nodes >> k & 1],
                "cpuMillicores": list(self.cpu), "memoryBytes": list(self.mem),
                "boundAt": self.bound_at}


def listed_pods(attributes: dict) -> frozenset[str]:
    """The ``namespace/name`` entries of a host's ``PODS_ATTRIBUTE`` (empty when absent)."""
    text = attributes.get(PODS_ATTRIBUTE, "")
    return frozenset(p.strip() for p in text.split(",") if p.strip())


class AssumeCache:
    """Reservations by pod UID (see the module docstring for their life cycle)."""

    def __init__(self, ttl: float = 60.0, clock=time.monotonic):
        if not ttl > 0:
            raise ValueError(f"ttl must be positive seconds, got {ttl!r}")
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._held: dict[str, Reservation] = {}
        self.released = {"confirmed": 0, "expired": 0, "forgotten": 0}

    def __len__(self) -> int:
        return len(self._held)

    def get(self, uid: str) -> Reservation | None:
        return self._held.get(uid)

    def reservations(self) -> list[Reservation]:
        with self._lock:
            return list(self._held.values())

    def add(self, uid, namespace, name, node, cpu, mem, numa_nodes) -> Reservation:
        res = Reservation(uid, namespace, name, node, tuple(int(x) for x in cpu),
                          tuple(int(x) for x in mem), int(numa_nodes), time.time(),
                          self.clock() + self.ttl)
        with self._lock:
            self._held[uid] = res
        return res

    def forget(self, uid: str) -> bool:
        with self._lock:
            found = self._held.pop(uid, None) is not None
            if found:
                self.released["forgotten"] += 1
            return found

    def reconcile(self, names, attributes) -> int:
        """Drop reservations the source now lists (``names[h]``'s ``attributes[h]``) or whose
        time is up; returns how many were dropped."""
        listed_on: dict[str, str] = {}
        for name, attrs in zip(names, attributes):
            if PODS_ATTRIBUTE in attrs:
                for key in listed_pods(attrs):
                    listed_on[key] = name
        now = self.clock()
        with self._lock:
            drop = []
            for uid, res in self._held.items():
                if res.key in listed_on:
                    drop.append((uid, "confirmed"))
                elif now >= res.expires:
                    drop.append((uid, "expired"))
            for uid, why in drop:
                del self._held[uid]
                self.released[why] += 1
        return len(drop)

    def subtract(self, index: dict, free_cpu: np.ndarray, free_mem: np.ndarray):
        """``(free_cpu, free_mem)`` minus every held reservation on a host of ``index``
        (name -> row), floored at 0 (a source that already shows a pod counts it twice until
        the reservation ends); new arrays, the inputs are not changed."""
        cpu, mem = free_cpu.copy(), free_mem.copy()
        k = cpu.shape[1]
        for res in self.reservations():
            h = index.get(res.node)
            if h is not None:
                cpu[h] -= np.asarray(res.cpu[:k], dtype=np.int64)
                mem[h] -= np.asarray(res.mem[:k], dtype=np.int64)
        np.maximum(cpu, 0, out=cpu)
        np.maximum(mem, 0, out=mem)
        return cpu, mem


__all__ = ["AssumeCache", "Reservation", "PODS_ATTRIBUTE", "listed_pods"]
