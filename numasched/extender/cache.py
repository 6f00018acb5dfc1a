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

With ``journal`` (a file path) every reservation added or ended is appended to that file as a
JSON line before the call returns (flushed and fsynced), and a new cache replays it: a
restarted extender (``kill -9`` included) still holds what it held, minus what expired while it
was down. A torn last line is ignored; the file is rewritten compactly when it is loaded.

The cache is a plain object with its own lock; ``Extender`` owns one.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

PODS_ATTRIBUTE = "numasched.io/pods"
log = logging.getLogger("numasched.extender")


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

    def __init__(self, ttl: float = 60.0, clock=time.monotonic, journal=None):
        if not ttl > 0:
            raise ValueError(f"ttl must be positive seconds, got {ttl!r}")
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._held: dict[str, Reservation] = {}
        self.released = {"confirmed": 0, "expired": 0, "forgotten": 0}
        self._journal = None
        if journal is not None:
            self._load(Path(journal))

    # ---- the journal ------------------------------------------------------------------------
    def _load(self, path: Path) -> None:
        """Replay ``path`` (if it exists), keep what has not expired, rewrite it compactly."""
        held: dict[str, dict] = {}
        if path.exists():
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                try:
                    entry = json.loads(line)
                    if entry["op"] == "add":
                        held[entry["uid"]] = entry
                    else:
                        held.pop(entry["uid"], None)
                except (ValueError, KeyError, TypeError):
                    log.warning("%s:%d: not a journal entry, ignored (a write cut short?)", path, n)
        now, wall = self.clock(), time.time()
        for uid, e in held.items():
            left = e["expires_wall"] - wall
            if left > 0:
                self._held[uid] = Reservation(uid, e["namespace"], e["name"], e["node"],
                                              tuple(e["cpu"]), tuple(e["mem"]), e["numa_nodes"],
                                              e["bound_at"], now + left)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            for res in self._held.values():
                f.write(self._entry(res) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        self._journal = open(path, "a", encoding="utf-8")
        if self._held:
            log.info("%d reservations restored from %s", len(self._held), path)

    def _entry(self, res: Reservation) -> str:
        entry = {k: v for k, v in asdict(res).items() if k != "expires"}
        entry.update(op="add", expires_wall=time.time() + (res.expires - self.clock()))
        return json.dumps(entry)

    def _write(self, lines: list[str]) -> None:
        """Append to the journal (caller holds the lock)."""
        if self._journal is not None and lines:
            self._journal.write("".join(line + "\n" for line in lines))
            self._journal.flush()
            os.fsync(self._journal.fileno())

    def close(self) -> None:
        with self._lock:
            if self._journal is not None:
                self._journal.close()
                self._journal = None

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
            self._write([self._entry(res)])
        return res

    def forget(self, uid: str) -> bool:
        with self._lock:
            found = self._held.pop(uid, None) is not None
            if found:
                self.released["forgotten"] += 1
                self._write([json.dumps({"op": "del", "uid": uid})])
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
            self._write([json.dumps({"op": "del", "uid": uid}) for uid, _ in drop])
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
