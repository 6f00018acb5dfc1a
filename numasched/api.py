"""The public API: ``Cluster``, ``Requests``, ``place()`` and ``Placement``.

This layer validates, coerces and copies; the kernels below it see only C-contiguous arrays of
fixed dtypes, scalars and the integer codes of ``numasched.codes``. Bad input raises
``ValueError`` naming the field and the value before anything is placed.
"""
from __future__ import annotations

import numpy as np

from . import _backend, codes
from ._validate import int_array, same_length
from .codes import (
    FIXED_SHIFT,
    MAX_HOST_AMOUNT,
    MAX_NODE_AMOUNT,
    MAX_NODES,
    MAX_REQUEST_AMOUNT,
    MODE_DEFAULT,
    NODE_CHOICES,
    NUMA_MODES,
    ORDER_DECREASING,
    ORDER_FILL,
    ORDERS,
)

DEFAULT_LOCAL_DISTANCE = 10
DEFAULT_REMOTE_DISTANCE = 21
MAX_DISTANCE = 1000


def _readonly(arr: np.ndarray) -> np.ndarray:
    arr.setflags(write=False)
    return arr


class Cluster:
    """Hosts with NUMA nodes: capacities, free capacity, distances and schedulability.

    Parameters
    ----------
    node_cpu, node_mem : int arrays ``[H, K]``
        Capacity of node ``k`` of host ``h`` in millicores and bytes. A node with zero CPU and
        zero memory is absent, so hosts with fewer nodes are padded with zeros. K <= 64.
    distance : ``[K, K]`` or ``[H, K, K]``, optional
        SLIT distances (10 = local). Default: 10 on the diagonal, 21 elsewhere.
    schedulable : bool ``[H]``, optional
        Hosts that take new work (default all). Unschedulable hosts keep what they hold.
    free_cpu, free_mem : int arrays ``[H, K]``, optional
        Free capacity now (default: the full capacity). ``0 <= free <= capacity``.

    The arrays are copied and stored read-only: a Cluster never changes after construction.
    ``Placement.cluster_after()`` gives the cluster with the placement's free capacity.
    """

    def __init__(self, node_cpu, node_mem, distance=None, *, schedulable=None, free_cpu=None,
                 free_mem=None):
        node_cpu = int_array(node_cpu, "node_cpu", ndim=2, lo=0, hi=MAX_NODE_AMOUNT)
        node_mem = int_array(node_mem, "node_mem", ndim=2, lo=0, hi=MAX_NODE_AMOUNT)
        if node_mem.shape != node_cpu.shape:
            raise ValueError(f"node_mem has shape {node_mem.shape}, but node_cpu has {node_cpu.shape}")
        n_hosts, n_nodes = node_cpu.shape
        if n_nodes > MAX_NODES:
            raise ValueError(f"node_cpu has K = {n_nodes} nodes per host; at most {MAX_NODES} are supported")
        if n_nodes == 0:
            raise ValueError("node_cpu must have at least one node column (K >= 1)")
        for field, arr in (("node_cpu", node_cpu), ("node_mem", node_mem)):
            totals = arr.sum(axis=1)
            if n_hosts and totals.max() > MAX_HOST_AMOUNT:
                h = int(np.argmax(totals))
                raise ValueError(f"{field} of host {h} sums to {totals[h]}, above the limit {MAX_HOST_AMOUNT}")
        present = (node_cpu > 0) | (node_mem > 0)

        if distance is None:
            distance = np.full((1, n_nodes, n_nodes), DEFAULT_REMOTE_DISTANCE, dtype=np.int64)
            distance[0][np.diag_indices(n_nodes)] = DEFAULT_LOCAL_DISTANCE
        else:
            distance = int_array(distance, "distance", ndim=(2, 3), lo=0, hi=MAX_DISTANCE)
            if distance.ndim == 2:
                distance = distance[np.newaxis]
            if distance.shape[1:] != (n_nodes, n_nodes) or distance.shape[0] not in (1, n_hosts):
                raise ValueError(f"distance must have shape ({n_nodes}, {n_nodes}) or "
                                 f"({n_hosts}, {n_nodes}, {n_nodes}), got {distance.shape}")
            distance = np.ascontiguousarray(distance)

        if schedulable is None:
            schedulable = np.ones(n_hosts, dtype=np.uint8)
        else:
            schedulable = int_array(schedulable, "schedulable", ndim=1, lo=0, hi=1,
                                    dtype=np.uint8, allow_bool=True)
            same_length("schedulable", schedulable, n_hosts, "node_cpu")

        frees = []
        for field, value, cap in (("free_cpu", free_cpu, node_cpu), ("free_mem", free_mem, node_mem)):
            if value is None:
                frees.append(cap.copy())
                continue
            free = int_array(value, field, ndim=2, lo=0)
            if free.shape != cap.shape:
                raise ValueError(f"{field} has shape {free.shape}, but node_cpu has {cap.shape}")
            over = free > cap
            if over.any():
                h, k = map(int, np.argwhere(over)[0])
                raise ValueError(f"{field}[{h}, {k}] = {free[h, k]} exceeds the node's capacity {cap[h, k]}")
            frees.append(free)

        self.node_cpu = _readonly(node_cpu)
        self.node_mem = _readonly(node_mem)
        self.distance = _readonly(distance)
        self.schedulable = _readonly(schedulable)
        self.free_cpu = _readonly(frees[0])
        self.free_mem = _readonly(frees[1])
        self.present = _readonly(present)

    @classmethod
    def uniform(cls, hosts: int, nodes_per_host: int, cpu_per_node: int, mem_per_node: int, *,
                remote_distance: int = DEFAULT_REMOTE_DISTANCE) -> "Cluster":
        """``hosts`` identical hosts of ``nodes_per_host`` equal nodes (millicores, bytes)."""
        for field, value in (("hosts", hosts), ("nodes_per_host", nodes_per_host),
                             ("cpu_per_node", cpu_per_node), ("mem_per_node", mem_per_node)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < (0 if field == "hosts" else 1):
                raise ValueError(f"{field} must be a positive integer, got {value!r}")
        distance = np.full((nodes_per_host, nodes_per_host), remote_distance, dtype=np.int64)
        distance[np.diag_indices(nodes_per_host)] = DEFAULT_LOCAL_DISTANCE
        return cls(np.full((hosts, nodes_per_host), cpu_per_node, dtype=np.int64),
                   np.full((hosts, nodes_per_host), mem_per_node, dtype=np.int64), distance)

    def with_free(self, free_cpu, free_mem, schedulable=None) -> "Cluster":
        """The same hosts with another free state (validated like the constructor's)."""
        return Cluster(self.node_cpu, self.node_mem, self.distance,
                       schedulable=self.schedulable if schedulable is None else schedulable,
                       free_cpu=free_cpu, free_mem=free_mem)

    @property
    def hosts(self) -> int:
        return self.node_cpu.shape[0]

    @property
    def nodes(self) -> int:
        return self.node_cpu.shape[1]

    def __repr__(self) -> str:
        return (f"Cluster(hosts={self.hosts}, nodes={self.nodes}, "
                f"cpu={int(self.node_cpu.sum())}m, mem={int(self.node_mem.sum())}B)")


class Requests:
    """A batch of N vCPU/memory requests.

    Parameters
    ----------
    cpu, mem : int arrays ``[N]``
        Millicores and bytes; every amount must be positive. A request larger than every host is
        not an error: it stays pending with reason ``too-large``.
    numa : str, or sequence ``[N]`` of names / codes / None, optional
        Per-request NUMA mode overriding ``place(numa=...)``; None or -1 means the call's mode.
    vnuma : bool ``[N]``, optional
        The guest sees its NUMA layout (a wide VM split into equal clients counts as fully local
        in the locality metric).
    priority : int ``[N]``, optional
        Higher is placed first under ``order="decreasing"`` and ``"fill"`` (ignored by
        ``order="given"``).
    required_host : int ``[N]``, optional
        The only host index the request may use; -1 (default) means any host.
    """

    def __init__(self, cpu, mem, *, numa=None, vnuma=None, priority=None, required_host=None):
        cpu = int_array(cpu, "cpu", ndim=1, lo=1, hi=MAX_REQUEST_AMOUNT)
        mem = int_array(mem, "mem", ndim=1, lo=1, hi=MAX_REQUEST_AMOUNT)
        n = cpu.shape[0]
        same_length("mem", mem, n, "cpu")
        self.cpu = _readonly(cpu)
        self.mem = _readonly(mem)
        self.numa = _readonly(self._modes(numa, n))
        if vnuma is None:
            vnuma = np.zeros(n, dtype=np.uint8)
        else:
            vnuma = int_array(vnuma, "vnuma", ndim=1, lo=0, hi=1, dtype=np.uint8, allow_bool=True)
            same_length("vnuma", vnuma, n, "cpu")
        self.vnuma = _readonly(vnuma)
        if priority is None:
            priority = np.zeros(n, dtype=np.int64)
        else:
            priority = int_array(priority, "priority", ndim=1, lo=-(1 << 62), hi=1 << 62)
            same_length("priority", priority, n, "cpu")
        self.priority = _readonly(priority)
        if required_host is None:
            required_host = np.full(n, -1, dtype=np.int32)
        else:
            required_host = int_array(required_host, "required_host", ndim=1, lo=-1,
                                      hi=np.iinfo(np.int32).max, dtype=np.int32)
            same_length("required_host", required_host, n, "cpu")
        self.required_host = _readonly(required_host)

    @staticmethod
    def _modes(numa, n: int) -> np.ndarray:
        if numa is None:
            return np.full(n, MODE_DEFAULT, dtype=np.int8)
        if isinstance(numa, (str, int, np.integer)) and not isinstance(numa, bool):
            if not isinstance(numa, str) and int(numa) == MODE_DEFAULT:
                return np.full(n, MODE_DEFAULT, dtype=np.int8)
            code = codes.resolve(NUMA_MODES, numa if isinstance(numa, str) else int(numa), "numa mode")
            return np.full(n, code, dtype=np.int8)
        try:
            values = list(numa)
        except TypeError:
            raise ValueError(f"numa must be a mode name, a code or a sequence of them, got {numa!r}") from None
        if len(values) != n:
            raise ValueError(f"numa has length {len(values)}, but cpu has {n}")
        out = np.empty(n, dtype=np.int8)
        for i, value in enumerate(values):
            if isinstance(value, np.integer):
                value = int(value)
            if value is None or value == MODE_DEFAULT:
                out[i] = MODE_DEFAULT
            else:  # a name or an exact integer code; 1.5, True or "1" are refused
                out[i] = codes.resolve(NUMA_MODES, value, f"numa mode (numa[{i}])")
        return out

    def __len__(self) -> int:
        return self.cpu.shape[0]

    def __repr__(self) -> str:
        return f"Requests(n={len(self)}, cpu={int(self.cpu.sum())}m, mem={int(self.mem.sum())}B)"


def request_order(cluster: Cluster, requests: Requests, order: int) -> np.ndarray:
    """Placement order as an int64 permutation (vectorised; the reference sorts on its own).

    ``decreasing``: priority (high first), then dominant share (the largest over resources of the
    request over the largest host's total, in fixed point), then index. ``given``: index.
    ``fill``: hosts filled one at a time with the best-aligned request, per priority class
    (``numasched.kernels.fill.fill_order``, the one implementation the reference also calls).
    """
    n = len(requests)
    if order == ORDER_FILL:
        from .kernels.fill import fill_order

        return fill_order(cluster.node_cpu.sum(axis=1), cluster.node_mem.sum(axis=1),
                          cluster.free_cpu.sum(axis=1), cluster.free_mem.sum(axis=1),
                          cluster.schedulable, requests.cpu, requests.mem, requests.priority,
                          requests.required_host)
    if order != ORDER_DECREASING:
        return np.arange(n, dtype=np.int64)
    share = np.zeros(n, dtype=np.int64)
    for amount, capacity in ((requests.cpu, cluster.node_cpu), (requests.mem, cluster.node_mem)):
        largest = int(capacity.sum(axis=1).max()) if cluster.hosts else 0
        if largest > 0:
            share = np.maximum(share, (np.minimum(amount, largest) << FIXED_SHIFT) // largest)
    return _sort_decreasing(requests.priority, share)


def _sort_decreasing(priority: np.ndarray, share: np.ndarray) -> np.ndarray:
    """The indices by priority (high first), then share (high first), then index.

    The two keys pack into one (priority gap, 2**16 - share). Where its range fits in 16 or 32
    bits, one or two stable passes of NumPy's radix sort over 16-bit digits order it (a stable
    sort keeps equal keys in index order); about four times as fast as sorting 64-bit keys,
    which is the next fallback (index packed into the key's low bits, where it fits in 63 bits),
    before the three-key lexsort."""
    n = len(share)
    if n == 0:
        return np.arange(0, dtype=np.int64)
    share_bits = FIXED_SHIFT + 1  # share is in [0, 2**16]
    top = int(priority.max())
    gap_bits = (top - int(priority.min())).bit_length()
    if gap_bits + share_bits <= 32:
        key = ((top - priority) << share_bits) | ((1 << FIXED_SHIFT) - share)
        key -= key.min()
        if int(key.max()) < 1 << 16:
            order = np.argsort(key.astype(np.uint16), kind="stable")
        else:
            order = np.argsort((key & 0xFFFF).astype(np.uint16), kind="stable")
            order = order[np.argsort((key[order] >> 16).astype(np.uint16), kind="stable")]
        return order.astype(np.int64, copy=False)
    index_bits = max(n - 1, 1).bit_length()
    if gap_bits + share_bits + index_bits > 63:
        return np.lexsort((np.arange(n), -share, -priority)).astype(np.int64)
    key = (((top - priority) << (share_bits + index_bits))
           | (((1 << FIXED_SHIFT) - share) << index_bits) | np.arange(n, dtype=np.int64))
    return np.sort(key) & ((1 << index_bits) - 1)


class Placement:
    """The result of ``place()``.

    Attributes
    ----------
    host : int32 ``[N]``            host index per request, -1 = pending
    cpu_by_node, mem_by_node : int64 ``[N, K]``  what each request takes on each node of its host
    nodes : uint64 ``[N]``           bit mask of the NUMA nodes each request uses
    reason : int8 ``[N]``           0 = placed, else a pending code of ``numasched.codes.REASONS``
    free_cpu, free_mem : int64 ``[H, K]``  free capacity after the placement
    modes : int8 ``[N]``            the NUMA mode code each request was placed under
    """

    def __init__(self, cluster: Cluster, requests: Requests, arrays: dict, settings: dict,
                 modes: np.ndarray):
        self.cluster = cluster
        self.requests = requests
        self.settings = settings
        self.modes = _readonly(modes)
        for name in ("host", "cpu_by_node", "mem_by_node", "nodes", "reason", "free_cpu", "free_mem"):
            setattr(self, name, _readonly(arrays[name]))

    @property
    def placed(self) -> np.ndarray:
        return self.host >= 0

    def pending_reasons(self) -> dict[str, int]:
        """Count of pending requests per reason name."""
        counts = np.bincount(self.reason.astype(np.int64), minlength=len(codes.REASONS))
        return {codes.REASONS[c]: int(counts[c]) for c in codes.REASONS if c != codes.PLACED and counts[c]}

    def cluster_after(self) -> Cluster:
        """The cluster with this placement's free capacity, to place the next batch on."""
        return self.cluster.with_free(self.free_cpu, self.free_mem)

    def summary(self) -> dict:
        """The metrics of DESIGN.md; see ``numasched.evaluation.metrics.summarize``."""
        from .evaluation.metrics import summarize
        return summarize(self)

    def __repr__(self) -> str:
        placed = int(self.placed.sum())
        return f"Placement(placed={placed}, pending={len(self.host) - placed}, {self.settings})"


def request_modes(cluster: Cluster, requests: Requests, default_mode: int) -> np.ndarray:
    """The NUMA mode code of each request (its own, else ``default_mode``), after checking that
    every ``required_host`` names a host of this cluster."""
    bad = requests.required_host >= cluster.hosts
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"required_host[{i}] = {requests.required_host[i]} is not a host index "
                         f"(the cluster has {cluster.hosts} hosts)")
    return np.where(requests.numa == MODE_DEFAULT, default_mode, requests.numa).astype(np.int8)


def new_outputs(cluster: Cluster, n: int) -> dict:
    """Fresh kernel outputs for n requests: nothing placed, and copies of the free state (a
    kernel writes into these copies only, never into the cluster's arrays)."""
    return {
        "host": np.full(n, -1, dtype=np.int32),
        "cpu_by_node": np.zeros((n, cluster.nodes), dtype=np.int64),
        "mem_by_node": np.zeros((n, cluster.nodes), dtype=np.int64),
        "nodes": np.zeros(n, dtype=np.uint64),
        "reason": np.zeros(n, dtype=np.int8),
        "free_cpu": cluster.free_cpu.copy(),
        "free_mem": cluster.free_mem.copy(),
    }


def place(cluster: Cluster, requests: Requests, *, policy="best-fit", numa: str = "restricted",
          order: str = "decreasing", node: str = "pack", backend: str = "auto",
          refine: float = 0.0, seed: int = 0) -> Placement:
    """Place every request onto the cluster's free capacity in one call.

    ``policy`` is a registered policy name or a ``numasched.policies.Policy``: a host score
    (first-fit, best-fit, worst-fit, balanced, dot-product) or a preset (esxi, linux,
    kubelet-*, binpack, spread, vector-pack; see ``numasched.policies.names()``). ``numa`` is the
    NUMA mode of requests that set none (none, single-numa-node, restricted, best-effort),
    ``order`` is decreasing (batch packing), given (online) or fill (hosts filled one at a time
    with the best-aligned request; see ``numasched.kernels.fill``), ``node`` chooses among
    equally wide and equally near node sets (pack or spread); a choice the policy fixes wins over
    these arguments.
    ``backend`` is auto, cython, numba or reference. ``refine`` > 0 runs the local search of
    ``numasched.optimize.refine`` for about that many seconds after the greedy pass (fewer hosts, then
    better locality; deterministic for a given budget and ``seed``). The cluster and the requests are not
    modified; what fits is placed, the rest is pending with a reason. The same inputs give the
    same placement on every backend.
    """
    from . import policies

    if not isinstance(cluster, Cluster):
        raise ValueError(f"cluster must be a numasched.Cluster, got {type(cluster).__name__}")
    if not isinstance(requests, Requests):
        raise ValueError(f"requests must be a numasched.Requests, got {type(requests).__name__}")
    from .optimize.refine import budget_units, refine as refine_pass

    chosen = policies.get(policy)
    compiled = chosen.compile(numa=numa, node=node, order=order)
    run = _backend.get(backend)
    budget_units(refine)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    modes = request_modes(cluster, requests, compiled.numa)
    arrays = new_outputs(cluster, len(requests))
    run(cluster, requests, modes, compiled, arrays)
    if refine:
        refine_pass(cluster, requests, modes, compiled, arrays, refine, int(seed), run)
    settings = {
        "policy": chosen.name,
        "score": chosen.score,
        "numa": codes.name_of(NUMA_MODES, compiled.numa),
        "order": codes.name_of(ORDERS, compiled.order),
        "node": codes.name_of(NODE_CHOICES, compiled.node),
        "weights": (compiled.cpu_weight, compiled.mem_weight),
        "backend": run.backend_name,
        "refine": refine,
        "seed": seed,
    }
    return Placement(cluster, requests, arrays, settings, modes)
