"""Refinement: local search that improves a greedy batch placement (``place(..., refine=S)``).

The greedy kernel places each request once, in order; packing quality is then what the order
and the host score allow (first-fit decreasing is ~1.3 % above the optimum on Falkenauer's U
instances). Refinement moves requests after the fact, with two goals in this order:

1. **Fewer hosts.** Hill-climb on the sum over used hosts of their squared loads (CPU and
   memory utilisation, Falkenauer's fitness for grouping problems): a move that raises it takes
   work from an emptier host onto a fuller one, so slack gathers on the emptiest hosts until
   they empty. Each step draws a source host (half the time among the three least loaded, else
   any used host), a request on it and a target host, then tries the moves and exchanges of one
   or two requests on each side (a move is an exchange with nothing), largest gain first,
   keeping the first whose requests all fit by the placement rules.
   Every few dozen steps a large-neighbourhood move also tries to re-pack the requests of the
   two emptiest hosts and one random host onto the latter two (a bounded depth-first search,
   largest request first), which empties a host outright when the three fit in two.
2. **Better locality.** A ``best-effort`` request on a wider node set than it needs is moved to
   the narrowest set it fits now, on its own host or another used one.

Finally the requests that were pending get one more kernel call on the refined free state, so
a pending request still never fits anywhere in the final state.

**When the problem is bin packing** (identical, schedulable, empty hosts of one NUMA node each,
no pinned request: every NUMA mode then reduces to "the totals fit"), the two steps above are
replaced by the consistent neighbourhood search of ``numasched.optimize._cns`` (Buljubasic and
Vasquez's scheme for bin packing and two-dimensional vector packing): to go from m to m - 1
hosts it keeps m - 3, puts the requests of the three lightest in an unpacked set S, and moves
requests between hosts and S (bin refills, swaps of one or two requests, tabu rules) until S
fits into two hosts. Its budget is ``seconds * CNS_WORK_PER_SECOND`` candidate checks, and it
stops at the lower bound. With ``refine=0.25`` and ``vector-pack`` it packs 75 of the 80
Falkenauer U instances at the optimum (+0.03 % bins overall) and CT01 at +0.17 %.

Guarantees: every move re-places a request by the placement rules of its NUMA mode (equal
split over an allowed node set, or the proportional spread of ``none``), on a schedulable host
it may use, so no constraint is ever broken and no node is overcommitted; the number of hosts
in use never increases (a request only moves onto a host already in use, and a pending request
only lands on a host the greedy pass had in use). Deterministic: the budget is a count of work
units (fit checks), ``seconds * WORK_PER_SECOND``, and ties are broken by index or by a
``numpy`` generator seeded with ``seed``, so the same inputs, budget and seed give the same
placement on any machine; the wall time is about the budget on a 2-core machine of 2026.
"""
from __future__ import annotations

import heapq
import math

import numpy as np

from ..codes import MODE_BEST_EFFORT

# Calibrated on the 2-core development machine so that refine=S takes about S seconds.
WORK_PER_SECOND = 70_000
LOW_REFRESH = 32         # concentrate() re-finds the least-loaded hosts every this many steps
REPACK_MAX_REQUESTS = 16 # repack() only tries host triples holding at most this many requests
REPACK_NODES = 2000      # placements repack() tries before giving up
PAIR_LIMIT = 12          # hosts with more requests than this exchange single requests only


def budget_units(seconds) -> int:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) \
            or seconds < 0:
        raise ValueError(f"refine must be a non-negative number of seconds, got {seconds!r}")
    return int(seconds * WORK_PER_SECOND)


class _Search:
    """Mutable placement state with an undo log; every change goes through move()."""

    def __init__(self, cluster, requests, modes, node_choice, arrays, budget, seed):
        from ..kernels import placement as kernels

        self.kernels = kernels
        self.cluster = cluster
        self.cpu = requests.cpu.tolist()
        self.mem = requests.mem.tolist()
        self.modes = modes.tolist()
        self.required = requests.required_host.tolist()
        self.sched = cluster.schedulable.tolist()
        self.node_choice = node_choice
        self.host = arrays["host"]
        self.alloc_c = arrays["cpu_by_node"]
        self.alloc_m = arrays["mem_by_node"]
        self.nodes = arrays["nodes"]
        self.free_c = arrays["free_cpu"]
        self.free_m = arrays["free_mem"]
        self.cap_c_tot = cluster.node_cpu.sum(axis=1).astype(np.float64).tolist()
        self.cap_m_tot = cluster.node_mem.sum(axis=1).astype(np.float64).tolist()
        # Per-host amounts in use, kept exact by remove()/insert()/undo_to() (Python ints).
        self.used_c = (cluster.node_cpu.sum(axis=1) - self.free_c.sum(axis=1)).tolist()
        self.used_m = (cluster.node_mem.sum(axis=1) - self.free_m.sum(axis=1)).tolist()
        self._used_list = None
        n_hosts, n_nodes = cluster.node_cpu.shape
        self.items = [[] for _ in range(n_hosts)]
        for i, h in enumerate(self.host.tolist()):
            if h >= 0:
                self.items[h].append(i)
        # Hosts holding work from before this call can never be emptied by moving this batch.
        self.foreign = ((cluster.free_cpu != cluster.node_cpu).any(axis=1)
                        | (cluster.free_mem != cluster.node_mem).any(axis=1)).tolist()
        # Hosts whose only node is node 0 take the fast path (no NUMA choice to make).
        present = cluster.present
        self.one_node = (present.sum(axis=1) == 1) & present[:, 0] if n_nodes else present[:, 0]
        self.one_node = self.one_node.tolist()
        self.row_c = np.zeros((1, n_nodes), dtype=np.int64)
        self.row_m = np.zeros((1, n_nodes), dtype=np.int64)
        self.scratch = kernels.new_scratch()
        self.budget = budget
        self.work = 0
        self.log = []
        self.rng = np.random.default_rng(seed)

    # -- primitive moves ----------------------------------------------------------------------
    def allocation(self, i, h, max_width=64):
        """(rows_c, rows_m, mask, width) for request i on host h now, or None; counts one unit."""
        self.work += 1
        if not self.sched[h] or self.required[i] not in (-1, h):
            return None
        if self.one_node[h]:
            if self.free_c[h, 0] < self.cpu[i] or self.free_m[h, 0] < self.mem[i]:
                return None
            rows_c = np.zeros(self.free_c.shape[1], dtype=np.int64)
            rows_m = np.zeros(self.free_c.shape[1], dtype=np.int64)
            rows_c[0] = self.cpu[i]
            rows_m[0] = self.mem[i]
            return rows_c, rows_m, np.uint64(1), 1
        c = self.cluster
        width, mask = self.kernels.allocate_one(
            c.node_cpu, c.node_mem, c.distance, self.free_c, self.free_m, h, self.cpu[i],
            self.mem[i], self.modes[i], self.node_choice, max_width, self.row_c, self.row_m,
            self.scratch)
        if width == 0:
            return None
        return self.row_c[0].copy(), self.row_m[0].copy(), np.uint64(mask), int(width)

    def remove(self, i):
        h = int(self.host[i])
        self.log.append(("remove", i, h, self.alloc_c[i].copy(), self.alloc_m[i].copy(),
                         self.nodes[i]))
        self._detach(i, h)
        return h

    def insert(self, i, h, found):
        rows_c, rows_m, mask, _ = found
        self.log.append(("insert", i, h))
        self._attach(i, h, rows_c, rows_m, mask)

    def undo_to(self, mark):
        while len(self.log) > mark:
            entry = self.log.pop()
            if entry[0] == "insert":
                _, i, h = entry
                self._detach(i, h)
            else:
                _, i, h, rows_c, rows_m, mask = entry
                self._attach(i, h, rows_c, rows_m, mask)
                self.items[h].sort()

    def _attach(self, i, h, rows_c, rows_m, mask):
        """Put request i on host h with these per-node shares (no log entry)."""
        self.alloc_c[i] = rows_c
        self.alloc_m[i] = rows_m
        self._take(i, h, +1)
        self.nodes[i] = mask
        self.host[i] = h
        if not self.items[h]:
            self._used_list = None
        self.items[h].append(i)

    def _detach(self, i, h):
        """Take request i off host h, freeing its shares (no log entry)."""
        self._take(i, h, -1)
        self.alloc_c[i] = 0
        self.alloc_m[i] = 0
        self.nodes[i] = 0
        self.host[i] = -1
        self.items[h].remove(i)
        if not self.items[h]:
            self._used_list = None

    def _take(self, i, h, sign):
        """Apply request i's current allocation to host h: sign +1 takes it, -1 gives it back."""
        self.free_c[h] -= sign * self.alloc_c[i]
        self.free_m[h] -= sign * self.alloc_m[i]
        self.used_c[h] += sign * self.cpu[i]
        self.used_m[h] += sign * self.mem[i]

    # -- measures ------------------------------------------------------------------------------
    def load(self, h) -> float:
        """CPU plus memory utilisation of host h."""
        return self.used_c[h] / self.cap_c_tot[h] + self.used_m[h] / self.cap_m_tot[h]

    def used_hosts(self) -> list[int]:
        """Hosts holding any request of this batch, ascending (cached until one empties/fills)."""
        if self._used_list is None:
            self._used_list = [h for h, items in enumerate(self.items) if items]
        return self._used_list

    def out_of_budget(self) -> bool:
        return self.work >= self.budget

    # -- load concentration ---------------------------------------------------------------------
    def squared_load(self, h, dc=0, dm=0) -> float:
        """(CPU load)^2 + (memory load)^2 of host h with (dc, dm) more in use."""
        lc = (self.used_c[h] + dc) / self.cap_c_tot[h]
        lm = (self.used_m[h] + dm) / self.cap_m_tot[h]
        return lc * lc + lm * lm

    def concentrate(self, lower_bound: int):
        """Hill-climb on the sum of squared host loads with sampled moves and swaps.

        Raising sum(load^2) moves work from emptier hosts onto fuller ones, so slack gathers on
        the emptiest hosts until one empties (Falkenauer's fitness, climbed by local search).
        A source host is drawn among the least loaded (half the time) or uniformly, a request on
        it and a target host uniformly; the request moves there if that raises the objective,
        or else swaps with the first request there whose exchange does.
        """
        rng = self.rng
        step = 0
        low = []
        while not self.out_of_budget():
            self.work += 1
            used = self.used_hosts()
            if len(used) <= lower_bound or len(used) < 2:
                return
            if step % LOW_REFRESH == 0 or not low:
                # The few least-loaded hosts, refreshed now and then (an O(H) scan).
                self.work += len(used) // 8
                low = heapq.nsmallest(3, used, key=lambda h: (self.load(h), h))
                if not self.foreign[low[0]]:
                    # Large neighbourhood: re-pack the two emptiest hosts and a random one into two.
                    others = [h for h in used if h not in low[:2] and not self.foreign[h]]
                    if len(low) > 1 and not self.foreign[low[1]] and others:
                        pick = others[int(rng.integers(len(others)))]
                        if self.repack([low[0], low[1], pick]):
                            low = []
                            step += 1
                            continue
            step += 1
            if rng.random() < 0.5:
                a = low[int(rng.integers(len(low)))]
                if not self.items[a]:
                    low = []
                    continue
            else:
                a = used[int(rng.integers(len(used)))]
            if self.foreign[a]:
                continue
            i = self.items[a][int(rng.integers(len(self.items[a])))]
            b = used[int(rng.integers(len(used)))]
            if b == a:
                continue
            self.try_improve(i, a, b)
            self.log.clear()

    def repack(self, hosts) -> bool:
        """Try to put every request of ``hosts`` on all of them but the first (one host fewer).

        Depth-first over the requests, largest first, each onto one of the remaining hosts by
        the placement rules, with at most REPACK_NODES placements tried; on failure every move
        is undone. True if the first host was emptied.
        """
        target, keep = hosts[0], hosts[1:]
        pool = [i for h in hosts for i in self.items[h]]
        if len(pool) > REPACK_MAX_REQUESTS:
            return False
        mark = len(self.log)
        for i in pool:
            self.remove(i)
        pool.sort(key=lambda i: (-(self.cpu[i] / self.cap_c_tot[target]
                                   + self.mem[i] / self.cap_m_tot[target]), i))
        tries = [0]

        def place_from(k):
            if k == len(pool):
                return True
            i = pool[k]
            for h in keep:
                if tries[0] >= REPACK_NODES:
                    return False
                tries[0] += 1
                found = self.allocation(i, h)
                if found is None:
                    continue
                self.insert(i, h, found)
                if place_from(k + 1):
                    return True
                self.undo_to(len(self.log) - 1)
            return False

        if place_from(0):
            self.log.clear()
            return True
        self.undo_to(mark)
        return False

    def try_improve(self, i, a, b) -> bool:
        """Exchange a group of requests of host a (containing i) for a group of host b (possibly
        empty: a move), each group of one or two requests, where that raises the objective
        and both hosts still fit; the largest gain is tried first."""
        base = self.squared_load(a) + self.squared_load(b)
        out_a = [(i,)] + [(i, x) for x in self.items[a] if x != i][:PAIR_LIMIT]
        items_b = self.items[b]
        out_b = [()] + [(y,) for y in items_b]
        if len(items_b) <= PAIR_LIMIT:
            out_b += [(items_b[p], items_b[q]) for p in range(len(items_b))
                      for q in range(p + 1, len(items_b))]
        options = []
        for ga in out_a:
            ca = sum(self.cpu[x] for x in ga)
            ma = sum(self.mem[x] for x in ga)
            for gb in out_b:
                self.work += 1
                dc = sum(self.cpu[y] for y in gb) - ca
                dm = sum(self.mem[y] for y in gb) - ma
                gain = self.squared_load(a, dc, dm) + self.squared_load(b, -dc, -dm) - base
                if gain > 1e-15:
                    options.append((-gain, ga, gb))
        options.sort()
        for _, ga, gb in options:
            if self.exchange(a, ga, b, gb):
                return True
        return False

    def exchange(self, a, ga, b, gb) -> bool:
        """Move group ga from host a to b and gb from b to a, or change nothing."""
        mark = len(self.log)
        for x in ga:
            self.remove(x)
        for y in gb:
            self.remove(y)
        for group, host in ((gb, a), (ga, b)):
            for x in group:
                found = self.allocation(x, host)
                if found is None:
                    self.undo_to(mark)
                    return False
                self.insert(x, host, found)
        return True

    # -- locality ------------------------------------------------------------------------------
    def narrow(self):
        """Move best-effort requests onto narrower node sets where one fits now."""
        for i in range(len(self.cpu)):
            if self.out_of_budget():
                return
            if self.modes[i] != MODE_BEST_EFFORT or self.host[i] < 0:
                continue
            width = int(self.nodes[i]).bit_count()
            if width <= 1:
                continue
            mark = len(self.log)
            own = self.remove(i)
            best, best_found = -1, None
            for h in [own] + [g for g in self.used_hosts() if g != own]:
                found = self.allocation(i, h, max_width=width - 1)
                if found is not None and (best_found is None or found[3] < best_found[3]):
                    best, best_found = h, found
                    if found[3] == 1:
                        break
            if best < 0:
                self.undo_to(mark)
            else:
                self.insert(i, best, best_found)
                self.log.clear()


def refine(cluster, requests, modes, compiled, arrays, seconds, seed, run) -> None:
    """Improve the placement in ``arrays`` in place (see the module docstring).

    ``run`` is the backend that places the still-pending requests on the refined free state.
    """
    budget = budget_units(seconds)
    if budget == 0 or not (arrays["host"] >= 0).any():
        return
    if _is_bin_packing(cluster, requests, arrays):
        _pack_bins(cluster, requests, arrays, seconds, seed)
        pending = np.flatnonzero(arrays["host"] < 0)
        if pending.size:
            _place_pending(cluster, requests, modes, compiled, arrays, pending, run)
        return
    search = _Search(cluster, requests, modes, compiled.node, arrays, budget, seed)
    search.concentrate(_lower_bound(cluster, requests, arrays))
    search.narrow()
    pending = np.flatnonzero(arrays["host"] < 0)
    if pending.size:
        _place_pending(cluster, requests, modes, compiled, arrays, pending, run)


def _is_bin_packing(cluster, requests, arrays) -> bool:
    """Identical, schedulable, empty hosts of one NUMA node each (node 0) and no pinned request:
    then every NUMA mode reduces to "the totals fit" and the problem is vector bin packing."""
    from ..evaluation.metrics import started_empty

    c = cluster
    if c.hosts == 0 or not started_empty(c) or not c.schedulable.all():
        return False
    if (requests.required_host >= 0).any():
        return False
    if c.nodes > 1 and (c.present[:, 1:].any() or not c.present[:, 0].all()):
        return False
    return bool((c.node_cpu[:, 0] == c.node_cpu[0, 0]).all()
                and (c.node_mem[:, 0] == c.node_mem[0, 0]).all())


def _pack_bins(cluster, requests, arrays, seconds, seed) -> None:
    """Consistent neighbourhood search (``_cns``) on the placed requests; the hosts it ends
    with are the lowest-numbered of those the greedy pass used, so none is added."""
    from ._cns import CNS_WORK_PER_SECOND, cns_pack

    placed = np.flatnonzero(arrays["host"] >= 0)
    hosts_used = np.unique(arrays["host"][placed])
    remap = np.full(cluster.hosts, -1, dtype=np.int64)
    remap[hosts_used] = np.arange(hosts_used.size)
    bin_of = remap[arrays["host"][placed]]
    size = np.stack([requests.cpu[placed], requests.mem[placed]], axis=1).astype(np.int64)
    cap = np.array([cluster.node_cpu[0, 0], cluster.node_mem[0, 0]], dtype=np.int64)
    weight = size[:, 0] / cap[0] + size[:, 1] / cap[1]
    lower = _lower_bound(cluster, requests, arrays)
    m, best, _ = cns_pack(size, weight, cap, bin_of, int(hosts_used.size), int(lower),
                          int(seconds * CNS_WORK_PER_SECOND), int(seed))
    if m >= hosts_used.size:
        return
    host = hosts_used[best]
    arrays["host"][placed] = host
    arrays["cpu_by_node"][placed] = 0
    arrays["mem_by_node"][placed] = 0
    arrays["cpu_by_node"][placed, 0] = size[:, 0]
    arrays["mem_by_node"][placed, 0] = size[:, 1]
    arrays["nodes"][placed] = np.uint64(1)
    free_c = cluster.node_cpu.copy()
    free_m = cluster.node_mem.copy()
    np.subtract.at(free_c[:, 0], host, size[:, 0])
    np.subtract.at(free_m[:, 0], host, size[:, 1])
    arrays["free_cpu"][...] = free_c
    arrays["free_mem"][...] = free_m


def _lower_bound(cluster, requests, arrays) -> int:
    """Hosts any placement of the placed requests needs (0 when other work shares the hosts:
    then the hosts this pass can empty are not the hosts the bound counts)."""
    from ..evaluation.metrics import host_lower_bounds, started_empty

    if not started_empty(cluster):
        return 0
    placed = arrays["host"] >= 0
    return host_lower_bounds(cluster, requests, placed, int(requests.cpu[placed].sum()),
                             int(requests.mem[placed].sum()))[0]


def _place_pending(cluster, requests, modes, compiled, arrays, pending, run):
    from ..api import Requests, new_outputs

    sub = Requests(requests.cpu[pending], requests.mem[pending], vnuma=requests.vnuma[pending],
                   priority=requests.priority[pending],
                   required_host=requests.required_host[pending])
    state = cluster.with_free(arrays["free_cpu"], arrays["free_mem"])
    out = new_outputs(state, pending.size)
    run(state, sub, modes[pending], compiled, out)
    for name in ("host", "cpu_by_node", "mem_by_node", "nodes", "reason"):
        arrays[name][pending] = out[name]
    arrays["free_cpu"][...] = out["free_cpu"]
    arrays["free_mem"][...] = out["free_mem"]
