"""Consistent neighbourhood search for bin packing with two resources (Numba kernel).

The refinement pass calls this when the problem *is* bin packing: identical hosts of one NUMA
node each, all schedulable and empty, no pinned request (then every NUMA mode reduces to "the
totals fit"). It follows the scheme of Buljubasic and Vasquez's consistent neighbourhood search
(CNS) for one-dimensional bin packing and two-dimensional vector packing:

- Start from a feasible packing in ``m`` bins. To reach ``m - 1``, empty the lightest bin: its
  items go to a set ``S`` of unpacked items. The partial packing (``m - 1`` bins) stays
  feasible at every step ("consistent"); only ``S`` is infeasible.
- Repeatedly: put every item of ``S`` that fits a bin into the bin it fills best. When none
  fits, make the best *swap*: a subset ``q`` of ``S`` (one or two items) goes into a bin
  ``b`` and a subset ``p`` of ``b`` (none, one or two items) comes out into ``S``, such that
  ``b`` stays within capacity, chosen to lower the weight of ``S`` the most (weight: the sum of
  an item's shares of the bin's capacities), allowing a weight that stays equal or rises when
  nothing lowers it. Tabu rules keep it from cycling: an item that left bin ``b`` may not
  re-enter it, and an item that entered a bin may not leave it, for a number of iterations.
- ``S`` empty: ``m - 1`` bins reached, keep it and try for ``m - 2``. The search stops at the
  lower bound or when the work budget (swap candidates examined) is spent; the best packing
  found is returned.

Invariants: ``load[b, r] <= cap[r]`` for every bin ``b < m`` and resource ``r`` after every
step; ``bin_of[i] == -1`` exactly for the items of ``S``; ``items[b, :count[b]]`` are the items
of bin ``b``. Deterministic: ties are broken by a xorshift generator seeded with ``seed``.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..kernels import config

# Calibrated like refine.WORK_PER_SECOND: refine=S spends S * this many candidate checks here.
CNS_WORK_PER_SECOND = 80_000_000
TABU_IN = 7          # iterations an item that left a bin may not re-enter it
TABU_OUT = 3         # iterations an item that entered a bin may not leave it
MAX_ITER_PER_BIN = 20_000   # swap iterations of one attempt at a target before starting again
TWO_BIN_NODES = 2_000       # depth-first nodes of one "does S fit into two bins" check
SAMPLE_BINS = 12            # bins a refill sweep and a swap step look at, drawn at random
FILL_ITEMS = 24             # items a bin refill considers (its own, then S's)
FILL_NODES = 400            # branch-and-bound nodes of one bin refill


@njit(**config.NUMBA_JIT_KWARGS)
def _next(state):
    """xorshift64 step on state[0]; returns a non-negative int64."""
    x = state[0]
    x ^= (x << np.int64(13))
    x ^= (x >> np.int64(7)) & np.int64(0x01FFFFFFFFFFFFFF)
    x ^= (x << np.int64(17))
    state[0] = x
    return x & np.int64(0x7FFFFFFFFFFFFFFF)


@njit(**config.NUMBA_JIT_KWARGS)
def _remove_item(items, count, pos_of, bin_of, load, size, i):
    b = bin_of[i]
    p = pos_of[i]
    last = items[b, count[b] - 1]
    items[b, p] = last
    pos_of[last] = p
    count[b] -= 1
    load[b, 0] -= size[i, 0]
    load[b, 1] -= size[i, 1]
    bin_of[i] = -1
    pos_of[i] = -1


@njit(**config.NUMBA_JIT_KWARGS)
def _add_item(items, count, pos_of, bin_of, load, size, i, b):
    items[b, count[b]] = i
    pos_of[i] = count[b]
    count[b] += 1
    load[b, 0] += size[i, 0]
    load[b, 1] += size[i, 1]
    bin_of[i] = b


@njit(**config.NUMBA_INLINE_KWARGS)
def _group(size, weight, i, j):
    """(CPU, memory, weight) of item i and, when j >= 0, item j together."""
    if j < 0:
        return size[i, 0], size[i, 1], weight[i]
    return size[i, 0] + size[j, 0], size[i, 1] + size[j, 1], weight[i] + weight[j]


@njit(**config.NUMBA_JIT_KWARGS)
def _two_bins(pool, n_pool, size, weight, cap, side, limit):
    """Whether the items ``pool[:n_pool]`` fit into two bins; if so ``side[k]`` (0 or 1) says
    which bin item ``pool[k]`` goes to. Depth-first, heaviest first, at most ``limit`` nodes;
    returns (fits, nodes visited)."""
    t0 = np.int64(0)
    t1 = np.int64(0)
    for k in range(n_pool):
        t0 += size[pool[k], 0]
        t1 += size[pool[k], 1]
    if t0 > 2 * cap[0] or t1 > 2 * cap[1]:
        return False, np.int64(1)
    order = np.empty(n_pool, dtype=np.int64)
    for k in range(n_pool):
        order[k] = k
    for a in range(1, n_pool):   # insertion sort by weight, heaviest first
        x = order[a]
        b = a - 1
        while b >= 0 and weight[pool[order[b]]] < weight[pool[x]]:
            order[b + 1] = order[b]
            b -= 1
        order[b + 1] = x
    # suffix sums of what is left to place, per resource
    rest0 = np.zeros(n_pool + 1, dtype=np.int64)
    rest1 = np.zeros(n_pool + 1, dtype=np.int64)
    for k in range(n_pool - 1, -1, -1):
        rest0[k] = rest0[k + 1] + size[pool[order[k]], 0]
        rest1[k] = rest1[k + 1] + size[pool[order[k]], 1]
    load = np.zeros((2, 2), dtype=np.int64)
    choice = np.full(n_pool, -1, dtype=np.int64)
    k = 0
    nodes = np.int64(0)
    while k >= 0:
        if k == n_pool:
            for j in range(n_pool):
                side[order[j]] = choice[j]
            return True, nodes
        nodes += 1
        if nodes > limit:
            return False, nodes
        i = pool[order[k]]
        if choice[k] >= 0:   # undo the previous choice at this depth
            load[choice[k], 0] -= size[i, 0]
            load[choice[k], 1] -= size[i, 1]
        nxt = choice[k] + 1
        if k == 0 and nxt > 0:
            nxt = 2   # the first item goes to bin 0 (the bins are interchangeable)
        placed = False
        while nxt < 2:
            if load[nxt, 0] + size[i, 0] <= cap[0] and load[nxt, 1] + size[i, 1] <= cap[1]:
                placed = True
                break
            nxt += 1
        if placed:
            choice[k] = nxt
            load[nxt, 0] += size[i, 0]
            load[nxt, 1] += size[i, 1]
            room0 = 2 * cap[0] - load[0, 0] - load[1, 0]
            room1 = 2 * cap[1] - load[0, 1] - load[1, 1]
            if rest0[k + 1] <= room0 and rest1[k + 1] <= room1:
                k += 1
            # else: stay at depth k and try the next choice on the next pass
        else:
            choice[k] = -1
            k -= 1
    return False, nodes


@njit(**config.NUMBA_JIT_KWARGS)
def _best_fill(cand, n_cand, size, weight, cap, keep, limit):
    """The subset of ``cand[:n_cand]`` (sorted heaviest first) of the largest total weight that
    fits one bin: a depth-first branch and bound of at most ``limit`` nodes. Writes the choice
    into ``keep[:n_cand]`` (1 = in the bin); returns (its weight, nodes visited)."""
    rest = np.zeros(n_cand + 1)
    for k in range(n_cand - 1, -1, -1):
        rest[k] = rest[k + 1] + weight[cand[k]]
    take = np.zeros(n_cand, dtype=np.int64)
    best_w = -1.0
    l0 = np.int64(0)
    l1 = np.int64(0)
    w = 0.0
    k = 0
    nodes = np.int64(0)
    # take[k]: 0 = not decided, 1 = taken, 2 = left out (both branches tried when it is 2)
    while True:
        if k == n_cand or w + rest[k] <= best_w + 1e-12:
            if k == n_cand and w > best_w + 1e-12:
                best_w = w
                for j in range(n_cand):
                    keep[j] = 1 if take[j] == 1 else 0
            k -= 1   # backtrack to the last item with a branch left
            while k >= 0 and take[k] == 2:
                take[k] = 0
                k -= 1
            if k < 0:
                break
            # take[k] == 1: undo it and leave the item out instead
            i = cand[k]
            l0 -= size[i, 0]
            l1 -= size[i, 1]
            w -= weight[i]
            take[k] = 2
            k += 1
            continue
        nodes += 1
        if nodes > limit:
            break
        i = cand[k]
        if l0 + size[i, 0] <= cap[0] and l1 + size[i, 1] <= cap[1]:
            l0 += size[i, 0]
            l1 += size[i, 1]
            w += weight[i]
            take[k] = 1
        else:
            take[k] = 2
        k += 1
    return best_w, nodes


@njit(**config.NUMBA_JIT_KWARGS)
def cns_pack(size, weight, cap, bin_of, m, lower, budget, seed):
    """Improve the packing ``bin_of`` (bins ``0 .. m-1``) of items ``size[n, 2]`` into bins of
    ``cap[2]``; returns ``(bins, best bin_of, work done)``. ``weight[i]`` is item i's share of a
    bin (float64); ``lower`` stops the search; ``budget`` bounds the candidates examined."""
    n = size.shape[0]
    best = bin_of.copy()
    best_m = m
    if m <= lower or n == 0:
        return best_m, best, np.int64(0)
    width = 1
    counts0 = np.zeros(m, dtype=np.int64)
    for i in range(n):
        counts0[bin_of[i]] += 1
    # a bin can never hold more items than fit by the smaller of each resource's least sizes
    min0 = size[:, 0].min()
    min1 = size[:, 1].min()
    width = min(n, min(cap[0] // max(min0, 1), cap[1] // max(min1, 1)) + 1)
    items = np.full((m, width), -1, dtype=np.int64)
    count = np.zeros(m, dtype=np.int64)
    pos_of = np.full(n, -1, dtype=np.int64)
    load = np.zeros((m, 2), dtype=np.int64)
    cur = bin_of.copy()
    for i in range(n):
        _add_item(items, count, pos_of, cur, load, size, i, cur[i])
    tabu_bin = np.full(n, -1, dtype=np.int64)     # the bin item i may not re-enter ...
    tabu_until = np.zeros(n, dtype=np.int64)      # ... until this iteration
    stay_until = np.zeros(n, dtype=np.int64)      # item i may not leave its bin until then
    pool = np.empty(n, dtype=np.int64)            # S
    state = np.array([np.int64(seed) * np.int64(2654435761) + np.int64(88172645463325252)],
                     dtype=np.int64)
    work = np.int64(0)
    it = np.int64(0)
    side = np.empty(n, dtype=np.int64)
    cand = np.empty(min(n, FILL_ITEMS), dtype=np.int64)
    room = np.empty(2, dtype=np.int64)
    keep = np.zeros(min(n, FILL_ITEMS), dtype=np.int64)
    failures = 0
    while m > lower and m >= 3 and work < budget:
        # 1. target m - 1 bins: keep m - 3, the items of the three lightest go to S; success is
        # when S fits into two bins
        n_pool = 0
        for _ in range(3):
            # the lightest bin on the first attempt at a target; after a failed attempt, the
            # lightest of a random half of the bins (a different start for the search)
            light = -1
            light_w = 1e300
            start = _next(state) % m
            for bb in range(m):
                b = (start + bb) % m
                if failures > 0 and _next(state) % 2 == 0:
                    continue
                w = load[b, 0] / cap[0] + load[b, 1] / cap[1]
                if w < light_w:
                    light_w = w
                    light = b
            if light < 0:
                light = start
            while count[light] > 0:
                i = items[light, 0]
                _remove_item(items, count, pos_of, cur, load, size, i)
                pool[n_pool] = i
                n_pool += 1
            last = m - 1
            if light != last:   # move bin `last` into the emptied slot: bins stay 0..m-1
                while count[last] > 0:
                    i = items[last, 0]
                    _remove_item(items, count, pos_of, cur, load, size, i)
                    _add_item(items, count, pos_of, cur, load, size, i, light)
            m -= 1
        for i in range(n):
            tabu_bin[i] = -1
            tabu_until[i] = 0
            stay_until[i] = 0
        done = False
        spent = 0
        while work < budget and spent < MAX_ITER_PER_BIN:
            spent += 1
            it += 1
            fits, nodes = _two_bins(pool, n_pool, size, weight, cap, side, TWO_BIN_NODES)
            work += nodes
            if fits:
                done = True
                break
            # 2. insert what fits, largest first, into the bin it fills best
            moved = True
            while moved and n_pool > 0:
                moved = False
                big = -1
                for k in range(n_pool):
                    if big < 0 or weight[pool[k]] > weight[pool[big]]:
                        big = k
                # try the items from the largest down; the first that fits anywhere goes in
                order_tried = 0
                while order_tried < n_pool:
                    order_tried += 1
                    i = pool[big]
                    fit_b = -1
                    fit_slack = 1e300
                    for b in range(m):
                        work += 1
                        if load[b, 0] + size[i, 0] <= cap[0] and load[b, 1] + size[i, 1] <= cap[1]:
                            if tabu_bin[i] == b and tabu_until[i] > it:
                                continue
                            slack = (cap[0] - load[b, 0] - size[i, 0]) / cap[0] + \
                                    (cap[1] - load[b, 1] - size[i, 1]) / cap[1]
                            if slack < fit_slack:
                                fit_slack = slack
                                fit_b = b
                    if fit_b >= 0:
                        _add_item(items, count, pos_of, cur, load, size, i, fit_b)
                        stay_until[i] = it + TABU_OUT
                        n_pool -= 1
                        pool[big] = pool[n_pool]
                        moved = True
                        break
                    # next largest below weight[i]
                    nxt = -1
                    for k in range(n_pool):
                        if weight[pool[k]] < weight[i] or (weight[pool[k]] == weight[i] and k > big):
                            if nxt < 0 or weight[pool[k]] > weight[pool[nxt]]:
                                nxt = k
                    if nxt < 0:
                        break
                    big = nxt
            if n_pool == 0:
                fits, nodes = _two_bins(pool, n_pool, size, weight, cap, side, TWO_BIN_NODES)
                done = True
                break
            # 3. descent: refill bins, one at a time, with the heaviest subset of their items and
            # S that fits (add/drop moves of any size); S only gets lighter
            improved = False
            for bb in range(min(m, SAMPLE_BINS)):
                b = _next(state) % m
                n_cand = 0
                room[0] = cap[0]
                room[1] = cap[1]
                for k in range(count[b]):
                    i = items[b, k]
                    if stay_until[i] > it:   # tabu: it entered this bin lately and stays
                        room[0] -= size[i, 0]
                        room[1] -= size[i, 1]
                    elif n_cand < cand.shape[0]:
                        cand[n_cand] = i
                        n_cand += 1
                    else:
                        room[0] -= size[i, 0]
                        room[1] -= size[i, 1]
                for k in range(n_pool):
                    i = pool[k]
                    if tabu_bin[i] == b and tabu_until[i] > it:
                        continue
                    if n_cand < cand.shape[0]:
                        cand[n_cand] = i
                        n_cand += 1
                for a in range(1, n_cand):   # heaviest first
                    x = cand[a]
                    c = a - 1
                    while c >= 0 and weight[cand[c]] < weight[x]:
                        cand[c + 1] = cand[c]
                        c -= 1
                    cand[c + 1] = x
                now = 0.0
                for k in range(n_cand):
                    if cur[cand[k]] == b:
                        now += weight[cand[k]]
                got, nodes = _best_fill(cand, n_cand, size, weight, room, keep, FILL_NODES)
                work += nodes
                if got <= now + 1e-9:
                    continue
                for k in range(n_cand):
                    i = cand[k]
                    if keep[k] == 1 and cur[i] != b:
                        if cur[i] >= 0:
                            _remove_item(items, count, pos_of, cur, load, size, i)
                        for j in range(n_pool):
                            if pool[j] == i:
                                n_pool -= 1
                                pool[j] = pool[n_pool]
                                break
                    elif keep[k] == 0 and cur[i] == b:
                        _remove_item(items, count, pos_of, cur, load, size, i)
                        pool[n_pool] = i
                        n_pool += 1
                for k in range(n_cand):
                    if keep[k] == 1 and cur[cand[k]] != b:
                        _add_item(items, count, pos_of, cur, load, size, cand[k], b)
                improved = True
            if improved:
                continue
            # 4. the best swap: q (1-2 items of S) into bin b, p (0-2 items of b) out
            best_gain = -1e300
            best_b = -1
            bq0 = -1
            bq1 = -1
            bp0 = -1
            bp1 = -1
            ties = 0
            for bb in range(min(m, SAMPLE_BINS)):
                b = _next(state) % m
                cb = count[b]
                for a in range(n_pool):
                    for a2 in range(a, n_pool):
                        q0 = pool[a]
                        q1 = pool[a2] if a2 != a else -1
                        if tabu_bin[q0] == b and tabu_until[q0] > it:
                            continue
                        if q1 >= 0 and tabu_bin[q1] == b and tabu_until[q1] > it:
                            continue
                        in0, in1, win = _group(size, weight, q0, q1)
                        # out sets: (x) and (x, y); `none` was tried by the insertion step
                        for x in range(cb):
                            px = items[b, x]
                            if stay_until[px] > it:
                                continue
                            for y in range(x, cb):
                                work += 1
                                py = items[b, y] if y != x else -1
                                if py >= 0 and stay_until[py] > it:
                                    continue
                                out0, out1, wout = _group(size, weight, px, py)
                                if load[b, 0] - out0 + in0 > cap[0] or \
                                        load[b, 1] - out1 + in1 > cap[1]:
                                    continue
                                gain = win - wout
                                if gain > best_gain + 1e-12:
                                    best_gain = gain
                                    ties = 1
                                    best_b, bq0, bq1, bp0, bp1 = b, q0, q1, px, py
                                elif gain > best_gain - 1e-12:
                                    ties += 1
                                    if _next(state) % ties == 0:
                                        best_b, bq0, bq1, bp0, bp1 = b, q0, q1, px, py
            if best_b < 0:
                break   # nothing can move at all
            for out in (bp0, bp1):
                if out >= 0:
                    _remove_item(items, count, pos_of, cur, load, size, out)
                    tabu_bin[out] = best_b
                    tabu_until[out] = it + TABU_IN
            for into in (bq0, bq1):
                if into >= 0:
                    for k in range(n_pool):
                        if pool[k] == into:
                            n_pool -= 1
                            pool[k] = pool[n_pool]
                            break
                    _add_item(items, count, pos_of, cur, load, size, into, best_b)
                    stay_until[into] = it + TABU_OUT
            for out in (bp0, bp1):
                if out >= 0:
                    pool[n_pool] = out
                    n_pool += 1
        if not done:
            # start again from the best packing found, with other bins taken out
            failures += 1
            m = best_m
            for b in range(m):
                while count[b] > 0:
                    _remove_item(items, count, pos_of, cur, load, size, items[b, 0])
            n_pool = 0
            for i in range(n):
                cur[i] = best[i]
                _add_item(items, count, pos_of, cur, load, size, i, best[i])
            continue
        failures = 0
        # S into two new bins m and m + 1: a complete packing of m + 2 = (old m) - 1 bins
        second = 0
        for k in range(n_pool):
            _add_item(items, count, pos_of, cur, load, size, pool[k], m + side[k])
            second |= side[k]
        if n_pool > 0:
            m += 1 + second
        best_m = m
        for i in range(n):
            best[i] = cur[i]
    return best_m, best, work
