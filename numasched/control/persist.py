"""The controller's state as the keys and values of a durable store, and back.

Keys (all under ``/numasched/``)
    - ``head``: the counters (revision, uid, round, event sequence, node width, namespace ids,
      the next Deployment id, evictions still to report, the compacted revision). Every commit
      rewrites it, and every commit is guarded by the head it read (compare-and-swap): the head
      is the store's serialisation point, so two writers can never both commit on the same state.
    - ``o/<kind>/<namespace or _>/<name>``: one value per object: Namespace, ResourceQuota, Host,
      Deployment (its record *and* its replica rows as columns: a Deployment of 100,000 replicas
      is one value, never 100,000), Pod / VirtualMachine (record and its one row), and
      ``o/Terminating/_/-``: the rows of deleted workloads that still hold capacity until the
      next reconcile releases it.
    - ``log/<revision>``: what the commit of that revision changed (``watch`` reads these);
      the oldest are compacted away and the head records the highest revision compacted.
    - ``events/<revision>``: the events that commit logged.

Values are JSON, or (for workload rows) ``B`` + a JSON header + raw little-endian columns; a
value above 4 KiB is zlib-compressed (``Z`` prefix). Nothing is ever unpickled: a store shared
between machines cannot make a reader run code.

The resourceVersion of an object is the revision of the commit that last wrote it; a host's free
capacity is not stored (it is capacity minus the bindings, recomputed on load), nor are the
namespaces' quota usage and the Deployments short of replicas (both follow from the rows).
"""
from __future__ import annotations

import json
import zlib

import numpy as np

from . import manifests as mf
from .store import (
    Event,
    DeploymentRecord,
    HostRecord,
    Meta,
    NamespaceRecord,
    QuotaRecord,
    SingleRecord,
    Store,
    default_distance,
)

PREFIX = "/numasched/"
HEAD = PREFIX + "head"
LEADER = PREFIX + "leader"
OBJECTS = PREFIX + "o/"
LOG = PREFIX + "log/"
EVENTS = PREFIX + "events/"
TERMINATING = ("Terminating", None, "-")
FORMAT = 1

# Row columns stored, in this order (``host`` is stored as an index into the value's host names)
ROW_COLUMNS = ("uid", "owner", "ordinal", "kind", "ns", "cpu", "mem", "mode", "vnuma", "priority",
               "live", "host", "nodes", "cpu_by", "mem_by", "reason", "rv", "placed_mode", "pin")
_COMPRESS_ABOVE = 4096


class CorruptStore(ValueError):
    """A value in the store cannot be read (not written by this format)."""


def object_key(kind: str, namespace: str | None, name: str) -> str:
    # "_" is not a valid namespace name, so cluster-scoped keys never clash with namespaced ones
    return f"{OBJECTS}{kind}/{namespace or '_'}/{name}"


def parse_object_key(key: str) -> tuple[str, str | None, str]:
    kind, namespace, name = key[len(OBJECTS):].split("/", 2)
    return kind, (None if namespace == "_" else namespace), name


def log_key(rev: int) -> str:
    return f"{LOG}{rev:016d}"


def events_key(rev: int) -> str:
    return f"{EVENTS}{rev:016d}"


def rev_of(key: str) -> int:
    return int(key.rsplit("/", 1)[1])


# -- values ----------------------------------------------------------------------------------
def pack(header: dict, columns: dict[str, np.ndarray] | None = None, *,
         compress: bool = True) -> bytes:
    """A JSON header and optional numpy columns as one value (zlib-compressed above 4 KiB
    unless ``compress`` is false: a local store would rather write than compress)."""
    if not columns:
        body = b"J" + json.dumps(header, separators=(",", ":")).encode()
    else:
        arrays = {name: np.ascontiguousarray(col) for name, col in columns.items()}
        header = dict(header, columns=[[name, a.dtype.str, list(a.shape)]
                                       for name, a in arrays.items()])
        text = json.dumps(header, separators=(",", ":")).encode()
        body = b"".join([b"B", len(text).to_bytes(4, "little"), text]
                        + [a.tobytes() for a in arrays.values()])
    if compress and len(body) > _COMPRESS_ABOVE:
        return b"Z" + zlib.compress(body, 1)
    return body


def unpack(value: bytes, key: str = "?") -> tuple[dict, dict[str, np.ndarray]]:
    try:
        if value[:1] == b"Z":
            value = zlib.decompress(value[1:])
        if value[:1] == b"J":
            header, columns = json.loads(value[1:]), {}
            if "same" not in header:
                return header, columns
            header.setdefault("columns", [])
        elif value[:1] != b"B":
            raise ValueError("unknown value type")
        else:
            size = int.from_bytes(value[1:5], "little")
            header = json.loads(value[5:5 + size])
            columns = {}
        at = 5 + size if value[:1] == b"B" else 0
        for name, dtype, shape in header.pop("columns"):
            dt = np.dtype(dtype)
            count = int(np.prod(shape, dtype=np.int64))
            columns[name] = np.frombuffer(value, dtype=dt, count=count, offset=at).reshape(shape).copy()
            at += count * dt.itemsize
        n = header.get("rows", 0)
        for name, (dtype, one) in header.pop("same", {}).items():
            one = np.asarray(one, dtype=np.dtype(dtype))
            columns[name] = np.repeat(one[None], n, axis=0)
        for name, (dtype, start, step) in header.pop("steps", {}).items():
            columns[name] = (start + step * np.arange(n, dtype=np.int64)).astype(np.dtype(dtype))
        return header, columns
    except (ValueError, KeyError, TypeError, zlib.error) as exc:
        raise CorruptStore(f"store value {key!r} cannot be read: {exc}") from None


def _rows_value(st: Store, idx: np.ndarray, header: dict, compress: bool = True) -> bytes:
    rows = st.rows
    host = rows.host[idx]
    used = np.unique(host[host >= 0])
    pin = rows.pin[idx]
    pins = np.unique(pin[pin >= 0])
    columns = {}
    for name in ROW_COLUMNS:
        if name == "host":
            columns[name] = np.where(host >= 0, np.searchsorted(used, host), -1).astype(np.int32)
        elif name == "pin":
            columns[name] = np.where(pin >= 0, np.searchsorted(pins, pin), -1).astype(np.int32)
        else:
            columns[name] = getattr(rows, name)[idx]
    header = dict(header, hosts=[st.hosts.names[h] for h in used.tolist()],
                  pins=[st.pin_names[p] for p in pins.tolist()], rows=int(idx.size))
    # columns that are one value (a Deployment's request, mode, ...) or a step sequence
    # (uids, ordinals) are stored as that value or as (start, step), not row by row
    same, steps = {}, {}
    for name in list(columns):
        col = columns[name]
        if col.size and (col == col[:1]).all():
            same[name] = [col.dtype.str, col[0].tolist()]
            del columns[name]
        elif col.ndim == 1 and col.dtype.kind == "i" and col.size > 2 \
                and (np.diff(col) == col[1] - col[0]).all():
            steps[name] = [col.dtype.str, int(col[0]), int(col[1] - col[0])]
            del columns[name]
    header.update(same=same, steps=steps)
    return pack(header, columns or None, compress=compress)


def _meta(meta: Meta) -> dict:
    return {"uid": meta.uid, "rv": meta.rv, "created": meta.created}


def _unmeta(d: dict) -> Meta:
    return Meta(uid=d["uid"], rv=d["rv"], created=d["created"])


# -- head ------------------------------------------------------------------------------------
def head_value(st: Store, rev: int, compacted: int) -> bytes:
    evicted = np.concatenate(st.evicted_uids).tolist() if st.evicted_uids else []
    return pack({"format": FORMAT, "rev": rev, "uid": st.uid, "round": st.round,
                 "event_seq": st.event_seq, "width": st.width,
                 "namespaces": st.namespace_names, "next_deployment": st.next_deployment,
                 "evicted": evicted, "compacted": compacted})


def read_head(value: bytes) -> dict:
    head, _ = unpack(value, HEAD)
    if head.get("format") != FORMAT:
        raise CorruptStore(f"store format {head.get('format')!r} is not {FORMAT}")
    return head


# -- one commit's changes -----------------------------------------------------------------------
def changes(st: Store, keys: set[tuple], *, encode: bool, compress: bool = True):
    """What the open transaction of ``st`` changed.

    Returns ``(log, puts, deletes, added, removed)``: ``log`` is the watch entry (``objects``:
    ``[type, kind, namespace, name]``; ``replicas``: ``[type, kind, namespace, deployment,
    ordinal runs [first, count]]``); when ``encode``, the values to put and the keys to delete; and the object keys
    the store gains and loses (``keys`` is the set it holds now; it is not changed here).
    """
    rev, rows = st.txn_rv, st.rows
    dirty = set(st.dirty)
    touched = np.flatnonzero(rows.view("rv") == rev)
    owner = rows.owner[touched]
    for uid in rows.uid[touched[owner < 0]].tolist():
        key = st.single_names.get(uid)
        if key is not None:
            dirty.add(key)
    for dep_id in np.unique(owner[owner >= 0]).tolist():
        namespace, name = st.deployment_names[dep_id]
        dirty.add(("Deployment", namespace, name))
    objects, puts, deletes, added, removed = [], {}, [], set(), set()
    dep_rows = _deployment_rows(st, [d for d in dirty if d[0] == "Deployment"]) if encode else {}
    for key in sorted(dirty, key=lambda k: (k[0], k[1] or "", k[2])):
        exists = _exists(st, key)
        if key == TERMINATING:
            if encode:
                value = _terminating_value(st, compress)
                if value is None:
                    if key in keys:
                        deletes.append(object_key(*key))
                        removed.add(key)
                else:
                    puts[object_key(*key)] = value
                    added.add(key)
            continue
        if exists:
            objects.append(["MODIFIED" if key in keys else "ADDED", *key])
            if encode:
                puts[object_key(*key)] = _object_value(st, key, dep_rows, compress)
            added.add(key)
        elif key in keys:
            objects.append(["DELETED", *key])
            deletes.append(object_key(*key))
            removed.add(key)
    replicas = []
    rep = touched[owner >= 0]
    if rep.size:
        live = rows.live[rep]
        kind = np.where(~live, 2, np.where(rows.uid[rep] > st.txn_uid, 0, 1))
        order = np.lexsort((rows.ordinal[rep], kind, rows.owner[rep]))
        rep, kind = rep[order], kind[order]
        grp = np.stack([rows.owner[rep], kind], axis=1)
        starts = np.flatnonzero(np.r_[True, (grp[1:] != grp[:-1]).any(axis=1)])
        for lo, hi in zip(starts.tolist(), starts[1:].tolist() + [rep.size]):
            namespace, name = st.deployment_names[int(rows.owner[rep[lo]])]
            replicas.append([("ADDED", "MODIFIED", "DELETED")[int(kind[lo])], "Pod", namespace,
                             name, runs(rows.ordinal[rep[lo:hi]])])
    return {"rev": rev, "objects": objects, "replicas": replicas}, puts, deletes, added, removed


def runs(values: np.ndarray) -> list[list[int]]:
    """Sorted integers as ``[first, count]`` runs of consecutive values."""
    if values.size == 0:
        return []
    starts = np.flatnonzero(np.r_[True, np.diff(values) != 1])
    counts = np.diff(np.r_[starts, values.size])
    return np.stack([values[starts], counts], axis=1).tolist()


def _exists(st: Store, key) -> bool:
    kind, namespace, name = key
    if kind == "Namespace":
        return name in st.namespaces
    if kind == "ResourceQuota":
        return (namespace, name) in st.quotas
    if kind == "Host":
        return name in st.host_names
    if kind == "Deployment":
        return (namespace, name) in st.deployments
    if kind == "Terminating":
        return True
    return key in st.singles


def _deployment_rows(st: Store, keys) -> dict[int, np.ndarray]:
    """Live rows of the Deployments ``keys``, per Deployment id, in row order (one pass)."""
    ids = [st.deployments[(ns, name)].id for _, ns, name in keys if (ns, name) in st.deployments]
    if not ids:
        return {}
    rows = st.rows
    sel = np.flatnonzero(rows.view("live") & np.isin(rows.view("owner"), ids))
    owner = rows.owner[sel]
    order = np.argsort(owner, kind="stable")
    sel, owner = sel[order], owner[order]
    bounds = np.searchsorted(owner, ids)
    ends = np.searchsorted(owner, ids, side="right")
    return {i: sel[lo:hi] for i, lo, hi in zip(ids, bounds.tolist(), ends.tolist())}


def _terminating_value(st: Store, compress: bool) -> bytes | None:
    rows = st.rows
    idx = np.flatnonzero(~rows.view("live") & (rows.view("host") >= 0))
    if idx.size == 0:
        return None
    owners = {str(o): list(st.deployment_names[o]) for o in np.unique(rows.owner[idx]).tolist()
              if o >= 0}
    singles = {str(u): list(st.single_names[u]) for u in rows.uid[idx[rows.owner[idx] < 0]].tolist()}
    return _rows_value(st, idx, {"deployments": owners, "singles": singles}, compress)


def _object_value(st: Store, key, dep_rows, compress: bool) -> bytes:
    kind, namespace, name = key
    if kind == "Namespace":
        r = st.namespaces[name]
        return pack({"id": r.id, "numa": r.numa, "meta": _meta(r.meta), "ops_quota": r.ops_quota,
                     "manifest": r.manifest, "over": r.over})
    if kind == "ResourceQuota":
        r = st.quotas[(namespace, name)]
        return pack({"limits": r.limits, "meta": _meta(r.meta), "manifest": r.manifest})
    if kind == "Host":
        r = st.host_names[name]
        h = st.hosts
        return pack({"meta": _meta(r.meta), "cpu": h.node_cpu[r.row].tolist(),
                     "memory": h.node_mem[r.row].tolist(), "distance": h.distance[r.row].tolist(),
                     "custom_distance": bool(h.custom_distance[r.row]),
                     "state": int(h.state[r.row])})
    if kind == "Deployment":
        d = st.deployments[(namespace, name)]
        return _rows_value(st, dep_rows[d.id], {
            "id": d.id, "spec": list(d.spec), "manifest": d.manifest, "meta": _meta(d.meta),
            "created": d.created, "next_ordinal": d.next_ordinal, "shortfall": d.shortfall},
            compress)
    s = st.singles[key]
    return _rows_value(st, np.array([st.rows.row_of(s.uid)]), {
        "spec": list(s.spec), "manifest": s.manifest, "created": s.created}, compress)


# -- loading -----------------------------------------------------------------------------------
def load(head_bytes: bytes, objects: dict[str, bytes], events: dict[str, bytes],
         event_limit: int) -> tuple[Store, set, dict, list]:
    """A Store from the values read at one revision; also the object keys it holds, the head
    and ``(revision, last event sequence)`` of every event value."""
    head = read_head(head_bytes)
    st = Store(width=max(int(head["width"]), 1), event_limit=event_limit)
    st.rv, st.uid, st.round = head["rev"], head["uid"], head["round"]
    st.event_seq, st.next_deployment = head["event_seq"], head["next_deployment"]
    st.namespace_names = list(head["namespaces"])
    if head["evicted"]:
        st.evicted_uids.append(np.asarray(head["evicted"], dtype=np.int64))
    keys: set[tuple] = set()
    blocks = []          # (header, columns) of row blocks
    hosts = []
    for key, value in objects.items():
        okey = parse_object_key(key)
        keys.add(okey)
        kind, namespace, name = okey
        header, columns = unpack(value, key)
        if kind == "Namespace":
            st.namespaces[name] = NamespaceRecord(name, header["id"], header["numa"],
                                                  _unmeta(header["meta"]),
                                                  ops_quota=header["ops_quota"],
                                                  manifest=header["manifest"], over=header["over"])
        elif kind == "ResourceQuota":
            st.quotas[(namespace, name)] = QuotaRecord(namespace, name, header["limits"],
                                                       _unmeta(header["meta"]), header["manifest"])
        elif kind == "Host":
            hosts.append((header["meta"]["created"], name, header))
        elif kind == "Deployment":
            d = DeploymentRecord(namespace, name, header["id"], mf.WorkloadSpec(*header["spec"]),
                                 header["manifest"], _unmeta(header["meta"]),
                                 created=header["created"], next_ordinal=header["next_ordinal"],
                                 shortfall=header["shortfall"])
            st.deployments[(namespace, name)] = d
            st.deployment_names[d.id] = (namespace, name)
            if d.created < d.spec.replicas:
                st.short.add(d.id)
            blocks.append((header, columns))
        elif kind == "Terminating":
            for dep_id, pair in header["deployments"].items():
                st.deployment_names.setdefault(int(dep_id), tuple(pair))
            for uid, triple in header["singles"].items():
                st.single_names[int(uid)] = tuple(triple)
            blocks.append((header, columns))
        else:
            spec = mf.WorkloadSpec(*header["spec"])
            uid = int(columns["uid"][0])
            st.singles[okey] = SingleRecord(kind, namespace, name, uid, spec, header["manifest"],
                                            header["created"])
            st.single_names[uid] = okey
            blocks.append((header, columns))
    # hosts, in the order they were added
    width = st.width
    row_of_host = {}
    for _, name, h in sorted(hosts, key=lambda t: t[0]):
        cpu = np.zeros(width, np.int64)
        mem = np.zeros(width, np.int64)
        cpu[:len(h["cpu"])], mem[:len(h["memory"])] = h["cpu"], h["memory"]
        dist = default_distance(width)
        d = np.asarray(h["distance"], dtype=np.int64)
        dist[: d.shape[0], : d.shape[1]] = d
        rows = st.hosts.extend(1, node_cpu=cpu, node_mem=mem, free_cpu=cpu, free_mem=mem,
                               state=h["state"], custom_distance=h["custom_distance"])
        st.hosts.distance.append(dist)
        st.hosts.names.append(name)
        st.host_names[name] = HostRecord(name, rows.start, _unmeta(h["meta"]))
        row_of_host[name] = rows.start
    # workload rows, in creation (uid) order
    if blocks:
        parts = {name: [] for name in ROW_COLUMNS}
        for header, columns in blocks:
            lookup = np.array([row_of_host[n] for n in header["hosts"]] + [-1], dtype=np.int32)
            pins = np.array([st.pin_id(n) for n in header["pins"]] + [-1], dtype=np.int32)
            for name in ROW_COLUMNS:
                col = columns[name]
                if name == "host":
                    col = lookup[col]   # -1 indexes the trailing -1
                elif name == "pin":
                    col = pins[col]
                elif col.ndim == 2 and col.shape[1] < width:
                    col = np.pad(col, ((0, 0), (0, width - col.shape[1])))
                parts[name].append(col)
        cols = {name: np.concatenate(parts[name]) for name in ROW_COLUMNS}
        order = np.argsort(cols["uid"], kind="stable")
        st.rows.extend(order.size, **{name: col[order] for name, col in cols.items()})
    rows = st.rows
    bound = np.flatnonzero(rows.view("host") >= 0)
    np.subtract.at(st.hosts.free_cpu, rows.host[bound], rows.cpu_by[bound])
    np.subtract.at(st.hosts.free_mem, rows.host[bound], rows.mem_by[bound])
    live = rows.view("live")
    for ns_id, name in enumerate(st.namespace_names):
        if name in st.namespaces:
            sel = live & (rows.view("ns") == ns_id)
            st.usage[name] = [sum(rows.view("cpu")[sel].tolist()),
                              sum(rows.view("mem")[sel].tolist()), int(sel.sum())]
    # events, oldest first
    event_keys = []
    for key in sorted(events):
        batch, _ = unpack(events[key], key)
        st.events.extend(Event(*e) for e in batch["events"])
        event_keys.append((rev_of(key), batch["events"][-1][0]))
    return st, keys, head, event_keys


def events_value(st: Store) -> bytes | None:
    """The events the open transaction logged."""
    n = min(st.txn_events, len(st.events))
    if n == 0:
        return None
    batch = [list(e) for e in list(st.events)[len(st.events) - n:]]
    return pack({"events": batch})


__all__ = ["HEAD", "LEADER", "LOG", "EVENTS", "OBJECTS", "changes", "load", "pack", "unpack",
           "head_value", "read_head", "log_key", "events_key", "object_key", "events_value",
           "CorruptStore"]
