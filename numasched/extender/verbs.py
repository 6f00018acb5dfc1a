"""The extender's verbs: ``filter``, ``prioritize`` and ``bind`` as functions of JSON-shaped
dicts, answered from the topology source minus the assume cache.

kube-scheduler calls an extender (``KubeSchedulerConfiguration.extenders``) with
``ExtenderArgs``::

    {"Pod": {...a v1.Pod...}, "Nodes": {"items": [{...a v1.Node...}, ...]}}   # or
    {"Pod": {...}, "NodeNames": ["node-a", "node-b"]}                       # nodeCacheCapable

- ``filter`` answers an ``ExtenderFilterResult`` (``NodeNames`` or ``Nodes``, ``FailedNodes``,
  ``Error``): a node passes exactly where ``place()`` would put the pod if that node were the
  only one allowed (the definition of ``numasched.filter_hosts``); a failed node's reason is
  the pending reason ``place()`` gives for that node alone; unknown names fail with
  ``UNKNOWN_NODE``.
- ``prioritize`` answers a ``HostPriorityList`` (``[{"Host", "Score"}]``, scores
  ``0..MAX_EXTENDER_SCORE``): ``numasched.score_hosts`` normalised over the named nodes only;
  infeasible and unknown nodes score 0.
- ``bind`` takes ``ExtenderBindingArgs`` (``PodName``, ``PodNamespace``, ``PodUID``, ``Node``)
  and answers ``ExtenderBindingResult`` (``{"Error": ""}`` when bound). The pod must have been
  seen by ``filter`` or ``prioritize`` (its request is remembered by UID). Under one lock the
  extender places it on that node against the current free state; if it no longer fits (another
  bind took the room) the bind fails and kube-scheduler retries the pod, so two binds can never
  share the last room of a NUMA node. A bind that fits calls ``on_bind`` (the deployment's
  binder: ``numasched.extender.binder`` posts a ``Binding`` to the API server), records it
  (``bindings()``, ``GET /bindings``) and adds a reservation to the assume cache
  (``numasched.extender.cache``). A pod already bound is never moved: a bind of the same UID to
  another node fails, and a pod whose ``spec.nodeName`` is set passes only that node.

A pod's NUMA mode is its ``numasched.io/numa`` annotation; else the ``numa`` option; else, when
the hosts state a ``topologyManagerPolicy``, the kubelet's (``numasched.io.workloads.
kubelet_mode``: only Guaranteed whole-CPU pods are aligned, others get ``none``); else
``restricted``.

Scores are computed once per pod shape and free state and kept until the free state changes,
so ``filter`` then ``prioritize`` of one pod score once and the pods of one Deployment share one
score; the encoded answers to ``filter`` and ``prioritize`` of a shape against one NodeNames
list are kept the same way, so a Deployment's replicas after the first cost no encoding. Both
are bounded per free state (``MAX_SHAPES``, ``MAX_ANSWERS``). One scoring thread runs every
``numasched.score_batch`` call, batching concurrent requests into one call per free state
(measured under 32 concurrent clients: no more CPU per pod and a lower p99 than scoring on
each request thread, whose calls contend for the GIL between kernel calls), and a parallel
Numba kernel is only ever entered from that one thread, which every Numba threading layer
allows.
"""
from __future__ import annotations

import collections
import itertools
import json
import logging
import queue
import threading
import time
from concurrent.futures import Future

import numpy as np

from .. import _backend, codes
from ..api import Requests, place
from ..control import manifests
from ..embedding import MAX_EXTENDER_SCORE, MAX_SCORE, _normalise, score_batch
from ..io.report import default_numa
from ..io.topology import Topology, read_topology, topology_files
from ..io.workloads import kubelet_mode, kubelet_policy
from .cache import AssumeCache
from .server import short

MAX_BODY_BYTES = 1 << 20
MAX_JSON_DEPTH = 64
MAX_ERROR_CHARS = 240
MAX_SHAPES = 512     # pod shapes whose scores one free state keeps (about 45 kB each at 5,000 hosts)
MAX_ANSWERS = 64     # encoded filter/prioritize answers one free state keeps (shape x NodeNames)
UNKNOWN_NODE = "numasched: node not in the topology"
_UNKNOWN, _BOUND_ELSEWHERE = -2, -3     # filter outcomes besides PLACED and reason codes
VERBS = ("filter", "prioritize", "bind")
log = logging.getLogger("numasched.extender")


class RequestError(ValueError):
    """A request the extender refuses (answered with status 400 and ``{"Error": ...}``)."""


def decode(body: bytes):
    """JSON body -> value; ``RequestError`` when it is not JSON or nests deeper than
    ``MAX_JSON_DEPTH``."""
    try:
        value = json.loads(body)
    except RecursionError:
        raise RequestError(f"the body nests deeper than {MAX_JSON_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        where = f" at byte {exc.pos}" if isinstance(exc, json.JSONDecodeError) else ""
        raise RequestError(f"the body is not JSON{where}: it starts {short(body)}") from None
    # nesting needs a bracket per level: most bodies have too few brackets to be deep at all
    if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH:
        stack = [(value, 1)]
        while stack:
            item, depth = stack.pop()
            if depth > MAX_JSON_DEPTH:
                raise RequestError(f"the body nests deeper than {MAX_JSON_DEPTH} levels")
            children = item.values() if type(item) is dict else item
            stack.extend((c, depth + 1) for c in children if type(c) in (dict, list))
            # scalars are skipped: a long NodeNames list costs one pass, no recursion
    return value


_NAMES_KEY = b',"NodeNames":['


def split_node_names(body: bytes) -> tuple[bytes, bytes] | None:
    """``(body without NodeNames, the raw NodeNames list)`` when ``body`` ends the way Go
    encodes ``ExtenderArgs`` (``...,"NodeNames":["a","b"]}``), else None.

    kube-scheduler sends the same few thousand names pod after pod; comparing their raw bytes
    with the last lists seen is far cheaper than decoding them again. The split is exact: the
    key's quotes would be escaped inside any JSON string, so the last unescaped match is the
    object's own key, and a list holding ``]`` or an escape takes the general path.
    """
    body = body.rstrip(b" \t\r\n")
    at = body.rfind(_NAMES_KEY)
    if at < 0 or not body.endswith(b"]}"):
        return None
    raw = body[at + len(_NAMES_KEY):-2]
    if b"]" in raw or b"\\" in raw:
        return None
    return body[:at] + b"}", raw


class _Snapshot:
    """What the verbs answer from: the source topology, the free state after the reservations,
    and per-pod-shape scores of that free state (dropped with the snapshot)."""

    def __init__(self, topology: Topology, free_cpu, free_mem, version: int, numa: str):
        self.topology = topology
        self.numa = numa            # NUMA mode of pods that set none
        self.cluster = topology.cluster.with_free(free_cpu, free_mem)
        self.index = {n: h for h, n in enumerate(topology.names)}
        self.version = version
        self.scores: dict = {}      # shape -> (rank [H] int64, ok [H] bool)
        self.reasons: dict = {}     # shape -> int8 [H] pending reason code, 0 = not computed
        self.answers: dict = {}     # (verb, shape, _NameSet) -> encoded answer
        self._lock = threading.Lock()

    def keep(self, table: dict, key, value, most: int):
        """``table[key] = value``, dropping the oldest entries past ``most``; the value kept
        (a concurrent request may have stored the same key first: its value wins)."""
        with self._lock:
            value = table.setdefault(key, value)
            while len(table) > most:
                del table[next(iter(table))]
        return value


class _NameSet:
    """A NodeNames list resolved against one topology: row per name (-1 unknown) and each
    name as JSON, kept while kube-scheduler keeps sending the same list."""

    __slots__ = ("names", "idx", "known", "json", "json_array", "template", "slots", "topology")

    def __init__(self, names: tuple, index: dict):
        self.names = names
        self.idx = np.array([index.get(n, -1) for n in names], dtype=np.int64)
        self.known = self.idx >= 0
        self.json = [json.dumps(n) for n in names]   # ASCII: non-ASCII is escaped
        self.json_array = np.array(self.json + [None], dtype=object)[:-1]   # never a 2-D array
        # the HostPriorityList with a two-character slot per score ("Score":NN}); a response
        # is this template with the slots written, so no per-node string is built per request
        heads = ['{"Host":' + j + ',"Score":' for j in self.json]
        self.template = np.frombuffer(("[" + ",".join(h + "  }" for h in heads) + "]").encode(),
                                      dtype=np.uint8)
        lengths = np.array([len(h) + 4 for h in heads], dtype=np.int64)   # head, slot, "}", ","
        self.slots = 1 + np.concatenate(([0], np.cumsum(lengths)[:-1])) + lengths - 4


def _one_thread_kernels() -> None:
    """Run Numba kernels called from this thread on this thread alone.

    The scoring thread hands each result straight to a waiting request; a parallel region's
    worker threads would spin for a while after every call and take the cores the requests
    need (measured: 26 ms a call instead of 1 ms on two busy cores). Concurrent requests are
    batched into one call instead, which is where the parallelism pays.
    """
    try:
        import numba
        numba.set_num_threads(1)
    except (ImportError, ValueError):
        pass


class _ScoringThread:
    """Runs every ``score_batch`` call, batching what concurrent requests ask for."""

    def __init__(self, policy: str, backend: str = "numba", batch: int = 64):
        self.policy, self.backend, self.batch = policy, backend, batch
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="extender-scoring", daemon=True)
        self._thread.start()

    def scores(self, snap: _Snapshot, shape, request: Requests):
        hit = snap.scores.get(shape)
        if hit is not None:
            return hit
        if not self._thread.is_alive():
            raise RuntimeError("the extender was stopped")
        future: Future = Future()
        self._queue.put((snap, shape, request, future))
        return future.result()

    def stop(self) -> None:
        self._queue.put(None)

    def _run(self) -> None:
        if self.backend == "numba":
            _one_thread_kernels()
        while True:
            jobs = [self._queue.get()]
            if jobs[0] is None:
                return
            while len(jobs) < self.batch:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:             # stop after this batch
                    self._queue.put(None)
                    break
                jobs.append(job)
            by_snap: dict[int, list] = {}
            for job in jobs:
                by_snap.setdefault(id(job[0]), []).append(job)
            for group in by_snap.values():
                self._score(group)

    def _score(self, group) -> None:
        snap = group[0][0]
        found, todo = {}, {}        # shape -> (rank, ok) known; shape -> request to score
        for _, shape, request, _ in group:
            hit = snap.scores.get(shape)
            if hit is not None:
                found[shape] = hit
            else:
                todo.setdefault(shape, request)
        try:
            if todo:
                reqs = list(todo.values())
                batch = Requests(cpu=[int(r.cpu[0]) for r in reqs], mem=[int(r.mem[0]) for r in reqs],
                                 numa=[int(r.numa[0]) for r in reqs],
                                 vnuma=[bool(r.vnuma[0]) for r in reqs])
                result = score_batch(snap.cluster, batch, policy=self.policy, numa=snap.numa,
                                     backend=self.backend)
                for i, shape in enumerate(todo):
                    found[shape] = snap.keep(snap.scores, shape,
                                             (result.rank[i], result.score[i] >= 0), MAX_SHAPES)
            for _, shape, _, future in group:
                future.set_result(found[shape])
        except BaseException as exc:   # handed to the requests, which answer 500
            for *_, future in group:
                if not future.done():
                    future.set_exception(exc)


class Extender:
    """The verbs over a topology (re-read from ``topology_path`` by ``refresh()``).

    ``assume`` (default True) keeps the assume cache (reservations live ``assume_ttl`` seconds
    at most; ``state``, a file path, keeps them across restarts); ``assume=False`` answers from
    the source alone, as an extender without a cache does (it over-commits between topology
    updates). ``on_bind(binding: dict)`` is called for each bind once its reservation is held
    (so a crash in between over-reserves, never over-commits); an exception from it ends the
    reservation and fails the bind. ``backend`` is the scoring kernel (``score_batch``'s
    ``backend``: auto, cython, numba or reference); every backend gives the same answers.
    """

    def __init__(self, topology: Topology, *, policy: str = "best-fit", numa: str | None = None,
                 topology_path=None, assume: bool = True, assume_ttl: float = 60.0,
                 on_bind=None, state=None, clock=time.monotonic, backend: str = "auto"):
        from .. import policies

        policies.get(policy)   # refuse an unknown policy now, not at the first request
        self.backend = _backend.resolve(backend)
        if numa is not None:
            codes.resolve(codes.NUMA_MODES, numa, "numa mode")
        self.policy = policy
        self._numa_option = numa
        self._path = topology_path
        self.assume = bool(assume)
        self.cache = AssumeCache(assume_ttl, clock=clock, journal=state if assume else None)
        self.on_bind = on_bind
        self._lock = threading.RLock()         # topology, reservations, snapshot changes
        self._seen: collections.OrderedDict = collections.OrderedDict()   # uid -> pod
        self._bindings: collections.deque = collections.deque(maxlen=10_000)
        self._bound: dict[str, str] = {r.uid: r.node for r in self.cache.reservations()}
        self._version = 0
        self._name_sets: collections.OrderedDict = collections.OrderedDict()
        self._pods: collections.OrderedDict = collections.OrderedDict()   # raw args -> parsed
        self._kubelet = None          # (topologyManagerPolicy, scope) the hosts state
        self._stamp_seen = self._stamp() if topology_path is not None else None
        self._set_topology(topology)
        self._shapes: dict = {}       # (cpu, mem, numa, vnuma, priority) -> (Requests, shape)
        self._scoring = _ScoringThread(policy, self.backend)
        self._watch_stop = threading.Event()

    @classmethod
    def from_path(cls, path, **kwargs) -> "Extender":
        return cls(read_topology(path), topology_path=path, **kwargs)

    # ---- state ------------------------------------------------------------------------------
    def _set_topology(self, topology: Topology) -> None:
        self.topology = topology
        self._name_sets = collections.OrderedDict()
        self._pods = collections.OrderedDict()       # a pod's mode may follow the topology
        self.numa, self.numa_from = default_numa(topology, self._numa_option)
        # the kubelet's semantics, when the hosts state their Topology Manager policy and no
        # --numa option overrides it: only Guaranteed whole-CPU pods are NUMA-aligned
        policy, scope, _ = kubelet_policy(topology)
        self._kubelet = None if self._numa_option is not None or policy is None else (policy, scope)
        self.cache.reconcile(topology.names, topology.attributes)
        self._rebuild()

    def _rebuild(self) -> None:
        """A new snapshot: the source's free state minus the reservations (caller holds the
        lock or is the constructor)."""
        c = self.topology.cluster
        free_cpu, free_mem = c.free_cpu, c.free_mem
        if self.assume and len(self.cache):
            free_cpu, free_mem = self.cache.subtract(
                {n: h for h, n in enumerate(self.topology.names)}, c.free_cpu, c.free_mem)
        self._version += 1
        self._snap = _Snapshot(self.topology, free_cpu, free_mem, self._version, self.numa)

    def _stamp(self):
        stamps = []
        for f in topology_files(self._path):
            st = f.stat()
            stamps.append((str(f), st.st_mtime_ns, st.st_size))
        return tuple(stamps)

    def refresh(self) -> bool:
        """Re-read the topology if a file of ``topology_path`` changed, end the reservations
        the source now accounts for or whose time is up; True if the free state changed. A
        file that no longer reads keeps the last good topology (and is logged)."""
        with self._lock:
            changed = False
            if self._path is not None:
                try:
                    stamp = self._stamp()
                    if stamp != self._stamp_seen:
                        topology = read_topology(self._path)
                        self._stamp_seen = stamp
                        self._set_topology(topology)
                        log.info("topology re-read from %s: %d hosts", self._path, len(topology))
                        changed = True
                except (ValueError, OSError) as exc:
                    log.warning("topology in %s not re-read, keeping the last good one: %s",
                                self._path, exc)
            if not changed and self.cache.reconcile(self.topology.names, self.topology.attributes):
                self._rebuild()
                changed = True
            return changed

    def current(self) -> Topology:
        """The topology the verbs answer from (the source's; see ``free()`` for the free state
        after the reservations)."""
        return self.topology

    def free(self) -> tuple[np.ndarray, np.ndarray]:
        """``(free_cpu, free_mem)`` [H, K] the verbs answer from: the source minus the held
        reservations."""
        c = self._snap.cluster
        return c.free_cpu, c.free_mem

    def watch(self, interval: float = 1.0) -> threading.Thread:
        """Call ``refresh()`` every ``interval`` seconds in a daemon thread until ``stop()``."""
        def loop():
            while not self._watch_stop.wait(interval):
                try:
                    self.refresh()
                except Exception:   # keep watching; the next round may succeed
                    log.exception("topology refresh failed")
        thread = threading.Thread(target=loop, name="extender-watch", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """Stop the watcher and the scoring thread (verbs that need a new score then fail)."""
        self._watch_stop.set()
        self._scoring.stop()
        self.cache.close()

    def warm_up(self) -> None:
        """Score once, so the first real request does not pay the scoring kernel's start-up."""
        request = Requests(cpu=[1], mem=[1])
        self._scoring.scores(self._snap, ("warm-up",), request)

    # ---- request parsing --------------------------------------------------------------------
    def _pod(self, args):
        """ExtenderArgs -> (Requests of one, shape key, uid, namespace, name, spec.nodeName)."""
        if not isinstance(args, dict):
            raise RequestError(f"expected ExtenderArgs (a JSON object), got {type(args).__name__}")
        pod = args.get("Pod")
        if not isinstance(pod, dict):
            raise RequestError("Pod: required (a v1.Pod object)")
        pod = dict(pod)
        if not pod.get("kind"):   # Go omits an empty TypeMeta: a v1.Pod arrives without kind
            pod["kind"] = "Pod"
        if pod["kind"] != "Pod":
            raise RequestError(f"Pod.kind: expected Pod, got {short(pod.get('kind'))}")
        try:
            spec = manifests.workload_spec(pod)
        except ValueError as exc:
            raise RequestError(f"Pod: {exc}") from None
        numa = spec.numa
        kubelet = self._kubelet
        if numa is None and kubelet is not None:
            numa = kubelet_mode(spec, *kubelet)
        key = (max(spec.cpu, 1), max(spec.mem, 1), numa, spec.vnuma, spec.priority)
        known = self._shapes.get(key)
        if known is None:   # pods of one Deployment share one (read-only) Requests
            request = Requests(cpu=[key[0]], mem=[key[1]], numa=[numa], vnuma=[spec.vnuma],
                               priority=[spec.priority])
            shape = (int(request.cpu[0]), int(request.mem[0]), int(request.numa[0]),
                     bool(request.vnuma[0]))
            with self._lock:
                known = self._shapes.setdefault(key, (request, shape))
                while len(self._shapes) > 4096:
                    del self._shapes[next(iter(self._shapes))]
        request, shape = known
        meta = pod.get("metadata") if isinstance(pod.get("metadata"), dict) else {}
        namespace = meta.get("namespace") or manifests.DEFAULT_NAMESPACE
        uid = meta.get("uid") or f"{namespace}/{meta.get('name')}"
        if not isinstance(uid, str):
            raise RequestError(f"Pod: metadata.uid: expected a string, got {short(uid)}")
        node_name = spec.node
        with self._lock:
            self._seen[uid] = (request, shape, namespace, meta.get("name"))
            self._seen.move_to_end(uid)
            while len(self._seen) > 100_000:
                self._seen.popitem(last=False)
        return request, shape, node_name

    def _nodes(self, args: dict, snap: _Snapshot, raw_names: bytes | None = None
               ) -> tuple[_NameSet, list | None]:
        """(the names resolved, Node objects or None when the call sent NodeNames);
        ``raw_names`` is the NodeNames list as sent, when ``split_node_names`` took it out."""
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
            return self._name_set(tuple(names), snap), items
        if raw_names is not None:
            found = self._name_sets.get(raw_names)
            if found is not None and found.topology is snap.topology:
                return found, None
            names = decode(b"[" + raw_names + b"]")
            return self._name_set(tuple(names), snap, raw_names), None
        names = args.get("NodeNames")
        if names is None:
            raise RequestError("one of Nodes or NodeNames is required")
        if not isinstance(names, list):
            raise RequestError("NodeNames: expected a list of node names")
        return self._name_set(tuple(names), snap), None

    def _name_set(self, names: tuple, snap: _Snapshot, key=None) -> _NameSet:
        sets = self._name_sets
        key = names if key is None else key
        found = sets.get(key)     # an equal key is a list of strings checked before
        if found is not None and found.topology is snap.topology:
            return found
        if not all(type(n) is str for n in names):
            raise RequestError("NodeNames: expected a list of node names")
        found = _NameSet(names, snap.index)
        found.topology = snap.topology
        with self._lock:
            sets[key] = found
            while len(sets) > 16:
                sets.popitem(last=False)
        return found

    def _reasons(self, snap: _Snapshot, shape, request: Requests, hosts: np.ndarray) -> np.ndarray:
        """Pending reason code [H] of the pod on each host alone, filled in for ``hosts``
        (computed once per snapshot and shape)."""
        known = snap.reasons.get(shape)
        if known is None:
            known = snap.reasons[shape] = np.zeros(snap.cluster.hosts, dtype=np.int8)
        todo = np.unique(hosts[known[hosts] == 0]).astype(np.int32)
        if len(todo):
            k = len(todo)
            pinned = Requests(cpu=np.repeat(request.cpu, k), mem=np.repeat(request.mem, k),
                              numa=np.repeat(request.numa, k), vnuma=np.repeat(request.vnuma, k),
                              required_host=todo)
            result = place(snap.cluster, pinned, policy=self.policy, numa=snap.numa,
                           order="given")
            known[todo] = result.reason
        return known

    # ---- verbs ------------------------------------------------------------------------------
    def _filter(self, args, raw_names=None, parsed=None, snap=None):
        """(names, outcome [N] int: 0 passes, a pending reason code, or ``_UNKNOWN`` /
        ``_BOUND_ELSEWHERE``, the node a bound pod is on, Node items or None)."""
        request, shape, bound_to = parsed or self._pod(args)
        snap = snap or self._snap
        names, items = self._nodes(args, snap, raw_names)
        outcome = np.full(len(names.idx), _UNKNOWN, dtype=np.int64)
        if bound_to is not None:
            outcome[:] = _BOUND_ELSEWHERE
            outcome[[i for i, n in enumerate(names.names) if n == bound_to]] = codes.PLACED
            return names, outcome, bound_to, items
        _, ok = self._scoring.scores(snap, shape, request)
        known = names.idx[names.known]
        outcome[names.known] = np.where(ok[known], codes.PLACED, -1)
        refused = names.known & (outcome == -1)
        if refused.any():
            reasons = self._reasons(snap, shape, request, names.idx[refused])
            outcome[refused] = reasons[names.idx[refused]]
        return names, outcome, bound_to, items

    @staticmethod
    def _message(code: int, bound_to) -> str:
        if code == _UNKNOWN:
            return UNKNOWN_NODE
        if code == _BOUND_ELSEWHERE:
            return f"numasched: the pod is bound to {bound_to}"
        return _FAILED[code]

    def filter(self, args) -> dict:
        """ExtenderArgs -> ExtenderFilterResult."""
        names, outcome, bound_to, items = self._filter(args)
        passing = (outcome == codes.PLACED).tolist()
        failed = {n: self._message(c, bound_to) for n, c in zip(names.names, outcome.tolist())
                  if c != codes.PLACED}
        out = {"FailedNodes": failed, "Error": ""}
        if items is None:
            out["NodeNames"] = list(itertools.compress(names.names, passing))
        else:
            out["Nodes"] = {"items": list(itertools.compress(items, passing))}
        return out

    def _answer(self, verb: str, args, raw_names, parsed):
        """``(snapshot, key, encoded answer or None)``: the answer kept for this pod's shape and
        NodeNames list (a bound pod's, or one that sent Node objects, is never kept)."""
        request, shape, bound_to = parsed or self._pod(args)
        snap = self._snap
        if bound_to is not None or raw_names is None:
            return snap, None, None, (request, shape, bound_to)
        names, _ = self._nodes(args, snap, raw_names)
        key = (verb, shape, names)
        return snap, key, snap.answers.get(key), (request, shape, bound_to)

    def _filter_json(self, args, raw_names=None, parsed=None) -> bytes:
        """``filter`` encoded from each name's JSON, one join per failure message, so a
        5,000-node answer builds no per-node string; kept per shape and NodeNames list."""
        snap, key, hit, parsed = self._answer("filter", args, raw_names, parsed)
        if hit is not None:
            return hit
        names, outcome, bound_to, items = self._filter(args, raw_names, parsed, snap)
        parts = []
        for code in np.unique(outcome[outcome != codes.PLACED]).tolist():
            sep = ":" + json.dumps(self._message(code, bound_to))
            parts.append((sep + ",").join(names.json_array[outcome == code]) + sep)
        passing = (outcome == codes.PLACED).tolist()
        if items is None:
            chosen = '"NodeNames":[' + ",".join(itertools.compress(names.json, passing)) + "]"
        else:
            chosen = '"Nodes":' + json.dumps({"items": list(itertools.compress(items, passing))},
                                              separators=(",", ":"))
        out = ('{"FailedNodes":{' + ",".join(parts) + '},"Error":"",' + chosen + "}").encode()
        return out if key is None else snap.keep(snap.answers, key, out, MAX_ANSWERS)

    def _prioritize(self, args, raw_names=None, parsed=None, snap=None):
        """(names, scores [N] int64 0..MAX_EXTENDER_SCORE)."""
        request, shape, bound_to = parsed or self._pod(args)
        snap = snap or self._snap
        names, _ = self._nodes(args, snap, raw_names)
        if bound_to is not None:
            return names, np.array([MAX_EXTENDER_SCORE if n == bound_to else 0
                                    for n in names.names], dtype=np.int64)
        rank, ok = self._scoring.scores(snap, shape, request)
        at = np.where(names.known, names.idx, 0)       # unknown names: any row, then not ok
        cand_ok = ok[at] & names.known
        scores = _normalise(rank[at][None, :], cand_ok[None, :])[0]
        return names, np.maximum(scores, 0) * MAX_EXTENDER_SCORE // MAX_SCORE

    def prioritize(self, args) -> list[dict]:
        """ExtenderArgs -> HostPriorityList (scores 0..MAX_EXTENDER_SCORE)."""
        names, scores = self._prioritize(args)
        return [{"Host": n, "Score": s} for n, s in zip(names.names, scores.tolist())]

    def _prioritize_json(self, args, raw_names=None, parsed=None) -> bytes:
        snap, key, hit, parsed = self._answer("prioritize", args, raw_names, parsed)
        if hit is not None:
            return hit
        names, scores = self._prioritize(args, raw_names, parsed, snap)
        out = names.template.copy()
        tens = scores // 10
        out[names.slots] = np.where(tens > 0, ord("0") + tens, ord(" "))   # JSON allows the space
        out[names.slots + 1] = ord("0") + scores % 10
        out = out.tobytes()
        return out if key is None else snap.keep(snap.answers, key, out, MAX_ANSWERS)

    def bind(self, args) -> dict:
        """ExtenderBindingArgs -> ExtenderBindingResult (``{"Error": ""}`` when bound)."""
        if not isinstance(args, dict):
            raise RequestError(f"expected ExtenderBindingArgs (a JSON object), got "
                               f"{type(args).__name__}")
        fields = {}
        for key in ("PodName", "PodNamespace", "PodUID", "Node"):
            value = args.get(key)
            if not isinstance(value, str) or not value:
                raise RequestError(f"{key}: required (a non-empty string), got {short(value)}")
            fields[key] = value
        uid, node = fields["PodUID"], fields["Node"]
        namespace, name = fields["PodNamespace"], fields["PodName"]
        with self._lock:
            if uid in self._bound:
                if self._bound[uid] == node:
                    return {"Error": ""}       # a retried bind of a bind that succeeded
                return {"Error": f"numasched: pod {namespace}/{name} is already bound to "
                                 f"{self._bound[uid]}; a bound pod is never moved"}
            seen = self._seen.get(uid)
            if seen is None:
                return {"Error": f"numasched: pod {namespace}/{name} ({short(uid)}) was not "
                                 "seen by filter or prioritize; it is retried"}
            request = seen[0]
            snap = self._snap
            h = snap.index.get(node)
            if h is None:
                return {"Error": f"{UNKNOWN_NODE}: {short(node)}"}
            pinned = Requests(cpu=request.cpu, mem=request.mem, numa=request.numa,
                              vnuma=request.vnuma, required_host=[h])
            result = place(snap.cluster, pinned, policy=self.policy, numa=snap.numa,
                           order="given")
            code = int(result.reason[0])
            if code != codes.PLACED:
                return {"Error": f"numasched: {node} can no longer take pod {namespace}/{name}: "
                                 f"{codes.REASONS[code]}: {_host_reason(code)}"}
            mask = int(result.nodes[0])
            binding = {"podUID": uid, "namespace": namespace, "name": name, "node": node,
                       "numaNodes": [k for k in range(64) if mask >> k & 1],
                       "cpuMillicores": result.cpu_by_node[0].tolist(),
                       "memoryBytes": result.mem_by_node[0].tolist(), "boundAt": time.time()}
            if self.assume:
                self.cache.add(uid, namespace, name, node, result.cpu_by_node[0],
                               result.mem_by_node[0], mask)
                self._rebuild()
            if self.on_bind is not None:
                try:
                    self.on_bind(binding)
                except Exception as exc:
                    log.warning("binding %s/%s to %s failed: %s", namespace, name, node, exc)
                    if self.assume:
                        self.cache.forget(uid)
                        self._rebuild()
                    return {"Error": f"numasched: binding {namespace}/{name} to {node} failed: "
                                     f"{' '.join(str(exc).split())[:200]}"}
            self._bound[uid] = node
            self._bindings.append(binding)
        return {"Error": ""}

    def bindings(self) -> dict:
        """The recorded bindings (newest last) and the reservations still held."""
        with self._lock:
            return {"bindings": list(self._bindings),
                    "reservations": [r.to_dict() for r in self.cache.reservations()],
                    "released": dict(self.cache.released)}

    # ---- HTTP -------------------------------------------------------------------------------
    def handle(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        """The HTTP application (``numasched.extender.server.Server``): route, decode, answer.
        The verb is the last path segment, so any ``urlPrefix`` works."""
        verb = path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        if method == "GET" and verb in ("healthz", "bindings"):
            payload = ({"status": "ok", "hosts": len(self.topology), "reservations": len(self.cache)}
                       if verb == "healthz" else self.bindings())
            return 200, json.dumps(payload, separators=(",", ":")).encode()
        if method != "POST" or verb not in VERBS:
            return 404, json.dumps({"Error": f"unknown route {method} {short(path)}; expected "
                                             "POST .../filter, .../prioritize, .../bind or GET "
                                             ".../healthz, .../bindings"}).encode()
        try:
            if verb == "bind":
                result = self.bind(decode(body))
            else:
                encode = self._filter_json if verb == "filter" else self._prioritize_json
                split = split_node_names(body)
                if split is not None:
                    rest, raw = split
                    # kube-scheduler sends each pod to filter, then the same bytes to prioritize
                    hit = self._pods.get(rest)
                    if hit is not None:
                        return 200, encode(hit[0], raw, hit[1])
                    args = decode(rest)
                    if isinstance(args, dict) and args.get("Nodes") is None:
                        parsed = self._pod(args)
                        with self._lock:
                            self._pods[rest] = (args, parsed)
                            while len(self._pods) > 256:
                                self._pods.popitem(last=False)
                        return 200, encode(args, raw, parsed)
                return 200, encode(decode(body))
        except ValueError as exc:   # RequestError, or a value the library refuses
            message = " ".join(str(exc).split())
            log.info("%s %s -> 400: %s", method, short(path), message)
            if len(message) > MAX_ERROR_CHARS:   # never echo a long offending value whole
                message = message[:MAX_ERROR_CHARS] + "..."
            return 400, json.dumps({"Error": message}).encode()
        return 200, json.dumps(result, separators=(",", ":")).encode()


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


# the FailedNodes message of each pending reason code
_FAILED = {code: f"numasched: {name}: {_host_reason(code)}" for code, name in codes.REASONS.items()
           if code != codes.PLACED}

__all__ = ["Extender", "RequestError", "decode", "MAX_BODY_BYTES", "MAX_JSON_DEPTH",
           "UNKNOWN_NODE", "VERBS"]
