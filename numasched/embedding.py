"""Per-host filter and score for schedulers that embed numasched.

A scheduler that owns its own loop (a kube-scheduler plugin or extender, a VM manager, a batch
system) asks, per pending workload, "which hosts can take it, and how good is each?". These
functions answer with exactly the rules of ``place()`` (they run the placement kernel's own
helpers, so there is no second implementation): a host passes ``filter_hosts`` exactly where
``place()`` would put the request if that host were the only one allowed, and the host with the
best ``score_hosts`` (ties to the lowest index) is the host ``place()`` picks for that request
alone.

Backends
--------
``backend="auto"`` (the default) runs the compiled Cython kernel when it is built: the first
call answers at once, with no JIT compile and without importing Numba. ``"cython"`` insists on
it; ``"numba"`` runs the Numba kernel, parallel over chunks of hosts (``numba.set_num_threads``
sets the threads), which compiles on first use in a fresh cache (said once on stderr;
``numasched.warmup(backend="numba")`` does it ahead of time); ``"reference"`` runs the plain
Python specification (slow; for tests). Every backend gives the same arrays, bit for bit, and
every one runs without the GIL (except the reference), so threads can call them concurrently.

Mapping onto Kubernetes
-----------------------
- Filter plugin / extender ``filter`` verb: a node passes iff ``filter_hosts(...)[h]`` is true
  (equivalently ``score >= 0``); report the rest as unschedulable with the pending reason.
- Score plugin: return ``score[h]`` as the node score; it is already in
  ``[0, MAX_SCORE]`` (``framework.MaxNodeScore`` = 100), so no NormalizeScore is needed.
- Extender ``prioritize`` verb: scores there are ``0..10`` (``MaxExtenderPriority``); send
  ``score[h] * MAX_EXTENDER_SCORE // MAX_SCORE``.
- The NUMA node set in ``nodes[h]`` is what a Topology-Manager-aware kubelet (or the VM
  manager's home-node logic) would be asked to use; feed it to a reserve/permit step.
Scores are relative to the hosts in the call: the best feasible host gets ``MAX_SCORE`` (only
hosts whose rank key equals the best do), the worst feasible ``MIN_SCORE``, the rest linearly
in between by their raw rank key; infeasible hosts get ``INFEASIBLE`` (-1).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import _backend
from .api import Cluster, Requests, request_modes

MAX_SCORE = 100          # kube-scheduler framework.MaxNodeScore
MIN_SCORE = 0            # framework.MinNodeScore
MAX_EXTENDER_SCORE = 10  # extender API MaxExtenderPriority
INFEASIBLE = -1


class HostScores(NamedTuple):
    """Scores of one request ([H] arrays) or of a batch ([M, H] arrays)."""

    score: np.ndarray   # int64: MIN_SCORE..MAX_SCORE where feasible, INFEASIBLE elsewhere
    nodes: np.ndarray   # uint64: NUMA node mask the request would use on each host (0 if none)
    rank: np.ndarray    # int64: raw rank key (higher is better), meaningful where feasible

    @property
    def feasible(self) -> np.ndarray:
        return self.score >= 0


def _as_requests(request) -> Requests:
    if isinstance(request, Requests):
        return request
    if isinstance(request, (tuple, list)) and len(request) == 2 and np.ndim(request[0]) == 0:
        return Requests(cpu=[request[0]], mem=[request[1]])
    raise ValueError("request must be numasched.Requests or a (cpu_millicores, mem_bytes) pair, "
                     f"got {type(request).__name__}")


def _free_state(cluster: Cluster, free) -> Cluster:
    if not isinstance(cluster, Cluster):
        raise ValueError(f"cluster must be a numasched.Cluster, got {type(cluster).__name__}")
    if free is None:
        return cluster
    if not (isinstance(free, (tuple, list)) and len(free) == 2):
        raise ValueError("free must be a (free_cpu, free_mem) pair of [H, K] arrays or None")
    return cluster.with_free(free[0], free[1])


def _normalise(rank: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Map each row's feasible rank keys linearly onto MIN_SCORE..MAX_SCORE (best -> MAX only)."""
    if rank.shape[1] == 0:
        return np.zeros(rank.shape, dtype=np.int64)
    big = np.iinfo(np.int64).max
    hi = np.where(ok, rank, -big).max(axis=1, keepdims=True)
    lo = np.where(ok, rank, big).min(axis=1, keepdims=True)
    span = np.maximum(hi - lo, 1)
    # rank spans stay below 2**51, so (rank - lo) * 100 cannot overflow; floor division keeps
    # every host strictly below MAX_SCORE unless its key equals the best.
    scaled = np.where(hi > lo, MIN_SCORE + (rank - lo) * (MAX_SCORE - MIN_SCORE) // span, MAX_SCORE)
    return np.where(ok, scaled, INFEASIBLE).astype(np.int64)


def score_batch(cluster: Cluster, requests, *, policy="best-fit",
                numa: str = "restricted", node: str = "pack", free=None,
                backend: str = "auto") -> HostScores:
    """Score M requests against H hosts, each request alone against the same free state.

    ``policy`` is a policy name or ``numasched.policies.Policy``, as for ``place()``. Returns
    ``HostScores`` of [M, H] arrays. A request's own ``numa`` override and ``required_host``
    pin apply, as in ``place()``. ``backend``: auto (Cython when built), cython, numba or
    reference (see the module docstring); the answer is the same on each. Runs without the GIL
    on the compiled backends. Nothing passed in is modified.
    """
    from . import policies

    cluster = _free_state(cluster, free)
    requests = _as_requests(requests)
    compiled = policies.get(policy).compile(numa=numa, node=node, order="given")
    modes = request_modes(cluster, requests, compiled.numa)
    name, kernel, messages = _backend.score_kernel(backend)
    m, h = len(requests), cluster.hosts
    rank = np.zeros((m, h), dtype=np.int64)
    nodes = np.zeros((m, h), dtype=np.uint64)
    ok = np.zeros((m, h), dtype=np.uint8)
    status = kernel(
        cluster.node_cpu, cluster.node_mem, cluster.distance, cluster.schedulable,
        cluster.free_cpu, cluster.free_mem, requests.cpu, requests.mem, modes,
        requests.required_host, compiled.score, compiled.node, compiled.cpu_weight,
        compiled.mem_weight, rank, nodes, ok,
    )
    if status != 0:
        raise RuntimeError(f"the {name} scoring kernel failed with status {status} "
                           f"({messages.get(status, 'unknown')}); this is a numasched bug")
    feasible = ok.astype(bool)
    return HostScores(_normalise(rank, feasible), np.where(feasible, nodes, 0).astype(np.uint64),
                      rank)


def score_hosts(cluster: Cluster, request, *, policy="best-fit", numa: str = "restricted",
                node: str = "pack", free=None, backend: str = "auto") -> HostScores:
    """Score one request (``Requests`` of length 1 or a ``(cpu, mem)`` pair) on every host.

    Returns ``HostScores`` of [H] arrays; see the module docstring for the Kubernetes mapping
    and the backends.
    """
    requests = _as_requests(request)
    if len(requests) != 1:
        raise ValueError(f"score_hosts takes one request, got {len(requests)}; use score_batch")
    result = score_batch(cluster, requests, policy=policy, numa=numa, node=node, free=free,
                         backend=backend)
    return HostScores(result.score[0], result.nodes[0], result.rank[0])


def filter_hosts(cluster: Cluster, request, *, numa: str = "restricted", free=None,
                 backend: str = "auto") -> np.ndarray:
    """bool [H]: True exactly where ``place()`` would succeed with this host as the only one."""
    return score_hosts(cluster, request, policy="first-fit", numa=numa, free=free,
                       backend=backend).feasible
