"""Durable key-value stores under the controller, chosen by URL.

- ``memory://``: no store at all; the controller's state lives in the process (the default of
  the library, and the fastest);
- ``sqlite:///path/state.db``: one SQLite file (embedded; several processes may share it);
- ``etcd://host:port``: an etcd v3 server, spoken to through its JSON gateway (``/v3/...``) with
  the standard library's HTTP client.

The interface is small and etcd-shaped (``KV``): consistent reads of key ranges, and one atomic
``commit`` of puts and deletes guarded by comparisons of whole values (compare-and-swap). The
controller keeps Kubernetes' contract on top of it (see ``numasched.control.persist``). Leader
election is a lease: ``elect`` / ``renew`` / ``resign``; the token ``elect`` returns is the
value of the leader key, and a leader fences its writes by comparing that key with its token
in the same commit, so a deposed leader's late write is refused.
"""
from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import sqlite3
import threading
import time

from .persist import LEADER

LEADER_EXPIRES = LEADER + "-expires"
SCHEMES = ("memory", "sqlite", "etcd")


class StoreUnavailable(RuntimeError):
    """The store cannot be reached or refused a request."""


class KV:
    """The store interface. Keys are ``str``, values ``bytes``."""

    url: str
    compress_rows = True     # compress large values (a remote store); a local one writes them

    def read(self, prefixes: list[str]) -> list[dict[str, bytes]]:
        """Every key under each prefix, all read at one revision."""
        raise NotImplementedError

    def get(self, key: str) -> bytes | None:
        raise NotImplementedError

    def scan(self, start: str, end: str, limit: int = 0) -> list[tuple[str, bytes]]:
        """Keys in ``[start, end)`` in key order (at most ``limit``; 0 = all)."""
        raise NotImplementedError

    def keys(self, prefix: str) -> list[str]:
        raise NotImplementedError

    def commit(self, compares: list[tuple[str, bytes | None]], puts: dict[str, bytes],
               deletes: list[str]) -> bool:
        """Apply ``puts`` and ``deletes`` atomically and durably if every ``(key, value)`` of
        ``compares`` holds (``None``: the key is absent); False (and nothing written) if not."""
        raise NotImplementedError

    def elect(self, identity: str, ttl: float) -> bytes | None:
        """Become the leader if no one holds a live lease: the token, or None."""
        raise NotImplementedError

    def renew(self, token: bytes, ttl: float) -> bool:
        """Extend the lease; False when it was lost."""
        raise NotImplementedError

    def resign(self, token: bytes) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


def prefix_end(prefix: str) -> str:
    """The first key after every key starting with ``prefix`` (etcd's range_end)."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def parse_url(url) -> tuple[str, str]:
    """``(scheme, rest)`` of a store URL, or a ValueError naming the choices."""
    if not isinstance(url, str) or "://" not in url:
        raise ValueError(f"store: expected a URL such as memory://, sqlite:///path/state.db or "
                         f"etcd://127.0.0.1:2379, got {url!r}")
    scheme, rest = url.split("://", 1)
    if scheme not in SCHEMES:
        raise ValueError(f"store: unknown scheme {scheme!r} in {url!r}; known: "
                         + ", ".join(f"{s}://" for s in SCHEMES))
    return scheme, rest


def open_store(url: str) -> KV | None:
    """The store of ``url`` (None for ``memory://``)."""
    scheme, rest = parse_url(url)
    if scheme == "memory":
        if rest:
            raise ValueError(f"store: memory:// takes no path, got {url!r}")
        return None
    if scheme == "sqlite":
        if not rest.startswith("/") or rest == "/":
            raise ValueError(f"store: expected sqlite:///path/to/file.db (an absolute path after "
                             f"three slashes), got {url!r}")
        return SQLiteKV(rest, url)
    host, _, port = rest.rstrip("/").partition(":")
    if not host or not port.isdigit():
        raise ValueError(f"store: expected etcd://host:port, got {url!r}")
    return EtcdKV(host, int(port), url)


# ----------------------------------------------------------------------------------------------
# SQLite
# ----------------------------------------------------------------------------------------------
class SQLiteKV(KV):
    """One table ``kv(name, value)`` in a SQLite file in WAL mode with ``synchronous=FULL``: a
    commit that returned is on disk. Writers serialise on SQLite's write lock (``BEGIN
    IMMEDIATE``), where the comparisons are checked; readers read one snapshot."""

    compress_rows = False

    def __init__(self, path: str, url: str):
        self.url, self.path = url, path
        directory = os.path.dirname(path) or "."
        if not os.path.isdir(directory):
            raise ValueError(f"store: directory {directory!r} of {url!r} does not exist")
        # Switching a new file to WAL takes an exclusive lock, and SQLite answers "database is
        # locked" at once, without its busy timeout, to a second process doing the same: retry.
        deadline = time.monotonic() + 60
        while True:
            db = None
            try:
                db = sqlite3.connect(path, timeout=60, isolation_level=None,
                                     check_same_thread=False)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=FULL")
                db.execute("CREATE TABLE IF NOT EXISTS kv (name TEXT PRIMARY KEY, "
                           "value BLOB NOT NULL) WITHOUT ROWID")
                break
            except sqlite3.DatabaseError as exc:
                if db is not None:
                    db.close()
                if "locked" in str(exc) and time.monotonic() < deadline:
                    time.sleep(0.02)
                    continue
                raise ValueError(f"store: {path}: not a numasched SQLite store ({exc})") from None
        self._db = db
        self._lock = threading.Lock()   # one connection, shared by the threads of a process

    def _query(self, sql, args=()):
        return self._db.execute(sql, args).fetchall()

    def read(self, prefixes):
        with self._lock:
            self._db.execute("BEGIN")
            try:
                return [dict(self._query("SELECT name, value FROM kv WHERE name >= ? AND name < ?",
                                         (p, prefix_end(p)))) for p in prefixes]
            finally:
                self._db.execute("COMMIT")

    def get(self, key):
        with self._lock:
            row = self._query("SELECT value FROM kv WHERE name = ?", (key,))
        return row[0][0] if row else None

    def scan(self, start, end, limit=0):
        with self._lock:
            sql = "SELECT name, value FROM kv WHERE name >= ? AND name < ? ORDER BY name"
            return self._query(sql + (f" LIMIT {int(limit)}" if limit else ""), (start, end))

    def keys(self, prefix):
        with self._lock:
            return [r[0] for r in self._query("SELECT name FROM kv WHERE name >= ? AND name < ? "
                                              "ORDER BY name", (prefix, prefix_end(prefix)))]

    @contextlib.contextmanager
    def _writing(self):
        """A write transaction (SQLite's write lock held): committed if the block returns
        True, rolled back if it returns anything else or raises."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            done = [False]
            try:
                yield done
            finally:
                if self._db.in_transaction:
                    self._db.execute("COMMIT" if done[0] else "ROLLBACK")

    def commit(self, compares, puts, deletes):
        with self._writing() as done:
            for key, value in compares:
                row = self._query("SELECT value FROM kv WHERE name = ?", (key,))
                if (row[0][0] if row else None) != value:
                    return False
            self._db.executemany("INSERT OR REPLACE INTO kv (name, value) VALUES (?, ?)",
                                 puts.items())
            self._db.executemany("DELETE FROM kv WHERE name = ?", [(k,) for k in deletes])
            done[0] = True
        return True

    # A lease in SQLite: the leader key holds "identity term" (stable for a term, so writes can
    # be fenced on it) and a second key its expiry time, renewed by the leader.
    def elect(self, identity, ttl):
        with self._writing() as done:
            rows = dict(self._query("SELECT name, value FROM kv WHERE name IN (?, ?)",
                                    (LEADER, LEADER_EXPIRES)))
            holder = rows.get(LEADER)
            if holder is not None and float(rows.get(LEADER_EXPIRES, b"0")) > time.time():
                return None
            term = int(holder.split(b" ")[-1]) + 1 if holder else 1
            token = f"{identity} {term}".encode()
            self._db.executemany("INSERT OR REPLACE INTO kv (name, value) VALUES (?, ?)",
                                 [(LEADER, token),
                                  (LEADER_EXPIRES, repr(time.time() + ttl).encode())])
            done[0] = True
        return token

    def renew(self, token, ttl):
        return self.commit([(LEADER, token)], {LEADER_EXPIRES: repr(time.time() + ttl).encode()}, [])

    def resign(self, token):
        self.commit([(LEADER, token)], {}, [LEADER, LEADER_EXPIRES])

    def close(self):
        with self._lock:
            self._db.close()


# ----------------------------------------------------------------------------------------------
# etcd v3 (JSON gateway)
# ----------------------------------------------------------------------------------------------
def _b64(data) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


class EtcdKV(KV):
    """etcd v3 through its JSON gateway. Values above etcd's request limit (1.5 MiB by default)
    or transactions above its operation limit (128) are refused by the server: run etcd with
    ``--max-request-bytes`` and ``--max-txn-ops`` sized for the largest reconcile round."""

    COMPACT_EVERY = 256

    def __init__(self, host: str, port: int, url: str):
        self.url, self.host, self.port = url, host, port
        self._local = threading.local()
        self._leases: dict[bytes, int] = {}
        self._history: list[int] = []    # revisions of this process's recent commits
        self.call("/v3/maintenance/status", {})   # fail now, clearly, if nothing answers

    def _conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        return conn

    def call(self, path: str, body: dict) -> dict:
        data = json.dumps(body).encode()
        for attempt in (0, 1):   # a kept-alive connection the server closed is retried once
            conn = self._conn()
            try:
                conn.request("POST", path, data, {"Content-Type": "application/json"})
                response = conn.getresponse()
                payload = response.read()
                break
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                self._local.conn = None
                if attempt:
                    raise StoreUnavailable(f"store {self.url}: {exc}") from None
        if response.status != 200:
            try:
                message = json.loads(payload).get("message") or payload.decode()
            except ValueError:
                message = payload[:200].decode(errors="replace")
            raise StoreUnavailable(f"store {self.url}: {path}: {message}")
        return json.loads(payload)

    def _range(self, start: str, end: str, *, revision: int = 0, keys_only=False, limit=0):
        body = {"key": _b64(start), "range_end": _b64(end), "sort_order": "ASCEND",
                "sort_target": "KEY"}
        if revision:
            body["revision"] = revision
        if keys_only:
            body["keys_only"] = True
        if limit:
            body["limit"] = limit
        return self.call("/v3/kv/range", body)

    def read(self, prefixes):
        out, revision = [], 0
        for p in prefixes:
            result = self._range(p, prefix_end(p), revision=revision)
            revision = revision or int(result["header"]["revision"])
            out.append({_unb64(kv["key"]).decode(): _unb64(kv.get("value", ""))
                        for kv in result.get("kvs", [])})
        return out

    def get(self, key):
        result = self.call("/v3/kv/range", {"key": _b64(key)})
        kvs = result.get("kvs", [])
        return _unb64(kvs[0].get("value", "")) if kvs else None

    def scan(self, start, end, limit=0):
        result = self._range(start, end, limit=limit)
        return [(_unb64(kv["key"]).decode(), _unb64(kv.get("value", "")))
                for kv in result.get("kvs", [])]

    def keys(self, prefix):
        result = self._range(prefix, prefix_end(prefix), keys_only=True)
        return [_unb64(kv["key"]).decode() for kv in result.get("kvs", [])]

    @staticmethod
    def _compare(key: str, value: bytes | None) -> dict:
        if value is None:
            return {"key": _b64(key), "target": "CREATE", "result": "EQUAL", "create_revision": 0}
        return {"key": _b64(key), "target": "VALUE", "result": "EQUAL", "value": _b64(value)}

    def commit(self, compares, puts, deletes, lease: dict[str, int] | None = None):
        success = [{"request_put": {"key": _b64(k), "value": _b64(v),
                                    **({"lease": lease[k]} if lease and k in lease else {})}}
                   for k, v in puts.items()]
        success += [{"request_delete_range": {"key": _b64(k)}} for k in deletes]
        result = self.call("/v3/kv/txn", {"compare": [self._compare(k, v) for k, v in compares],
                                          "success": success})
        succeeded = bool(result.get("succeeded"))
        if succeeded:
            self._history.append(int(result["header"]["revision"]))
            if len(self._history) > self.COMPACT_EVERY:
                # etcd keeps every old value until compacted: drop what is older than this
                # process's last COMPACT_EVERY commits (readers never need older revisions)
                self.compact(self._history[0])
                self._history.clear()
        return succeeded

    def elect(self, identity, ttl):
        lease = int(self.call("/v3/lease/grant", {"TTL": max(1, round(ttl))})["ID"])
        token = f"{identity} {lease:x}".encode()
        if self.commit([(LEADER, None)], {LEADER: token}, [], lease={LEADER: lease}):
            self._leases[token] = lease
            return token
        self.call("/v3/lease/revoke", {"ID": lease})
        return None

    def renew(self, token, ttl):
        lease = self._leases.get(token)
        if lease is None:
            return False
        result = self.call("/v3/lease/keepalive", {"ID": lease}).get("result", {})
        if int(result.get("TTL", 0)) <= 0 or self.get(LEADER) != token:
            self._leases.pop(token, None)
            return False
        return True

    def resign(self, token):
        lease = self._leases.pop(token, None)
        if lease is not None:
            try:
                self.call("/v3/lease/revoke", {"ID": lease})
            except StoreUnavailable:
                pass

    def compact(self, revision: int) -> None:
        """Drop etcd's own history before ``revision`` (etcd keeps every old value until then)."""
        try:
            self.call("/v3/kv/compaction", {"revision": revision})
        except StoreUnavailable as exc:
            if "compacted" not in str(exc):
                raise

    def close(self):
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
