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
- *Candidates* for width ``w``: present nodes holding the base share ``a // w`` in both
  resources; every member of a fitting set is one.

The node-set rule
-----------------
Which set of width ``w`` a request takes on a host (``Host.best_set``):

1. If the candidates form at most ``COMBINATION_LIMIT`` (256) sets of width ``w``, every
   fitting set is compared: lowest distance sum over ordered pairs, then the node choice
   (``pack``: highest utilisation after placing, ``spread``: lowest), then lowest ids. This is
   always the case for K <= 8 (at most C(8, 4) = 70 sets).
2. Beyond that, the host's distance *hierarchy* decides (``Host.hierarchy_set``): nodes are
   grouped by distance (single linkage: at level t, nodes joined by a chain of steps of
   distance <= t share a group), and the set minimises the sum of pairwise levels, then the
   pack/spread utilisation of the base shares, then lowest ids, found by dynamic programming
   over the groups in O(K^2). On a hierarchical (ultrametric) SLIT matrix the level of a pair
   is its distance, so the set has the lowest distance sum of all fitting sets, and it is the
   very set of step 1 whenever both remainders are zero. Only when the split's remainder units
   (which go to the lowest ids) exclude some orders does a documented fallback decide.

Whether *some* set of width ``w`` fits is decided exactly in O(K) (``Host.first_set``), so
``min_nodes``, the widths of ``restricted`` and ``best-effort`` and ``could_ever_hold`` are
exact at every K.
"""
from __future__ import annotations

from itertools import combinations
from math import comb

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


# Step 1 of the node-set rule compares every set when there are at most this many.
COMBINATION_LIMIT = 256


def n_choose(n: int, k: int) -> int:
    """The binomial coefficient C(n, k) (0 when k > n)."""
    return comb(n, k) if 0 <= k <= n else 0


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

    def candidates(self, cpu, mem, width, avail_cpu, avail_mem) -> list[int]:
        """Present nodes that hold the base share ``a // width``: every member of a fitting set."""
        return [k for k in self.present
                if avail_cpu[k] >= cpu // width and avail_mem[k] >= mem // width]

    @staticmethod
    def takes_position(k, j, cpu, mem, width, avail_cpu, avail_mem) -> bool:
        """Whether node k can hold the shares of position j (0-based, by id) of a width split."""
        return (avail_cpu[k] >= cpu // width + (1 if j < cpu % width else 0)
                and avail_mem[k] >= mem // width + (1 if j < mem % width else 0))

    def first_set(self, cpu, mem, width, avail_cpu, avail_mem):
        """The lexicographically first fitting set of ``width`` nodes, or None; O(K).

        Position j of a set asks for at least as much as position j + 1 (the remainder units go
        to the lowest ids), so taking every node, in increasing id order, that can fill the next
        open position is never worse than skipping it: if any set t_0 < t_1 < ... fits, the
        greedy's j-th pick is at most t_j. So this decides whether *some* set fits, exactly.
        """
        nodes = []
        for k in self.present:
            if len(nodes) < width and self.takes_position(k, len(nodes), cpu, mem, width,
                                                          avail_cpu, avail_mem):
                nodes.append(k)
        return tuple(nodes) if len(nodes) == width else None

    def width_lower_bound(self, cpu, mem, avail_cpu, avail_mem) -> int:
        """No set narrower than this fits: its largest share ceil(a / w) exceeds every node."""
        most_c = max((avail_cpu[k] for k in self.present), default=0)
        most_m = max((avail_mem[k] for k in self.present), default=0)
        if most_c == 0 or most_m == 0:
            return len(self.present) + 1  # every request asks for both resources
        return max(1, -(-cpu // most_c), -(-mem // most_m))

    def min_nodes(self, cpu, mem):
        """Kubelet's preferred width: narrowest set that holds the equal split at capacity."""
        start = self.width_lower_bound(cpu, mem, self.cap_cpu, self.cap_mem)
        for width in range(start, len(self.present) + 1):
            if self.first_set(cpu, mem, width, self.cap_cpu, self.cap_mem) is not None:
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
        """The fitting node set of this width that the request takes; None if none fits.

        When the fitting sets are few (at most ``COMBINATION_LIMIT`` combinations of the
        candidate nodes), every one is compared: nearest (lowest distance sum), then pack/spread
        utilisation, then lowest ids (``enumerated_best_set``). Beyond that, the node-set rule
        of the hierarchy decides (``hierarchy_set``), in time polynomial in K.
        """
        if self.first_set(cpu, mem, width, self.free_cpu, self.free_mem) is None:
            return None
        cand = self.candidates(cpu, mem, width, self.free_cpu, self.free_mem)
        if n_choose(len(cand), width) <= COMBINATION_LIMIT:
            return self.enumerated_best_set(cpu, mem, width, node_choice, cand)
        return self.hierarchy_set(cpu, mem, width, node_choice)

    def enumerated_best_set(self, cpu, mem, width, node_choice, pool=None):
        """Every fitting set compared: nearest, then pack/spread, then lowest ids (brute force).

        ``pool``: the nodes to choose from (default: all present nodes; the candidates give the
        same answer, since every member of a fitting set is one).
        """
        best, best_key = None, None
        for nodes in combinations(self.present if pool is None else pool, width):  # lex order
            if not self.set_fits(nodes, cpu, mem, self.free_cpu, self.free_mem):
                continue
            util = self.utilisation_after(nodes, cpu, mem)
            key = (self.distance_sum(nodes), -util if node_choice == NODE_PACK else util)
            if best_key is None or key < best_key:  # strict: the earlier set wins ties
                best, best_key = nodes, key
        return best

    # -- The node-set rule beyond the enumeration limit ---------------------------------------
    def merges(self):
        """The distance hierarchy as single-linkage merges: [(t, a, b)], t non-decreasing.

        Nodes i, j are at level t when a chain of present nodes joins them with every step's
        symmetric distance max(d[i][j], d[j][i]) <= t. Merging the groups of a and b at t puts
        every pair across them at ``level`` t. The groups at one level are the kubelet-like
        "nodes within distance t of each other" groups of a hierarchical SLIT (sockets of
        sub-NUMA nodes, NPS domains), and ``level(i, j) == d[i][j]`` exactly when the matrix is
        hierarchical (an ultrametric).
        """
        pairs = sorted((max(self.distance[i][j], self.distance[j][i]), i, j)
                       for i in self.present for j in self.present if i < j)
        group = {k: k for k in self.present}
        out = []
        for t, i, j in pairs:
            a, b = group[i], group[j]
            if a != b:
                out.append((t, a, b))
                for k in self.present:  # b's group joins a's
                    if group[k] == b:
                        group[k] = a
        return out

    def levels(self) -> dict:
        """The hierarchy's distance ``levels()[i, j]``: the level where i and j first meet."""
        members = {k: [k] for k in self.present}
        out = {(k, k): self.distance[k][k] for k in self.present}
        for t, a, b in self.merges():
            for i in members[a]:
                for j in members[b]:
                    out[i, j] = out[j, i] = t
            members[a] += members.pop(b)
        return out

    def base_utilisation(self, k, cpu, mem, width) -> int:
        """Node k's utilisation after taking the base share of a width split."""
        return (fx(self.cap_cpu[k] - self.free_cpu[k] + cpu // width, self.cap_cpu[k])
                + fx(self.cap_mem[k] - self.free_mem[k] + mem // width, self.cap_mem[k]))

    def hierarchy_key(self, nodes, cpu, mem, node_choice, levels=None):
        """The rule's order on sets of one width, smaller first: (level sum, pack/spread, ids).

        The utilisation term counts each node's base share (``a // width``): it does not depend
        on the node's position in the set, so the key is a sum over members and pairs. The last
        term orders sets by lowest ids first (the set holding the lowest id of the symmetric
        difference wins), written as a sum too: minus the sum of 2**(63 - k).
        """
        levels = self.levels() if levels is None else levels
        width = len(nodes)
        level_sum = sum(levels[i, j] for i in nodes for j in nodes if i != j)
        util = sum(self.base_utilisation(k, cpu, mem, width) for k in nodes)
        return (level_sum, -util if node_choice == NODE_PACK else util,
                -sum(1 << (63 - k) for k in nodes))

    def hierarchy_best(self, cpu, mem, width, node_choice, optional, forced=()):
        """The smallest set by ``hierarchy_key`` with ``width`` members, all of ``forced`` and
        the rest from ``optional``; None if there is none. Position rules are not checked here.

        Dynamic programming over the merges: a group's table maps a member count n to the best
        set of n members inside the group. Merging groups A and B at level t, a set with n_a
        members in A and n_b in B gains 2 * t * n_a * n_b in level sum (every ordered pair
        across), and the key is a sum over both parts, so the best merged set of each count is
        made of the best parts: the tables stay exact. O(K * width) table entries, O(K^2) work.
        """
        def leaf(k):
            table = {} if k in forced else {0: ((0, 0, 0), ())}
            if k in forced or k in optional:
                util = self.base_utilisation(k, cpu, mem, width)
                table[1] = ((0, -util if node_choice == NODE_PACK else util, -(1 << (63 - k))),
                            (k,))
            return table

        tables = {k: leaf(k) for k in self.present}
        for t, a, b in self.merges():
            merged = {}
            for na, (key_a, set_a) in tables[a].items():
                for nb, (key_b, set_b) in tables[b].items():
                    n = na + nb
                    if n > width:
                        continue
                    key = (key_a[0] + key_b[0] + 2 * t * na * nb, key_a[1] + key_b[1],
                           key_a[2] + key_b[2])
                    if n not in merged or key < merged[n][0]:
                        merged[n] = (key, tuple(sorted(set_a + set_b)))
            tables[a] = merged
            del tables[b]
        (root,) = tables.values()  # the merges join every present node into one group
        return root[width][1] if width in root else None

    def hierarchy_set(self, cpu, mem, width, node_choice):
        """The node-set rule beyond the enumeration limit; None if no set of width fits.

        1. The best set by ``hierarchy_key`` among all candidates; if it fits, it is the answer.
           It does whenever no candidate has exactly the base share free in a resource whose
           remainder is not zero: then every candidate can take any position of the split.
        2. Otherwise the remainder's units, which go to the lowest ids of the set, forbid some
           orders. The answer is then the best by ``hierarchy_key`` of the best sets of these
           families, each of which only holds sets that fit: (a) the candidates that can take
           any position (``strong``); (b) for each strong node s, the sets whose first
           max(remainder) members are the greedy's picks from s on (``first_set`` restricted
           to ids >= s) and whose other members are candidates above them. The greedy's own
           set is in (b), so the rule finds a set whenever one fits.
        """
        free_c, free_m = self.free_cpu, self.free_mem
        cand = self.candidates(cpu, mem, width, free_c, free_m)
        best = self.hierarchy_best(cpu, mem, width, node_choice, set(cand))
        if best is None or self.set_fits(best, cpu, mem, free_c, free_m):
            return best
        strong = [k for k in cand if self.takes_position(k, 0, cpu, mem, width, free_c, free_m)]
        options = [self.hierarchy_best(cpu, mem, width, node_choice, set(strong))]
        head_width = max(cpu % width, mem % width)
        for start in strong:
            head = []
            for k in cand:
                if k >= start and len(head) < head_width and self.takes_position(
                        k, len(head), cpu, mem, width, free_c, free_m):
                    head.append(k)
            if len(head) < head_width:
                break  # a later start finds no more
            options.append(self.hierarchy_best(cpu, mem, width, node_choice,
                                               {k for k in cand if k > head[-1]}, set(head)))
        levels = self.levels()
        return min((s for s in options if s is not None),
                   key=lambda s: self.hierarchy_key(s, cpu, mem, node_choice, levels),
                   default=None)

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
            widths = range(self.width_lower_bound(cpu, mem, self.free_cpu, self.free_mem),
                           len(self.present) + 1)
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
