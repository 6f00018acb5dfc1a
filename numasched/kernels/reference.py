"""The executable specification of numasched's placement semantics, in plain Python.

Written to be read, not to be fast: every rule of ../shared/DESIGN.md is one small function on
Python integers, and every backend (the Cython kernel, the Numba kernels) must give exactly the
same placement as ``place_reference`` on every input, bit for bit. When a backend and this file
disagree, this file is right.

Vocabulary
----------
- A node ``k`` of host ``h`` is *present* when its CPU or memory capacity is non-zero.
- ``split(a, S)``: the equal split of amount ``a`` over the sorted node set ``S`` of width ``w``:
  every node gets ``a // w`` and the first ``a % w`` nodes of ``S`` (lowest ids) one unit more.
- ``S`` *fits* an availability vector when every node's share is at most what that node has, in
  both resources. "At capacity" means the availability is the node's capacity, otherwise its free.
- ``min_nodes(r, h)``: the smallest width at which some set of present nodes fits at capacity.
- ``fx(x, cap)``: the fixed-point fraction ``(x << 16) // cap`` (0 when ``cap`` is 0).
"""
from __future__ import annotations

from itertools import combinations

import numpy as np

from ..codes import (
    FIXED_ONE,
    FIXED_SHIFT,
    MODE_BEST_EFFORT,
    MODE_NONE,
    MODE_RESTRICTED,
    MODE_SINGLE,
    NODE_PACK,
    ORDER_DECREASING,
    ORDER_FILL,
    PLACED,
    POLICY_BALANCED,
    POLICY_BEST_FIT,
    POLICY_DOT_PRODUCT,
    POLICY_FIRST_FIT,
    POLICY_WORST_FIT,
    REASON_CONSTRAINT,
    REASON_NO_CPU,
    REASON_NO_MEMORY,
    REASON_NO_NUMA_FIT,
    REASON_TOO_LARGE,
)


def fx(x: int, cap: int) -> int:
    """Fixed-point fraction x / cap."""
    return (x << FIXED_SHIFT) // cap if cap > 0 else 0


def split(amount: int, width: int) -> list[int]:
    """Equal shares of ``amount`` over ``width`` nodes, remainder to the first nodes."""
    base, extra = divmod(amount, width)
    return [base + (1 if j < extra else 0) for j in range(width)]


def proportional(amount: int, avail: list[int]) -> list[int]:
    """Split ``amount`` in proportion to ``avail`` by largest remainder, ties to the lowest index.

    Requires ``0 < amount <= sum(avail)``; then no share exceeds its ``avail``.
    """
    total = sum(avail)
    shares = [amount * a // total for a in avail]
    remainders = [amount * a % total for a in avail]
    left = amount - sum(shares)
    # The `left` largest remainders get one more unit; sorted() is stable, so ties keep id order.
    for i in sorted(range(len(avail)), key=lambda i: -remainders[i])[:left]:
        shares[i] += 1
    return shares


class Host:
    """One host's capacity, free state and distances, as Python integers."""

    def __init__(self, cap_cpu, cap_mem, free_cpu, free_mem, distance, schedulable):
        self.cap_cpu = cap_cpu
        self.cap_mem = cap_mem
        self.free_cpu = free_cpu
        self.free_mem = free_mem
        self.distance = distance
        self.schedulable = schedulable
        self.present = [k for k in range(len(cap_cpu)) if cap_cpu[k] > 0 or cap_mem[k] > 0]

    def total(self, values: list[int]) -> int:
        return sum(values[k] for k in self.present)

    def set_fits(self, nodes, cpu, mem, avail_cpu, avail_mem) -> bool:
        width = len(nodes)
        return all(
            c <= avail_cpu[k] and m <= avail_mem[k]
            for k, c, m in zip(nodes, split(cpu, width), split(mem, width))
        )

    def min_nodes(self, cpu, mem):
        """Kubelet's preferred width: narrowest set that holds the equal split at capacity."""
        for width in range(1, len(self.present) + 1):
            for nodes in combinations(self.present, width):
                if self.set_fits(nodes, cpu, mem, self.cap_cpu, self.cap_mem):
                    return width
        return None

    def distance_sum(self, nodes) -> int:
        return sum(self.distance[i][j] for i in nodes for j in nodes if i != j)

    def utilisation_after(self, nodes, cpu, mem) -> int:
        width = len(nodes)
        return sum(
            fx(self.cap_cpu[k] - self.free_cpu[k] + c, self.cap_cpu[k])
            + fx(self.cap_mem[k] - self.free_mem[k] + m, self.cap_mem[k])
            for k, c, m in zip(nodes, split(cpu, width), split(mem, width))
        )

    def best_set(self, cpu, mem, width, node_choice):
        """The fitting node set of this width: nearest, then pack/spread, then lowest ids."""
        best, best_key = None, None
        for nodes in combinations(self.present, width):  # lexicographic order
            if not self.set_fits(nodes, cpu, mem, self.free_cpu, self.free_mem):
                continue
            util = self.utilisation_after(nodes, cpu, mem)
            key = (self.distance_sum(nodes), -util if node_choice == NODE_PACK else util)
            if best_key is None or key < best_key:  # strict: the earlier set wins ties
                best, best_key = nodes, key
        return best

    def allocation(self, cpu, mem, mode, node_choice):
        """Where the request would go on this host now: (width, nodes, cpu_by, mem_by) or None."""
        if mode == MODE_NONE:
            free_c = [self.free_cpu[k] for k in self.present]
            free_m = [self.free_mem[k] for k in self.present]
            if sum(free_c) < cpu or sum(free_m) < mem:
                return None
            cpu_by = dict(zip(self.present, proportional(cpu, free_c)))
            mem_by = dict(zip(self.present, proportional(mem, free_m)))
            nodes = tuple(k for k in self.present if cpu_by[k] or mem_by[k])
            return len(nodes), nodes, cpu_by, mem_by
        if mode == MODE_SINGLE:
            widths = [1]
        elif mode == MODE_RESTRICTED:
            preferred = self.min_nodes(cpu, mem)
            widths = [] if preferred is None else [preferred]
        else:  # best-effort: the narrowest width that fits now
            widths = range(1, len(self.present) + 1)
        for width in widths:
            if width > len(self.present):
                continue
            nodes = self.best_set(cpu, mem, width, node_choice)
            if nodes is not None:
                cpu_by = dict(zip(nodes, split(cpu, width)))
                mem_by = dict(zip(nodes, split(mem, width)))
                return width, nodes, cpu_by, mem_by
        return None

    def could_ever_hold(self, cpu, mem, mode) -> bool:
        if mode == MODE_NONE:
            return self.total(self.cap_cpu) >= cpu and self.total(self.cap_mem) >= mem
        if mode == MODE_SINGLE:
            return any(self.cap_cpu[k] >= cpu and self.cap_mem[k] >= mem for k in self.present)
        return self.min_nodes(cpu, mem) is not None

    def score(self, policy, cpu, mem, cpu_weight=1, mem_weight=1) -> int:
        """Host score, higher is better; only called where the request fits.

        ``cpu_weight``/``mem_weight`` weigh the CPU and memory terms (balanced ignores them).
        """
        cap_c, cap_m = self.total(self.cap_cpu), self.total(self.cap_mem)
        free_c, free_m = self.total(self.free_cpu), self.total(self.free_mem)
        wc, wm = cpu_weight, mem_weight
        if policy == POLICY_FIRST_FIT:
            return 0
        if policy == POLICY_BEST_FIT:  # least normalised room left after placing
            return (wc + wm) * FIXED_ONE - wc * fx(free_c - cpu, cap_c) - wm * fx(free_m - mem, cap_m)
        if policy == POLICY_WORST_FIT:  # most normalised room left after placing
            return wc * fx(free_c - cpu, cap_c) + wm * fx(free_m - mem, cap_m)
        if policy == POLICY_BALANCED:  # CPU and memory utilisation closest after placing
            used_c = fx(cap_c - free_c + cpu, cap_c)
            used_m = fx(cap_m - free_m + mem, cap_m)
            return FIXED_ONE - abs(used_c - used_m)
        if policy == POLICY_DOT_PRODUCT:  # request . free vector, both normalised by capacity
            return wc * fx(cpu, cap_c) * fx(free_c, cap_c) + wm * fx(mem, cap_m) * fx(free_m, cap_m)
        raise ValueError(f"unknown policy code {policy}")


def request_order(cpu, mem, priority, required, hosts, order) -> list[int]:
    """Indices in placement order.

    ``fill`` is a simulation rather than a sort key: it calls ``numasched.kernels.fill``, the
    one implementation of that order (tested there against a naive simulation), on the hosts'
    totals over their present nodes.
    """
    n = len(cpu)
    if order == ORDER_FILL:
        from .fill import fill_order

        return fill_order([h.total(h.cap_cpu) for h in hosts],
                          [h.total(h.cap_mem) for h in hosts],
                          [h.total(h.free_cpu) for h in hosts],
                          [h.total(h.free_mem) for h in hosts],
                          [h.schedulable for h in hosts], cpu, mem, priority, required).tolist()
    if order != ORDER_DECREASING:
        return list(range(n))
    largest_cpu = max((h.total(h.cap_cpu) for h in hosts), default=0)
    largest_mem = max((h.total(h.cap_mem) for h in hosts), default=0)

    def dominant_share(i):
        return max(
            fx(min(cpu[i], largest_cpu), largest_cpu), fx(min(mem[i], largest_mem), largest_mem)
        )

    return sorted(range(n), key=lambda i: (-priority[i], -dominant_share(i), i))


def pending_reason(cpu, mem, mode, required, hosts) -> int:
    """Why a request that found no host is pending: the first reason that applies."""
    if not any(h.could_ever_hold(cpu, mem, mode) for h in hosts):
        return REASON_TOO_LARGE
    if required >= 0:
        pinned = hosts[required]
        if not pinned.schedulable or not pinned.could_ever_hold(cpu, mem, mode):
            return REASON_CONSTRAINT
    eligible = [h for i, h in enumerate(hosts) if h.schedulable and required in (-1, i)]
    if not any(h.total(h.free_cpu) >= cpu for h in eligible):
        return REASON_NO_CPU
    if not any(h.total(h.free_mem) >= mem for h in eligible):
        return REASON_NO_MEMORY
    return REASON_NO_NUMA_FIT


def place_reference(cluster_arrays: dict, request_arrays: dict, policy: int, node_choice: int,
                    order: int, cpu_weight: int = 1, mem_weight: int = 1) -> dict:
    """Place every request; return host, cpu_by_node, mem_by_node, nodes, reason, free_cpu, free_mem.

    ``cluster_arrays``: node_cpu, node_mem, free_cpu, free_mem ([H, K]), distance ([D, K, K],
    D = 1 or H), schedulable ([H]). ``request_arrays``: cpu, mem, mode (resolved codes, no
    default), vnuma, priority, required_host ([N]). Nothing passed in is modified.
    """
    node_cpu = np.asarray(cluster_arrays["node_cpu"]).tolist()
    node_mem = np.asarray(cluster_arrays["node_mem"]).tolist()
    free_cpu = np.asarray(cluster_arrays["free_cpu"]).tolist()
    free_mem = np.asarray(cluster_arrays["free_mem"]).tolist()
    distance = np.asarray(cluster_arrays["distance"]).tolist()
    schedulable = [bool(s) for s in np.asarray(cluster_arrays["schedulable"]).tolist()]
    n_hosts = len(node_cpu)
    n_nodes = len(node_cpu[0]) if n_hosts else np.asarray(cluster_arrays["node_cpu"]).shape[1]
    hosts = [
        Host(node_cpu[h], node_mem[h], free_cpu[h], free_mem[h],
             distance[h] if len(distance) > 1 else distance[0], schedulable[h])
        for h in range(n_hosts)
    ]

    cpu = np.asarray(request_arrays["cpu"]).tolist()
    mem = np.asarray(request_arrays["mem"]).tolist()
    mode = np.asarray(request_arrays["mode"]).tolist()
    priority = np.asarray(request_arrays["priority"]).tolist()
    required = np.asarray(request_arrays["required_host"]).tolist()
    n = len(cpu)

    out_host = [-1] * n
    out_cpu = [[0] * n_nodes for _ in range(n)]
    out_mem = [[0] * n_nodes for _ in range(n)]
    out_nodes = [0] * n
    out_reason = [PLACED] * n

    for i in request_order(cpu, mem, priority, required, hosts, order):
        best_key, best = None, None
        for h_index, host in enumerate(hosts):
            if not host.schedulable or required[i] not in (-1, h_index):
                continue
            found = host.allocation(cpu[i], mem[i], mode[i], node_choice)
            if found is None:
                continue
            width = found[0]
            key = (width if mode[i] == MODE_BEST_EFFORT else 0,
                   -host.score(policy, cpu[i], mem[i], cpu_weight, mem_weight), h_index)
            if best_key is None or key < best_key:
                best_key, best = key, (h_index, found)
        if best is None:
            out_reason[i] = pending_reason(cpu[i], mem[i], mode[i], required[i], hosts)
            continue
        h_index, (_, nodes, cpu_by, mem_by) = best
        host = hosts[h_index]
        out_host[i] = h_index
        for k in cpu_by:
            host.free_cpu[k] -= cpu_by[k]
            host.free_mem[k] -= mem_by[k]
            out_cpu[i][k] = cpu_by[k]
            out_mem[i][k] = mem_by[k]
        out_nodes[i] = sum(1 << k for k in nodes)

    return {
        "host": np.array(out_host, dtype=np.int32),
        "cpu_by_node": np.array(out_cpu, dtype=np.int64).reshape(n, n_nodes),
        "mem_by_node": np.array(out_mem, dtype=np.int64).reshape(n, n_nodes),
        "nodes": np.array(out_nodes, dtype=np.uint64),
        "reason": np.array(out_reason, dtype=np.int8),
        "free_cpu": np.array([h.free_cpu for h in hosts], dtype=np.int64).reshape(n_hosts, n_nodes),
        "free_mem": np.array([h.free_mem for h in hosts], dtype=np.int64).reshape(n_hosts, n_nodes),
    }
