"""Rebalancing: a migration plan that improves a running placement, one feasible move at a time.

``rebalance(state, ...)`` takes what runs where now (a ``Placement``, or a cluster plus the
requests running on it and their hosts) and returns a ``Plan``: an ordered list of ``Move``s and
the metrics before and after. A move takes one request from its host to a target host (or to
other NUMA nodes of its own host); during a move both copies hold capacity (the target is
reserved before the source is released), and every move is feasible at its step: after any
prefix of the plan, counting the copies of the move under way twice, no NUMA node is over its
capacity. A move re-places its request by the placement rules of its NUMA mode (an allowed
node set and equal split, or the proportional spread of ``none``), on a schedulable host the
request may use (its ``required_host`` is kept), so a plan never breaks a mode or a pin.

Objectives (lower-is-better value in ``Plan.before["objective"]`` / ``after``):

- ``hosts``: fewer hosts in use. Hosts are emptied one at a time, emptiest first: each of its
  requests goes, largest first, to the fullest other host in use where it fits; where none has
  room, one request of a fuller host is first moved on to a third host to make room (an
  ejection chain of length one). A host is only counted when all its requests found a place
  within the move budget; otherwise its moves are undone. Hosts holding work that is not in
  the plan's request set, or a request pinned to them, are never emptied.
- ``pending``: room for a pending set (``pending=Requests``, or the placement's own pending
  requests). Each pending request, highest priority and largest first, is reserved where it
  fits; where it fits nowhere, requests are moved off the host that needs the fewest moves until
  it does. The value is minus how many of the pending set ``place()`` places after the plan.
- ``locality``: a request whose memory-weighted local fraction can rise moves to the node set
  (on its own host or another host in use) with the highest fraction. Value: minus locality.
- ``stranded``: steepest descent on stranded CPU + stranded memory (``Placement.summary()``)
  over single moves between hosts in use.

The search works in episodes (one emptied host, one pending request made room for, one move);
the objective is measured after each, and the plan is cut after the best episode (the earliest
among equals), so the value after the plan is never worse than before. ``max_moves`` bounds the
plan's length; ``effort`` bounds the search's work (fit checks, ``effort * WORK_PER_SECOND``,
as in ``refine``), so the same inputs, budget and ``seed`` give the same plan on any machine.

``evict_underused`` is the descheduler-like baseline (evict everything from the least used hosts
under a utilisation threshold and let the scheduler place it again) the tests and benchmarks
compare against.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .. import codes
from ..codes import MODE_NONE
from .refine import WORK_PER_SECOND, _Search

OBJECTIVES = ("hosts", "pending", "locality", "stranded")
EMPTY_CANDIDATES = 64     # hosts tried per emptying episode (emptiest first)
ROOM_CANDIDATES = 16      # hosts tried per pending request
EPS = 1e-12


# ---------------------------------------------------------------------------------------------
# The plan
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Move:
    """Request ``request`` goes from ``source`` (nodes ``source_nodes``) to ``target``
    (nodes ``target_nodes``, taking ``cpu_by_node`` / ``mem_by_node`` there); step ``step``
    (0-based) of the plan. ``source == target`` is a move between NUMA nodes of one host."""

    step: int
    request: int
    source: int
    target: int
    source_nodes: tuple[int, ...]
    target_nodes: tuple[int, ...]
    cpu_by_node: tuple[int, ...]
    mem_by_node: tuple[int, ...]

    def as_dict(self) -> dict:
        return {"step": self.step, "request": self.request, "source": self.source,
                "target": self.target, "source_nodes": list(self.source_nodes),
                "target_nodes": list(self.target_nodes), "cpu_by_node": list(self.cpu_by_node),
                "mem_by_node": list(self.mem_by_node)}


@dataclass(frozen=True, eq=False)
class Plan:
    """A migration plan. ``moves`` in order; ``before`` / ``after``: ``Placement.summary()`` plus
    ``"objective"`` (the objective's value, lower is better) and, with a pending set,
    ``"pending_placeable"``; ``initial`` / ``final``: the placements before and after."""

    objective: str
    moves: tuple[Move, ...]
    before: dict
    after: dict
    initial: object
    final: object
    seed: int = 0
    notes: tuple[str, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.moves)

    @property
    def improved(self) -> bool:
        return self.after["objective"] < self.before["objective"]

    def as_dict(self) -> dict:
        return {"objective": self.objective, "moves": [m.as_dict() for m in self.moves],
                "before": self.before, "after": self.after, "seed": self.seed,
                "notes": list(self.notes)}

    def __repr__(self) -> str:
        return (f"Plan(objective={self.objective!r}, moves={len(self.moves)}, "
                f"{self.before['objective']:g} -> {self.after['objective']:g})")


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------
def running_state(cluster, requests, host, cpu_by_node=None, mem_by_node=None, *,
                  policy="best-fit", numa: str = "restricted", node: str = "pack"):
    """A ``Placement`` of ``requests`` running on ``cluster`` at hosts ``host[i]``.

    ``cluster`` is the pool *without* these requests (its free state counts only other work,
    as for ``place()``). ``cpu_by_node`` / ``mem_by_node`` ``[N, K]`` are what each request
    holds on each node of its host; when omitted, each request is placed on its own host by the
    placement rules (``required_host = host``, decreasing order). Every request must run on a
    host (>= 0); ``ValueError`` names the first that does not, does not fit, or disagrees.
    """
    from ..api import Cluster, Placement, Requests, new_outputs, place, request_modes
    from .. import policies
    from .._validate import int_array, same_length

    if not isinstance(cluster, Cluster):
        raise ValueError(f"cluster must be a numasched.Cluster, got {type(cluster).__name__}")
    if not isinstance(requests, Requests):
        raise ValueError(f"requests must be a numasched.Requests, got {type(requests).__name__}")
    n, n_hosts, n_nodes = len(requests), cluster.hosts, cluster.nodes
    host = int_array(host, "host", ndim=1, lo=0, hi=max(n_hosts - 1, 0), dtype=np.int32)
    same_length("host", host, n, "cpu")
    if n and n_hosts == 0:
        raise ValueError("host: the cluster has no hosts")
    pinned = (requests.required_host >= 0) & (requests.required_host != host)
    if pinned.any():
        i = int(np.argmax(pinned))
        raise ValueError(f"host[{i}] = {host[i]}, but request {i} requires host "
                         f"{requests.required_host[i]}")
    compiled = policies.get(policy).compile(numa=numa, node=node, order="decreasing")
    modes = request_modes(cluster, requests, compiled.numa)
    if (cpu_by_node is None) != (mem_by_node is None):
        raise ValueError("cpu_by_node and mem_by_node must be given together")
    if cpu_by_node is None:
        pinned_requests = Requests(requests.cpu, requests.mem, numa=modes, vnuma=requests.vnuma,
                                   priority=requests.priority, required_host=host)
        p = place(cluster, pinned_requests, policy=policy, numa=numa, node=node)
        if (p.host < 0).any():
            i = int(np.argmax(p.host < 0))
            raise ValueError(f"host[{i}] = {host[i]}: request {i} does not fit there "
                             f"({codes.REASONS[int(p.reason[i])]})")
        arrays = {name: np.array(getattr(p, name)) for name in
                  ("host", "cpu_by_node", "mem_by_node", "nodes", "reason", "free_cpu", "free_mem")}
    else:
        arrays = new_outputs(cluster, n)
        for name, value, amount in (("cpu_by_node", cpu_by_node, requests.cpu),
                                    ("mem_by_node", mem_by_node, requests.mem)):
            rows = int_array(value, name, ndim=2, lo=0)
            if rows.shape != (n, n_nodes):
                raise ValueError(f"{name} must have shape ({n}, {n_nodes}), got {rows.shape}")
            bad = rows.sum(axis=1) != amount
            if bad.any():
                i = int(np.argmax(bad))
                raise ValueError(f"{name}[{i}] sums to {int(rows[i].sum())}, but request {i} "
                                 f"asks for {int(amount[i])}")
            absent = (rows > 0) & ~cluster.present[host]
            if absent.any():
                i, k = map(int, np.argwhere(absent)[0])
                raise ValueError(f"{name}[{i}, {k}] > 0, but node {k} of host {host[i]} is absent")
            arrays[name] = rows
        arrays["host"] = host
        arrays["nodes"] = ((arrays["cpu_by_node"] > 0) | (arrays["mem_by_node"] > 0)).astype(
            np.uint64) @ (np.uint64(1) << np.arange(n_nodes, dtype=np.uint64)) if n else \
            np.zeros(0, dtype=np.uint64)
        for free_name, rows_name in (("free_cpu", "cpu_by_node"), ("free_mem", "mem_by_node")):
            taken = np.zeros((n_hosts, n_nodes), dtype=np.int64)
            np.add.at(taken, host, arrays[rows_name])
            free = arrays[free_name] - taken
            if (free < 0).any():
                h, k = map(int, np.argwhere(free < 0)[0])
                raise ValueError(f"{rows_name}: node {k} of host {h} is over its capacity by "
                                 f"{int(-free[h, k])}")
            arrays[free_name] = free
    settings = {"policy": policies.get(policy).name, "numa": numa, "order": "decreasing",
                "node": codes.name_of(codes.NODE_CHOICES, compiled.node),
                "weights": (compiled.cpu_weight, compiled.mem_weight), "backend": "given",
                "refine": 0.0, "seed": 0}
    return Placement(cluster, requests, arrays, settings, modes)


def _copy_arrays(placement) -> dict:
    return {name: np.array(getattr(placement, name)) for name in
            ("host", "cpu_by_node", "mem_by_node", "nodes", "reason", "free_cpu", "free_mem")}


def _placement_like(placement, arrays: dict):
    from ..api import Placement

    return Placement(placement.cluster, placement.requests,
                     {k: np.array(v) for k, v in arrays.items()}, dict(placement.settings),
                     placement.modes)


def apply_moves(placement, moves):
    """The placement after ``moves`` (``Move`` records, in order), checking each step.

    Raises ``ValueError`` naming the step when a move does not start where its request is, breaks
    a pin or an unschedulable target, or, counting both copies during the move, puts a NUMA node
    over its capacity. The input placement is not changed.
    """
    arrays = _copy_arrays(placement)
    cluster, requests = placement.cluster, placement.requests
    for m in moves:
        i, src, dst = m.request, m.source, m.target
        if not 0 <= i < len(requests) or int(arrays["host"][i]) != src:
            raise ValueError(f"step {m.step}: request {i} is not on host {src}")
        if not cluster.schedulable[dst] and dst != src:
            raise ValueError(f"step {m.step}: host {dst} is not schedulable")
        if requests.required_host[i] not in (-1, dst):
            raise ValueError(f"step {m.step}: request {i} is pinned to host "
                             f"{requests.required_host[i]}")
        rows_c = np.array(m.cpu_by_node, dtype=np.int64)
        rows_m = np.array(m.mem_by_node, dtype=np.int64)
        if rows_c.sum() != requests.cpu[i] or rows_m.sum() != requests.mem[i]:
            raise ValueError(f"step {m.step}: the target shares do not add up to request {i}")
        # Both copies: the target's shares come out of the free state before the source returns.
        arrays["free_cpu"][dst] -= rows_c
        arrays["free_mem"][dst] -= rows_m
        if (arrays["free_cpu"][dst] < 0).any() or (arrays["free_mem"][dst] < 0).any():
            raise ValueError(f"step {m.step}: host {dst} is over capacity during the move of "
                             f"request {i}")
        arrays["free_cpu"][src] += arrays["cpu_by_node"][i]
        arrays["free_mem"][src] += arrays["mem_by_node"][i]
        arrays["cpu_by_node"][i] = rows_c
        arrays["mem_by_node"][i] = rows_m
        arrays["nodes"][i] = np.uint64(sum(1 << k for k in m.target_nodes))
        arrays["host"][i] = dst
    return _placement_like(placement, arrays)


# ---------------------------------------------------------------------------------------------
# The search
# ---------------------------------------------------------------------------------------------
def _mask_nodes(mask) -> tuple[int, ...]:
    mask = int(mask)
    return tuple(k for k in range(64) if mask >> k & 1)


class _Planner(_Search):
    """``refine``'s mutable state plus the moves made, grouped in episodes."""

    def __init__(self, placement, requests, modes, arrays, budget, seed, n_movable):
        node_choice = codes.NODE_CHOICES[placement.settings["node"]]
        super().__init__(placement.cluster, requests, modes, node_choice, arrays, budget, seed)
        self.n_movable = n_movable                 # requests >= n_movable are reservations
        self.vnuma = requests.vnuma.tolist()
        self.moves: list[Move] = []
        self.episodes: list[int] = []              # number of moves at the end of each episode
        self.values: list[float] = []              # objective value after each episode
        self.move_budget = 0
        self.group = None                          # group id per request (-1: none), or None
        self.group_cap: list[int] = []             # moves allowed per group
        self.group_moved: list[int] = []
        n_hosts = placement.cluster.hosts
        self.pinned_on = [False] * n_hosts
        for i, h in enumerate(self.host.tolist()):
            if h >= 0 and self.required[i] == h:
                self.pinned_on[h] = True

    # -- moves -------------------------------------------------------------------------------
    def moves_left(self) -> int:
        return self.move_budget - len(self.moves)

    def group_allows(self, i) -> bool:
        g = self.group[i] if self.group is not None else -1
        return g < 0 or self.group_moved[g] < self.group_cap[g]

    def movable(self, i) -> bool:
        """May request i change host: not a reservation, not pinned, its group not at its cap."""
        return i < self.n_movable and self.required[i] < 0 and self.group_allows(i)

    def move(self, i, target, found) -> None:
        """Move request i to ``target`` with the allocation ``found`` (computed while i was still
        on its source: both copies counted)."""
        source = int(self.host[i])
        source_nodes = _mask_nodes(self.nodes[i])
        self.remove(i)
        self.insert(i, target, found)
        rows_c, rows_m, mask, _ = found
        self.moves.append(Move(len(self.moves), i, source, target, source_nodes,
                               _mask_nodes(mask), tuple(int(x) for x in rows_c),
                               tuple(int(x) for x in rows_m)))
        if self.group is not None and self.group[i] >= 0:
            self.group_moved[self.group[i]] += 1

    def undo_moves(self, log_mark, moves_mark) -> None:
        self.undo_to(log_mark)
        if self.group is not None:
            for m in self.moves[moves_mark:]:
                if self.group[m.request] >= 0:
                    self.group_moved[self.group[m.request]] -= 1
        del self.moves[moves_mark:]

    def end_episode(self, value: float) -> None:
        self.log.clear()
        self.episodes.append(len(self.moves))
        self.values.append(value)

    def in_use(self, h) -> bool:
        return bool(self.items[h]) or self.foreign[h]

    def hosts_in_use(self) -> list[int]:
        return [h for h in range(len(self.items)) if self.in_use(h)]

    def free_total(self, h) -> tuple[float, float]:
        return self.cap_c_tot[h] - self.used_c[h], self.cap_m_tot[h] - self.used_m[h]

    def fits_totals(self, i, h) -> bool:
        fc, fm = self.free_total(h)
        return self.sched[h] and self.required[i] in (-1, h) and fc >= self.cpu[i] \
            and fm >= self.mem[i]

    def size(self, i) -> float:
        return self.cpu[i] / self.max_c + self.mem[i] / self.max_m

    def best_target(self, i, hosts, exclude=()) -> tuple[int, object]:
        """The fullest host of ``hosts`` (not in ``exclude``, not i's own) where i fits now."""
        own = int(self.host[i])
        order = sorted((h for h in hosts if h != own and h not in exclude
                        and self.fits_totals(i, h)), key=lambda h: (-self.load(h), h))
        for h in order:
            if self.out_of_budget():
                break
            found = self.allocation(i, h)
            if found is not None:
                return h, found
        return -1, None

    # -- hosts ------------------------------------------------------------------------------
    def empty_hosts(self) -> None:
        failed: set[int] = set()
        while self.moves_left() > 0 and not self.out_of_budget():
            used = self.hosts_in_use()
            candidates = [h for h in used if not self.foreign[h] and not self.pinned_on[h]
                          and h not in failed and len(self.items[h]) <= self.moves_left()
                          and all(self.movable(i) for i in self.items[h])]
            candidates = sorted(candidates, key=lambda h: (self.load(h), h))[:EMPTY_CANDIDATES]
            done = False
            for h in candidates:
                if self.out_of_budget():
                    break
                log_mark, moves_mark = len(self.log), len(self.moves)
                if self.evacuate(h, used):
                    self.end_episode(float(len(self.hosts_in_use())))
                    done = True
                    break
                self.undo_moves(log_mark, moves_mark)
                failed.add(h)
            if not done:
                return

    def evacuate(self, h, used) -> bool:
        """Move every request off host h onto other hosts in use, within the move budget."""
        targets = [g for g in used if g != h]
        for i in sorted(self.items[h], key=lambda i: (-self.size(i), i)):
            if self.moves_left() <= 0 or not self.movable(i):
                return False
            g, found = self.best_target(i, targets)
            if g >= 0:
                self.move(i, g, found)
                continue
            if self.moves_left() < 2 or not self.eject_for(i, targets, h):
                return False
        return not self.items[h]

    def eject_for(self, i, targets, h) -> bool:
        """Move one request y of a host g to a third host so that i then fits g; then move i."""
        for g in sorted(targets, key=lambda g: (-self.load(g), g)):
            if not self.sched[g] or self.required[i] not in (-1, g):
                continue
            for y in sorted(self.items[g], key=lambda y: (self.size(y), y)):
                if self.out_of_budget():
                    return False
                if not self.movable(y):
                    continue
                fc, fm = self.free_total(g)
                if fc + self.cpu[y] < self.cpu[i] or fm + self.mem[y] < self.mem[i]:
                    continue
                g2, found = self.best_target(y, targets, exclude=(g,))
                if g2 < 0:
                    continue
                log_mark, moves_mark = len(self.log), len(self.moves)
                self.move(y, g2, found)
                found_i = self.allocation(i, g)
                if found_i is not None:
                    self.move(i, g, found_i)
                    return True
                self.undo_moves(log_mark, moves_mark)
        return False

    # -- pending ----------------------------------------------------------------------------
    def make_room(self, pending_ids, value_of) -> None:
        """Reserve each pending request where it fits, or move requests to make it fit."""
        n_hosts = len(self.items)
        for p in pending_ids:
            if self.out_of_budget():
                return
            g, found = self.best_target(p, range(n_hosts))
            if g >= 0:
                self.insert(p, g, found)
                self.log.clear()
                continue
            if self.moves_left() <= 0:
                continue
            best = None
            hosts = [h for h in range(n_hosts) if self.sched[h] and self.required[p] in (-1, h)]
            hosts.sort(key=lambda h: (-self.room_if_cleared(p, h), h))
            for h in hosts[:ROOM_CANDIDATES]:
                log_mark, moves_mark = len(self.log), len(self.moves)
                if self.clear_for(p, h, best):
                    cost = len(self.moves) - moves_mark
                    if best is None or cost < best[0]:
                        best = (cost, h)
                self.undo_moves(log_mark, moves_mark)
                if best is not None and best[0] == 1:
                    break
            if best is None:
                continue
            log_mark, moves_mark = len(self.log), len(self.moves)
            if self.clear_for(p, best[1], None):
                found = self.allocation(p, best[1])
                self.insert(p, best[1], found)
                self.end_episode(value_of(self))
            else:   # cannot happen: the same deterministic steps succeeded a moment ago
                self.undo_moves(log_mark, moves_mark)

    def room_if_cleared(self, p, h) -> float:
        """How much of p's dominant share host h could hold if its movable requests left."""
        fc, fm = self.free_total(h)
        movable_c = sum(self.cpu[i] for i in self.items[h] if self.movable(i))
        movable_m = sum(self.mem[i] for i in self.items[h] if self.movable(i))
        return min((fc + movable_c) / self.cpu[p], (fm + movable_m) / self.mem[p])

    def clear_for(self, p, h, best) -> bool:
        """Move requests off h (largest that can go first) until p fits h; True if it does."""
        limit = self.moves_left() if best is None else min(self.moves_left(), best[0] - 1)
        made = 0
        hosts = range(len(self.items))
        while not self.out_of_budget():
            if self.allocation(p, h) is not None:
                return True
            if made >= limit:
                return False
            for i in sorted(self.items[h], key=lambda i: (-self.size(i), i)):
                if not self.movable(i):
                    continue
                g, found = self.best_target(i, [g for g in hosts if self.in_use(g)], exclude=(h,))
                if g < 0:
                    g, found = self.best_target(i, hosts, exclude=(h,))
                if g >= 0:
                    self.move(i, g, found)
                    made += 1
                    break
            else:
                return False
        return False

    # -- locality ---------------------------------------------------------------------------
    def local_fraction(self, i, rows_c, rows_m) -> float:
        if self.vnuma[i] and self.modes[i] != MODE_NONE:
            return 1.0
        c, m = float(self.cpu[i]), float(self.mem[i])
        return float(np.dot(rows_c.astype(np.float64), rows_m.astype(np.float64))) / (c * m)

    def improve_locality(self, value_of) -> None:
        order = sorted((i for i in range(self.n_movable) if self.host[i] >= 0),
                       key=lambda i: (-self.mem[i], i))
        for i in order:
            if self.moves_left() <= 0 or self.out_of_budget():
                return
            now = self.local_fraction(i, self.alloc_c[i], self.alloc_m[i])
            if now >= 1.0 - EPS or not self.group_allows(i):
                continue
            own = int(self.host[i])
            best = (now + 1e-9, -1, None)
            candidates = [own] + ([] if self.required[i] >= 0 else
                                  [g for g in self.hosts_in_use() if g != own])
            for g in candidates:
                if self.out_of_budget():
                    break
                if g != own and not self.fits_totals(i, g):
                    continue
                found = self.allocation(i, g)
                if found is None:
                    continue
                frac = self.local_fraction(i, found[0], found[1])
                if frac > best[0]:
                    best = (frac, g, found)
                    if frac >= 1.0 - EPS:
                        break
            if best[1] >= 0:
                self.move(i, best[1], best[2])
                self.end_episode(value_of(self))

    # -- stranded ---------------------------------------------------------------------------
    def stranded_terms(self, h, dc=0, dm=0) -> tuple[float, float]:
        """(stranded CPU, stranded memory) of host h with (dc, dm) more in use."""
        cc, cm = self.cap_c_tot[h], self.cap_m_tot[h]
        fc = cc - self.used_c[h] - dc
        fm = cm - self.used_m[h] - dm
        sc = max(0.0, fc - (fm * cc / cm if cm > 0 else 0.0))
        sm = max(0.0, fm - (fc * cm / cc if cc > 0 else 0.0))
        return sc, sm

    def stranded_value(self) -> float:
        used = self.hosts_in_use()
        sc = sm = cc = cm = 0.0
        for h in used:
            a, b = self.stranded_terms(h)
            sc, sm, cc, cm = sc + a, sm + b, cc + self.cap_c_tot[h], cm + self.cap_m_tot[h]
        return (sc / cc if cc else 0.0) + (sm / cm if cm else 0.0)

    def reduce_stranded(self) -> None:
        while self.moves_left() > 0 and not self.out_of_budget():
            used = self.hosts_in_use()
            terms = {h: self.stranded_terms(h) for h in used}
            sc = sum(t[0] for t in terms.values())
            sm = sum(t[1] for t in terms.values())
            cc = sum(self.cap_c_tot[h] for h in used)
            cm = sum(self.cap_m_tot[h] for h in used)
            base = (sc / cc if cc else 0.0) + (sm / cm if cm else 0.0)
            options = []
            for a in used:
                for i in self.items[a]:
                    if not self.movable(i):
                        continue
                    for b in used:
                        self.work += 1
                        if b == a or not self.fits_totals(i, b):
                            continue
                        ta = self.stranded_terms(a, -self.cpu[i], -self.mem[i])
                        tb = self.stranded_terms(b, self.cpu[i], self.mem[i])
                        nsc = sc - terms[a][0] - terms[b][0] + tb[0]
                        nsm = sm - terms[a][1] - terms[b][1] + tb[1]
                        ncc, ncm = cc, cm
                        if len(self.items[a]) == 1 and not self.foreign[a]:
                            ncc, ncm = cc - self.cap_c_tot[a], cm - self.cap_m_tot[a]
                        else:
                            nsc += ta[0]
                            nsm += ta[1]
                        value = (nsc / ncc if ncc else 0.0) + (nsm / ncm if ncm else 0.0)
                        if value < base - 1e-9:
                            options.append((value, i, b))
                if self.out_of_budget():
                    break
            options.sort()
            moved = False
            for value, i, b in options[:32]:
                found = self.allocation(i, b)
                if found is not None:
                    self.move(i, b, found)
                    self.end_episode(self.stranded_value())
                    moved = True
                    break
            if not moved:
                return


# ---------------------------------------------------------------------------------------------
# The entry point
# ---------------------------------------------------------------------------------------------
def _check_int(value, name: str, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise ValueError(f"{name} must be an integer >= {lo}, got {value!r}")
    return int(value)


def _pending_count(placement_state, pending, pending_modes, policy, numa, node) -> int:
    """How many of ``pending`` ``place()`` places on the free state of ``placement_state``."""
    from ..api import Requests, place

    if pending is None or len(pending) == 0:
        return 0
    cluster = placement_state.cluster.with_free(placement_state.free_cpu, placement_state.free_mem)
    sub = Requests(pending.cpu, pending.mem, numa=pending_modes, vnuma=pending.vnuma,
                   priority=pending.priority, required_host=pending.required_host)
    return int((place(cluster, sub, policy=policy, numa=numa, node=node).host >= 0).sum())


def _metrics(placement, objective, pending, pending_modes, policy, numa, node) -> dict:
    s = placement.summary()
    if pending is not None:
        s["pending_placeable"] = _pending_count(placement, pending, pending_modes, policy, numa, node)
    s["objective"] = _objective_value(s, objective)
    return s


def _objective_value(s: dict, objective: str) -> float:
    if objective == "hosts":
        return float(s["hosts_used"])
    if objective == "pending":
        return 0.0 - s["pending_placeable"]
    if objective == "locality":
        return 0.0 - s["locality"]
    return float(s["stranded_cpu"] + s["stranded_mem"])


def rebalance(state, requests=None, *, host=None, cpu_by_node=None, mem_by_node=None,
              objective: str = "hosts", max_moves: int = 10, pending=None, policy=None,
              numa: str | None = None, node: str | None = None, effort: float = 1.0,
              seed: int = 0, groups=None, group_moves=None) -> Plan:
    """A migration plan of at most ``max_moves`` moves that improves ``objective``.

    ``state`` is a ``Placement`` (what ``place()`` returned, or any placement of the same shape),
    or a ``Cluster`` with ``requests`` running at ``host`` (see ``running_state``; the cluster's
    free state excludes them). ``objective`` is ``hosts``, ``pending``, ``locality`` or
    ``stranded`` (module docstring); ``pending`` is the pending set (a ``Requests``) for the
    ``pending`` objective, by default the placement's own pending requests. ``policy``, ``numa``
    and ``node`` default to the placement's settings (for a cluster: best-fit, restricted, pack):
    ``node`` chooses among equal node sets on a move, the three decide how the pending set is
    counted. ``effort`` bounds the search's work like ``place(refine=...)``'s seconds; with the
    same inputs, ``effort`` and ``seed`` the plan is the same on every machine. ``groups[i]``
    (int, -1 = none) puts request i in a group of which at most ``group_moves[g]`` requests move
    in the plan (a Deployment's ``maxUnavailable``).

    Every move is feasible at its step with both copies counted, keeps its request's NUMA mode
    and required host, and targets a schedulable host; the objective after the plan is never
    worse than before. Neither the state nor the requests are changed.
    """
    from ..api import Cluster, Placement, Requests
    from .. import policies

    if isinstance(state, Placement):
        if requests is not None or host is not None or cpu_by_node is not None:
            raise ValueError("with a Placement, pass neither requests nor host nor cpu_by_node")
        placement = state
    elif isinstance(state, Cluster):
        if requests is None or host is None:
            raise ValueError("with a Cluster, pass requests= and host= (where each runs now)")
        placement = running_state(state, requests, host, cpu_by_node, mem_by_node,
                                  policy=policy or "best-fit", numa=numa or "restricted",
                                  node=node or "pack")
    else:
        raise ValueError(f"state must be a numasched.Placement or Cluster, got "
                         f"{type(state).__name__}")
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; known: "
                         + ", ".join(repr(o) for o in OBJECTIVES))
    max_moves = _check_int(max_moves, "max_moves", 0)
    seed = _check_int(seed, "seed", 0)
    if isinstance(effort, bool) or not isinstance(effort, (int, float)) or not math.isfinite(effort) \
            or effort < 0:
        raise ValueError(f"effort must be a non-negative number, got {effort!r}")
    policy = policy if policy is not None else placement.settings.get("policy", "best-fit")
    numa = numa if numa is not None else placement.settings.get("numa", "restricted")
    node = node if node is not None else placement.settings.get("node", "pack")
    compiled = policies.get(policy).compile(numa=numa, node=node, order="decreasing")
    if compiled.node != codes.NODE_CHOICES[placement.settings.get("node", "pack")]:
        placement = _placement_like(placement, _copy_arrays(placement))
        placement.settings["node"] = codes.name_of(codes.NODE_CHOICES, compiled.node)

    pending_modes = None
    if objective == "pending":
        if pending is None:
            own = np.flatnonzero(placement.host < 0)
            r = placement.requests
            pending = Requests(r.cpu[own], r.mem[own], numa=placement.modes[own],
                               vnuma=r.vnuma[own], priority=r.priority[own],
                               required_host=r.required_host[own])
        elif not isinstance(pending, Requests):
            raise ValueError(f"pending must be a numasched.Requests, got {type(pending).__name__}")
        from ..api import request_modes
        pending_modes = request_modes(placement.cluster, pending, compiled.numa)
    elif pending is not None:
        raise ValueError(f"pending is only used by objective 'pending', not {objective!r}")

    groups, group_moves = _check_groups(groups, group_moves, len(placement.requests))
    before = _metrics(placement, objective, pending, pending_modes, policy, numa, node)
    moves: list[Move] = []
    notes: list[str] = []
    if max_moves and effort:
        moves = _search(placement, objective, max_moves, pending, pending_modes, effort, seed,
                        (policy, numa, node), before["objective"], groups, group_moves)
    final = apply_moves(placement, moves)
    after = _metrics(final, objective, pending, pending_modes, policy, numa, node)
    if after["objective"] > before["objective"]:   # the cut below makes this impossible
        raise AssertionError("rebalance made the objective worse")
    if not moves:
        notes.append("no move improves the objective within the budget")
    return Plan(objective, tuple(moves), before, after, placement, final, seed, tuple(notes))


def _check_groups(groups, group_moves, n):
    from .._validate import int_array, same_length

    if groups is None and group_moves is None:
        return None, None
    if groups is None or group_moves is None:
        raise ValueError("groups and group_moves must be given together")
    groups = int_array(groups, "groups", ndim=1, lo=-1)
    same_length("groups", groups, n, "requests")
    group_moves = int_array(group_moves, "group_moves", ndim=1, lo=0)
    if groups.size and groups.max() >= group_moves.size:
        raise ValueError(f"groups names group {int(groups.max())}, but group_moves has "
                         f"{group_moves.size} entries")
    return groups, group_moves


def _search(placement, objective, max_moves, pending, pending_modes, effort, seed, call,
            value_before, groups=None, group_moves=None) -> list[Move]:
    from ..api import Requests

    r = placement.requests
    n = len(r)
    arrays = _copy_arrays(placement)
    modes = np.array(placement.modes)
    requests = r
    if objective == "pending" and pending is not None and len(pending):
        # Reservations for the pending set ride along as extra requests that never move.
        requests = Requests(np.concatenate([r.cpu, pending.cpu]), np.concatenate([r.mem, pending.mem]),
                            vnuma=np.concatenate([r.vnuma, pending.vnuma]),
                            priority=np.concatenate([r.priority, pending.priority]),
                            required_host=np.concatenate([r.required_host, pending.required_host]))
        modes = np.concatenate([modes, pending_modes]).astype(np.int8)
        k = len(pending)
        for name in ("host", "cpu_by_node", "mem_by_node", "nodes", "reason"):
            extra = np.zeros((k,) + arrays[name].shape[1:], dtype=arrays[name].dtype)
            if name == "host":
                extra[:] = -1
            arrays[name] = np.concatenate([arrays[name], extra])
    planner = _Planner(placement, requests, modes, arrays, int(effort * WORK_PER_SECOND), seed, n)
    planner.move_budget = max_moves
    if groups is not None:
        planner.group = groups.tolist() + [-1] * (len(requests) - n)
        planner.group_cap = group_moves.tolist()
        planner.group_moved = [0] * len(planner.group_cap)
    c = placement.cluster
    planner.max_c = float(max(c.node_cpu.sum(axis=1).max(), 1)) if c.hosts else 1.0
    planner.max_m = float(max(c.node_mem.sum(axis=1).max(), 1)) if c.hosts else 1.0

    def current() -> object:
        view = {name: arrays[name][:n] for name in ("host", "cpu_by_node", "mem_by_node", "nodes",
                                                    "reason")}
        free_c, free_m = arrays["free_cpu"].copy(), arrays["free_mem"].copy()
        for p in range(n, len(requests)):   # take the reservations back out
            h = int(arrays["host"][p])
            if h >= 0:
                free_c[h] += arrays["cpu_by_node"][p]
                free_m[h] += arrays["mem_by_node"][p]
        view.update(free_cpu=free_c, free_mem=free_m)
        return _placement_like(placement, view)

    if objective == "hosts":
        planner.empty_hosts()
    elif objective == "pending":
        policy, numa, node = call
        order = sorted(range(n, len(requests)),
                       key=lambda p: (-int(requests.priority[p]), -planner.size(p), p))
        planner.make_room(order, lambda _: -float(
            _pending_count(current(), pending, pending_modes, policy, numa, node)))
    elif objective == "locality":
        from ..evaluation.metrics import locality

        planner.improve_locality(lambda _: -float(locality(current())[2] or 0.0))
    else:
        planner.reduce_stranded()

    # Keep the prefix of episodes with the best value (the earliest among equals).
    best_value, best_end = value_before, 0
    for end, value in zip(planner.episodes, planner.values):
        if value < best_value - EPS:
            best_value, best_end = value, end
    return planner.moves[:best_end]


def evict_underused(placement, *, threshold: float = 0.5, max_moves: int = 10, policy=None,
                    numa: str | None = None, node: str | None = None):
    """The descheduler-like baseline: evict every request of the least used hosts whose
    utilisation (the larger of CPU and memory in use over capacity) is under ``threshold``, up
    to ``max_moves`` evictions (whole hosts, least used first), then let the scheduler place the
    evicted requests again with ``policy`` on what is left (their old hosts included, as a
    descheduler does not cordon). Returns ``(placement after, evicted request indices)``; an
    evicted request that fits nowhere is pending afterwards. Pinned requests are never evicted.
    """
    from ..api import Requests, place

    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be within [0, 1], got {threshold!r}")
    max_moves = _check_int(max_moves, "max_moves", 0)
    policy = policy if policy is not None else placement.settings.get("policy", "best-fit")
    numa = numa if numa is not None else placement.settings.get("numa", "restricted")
    node = node if node is not None else placement.settings.get("node", "pack")
    c, r = placement.cluster, placement.requests
    cap_c, cap_m = c.node_cpu.sum(axis=1), c.node_mem.sum(axis=1)
    used_c = cap_c - placement.free_cpu.sum(axis=1)
    used_m = cap_m - placement.free_mem.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        util = np.maximum(np.where(cap_c > 0, used_c / cap_c, 0), np.where(cap_m > 0, used_m / cap_m, 0))
    hosts = [h for h in np.argsort(util, kind="stable").tolist()
             if (used_c[h] > 0 or used_m[h] > 0) and util[h] < threshold]
    victims: list[int] = []
    for h in hosts:
        on = np.flatnonzero((placement.host == h) & (r.required_host < 0)).tolist()
        if not on or len(victims) + len(on) > max_moves:
            continue
        victims.extend(on)
    arrays = _copy_arrays(placement)
    if not victims:
        return _placement_like(placement, arrays), np.zeros(0, dtype=np.int64)
    idx = np.array(sorted(victims), dtype=np.int64)
    for i in idx.tolist():
        h = int(arrays["host"][i])
        arrays["free_cpu"][h] += arrays["cpu_by_node"][i]
        arrays["free_mem"][h] += arrays["mem_by_node"][i]
    sub = Requests(r.cpu[idx], r.mem[idx], numa=placement.modes[idx], vnuma=r.vnuma[idx],
                   priority=r.priority[idx], required_host=r.required_host[idx])
    state = c.with_free(arrays["free_cpu"], arrays["free_mem"])
    p = place(state, sub, policy=policy, numa=numa, node=node)
    for name in ("host", "cpu_by_node", "mem_by_node", "nodes", "reason"):
        arrays[name][idx] = getattr(p, name)
    arrays["free_cpu"], arrays["free_mem"] = np.array(p.free_cpu), np.array(p.free_mem)
    return _placement_like(placement, arrays), idx


__all__ = ["rebalance", "Plan", "Move", "OBJECTIVES", "running_state", "apply_moves",
           "evict_underused"]
