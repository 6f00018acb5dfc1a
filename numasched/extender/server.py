"""A kube-scheduler extender: HTTP ``filter`` and ``prioritize`` verbs backed by numasched.

kube-scheduler calls an extender (``KubeSchedulerConfiguration.extenders``: ``urlPrefix``,
``filterVerb``, ``prioritizeVerb``, ``weight``) with ``ExtenderArgs``::

    {"Pod": {...a v1.Pod...}, "Nodes": {"items": [{...a v1.Node...}, ...]}}   # or
    {"Pod": {...}, "NodeNames": ["node-a", "node-b"]}                       # nodeCacheCapable

and expects, for ``filter``, an ``ExtenderFilterResult``::

    {"Nodes": {"items": [...passing Node objects...]} | "NodeNames": [...passing names...],
     "FailedNodes": {"node-c": "reason"}, "Error": ""}

and, for ``prioritize``, a ``HostPriorityList`` ``[{"Host": "node-a", "Score": 0..10}]``.

The topology (hosts, NUMA nodes, their free capacity) comes from a directory of
NodeResourceTopology / Node objects or an inventory, read at start and again whenever a file in
it changes (the resource-topology exporter rewrites ``available``); the server never opens a
path named in a request. The pod's request is read with ``numasched.control.manifests`` (the
kubelet's effective request; the ``numasched.io/numa`` annotation selects its NUMA mode).

- ``filter``: a node passes exactly where ``place()`` would put the pod if that node were the
  only one allowed (``Requests(required_host=h)``, the definition of
  ``numasched.filter_hosts``); a failed node's reason is the pending reason ``place()`` gives.
  Names the topology does not know fail with their own reason.
- ``prioritize``: ``numasched.score_hosts`` over the named nodes (the others are made
  unschedulable for the call, so scores are relative to the candidates), mapped from 0..100 onto
  0..10 (``MAX_EXTENDER_SCORE``); infeasible or unknown nodes score 0.

Request bodies are limited to ``MAX_BODY_BYTES`` (413 above), must be JSON objects (400
otherwise) and are answered with ``{"Error": "..."}`` and status 400 when the pod is invalid.
"""
from __future__ import annotations

import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from .. import codes
from ..api import Requests, place
from ..control import manifests
from ..embedding import MAX_EXTENDER_SCORE, MAX_SCORE, score_hosts
from ..io.report import default_numa
from ..io.topology import Topology, read_topology, topology_files

MAX_BODY_BYTES = 1 << 20
UNKNOWN_NODE = "numasched: node not in the topology"
log = logging.getLogger("numasched.extender")


class RequestError(ValueError):
    """A request the extender refuses (answered with status 400 and ``{"Error": ...}``)."""


class Extender:
    """The extender's verbs as plain functions of JSON-shaped dicts (no HTTP here).

    ``topology_path`` (optional) is re-read when its files change; ``topology`` is the state
    the verbs answer from.
    """

    def __init__(self, topology: Topology, *, policy: str = "best-fit", numa: str | None = None,
                 topology_path=None):
        from .. import policies

        policies.get(policy)   # refuse an unknown policy now, not at the first request
        if numa is not None:
            codes.resolve(codes.NUMA_MODES, numa, "numa mode")
        self.policy = policy
        self._numa_option = numa
        self._path = topology_path
        self._lock = threading.Lock()
        self._set(topology, self._stamp() if topology_path is not None else None)

    @classmethod
    def from_path(cls, path, **kwargs) -> "Extender":
        return cls(read_topology(path), topology_path=path, **kwargs)

    def _set(self, topology: Topology, stamp) -> None:
        self.topology = topology
        self.numa, self.numa_from = default_numa(topology, self._numa_option)
        self._stamp_seen = stamp

    def _stamp(self):
        files = topology_files(self._path)
        return tuple((str(f), f.stat().st_mtime_ns, f.stat().st_size) for f in files)

    def current(self) -> Topology:
        """The topology, re-read first if a file of ``topology_path`` changed; a file that no
        longer reads keeps the last good topology (and is logged)."""
        if self._path is None:
            return self.topology
        with self._lock:
            try:
                stamp = self._stamp()
                if stamp != self._stamp_seen:
                    self._set(read_topology(self._path), stamp)
                    log.info("topology re-read from %s: %d hosts", self._path, len(self.topology))
            except (ValueError, OSError) as exc:
                log.warning("topology in %s not re-read, keeping the last good one: %s",
                            self._path, exc)
            return self.topology

    def warm_up(self) -> None:
        """Score once, so the first real request does not pay the scoring kernel's start-up
        (Numba loads it from its cache, or compiles it, on first use)."""
        topo = self.current()
        score_hosts(topo.cluster, (1, 1), policy=self.policy, numa=self.numa)

    # ---- request parsing ----------------------------------------------------------------
    def _pod(self, args) -> Requests:
        if not isinstance(args, dict):
            raise RequestError(f"expected ExtenderArgs (a JSON object), got {type(args).__name__}")
        pod = args.get("Pod")
        if not isinstance(pod, dict):
            raise RequestError("Pod: required (a v1.Pod object)")
        pod = dict(pod)
        if not pod.get("kind"):   # Go omits an empty TypeMeta: a v1.Pod arrives without kind
            pod["kind"] = "Pod"
        if pod["kind"] != "Pod":
            raise RequestError(f"Pod.kind: expected Pod, got {pod.get('kind')!r}")
        try:
            spec = manifests.workload_spec(pod)
        except ValueError as exc:
            raise RequestError(f"Pod: {exc}") from None
        return Requests(cpu=[max(spec.cpu, 1)], mem=[max(spec.mem, 1)], numa=[spec.numa],
                        vnuma=[spec.vnuma], priority=[spec.priority])

    @staticmethod
    def _nodes(args: dict) -> tuple[list[str], list | None]:
        """(names, Node objects or None when the call sent NodeNames)."""
        nodes = args.get("Nodes")
        if nodes is not None:
            items = nodes.get("items") if isinstance(nodes, dict) else None
            if items is None:
                items = []
            if not isinstance(items, list):
                raise RequestError("Nodes.items: expected a list of v1.Node objects")
            names = []
            for i, node in enumerate(items):
                meta = node.get("metadata") if isinstance(node, dict) else None
                name = meta.get("name") if isinstance(meta, dict) else None
                if not isinstance(name, str):
                    raise RequestError(f"Nodes.items[{i}].metadata.name: required")
                names.append(name)
            return names, items
        names = args.get("NodeNames")
        if names is None:
            raise RequestError("one of Nodes or NodeNames is required")
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise RequestError("NodeNames: expected a list of node names")
        return list(names), None

    # ---- verbs --------------------------------------------------------------------------
    def filter(self, args) -> dict:
        """ExtenderArgs -> ExtenderFilterResult."""
        request = self._pod(args)
        names, items = self._nodes(args)
        topo = self.current()
        known = [n for n in names if n in topo]
        failed = {n: UNKNOWN_NODE for n in names if n not in topo}
        passing = set()
        if known:
            # one copy of the pod per named host, pinned to it: the copies never compete, so
            # each host is tested against the same free state
            hosts = np.array(list(dict.fromkeys(topo.index(n) for n in known)), dtype=np.int32)
            k = len(hosts)
            pinned = Requests(cpu=np.repeat(request.cpu, k), mem=np.repeat(request.mem, k),
                              numa=np.repeat(request.numa, k), vnuma=np.repeat(request.vnuma, k),
                              required_host=hosts)
            result = place(topo.cluster, pinned, policy=self.policy, numa=self.numa,
                           order="given")
            for i, h in enumerate(pinned.required_host):
                name = topo.names[int(h)]
                reason = int(result.reason[i])
                if reason == codes.PLACED:
                    passing.add(name)
                else:
                    failed[name] = (f"numasched: {codes.REASONS[reason]}: "
                                    f"{_host_reason(reason)}")
        out = {"FailedNodes": {n: failed[n] for n in names if n in failed}, "Error": ""}
        if items is None:
            out["NodeNames"] = [n for n in names if n in passing]
        else:
            out["Nodes"] = {"items": [node for node, n in zip(items, names) if n in passing]}
        return out

    def prioritize(self, args) -> list[dict]:
        """ExtenderArgs -> HostPriorityList (scores 0..MAX_EXTENDER_SCORE)."""
        request = self._pod(args)
        names, _ = self._nodes(args)
        topo = self.current()
        c = topo.cluster
        candidates = np.zeros(c.hosts, dtype=bool)
        for n in names:
            if n in topo:
                candidates[topo.index(n)] = True
        scores = np.full(c.hosts, -1, dtype=np.int64)
        if candidates.any():
            view = c.with_free(c.free_cpu, c.free_mem,
                               schedulable=np.asarray(c.schedulable, dtype=bool) & candidates)
            scores = score_hosts(view, request, policy=self.policy, numa=self.numa).score
        out = []
        for n in names:
            s = int(scores[topo.index(n)]) if n in topo else -1
            out.append({"Host": n, "Score": max(s, 0) * MAX_EXTENDER_SCORE // MAX_SCORE})
        return out


def _host_reason(code: int) -> str:
    """Pending reasons are worded for a whole cluster; with one host they say this node."""
    return {
        codes.REASON_TOO_LARGE: "larger than this node could ever hold under its NUMA mode",
        codes.REASON_CONSTRAINT: "this node is unschedulable or could never hold the pod "
                                 "under its NUMA mode",
        codes.REASON_NO_CPU: "not enough free CPU on this node",
        codes.REASON_NO_MEMORY: "not enough free memory on this node",
        codes.REASON_NO_NUMA_FIT: "no NUMA node set the pod's mode allows has room in both "
                                  "CPU and memory",
    }.get(code, codes.REASON_MESSAGES.get(code, "not placeable"))


# --------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    server_version = "numasched-extender"
    protocol_version = "HTTP/1.1"
    extender: Extender   # set on the subclass made by make_server

    def log_message(self, fmt, *args) -> None:   # route access logs to logging, not stderr
        log.debug("%s " + fmt, self.address_string(), *args)

    def _send(self, status: int, payload) -> None:
        if status >= 400:
            log.info("%s %s -> %d: %s", self.command, self.path, status,
                     payload.get("Error", "") if isinstance(payload, dict) else "")
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.rstrip("/").rsplit("/", 1)[-1] == "healthz":
            self._send(HTTPStatus.OK, {"status": "ok", "hosts": len(self.extender.topology)})
        else:
            self._send(HTTPStatus.NOT_FOUND, {"Error": "not found; POST .../filter or .../prioritize"})

    def do_POST(self) -> None:
        verb = self.path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        if verb not in ("filter", "prioritize"):
            self.close_connection = True
            self._send(HTTPStatus.NOT_FOUND, {"Error": f"unknown verb {verb!r}; expected filter or prioritize"})
            return
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") or length is None:
            self.close_connection = True
            self._send(HTTPStatus.LENGTH_REQUIRED, {"Error": "a Content-Length header is required"})
            return
        try:
            size = int(length)
        except ValueError:
            size = -1
        if size < 0 or size > MAX_BODY_BYTES:
            self.close_connection = True   # the body is not read, so the connection is unusable
            self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE if size > MAX_BODY_BYTES else HTTPStatus.BAD_REQUEST,
                       {"Error": f"request body of {length} bytes; the limit is {MAX_BODY_BYTES}"})
            return
        try:
            args = json.loads(self.rfile.read(size) or b"null")
            result = getattr(self.extender, verb)(args)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            self._send(HTTPStatus.BAD_REQUEST, {"Error": f"the body is not JSON: {exc}"})
            return
        except (RequestError, ValueError) as exc:
            self._send(HTTPStatus.BAD_REQUEST, {"Error": str(exc)})
            return
        self._send(HTTPStatus.OK, result)


def make_server(extender: Extender, host: str = "127.0.0.1", port: int = 8888) -> ThreadingHTTPServer:
    """A ``ThreadingHTTPServer`` bound to ``host:port`` (port 0 = any free port) serving
    ``extender``; call ``serve_forever()`` on it (``server_address`` has the bound port)."""
    handler = type("ExtenderHandler", (_Handler,), {"extender": extender})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


__all__ = ["Extender", "make_server", "RequestError", "MAX_BODY_BYTES", "UNKNOWN_NODE"]
