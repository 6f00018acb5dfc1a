"""numasched.kernels.placement: the placement loop in Numba, bit for bit the Cython kernel.

A one-to-one port of ``numasched/_core.pyx``: the same helpers (``fx``, ``host_score``,
``set_search``, ``min_nodes``, ``fit_width``, ``proportional``, ``could_ever_hold``,
``pending_reason``, ``commit``) and the same driver ``place_into`` with the same arguments,
dtypes, in-place outputs and status codes. Its semantics are those of
``numasched.kernels.reference`` (the specification); read that file for the rules, and
``_core.pyx`` for why each shortcut is exact.

State. The Cython ``Fleet`` struct becomes plain arguments: the node arrays ``cap_c, cap_m``
(read-only capacities), ``free_c, free_m`` (the free capacity, written by ``commit`` only),
``dist`` ([D, K, K]; ``dh`` = h when D == H > 1, else 0), the per-call host arrays
``tot_cap_c, tot_cap_m, tot_free_c, tot_free_m, present (uint64 masks), n_present, uniform``,
and one scratch array ``scratch`` int64[SCRATCH_ROWS, SCRATCH_COLS] (rows CAND, IDX, NODES, REM
and the node-set hierarchy's tables; see ``new_scratch``). Helpers take only what they use and
per-host values as scalars: every array argument of a Numba call costs an atomic incref/decref
pair and about ten machine words of argument passing, which is what made a first draft (a named
tuple of all 14 arrays) 2-3x slower than Cython. Nothing closes over anything, so a later
per-host filter/score kernel (a ``prange`` over hosts with one ``new_scratch()`` per thread) can
call the helpers as they are.

The loop. ``place_into`` checks its arguments, builds the per-call arrays and the host index,
and hands them to ``place_loop``, which places the requests on *borrowed* views of every array
(``borrow``: no reference counting) with the whole per-request path inlined into it: the index
search and updates, the class moves and ``commit``. Either alone fell short (placement
loop, first-fit, 100k requests / 10k hosts, Numba / Cython CPU time: 3.2x as calls, 2.1x
inlined, 2.5x borrowed but not inlined); together, 1.1x. Inlined, every helper's array arguments
become copies of array values, and each copy's count went up and down atomically: a third of
the time.

Host search. ``index_build``, ``index_update`` and ``index_find`` are _core.pyx's host index
(a segment tree over hosts whose bounds skip subtrees that cannot hold the request or cannot beat
the best host so far, and which sees only the lowest-index host of each class of identical hosts,
wherever the others lie), with the tree's rows in one int64 array, the class lists in another
and the search stack preallocated per call.

Indexing. Numba wraps negative signed subscripts (a compare and select on every access, even
with bounds checking off), and LLVM rarely proves a loop index non-negative. Hot subscripts are
therefore cast to ``np.uintp`` first, which compiles to a plain load (Cython builds with
``wraparound=False``). Every such index is non-negative by construction.

Invariants kept by every step of the loop, for every host h and node k (as in ``_core.pyx``):
  0 <= free[h, k] <= cap[h, k]                        (no node is ever overcommitted)
  tot_free[h] == sum over k of free[h, k]              (host totals are exact, not estimates)
  a request's shares sum to its amount, on one host    (allocations are never partial)

Every helper a kernel calls lives in this file, because Numba's cache keys on the kernel's own
source file (see ``config.py``). The codes are module globals, frozen by Numba at compile time.
The same code runs as plain Python under ``NUMBA_DISABLE_JIT=1``.
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import config as numba_config
from numba import njit, prange
from numba.core import cgutils, types
from numba.extending import intrinsic
from numba.np.arrayobj import make_array

from ..codes import (
    FIXED_ONE,
    FIXED_SHIFT,
    MAX_NODES,
    MODE_BEST_EFFORT,
    MODE_NONE,
    MODE_RESTRICTED,
    MODE_SINGLE,
    NODE_PACK,
    NODE_SPREAD,
    POLICY_BALANCED,
    POLICY_BEST_FIT,
    POLICY_DOT_PRODUCT,
    POLICY_WORST_FIT,
    REASON_CONSTRAINT,
    REASON_NO_CPU,
    REASON_NO_MEMORY,
    REASON_NO_NUMA_FIT,
    REASON_TOO_LARGE,
)
from ..codes import WIDTH_RANK as _WIDTH_RANK
from . import config

MAX_K = MAX_NODES  # 64: node sets are uint64 bit masks
MAX_WEIGHT = 1000  # as in _core.pyx and policies.base: weights keep every score below 2**44
_U1 = np.uint64(1)   # bit masks are uint64 throughout: never mix them with int64 (-> float64)
_U0 = np.uint64(0)
# Typed, non-literal constants for helper arguments: a bare 0, 1, True or False in a call would
# be typed as a literal and compile one more specialisation of the callee per distinct value.
_Z = np.int64(0)
_ONE = np.int64(1)
_PACK = np.int64(NODE_PACK)
_T = np.bool_(True)
_F = np.bool_(False)

# Rows of the scratch array (int64[SCRATCH_ROWS, MAX_K + 1]; a row is indexed by node id unless
# noted).
CAND = 0    # candidate node ids of set_search
IDX = 1     # the current combination, as indices into CAND
NODES = 2   # set_search's answer: the sorted node ids of the chosen set
REM = 3     # proportional's remainders
ALLOW = 4   # hierarchy_best: FORBIDDEN / OPTIONAL / FORCED per node
COMP = 5    # the root of each node's group during the merges
SIZE = 6    # members of the group rooted at each node
BEST = 7    # hierarchy_build (Prim): the cheapest link of each node into the tree, its level
LINK = 8    #   and the tree node it links to
IN_TREE = 9
EDGE_T = 10  # the merges, by index: level, and the two nodes they join
EDGE_A = 11
EDGE_B = 12
HEAD = 13   # hierarchy_set: the forced first members
TMP_D = 14  # one merge's result by member count, before it replaces the root's rows
TMP_P = 15
TMP_M = 16
TAB_D = 17  # rows TAB_D + r, column n: level sum of group r's best set of n members (-1: none)
TAB_P = TAB_D + MAX_K          # its pack/spread term
TAB_M = TAB_P + MAX_K          # its node mask (uint64 through a view)
SCRATCH_ROWS = TAB_M + MAX_K
SCRATCH_COLS = MAX_K + 1       # member counts 0..MAX_K

COMBINATION_LIMIT = 256  # as reference.COMBINATION_LIMIT
FORBIDDEN = 0
OPTIONAL = 1
FORCED = 2

STATUS_OK = 0
STATUS_SHAPE = 1
STATUS_CODE = 2
STATUS_MESSAGES = {
    STATUS_OK: "ok",
    STATUS_SHAPE: "array shapes disagree",
    STATUS_CODE: "unknown mode, policy or node-choice code, or a weight out of 0..1000",
}


# ---------------------------------------------------------------------------------------------
# Borrowed arrays. Every Numba array carries a reference-counted owner (its "meminfo"), and the
# compiled code increments and decrements that count, with atomic instructions, whenever an array
# value is copied into another variable: at every call and at every inlined helper's arguments.
# In the placement loop that was a third of the time (perf: NRT_incref / NRT_decref). A borrowed
# array is the same view (data, shape, strides) with no owner: the counting code sees a null
# owner and does nothing. Invariant: a borrowed array is used only while a caller holds the
# owner (place_loop borrows its arguments, which place_into or the Python caller hold until it
# returns), and it is never returned or stored. Under NUMBA_DISABLE_JIT borrow is the identity.
# ---------------------------------------------------------------------------------------------
if numba_config.DISABLE_JIT:
    def borrow(a):
        return a
else:
    @intrinsic
    def borrow(typingctx, a):
        """The array a as a view without an owner (see above)."""
        if not isinstance(a, types.Array):
            return None

        def codegen(context, builder, signature, args):
            src = make_array(a)(context, builder, value=args[0])
            out = make_array(a)(context, builder)
            out.meminfo = cgutils.get_null_value(out.meminfo.type)
            out.parent = cgutils.get_null_value(out.parent.type)
            out.nitems = src.nitems
            out.itemsize = src.itemsize
            out.data = src.data
            out.shape = src.shape
            out.strides = src.strides
            return out._getvalue()

        return a(a), codegen


# Prefetching. place_loop takes the requests in placement order, scattered over their arrays:
# prefetch(a, i) starts loading a's element i (flat index; a hint, nothing is read) so that the
# loads of a later request overlap this one's search. Under NUMBA_DISABLE_JIT it does nothing.
if numba_config.DISABLE_JIT:
    def prefetch(a, i):
        return None
else:
    @intrinsic
    def prefetch(typingctx, a, i):
        """A read prefetch of a's element at flat index i (llvm.prefetch, high locality)."""
        if not isinstance(a, types.Array) or not isinstance(i, types.Integer):
            return None

        def codegen(context, builder, signature, args):
            data = make_array(a)(context, builder, value=args[0]).data
            index = context.cast(builder, args[1], signature.args[1], types.intp)
            i8p = ir.IntType(8).as_pointer()
            i32 = ir.IntType(32)
            hint = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                "llvm.prefetch.p0")
            builder.call(hint, [builder.bitcast(builder.gep(data, [index]), i8p), i32(0), i32(3),
                                i32(1)])
            return context.get_dummy_value()

        return types.void(a, i), codegen


def new_scratch():
    """Scratch for the helpers, one per thread: int64[SCRATCH_ROWS, SCRATCH_COLS] (about 110 kB;
    rows CAND, IDX, NODES, REM, and the node-set hierarchy's tables)."""
    return np.empty((SCRATCH_ROWS, SCRATCH_COLS), dtype=np.int64)


@njit(**config.NUMBA_INLINE_KWARGS)
def fx(x, cap):
    """Fixed-point fraction x / cap; callers guarantee 0 <= x <= cap < 2**47."""
    if cap <= 0:
        return 0
    return (x << FIXED_SHIFT) // cap


@njit(**config.NUMBA_INLINE_KWARGS)
def fine(x, cap):
    """floor(x * 2**32 / cap), the fraction x / cap at 2**16 times fx's resolution, without
    overflow; callers guarantee 0 <= x <= cap < 2**47."""
    if cap <= 0:
        return np.int64(0)
    q = (x << FIXED_SHIFT) // cap
    r = (x << FIXED_SHIFT) - q * cap
    return (q << FIXED_SHIFT) + (r << FIXED_SHIFT) // cap


@njit(**config.NUMBA_INLINE_KWARGS)
def host_score(policy, wc, wm, cc, cm, fc, fm, cpu, mem):
    """Higher is better; the formulas of reference.Host.score. Only called when the totals fit.

    ``wc``/``wm``: the CPU and memory weights (0..1000); ``cc``/``cm``: the host's total
    capacity, ``fc``/``fm``: its free totals (``tot_*[h]``). Scalars only, so the call inlines
    into the host scan at no cost.
    """
    if policy == POLICY_BEST_FIT:
        return (wc + wm) * FIXED_ONE - wc * fx(fc - cpu, cc) - wm * fx(fm - mem, cm)
    if policy == POLICY_WORST_FIT:
        return wc * fx(fc - cpu, cc) + wm * fx(fm - mem, cm)
    if policy == POLICY_BALANCED:
        uc = fx(cc - fc + cpu, cc)
        um = fx(cm - fm + mem, cm)
        return FIXED_ONE - (uc - um if uc >= um else um - uc)
    if policy == POLICY_DOT_PRODUCT:
        return wc * fx(cpu, cc) * fx(fc, cc) + wm * fx(mem, cm) * fx(fm, cm)
    return 0  # first-fit: every feasible host scores the same; the lowest index wins


# ---------------------------------------------------------------------------------------------
# Node sets (as in _core.pyx). A set S of w present nodes fits when every member holds its share
# of the equal split; position j of S (by id) takes base + 1 while j < remainder, so the
# requirements never grow with j. The rule that picks one set is reference.Host.best_set: every
# set compared when the candidates form at most COMBINATION_LIMIT sets, the distance
# hierarchy's dynamic programme beyond. Masks in the scratch are uint64 through a view.
# ---------------------------------------------------------------------------------------------
@njit(**config.NUMBA_INLINE_KWARGS)
def takes_position(avail_c, avail_m, hu, k, j, cpu, mem, width):
    """Node k can hold the shares of position j of the width split (reference.takes_position)."""
    ku = np.uintp(k)
    return (avail_c[hu, ku] >= cpu // width + (1 if j < cpu % width else 0)
            and avail_m[hu, ku] >= mem // width + (1 if j < mem % width else 0))


@njit(**config.NUMBA_INLINE_KWARGS)
def first_set(avail_c, avail_m, h, present, cpu, mem, width, scratch):
    """The lexicographically first fitting set of width (reference.Host.first_set), written into
    scratch[NODES, :width]; returns 1, or 0 if none fits. O(K): requirements never grow with
    the position, so taking each node that can fill the next open position is never worse than
    skipping it (the j-th pick is at most the j-th member of any fitting set)."""
    hu = np.uintp(h)
    n = 0
    for k in range(avail_c.shape[1]):
        if n < width and (present >> np.uint64(k)) & _U1 and takes_position(
                avail_c, avail_m, hu, k, n, cpu, mem, width):
            scratch[NODES, np.uintp(n)] = k
            n += 1
    return 1 if n == width else 0


@njit(**config.NUMBA_INLINE_KWARGS)
def node_maxima(avail_c, avail_m, hu, present):
    """(largest avail_c, largest avail_m) over host hu's present nodes; (0, 0) if none."""
    most_c = np.int64(0)
    most_m = np.int64(0)
    for k in range(avail_c.shape[1]):
        if (present >> np.uint64(k)) & _U1:
            ku = np.uintp(k)
            if avail_c[hu, ku] > most_c:
                most_c = avail_c[hu, ku]
            if avail_m[hu, ku] > most_m:
                most_m = avail_m[hu, ku]
    return most_c, most_m


@njit(**config.NUMBA_INLINE_KWARGS)
def width_lower_bound(avail_c, avail_m, h, present, n_present, cpu, mem):
    """No narrower set fits: its largest share ceil(a / w) exceeds every node's availability."""
    most_c, most_m = node_maxima(avail_c, avail_m, np.uintp(h), present)
    if most_c == 0 or most_m == 0:
        return n_present + 1  # every request asks for both resources
    w = 1
    v = (cpu + most_c - 1) // most_c
    if v > w:
        w = v
    v = (mem + most_m - 1) // most_m
    if v > w:
        w = v
    return w


@njit(**config.NUMBA_INLINE_KWARGS)
def n_choose_capped(n, k):
    """C(n, k), or COMBINATION_LIMIT + 1 when it is larger (no overflow: n <= 64)."""
    if k < 0 or k > n:
        return 0
    if n - k < k:
        k = n - k
    c = 1
    for i in range(k):
        c = c * (n - i) // (i + 1)  # exact: C(n, i + 1)
        if c > COMBINATION_LIMIT:
            return COMBINATION_LIMIT + 1
    return c


@njit(**config.NUMBA_JIT_KWARGS)
def hierarchy_build(dist, du, present, scratch):
    """Single-linkage merges of the present nodes (Prim's tree, edges sorted by level) into
    scratch rows EDGE_T, EDGE_A, EDGE_B; returns their number. Any minimum spanning tree gives
    the same levels (the largest step on the tree path), and the programme uses levels only."""
    K = dist.shape[1]
    first = -1
    for k in range(K):
        scratch[IN_TREE, np.uintp(k)] = 0
        if first < 0 and (present >> np.uint64(k)) & _U1:
            first = k
    if first < 0:
        return 0
    fu = np.uintp(first)
    scratch[IN_TREE, fu] = 1
    for k in range(K):
        ku = np.uintp(k)
        if (present >> np.uint64(k)) & _U1:
            a = dist[du, fu, ku]
            b = dist[du, ku, fu]
            scratch[BEST, ku] = a if a > b else b
            scratch[LINK, ku] = first
    n = 0
    while True:
        pick = -1
        for k in range(K):
            ku = np.uintp(k)
            if ((present >> np.uint64(k)) & _U1 and scratch[IN_TREE, ku] == 0
                    and (pick < 0 or scratch[BEST, ku] < scratch[BEST, np.uintp(pick)])):
                pick = k
        if pick < 0:
            break
        pu = np.uintp(pick)
        scratch[IN_TREE, pu] = 1
        # insertion keeps the edges sorted by level
        e = n
        t = scratch[BEST, pu]
        while e > 0 and scratch[EDGE_T, np.uintp(e - 1)] > t:
            for row in (EDGE_T, EDGE_A, EDGE_B):
                scratch[row, np.uintp(e)] = scratch[row, np.uintp(e - 1)]
            e -= 1
        scratch[EDGE_T, np.uintp(e)] = t
        scratch[EDGE_A, np.uintp(e)] = scratch[LINK, pu]
        scratch[EDGE_B, np.uintp(e)] = pick
        n += 1
        for k in range(K):
            ku = np.uintp(k)
            if (present >> np.uint64(k)) & _U1 and scratch[IN_TREE, ku] == 0:
                a = dist[du, pu, ku]
                b = dist[du, ku, pu]
                v = a if a > b else b
                if v < scratch[BEST, ku]:
                    scratch[BEST, ku] = v
                    scratch[LINK, ku] = pick
    return n


@njit(**config.NUMBA_INLINE_KWARGS)
def key_before(d1, p1, m1, d2, p2, m2):
    """(d1, p1, m1) ranks before (d2, p2, m2): lower level sum, then pack/spread term, then the
    set holding the lowest id of the symmetric difference (reference.Host.hierarchy_key)."""
    if d1 != d2:
        return d1 < d2
    if p1 != p2:
        return p1 < p2
    x = m1 ^ m2
    if x == _U0:
        return False
    return (m1 & (x & (~x + _U1))) != _U0


@njit(**config.NUMBA_JIT_KWARGS)
def hierarchy_best(cap_c, cap_m, free_c, free_m, h, present, node_choice, cpu, mem, width,
                   n_edges, scratch):
    """The best set by the hierarchy's key among those scratch row ALLOW permits (FORBIDDEN,
    OPTIONAL, FORCED per node), with width members (reference.Host.hierarchy_best). Returns
    (found, level sum, pack/spread term, uint64 mask).

    Tables: row TAB_D + r, column n holds the best set of n members inside the group rooted
    at r (-1: none), TAB_P + r its pack/spread term, TAB_M + r its mask. Invariant after each
    merge: the root's rows hold the best set of every count <= width of its group, since the
    key is a sum over the two parts plus 2 * t * n_a * n_b.
    """
    K = cap_c.shape[1]
    hu = np.uintp(h)
    um = scratch.view(np.uint64)
    base_c = cpu // width
    base_m = mem // width
    first = -1
    for k in range(K):
        if not (present >> np.uint64(k)) & _U1:
            continue
        ku = np.uintp(k)
        if first < 0:
            first = k
        scratch[COMP, ku] = k
        scratch[SIZE, ku] = 1
        scratch[TAB_D + ku, 0] = -1 if scratch[ALLOW, ku] == FORCED else 0
        scratch[TAB_P + ku, 0] = 0
        um[TAB_M + ku, 0] = _U0
        scratch[TAB_D + ku, 1] = -1
        if scratch[ALLOW, ku] != FORBIDDEN:
            util = (fx(cap_c[hu, ku] - free_c[hu, ku] + base_c, cap_c[hu, ku])
                    + fx(cap_m[hu, ku] - free_m[hu, ku] + base_m, cap_m[hu, ku]))
            scratch[TAB_D + ku, 1] = 0
            scratch[TAB_P + ku, 1] = -util if node_choice == NODE_PACK else util
            um[TAB_M + ku, 1] = _U1 << np.uint64(k)
    if first < 0:
        return False, 0, 0, _U0
    for e in range(n_edges):
        eu = np.uintp(e)
        a = np.uintp(scratch[COMP, np.uintp(scratch[EDGE_A, eu])])
        b = np.uintp(scratch[COMP, np.uintp(scratch[EDGE_B, eu])])
        t = scratch[EDGE_T, eu]
        sa = min(scratch[SIZE, a], width)
        sb = min(scratch[SIZE, b], width)
        top = min(sa + sb, width)
        for n in range(top + 1):
            scratch[TMP_D, np.uintp(n)] = -1
        for na in range(sa + 1):
            da = scratch[TAB_D + a, np.uintp(na)]
            if da < 0:
                continue
            for nb in range(min(sb, width - na) + 1):
                db = scratch[TAB_D + b, np.uintp(nb)]
                if db < 0:
                    continue
                d = da + db + 2 * t * na * nb
                p = scratch[TAB_P + a, np.uintp(na)] + scratch[TAB_P + b, np.uintp(nb)]
                mk = um[TAB_M + a, np.uintp(na)] | um[TAB_M + b, np.uintp(nb)]
                nu = np.uintp(na + nb)
                if scratch[TMP_D, nu] < 0 or key_before(d, p, mk, scratch[TMP_D, nu],
                                                        scratch[TMP_P, nu], um[TMP_M, nu]):
                    scratch[TMP_D, nu] = d
                    scratch[TMP_P, nu] = p
                    um[TMP_M, nu] = mk
        for n in range(top + 1):
            nu = np.uintp(n)
            scratch[TAB_D + a, nu] = scratch[TMP_D, nu]
            scratch[TAB_P + a, nu] = scratch[TMP_P, nu]
            um[TAB_M + a, nu] = um[TMP_M, nu]
        scratch[SIZE, a] += scratch[SIZE, b]
        for k in range(K):
            ku = np.uintp(k)
            if (present >> np.uint64(k)) & _U1 and scratch[COMP, ku] == np.int64(b):
                scratch[COMP, ku] = np.int64(a)
    r = np.uintp(scratch[COMP, np.uintp(first)])
    wu = np.uintp(width)
    if scratch[SIZE, r] < width or scratch[TAB_D + r, wu] < 0:
        return False, 0, 0, _U0
    return True, scratch[TAB_D + r, wu], scratch[TAB_P + r, wu], um[TAB_M + r, wu]


@njit(**config.NUMBA_JIT_KWARGS)
def hierarchy_set(cap_c, cap_m, free_c, free_m, dist, dh, h, present, node_choice, cpu, mem,
                  width, scratch):
    """The node-set rule beyond the enumeration limit (reference.Host.hierarchy_set): the best
    set of the candidates if it fits, else the best of the families that only hold fitting sets
    (any-position nodes; for each any-position start, the greedy's head from it and candidates
    above). Writes scratch[NODES, :width]; returns 1, or 0 if no set of width fits."""
    K = cap_c.shape[1]
    hu = np.uintp(h)
    base_c = cpu // width
    base_m = mem // width
    n_edges = hierarchy_build(dist, np.uintp(dh), present, scratch)
    for k in range(K):
        ku = np.uintp(k)
        scratch[ALLOW, ku] = FORBIDDEN
        if ((present >> np.uint64(k)) & _U1 and free_c[hu, ku] >= base_c
                and free_m[hu, ku] >= base_m):
            scratch[ALLOW, ku] = OPTIONAL
    found, bd, bp, bm = hierarchy_best(cap_c, cap_m, free_c, free_m, h, present, node_choice,
                                       cpu, mem, width, n_edges, scratch)
    if not found:
        return 0
    j = 0
    for k in range(K):
        if (bm >> np.uint64(k)) & _U1:
            if not takes_position(free_c, free_m, hu, k, j, cpu, mem, width):
                found = False
            j += 1
    if not found:
        # Only nodes that can take any position (position 0 asks the most).
        for k in range(K):
            ku = np.uintp(k)
            if scratch[ALLOW, ku] != FORBIDDEN and not takes_position(free_c, free_m, hu, k, 0,
                                                                      cpu, mem, width):
                scratch[ALLOW, ku] = FORBIDDEN
        found, bd, bp, bm = hierarchy_best(cap_c, cap_m, free_c, free_m, h, present,
                                           node_choice, cpu, mem, width, n_edges, scratch)
        head_width = max(cpu % width, mem % width)
        for start in range(K):
            if not ((present >> np.uint64(start)) & _U1
                    and takes_position(free_c, free_m, hu, start, 0, cpu, mem, width)):
                continue
            hn = 0
            for k in range(start, K):
                if hn < head_width and (present >> np.uint64(k)) & _U1 and takes_position(
                        free_c, free_m, hu, k, hn, cpu, mem, width):
                    scratch[HEAD, np.uintp(hn)] = k
                    hn += 1
            if hn < head_width:
                break  # a later start finds no more
            last = scratch[HEAD, np.uintp(hn - 1)]
            for k in range(K):
                ku = np.uintp(k)
                cand = ((present >> np.uint64(k)) & _U1 and free_c[hu, ku] >= base_c
                        and free_m[hu, ku] >= base_m)
                scratch[ALLOW, ku] = OPTIONAL if cand and k > last else FORBIDDEN
            for j in range(hn):
                scratch[ALLOW, np.uintp(scratch[HEAD, np.uintp(j)])] = FORCED
            ok, d, p, mk = hierarchy_best(cap_c, cap_m, free_c, free_m, h, present, node_choice,
                                          cpu, mem, width, n_edges, scratch)
            if ok and (not found or key_before(d, p, mk, bd, bp, bm)):
                found = True
                bd = d
                bp = p
                bm = mk
        if not found:
            return 0
    j = 0
    for k in range(K):
        if (bm >> np.uint64(k)) & _U1:
            scratch[NODES, np.uintp(j)] = k
            j += 1
    return 1


@njit(**config.NUMBA_INLINE_KWARGS)
def set_search(cap_c, cap_m, free_c, free_m, dist, dh, h, present, node_choice, cpu, mem, width,
               at_capacity, want_best, scratch):
    """Find a node set of ``width`` present nodes of host h for the equal split.

    With ``want_best`` false: whether some set fits, in O(K) (the first set in lexicographic
    order, ``first_set``). Otherwise the set the request takes (reference.Host.best_set): when
    the candidates form at most COMBINATION_LIMIT sets, every fitting set is visited in
    lexicographic order and the best by (distance sum, then pack/spread utilisation) wins,
    earlier sets winning ties; beyond that, ``hierarchy_set``. Returns 1 and writes the sorted
    ids into scratch[NODES, 0:width], or returns 0 when no set fits. Availability is the
    capacity when ``at_capacity``, else the free capacity. ``present`` is host h's node mask,
    ``dh`` its row of ``dist``; the other scratch rows are overwritten.
    """
    if not want_best:
        if at_capacity:
            return first_set(cap_c, cap_m, h, present, cpu, mem, width, scratch)
        return first_set(free_c, free_m, h, present, cpu, mem, width, scratch)
    K = cap_c.shape[1]
    hu = np.uintp(h)
    du = np.uintp(dh)
    base_c = cpu // width
    rem_c = cpu - base_c * width
    base_m = mem // width
    rem_m = mem - base_m * width

    # Candidates: present nodes that hold at least the base share. Every member of a fitting set
    # is one, so enumerating subsets of the candidates visits every fitting set, in the same order.
    m = 0
    for k in range(K):
        ku = np.uintp(k)
        if (present >> np.uint64(k)) & _U1:
            if at_capacity:
                ac = cap_c[hu, ku]
                am = cap_m[hu, ku]
            else:
                ac = free_c[hu, ku]
                am = free_m[hu, ku]
            if ac >= base_c and am >= base_m:
                scratch[CAND, np.uintp(m)] = k
                m += 1
    if m < width:
        return 0
    if n_choose_capped(m, width) > COMBINATION_LIMIT and not at_capacity:
        return hierarchy_set(cap_c, cap_m, free_c, free_m, dist, dh, h, present, node_choice, cpu,
                             mem, width, scratch)
    for j in range(width):
        scratch[IDX, np.uintp(j)] = j
    found = 0
    best_d = 0
    best_u = 0
    while True:
        # The first rem nodes of the set carry one unit more; the base was checked above.
        fits = True
        for j in range(width):
            ku = np.uintp(scratch[CAND, np.uintp(scratch[IDX, np.uintp(j)])])
            if at_capacity:
                ac = cap_c[hu, ku]
                am = cap_m[hu, ku]
            else:
                ac = free_c[hu, ku]
                am = free_m[hu, ku]
            if (j < rem_c and ac <= base_c) or (j < rem_m and am <= base_m):
                fits = False
                break
        if fits:
            dsum = 0
            util = 0
            for a in range(width):
                ku = np.uintp(scratch[CAND, np.uintp(scratch[IDX, np.uintp(a)])])
                for b in range(width):
                    if a != b:
                        lu = np.uintp(scratch[CAND, np.uintp(scratch[IDX, np.uintp(b)])])
                        dsum += dist[du, ku, lu]
                share_c = base_c + (1 if a < rem_c else 0)
                share_m = base_m + (1 if a < rem_m else 0)
                cc = cap_c[hu, ku]
                cm = cap_m[hu, ku]
                util += fx(cc - free_c[hu, ku] + share_c, cc)
                util += fx(cm - free_m[hu, ku] + share_m, cm)
            if node_choice == NODE_PACK:
                util = -util
            if found == 0 or dsum < best_d or (dsum == best_d and util < best_u):
                found = 1
                best_d = dsum
                best_u = util
                for j in range(width):
                    ju = np.uintp(j)
                    scratch[NODES, ju] = scratch[CAND, np.uintp(scratch[IDX, ju])]
        # Next combination in lexicographic order.
        j = width - 1
        while j >= 0 and scratch[IDX, np.uintp(j)] == m - width + j:
            j -= 1
        if j < 0:
            break
        scratch[IDX, np.uintp(j)] += 1
        for t in range(j + 1, width):
            scratch[IDX, np.uintp(t)] = scratch[IDX, np.uintp(t - 1)] + 1
    return found


@njit(**config.NUMBA_INLINE_KWARGS)
def min_nodes(cap_c, cap_m, free_c, free_m, dist, h, present, n_present, uniform, cpu, mem,
              scratch):
    """Kubelet's preferred width: the narrowest set holding the equal split at capacity; 0 = none.

    ``present``, ``n_present``, ``uniform``: host h's entries of the per-call host arrays.
    """
    if n_present == 0:
        return 0
    if uniform:
        # Equal nodes of capacity (c0, m0): the largest share ceil(a / w) fits iff a <= w * c0.
        c0 = 0
        m0 = 0
        hu = np.uintp(h)
        for k in range(cap_c.shape[1]):
            if (present >> np.uint64(k)) & _U1:
                c0 = cap_c[hu, np.uintp(k)]
                m0 = cap_m[hu, np.uintp(k)]
                break
        if c0 == 0 or m0 == 0:
            return 0  # every request asks for both resources
        wc = (cpu + c0 - 1) // c0
        wm = (mem + m0 - 1) // m0
        w = wc if wc > wm else wm
        return w if w <= n_present else 0
    for w in range(width_lower_bound(cap_c, cap_m, h, present, n_present, cpu, mem),
                   n_present + 1):
        if first_set(cap_c, cap_m, h, present, cpu, mem, w, scratch):
            return w
    return 0


@njit(**config.NUMBA_INLINE_KWARGS)
def fit_width(cap_c, cap_m, free_c, free_m, dist, h, present, n_present, uniform, cpu, mem, mode,
              max_width, scratch):
    """Width of the node set the request would use on host h now under ``mode``; 0 = no fit.

    For best-effort only widths up to ``max_width`` are tried (a wider set could not win).
    The caller has checked that the host's free totals cover the request. O(K) per width tried
    (``first_set``), from the narrowest width the free nodes allow. ``present``,
    ``n_present``, ``uniform``: host h's entries of the per-call host arrays.
    """
    if mode == MODE_NONE:
        return n_present
    if mode == MODE_SINGLE:
        return 1 if first_set(free_c, free_m, h, present, cpu, mem, _ONE, scratch) else 0
    if mode == MODE_RESTRICTED:
        w = min_nodes(cap_c, cap_m, free_c, free_m, dist, h, present, n_present, uniform, cpu, mem,
                      scratch)
        if w > 0 and first_set(free_c, free_m, h, present, cpu, mem, w, scratch):
            return w
        return 0
    top = min(max_width, n_present)
    for w in range(width_lower_bound(free_c, free_m, h, present, n_present, cpu, mem), top + 1):
        if first_set(free_c, free_m, h, present, cpu, mem, w, scratch):
            return w
    return 0


@njit(**config.NUMBA_JIT_KWARGS)
def muldivmod(a, b, d):
    """(a * b // d, a * b % d), exactly, on 64-bit integers (Numba has no 128-bit type).

    Requires 0 <= a <= d <= 2**46 and 0 <= b < 2**63 (in the kernel: a <= d = a host's free
    total <= MAX_HOST_AMOUNT = 2**46, b = a node's free <= 2**44, so a * b < 2**90).

    Method: schoolbook long division of a * b by d with b split into four 16-bit limbs, taken
    from the most significant. Invariant after each limb, with P the value of the limbs read so
    far: q == a * P // d and r == a * P % d, so 0 <= r < d. Appending the limb c gives
    a * (P * 2**16 + c) = q * 2**16 * d + (r * 2**16 + a * c), hence the next q and r below,
    where r * 2**16 < 2**62 and a * c < 2**46 * 2**16 = 2**62, so t < 2**63 never overflows;
    q * 2**16 <= a * P * 2**16 / d <= b < 2**63 neither.
    """
    q = 0
    r = 0
    for shift in (48, 32, 16, 0):
        c = (b >> shift) & 0xFFFF
        t = (r << 16) + a * c
        qt = t // d
        q = (q << 16) + qt
        r = t - qt * d
    return q, r


@njit(**config.NUMBA_JIT_KWARGS)
def proportional(free, h, present, amount, total, out, i, scratch):
    """Split amount over host h's present nodes in proportion to free[h] (largest remainder).

    Writes out[i, :]. Requires 0 < amount <= total == sum of free[h] over present nodes; then
    every share is at most its node's free capacity. Ties between remainders go to the lowest
    node id. Scratch row REM holds the remainders (-1: absent, or already given its extra unit).
    """
    K = free.shape[1]
    hu = np.uintp(h)
    iu = np.uintp(i)
    left = amount
    for k in range(K):
        ku = np.uintp(k)
        scratch[REM, ku] = -1
        out[iu, ku] = 0
        if (present >> np.uint64(k)) & _U1:
            q, r = muldivmod(amount, free[hu, ku], total)
            out[iu, ku] = q
            scratch[REM, ku] = r
            left -= q
    while left > 0:
        best_k = -1
        best_r = -1
        for k in range(K):
            r = scratch[REM, np.uintp(k)]
            if r >= 0 and (best_k < 0 or r > best_r):
                best_k = k
                best_r = r
        scratch[REM, np.uintp(best_k)] = -1
        out[iu, np.uintp(best_k)] += 1
        left -= 1


@njit(**config.NUMBA_JIT_KWARGS)
def could_ever_hold(cap_c, cap_m, free_c, free_m, dist, h, present, n_present, uniform, tot_cap_c,
                    tot_cap_m, cpu, mem, mode, scratch):
    """Whether host h could hold the request when empty (``tot_cap_*``: h's capacity totals)."""
    if mode == MODE_NONE:
        return tot_cap_c >= cpu and tot_cap_m >= mem
    if mode == MODE_SINGLE:
        hu = np.uintp(h)
        for k in range(cap_c.shape[1]):
            if cap_c[hu, np.uintp(k)] >= cpu and cap_m[hu, np.uintp(k)] >= mem:
                return True
        return False
    return min_nodes(cap_c, cap_m, free_c, free_m, dist, h, present, n_present, uniform, cpu, mem,
                     scratch) > 0


@njit(**config.NUMBA_JIT_KWARGS)
def pending_reason(cap_c, cap_m, free_c, free_m, dist, sched, tot_cap_c, tot_cap_m, tot_free_c,
                   tot_free_m, present, n_present, uniform, cpu, mem, mode, required, best_tc,
                   best_tm, scratch):
    """The first pending reason that applies, in the order of DESIGN.md. ``best_tc``/``best_tm``
    are the largest free totals over schedulable hosts (the host index's root)."""
    H = cap_c.shape[0]
    ever = False
    for h in range(H):
        if could_ever_hold(cap_c, cap_m, free_c, free_m, dist, h, present[h], n_present[h],
                           uniform[h], tot_cap_c[h], tot_cap_m[h], cpu, mem, mode, scratch):
            ever = True
            break
    if not ever:
        return REASON_TOO_LARGE
    if required >= 0:
        r = required
        if not sched[r] or not could_ever_hold(cap_c, cap_m, free_c, free_m, dist, r, present[r],
                                               n_present[r], uniform[r], tot_cap_c[r],
                                               tot_cap_m[r], cpu, mem, mode, scratch):
            return REASON_CONSTRAINT
        best_tc = tot_free_c[r]
        best_tm = tot_free_m[r]
    if best_tc < cpu:
        return REASON_NO_CPU
    if best_tm < mem:
        return REASON_NO_MEMORY
    return REASON_NO_NUMA_FIT


@njit(**config.NUMBA_INLINE_KWARGS)
def commit(cap_c, cap_m, free_c, free_m, dist, dh, h, present, node_choice, tot_free_c,
           tot_free_m, cpu, mem, mode, width, out_c, out_m, i, scratch):
    """Take the request from host h's free capacity, record its shares in out_c/out_m[i, :].

    Updates free_c/free_m[h] and tot_free_c/tot_free_m[h] (the per-call host arrays); returns
    the uint64 mask of the nodes used. out_c[i] and out_m[i] must start as zeros.
    """
    K = cap_c.shape[1]
    hu = np.uintp(h)
    iu = np.uintp(i)
    mask = _U0
    if mode == MODE_NONE:
        proportional(free_c, h, present, cpu, tot_free_c[hu], out_c, i, scratch)
        proportional(free_m, h, present, mem, tot_free_m[hu], out_m, i, scratch)
        for k in range(K):
            if out_c[iu, np.uintp(k)] > 0 or out_m[iu, np.uintp(k)] > 0:
                mask |= _U1 << np.uint64(k)
    else:
        set_search(cap_c, cap_m, free_c, free_m, dist, dh, h, present, node_choice, cpu, mem,
                   width, _F, _T, scratch)
        base_c = cpu // width
        rem_c = cpu - base_c * width
        base_m = mem // width
        rem_m = mem - base_m * width
        for j in range(width):
            k = scratch[NODES, np.uintp(j)]
            ku = np.uintp(k)
            out_c[iu, ku] = base_c + (1 if j < rem_c else 0)
            out_m[iu, ku] = base_m + (1 if j < rem_m else 0)
            mask |= _U1 << np.uint64(k)
    for k in range(K):
        ku = np.uintp(k)
        free_c[hu, ku] -= out_c[iu, ku]
        free_m[hu, ku] -= out_m[iu, ku]
    tot_free_c[hu] -= cpu
    tot_free_m[hu] -= mem
    return mask


@njit(**config.NUMBA_JIT_KWARGS)
def host_state(node_cpu, node_mem, free_cpu, free_mem):
    """Per-call host arrays, [H] each: (tot_cap_c, tot_cap_m, tot_free_c, tot_free_m, present,
    n_present, uniform). ``present`` is the uint64 mask of nodes with any capacity, ``uniform``
    is 1 where all present nodes have the same (cpu, mem) capacity, and the totals are sums over
    the host's nodes (``tot_free`` is kept exact by ``commit``)."""
    H = node_cpu.shape[0]
    K = node_cpu.shape[1]
    tot_cap_c = np.zeros(H, dtype=np.int64)
    tot_cap_m = np.zeros(H, dtype=np.int64)
    tot_free_c = np.zeros(H, dtype=np.int64)
    tot_free_m = np.zeros(H, dtype=np.int64)
    present = np.zeros(H, dtype=np.uint64)
    n_present = np.zeros(H, dtype=np.int64)
    uniform = np.zeros(H, dtype=np.uint8)
    for h in range(H):
        uniform[h] = 1
        first = -1
        for k in range(K):
            if node_cpu[h, k] > 0 or node_mem[h, k] > 0:
                if first < 0:
                    first = k
                elif node_cpu[h, k] != node_cpu[h, first] or node_mem[h, k] != node_mem[h, first]:
                    uniform[h] = 0
                present[h] |= _U1 << np.uint64(k)
                n_present[h] += 1
                tot_cap_c[h] += node_cpu[h, k]
                tot_cap_m[h] += node_mem[h, k]
            tot_free_c[h] += free_cpu[h, k]
            tot_free_m[h] += free_mem[h, k]
    return tot_cap_c, tot_cap_m, tot_free_c, tot_free_m, present, n_present, uniform


# ---------------------------------------------------------------------------------------------
# The host index of _core.pyx (read its comment block for the bounds and why they are exact):
# a segment tree over host indices, P leaves (P = the smallest power of two >= H), node-major as
# in _core.pyx (a node's values side by side, so a visit reads one or two cache lines, not one
# per value): columns tree[n, TC], tree[n, TM], tree[n, NC], tree[n, NM], tree[n, P1],
# tree[n, P2] hold node n's largest free totals, the largest free amount on one node, and the
# policy's request-independent score aggregates; column tree[:, TABLE] is the host classes' hash
# table (below), as long as the tree or longer. ``bounds``
# holds the static constants (MIN_CAP_C ... MAX_PRESENT) and N_UNUSED, the depth of the stack
# of unused class ids. The search keeps its stack in ``stack`` (rows ST_N, ST_LO, ST_W, ST_S,
# ST_SPAN), allocated once per call. ``ext`` (node-major) holds the per-node values of
# _core.pyx's ``hull`` and ``top``: under dot-product [2P, HW], the upper-right convex chain of
# the points (X, Y) = (fx(free_c, cap_c), fx(free_m, cap_m)) of the hosts below, X ascending
# and Y descending, at most HC vertices (column 0 the count, then X, Y pairs): the score is at
# most A*X + B*Y with A, B >= 0 set by the request, largest at a vertex, so the bound is exact
# (identical hosts tie and prune by index as at the leaves); a chain longer than HC is
# shortened by replacing two neighbours with their corner (X of the right, Y of the left),
# which dominates both, so the bound stays an upper bound. Under worst-fit [2P, TOP], the top
# state (columns T_FC, T_FM, T_CC, T_CM) and T_G2; other policies pass a [1, 1] placeholder.
# Its width says whose values it holds (HW != TOP != 1).
# Only the head of each host class has a leaf with values: identical hosts cost one score.
# The joint node test (first-fit, best-fit, balanced): columns TJ + j hold the largest
# joint(free_c, free_m, S0 + SJ * j) over the present nodes below, so a subtree where no single
# node holds both shares of the request's first node fails could_hold (see joint).
# Under balanced the leaves are not hosts but slots of the balance value a(h) (every live host
# in its slot's list, hosts[SLOT/SNEXT/SPREV], their cached values hosts[HNC/HNM/HA/HTJ] folded
# into the slot's leaf, tree[n, MI] the lowest host index below n): the best hosts are those
# whose a is nearest the request's target, so in host order nearly every subtree's
# [min a, max a] holds the target and bounds nothing, while in value order only the subtrees
# next to it do. The lowest-index rule then prunes by MI instead of the leftmost leaf.
# Invariant after every commit: each node's values are the max/min over its children, and each
# leaf's values are leaf_values() of its host's current free state (under slots: the exact fold
# of its hosts' cached values, slot_values(), and the caches are those of the hosts' current
# free state), so the root's free totals are exact (pending_reason reads them).
# ---------------------------------------------------------------------------------------------
TC, TM, NC, NM, P1, P2, TABLE, MI, SHEAD, TJ = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9
NJ = 4       # ratios of the joint node test: columns TJ .. TJ + NJ - 1
S0 = 19      # column TJ + j compares memory bytes with CPU millicores << (S0 + SJ * j)
SJ = 2       # ... its ratios a factor 2**SJ apart
TREE_COLS = TJ + NJ
# TABLE: the classes' hash table, bounds[TMASK] + 1 slots (a power of two >= 2H). SHEAD [P]:
# under slots, the first host of each slot's list, -1 if empty.
MIN_CAP_C, MIN_CAP_M, MAX_CAP_C, MAX_CAP_M, MIN_NODE_C, MIN_NODE_M, MAX_PRESENT, N_UNUSED = range(8)
SHIFT = 8    # slots: slot(h) = (a(h) + 2**16) >> bounds[SHIFT]; -1: the leaves are hosts
TMASK = 9    # the class table's size less one
BOUNDS = 10
# The query's constants (query_init), one array per call: the node tests' needs (Q_NC, Q_NM),
# the joint test's row and value (Q_JJ, Q_JV) and the policy's bound constants (Q_K1, Q_K2);
# Q_SHIFT, set once per call, is bounds[SHIFT] for index_find, whose call has no room for bounds.
Q_NC, Q_NM, Q_K1, Q_K2, Q_JJ, Q_JV, Q_SHIFT = range(7)
QUERY = 7
ST_N, ST_LO, ST_W, ST_S, ST_SPAN = 0, 1, 2, 3, 4
STACK = 2 * 64 + 2
AHEAD = 8   # place_loop prefetches the request this many places on
EMPTY = np.int64(-1)
BIG = np.int64(1) << np.int64(62)
HC = 15            # vertices of a dot-product chain at most
HW = 2 * HC + 2    # int64 per node of the chain array: count, then X, Y pairs (one spare)
T_FC, T_FM, T_CC, T_CM, T_G2 = 0, 1, 2, 3, 4
TOP = 5
# hull_pull's working rows in the helpers' scratch (free while the index is updated): the chain
# it builds.
SX, SY = CAND, IDX
# Rows of ``hosts`` (int64 [HOST_ROWS, max(H, 1)], per host unless noted): _core.pyx's class
# arrays (see "Host classes" below).
KIND = 0     # the lowest index of a host with equal capacity, distance, schedulable
CLS = 1      # the host's class id; -1: the host is outside the index
NXT = 2      # the next member of its class by index, -1 at the end
PRV = 3      # the previous member, -1 at the start
HEAD = 4     # [per class id] the lowest-index member; -1: the id is unused
TAIL = 5     # [per class id] the highest-index member
HSH = 6      # [per class id] the hash of the class's kind and free state (its 64 bits as int64)
UNUSED = 7   # a stack of unused class ids, bounds[N_UNUSED] deep
# Slots only (balanced), per host:
SLOT = 8     # the slot whose list holds the host, -1 if none
SNEXT = 9    # the next host in that list, -1 at the end
SPREV = 10   # the previous host, -1 at the start
HNC = 11     # a live host's largest free CPU on one node
HNM = 12     # ... and memory
HA = 13      # ... and its balance value a(h)
HTJ = 14     # rows HTJ .. HTJ + NJ - 1: a live host's own joint values
HOST_ROWS = HTJ + NJ


@njit(**config.NUMBA_INLINE_KWARGS)
def p1_by_min(policy):
    return policy == POLICY_BEST_FIT or policy == POLICY_BALANCED


@njit(**config.NUMBA_INLINE_KWARGS)
def uses_classes(policy):
    """Hosts are grouped into classes (else each live host is its own class, for good), as in
    _core.pyx: worst-fit's and dot-product's bounds already prune identical hosts, and classes
    would cost them a second leaf update per commit."""
    return policy != POLICY_WORST_FIT and policy != POLICY_DOT_PRODUCT


@njit(**config.NUMBA_INLINE_KWARGS)
def uses_joint(policy):
    """The joint node test is kept and tested (as _core.pyx's x.joint = x.classes): it pays where
    the best-ranked hosts are often too fragmented to take a request (packing fills them, balance
    draws the fullest near the target); the spreading scores rank the emptiest first, which
    rarely fail it, and would only pay its upkeep."""
    return uses_classes(policy)


@njit(**config.NUMBA_INLINE_KWARGS)
def joint(c, m, s):
    """min(c << s, m) without overflow. A node (c, m) holds a share (c', m') only if its joint
    value is at least the share's for every s: the test TJ makes of one node holding both."""
    if c > (m >> s):
        return m
    return c << s


@njit(**config.NUMBA_INLINE_KWARGS)
def joint_values(free_c, free_m, hu, mask, out, row, col):
    """out[row + j, col] = the largest joint(free_c, free_m, S0 + SJ * j) over host hu's present
    nodes (mask), for j < NJ: a leaf's TJ columns (out = tree.T, the node-major tree's
    transpose) or a host's HTJ rows (out = hosts)."""
    for j in range(NJ):
        out[np.uintp(row + j), col] = 0
    for k in range(free_c.shape[1]):
        if (mask >> np.uint64(k)) & _U1:
            ku = np.uintp(k)
            fc = free_c[hu, ku]
            fm = free_m[hu, ku]
            for j in range(NJ):
                v = joint(fc, fm, S0 + SJ * j)
                if v > out[np.uintp(row + j), col]:
                    out[np.uintp(row + j), col] = v


@njit(**config.NUMBA_INLINE_KWARGS)
def empty_leaf(tree, ext, n, p1_min, dot):
    """Leaf n holds no host that takes new work: it passes no test and is neutral in pull."""
    for row in range(4):  # TC, TM, NC, NM
        tree[n, np.uintp(row)] = EMPTY
    tree[n, P1] = BIG if p1_min else -BIG
    tree[n, P2] = -BIG
    for j in range(NJ):  # TJ columns, whether kept or not: cheap, and neutral
        tree[n, np.uintp(TJ + j)] = EMPTY
    if dot:
        ext[n, 0] = 0  # no vertex: neutral in the merge
    elif ext.shape[1] == TOP:  # worst-fit
        for j in range(TOP - 1):
            ext[n, np.uintp(j)] = -1  # no host's state
        ext[n, T_G2] = -BIG


@njit(**config.NUMBA_INLINE_KWARGS)
def leaf_values(tree, ext, hosts, P, h, free_c, free_m, present, tot_cap_c, tot_cap_m,
                tot_free_c, tot_free_m, policy, wc, wm):
    """Write host h's values into its leaf (EMPTY when it takes no new work)."""
    n = np.uintp(P + h)
    hu = np.uintp(h)
    c = hosts[CLS, hu]
    if c < 0 or hosts[HEAD, np.uintp(c)] != h:
        # outside the index, or a later member of its class
        empty_leaf(tree, ext, n, p1_by_min(policy), policy == POLICY_DOT_PRODUCT)
        return
    mask = present[hu]
    nc, nm = node_maxima(free_c, free_m, hu, mask)
    fc = tot_free_c[hu]
    fm = tot_free_m[hu]
    cc = tot_cap_c[hu]
    cm = tot_cap_m[hu]
    tree[n, TC] = fc
    tree[n, TM] = fm
    tree[n, NC] = nc
    tree[n, NM] = nm
    tree[n, P1] = 0
    tree[n, P2] = 0
    if uses_joint(policy):
        joint_values(free_c, free_m, hu, mask, tree.T, TJ, n)
    if policy == POLICY_BEST_FIT:
        tree[n, P1] = wc * fx(fc, cc) + wm * fx(fm, cm)
    elif policy == POLICY_WORST_FIT:
        # g at fine()'s resolution: the bound (g - k1) >> 16 then floors the sum once
        tree[n, P1] = wc * fine(fc, cc) + wm * fine(fm, cm)
        ext[n, T_FC] = fc
        ext[n, T_FM] = fm
        ext[n, T_CC] = cc
        ext[n, T_CM] = cm
        ext[n, T_G2] = -BIG
    elif policy == POLICY_DOT_PRODUCT:
        ext[n, 0] = 1
        ext[n, 1] = fx(fc, cc)
        ext[n, 2] = fx(fm, cm)
    elif policy == POLICY_BALANCED:
        g = fx(cc - fc, cc) - fx(cm - fm, cm)
        tree[n, P1] = g
        tree[n, P2] = g


@njit(**config.NUMBA_INLINE_KWARGS)
def live(hosts, h):
    """Host h takes new work and heads its class: the search must see it."""
    c = hosts[CLS, np.uintp(h)]
    return c >= 0 and hosts[HEAD, np.uintp(c)] == h


@njit(**config.NUMBA_INLINE_KWARGS)
def value_slot(a, shift, P):
    """The slot of balance value a (in [-2**16, 2**16])."""
    v = (a + FIXED_ONE) >> shift
    return v if v < P else P - 1


@njit(**config.NUMBA_INLINE_KWARGS)
def slot_of(hosts, bounds, P, h):
    """The slot of live host h, from its cached a(h)."""
    return value_slot(hosts[HA, np.uintp(h)], bounds[SHIFT], P)


@njit(**config.NUMBA_INLINE_KWARGS)
def host_cache(hosts, h, free_c, free_m, present, tot_cap_c, tot_cap_m, tot_free_c, tot_free_m):
    """Cache live host h's slot values: its largest free amount on one node, a(h) =
    fx(used CPU) - fx(used memory) in [-2**16, 2**16] (the balanced policy's p1), and its joint
    values."""
    hu = np.uintp(h)
    mask = present[hu]
    nc, nm = node_maxima(free_c, free_m, hu, mask)
    hosts[HNC, hu] = nc
    hosts[HNM, hu] = nm
    cc = tot_cap_c[hu]
    cm = tot_cap_m[hu]
    hosts[HA, hu] = fx(cc - tot_free_c[hu], cc) - fx(cm - tot_free_m[hu], cm)
    joint_values(free_c, free_m, hu, mask, hosts, HTJ, hu)


@njit(**config.NUMBA_INLINE_KWARGS)
def slot_values(tree, hosts, P, v, tot_free_c, tot_free_m):
    """Write slot v's values into its leaf: the fold of its hosts' cached values (balanced);
    False if the leaf held them already."""
    n = np.uintp(P + v)
    h = tree[np.uintp(v), SHEAD]
    tc = EMPTY
    tm = EMPTY
    nc = EMPTY
    nm = EMPTY
    lo = BIG
    hi = -BIG
    mi = BIG
    t0 = EMPTY
    t1 = EMPTY
    t2 = EMPTY
    t3 = EMPTY
    while h >= 0:
        hu = np.uintp(h)
        t0 = max(t0, hosts[HTJ, hu])
        t1 = max(t1, hosts[HTJ + 1, hu])
        t2 = max(t2, hosts[HTJ + 2, hu])
        t3 = max(t3, hosts[HTJ + 3, hu])
        tc = max(tc, tot_free_c[hu])
        tm = max(tm, tot_free_m[hu])
        nc = max(nc, hosts[HNC, hu])
        nm = max(nm, hosts[HNM, hu])
        a = hosts[HA, hu]
        lo = min(lo, a)
        hi = max(hi, a)
        mi = min(mi, h)
        h = hosts[SNEXT, hu]
    changed = (tree[n, TC] != tc or tree[n, TM] != tm or tree[n, NC] != nc
               or tree[n, NM] != nm or tree[n, P1] != lo or tree[n, P2] != hi
               or tree[n, MI] != mi or tree[n, TJ] != t0 or tree[n, TJ + 1] != t1
               or tree[n, TJ + 2] != t2 or tree[n, TJ + 3] != t3)
    tree[n, TC] = tc
    tree[n, TM] = tm
    tree[n, NC] = nc
    tree[n, NM] = nm
    tree[n, P1] = lo
    tree[n, P2] = hi
    tree[n, MI] = mi
    tree[n, TJ] = t0
    tree[n, TJ + 1] = t1
    tree[n, TJ + 2] = t2
    tree[n, TJ + 3] = t3
    return changed


@njit(**config.NUMBA_INLINE_KWARGS)
def slot_add(tree, hosts, P, v, h, tot_free_c, tot_free_m):
    """Fold host h, just added to slot v's list, into the slot's leaf; False if nothing
    changed."""
    n = np.uintp(P + v)
    hu = np.uintp(h)
    changed = False
    if tot_free_c[hu] > tree[n, TC]:
        tree[n, TC] = tot_free_c[hu]
        changed = True
    if tot_free_m[hu] > tree[n, TM]:
        tree[n, TM] = tot_free_m[hu]
        changed = True
    if hosts[HNC, hu] > tree[n, NC]:
        tree[n, NC] = hosts[HNC, hu]
        changed = True
    if hosts[HNM, hu] > tree[n, NM]:
        tree[n, NM] = hosts[HNM, hu]
        changed = True
    a = hosts[HA, hu]
    if a < tree[n, P1]:
        tree[n, P1] = a
        changed = True
    if a > tree[n, P2]:
        tree[n, P2] = a
        changed = True
    if h < tree[n, MI]:
        tree[n, MI] = h
        changed = True
    for j in range(NJ):
        if hosts[np.uintp(HTJ + j), hu] > tree[n, np.uintp(TJ + j)]:
            tree[n, np.uintp(TJ + j)] = hosts[np.uintp(HTJ + j), hu]
            changed = True
    return changed


@njit(**config.NUMBA_INLINE_KWARGS)
def cross(ox, oy, ax, ay, bx, by):
    return (ax - ox) * (by - oy) - (ay - oy) * (bx - ox)


@njit(**config.NUMBA_JIT_KWARGS)
def hull_pull(ext, n, a, b, scratch):
    """ext[n] = the upper-right chain of the vertices of chains ext[a] and ext[b] (see the
    index's comment); False if it is what ext[n] held. Coordinates are at most 2**16, so every
    product fits in int64. Builds the chain in scratch rows SX, SY (at most 2 * HC vertices).

    The chain starts at the highest vertex (the rightmost of equals), which heads ext[a] or
    ext[b]: the other chain's vertices up to its X are dominated and skipped. The rest are taken
    by X ascending (Y descending on equal X) straight into the upper hull: a vertex of an X
    already taken is lower, and a vertex is dropped while it does not turn the chain
    clockwise."""
    if ext[a, 0] == 0 or ext[b, 0] == 0:
        src = b if ext[a, 0] == 0 else a
        k = ext[src, 0]
        for t in range(k):
            scratch[SX, np.uintp(t)] = ext[src, np.uintp(1 + 2 * t)]
            scratch[SY, np.uintp(t)] = ext[src, np.uintp(2 + 2 * t)]
        return chain_store(ext, n, k, scratch)
    if ext[a, 2] > ext[b, 2] or (ext[a, 2] == ext[b, 2] and ext[a, 1] >= ext[b, 1]):
        s = a
        o = b
    else:
        s = b
        o = a
    ns = ext[s, 0]
    no = ext[o, 0]
    i = 1
    j = 0
    while j < no and ext[o, np.uintp(1 + 2 * j)] <= ext[s, 1]:
        j += 1
    scratch[SX, 0] = ext[s, 1]
    scratch[SY, 0] = ext[s, 2]
    k = 1
    while i < ns or j < no:
        if j >= no or (i < ns and (ext[s, np.uintp(1 + 2 * i)] < ext[o, np.uintp(1 + 2 * j)] or (
                ext[s, np.uintp(1 + 2 * i)] == ext[o, np.uintp(1 + 2 * j)]
                and ext[s, np.uintp(2 + 2 * i)] >= ext[o, np.uintp(2 + 2 * j)]))):
            px = ext[s, np.uintp(1 + 2 * i)]
            py = ext[s, np.uintp(2 + 2 * i)]
            i += 1
        else:
            px = ext[o, np.uintp(1 + 2 * j)]
            py = ext[o, np.uintp(2 + 2 * j)]
            j += 1
        if px == scratch[SX, np.uintp(k - 1)]:
            continue
        while k >= 2 and cross(scratch[SX, np.uintp(k - 2)], scratch[SY, np.uintp(k - 2)],
                               scratch[SX, np.uintp(k - 1)], scratch[SY, np.uintp(k - 1)],
                               px, py) >= 0:
            k -= 1
        scratch[SX, np.uintp(k)] = px
        scratch[SY, np.uintp(k)] = py
        k += 1
    # Too long: replace the neighbours whose corner adds least by that corner.
    while k > HC:
        best = 0
        area = -1
        for t in range(k - 1):
            tu = np.uintp(t)
            v = ((scratch[SX, tu + np.uintp(1)] - scratch[SX, tu])
                 * (scratch[SY, tu] - scratch[SY, tu + np.uintp(1)]))
            if area < 0 or v < area:
                area = v
                best = t
        scratch[SX, np.uintp(best)] = scratch[SX, np.uintp(best + 1)]
        for t in range(best + 1, k - 1):
            scratch[SX, np.uintp(t)] = scratch[SX, np.uintp(t + 1)]
            scratch[SY, np.uintp(t)] = scratch[SY, np.uintp(t + 1)]
        k -= 1
    return chain_store(ext, n, k, scratch)


@njit(**config.NUMBA_INLINE_KWARGS)
def chain_store(ext, n, k, scratch):
    """ext[n] = the first k vertices of scratch rows SX, SY; False if it held them already."""
    changed = ext[n, 0] != k
    ext[n, 0] = k
    for t in range(k):
        tu = np.uintp(t)
        x = scratch[SX, tu]
        y = scratch[SY, tu]
        if ext[n, np.uintp(1 + 2 * t)] != x or ext[n, np.uintp(2 + 2 * t)] != y:
            changed = True
        ext[n, np.uintp(1 + 2 * t)] = x
        ext[n, np.uintp(2 + 2 * t)] = y
    return changed


@njit(**config.NUMBA_INLINE_KWARGS)
def pull(tree, ext, n, policy, scratch):
    """Node n's values from its two children; False if none of them changed (so no ancestor's
    does)."""
    p1_min = p1_by_min(policy)
    dot = policy == POLICY_DOT_PRODUCT
    nu = np.uintp(n)
    a = np.uintp(2 * n)
    b = np.uintp(2 * n + 1)
    changed = False
    for row in range(4):  # TC, TM, NC, NM: largest
        r = np.uintp(row)
        v = tree[a, r] if tree[a, r] > tree[b, r] else tree[b, r]
        if v != tree[nu, r]:
            changed = True
        tree[nu, r] = v
    if p1_min:
        v = tree[a, P1] if tree[a, P1] < tree[b, P1] else tree[b, P1]
    else:
        v = tree[a, P1] if tree[a, P1] > tree[b, P1] else tree[b, P1]
    if v != tree[nu, P1]:
        changed = True
    tree[nu, P1] = v
    v = tree[a, P2] if tree[a, P2] > tree[b, P2] else tree[b, P2]
    if v != tree[nu, P2]:
        changed = True
    tree[nu, P2] = v
    if uses_joint(policy):
        for j in range(NJ):
            r = np.uintp(TJ + j)
            v = tree[a, r] if tree[a, r] > tree[b, r] else tree[b, r]
            if v != tree[nu, r]:
                changed = True
            tree[nu, r] = v
    if policy == POLICY_BALANCED:  # slots: the lowest host index below
        v = tree[a, MI] if tree[a, MI] < tree[b, MI] else tree[b, MI]
        if v != tree[nu, MI]:
            changed = True
        tree[nu, MI] = v
    if dot:
        if hull_pull(ext, nu, a, b, scratch):
            changed = True
    elif ext.shape[1] == TOP:  # worst-fit (ext's width says whose values it holds): top_pull
        # node n's top state (the state of its hosts with the largest g, if one state has it
        # alone) and g2, the largest g of the hosts in any other state
        same_state = True
        for j in range(TOP - 1):
            if ext[a, np.uintp(j)] != ext[b, np.uintp(j)]:
                same_state = False
                break
        if same_state:
            src = a
            g2 = max(ext[a, T_G2], ext[b, T_G2])
        else:
            src = a if tree[a, P1] >= tree[b, P1] else b
            other = b if src == a else a
            g2 = max(ext[src, T_G2], tree[other, P1])
        if g2 != ext[nu, T_G2]:
            changed = True
        for j in range(TOP - 1):
            ju = np.uintp(j)
            if ext[nu, ju] != ext[src, ju]:
                changed = True
            ext[nu, ju] = ext[src, ju]
        ext[nu, T_G2] = g2
    return changed


@njit(**config.NUMBA_INLINE_KWARGS)
def climb(tree, ext, n, policy, scratch):
    """Leaf n changed: refresh its ancestors, up to the first that stays the same (every node
    above it is then unchanged too)."""
    n >>= 1
    while n >= 1 and pull(tree, ext, n, policy, scratch):
        n >>= 1


@njit(**config.NUMBA_JIT_KWARGS)
def same_kind(cap_c, cap_m, dist, sched, a, b):
    """Hosts a and b have equal capacities, distance matrices and schedulable flags."""
    au = np.uintp(a)
    bu = np.uintp(b)
    if sched[au] != sched[bu]:
        return False
    for k in range(cap_c.shape[1]):
        ku = np.uintp(k)
        if cap_c[au, ku] != cap_c[bu, ku] or cap_m[au, ku] != cap_m[bu, ku]:
            return False
    if dist.shape[0] > 1:
        for k in range(dist.shape[1]):
            for j in range(dist.shape[2]):
                if dist[au, np.uintp(k), np.uintp(j)] != dist[bu, np.uintp(k), np.uintp(j)]:
                    return False
    return True


@njit(**config.NUMBA_INLINE_KWARGS)
def same_free(free_c, free_m, a, b):
    """Hosts a and b have the same free capacity on every node."""
    au = np.uintp(a)
    bu = np.uintp(b)
    for k in range(free_c.shape[1]):
        ku = np.uintp(k)
        if free_c[au, ku] != free_c[bu, ku] or free_m[au, ku] != free_m[bu, ku]:
            return False
    return True


# ---------------------------------------------------------------------------------------------
# Host classes (_core.pyx's, the same hash and the same table, so both kernels do the same
# work). Two hosts of the same kind (capacities, distances, schedulable flag) with the same free
# state answer every request alike: same feasibility, width, node set and score, so the scan
# takes the lower index of the two. Only the head (lowest-index member) of each class is live in
# the index; the other members hold EMPTY leaves and cost the search nothing, however many there
# are and wherever they lie. A commit moves its host from one class to another (three leaves
# change at most: the host, the next member of the class it left, the head it displaced).
# Invariants after every commit, for every schedulable host h with a present node:
#   hosts[CLS, h] is the class of (kind[h], free state of h); h is in that class's list exactly
#   once; each list is sorted by host index, HEAD/TAIL are its ends; its hash HSH[c] is the
#   table's key for c, reached from HSH[c] & (2P - 1) by linear probing without crossing an
#   empty slot (the table, 2P slots for at most H <= P classes, is never more than half full).
# Unschedulable hosts and hosts without present nodes have CLS = -1 and take no new work.
# Under worst-fit and dot-product (not uses_classes) each live host h is its own class for good
# (CLS = HEAD = h), never in the table, and a commit refreshes its leaf only.
# ---------------------------------------------------------------------------------------------
HASH_MUL = np.uint64(0x9E3779B97F4A7C15)
_M64 = (1 << 64) - 1

if numba_config.DISABLE_JIT:
    def wrap_mul(a, b):
        """a * b modulo 2**64 (plain Python: numpy scalars would warn on the wrap-around)."""
        return np.uint64((int(a) * int(b)) & _M64)
else:
    @njit(**config.NUMBA_INLINE_KWARGS)
    def wrap_mul(a, b):
        """a * b modulo 2**64 (uint64 arithmetic wraps in machine code)."""
        return a * b


@njit(**config.NUMBA_INLINE_KWARGS)
def hash_step(hv, v):
    """_core.pyx's hash_step: mix the value v >= 0 into the uint64 hash hv."""
    hv = wrap_mul(hv ^ np.uint64(v), HASH_MUL)
    return hv ^ (hv >> np.uint64(29))


@njit(**config.NUMBA_INLINE_KWARGS)
def kind_hash(cap_c, cap_m, dist, sched, h):
    hu = np.uintp(h)
    hv = hash_step(_U0, sched[hu])
    for k in range(cap_c.shape[1]):
        ku = np.uintp(k)
        hv = hash_step(hash_step(hv, cap_c[hu, ku]), cap_m[hu, ku])
    if dist.shape[0] > 1:
        for k in range(dist.shape[1]):
            for j in range(dist.shape[2]):
                hv = hash_step(hv, dist[hu, np.uintp(k), np.uintp(j)])
    return hv


@njit(**config.NUMBA_INLINE_KWARGS)
def class_hash(hosts, free_c, free_m, h):
    """The hash of host h's kind and free state, its 64 bits as int64 (as HSH stores it)."""
    hu = np.uintp(h)
    hv = hash_step(_U0, hosts[KIND, hu])
    for k in range(free_c.shape[1]):
        ku = np.uintp(k)
        hv = hash_step(hash_step(hv, free_c[hu, ku]), free_m[hu, ku])
    return np.int64(hv)


@njit(**config.NUMBA_INLINE_KWARGS)
def table_delete(tree, hosts, bounds, c):
    """Remove class id c from the table, shifting later entries of its probe run back."""
    mask = bounds[TMASK]
    i = hosts[HSH, np.uintp(c)] & mask
    while tree[np.uintp(i), TABLE] != c:
        i = (i + 1) & mask
    j = i
    while True:
        j = (j + 1) & mask
        e = tree[np.uintp(j), TABLE]
        if e < 0:
            break
        home = hosts[HSH, np.uintp(e)] & mask
        # The entry at j stays if its home lies cyclically in (i, j]; else it moves to the hole.
        if (i <= j and i < home <= j) or (i > j and (home > i or home <= j)):
            continue
        tree[np.uintp(i), TABLE] = e
        i = j
    tree[np.uintp(i), TABLE] = -1


@njit(**config.NUMBA_INLINE_KWARGS)
def class_leave(tree, hosts, bounds, P, h):
    """Take host h out of its class; returns the member that became head (-1 if none did)."""
    hu = np.uintp(h)
    c = hosts[CLS, hu]
    cu = np.uintp(c)
    was_head = hosts[HEAD, cu] == h
    p = hosts[PRV, hu]
    q = hosts[NXT, hu]
    if p >= 0:
        hosts[NXT, np.uintp(p)] = q
    else:
        hosts[HEAD, cu] = q
    if q >= 0:
        hosts[PRV, np.uintp(q)] = p
    else:
        hosts[TAIL, cu] = p
    hosts[CLS, hu] = -1
    if hosts[HEAD, cu] < 0:
        table_delete(tree, hosts, bounds, c)
        hosts[UNUSED, np.uintp(bounds[N_UNUSED])] = c
        bounds[N_UNUSED] += 1
        return np.int64(-1)
    return hosts[HEAD, cu] if was_head else np.int64(-1)


@njit(**config.NUMBA_INLINE_KWARGS)
def class_join(tree, hosts, bounds, P, free_c, free_m, h):
    """Put host h (in no class) into the class of its kind and free state, creating it if need
    be; returns the former head it displaced (-1 if none)."""
    hu = np.uintp(h)
    mask = bounds[TMASK]
    hv = class_hash(hosts, free_c, free_m, h)
    i = hv & mask
    while tree[np.uintp(i), TABLE] >= 0:
        c = tree[np.uintp(i), TABLE]
        cu = np.uintp(c)
        first = hosts[HEAD, cu]
        if (hosts[HSH, cu] == hv and hosts[KIND, np.uintp(first)] == hosts[KIND, hu]
                and same_free(free_c, free_m, first, h)):
            hosts[CLS, hu] = c
            # Insert by index, searching from the tail: hosts mostly join in increasing order.
            p = hosts[TAIL, cu]
            while p >= 0 and p > h:
                p = hosts[PRV, np.uintp(p)]
            hosts[PRV, hu] = p
            if p < 0:
                hosts[NXT, hu] = first
                hosts[PRV, np.uintp(first)] = h
                hosts[HEAD, cu] = h
                return first
            pu = np.uintp(p)
            q = hosts[NXT, pu]
            hosts[NXT, hu] = q
            if q >= 0:
                hosts[PRV, np.uintp(q)] = h
            else:
                hosts[TAIL, cu] = h
            hosts[NXT, pu] = h
            return np.int64(-1)
        i = (i + 1) & mask
    bounds[N_UNUSED] -= 1
    c = hosts[UNUSED, np.uintp(bounds[N_UNUSED])]
    cu = np.uintp(c)
    tree[np.uintp(i), TABLE] = c
    hosts[HSH, cu] = hv
    hosts[HEAD, cu] = h
    hosts[TAIL, cu] = h
    hosts[NXT, hu] = -1
    hosts[PRV, hu] = -1
    hosts[CLS, hu] = c
    return np.int64(-1)


@njit(**config.NUMBA_JIT_KWARGS)
def index_build(tree, ext, hosts, bounds, P, cap_c, cap_m, dist, free_c, free_m, sched,
                present, n_present, tot_cap_c, tot_cap_m, tot_free_c, tot_free_m, policy, wc, wm,
                scratch):
    H = cap_c.shape[0]
    K = cap_c.shape[1]
    p1_min = p1_by_min(policy)
    dot = policy == POLICY_DOT_PRODUCT
    bounds[:N_UNUSED + 1] = 0   # SHIFT and TMASK are place_into's
    bounds[MIN_NODE_C] = -1
    bounds[MIN_NODE_M] = -1
    for h in range(H):
        if n_present[h] == 0:
            continue
        cc = tot_cap_c[h]
        cm = tot_cap_m[h]
        if cc > 0 and (bounds[MIN_CAP_C] == 0 or cc < bounds[MIN_CAP_C]):
            bounds[MIN_CAP_C] = cc
        if cm > 0 and (bounds[MIN_CAP_M] == 0 or cm < bounds[MIN_CAP_M]):
            bounds[MIN_CAP_M] = cm
        bounds[MAX_CAP_C] = max(bounds[MAX_CAP_C], cc)
        bounds[MAX_CAP_M] = max(bounds[MAX_CAP_M], cm)
        bounds[MAX_PRESENT] = max(bounds[MAX_PRESENT], n_present[h])
        for k in range(K):
            if (present[h] >> np.uint64(k)) & _U1:
                if bounds[MIN_NODE_C] < 0 or cap_c[h, k] < bounds[MIN_NODE_C]:
                    bounds[MIN_NODE_C] = cap_c[h, k]
                if bounds[MIN_NODE_M] < 0 or cap_m[h, k] < bounds[MIN_NODE_M]:
                    bounds[MIN_NODE_M] = cap_m[h, k]
    # Kinds: the table maps a kind's hash to its lowest-index host while they are found.
    mask = bounds[TMASK]
    tree[:, TABLE] = -1
    for h in range(H):
        i = np.int64(kind_hash(cap_c, cap_m, dist, sched, h) & np.uint64(mask))
        while tree[i, TABLE] >= 0 and not same_kind(cap_c, cap_m, dist, sched, tree[i, TABLE], h):
            i = (i + 1) & mask
        if tree[i, TABLE] < 0:
            tree[i, TABLE] = h
        hosts[KIND, h] = tree[i, TABLE]
    # Classes: every schedulable host with a present node joins in index order.
    tree[:, TABLE] = -1
    bounds[N_UNUSED] = H
    for c in range(H):
        hosts[HEAD, c] = -1
        hosts[UNUSED, c] = H - 1 - c  # ids are taken from the top of the stack: 0, 1, 2, ...
    classes = uses_classes(policy)
    for h in range(H):
        hosts[CLS, h] = -1
        if sched[h] and n_present[h] > 0:
            if classes:
                class_join(tree, hosts, bounds, P, free_c, free_m, h)
            else:
                hosts[CLS, h] = h  # a class of its own, for good
                hosts[HEAD, h] = h
    if bounds[SHIFT] < 0:
        for h in range(H):
            leaf_values(tree, ext, hosts, P, h, free_c, free_m, present, tot_cap_c, tot_cap_m,
                        tot_free_c, tot_free_m, policy, wc, wm)
        for n in range(P + H, 2 * P):
            empty_leaf(tree, ext, np.uintp(n), p1_min, dot)
    else:
        for i in range(P):
            tree[i, SHEAD] = -1
        for h in range(H - 1, -1, -1):  # lists start in index order
            hosts[SLOT, h] = -1
            if live(hosts, h):
                host_cache(hosts, h, free_c, free_m, present, tot_cap_c, tot_cap_m, tot_free_c,
                           tot_free_m)
                i = slot_of(hosts, bounds, P, h)
                hosts[SLOT, h] = i
                hosts[SPREV, h] = -1
                first = tree[i, SHEAD]
                hosts[SNEXT, h] = first
                if first >= 0:
                    hosts[SPREV, first] = h
                tree[i, SHEAD] = h
        for i in range(P):
            slot_values(tree, hosts, P, i, tot_free_c, tot_free_m)
    for n in range(P - 1, 0, -1):
        pull(tree, ext, n, policy, scratch)


@njit(**config.NUMBA_INLINE_KWARGS)
def index_update(tree, ext, hosts, bounds, P, h, free_c, free_m, present, tot_cap_c,
                 tot_cap_m, tot_free_c, tot_free_m, policy, wc, wm, scratch):
    """Host h's free state or liveness changed: bring its leaf (its slot's, under slots) and
    their ancestors up to date."""
    if bounds[SHIFT] < 0:
        leaf_values(tree, ext, hosts, P, h, free_c, free_m, present, tot_cap_c, tot_cap_m,
                    tot_free_c, tot_free_m, policy, wc, wm)
        climb(tree, ext, P + h, policy, scratch)
        return
    # Every slot's leaf holds the exact fold of its hosts (pending reasons read the root).
    hu = np.uintp(h)
    old = hosts[SLOT, hu]
    new = np.int64(-1)
    if live(hosts, h):
        host_cache(hosts, h, free_c, free_m, present, tot_cap_c, tot_cap_m, tot_free_c,
                   tot_free_m)
        new = slot_of(hosts, bounds, P, h)
    if old >= 0:
        p = hosts[SPREV, hu]
        q = hosts[SNEXT, hu]
        if p >= 0:
            hosts[SNEXT, np.uintp(p)] = q
        else:
            tree[np.uintp(old), SHEAD] = q
        if q >= 0:
            hosts[SPREV, np.uintp(q)] = p
        hosts[SLOT, hu] = -1
        if old != new and slot_values(tree, hosts, P, old, tot_free_c, tot_free_m):
            climb(tree, ext, P + old, policy, scratch)
    if new >= 0:
        nu = np.uintp(new)
        hosts[SLOT, hu] = new
        # In index order, as _core.pyx (see there).
        before = np.int64(-1)
        after = tree[nu, SHEAD]
        while after >= 0 and after < h:
            before = after
            after = hosts[SNEXT, np.uintp(after)]
        hosts[SPREV, hu] = before
        hosts[SNEXT, hu] = after
        if before >= 0:
            hosts[SNEXT, np.uintp(before)] = h
        else:
            tree[nu, SHEAD] = h
        if after >= 0:
            hosts[SPREV, np.uintp(after)] = h
        # Staying in its slot, h may have lowered one of the slot's maxima: fold all again.
        if old == new:
            changed = slot_values(tree, hosts, P, new, tot_free_c, tot_free_m)
        else:
            changed = slot_add(tree, hosts, P, new, h, tot_free_c, tot_free_m)
        if changed:
            climb(tree, ext, P + new, policy, scratch)


@njit(**config.NUMBA_INLINE_KWARGS)
def ceil_div(a, b):
    return (a + b - 1) // b


@njit(**config.NUMBA_INLINE_KWARGS)
def query_init(tree, bounds, qv, policy, wc, wm, c, m, mode):
    """The constants of _core.pyx's query_init, written into qv (Q_NC ... Q_JV); False when no
    host can fit the request now. In an array, not returned, so that index_find's call stays
    short (see there).

    With dc = fx(c, cap_c) of a host that could take r (so c <= cap_c and dc <= 1.0), the bounds
    use dc between fx(c, max_cap_c) and min(1.0, fx(c, min_cap_c)), and the same for memory."""
    one = np.int64(FIXED_ONE)
    if tree[1, TC] < c or tree[1, TM] < m:
        return False
    need_nc = np.int64(0)
    need_nm = np.int64(0)
    if mode == MODE_SINGLE:
        need_nc = c
        need_nm = m
    elif mode == MODE_RESTRICTED or mode == MODE_BEST_EFFORT:
        w = bounds[MAX_PRESENT]
        if mode == MODE_RESTRICTED and bounds[MIN_NODE_C] > 0 and bounds[MIN_NODE_M] > 0:
            lo = max(ceil_div(c, bounds[MIN_NODE_C]), ceil_div(m, bounds[MIN_NODE_M]))
            if lo < w:
                w = lo
        need_nc = ceil_div(c, w)
        need_nm = ceil_div(m, w)
    # The set's first node takes both shares: test one node for both, at the ratio nearest the
    # request's (any ratio gives a necessary condition; the nearest, the sharpest).
    jj = 0
    while jj < NJ - 1 and (need_nm >> (S0 + SJ * (jj + 1))) >= need_nc:
        jj += 1
    qv[Q_JJ] = jj
    qv[Q_JV] = joint(need_nc, need_nm, S0 + SJ * jj)
    dc_lo = fx(c, bounds[MAX_CAP_C])
    dm_lo = fx(m, bounds[MAX_CAP_M])
    dc_hi = one if bounds[MIN_CAP_C] == 0 else min(one, (c << FIXED_SHIFT) // bounds[MIN_CAP_C])
    dm_hi = one if bounds[MIN_CAP_M] == 0 else min(one, (m << FIXED_SHIFT) // bounds[MIN_CAP_M])
    k1 = np.int64(0)
    k2 = np.int64(0)
    if policy == POLICY_BEST_FIT:
        # room = wc*fx(fc - c) + wm*fx(fm - m) >= g - wc*dc - wm*dm - (wc + wm), and >= 0
        k1 = (wc + wm) * one
        k2 = wc * dc_hi + wm * dm_hi + wc + wm
    elif policy == POLICY_WORST_FIT:
        # score = sum w*floor(x - y) <= floor(sum w*(x - y)), x = fc/cap, y >= c/max_cap: with
        # g and k1 at 2**32 resolution, score <= (g - k1) >> 16
        k1 = (wc * fine(c, bounds[MAX_CAP_C]) + wm * fine(m, bounds[MAX_CAP_M])) - wc - wm
    elif policy == POLICY_DOT_PRODUCT:
        # score = wc*dc*X + wm*dm*Y <= A*X + B*Y with (A, B) = (wc*dc_hi, wm*dm_hi) = (k1, k2)
        k1 = wc * dc_hi
        k2 = wm * dm_hi
    elif policy == POLICY_BALANCED:
        # uc - um lies in [a + dc - dm - 1, a + dc - dm + 1]; score = 1.0 - |uc - um|
        k1 = dc_lo - dm_hi - 1
        k2 = dc_hi - dm_lo + 1
    qv[Q_NC] = need_nc
    qv[Q_NM] = need_nm
    qv[Q_K1] = k1
    qv[Q_K2] = k2
    return True


@njit(**config.NUMBA_INLINE_KWARGS)
def score_bound(tree, ext, n, policy, wc, wm, c, m, k1, k2, cut):
    """An upper bound on host_score over the hosts below node n that can take the request.

    A bound below ``cut`` (the best score so far) prunes whatever its value, so where a cheap
    bound is already below it the exact one is not computed."""
    nu = np.uintp(n)
    if policy == POLICY_BEST_FIT:
        room = tree[nu, P1] - k2
        return k1 - (room if room > 0 else 0)
    if policy == POLICY_WORST_FIT:
        bound = (tree[nu, P1] - k1) >> FIXED_SHIFT
        if bound < cut:
            return bound   # the bound over all g, no division
        # the top state's exact score, or the largest g of any other state, bounded as before
        bound = (ext[nu, T_G2] - k1) >> FIXED_SHIFT
        fc = ext[nu, T_FC]
        fm = ext[nu, T_FM]
        if fc >= c and fm >= m:
            ex = wc * fx(fc - c, ext[nu, T_CC]) + wm * fx(fm - m, ext[nu, T_CM])
            if ex > bound:
                bound = ex
        return bound
    if policy == POLICY_DOT_PRODUCT:
        return chain_bound(ext, nu, k1, k2)
    if policy == POLICY_BALANCED:
        return balanced_bound(tree[nu, P1], tree[nu, P2], k1, k2)
    return np.int64(0)


@njit(**config.NUMBA_INLINE_KWARGS)
def balanced_bound(amin, amax, k1, k2):
    """Balanced: an upper bound on the score of hosts whose a lies in [amin, amax]."""
    lo = amin + k1
    hi = amax + k2
    if lo > 0:
        return FIXED_ONE - lo
    if hi < 0:
        return FIXED_ONE + hi
    return np.int64(FIXED_ONE)


@njit(**config.NUMBA_INLINE_KWARGS)
def chain_bound(ext, nu, A, B):
    """The largest A*X + B*Y over the vertices of node nu's chain (-1 for an empty chain)."""
    best = np.int64(-1)
    for t in range(ext[nu, 0]):
        v = A * ext[nu, np.uintp(1 + 2 * t)] + B * ext[nu, np.uintp(2 + 2 * t)]
        if v > best:
            best = v
    return best


@njit(**config.NUMBA_INLINE_KWARGS)
def beats(best_h, best_w, best_s, w, s, h, by_width):
    """Would (width w, score s, host h) rank before the best so far? The scan's order."""
    if best_h < 0:
        return True
    if by_width and w != best_w:
        return w < best_w
    if s != best_s:
        return s > best_s
    return h < best_h


@njit(**config.NUMBA_INLINE_KWARGS)
def push(stack, top, n, lo, w, s, span):
    tu = np.uintp(top)
    stack[ST_N, tu] = n
    stack[ST_LO, tu] = lo
    stack[ST_W, tu] = w
    stack[ST_S, tu] = s
    stack[ST_SPAN, tu] = span
    return top + 1


@njit(**config.NUMBA_INLINE_KWARGS)
def could_hold(tree, n, c, m, need_nc, need_nm, joint_on, jj, jv):
    """False only if no host below node n can take the request now (never False when one
    can)."""
    nu = np.uintp(n)
    return (tree[nu, TC] >= c and tree[nu, TM] >= m and tree[nu, NC] >= need_nc
            and tree[nu, NM] >= need_nm and (not joint_on or tree[nu, np.uintp(TJ + jj)] >= jv))


@njit(**config.NUMBA_INLINE_KWARGS)
def index_find(tree, ext, hosts, stack, qv, P, cap_c, cap_m, free_c, free_m, dist, present,
               n_present, uniform, tot_cap_c, tot_cap_m, tot_free_c, tot_free_m, policy, wc, wm, c,
               m, mode, scratch):
    """(best_h, best_w): the scan's choice of host for the request; best_h = -1 if none fits.

    Inlined into place_loop, so its call must stay under 30 arguments: CPython passes a longer
    call as *args, which Numba cannot inline (the compile then fails)."""
    by_width = mode == MODE_BEST_EFFORT
    slots = policy == POLICY_BALANCED
    dot = policy == POLICY_DOT_PRODUCT
    joint_on = uses_joint(policy)
    need_nc = qv[Q_NC]
    need_nm = qv[Q_NM]
    k1 = qv[Q_K1]
    k2 = qv[Q_K2]
    jj = qv[Q_JJ]
    jv = qv[Q_JV]
    best_h = np.int64(-1)
    best_w = np.int64(0)
    best_s = np.int64(0)
    # Depth first, the more promising child first: the search descends into it at once and
    # stacks its sibling, then pops the stacked nodes that can still beat the best so far.
    # n, lo, span, bound: the node to visit, its lowest index, its leaves, its score bound.
    n = np.int64(1)
    lo = tree[1, MI] if slots else np.int64(0)
    span = np.int64(P)
    bound = score_bound(tree, ext, 1, policy, wc, wm, c, m, k1, k2, -BIG) if dot else _Z
    if slots:
        # Every live host's slot lies between those of the smallest and the largest balance
        # (the root's P1 and P2): start at their lowest common ancestor, below the levels
        # where all hosts sit on one side.
        n = P + value_slot(tree[1, P1], qv[Q_SHIFT], P)
        v = P + value_slot(tree[1, P2], qv[Q_SHIFT], P)
        while n != v:
            n >>= 1
            v >>= 1
        lo = tree[n, MI]
    top = 0
    while True:
        # Node n passed the test below: it may hold a host that beats the best so far.
        go = False
        if n >= P:
            # A leaf: the head of its class (if it holds values), or under slots every host of
            # the slot's list.
            if slots:
                h = tree[np.uintp(n - P), SHEAD]
            else:
                h = lo
            while h >= 0:
                hu = np.uintp(h)
                cur = h
                h = hosts[SNEXT, hu] if slots else np.int64(-1)
                # consider(): score the host and keep it if it ranks before the best so far.
                # Under slots the node tests and the bound on the host's own cached values come
                # first: most hosts of a crowded slot fail one of them without a division.
                if slots and not (
                        hosts[HNC, hu] >= need_nc and hosts[HNM, hu] >= need_nm
                        and (not joint_on or hosts[np.uintp(HTJ + jj), hu] >= jv)
                        and (best_h < 0 or beats(best_h, best_w, best_s, _ONE,
                                                 balanced_bound(hosts[HA, hu], hosts[HA, hu],
                                                                k1, k2), cur, by_width))):
                    continue
                if tot_free_c[hu] < c or tot_free_m[hu] < m:
                    continue
                s = host_score(policy, wc, wm, tot_cap_c[hu], tot_cap_m[hu], tot_free_c[hu],
                               tot_free_m[hu], c, m)
                if by_width:
                    max_w = n_present[hu]
                    if best_h >= 0:
                        max_w = (best_w if beats(best_h, best_w, best_s, best_w, s, cur, True)
                                 else best_w - 1)
                    if max_w < 1:
                        continue
                else:
                    if not beats(best_h, best_w, best_s, _Z, s, cur, False):
                        continue
                    max_w = np.int64(MAX_K)
                w = fit_width(cap_c, cap_m, free_c, free_m, dist, cur, present[hu], n_present[hu],
                              uniform[hu], c, m, mode, max_w, scratch)
                if w > 0 and beats(best_h, best_w, best_s, w, s, cur, by_width):
                    best_h = cur
                    best_w = w
                    best_s = s
        else:
            # The children that could hold the request; the more promising one is visited
            # first, on equal promise the left one (lower indices, or values under slots).
            span >>= 1
            a = 2 * n
            b = 2 * n + 1
            ok_a = could_hold(tree, a, c, m, need_nc, need_nm, joint_on, jj, jv)
            ok_b = could_hold(tree, b, c, m, need_nc, need_nm, joint_on, jj, jv)
            if ok_a or ok_b:
                cut = best_s if best_h >= 0 else -BIG
                if dot and ok_a and ok_b:
                    # n's chain holds its children's vertices (or corners above them): its
                    # bound is the larger child bound, or above both. The right child's bound
                    # below it leaves it to the left child: a bound on it, exact unless a
                    # corner made it.
                    sb = score_bound(tree, ext, b, policy, wc, wm, c, m, k1, k2, cut)
                    sa = bound if sb < bound else score_bound(tree, ext, a, policy, wc, wm, c, m,
                                                              k1, k2, cut)
                else:
                    sa = score_bound(tree, ext, a, policy, wc, wm, c, m, k1, k2, cut) if ok_a else _Z
                    sb = score_bound(tree, ext, b, policy, wc, wm, c, m, k1, k2, cut) if ok_b else _Z
                wa = 1 if (not by_width or (tree[np.uintp(a), NC] >= c and tree[np.uintp(a), NM] >= m)) else 2
                wb = 1 if (not by_width or (tree[np.uintp(b), NC] >= c and tree[np.uintp(b), NM] >= m)) else 2
                lo_a = tree[np.uintp(a), MI] if slots else lo
                lo_b = tree[np.uintp(b), MI] if slots else lo + span
                right_first = not ok_a or (ok_b and ((by_width and wb < wa)
                                                     or ((not by_width or wb == wa) and sb > sa)))
                if right_first:
                    if ok_a:
                        top = push(stack, top, a, lo_a, wa, sa, span)
                    n, lo, w, bound = b, lo_b, wb, sb
                else:
                    if ok_b:
                        top = push(stack, top, b, lo_b, wb, sb, span)
                    n, lo, w, bound = a, lo_a, wa, sa
                # Skip a subtree that cannot beat the best: worse bound, or equal and only
                # higher indices (lo: the leftmost leaf's index, or under slots the stored one).
                go = best_h < 0 or beats(best_h, best_w, best_s, w, bound, lo, by_width)
        while not go:
            if top == 0:
                return best_h, best_w
            top -= 1
            tu = np.uintp(top)
            n = stack[ST_N, tu]
            lo = stack[ST_LO, tu]
            span = stack[ST_SPAN, tu]
            bound = stack[ST_S, tu]
            go = best_h < 0 or beats(best_h, best_w, best_s, stack[ST_W, tu], bound, lo, by_width)



@njit(**config.NUMBA_JIT_KWARGS)
def check_inputs(node_cpu, node_mem, distance, schedulable, free_cpu, free_mem, cpu, mem, mode,
                 required_host, policy, node_choice, cpu_weight, mem_weight):
    """The checks every driver makes before touching anything: STATUS_SHAPE when the cluster
    arrays ([H, K], distance [1 or H, K, K]) or the request arrays ([N]) disagree, STATUS_CODE
    for an unknown policy, node choice or mode code or a weight outside 0..MAX_WEIGHT, else
    STATUS_OK. The drivers check their own output arrays."""
    H = node_cpu.shape[0]
    K = node_cpu.shape[1]
    N = cpu.shape[0]
    if (node_mem.shape[0] != H or node_mem.shape[1] != K or free_cpu.shape[0] != H
            or free_cpu.shape[1] != K or free_mem.shape[0] != H or free_mem.shape[1] != K
            or schedulable.shape[0] != H or K > MAX_K or K < 1
            or distance.shape[1] != K or distance.shape[2] != K
            or not (distance.shape[0] == 1 or distance.shape[0] == H)
            or mem.shape[0] != N or mode.shape[0] != N or required_host.shape[0] != N):
        return STATUS_SHAPE
    if not (0 <= policy <= POLICY_DOT_PRODUCT and 0 <= node_choice <= NODE_SPREAD
            and 0 <= cpu_weight <= MAX_WEIGHT and 0 <= mem_weight <= MAX_WEIGHT):
        return STATUS_CODE
    for i in range(N):
        if mode[i] < MODE_NONE or mode[i] > MODE_BEST_EFFORT:
            return STATUS_CODE
    return STATUS_OK


@njit(**config.NUMBA_JIT_KWARGS)
def place_into(node_cpu, node_mem, distance, schedulable, cpu, mem, mode, required_host, order,
               policy, node_choice, cpu_weight, mem_weight, free_cpu, free_mem, out_host, out_cpu,
               out_mem, out_nodes, out_reason):
    """Place requests order[0], order[1], ... and write the results into the given arrays.

    The contract of ``numasched._core.place_into``, argument for argument: node_cpu, node_mem
    int64 [H, K]; distance int64 [D, K, K] (D = 1 or H); schedulable uint8 [H]; cpu, mem int64
    [N]; mode int8 [N] (resolved codes, no -1); required_host int32 [N]; order int64 [N] (a
    permutation of range(N)); policy, node_choice ints; cpu_weight, mem_weight ints in 0..1000
    (the host score's weights); free_cpu, free_mem int64 [H, K] (the free capacity, updated in
    place); out_host int32 [N] (starts -1); out_cpu, out_mem int64 [N, K],
    out_nodes uint64 [N], out_reason int8 [N] (start as zeros). Every array C-contiguous;
    capacities, free and amounts as validated by numasched.Cluster and numasched.Requests
    (numasched.api.place checks all of it; embedders calling this directly must too: unlike the
    Cython signature, a Numba dispatcher compiles a new specialisation for other dtypes rather
    than refusing them). Returns 0, or a non-zero status (see STATUS_MESSAGES) before anything is
    written. Runs without the GIL.
    """
    H = node_cpu.shape[0]
    K = node_cpu.shape[1]
    N = cpu.shape[0]
    status = check_inputs(node_cpu, node_mem, distance, schedulable, free_cpu, free_mem, cpu, mem,
                          mode, required_host, policy, node_choice, cpu_weight, mem_weight)
    if status != STATUS_OK:
        return status
    if (order.shape[0] != N or out_host.shape[0] != N or out_nodes.shape[0] != N
            or out_reason.shape[0] != N or out_cpu.shape[0] != N or out_cpu.shape[1] != K
            or out_mem.shape[0] != N or out_mem.shape[1] != K):
        return STATUS_SHAPE
    if N == 0:
        return STATUS_OK

    # Per-call (never per-request) state, [H] each, and the helpers' scratch.
    tot_cap_c, tot_cap_m, tot_free_c, tot_free_m, present, n_present, uniform = host_state(
        node_cpu, node_mem, free_cpu, free_mem)
    scratch = np.empty((SCRATCH_ROWS, SCRATCH_COLS), dtype=np.int64)

    policy = np.int64(policy)
    node_choice = np.int64(node_choice)
    wc = np.int64(cpu_weight)
    wm = np.int64(mem_weight)
    # The host index (see the comment above p1_by_min): TREE_COLS int64 per node of 2P nodes (or
    # the class table's size, if larger) and HOST_ROWS int64 per host for the classes, slot
    # lists and caches: about 300 bytes per host (and HW int64 per node more under dot-product,
    # TOP under worst-fit). Under balanced the leaves are slots of the balance value, about 4
    # per host (at most 2**17, one per value), so that hosts of near balance sit side by side.
    P = 1
    while P < H:
        P *= 2
    shift = -1
    if policy == POLICY_BALANCED:
        shift = FIXED_SHIFT + 1
        while shift > 0 and (1 << (FIXED_SHIFT + 1 - shift)) < 4 * H:
            shift -= 1
        P = 1 << (FIXED_SHIFT + 1 - shift)
    T = 2
    while T < 2 * H:
        T *= 2
    tree = np.empty((max(2 * P, T), TREE_COLS), dtype=np.int64)
    if policy == POLICY_DOT_PRODUCT:
        ext = np.empty((2 * P, HW), dtype=np.int64)
    elif policy == POLICY_WORST_FIT:
        ext = np.empty((2 * P, TOP), dtype=np.int64)
    else:
        ext = np.empty((1, 1), dtype=np.int64)
    hosts = np.empty((HOST_ROWS, max(H, 1)), dtype=np.int64)
    bounds = np.empty(BOUNDS, dtype=np.int64)
    bounds[SHIFT] = shift
    bounds[TMASK] = T - 1
    stack = np.empty((5, STACK), dtype=np.int64)
    qv = np.empty(QUERY, dtype=np.int64)
    qv[Q_SHIFT] = shift
    index_build(tree, ext, hosts, bounds, P, node_cpu, node_mem, distance, free_cpu, free_mem,
                schedulable, present, n_present, tot_cap_c, tot_cap_m, tot_free_c, tot_free_m,
                policy, wc, wm, scratch)
    # Every array passed here lives until place_loop returns (this frame or the caller holds it).
    place_loop(node_cpu, node_mem, distance, schedulable, cpu, mem, mode, required_host, order,
               policy, node_choice, wc, wm, free_cpu, free_mem, out_host, out_cpu, out_mem,
               out_nodes, out_reason, tot_cap_c, tot_cap_m, tot_free_c, tot_free_m, present,
               n_present, uniform, scratch, tree, ext, hosts, bounds, stack, qv, P)
    return STATUS_OK


@njit(**config.NUMBA_JIT_KWARGS)
def place_loop(node_cpu, node_mem, distance, schedulable, cpu, mem, mode, required_host, order,
               policy, node_choice, wc, wm, free_cpu, free_mem, out_host, out_cpu, out_mem,
               out_nodes, out_reason, tot_cap_c, tot_cap_m, tot_free_c, tot_free_m, present,
               n_present, uniform, scratch, tree, ext, hosts, bounds, stack, qv, P):
    """place_into's loop over the requests, on the arrays place_into checked and built."""
    # Borrowed views (see borrow): no reference counting on the loop's hot path. The caller
    # holds every owner until this returns.
    node_cpu = borrow(node_cpu)
    node_mem = borrow(node_mem)
    distance = borrow(distance)
    schedulable = borrow(schedulable)
    cpu = borrow(cpu)
    mem = borrow(mem)
    mode = borrow(mode)
    required_host = borrow(required_host)
    order = borrow(order)
    free_cpu = borrow(free_cpu)
    free_mem = borrow(free_mem)
    out_host = borrow(out_host)
    out_cpu = borrow(out_cpu)
    out_mem = borrow(out_mem)
    out_nodes = borrow(out_nodes)
    out_reason = borrow(out_reason)
    tot_cap_c = borrow(tot_cap_c)
    tot_cap_m = borrow(tot_cap_m)
    tot_free_c = borrow(tot_free_c)
    tot_free_m = borrow(tot_free_m)
    present = borrow(present)
    n_present = borrow(n_present)
    uniform = borrow(uniform)
    scratch = borrow(scratch)
    tree = borrow(tree)
    ext = borrow(ext)
    hosts = borrow(hosts)
    bounds = borrow(bounds)
    stack = borrow(stack)
    qv = borrow(qv)
    multi_dist = distance.shape[0] > 1
    classes = uses_classes(policy)
    N = cpu.shape[0]
    K = out_cpu.shape[1]
    for t in range(N):
        if t + AHEAD < N:
            # as _core.pyx: start loading the request AHEAD places on, inputs and outputs
            j = order[np.uintp(t + AHEAD)]
            prefetch(cpu, j)
            prefetch(mem, j)
            prefetch(mode, j)
            prefetch(required_host, j)
            prefetch(out_cpu, j * K)
            prefetch(out_mem, j * K)
            prefetch(out_nodes, j)
            prefetch(out_host, j)
            prefetch(out_reason, j)
        i = order[np.uintp(t)]
        iu = np.uintp(i)
        c = cpu[iu]
        m = mem[iu]
        md = np.int64(mode[iu])
        req = np.int64(required_host[iu])
        best_h = np.int64(-1)
        best_w = np.int64(0)
        if req < 0:
            if query_init(tree, bounds, qv, policy, wc, wm, c, m, md):
                best_h, best_w = index_find(tree, ext, hosts, stack, qv, P, node_cpu, node_mem,
                                            free_cpu, free_mem, distance, present, n_present,
                                            uniform, tot_cap_c, tot_cap_m, tot_free_c, tot_free_m,
                                            policy, wc, wm, c, m, md, scratch)
        else:
            ru = np.uintp(req)
            if (schedulable[ru] and tot_free_c[ru] >= c and tot_free_m[ru] >= m):
                best_w = fit_width(node_cpu, node_mem, free_cpu, free_mem, distance, req,
                                   present[ru], n_present[ru], uniform[ru], c, m, md,
                                   np.int64(MAX_K), scratch)
                if best_w > 0:
                    best_h = req
        if best_h >= 0:
            # _core.pyx's index_commit: commit, and bring the host's class and the index up to
            # date (the host's leaf, the member promoted to head of the class it left, the head
            # it displaced in the class it joined).
            bu = np.uintp(best_h)
            promoted = np.int64(-1)
            if classes and hosts[CLS, bu] >= 0:
                promoted = class_leave(tree, hosts, bounds, P, best_h)
            out_nodes[iu] = commit(node_cpu, node_mem, free_cpu, free_mem, distance,
                                   best_h if multi_dist else 0, best_h, present[bu], node_choice,
                                   tot_free_c, tot_free_m, c, m, md, best_w, out_cpu, out_mem, i,
                                   scratch)
            out_host[iu] = best_h
            displaced = np.int64(-1)
            if classes and schedulable[bu] and n_present[bu] > 0:
                displaced = class_join(tree, hosts, bounds, P, free_cpu, free_mem, best_h)
            # The promoted host takes h's old state and place first (under slots its arrival
            # changes no value of the slot but perhaps its lowest index, so its climb stops at
            # once), then h moves, then the head h displaced leaves.
            for r in range(3):  # in this order; one call site, so one inlined copy
                u = promoted if r == 0 else (best_h if r == 1 else displaced)
                if u >= 0:
                    index_update(tree, ext, hosts, bounds, P, u, free_cpu, free_mem, present, tot_cap_c,
                                 tot_cap_m, tot_free_c, tot_free_m, policy, wc, wm, scratch)
        else:
            out_reason[iu] = pending_reason(node_cpu, node_mem, free_cpu, free_mem, distance,
                                            schedulable, tot_cap_c, tot_cap_m, tot_free_c,
                                            tot_free_m, present, n_present, uniform, c, m, md,
                                            req, tree[1, TC], tree[1, TM], scratch)
    return STATUS_OK


# Under best-effort a narrower node set outranks any score: rank = score - width * WIDTH_RANK
# (codes.WIDTH_RANK). Scores are >= 0 and below 2**44 (dot-product with weights 1000 is the
# largest, < 2**43), so comparing ranks is comparing (width, -score) lexicographically, as
# place() does.
WIDTH_RANK = np.int64(_WIDTH_RANK)
SCORE_CHUNKS = 64  # host chunks of score_into's parallel loop (one scratch each)


@njit(**config.NUMBA_PARALLEL_KWARGS)
def score_into(node_cpu, node_mem, distance, schedulable, free_cpu, free_mem, cpu, mem, mode,
               required_host, policy, node_choice, cpu_weight, mem_weight, out_rank, out_nodes,
               out_ok):
    """For each request m alone and each host h: can it go there now, how good is it, and on
    which NUMA nodes — the placement loop's own helpers, so exactly place()'s rules.

    Arrays as in ``place_into`` (cpu, mem, mode, required_host of length M); free_cpu/free_mem
    are only read. Writes out_ok[m, h] (uint8, 1 = place() would put request m on host h if h
    were the only host allowed), out_rank[m, h] (int64, higher is better; the host score, minus
    width * WIDTH_RANK under best-effort) and out_nodes[m, h] (uint64 mask of the nodes it
    would use), all [M, H]. Hosts run in parallel (prange over chunks of hosts, one scratch per
    chunk); returns a status like place_into.
    """
    H = node_cpu.shape[0]
    K = node_cpu.shape[1]
    M = cpu.shape[0]
    status = check_inputs(node_cpu, node_mem, distance, schedulable, free_cpu, free_mem, cpu, mem,
                          mode, required_host, policy, node_choice, cpu_weight, mem_weight)
    if status != STATUS_OK:
        return status
    if (out_rank.shape[0] != M or out_rank.shape[1] != H or out_nodes.shape[0] != M
            or out_nodes.shape[1] != H or out_ok.shape[0] != M or out_ok.shape[1] != H):
        return STATUS_SHAPE
    if M == 0 or H == 0:
        return STATUS_OK
    tot_cap_c, tot_cap_m, tot_free_c, tot_free_m, present, n_present, uniform = host_state(
        node_cpu, node_mem, free_cpu, free_mem)
    multi_dist = distance.shape[0] > 1
    policy = np.int64(policy)
    node_choice = np.int64(node_choice)
    wc = np.int64(cpu_weight)
    wm = np.int64(mem_weight)
    chunks = min(SCORE_CHUNKS, H)
    for chunk in prange(chunks):
        scratch = np.empty((SCRATCH_ROWS, SCRATCH_COLS), dtype=np.int64)
        share_c = np.zeros((1, K), dtype=np.int64)
        share_m = np.zeros((1, K), dtype=np.int64)
        for h in range(chunk * H // chunks, (chunk + 1) * H // chunks):
            hu = np.uintp(h)
            for i in range(M):
                iu = np.uintp(i)
                c = cpu[iu]
                m = mem[iu]
                md = np.int64(mode[iu])
                req = np.int64(required_host[iu])
                out_ok[iu, hu] = 0
                out_rank[iu, hu] = 0
                out_nodes[iu, hu] = _U0
                if ((req >= 0 and req != h) or not schedulable[hu] or tot_free_c[hu] < c
                        or tot_free_m[hu] < m):
                    continue
                w = fit_width(node_cpu, node_mem, free_cpu, free_mem, distance, h, present[hu],
                              n_present[hu], uniform[hu], c, m, md, MAX_K, scratch)
                if w == 0:
                    continue
                s = host_score(policy, wc, wm, tot_cap_c[hu], tot_cap_m[hu], tot_free_c[hu],
                               tot_free_m[hu], c, m)
                mask = _U0
                if md == MODE_NONE:
                    for k in range(K):
                        share_c[0, k] = 0
                        share_m[0, k] = 0
                    proportional(free_cpu, h, present[hu], c, tot_free_c[hu], share_c, 0, scratch)
                    proportional(free_mem, h, present[hu], m, tot_free_m[hu], share_m, 0, scratch)
                    for k in range(K):
                        if share_c[0, k] > 0 or share_m[0, k] > 0:
                            mask |= _U1 << np.uint64(k)
                else:
                    set_search(node_cpu, node_mem, free_cpu, free_mem, distance,
                               h if multi_dist else 0, h, present[hu], node_choice, c, m, w, _F,
                               _T, scratch)
                    for j in range(w):
                        mask |= _U1 << np.uint64(scratch[NODES, np.uintp(j)])
                out_ok[iu, hu] = 1
                out_rank[iu, hu] = s - w * WIDTH_RANK if md == MODE_BEST_EFFORT else s
                out_nodes[iu, hu] = mask
    return STATUS_OK


@njit(**config.NUMBA_JIT_KWARGS)
def allocate_one(node_cpu, node_mem, distance, free_cpu, free_mem, h, cpu, mem, mode, node_choice,
                 max_width, out_c, out_m, scratch):
    """Where one request would go on host h now, by the placement rules; free is only read.

    Writes its per-node shares into out_c[0, :] and out_m[0, :] and returns (width, node mask);
    width 0 means it does not fit (then the rows are zeros). ``max_width`` caps the width tried
    under best-effort (the other modes have one allowed width). Used by the refinement pass,
    which moves requests one at a time; it derives host h's per-call state on the fly.
    """
    K = node_cpu.shape[1]
    hu = np.uintp(h)
    for k in range(K):
        out_c[0, k] = 0
        out_m[0, k] = 0
    present = _U0
    n_present = np.int64(0)
    uniform = np.uint8(1)
    first = -1
    tot_c = np.int64(0)
    tot_m = np.int64(0)
    for k in range(K):
        ku = np.uintp(k)
        if node_cpu[hu, ku] > 0 or node_mem[hu, ku] > 0:
            if first < 0:
                first = k
            elif (node_cpu[hu, ku] != node_cpu[hu, np.uintp(first)]
                  or node_mem[hu, ku] != node_mem[hu, np.uintp(first)]):
                uniform = np.uint8(0)
            present |= _U1 << np.uint64(k)
            n_present += 1
        tot_c += free_cpu[hu, ku]
        tot_m += free_mem[hu, ku]
    if tot_c < cpu or tot_m < mem:
        return 0, _U0
    w = fit_width(node_cpu, node_mem, free_cpu, free_mem, distance, h, present, n_present, uniform,
                  cpu, mem, mode, max_width, scratch)
    if w == 0:
        return 0, _U0
    mask = _U0
    if mode == MODE_NONE:
        proportional(free_cpu, h, present, cpu, tot_c, out_c, 0, scratch)
        proportional(free_mem, h, present, mem, tot_m, out_m, 0, scratch)
        for k in range(K):
            if out_c[0, k] > 0 or out_m[0, k] > 0:
                mask |= _U1 << np.uint64(k)
        return w, mask
    set_search(node_cpu, node_mem, free_cpu, free_mem, distance,
               h if distance.shape[0] > 1 else 0, h, present, node_choice, cpu, mem, w, _F, _T,
               scratch)
    base_c = cpu // w
    rem_c = cpu - base_c * w
    base_m = mem // w
    rem_m = mem - base_m * w
    for j in range(w):
        k = scratch[NODES, np.uintp(j)]
        out_c[0, np.uintp(k)] = base_c + (1 if j < rem_c else 0)
        out_m[0, np.uintp(k)] = base_m + (1 if j < rem_m else 0)
        mask |= _U1 << np.uint64(k)
    return w, mask


__all__ = ["allocate_one", "score_into", "host_state", "WIDTH_RANK", "CAND", "IDX", "MAX_K", "NODES", "REM", "STATUS_MESSAGES", "commit", "could_ever_hold",
           "fit_width", "fx", "host_score", "min_nodes", "muldivmod", "new_scratch",
           "pending_reason", "place_into", "proportional", "set_search"]
