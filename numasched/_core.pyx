"""numasched._core: the Cython placement kernel (the default backend).

``place_into`` runs the whole placement loop without the GIL on C-contiguous typed memoryviews
that ``numasched.api.place`` prepared; it allocates nothing per request and reports failure as an
integer status. Its semantics are those of ``numasched.kernels.reference`` (the specification),
bit for bit; read that file for the rules, this one for how they are made fast enough.

Finding the host is sublinear in practice: a segment tree over the hosts (the "host index"
below) skips every subtree that cannot hold the request or cannot beat the best host found so
far, and sees only one host of each class of identical hosts (the lowest index, wherever the
others lie); the host chosen is still exactly the one a full scan of the hosts in index order
would choose.

Invariants kept by every step of the loop, for every host h and node k:
  0 <= free[h, k] <= cap[h, k]                        (no node is ever overcommitted)
  tot_free[h] == sum over k of free[h, k]              (host totals are exact, not estimates)
  a request's shares sum to its amount, on one host    (allocations are never partial)
"""
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint16_t, uint64_t

cdef extern from *:
    int __builtin_clzll(unsigned long long) nogil
    void __builtin_prefetch(const void*) nogil

import numpy as np

cdef extern from *:
    # gcc and clang provide 128-bit integers; used only for amount * free products in mode none.
    ctypedef long long int128 "__int128"

# Codes: the numbers of numasched.codes (a test checks they agree).
cdef enum:
    MODE_NONE = 0
    MODE_SINGLE = 1
    MODE_RESTRICTED = 2
    MODE_BEST_EFFORT = 3
    POLICY_FIRST_FIT = 0
    POLICY_BEST_FIT = 1
    POLICY_WORST_FIT = 2
    POLICY_BALANCED = 3
    POLICY_DOT_PRODUCT = 4
    NODE_PACK = 0
    NODE_SPREAD = 1
    REASON_TOO_LARGE = 1
    REASON_CONSTRAINT = 2
    REASON_NO_CPU = 3
    REASON_NO_MEMORY = 4
    REASON_NO_NUMA_FIT = 5
    FIXED_SHIFT = 16
    MAX_K = 64
    MAX_WEIGHT = 1000           # weights keep every score below 2**44

STATUS_OK = 0
STATUS_SHAPE = 1
STATUS_CODE = 2
STATUS_MESSAGES = {
    STATUS_OK: "ok",
    STATUS_SHAPE: "array shapes disagree",
    STATUS_CODE: "unknown mode, policy or node-choice code, or a weight out of 0..1000",
}
CODES = {
    "MODE_NONE": MODE_NONE, "MODE_SINGLE": MODE_SINGLE, "MODE_RESTRICTED": MODE_RESTRICTED,
    "MODE_BEST_EFFORT": MODE_BEST_EFFORT, "POLICY_FIRST_FIT": POLICY_FIRST_FIT,
    "POLICY_BEST_FIT": POLICY_BEST_FIT, "POLICY_WORST_FIT": POLICY_WORST_FIT,
    "POLICY_BALANCED": POLICY_BALANCED, "POLICY_DOT_PRODUCT": POLICY_DOT_PRODUCT,
    "NODE_PACK": NODE_PACK, "NODE_SPREAD": NODE_SPREAD, "REASON_TOO_LARGE": REASON_TOO_LARGE,
    "REASON_CONSTRAINT": REASON_CONSTRAINT, "REASON_NO_CPU": REASON_NO_CPU,
    "REASON_NO_MEMORY": REASON_NO_MEMORY, "REASON_NO_NUMA_FIT": REASON_NO_NUMA_FIT,
    "FIXED_SHIFT": FIXED_SHIFT,
}


cdef struct Fleet:
    # Shapes.
    int64_t H                   # hosts
    int64_t K                   # node slots per host (<= 64)
    # Read-only inputs, row-major [H, K] unless noted.
    const int64_t* cap_c        # CPU capacity per node, millicores
    const int64_t* cap_m        # memory capacity per node, bytes
    const int64_t* dist         # SLIT distances, [D, K, K]
    int64_t dist_stride         # K*K when every host has its own matrix (D == H), else 0
    const uint8_t* sched        # [H] 1 = takes new work
    # Per-call state derived from the inputs, [H].
    int64_t* tot_cap_c          # sum of cap_c over the host's nodes
    int64_t* tot_cap_m
    int64_t* tot_free_c         # == sum of free_c over the host's nodes, after every commit
    int64_t* tot_free_m
    uint64_t* present           # bit k set <=> node k has CPU or memory capacity
    int64_t* n_present          # popcount of present
    uint8_t* uniform            # 1 <=> all present nodes have the same (cpu, mem) capacity
    # Mutable state: the free capacity, written by commits only.
    int64_t* free_c
    int64_t* free_m
    # Settings.
    int policy
    int node_choice
    int64_t cpu_weight          # weights of the CPU / memory terms of the host score (0..1000)
    int64_t mem_weight


cdef inline int64_t fx(int64_t x, int64_t cap) noexcept nogil:
    """Fixed-point fraction x / cap; callers guarantee 0 <= x <= cap < 2**47."""
    if cap <= 0:
        return 0
    return (x << FIXED_SHIFT) // cap


cdef inline int64_t fine(int64_t x, int64_t cap) noexcept nogil:
    """floor(x * 2**32 / cap), the fraction x / cap at 2**16 times fx's resolution, without
    overflow; callers guarantee 0 <= x <= cap < 2**47."""
    cdef int64_t q, r
    if cap <= 0:
        return 0
    q = (x << FIXED_SHIFT) // cap
    r = (x << FIXED_SHIFT) - q * cap
    return (q << FIXED_SHIFT) + (r << FIXED_SHIFT) // cap


cdef inline int64_t host_score(Fleet* f, int64_t h, int64_t cpu, int64_t mem) noexcept nogil:
    """Higher is better; the formulas of reference.Host.score. Only called when the totals fit."""
    cdef int64_t cc = f.tot_cap_c[h], cm = f.tot_cap_m[h]
    cdef int64_t fc = f.tot_free_c[h], fm = f.tot_free_m[h]
    cdef int64_t wc = f.cpu_weight, wm = f.mem_weight
    cdef int64_t uc, um
    if f.policy == POLICY_BEST_FIT:
        return (wc + wm) * (1 << FIXED_SHIFT) - wc * fx(fc - cpu, cc) - wm * fx(fm - mem, cm)
    if f.policy == POLICY_WORST_FIT:
        return wc * fx(fc - cpu, cc) + wm * fx(fm - mem, cm)
    if f.policy == POLICY_BALANCED:
        uc = fx(cc - fc + cpu, cc)
        um = fx(cm - fm + mem, cm)
        return (1 << FIXED_SHIFT) - (uc - um if uc >= um else um - uc)
    if f.policy == POLICY_DOT_PRODUCT:
        return wc * fx(cpu, cc) * fx(fc, cc) + wm * fx(mem, cm) * fx(fm, cm)
    return 0  # first-fit: every feasible host scores the same; the lowest index wins


# ---------------------------------------------------------------------------------------------
# Node sets. A set S of w present nodes *fits* when every member holds its share of the equal
# split; position j of S (by id) takes base + 1 while j < remainder, so requirements never grow
# with j. The rule that picks one set is reference.Host.best_set: every set compared when the
# candidates form at most COMBINATION_LIMIT sets, the distance hierarchy's dynamic programme
# beyond. Everything here is polynomial in K except the bounded enumeration.
# ---------------------------------------------------------------------------------------------

cdef enum:
    COMBINATION_LIMIT = 256     # as reference.COMBINATION_LIMIT
    FORBIDDEN = 0               # allow[k]: node k may not be a member
    OPTIONAL = 1                #           may be
    FORCED = 2                  #           must be


cdef struct Hierarchy:
    # The host's distance hierarchy as single-linkage merges, t non-decreasing: merging the
    # groups of a[e] and b[e] puts every pair across them at level t[e].
    int n
    int64_t t[MAX_K]
    int a[MAX_K]
    int b[MAX_K]


cdef struct SetTables:
    # For the group whose root is r: the best set of n members (n <= width), as its level sum
    # d[r][n] (-1: no such set), its pack/spread term p[r][n] and its mask m[r][n].
    int64_t d[MAX_K][MAX_K + 1]
    int64_t p[MAX_K][MAX_K + 1]
    uint64_t m[MAX_K][MAX_K + 1]
    int64_t size[MAX_K]         # members of the group rooted at r
    int comp[MAX_K]             # the root of node k's group
    uint8_t allow[MAX_K]        # FORBIDDEN / OPTIONAL / FORCED per node
    int64_t td[MAX_K + 1]       # one merge's result before it replaces the root's row
    int64_t tp[MAX_K + 1]
    uint64_t tm[MAX_K + 1]


cdef inline bint takes_position(Fleet* f, int64_t h, int64_t k, int64_t j, int64_t cpu,
                                int64_t mem, int64_t width, bint at_capacity) noexcept nogil:
    """Node k can hold the shares of position j of the width split (reference.takes_position)."""
    cdef int64_t ac = (f.cap_c if at_capacity else f.free_c)[h * f.K + k]
    cdef int64_t am = (f.cap_m if at_capacity else f.free_m)[h * f.K + k]
    return (ac >= cpu // width + (1 if j < cpu % width else 0)
            and am >= mem // width + (1 if j < mem % width else 0))


cdef int first_set(Fleet* f, int64_t h, int64_t cpu, int64_t mem, int64_t width,
                   bint at_capacity, int* out_nodes) noexcept nogil:
    """The lexicographically first fitting set of width (reference.Host.first_set); 0 = none.

    O(K): requirements never grow with the position, so taking each node that can fill the
    next open position is never worse than skipping it (the j-th pick is at most the j-th
    member of any fitting set).
    """
    cdef int64_t k, n = 0
    cdef uint64_t present = f.present[h]
    for k in range(f.K):
        if n < width and (present >> k) & 1 and takes_position(f, h, k, n, cpu, mem, width,
                                                                 at_capacity):
            out_nodes[n] = <int>k
            n += 1
    return n == width


cdef inline void node_maxima(Fleet* f, int64_t h, const int64_t* ac, const int64_t* am,
                             int64_t* most_c, int64_t* most_m) noexcept nogil:
    """The largest ac[k] and am[k] over host h's present nodes k (0 if none); ac, am point at
    the host's row of availability (free or capacity)."""
    cdef int64_t k
    most_c[0] = 0
    most_m[0] = 0
    for k in range(f.K):
        if (f.present[h] >> k) & 1:
            if ac[k] > most_c[0]:
                most_c[0] = ac[k]
            if am[k] > most_m[0]:
                most_m[0] = am[k]


cdef int64_t width_lower_bound(Fleet* f, int64_t h, int64_t cpu, int64_t mem,
                               bint at_capacity) noexcept nogil:
    """No narrower set fits: its largest share ceil(a / w) exceeds every node's availability."""
    cdef int64_t most_c, most_m, w = 1, v
    node_maxima(f, h, (f.cap_c if at_capacity else f.free_c) + h * f.K,
                (f.cap_m if at_capacity else f.free_m) + h * f.K, &most_c, &most_m)
    if most_c == 0 or most_m == 0:
        return f.n_present[h] + 1  # every request asks for both resources
    v = (cpu + most_c - 1) // most_c
    if v > w:
        w = v
    v = (mem + most_m - 1) // most_m
    if v > w:
        w = v
    return w


cdef int64_t n_choose_capped(int64_t n, int64_t k) noexcept nogil:
    """C(n, k), or COMBINATION_LIMIT + 1 when it is larger (no overflow: n <= 64)."""
    cdef int64_t c = 1, i
    if k < 0 or k > n:
        return 0
    if n - k < k:
        k = n - k
    for i in range(k):
        c = c * (n - i) // (i + 1)  # exact: C(n, i + 1)
        if c > COMBINATION_LIMIT:
            return COMBINATION_LIMIT + 1
    return c


cdef inline int64_t level_distance(const int64_t* dist, int64_t K, int64_t i,
                                   int64_t j) noexcept nogil:
    cdef int64_t a = dist[i * K + j], b = dist[j * K + i]
    return a if a > b else b


cdef void hierarchy_build(Fleet* f, int64_t h, Hierarchy* y) noexcept nogil:
    """Single-linkage merges of host h's present nodes (Prim's tree, edges sorted by level).

    Any minimum spanning tree gives the same levels (the largest step on the tree path between
    two nodes), and the programme's answer depends on the levels only.
    """
    cdef const int64_t* dist = f.dist + h * f.dist_stride
    cdef int64_t best[MAX_K]
    cdef int link[MAX_K]
    cdef uint8_t in_tree[MAX_K]
    cdef int64_t k, first = -1, pick, e, t, v
    cdef int a, b
    cdef uint64_t present = f.present[h]
    y.n = 0
    for k in range(MAX_K):
        in_tree[k] = 0
    for k in range(f.K):
        if first < 0 and (present >> k) & 1:
            first = k
    if first < 0:
        return
    in_tree[first] = 1
    for k in range(f.K):
        if (present >> k) & 1:
            best[k] = level_distance(dist, f.K, first, k)
            link[k] = <int>first
    while True:
        pick = -1
        for k in range(f.K):
            if (present >> k) & 1 and not in_tree[k] and (pick < 0 or best[k] < best[pick]):
                pick = k
        if pick < 0:
            break
        in_tree[pick] = 1
        # insertion keeps t[0..n) sorted by level
        e = y.n
        t = best[pick]
        while e > 0 and y.t[e - 1] > t:
            y.t[e] = y.t[e - 1]
            y.a[e] = y.a[e - 1]
            y.b[e] = y.b[e - 1]
            e -= 1
        y.t[e] = t
        y.a[e] = link[pick]
        y.b[e] = <int>pick
        y.n += 1
        for k in range(f.K):
            if (present >> k) & 1 and not in_tree[k]:
                v = level_distance(dist, f.K, pick, k)
                if v < best[k]:
                    best[k] = v
                    link[k] = <int>pick


cdef inline bint key_before(int64_t d1, int64_t p1, uint64_t m1, int64_t d2, int64_t p2,
                            uint64_t m2) noexcept nogil:
    """(d1, p1, m1) ranks before (d2, p2, m2): lower level sum, then pack/spread term, then the
    set holding the lowest id of the symmetric difference (reference.Host.hierarchy_key)."""
    cdef uint64_t x
    if d1 != d2:
        return d1 < d2
    if p1 != p2:
        return p1 < p2
    x = m1 ^ m2
    return x != 0 and (m1 & (x & (~x + 1))) != 0


cdef int hierarchy_best(Fleet* f, int64_t h, int64_t cpu, int64_t mem, int64_t width,
                        Hierarchy* y, SetTables* s, int64_t* out_d, int64_t* out_p,
                        uint64_t* out_m) noexcept nogil:
    """The best set by the hierarchy's key among those allowed by s.allow, with width members
    (reference.Host.hierarchy_best); 1 and (out_d, out_p, out_m), or 0 if there is none.

    Invariant after each merge: the root's row holds, for every count n <= width, the best
    set of n members inside its group (or -1): the key is a sum over the two parts plus
    2 * t * n_a * n_b, so the best parts make the best whole.
    """
    cdef int64_t base_c = cpu // width, base_m = mem // width
    cdef int64_t k, e, n, na, nb, sa, sb, util, d, p, first = -1
    cdef int a, b
    cdef uint64_t mk, present = f.present[h]
    for k in range(f.K):
        if not (present >> k) & 1:
            continue
        if first < 0:
            first = k
        s.comp[k] = <int>k
        s.size[k] = 1
        s.d[k][0] = -1 if s.allow[k] == FORCED else 0
        s.p[k][0] = 0
        s.m[k][0] = 0
        s.d[k][1] = -1
        if s.allow[k] != FORBIDDEN:
            util = (fx(f.cap_c[h * f.K + k] - f.free_c[h * f.K + k] + base_c, f.cap_c[h * f.K + k])
                    + fx(f.cap_m[h * f.K + k] - f.free_m[h * f.K + k] + base_m,
                         f.cap_m[h * f.K + k]))
            s.d[k][1] = 0
            s.p[k][1] = -util if f.node_choice == NODE_PACK else util
            s.m[k][1] = (<uint64_t>1) << k
    if first < 0:
        return 0
    for e in range(y.n):
        a = s.comp[y.a[e]]
        b = s.comp[y.b[e]]
        sa = s.size[a] if s.size[a] < width else width
        sb = s.size[b] if s.size[b] < width else width
        for n in range(sa + sb + 1 if sa + sb < width else width + 1):
            s.td[n] = -1
        for na in range(sa + 1):
            if s.d[a][na] < 0:
                continue
            for nb in range((sb if sb < width - na else width - na) + 1):
                if s.d[b][nb] < 0:
                    continue
                d = s.d[a][na] + s.d[b][nb] + 2 * y.t[e] * na * nb
                p = s.p[a][na] + s.p[b][nb]
                mk = s.m[a][na] | s.m[b][nb]
                n = na + nb
                if s.td[n] < 0 or key_before(d, p, mk, s.td[n], s.tp[n], s.tm[n]):
                    s.td[n] = d
                    s.tp[n] = p
                    s.tm[n] = mk
        for n in range(sa + sb + 1 if sa + sb < width else width + 1):
            s.d[a][n] = s.td[n]
            s.p[a][n] = s.tp[n]
            s.m[a][n] = s.tm[n]
        s.size[a] += s.size[b]
        for k in range(f.K):
            if (present >> k) & 1 and s.comp[k] == b:
                s.comp[k] = a
    a = s.comp[first]
    if s.size[a] < width or s.d[a][width] < 0:
        return 0
    out_d[0] = s.d[a][width]
    out_p[0] = s.p[a][width]
    out_m[0] = s.m[a][width]
    return 1


cdef bint mask_fits(Fleet* f, int64_t h, int64_t cpu, int64_t mem, int64_t width,
                    uint64_t mask) noexcept nogil:
    cdef int64_t k, j = 0
    for k in range(f.K):
        if (mask >> k) & 1:
            if not takes_position(f, h, k, j, cpu, mem, width, 0):
                return 0
            j += 1
    return 1


cdef int hierarchy_set(Fleet* f, int64_t h, int64_t cpu, int64_t mem, int64_t width,
                       int* out_nodes) noexcept nogil:
    """The node-set rule beyond the enumeration limit (reference.Host.hierarchy_set): the best
    set of the candidates if it fits, else the best of the families that only hold fitting sets
    (any-position nodes; for each any-position start, the greedy's head from it and candidates
    above). Returns 0 if no set of width fits."""
    cdef Hierarchy y
    cdef SetTables s
    cdef int64_t base_c = cpu // width, base_m = mem // width
    cdef int64_t k, j, start, hn, last, head_width
    cdef int64_t bd = 0, bp = 0, d = 0, p = 0
    cdef uint64_t bm = 0, mk = 0, present = f.present[h]
    cdef int head[MAX_K]
    cdef bint found, cand
    hierarchy_build(f, h, &y)
    for k in range(f.K):
        s.allow[k] = FORBIDDEN
        if ((present >> k) & 1 and f.free_c[h * f.K + k] >= base_c
                and f.free_m[h * f.K + k] >= base_m):
            s.allow[k] = OPTIONAL
    if not hierarchy_best(f, h, cpu, mem, width, &y, &s, &bd, &bp, &bm):
        return 0
    found = mask_fits(f, h, cpu, mem, width, bm)
    if not found:
        # Only nodes that can take any position (position 0 asks the most).
        for k in range(f.K):
            if s.allow[k] != FORBIDDEN and not takes_position(f, h, k, 0, cpu, mem, width, 0):
                s.allow[k] = FORBIDDEN
        found = hierarchy_best(f, h, cpu, mem, width, &y, &s, &bd, &bp, &bm)
        head_width = cpu % width if cpu % width > mem % width else mem % width
        for start in range(f.K):
            if not ((present >> start) & 1 and takes_position(f, h, start, 0, cpu, mem, width, 0)):
                continue
            hn = 0
            for k in range(start, f.K):
                if hn < head_width and (present >> k) & 1 and takes_position(
                        f, h, k, hn, cpu, mem, width, 0):
                    head[hn] = <int>k
                    hn += 1
            if hn < head_width:
                break  # a later start finds no more
            last = head[hn - 1]
            for k in range(f.K):
                cand = ((present >> k) & 1 and f.free_c[h * f.K + k] >= base_c
                        and f.free_m[h * f.K + k] >= base_m)
                s.allow[k] = OPTIONAL if cand and k > last else FORBIDDEN
            for j in range(hn):
                s.allow[head[j]] = FORCED
            if hierarchy_best(f, h, cpu, mem, width, &y, &s, &d, &p, &mk) and (
                    not found or key_before(d, p, mk, bd, bp, bm)):
                found = 1
                bd = d
                bp = p
                bm = mk
        if not found:
            return 0
    j = 0
    for k in range(f.K):
        if (bm >> k) & 1:
            out_nodes[j] = <int>k
            j += 1
    return 1


cdef int set_search(Fleet* f, int64_t h, int64_t cpu, int64_t mem, int64_t width,
                    bint at_capacity, bint want_best, int* out_nodes) noexcept nogil:
    """Find a node set of ``width`` present nodes of host h for the equal split.

    With ``want_best`` = 0: whether some set fits, in O(K) (the first set in lexicographic
    order, ``first_set``). Otherwise the set the request takes (reference.Host.best_set): when
    the candidates form at most COMBINATION_LIMIT sets, every fitting set is visited in
    lexicographic order and the best by (distance sum, then pack/spread utilisation) wins,
    earlier sets winning ties; beyond that, ``hierarchy_set``. Returns 1 and writes the sorted
    ids into out_nodes[0:width], or returns 0 when no set fits. Availability is the capacity
    when ``at_capacity``, else the free capacity.
    """
    cdef const int64_t* avail_c = (f.cap_c if at_capacity else f.free_c) + h * f.K
    cdef const int64_t* avail_m = (f.cap_m if at_capacity else f.free_m) + h * f.K
    cdef const int64_t* cap_c = f.cap_c + h * f.K
    cdef const int64_t* cap_m = f.cap_m + h * f.K
    cdef const int64_t* dist = f.dist + h * f.dist_stride
    cdef int64_t base_c = cpu // width, rem_c = cpu % width
    cdef int64_t base_m = mem // width, rem_m = mem % width
    cdef int cand[MAX_K]
    cdef int idx[MAX_K]
    cdef int m = 0, j, t, k, a, b
    cdef int64_t share_c, share_m, dsum, util
    cdef int64_t best_d = 0, best_u = 0
    cdef bint fits, found = 0
    cdef uint64_t present = f.present[h]

    if not want_best:
        return first_set(f, h, cpu, mem, width, at_capacity, out_nodes)
    # Candidates: present nodes that hold at least the base share. Every member of a fitting set
    # is one, so enumerating subsets of the candidates visits every fitting set, in the same order.
    for k in range(f.K):
        if (present >> k) & 1 and avail_c[k] >= base_c and avail_m[k] >= base_m:
            cand[m] = k
            m += 1
    if m < width:
        return 0
    if n_choose_capped(m, width) > COMBINATION_LIMIT and not at_capacity:
        return hierarchy_set(f, h, cpu, mem, width, out_nodes)
    for j in range(width):
        idx[j] = j
    while True:
        # The first rem nodes of the set carry one unit more; the base was checked above.
        fits = 1
        for j in range(width):
            k = cand[idx[j]]
            if (j < rem_c and avail_c[k] <= base_c) or (j < rem_m and avail_m[k] <= base_m):
                fits = 0
                break
        if fits:
            dsum = 0
            util = 0
            for a in range(width):
                k = cand[idx[a]]
                for b in range(width):
                    if a != b:
                        dsum += dist[k * f.K + cand[idx[b]]]
                share_c = base_c + (1 if a < rem_c else 0)
                share_m = base_m + (1 if a < rem_m else 0)
                util += fx(cap_c[k] - f.free_c[h * f.K + k] + share_c, cap_c[k])
                util += fx(cap_m[k] - f.free_m[h * f.K + k] + share_m, cap_m[k])
            if f.node_choice == NODE_PACK:
                util = -util
            if not found or dsum < best_d or (dsum == best_d and util < best_u):
                found = 1
                best_d = dsum
                best_u = util
                for j in range(width):
                    out_nodes[j] = cand[idx[j]]
        # Next combination in lexicographic order.
        j = <int>width - 1
        while j >= 0 and idx[j] == m - width + j:
            j -= 1
        if j < 0:
            break
        idx[j] += 1
        for t in range(j + 1, width):
            idx[t] = idx[t - 1] + 1
    return found


cdef int64_t min_nodes(Fleet* f, int64_t h, int64_t cpu, int64_t mem) noexcept nogil:
    """Kubelet's preferred width: the narrowest set holding the equal split at capacity; 0 = none."""
    cdef int nodes[MAX_K]
    cdef int64_t w, wc, wm, k, c0 = 0, m0 = 0
    if f.n_present[h] == 0:
        return 0
    if f.uniform[h]:
        # Equal nodes of capacity (c0, m0): the largest share ceil(a / w) fits iff a <= w * c0.
        for k in range(f.K):
            if (f.present[h] >> k) & 1:
                c0 = f.cap_c[h * f.K + k]
                m0 = f.cap_m[h * f.K + k]
                break
        if c0 == 0 or m0 == 0:
            return 0  # every request asks for both resources
        wc = (cpu + c0 - 1) // c0
        wm = (mem + m0 - 1) // m0
        w = wc if wc > wm else wm
        return w if w <= f.n_present[h] else 0
    for w in range(width_lower_bound(f, h, cpu, mem, 1), f.n_present[h] + 1):
        if first_set(f, h, cpu, mem, w, 1, nodes):
            return w
    return 0


cdef int64_t fit_width(Fleet* f, int64_t h, int64_t cpu, int64_t mem, int mode,
                       int64_t max_width) noexcept nogil:
    """Width of the node set the request would use on host h now under ``mode``; 0 = no fit.

    For best-effort only widths up to ``max_width`` are tried (a wider set could not win).
    The caller has checked that the host's free totals cover the request. O(K) per width tried
    (``first_set``), starting at the narrowest width the free nodes allow.
    """
    cdef int nodes[MAX_K]
    cdef int64_t w
    if mode == MODE_NONE:
        return f.n_present[h]
    if mode == MODE_SINGLE:
        return 1 if first_set(f, h, cpu, mem, 1, 0, nodes) else 0
    if mode == MODE_RESTRICTED:
        w = min_nodes(f, h, cpu, mem)
        if w > 0 and first_set(f, h, cpu, mem, w, 0, nodes):
            return w
        return 0
    for w in range(width_lower_bound(f, h, cpu, mem, 0), min(max_width, f.n_present[h]) + 1):
        if first_set(f, h, cpu, mem, w, 0, nodes):
            return w
    return 0


cdef void proportional(Fleet* f, int64_t h, int64_t amount, const int64_t* free_row,
                       int64_t total, int64_t* out_row) noexcept nogil:
    """Split amount over the present nodes in proportion to free_row (largest remainder).

    Requires 0 < amount <= total == sum of free_row over present nodes; then every share is at
    most its node's free capacity. Ties between remainders go to the lowest node id.
    """
    cdef int64_t rem[MAX_K]
    cdef uint8_t taken[MAX_K]
    cdef int64_t k, left, best_k
    cdef int128 product
    cdef uint64_t present = f.present[h]
    left = amount
    for k in range(f.K):
        taken[k] = 0
        rem[k] = -1
        out_row[k] = 0
        if (present >> k) & 1:
            product = <int128>amount * <int128>free_row[k]
            out_row[k] = <int64_t>(product // total)
            rem[k] = <int64_t>(product % total)
            left -= out_row[k]
    while left > 0:
        best_k = -1
        for k in range(f.K):
            if rem[k] >= 0 and not taken[k] and (best_k < 0 or rem[k] > rem[best_k]):
                best_k = k
        taken[best_k] = 1
        out_row[best_k] += 1
        left -= 1


cdef bint could_ever_hold(Fleet* f, int64_t h, int64_t cpu, int64_t mem, int mode) noexcept nogil:
    cdef int64_t k
    if mode == MODE_NONE:
        return f.tot_cap_c[h] >= cpu and f.tot_cap_m[h] >= mem
    if mode == MODE_SINGLE:
        for k in range(f.K):
            if f.cap_c[h * f.K + k] >= cpu and f.cap_m[h * f.K + k] >= mem:
                return 1
        return 0
    return min_nodes(f, h, cpu, mem) > 0


cdef int8_t pending_reason(Fleet* f, int64_t cpu, int64_t mem, int mode, int64_t required,
                           int64_t best_tc, int64_t best_tm) noexcept nogil:
    """The first pending reason that applies, in the order of DESIGN.md.

    ``best_tc``/``best_tm`` are the largest free totals over schedulable hosts (the host index's
    root); they answer "does any eligible host have enough CPU / memory" in O(1) when no host is
    required.
    """
    cdef int64_t h
    cdef bint ever = 0
    for h in range(f.H):
        if could_ever_hold(f, h, cpu, mem, mode):
            ever = 1
            break
    if not ever:
        return REASON_TOO_LARGE
    if required >= 0:
        if not f.sched[required] or not could_ever_hold(f, required, cpu, mem, mode):
            return REASON_CONSTRAINT
        best_tc = f.tot_free_c[required]
        best_tm = f.tot_free_m[required]
    if best_tc < cpu:
        return REASON_NO_CPU
    if best_tm < mem:
        return REASON_NO_MEMORY
    return REASON_NO_NUMA_FIT


cdef void commit(Fleet* f, int64_t h, int64_t cpu, int64_t mem, int mode, int64_t width,
                 int64_t* row_c, int64_t* row_m, uint64_t* mask) noexcept nogil:
    """Take the request from host h's free capacity and record its per-node shares."""
    cdef int nodes[MAX_K]
    cdef int64_t j, k, base_c, base_m, rem_c, rem_m
    cdef int64_t* free_c = f.free_c + h * f.K
    cdef int64_t* free_m = f.free_m + h * f.K
    mask[0] = 0
    if mode == MODE_NONE:
        proportional(f, h, cpu, free_c, f.tot_free_c[h], row_c)
        proportional(f, h, mem, free_m, f.tot_free_m[h], row_m)
        for k in range(f.K):
            if row_c[k] > 0 or row_m[k] > 0:
                mask[0] |= (<uint64_t>1) << k
    else:
        set_search(f, h, cpu, mem, width, 0, 1, nodes)
        base_c = cpu // width
        rem_c = cpu % width
        base_m = mem // width
        rem_m = mem % width
        for j in range(width):
            k = nodes[j]
            row_c[k] = base_c + (1 if j < rem_c else 0)
            row_m[k] = base_m + (1 if j < rem_m else 0)
            mask[0] |= (<uint64_t>1) << k
    for k in range(f.K):
        free_c[k] -= row_c[k]
        free_m[k] -= row_m[k]
    f.tot_free_c[h] -= cpu
    f.tot_free_m[h] -= mem


# ---------------------------------------------------------------------------------------------
# The host index: a segment tree over host indices that finds, for one request, exactly the host
# the full scan would pick (highest score, narrowest set first under best-effort, lowest index on
# ties) while visiting only the subtrees that could hold it.
#
# Leaves are hosts (leaf P + h; padding leaves and unschedulable or empty hosts hold EMPTY).
# Every node n stores, over the schedulable hosts below it:
#   tc[n], tm[n]  the largest free totals (CPU, memory)           -> no host below fits if < r
#   nc[n], nm[n]  the largest free amount on any one node          -> a lower bound on the width
#   p1[n], p2[n]  request-independent score aggregates of the policy (see leaf_values):
#                 best-fit    p1 = min of g = wc*fx(free_c, cap_c) + wm*fx(free_m, cap_m)
#                 worst-fit   p1 = max of g, at fine()'s resolution (2**32 per host capacity):
#                             its bound (g - k1) >> 16 floors the weighted sum once, not each
#                             term, a unit per term tighter (fewer near-ties walked down to)
#                 dot-product unused (see hull)
#                 balanced    p1 = min, p2 = max of a = fx(used_c, cap_c) - fx(used_m, cap_m)
#   hull[n]       dot-product only (node-major, uint16): the upper-right convex chain of the
#                 points (X, Y) = (fx(free_c, cap_c), fx(free_m, cap_m)) of the hosts below,
#                 X ascending and Y descending, at most HC vertices, each stored as
#                 (u, v) = (2**16 - X, 2**16 - Y) so that a node's chain fills one cache line
#                 (X = 0, never the best, is stored as 1, so a bound stays an upper bound).
#                 The score is at most A*X + B*Y with A, B >= 0 set by the request, and over a
#                 subtree that is largest at a vertex of the chain: the bound is exact
#                 (identical hosts tie and prune by index as at the leaves). A chain longer
#                 than HC is shortened by replacing two neighbours with the corner (X of the
#                 right, Y of the left), which dominates both: the bound stays an upper bound,
#                 a little looser.
#   top[n]        worst-fit only (node-major): the top state, i.e. the free totals and
#                 capacities (fc, fm, cc, cm) shared by every host below whose g is p1[n], and
#                 g2, the largest g of the hosts in any other state (when two states share the
#                 largest g, g2 = p1[n]). The bound is the larger of the top state's exact score
#                 and g2's bound: exact for a subtree whose best hosts are all alike, so hosts
#                 tied with the best so far (often hundreds, spread over the tree) prune by index
#                 instead of each being walked down to.
# Only the head of each host class (below) has a leaf with values: identical hosts cost one score.
# Under balanced the leaves are not hosts but slots of the balance value a(h) (every host in a
# slot's list, their values folded into its leaf, mi[n] the lowest host index below n): the
# best hosts are those whose a is nearest the request's target, so in host order nearly every
# subtree's [min a, max a] holds the target and bounds nothing, while in value order only the
# subtrees next to it do. The lowest-index rule then prunes by mi instead of the leftmost leaf.
# From these, query_bounds gives an UPPER bound on the exact integer score of any host below
# that could take the request (the floors of fixed point move a score by at most one unit per
# term, and the bound allows for it) and a lower bound on its set width. A subtree is skipped
# only when it cannot hold the request or cannot beat the best host found so far, counting the
# lowest-index rule on ties; leaves are scored by the scan's own code (host_score, fit_width).
# So the host chosen is the scan's, bit for bit, and the scan stays the specification.
# Invariant after every commit: each node's values are the max/min over its children, and each
# leaf's values are leaf_values() of its host's current free state.
# ---------------------------------------------------------------------------------------------

cdef enum:
    EMPTY = -1                  # tc/tm/nc/nm of a node with no schedulable host below
    STACK = 2 * 64 + 2          # the search pushes at most 2 nodes per level, 63 levels at most
    C_TC = 0                    # columns of a node's values in the tree array (see below):
    C_TM = 1                    # tc, tm, nc, nm, p1, p2 for every policy,
    C_NC = 2
    C_NM = 3
    C_P1 = 4
    C_P2 = 5
    C_TJ = 6                    # then NJ values of tj where the joint test is kept,
    C_MI = 10                   # then mi under slots: x.nw = 6, 10 or 11 values per node
    NJ = 4                      # ratios of the joint node test (tj below)
    S0 = 19                     # tj[j] compares memory bytes with CPU millicores << (S0 + SJ * j)
    SJ = 2                      # ... its ratios a factor 2**SJ apart
    TOP = 5                     # worst-fit top-state values per node: fc, fm, cc, cm, g2
    HC = 15                     # vertices of a dot-product chain at most
    HW = 2 * HC + 2             # uint16 per node of the chain array: count, then u, v pairs
                                # and one spare: 64 bytes, one cache line
    USED_MAX = 0xFFFF           # the largest stored u or v (see hull[n] above)

cdef int64_t AHEAD = 8   # place_into prefetches the request this many places on (8 and 16 time
                         # alike; 5-10 % faster than none at 100k requests / 10k hosts)
cdef int64_t BIG = (<int64_t>1) << 62  # neutral element of the min / max score aggregates


cdef struct Index:
    int64_t P                   # leaves: the smallest power of two >= H (>= 1)
    int64_t* tree               # [2P, nw] node-major: node n's values at tree[n * nw + C_...]
    int64_t nw                  # values per node: the columns the policy uses (C_... above)
    uint16_t* hull              # [2P, HW] the dot-product chains (unused by other policies)
    int64_t* top                # [2P, TOP] worst-fit: the state of the hosts with the largest g
    # Host classes (see "Host classes" below), [H] per host unless noted.
    int64_t* kind               # the lowest index of a host with equal capacity, distance, schedulable
    int64_t* cls                # the host's class id; -1: the host is outside the index
    int64_t* nxt                # the next member of its class by index, -1 at the end
    int64_t* prv                # the previous member, -1 at the start
    int64_t* head               # [per class id] the lowest-index member; -1: the id is unused
    int64_t* tail               # [per class id] the highest-index member
    uint64_t* hsh               # [per class id] the hash of the class's kind and free state
    int64_t* table              # [tmask + 1] class ids by hash, linear probing; -1: an empty slot
    int64_t tmask               # the table's size (a power of two >= 2H) less one
    int64_t* unused             # a stack of unused class ids
    int64_t n_unused
    # Balanced only: the leaves are slots of the balance value a (below), not hosts.
    int64_t shift               # slot(h) = (a(h) + 2**16) >> shift; -1: the leaves are hosts
    int64_t* htj                # [H, NJ] slots: a live host's own tj
    int64_t* shead              # [P] slots: the list's first (lowest-index) host, -1 if empty
    int64_t* slot               # [H] the slot whose list holds the host, -1 if none
    int64_t* snext              # [H] the next host in that list, -1 at the end
    int64_t* sprev              # [H] the previous host, -1 at the start
    int64_t* hnc                # [H] a live host's largest free CPU on one node (slots only)
    int64_t* hnm                # [H] ... and memory
    int64_t* ha                 # [H] ... and its balance value a(h)
    bint classes                # hosts are grouped into classes (else each host is its own)
    bint joint                  # tj is kept and tested
    bint p1_min                 # p1 aggregates by min (best-fit, balanced), else by max
    bint dot                    # the policy is dot-product: ext is in use
    bint wf                     # the policy is worst-fit: top is in use
    # Static bounds over every present node / host with capacity, for the query constants.
    int64_t min_cap_c           # smallest host CPU capacity > 0 (0 if none)
    int64_t min_cap_m
    int64_t max_cap_c
    int64_t max_cap_m
    int64_t min_node_c          # smallest CPU capacity of any present node (may be 0)
    int64_t min_node_m
    int64_t max_present         # most present nodes on a host


cdef struct Query:
    int64_t c, m                # the request
    int mode
    int64_t need_nc, need_nm    # some node below must have this much free (necessary)
    int64_t jj, jv              # ... both on one node: tj[jj] >= jv (necessary)
    int64_t k1, k2, k3, k4      # the policy's bound constants (query_init)


cdef struct Best:
    int64_t h                   # -1 until a host is found
    int64_t w
    int64_t s


cdef inline int64_t joint(int64_t c, int64_t m, int64_t s) noexcept nogil:
    """min(c << s, m) without overflow. A node (c, m) holds a share (c', m') only if its joint
    value is at least the share's for every s: the test tj makes of one node holding both."""
    if c > (m >> s):
        return m
    return c << s


cdef void joint_values(Fleet* f, int64_t h, int64_t* out) noexcept nogil:
    """out[j] = the largest joint(free_c, free_m, S0 + SJ * j) over host h's present nodes."""
    cdef int64_t j, k, v
    for j in range(NJ):
        out[j] = 0
    for k in range(f.K):
        if (f.present[h] >> k) & 1:
            for j in range(NJ):
                v = joint(f.free_c[h * f.K + k], f.free_m[h * f.K + k], S0 + SJ * j)
                if v > out[j]:
                    out[j] = v


cdef inline void empty_leaf(Index* x, int64_t n) noexcept nogil:
    """Leaf n holds no host that takes new work: it passes no test and is neutral in pull."""
    x.tree[n * x.nw + C_TC] = EMPTY
    x.tree[n * x.nw + C_TM] = EMPTY
    x.tree[n * x.nw + C_NC] = EMPTY
    x.tree[n * x.nw + C_NM] = EMPTY
    cdef int64_t j
    x.tree[n * x.nw + C_P1] = BIG if x.p1_min else -BIG
    x.tree[n * x.nw + C_P2] = -BIG
    if x.joint:
        for j in range(NJ):
            x.tree[n * x.nw + C_TJ + j] = EMPTY
    if x.dot:
        x.hull[n * HW] = 0          # no vertex: neutral in the merge
    if x.wf:
        for j in range(TOP - 1):
            x.top[n * TOP + j] = -1  # no host's state
        x.top[n * TOP + TOP - 1] = -BIG


cdef inline bint live(Index* x, int64_t h) noexcept nogil:
    """Host h takes new work and heads its class: the search must see it."""
    return x.cls[h] >= 0 and x.head[x.cls[h]] == h


cdef inline int64_t balance(Fleet* f, int64_t h) noexcept nogil:
    """a(h) = fx(used CPU) - fx(used memory), in [-2**16, 2**16]: the balanced policy's p1."""
    return (fx(f.tot_cap_c[h] - f.tot_free_c[h], f.tot_cap_c[h])
            - fx(f.tot_cap_m[h] - f.tot_free_m[h], f.tot_cap_m[h]))


cdef inline int64_t value_slot(Index* x, int64_t a) noexcept nogil:
    """The slot of balance value a (in [-2**16, 2**16])."""
    cdef int64_t v = (a + (1 << FIXED_SHIFT)) >> x.shift
    return v if v < x.P else x.P - 1


cdef inline int64_t slot_of(Index* x, int64_t h) noexcept nogil:
    """The slot of live host h, from its cached a(h)."""
    return value_slot(x, x.ha[h])


cdef void leaf_values(Fleet* f, Index* x, int64_t h) noexcept nogil:
    """Write host h's values into its leaf (EMPTY when it is not live)."""
    cdef int64_t n = x.P + h, nc, nm
    cdef int64_t fc = f.tot_free_c[h], fm = f.tot_free_m[h]
    cdef int64_t cc = f.tot_cap_c[h], cm = f.tot_cap_m[h]
    cdef int64_t g, X, Y
    if not live(x, h):
        empty_leaf(x, n)  # outside the index, or a later member of its class
        return
    node_maxima(f, h, f.free_c + h * f.K, f.free_m + h * f.K, &nc, &nm)
    x.tree[n * x.nw + C_TC] = fc
    x.tree[n * x.nw + C_TM] = fm
    x.tree[n * x.nw + C_NC] = nc
    x.tree[n * x.nw + C_NM] = nm
    x.tree[n * x.nw + C_P1] = 0
    x.tree[n * x.nw + C_P2] = 0
    if x.joint:
        joint_values(f, h, x.tree + n * x.nw + C_TJ)
    if f.policy == POLICY_BEST_FIT:
        x.tree[n * x.nw + C_P1] = f.cpu_weight * fx(fc, cc) + f.mem_weight * fx(fm, cm)
    elif x.wf:
        # g at fine()'s resolution: the bound (g - k1) >> 16 then floors the sum once
        x.tree[n * x.nw + C_P1] = f.cpu_weight * fine(fc, cc) + f.mem_weight * fine(fm, cm)
        x.top[n * TOP + 0] = fc
        x.top[n * TOP + 1] = fm
        x.top[n * TOP + 2] = cc
        x.top[n * TOP + 3] = cm
        x.top[n * TOP + 4] = -BIG
    elif f.policy == POLICY_DOT_PRODUCT:
        X = fx(fc, cc)
        Y = fx(fm, cm)
        x.hull[n * HW] = 1
        x.hull[n * HW + 1] = <uint16_t>imin((1 << FIXED_SHIFT) - X, USED_MAX)
        x.hull[n * HW + 2] = <uint16_t>imin((1 << FIXED_SHIFT) - Y, USED_MAX)
    elif f.policy == POLICY_BALANCED:
        g = balance(f, h)
        x.tree[n * x.nw + C_P1] = g
        x.tree[n * x.nw + C_P2] = g


cdef bint slot_values(Fleet* f, Index* x, int64_t v) noexcept nogil:
    """Write slot v's values into its leaf: the fold of its hosts' cached values (balanced);
    0 if the leaf held them already."""
    cdef int64_t n = x.P + v, h = x.shead[v]
    cdef int64_t tc = EMPTY, tm = EMPTY, nc = EMPTY, nm = EMPTY, lo = BIG, hi = -BIG, mi = BIG
    cdef int64_t j
    cdef int64_t tj[NJ]
    cdef bint changed
    for j in range(NJ):
        tj[j] = EMPTY
    while h >= 0:
        for j in range(NJ):
            if x.htj[h * NJ + j] > tj[j]:
                tj[j] = x.htj[h * NJ + j]
        if f.tot_free_c[h] > tc:
            tc = f.tot_free_c[h]
        if f.tot_free_m[h] > tm:
            tm = f.tot_free_m[h]
        if x.hnc[h] > nc:
            nc = x.hnc[h]
        if x.hnm[h] > nm:
            nm = x.hnm[h]
        if x.ha[h] < lo:
            lo = x.ha[h]
        if x.ha[h] > hi:
            hi = x.ha[h]
        if h < mi:
            mi = h
        h = x.snext[h]
    cdef int64_t* r = x.tree + n * x.nw
    changed = (r[C_TC] != tc or r[C_TM] != tm or r[C_NC] != nc or r[C_NM] != nm or r[C_P1] != lo
               or r[C_P2] != hi or r[C_MI] != mi)
    r[C_TC] = tc
    r[C_TM] = tm
    r[C_NC] = nc
    r[C_NM] = nm
    r[C_P1] = lo
    r[C_P2] = hi
    r[C_MI] = mi
    for j in range(NJ):
        changed |= r[C_TJ + j] != tj[j]
        r[C_TJ + j] = tj[j]
    return changed


cdef bint slot_add(Fleet* f, Index* x, int64_t v, int64_t h) noexcept nogil:
    """Fold host h, just added to slot v's list, into the slot's leaf; 0 if nothing changed."""
    cdef int64_t n = x.P + v, j
    cdef bint changed = 0
    if f.tot_free_c[h] > x.tree[n * x.nw + C_TC]:
        x.tree[n * x.nw + C_TC] = f.tot_free_c[h]
        changed = 1
    if f.tot_free_m[h] > x.tree[n * x.nw + C_TM]:
        x.tree[n * x.nw + C_TM] = f.tot_free_m[h]
        changed = 1
    if x.hnc[h] > x.tree[n * x.nw + C_NC]:
        x.tree[n * x.nw + C_NC] = x.hnc[h]
        changed = 1
    if x.hnm[h] > x.tree[n * x.nw + C_NM]:
        x.tree[n * x.nw + C_NM] = x.hnm[h]
        changed = 1
    if x.ha[h] < x.tree[n * x.nw + C_P1]:
        x.tree[n * x.nw + C_P1] = x.ha[h]
        changed = 1
    if x.ha[h] > x.tree[n * x.nw + C_P2]:
        x.tree[n * x.nw + C_P2] = x.ha[h]
        changed = 1
    if h < x.tree[n * x.nw + C_MI]:
        x.tree[n * x.nw + C_MI] = h
        changed = 1
    for j in range(NJ):
        if x.htj[h * NJ + j] > x.tree[n * x.nw + C_TJ + j]:
            x.tree[n * x.nw + C_TJ + j] = x.htj[h * NJ + j]
            changed = 1
    return changed


cdef void host_cache(Fleet* f, Index* x, int64_t h) noexcept nogil:
    """Cache live host h's slot values: its largest free amount on one node, and a(h)."""
    node_maxima(f, h, f.free_c + h * f.K, f.free_m + h * f.K, x.hnc + h, x.hnm + h)
    x.ha[h] = balance(f, h)
    joint_values(f, h, x.htj + h * NJ)


cdef bint hull_pull(uint16_t* hn, const uint16_t* ha, const uint16_t* hb) noexcept nogil:
    """hn = the upper-right chain of the vertices of chains ha and hb (see hull[n] above);
    0 if it is what hn held. Coordinates are at most 2**16, so every product fits in int64.

    The chain starts at the highest vertex (the rightmost of equals), which heads ha or hb: the
    other chain's vertices up to its X are dominated and skipped. The rest are taken by X
    ascending (Y descending on equal X) straight into the upper hull: a vertex of an X already
    taken is lower, and a vertex is dropped while it does not turn the chain clockwise."""
    cdef int32_t out[1 + 4 * HC]          # count, then X, Y pairs (decoded), room for na + nb
    cdef const uint16_t* s
    cdef const uint16_t* o
    cdef int64_t ns, no, i = 1, j = 0, k, t, best, area, px, py, v
    if ha[0] == 0 or hb[0] == 0:
        s = hb if ha[0] == 0 else ha
        return chain_copy(hn, s)
    if ha[2] < hb[2] or (ha[2] == hb[2] and ha[1] <= hb[1]):
        s, o = ha, hb
    else:
        s, o = hb, ha
    ns = s[0]
    no = o[0]
    while j < no and vx(o, j) <= vx(s, 0):
        j += 1
    out[1] = <int32_t>vx(s, 0)
    out[2] = <int32_t>vy(s, 0)
    k = 1
    while i < ns or j < no:
        if j >= no or (i < ns and (vx(s, i) < vx(o, j) or (vx(s, i) == vx(o, j)
                                                          and vy(s, i) >= vy(o, j)))):
            px = vx(s, i)
            py = vy(s, i)
            i += 1
        else:
            px = vx(o, j)
            py = vy(o, j)
            j += 1
        if px == out[2 * k - 1]:
            continue
        while k >= 2 and ((out[2 * k - 1] - out[2 * k - 3]) * (py - out[2 * k - 2])
                          - (<int64_t>out[2 * k] - out[2 * k - 2]) * (px - out[2 * k - 3])) >= 0:
            k -= 1
        out[1 + 2 * k] = <int32_t>px
        out[2 + 2 * k] = <int32_t>py
        k += 1
    # Too long: replace the neighbours whose corner adds least by that corner.
    while k > HC:
        best = 0
        area = -1
        for t in range(k - 1):
            v = (<int64_t>out[3 + 2 * t] - out[1 + 2 * t]) * (out[2 + 2 * t] - out[4 + 2 * t])
            if area < 0 or v < area:
                area = v
                best = t
        out[1 + 2 * best] = out[3 + 2 * best]
        for t in range(best + 1, k - 1):
            out[1 + 2 * t] = out[3 + 2 * t]
            out[2 + 2 * t] = out[4 + 2 * t]
        k -= 1
    return chain_store(hn, out, k)


cdef inline int64_t vx(const uint16_t* h, int64_t t) noexcept nogil:
    """X of vertex t of chain h."""
    return (1 << FIXED_SHIFT) - h[1 + 2 * t]


cdef inline int64_t vy(const uint16_t* h, int64_t t) noexcept nogil:
    """Y of vertex t of chain h."""
    return (1 << FIXED_SHIFT) - h[2 + 2 * t]


cdef inline bint chain_store(uint16_t* hn, const int32_t* src, int64_t k) noexcept nogil:
    """hn = the first k decoded vertices of src, encoded; 0 if hn held them already."""
    cdef bint changed = hn[0] != k
    cdef int64_t t
    cdef uint16_t e
    hn[0] = <uint16_t>k
    for t in range(1, 2 * k + 1):
        e = <uint16_t>((1 << FIXED_SHIFT) - src[t])
        changed |= hn[t] != e
        hn[t] = e
    return changed


cdef inline bint chain_copy(uint16_t* hn, const uint16_t* src) noexcept nogil:
    """hn = chain src; 0 if hn held it already."""
    cdef bint changed = 0
    cdef int64_t t
    for t in range(2 * src[0] + 1):
        changed |= hn[t] != src[t]
        hn[t] = src[t]
    return changed


cdef inline int64_t imax(int64_t a, int64_t b) noexcept nogil:
    return a if a > b else b


cdef inline int64_t imin(int64_t a, int64_t b) noexcept nogil:
    return a if a < b else b


cdef inline uint64_t put(int64_t* o, int64_t col, int64_t v) noexcept nogil:
    """o[col] = v; the bits that changed (0 if none)."""
    cdef uint64_t d = <uint64_t>(v ^ o[col])
    o[col] = v
    return d


cdef inline bint pull_values(Index* x, int64_t n) noexcept nogil:
    """Node n's tree columns from its two children; 0 if none of them changed (so no
    ancestor's do). A change shows in the OR of each value's XOR with the one it replaces: no
    branch per value."""
    cdef int64_t* o = x.tree + n * x.nw
    cdef const int64_t* a = x.tree + 2 * n * x.nw
    cdef const int64_t* b = a + x.nw
    cdef int64_t j
    cdef uint64_t diff = 0
    diff |= put(o, C_TC, imax(a[C_TC], b[C_TC]))
    diff |= put(o, C_TM, imax(a[C_TM], b[C_TM]))
    diff |= put(o, C_NC, imax(a[C_NC], b[C_NC]))
    diff |= put(o, C_NM, imax(a[C_NM], b[C_NM]))
    diff |= put(o, C_P1, imin(a[C_P1], b[C_P1]) if x.p1_min else imax(a[C_P1], b[C_P1]))
    diff |= put(o, C_P2, imax(a[C_P2], b[C_P2]))
    if x.shift >= 0:
        diff |= put(o, C_MI, imin(a[C_MI], b[C_MI]))
    if x.joint:
        for j in range(C_TJ, C_TJ + NJ):
            diff |= put(o, j, imax(a[j], b[j]))
    return diff != 0


cdef inline bint pull(Index* x, int64_t n) noexcept nogil:
    """Node n's values (columns, chain, top state) from its two children; 0 if none changed."""
    cdef bint changed = pull_values(x, n)
    if x.dot:
        changed |= hull_pull(x.hull + n * HW, x.hull + 2 * n * HW, x.hull + (2 * n + 1) * HW)
    if x.wf:
        changed |= top_pull(x, n, 2 * n, 2 * n + 1)
    return changed


cdef inline bint top_pull(Index* x, int64_t n, int64_t a, int64_t b) noexcept nogil:
    """Worst-fit: node n's top state (the state of its hosts with the largest g, if one state
    has it alone) and g2, the largest g of the hosts in any other state; 0 if unchanged."""
    cdef int64_t j, src, other, g2
    cdef bint same = 1
    for j in range(TOP - 1):
        if x.top[a * TOP + j] != x.top[b * TOP + j]:
            same = 0
            break
    if same:
        src = a
        g2 = x.top[a * TOP + 4] if x.top[a * TOP + 4] > x.top[b * TOP + 4] else x.top[b * TOP + 4]
    else:
        src = a if x.tree[a * x.nw + C_P1] >= x.tree[b * x.nw + C_P1] else b
        other = b if src == a else a
        g2 = imax(x.top[src * TOP + 4], x.tree[other * x.nw + C_P1])
    cdef bint changed = g2 != x.top[n * TOP + 4]
    for j in range(TOP - 1):
        changed |= x.top[n * TOP + j] != x.top[src * TOP + j]
        x.top[n * TOP + j] = x.top[src * TOP + j]
    x.top[n * TOP + 4] = g2
    return changed


cdef bint same_kind(Fleet* f, int64_t a, int64_t b) noexcept nogil:
    """Hosts a and b have equal capacities, distance matrices and schedulable flags."""
    cdef int64_t k
    if f.sched[a] != f.sched[b]:
        return 0
    for k in range(f.K):
        if f.cap_c[a * f.K + k] != f.cap_c[b * f.K + k] or f.cap_m[a * f.K + k] != f.cap_m[b * f.K + k]:
            return 0
    if f.dist_stride:
        for k in range(f.K * f.K):
            if f.dist[a * f.dist_stride + k] != f.dist[b * f.dist_stride + k]:
                return 0
    return 1


cdef bint same_free(Fleet* f, int64_t a, int64_t b) noexcept nogil:
    """Hosts a and b have the same free capacity on every node."""
    cdef int64_t k
    for k in range(f.K):
        if f.free_c[a * f.K + k] != f.free_c[b * f.K + k] or f.free_m[a * f.K + k] != f.free_m[b * f.K + k]:
            return 0
    return 1


# ---------------------------------------------------------------------------------------------
# Host classes. Two hosts of the same kind (capacities, distances, schedulable flag) with the same
# free state answer every request alike: same feasibility, width, node set and score, so the scan
# takes the lower index of the two. Only the head (lowest-index member) of each class is live in
# the index; the other members hold EMPTY leaves and cost the search nothing, however many there
# are and wherever they lie. A commit moves its host from one class to another (three leaves
# change at most: the host, the next member of the class it left, the head it displaced).
# Invariants after every commit, for every schedulable host h with a present node:
#   cls[h] is the class of (kind[h], free state of h); h is in that class's list exactly once;
#   each list is sorted by host index, head/tail are its ends; its hash hsh[c] is table's key
#   for c, reached from hsh[c] & tmask by linear probing without crossing an empty slot.
# Unschedulable hosts and hosts without present nodes have cls[h] = -1 and take no new work.
# ---------------------------------------------------------------------------------------------

cdef uint64_t HASH_MUL = 0x9E3779B97F4A7C15


cdef inline uint64_t hash_step(uint64_t hv, int64_t v) noexcept nogil:
    hv = (hv ^ <uint64_t>v) * HASH_MUL
    return hv ^ (hv >> 29)


cdef uint64_t kind_hash(Fleet* f, int64_t h) noexcept nogil:
    cdef uint64_t hv = hash_step(0, f.sched[h])
    cdef int64_t k
    for k in range(f.K):
        hv = hash_step(hash_step(hv, f.cap_c[h * f.K + k]), f.cap_m[h * f.K + k])
    if f.dist_stride:
        for k in range(f.K * f.K):
            hv = hash_step(hv, f.dist[h * f.dist_stride + k])
    return hv


cdef uint64_t class_hash(Fleet* f, Index* x, int64_t h) noexcept nogil:
    cdef uint64_t hv = hash_step(0, x.kind[h])
    cdef int64_t k
    for k in range(f.K):
        hv = hash_step(hash_step(hv, f.free_c[h * f.K + k]), f.free_m[h * f.K + k])
    return hv


cdef void table_delete(Index* x, int64_t c) noexcept nogil:
    """Remove class id c from the table, shifting later entries of its probe run back."""
    cdef int64_t mask = x.tmask, i, j, home
    i = <int64_t>(x.hsh[c] & <uint64_t>mask)
    while x.table[i] != c:
        i = (i + 1) & mask
    j = i
    while True:
        j = (j + 1) & mask
        if x.table[j] < 0:
            break
        home = <int64_t>(x.hsh[x.table[j]] & <uint64_t>mask)
        # The entry at j stays if its home lies cyclically in (i, j]; else it moves to the hole.
        if (i <= j and i < home <= j) or (i > j and (home > i or home <= j)):
            continue
        x.table[i] = x.table[j]
        i = j
    x.table[i] = -1


cdef int64_t class_leave(Index* x, int64_t h) noexcept nogil:
    """Take host h out of its class; returns the member that became head (-1 if none did)."""
    cdef int64_t c = x.cls[h]
    cdef bint was_head = x.head[c] == h
    if x.prv[h] >= 0:
        x.nxt[x.prv[h]] = x.nxt[h]
    else:
        x.head[c] = x.nxt[h]
    if x.nxt[h] >= 0:
        x.prv[x.nxt[h]] = x.prv[h]
    else:
        x.tail[c] = x.prv[h]
    x.cls[h] = -1
    if x.head[c] < 0:
        table_delete(x, c)
        x.unused[x.n_unused] = c
        x.n_unused += 1
        return -1
    return x.head[c] if was_head else -1


cdef int64_t class_join(Fleet* f, Index* x, int64_t h) noexcept nogil:
    """Put host h (in no class) into the class of its kind and free state, creating it if need
    be; returns the former head it displaced (-1 if none)."""
    cdef int64_t mask = x.tmask, i, c, p, old
    cdef uint64_t hv = class_hash(f, x, h)
    i = <int64_t>(hv & <uint64_t>mask)
    while x.table[i] >= 0:
        c = x.table[i]
        if x.hsh[c] == hv and x.kind[x.head[c]] == x.kind[h] and same_free(f, x.head[c], h):
            x.cls[h] = c
            # Insert by index, searching from the tail: hosts mostly join in increasing order.
            p = x.tail[c]
            while p >= 0 and p > h:
                p = x.prv[p]
            x.prv[h] = p
            if p < 0:
                old = x.head[c]
                x.nxt[h] = old
                x.prv[old] = h
                x.head[c] = h
                return old
            x.nxt[h] = x.nxt[p]
            if x.nxt[p] >= 0:
                x.prv[x.nxt[p]] = h
            else:
                x.tail[c] = h
            x.nxt[p] = h
            return -1
        i = (i + 1) & mask
    x.n_unused -= 1
    c = x.unused[x.n_unused]
    x.table[i] = c
    x.hsh[c] = hv
    x.head[c] = h
    x.tail[c] = h
    x.nxt[h] = -1
    x.prv[h] = -1
    x.cls[h] = c
    return -1


cdef void index_build(Fleet* f, Index* x) noexcept nogil:
    cdef int64_t h, n, k, cap, i, mask = x.tmask, c
    cdef uint64_t hv
    x.p1_min = f.policy == POLICY_BEST_FIT or f.policy == POLICY_BALANCED
    x.min_cap_c = 0
    x.min_cap_m = 0
    x.max_cap_c = 0
    x.max_cap_m = 0
    x.min_node_c = -1
    x.min_node_m = -1
    x.max_present = 0
    for h in range(f.H):
        if f.n_present[h] == 0:
            continue
        if f.tot_cap_c[h] > 0 and (x.min_cap_c == 0 or f.tot_cap_c[h] < x.min_cap_c):
            x.min_cap_c = f.tot_cap_c[h]
        if f.tot_cap_m[h] > 0 and (x.min_cap_m == 0 or f.tot_cap_m[h] < x.min_cap_m):
            x.min_cap_m = f.tot_cap_m[h]
        if f.tot_cap_c[h] > x.max_cap_c:
            x.max_cap_c = f.tot_cap_c[h]
        if f.tot_cap_m[h] > x.max_cap_m:
            x.max_cap_m = f.tot_cap_m[h]
        if f.n_present[h] > x.max_present:
            x.max_present = f.n_present[h]
        for k in range(f.K):
            if (f.present[h] >> k) & 1:
                cap = f.cap_c[h * f.K + k]
                if x.min_node_c < 0 or cap < x.min_node_c:
                    x.min_node_c = cap
                cap = f.cap_m[h * f.K + k]
                if x.min_node_m < 0 or cap < x.min_node_m:
                    x.min_node_m = cap
    # Kinds: the table maps a kind's hash to its lowest-index host while they are found.
    for i in range(x.tmask + 1):
        x.table[i] = -1
    for h in range(f.H):
        hv = kind_hash(f, h)
        i = <int64_t>(hv & <uint64_t>mask)
        while x.table[i] >= 0 and not same_kind(f, x.table[i], h):
            i = (i + 1) & mask
        if x.table[i] < 0:
            x.table[i] = h
        x.kind[h] = x.table[i]
    # Classes: every schedulable host with a present node joins in index order.
    for i in range(x.tmask + 1):
        x.table[i] = -1
    x.n_unused = f.H
    for c in range(f.H):
        x.head[c] = -1
        x.unused[c] = f.H - 1 - c   # ids are taken from the top of the stack: 0, 1, 2, ...
    for h in range(f.H):
        x.cls[h] = -1
        if f.sched[h] and f.n_present[h] > 0:
            if x.classes:
                class_join(f, x, h)
            else:
                x.cls[h] = h    # a class of its own, for good
                x.head[h] = h
    if x.shift < 0:
        for h in range(f.H):
            leaf_values(f, x, h)
        for n in range(x.P + f.H, 2 * x.P):
            empty_leaf(x, n)
    else:
        for i in range(x.P):
            x.shead[i] = -1
        for h in range(f.H - 1, -1, -1):    # lists start in index order
            x.slot[h] = -1
            if live(x, h):
                host_cache(f, x, h)
                i = slot_of(x, h)
                x.slot[h] = i
                x.sprev[h] = -1
                x.snext[h] = x.shead[i]
                if x.shead[i] >= 0:
                    x.sprev[x.shead[i]] = h
                x.shead[i] = h
        for i in range(x.P):
            slot_values(f, x, i)
    for n in range(x.P - 1, 0, -1):
        pull(x, n)


cdef inline void climb(Index* x, int64_t n) noexcept nogil:
    """Leaf n changed: refresh its ancestors, up to the first that stays the same (every node
    above it is then unchanged too)."""
    cdef bint values = 1, chain = 1
    n >>= 1
    if not x.dot:
        while n >= 1 and pull(x, n):
            n >>= 1
        return
    # Dot-product: the chains and the columns settle apart. The host just chosen is a vertex
    # of every chain above it but seldom holds a node's largest free amount, so the columns
    # stop changing a few levels up while the chains change to the root: each is pulled only
    # while it changes (a chain depends on its children's chains alone).
    while n >= 1 and (values or chain):
        if values:
            values = pull_values(x, n)
        if chain:
            chain = hull_pull(x.hull + n * HW, x.hull + 2 * n * HW, x.hull + (2 * n + 1) * HW)
        n >>= 1


cdef void index_update(Fleet* f, Index* x, int64_t h) noexcept nogil:
    """Host h's free state or liveness changed: bring its leaf (its slot's, under slots) and
    their ancestors up to date."""
    cdef int64_t old, new, before, after
    if x.shift < 0:
        leaf_values(f, x, h)
        climb(x, x.P + h)
        return
    # Every slot's leaf holds the exact fold of its hosts (pending reasons read the root).
    old = x.slot[h]
    new = -1
    if live(x, h):
        host_cache(f, x, h)
        new = slot_of(x, h)
    if old >= 0:
        if x.sprev[h] >= 0:
            x.snext[x.sprev[h]] = x.snext[h]
        else:
            x.shead[old] = x.snext[h]
        if x.snext[h] >= 0:
            x.sprev[x.snext[h]] = x.sprev[h]
        x.slot[h] = -1
        if old != new and slot_values(f, x, old):
            climb(x, x.P + old)
    if new >= 0:
        x.slot[h] = new
        # In index order: the scan then meets tied hosts lowest index first, and the hosts
        # after the best that merely tie it are refused on their cached bound, unscored
        # (a list scan scored 4.3 hosts per request in push-front order, 1.8 in index order).
        before = -1
        after = x.shead[new]
        while after >= 0 and after < h:
            before = after
            after = x.snext[after]
        x.sprev[h] = before
        x.snext[h] = after
        if before >= 0:
            x.snext[before] = h
        else:
            x.shead[new] = h
        if after >= 0:
            x.sprev[after] = h
        # Staying in its slot, h may have lowered one of the slot's maxima: fold all again.
        if slot_values(f, x, new) if old == new else slot_add(f, x, new, h):
            climb(x, x.P + new)


cdef void index_commit(Fleet* f, Index* x, int64_t h, int64_t c, int64_t m, int mode,
                       int64_t width, int64_t* out_c, int64_t* out_m, uint64_t* out_nodes) noexcept nogil:
    """commit() the request to host h and bring its class and the index up to date."""
    cdef int64_t promoted = -1, displaced = -1
    if not x.classes:
        commit(f, h, c, m, mode, width, out_c, out_m, out_nodes)
        index_update(f, x, h)
        return
    if x.cls[h] >= 0:
        promoted = class_leave(x, h)
    commit(f, h, c, m, mode, width, out_c, out_m, out_nodes)
    if f.sched[h] and f.n_present[h] > 0:
        displaced = class_join(f, x, h)
    # The promoted host takes h's old state and place first (under slots its arrival changes
    # no value of the slot but perhaps its lowest index, so its climb stops at once), then h
    # moves, then the head h displaced leaves.
    if promoted >= 0:
        index_update(f, x, promoted)
    index_update(f, x, h)
    if displaced >= 0:
        index_update(f, x, displaced)


cdef inline int64_t ceil_div(int64_t a, int64_t b) noexcept nogil:
    return (a + b - 1) // b


cdef bint query_init(Fleet* f, Index* x, Query* q, int64_t c, int64_t m, int mode) noexcept nogil:
    """Constants of the bounds for request (c, m) under ``mode``; 0 if no host can fit it now.

    With dc = fx(c, cap_c) of a host that could take r (so c <= cap_c and dc <= 1.0), the bounds
    use dc between fx(c, max_cap_c) and min(1.0, fx(c, min_cap_c)), and the same for memory.
    """
    cdef int64_t one = 1 << FIXED_SHIFT, w, wc = f.cpu_weight, wm = f.mem_weight, A, B
    cdef int64_t dc_lo, dc_hi, dm_lo, dm_hi
    q.c = c
    q.m = m
    q.mode = mode
    if x.tree[x.nw + C_TC] < c or x.tree[x.nw + C_TM] < m:
        return 0  # also keeps c, m <= 2**46 below, so c << 16 cannot overflow
    # Node-level necessary condition: the largest share ceil(r / w) must fit some node.
    q.need_nc = 0
    q.need_nm = 0
    if mode == MODE_SINGLE:
        q.need_nc = c
        q.need_nm = m
    elif mode == MODE_RESTRICTED or mode == MODE_BEST_EFFORT:
        # Restricted uses min_nodes(r, h) <= w: any w nodes of capacity >= the smallest node's
        # hold the equal split once w >= r / smallest; never more than the host's nodes.
        w = x.max_present
        if mode == MODE_RESTRICTED and x.min_node_c > 0 and x.min_node_m > 0:
            dc_lo = ceil_div(c, x.min_node_c)
            dm_lo = ceil_div(m, x.min_node_m)
            if dm_lo > dc_lo:
                dc_lo = dm_lo
            if dc_lo < w:
                w = dc_lo
        q.need_nc = ceil_div(c, w)
        q.need_nm = ceil_div(m, w)
    # The set's first node takes both shares: test one node for both, at the ratio nearest the
    # request's (any ratio gives a necessary condition; the nearest, the sharpest).
    q.jj = 0
    while q.jj < NJ - 1 and (q.need_nm >> (S0 + SJ * (q.jj + 1))) >= q.need_nc:
        q.jj += 1
    q.jv = joint(q.need_nc, q.need_nm, S0 + SJ * q.jj)
    dc_lo = fx(c, x.max_cap_c)
    dm_lo = fx(m, x.max_cap_m)
    dc_hi = one if x.min_cap_c == 0 else (c << FIXED_SHIFT) // x.min_cap_c
    dm_hi = one if x.min_cap_m == 0 else (m << FIXED_SHIFT) // x.min_cap_m
    if dc_hi > one:
        dc_hi = one
    if dm_hi > one:
        dm_hi = one
    if f.policy == POLICY_BEST_FIT:
        # room = wc*fx(fc - c) + wm*fx(fm - m) >= g - wc*dc - wm*dm - (wc + wm), and >= 0
        q.k1 = (wc + wm) * one
        q.k2 = wc * dc_hi + wm * dm_hi + wc + wm
    elif f.policy == POLICY_WORST_FIT:
        # score = sum w*floor(x - y) <= floor(sum w*(x - y)), x = fc/cap, y >= c/max_cap: with
        # g and k1 at 2**32 resolution, score <= (g - k1) >> 16
        q.k1 = wc * fine(c, x.max_cap_c) + wm * fine(m, x.max_cap_m) - wc - wm
    elif f.policy == POLICY_DOT_PRODUCT:
        # score = wc*dc*X + wm*dm*Y <= A*X + B*Y with (A, B) = (wc*dc_hi, wm*dm_hi) = (k1, k2)
        q.k1 = wc * dc_hi
        q.k2 = wm * dm_hi
    elif f.policy == POLICY_BALANCED:
        # uc - um lies in [a + dc - dm - 1, a + dc - dm + 1]; score = 1.0 - |uc - um|
        q.k1 = dc_lo - dm_hi - 1
        q.k2 = dc_hi - dm_lo + 1
    return 1


cdef inline bint could_hold(Index* x, Query* q, int64_t n) noexcept nogil:
    """0 only if no host below node n can take the request now (never 0 when one can)."""
    cdef const int64_t* r = x.tree + n * x.nw
    return (r[C_TC] >= q.c and r[C_TM] >= q.m and r[C_NC] >= q.need_nc and r[C_NM] >= q.need_nm
            and (not x.joint or r[C_TJ + q.jj] >= q.jv))


cdef inline int64_t score_bound(Fleet* f, Index* x, Query* q, int64_t n, int64_t cut) noexcept nogil:
    """An upper bound on host_score over the hosts below node n that can take the request.

    A bound below ``cut`` (the best score so far) prunes whatever its value, so where a cheap
    bound is already below it the exact one is not computed."""
    cdef int64_t room, lo, hi
    if f.policy == POLICY_BEST_FIT:
        room = x.tree[n * x.nw + C_P1] - q.k2
        return q.k1 - (room if room > 0 else 0)
    cdef int64_t ex, bound
    cdef int64_t* t
    if f.policy == POLICY_WORST_FIT:
        bound = (x.tree[n * x.nw + C_P1] - q.k1) >> FIXED_SHIFT
        if bound < cut:
            return bound   # the bound over all g, no division
        t = x.top + n * TOP
        bound = (t[4] - q.k1) >> FIXED_SHIFT
        if t[0] >= q.c and t[1] >= q.m:
            ex = f.cpu_weight * fx(t[0] - q.c, t[2]) + f.mem_weight * fx(t[1] - q.m, t[3])
            if ex > bound:
                bound = ex
        return bound
    if f.policy == POLICY_DOT_PRODUCT:
        return chain_bound(x.hull + n * HW, q.k1, q.k2)
    if f.policy == POLICY_BALANCED:
        return balanced_bound(x.tree[n * x.nw + C_P1], x.tree[n * x.nw + C_P2], q)
    return 0


cdef inline int64_t balanced_bound(int64_t amin, int64_t amax, Query* q) noexcept nogil:
    """Balanced: an upper bound on the score of hosts whose a lies in [amin, amax]."""
    cdef int64_t lo = amin + q.k1, hi = amax + q.k2
    if lo > 0:
        return (1 << FIXED_SHIFT) - lo
    if hi < 0:
        return (1 << FIXED_SHIFT) + hi
    return 1 << FIXED_SHIFT


cdef inline int64_t chain_bound(const uint16_t* h, int64_t A, int64_t B) noexcept nogil:
    """The largest A*X + B*Y over a chain's vertices (-1 for an empty chain): (A + B) * 2**16
    less the smallest A*u + B*v, the vertices being stored as u = 2**16 - X, v = 2**16 - Y."""
    cdef int64_t t, v, least = BIG
    if h[0] == 0:
        return -1
    for t in range(h[0]):
        v = A * h[1 + 2 * t] + B * h[2 + 2 * t]
        if v < least:
            least = v
    return ((A + B) << FIXED_SHIFT) - least


cdef inline bint beats(Best* b, int64_t w, int64_t s, int64_t h, bint by_width) noexcept nogil:
    """Would (width w, score s, host h) rank before the best so far? The scan's order."""
    if b.h < 0:
        return 1
    if by_width and w != b.w:
        return w < b.w
    if s != b.s:
        return s > b.s
    return h < b.h


cdef inline void consider(Fleet* f, Query* q, Best* b, int64_t h, bint by_width) noexcept nogil:
    """Score live host h for the request and keep it in b if it ranks before the best so far."""
    cdef int64_t s, w, max_w
    if f.tot_free_c[h] < q.c or f.tot_free_m[h] < q.m:
        return
    s = host_score(f, h, q.c, q.m)
    if by_width:
        max_w = f.n_present[h]
        if b.h >= 0:
            max_w = b.w if beats(b, b.w, s, h, 1) else b.w - 1
        if max_w < 1:
            return
        w = fit_width(f, h, q.c, q.m, q.mode, max_w)
    else:
        if not beats(b, 0, s, h, 0):
            return
        w = fit_width(f, h, q.c, q.m, q.mode, MAX_K)
    if w > 0 and beats(b, w, s, h, by_width):
        b.h = h
        b.w = w
        b.s = s


cdef inline int64_t max_bound(Fleet* f, Index* x, Query* q, Best* b, int64_t n) noexcept nogil:
    """score_bound for max_find."""
    if x.dot:
        return chain_bound(x.hull + n * HW, q.k1, q.k2)
    return score_bound(f, x, q, n, b.s if b.h >= 0 else -BIG)


cdef void max_find(Fleet* f, Index* x, Query* q, Best* b) noexcept nogil:
    """index_find where leaves are hosts and widths are not ranked (every score but balanced,
    every mode but best-effort): the same host, found testing fewer nodes.

    A node's bound is at least either child's. For first-fit, best-fit and dot-product it is
    the larger of them (the smallest g below, the chain of the children's vertices, or 0 for
    all): a left child whose bound reaches its parent's holds the best bound below and goes
    first, its lower indices winning ties, and else the right child's bound is the parent's, so
    one child's bound is computed per level. Worst-fit's may exceed both (its top state is one
    child's), so there the right child's is computed when the left's falls short. A right
    sibling passed over is stacked unseen under its parent's bound, which prunes it by index
    once a host of that score is found: it is tested only if popped while it can still win."""
    cdef int64_t st_n[STACK]        # the node << 1, | 1 when it was tested (could_hold, bound)
    cdef int64_t st_s[STACK]        # its bound, or its parent's while untested
    cdef int64_t top = 0, n = 1, lo = 0, s, sl, sr, child, d
    cdef int64_t log_p = 63 - __builtin_clzll(<unsigned long long>x.P)
    cdef bint go = 1, left
    b.h = -1
    b.w = 0
    b.s = 0
    s = max_bound(f, x, q, b, 1)
    while True:
        if go:
            if n >= x.P:
                consider(f, q, b, n - x.P, 0)
                go = 0
            else:
                # lo: the leftmost leaf below n, d: n's children's depth
                child = 2 * n
                d = 63 - __builtin_clzll(<unsigned long long>child)
                left = could_hold(x, q, child)
                sl = max_bound(f, x, q, b, child) if left else 0
                if left and sl >= s:
                    st_n[top] = (child + 1) << 1
                    st_s[top] = s
                    top += 1
                    n = child
                elif could_hold(x, q, child + 1):
                    # the right child's bound: the parent's, but computed under worst-fit
                    # (whose parent bound may exceed both children's) or when the left fails
                    sr = max_bound(f, x, q, b, child + 1) if x.wf or not left else s
                    if left and sl >= sr:   # worst-fit only: the left goes first after all
                        st_n[top] = ((child + 1) << 1) | 1
                        st_s[top] = sr
                        top += 1
                        n = child
                        s = sl
                    else:
                        if left:
                            st_n[top] = (child << 1) | 1
                            st_s[top] = sl
                            top += 1
                        n = child + 1
                        lo += x.P >> d
                        s = sr
                elif left:
                    n = child
                    s = sl
                # n moved down unless neither child could hold the request
                go = n >= child and (b.h < 0 or beats(b, 1, s, lo, 0))
        while not go:
            if top == 0:
                return
            top -= 1
            n = st_n[top] >> 1
            s = st_s[top]
            d = 63 - __builtin_clzll(<unsigned long long>n)
            lo = (n << (log_p - d)) - x.P
            go = b.h < 0 or beats(b, 1, s, lo, 0)
            if go and not (st_n[top] & 1):
                go = could_hold(x, q, n)
                if go:
                    s = max_bound(f, x, q, b, n)
                    go = b.h < 0 or beats(b, 1, s, lo, 0)


cdef void index_find(Fleet* f, Index* x, Query* q, Best* b) noexcept nogil:
    """The scan's choice of host for the request, written into b (b.h = -1 if none fits).

    Depth first, the more promising child first: the search descends into it at once and
    stacks its sibling, then pops the stacked nodes that can still beat the best so far. Under
    slots it starts at the lowest node above every live host's slot. Where the leaves are hosts
    and widths are not ranked, max_find finds the same host testing one child per level."""
    cdef int64_t st_n[STACK]
    cdef int64_t st_lo[STACK]
    cdef int64_t st_w[STACK]
    cdef int64_t st_s[STACK]
    cdef int64_t st_sp[STACK]
    cdef int64_t top = 0, n, lo, s, span, h, j, child
    cdef int64_t cw[2]
    cdef int64_t cs[2]
    cdef int64_t clo[2]
    cdef bint ok[2]
    cdef bint by_width = q.mode == MODE_BEST_EFFORT
    cdef bint slots = x.shift >= 0
    cdef bint go
    if not by_width and not slots:
        max_find(f, x, q, b)
        return
    b.h = -1
    b.w = 0
    b.s = 0
    n = 1
    lo = x.tree[x.nw + C_MI] if slots else 0
    span = x.P
    s = score_bound(f, x, q, 1, -BIG) if x.dot else 0
    if slots:
        # Every live host's slot lies between those of the smallest and the largest balance
        # (the root's p1 and p2): start at their lowest common ancestor, below the levels
        # where all hosts sit on one side.
        h = value_slot(x, x.tree[x.nw + C_P1])
        j = h ^ value_slot(x, x.tree[x.nw + C_P2])
        n = (x.P + h) >> (64 - __builtin_clzll(<unsigned long long>j) if j else 0)
        lo = x.tree[n * x.nw + C_MI]
    while True:
        # Node n passed the test below: it may hold a host that beats the best so far.
        go = 0
        if n >= x.P:
            if not slots:
                consider(f, q, b, lo, by_width)
            else:
                h = x.shead[n - x.P]
                while h >= 0:
                    # The node tests and the bound on the host's own cached values first: most
                    # hosts of a crowded slot fail one of them without a division.
                    if (x.hnc[h] >= q.need_nc and x.hnm[h] >= q.need_nm
                            and x.htj[h * NJ + q.jj] >= q.jv
                            and (b.h < 0 or beats(b, 1, balanced_bound(x.ha[h], x.ha[h], q), h,
                                                  by_width))):
                        consider(f, q, b, h, by_width)
                    h = x.snext[h]
        else:
            # The children that could hold the request; the more promising one is visited
            # first, on equal promise the left one (lower indices, or values under slots).
            span >>= 1
            for j in range(1, -1, -1):
                child = 2 * n + j
                ok[j] = could_hold(x, q, child)
                if ok[j]:
                    if x.dot and j == 0 and ok[1] and cs[1] < s:
                        # n's chain holds its children's vertices (or corners above them): its
                        # bound s is the larger child bound, or above both. The right child's
                        # below s leaves s to the left: a bound on it, exact unless a corner
                        # made s.
                        cs[0] = s
                    else:
                        cs[j] = score_bound(f, x, q, child, b.s if b.h >= 0 else -BIG)
                    cw[j] = 1 if (not by_width or (x.tree[child * x.nw + C_NC] >= q.c
                                                   and x.tree[child * x.nw + C_NM] >= q.m)) else 2
                    clo[j] = x.tree[child * x.nw + C_MI] if slots else lo + j * span
            if ok[0] or ok[1]:
                if ok[0] and ok[1]:
                    j = 1 if ((by_width and cw[1] < cw[0]) or ((not by_width or cw[1] == cw[0])
                                                                   and cs[1] > cs[0])) else 0
                    child = 1 - j
                    st_n[top] = 2 * n + child
                    st_lo[top] = clo[child]
                    st_w[top] = cw[child]
                    st_s[top] = cs[child]
                    st_sp[top] = span
                    top += 1
                else:
                    j = 0 if ok[0] else 1
                n = 2 * n + j
                lo = clo[j]
                s = cs[j]
                # Skip a subtree that cannot beat the best: worse bound, or equal and only
                # higher indices (lo: the leftmost leaf's index, or under slots the stored one).
                go = b.h < 0 or beats(b, cw[j], cs[j], lo, by_width)
        while not go:
            if top == 0:
                return
            top -= 1
            n = st_n[top]
            lo = st_lo[top]
            span = st_sp[top]
            s = st_s[top]
            go = b.h < 0 or beats(b, st_w[top], st_s[top], lo, by_width)


cdef void required_host_fit(Fleet* f, int64_t h, int64_t c, int64_t m, int mode,
                            Best* b) noexcept nogil:
    """The one host a request is pinned to, if it can take it now (b.h = -1 otherwise)."""
    b.h = -1
    if not f.sched[h] or f.tot_free_c[h] < c or f.tot_free_m[h] < m:
        return
    b.w = fit_width(f, h, c, m, mode, MAX_K)
    if b.w > 0:
        b.h = h
        b.s = host_score(f, h, c, m)


def _aligned(shape, dtype):
    """An uninitialised C-contiguous array whose data starts on a 64-byte cache line."""
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    buf = np.empty(size + 64, dtype=np.uint8)
    skip = (-buf.ctypes.data) % 64
    return buf[skip:skip + size].view(dtype).reshape(shape)


cdef inline const int64_t* ptr2(const int64_t[:, ::1] a) noexcept nogil:
    return &a[0, 0] if a.shape[0] > 0 and a.shape[1] > 0 else NULL


cdef int check_inputs(const int64_t[:, ::1] node_cpu, const int64_t[:, ::1] node_mem,
                      const int64_t[:, :, ::1] distance, const uint8_t[::1] schedulable,
                      const int64_t[:, ::1] free_cpu, const int64_t[:, ::1] free_mem,
                      const int64_t[::1] cpu, const int64_t[::1] mem, const int8_t[::1] mode,
                      const int32_t[::1] required_host, int policy, int node_choice,
                      int64_t cpu_weight, int64_t mem_weight):
    """The checks every entry point makes before touching anything: STATUS_SHAPE when the
    cluster arrays ([H, K], distance [1 or H, K, K]) or the request arrays ([N]) disagree,
    STATUS_CODE for an unknown policy, node choice or mode code or a weight outside
    0..MAX_WEIGHT, else STATUS_OK. Entry points check their own output arrays."""
    cdef int64_t H = node_cpu.shape[0], K = node_cpu.shape[1], N = cpu.shape[0], i
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


cdef object fleet_init(Fleet* f, const int64_t[:, ::1] node_cpu, const int64_t[:, ::1] node_mem,
                       const int64_t[:, :, ::1] distance, const uint8_t[::1] schedulable,
                       int64_t* free_c, int64_t* free_m, int policy, int node_choice,
                       int64_t cpu_weight, int64_t mem_weight):
    """Point f at a call's inputs and derive its per-host state (totals, present masks, uniform
    flags); the one setup of every entry point. Shapes are the caller's to check (H >= 0,
    1 <= K <= MAX_K, distance [1 or H, K, K]); free_c/free_m point at the [H, K] free capacity
    (NULL allowed when H == 0). Returns the arrays that own the derived state: the caller keeps
    the returned object alive for as long as it uses f. Allocates O(H) once, never per request.
    """
    cdef int64_t H = node_cpu.shape[0], K = node_cpu.shape[1], h, k, first
    cdef Py_ssize_t n = max(H, 1)   # one spare slot keeps every pointer valid when H == 0
    totals = np.zeros((5, n), dtype=np.int64)   # tot_cap_c, tot_cap_m, tot_free_c, tot_free_m, n_present
    present = np.zeros(n, dtype=np.uint64)
    uniform = np.zeros(n, dtype=np.uint8)
    cdef int64_t[:, ::1] v_tot = totals
    cdef uint64_t[::1] v_pr = present
    cdef uint8_t[::1] v_un = uniform
    f.H = H
    f.K = K
    f.cap_c = ptr2(node_cpu)
    f.cap_m = ptr2(node_mem)
    f.dist = &distance[0, 0, 0]
    f.dist_stride = K * K if distance.shape[0] > 1 else 0
    f.sched = &schedulable[0] if H > 0 else NULL
    f.tot_cap_c = &v_tot[0, 0]
    f.tot_cap_m = &v_tot[1, 0]
    f.tot_free_c = &v_tot[2, 0]
    f.tot_free_m = &v_tot[3, 0]
    f.n_present = &v_tot[4, 0]
    f.present = &v_pr[0]
    f.uniform = &v_un[0]
    f.free_c = free_c
    f.free_m = free_m
    f.policy = policy
    f.node_choice = node_choice
    f.cpu_weight = cpu_weight
    f.mem_weight = mem_weight
    with nogil:
        for h in range(H):
            f.uniform[h] = 1
            first = -1
            for k in range(K):
                if f.cap_c[h * K + k] > 0 or f.cap_m[h * K + k] > 0:
                    if first < 0:
                        first = k
                    elif (f.cap_c[h * K + k] != f.cap_c[h * K + first]
                          or f.cap_m[h * K + k] != f.cap_m[h * K + first]):
                        f.uniform[h] = 0
                    f.present[h] |= (<uint64_t>1) << k
                    f.n_present[h] += 1
                    f.tot_cap_c[h] += f.cap_c[h * K + k]
                    f.tot_cap_m[h] += f.cap_m[h * K + k]
                f.tot_free_c[h] += f.free_c[h * K + k]
                f.tot_free_m[h] += f.free_m[h * K + k]
    return totals, present, uniform


def place_into(const int64_t[:, ::1] node_cpu, const int64_t[:, ::1] node_mem,
               const int64_t[:, :, ::1] distance, const uint8_t[::1] schedulable,
               const int64_t[::1] cpu, const int64_t[::1] mem, const int8_t[::1] mode,
               const int32_t[::1] required_host, const int64_t[::1] order,
               int policy, int node_choice, int64_t cpu_weight, int64_t mem_weight,
               int64_t[:, ::1] free_cpu, int64_t[:, ::1] free_mem, int32_t[::1] out_host,
               int64_t[:, ::1] out_cpu, int64_t[:, ::1] out_mem, uint64_t[::1] out_nodes,
               int8_t[::1] out_reason):
    """Place requests order[0], order[1], ... and write the results into the given arrays.

    Contract (numasched.api.place checks all of it; embedders calling this directly must too):
    every array C-contiguous with the dtype in the signature; capacities, free and amounts as
    validated by numasched.Cluster and numasched.Requests; ``mode`` holds resolved codes (no -1);
    ``order`` is a permutation of range(N); the weights are in 0..1000; ``free_cpu``/``free_mem`` start as the free capacity
    and are updated in place; the out_* arrays start as -1 / zeros / zeros / zeros / zeros.
    Returns 0, or a non-zero status (see STATUS_MESSAGES) before anything is written.
    Runs without the GIL.
    """
    cdef int64_t H = node_cpu.shape[0], K = node_cpu.shape[1], N = cpu.shape[0]
    cdef int64_t t, i, c, m, req, P = 1, T
    cdef int md, status
    cdef Fleet f
    cdef Index x
    cdef Query q
    cdef Best best

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

    # Per-call (never per-request) state: the Fleet and its derived host arrays.
    state = fleet_init(&f, node_cpu, node_mem, distance, schedulable, <int64_t*>ptr2(free_cpu),
                       <int64_t*>ptr2(free_mem), policy, node_choice, cpu_weight, mem_weight)

    # The host index: up to 11 int64 per node of 2P nodes, the class table (about 4H) and up to
    # 17 int64 per host for the classes, slot lists and caches: about 400 bytes per host (and HW
    # uint16 or TOP int64 per node more under dot-product or worst-fit). Under balanced the
    # leaves are slots of the balance value, about 4 per host (at most 2**17, one per value:
    # 23 MB), so that hosts of near balance sit side by side.
    while P < H:
        P *= 2
    x.shift = -1
    if policy == POLICY_BALANCED:
        x.shift = FIXED_SHIFT + 1
        while x.shift > 0 and ((<int64_t>1) << (FIXED_SHIFT + 1 - x.shift)) < 4 * H:
            x.shift -= 1
        P = (<int64_t>1) << (FIXED_SHIFT + 1 - x.shift)
    T = 2
    while T < 2 * H:
        T *= 2
    x.tmask = T - 1
    x.dot = policy == POLICY_DOT_PRODUCT
    # Classes pay where identical hosts crowd the top of the ranking (packing, balance); the
    # spreading scores already prune ties exactly (worst-fit's top state, dot-product's
    # directions) and would pay two leaf updates per commit as hosts leave large classes.
    x.classes = policy != POLICY_WORST_FIT and policy != POLICY_DOT_PRODUCT
    # The joint node test pays where the best-ranked hosts are often too fragmented to take a
    # request (packing fills them, balance draws the fullest near the target); the spreading
    # scores rank the emptiest first, which rarely fail it, and would only pay its upkeep.
    x.joint = x.classes
    # Node-major, and only the values the policy reads: worst-fit and dot-product nodes take 48
    # bytes, balanced ones 88, so more of the tree stays in cache.
    x.nw = C_TJ
    if x.joint:
        x.nw = C_TJ + NJ
    if x.shift >= 0:
        x.nw = C_MI + 1
    tree = np.empty((2 * P, x.nw), dtype=np.int64)
    hull = _aligned((2 * P if x.dot else 1, HW), np.uint16)
    x.wf = policy == POLICY_WORST_FIT
    top = np.empty((2 * P if x.wf else 1, TOP), dtype=np.int64)
    classes = np.empty((14, max(H, 1)), dtype=np.int64)
    htj = np.empty((max(H, 1) if x.shift >= 0 else 1, NJ), dtype=np.int64)
    slots = np.empty(P if x.shift >= 0 else 1, dtype=np.int64)
    table = np.empty(T, dtype=np.int64)
    cdef int64_t[:, ::1] v_top = top
    cdef uint16_t[:, ::1] v_hull = hull
    cdef int64_t[:, ::1] v_tree = tree
    cdef int64_t[:, ::1] v_cls = classes
    cdef int64_t[::1] v_table = table
    cdef int64_t[::1] v_slots = slots
    cdef int64_t[:, ::1] v_htj = htj
    x.P = P
    x.tree = &v_tree[0, 0]
    x.htj = &v_htj[0, 0]
    x.shead = &v_slots[0]
    x.table = &v_table[0]
    x.hull = &v_hull[0, 0]
    x.top = &v_top[0, 0]
    x.kind = &v_cls[0, 0]
    x.cls = &v_cls[1, 0]
    x.nxt = &v_cls[2, 0]
    x.prv = &v_cls[3, 0]
    x.head = &v_cls[4, 0]
    x.tail = &v_cls[5, 0]
    x.hsh = <uint64_t*>&v_cls[6, 0]
    x.unused = &v_cls[7, 0]
    x.slot = &v_cls[8, 0]
    x.snext = &v_cls[9, 0]
    x.sprev = &v_cls[10, 0]
    x.hnc = &v_cls[11, 0]
    x.hnm = &v_cls[12, 0]
    x.ha = &v_cls[13, 0]

    with nogil:
        index_build(&f, &x)
        for t in range(N):
            if t + AHEAD < N:
                # Requests are taken in order, scattered over their arrays: start loading the
                # fields of the one AHEAD places on (its outputs too) while this one is placed.
                i = order[t + AHEAD]
                __builtin_prefetch(&cpu[i])
                __builtin_prefetch(&mem[i])
                __builtin_prefetch(&mode[i])
                __builtin_prefetch(&required_host[i])
                __builtin_prefetch(&out_cpu[i, 0])
                __builtin_prefetch(&out_mem[i, 0])
                __builtin_prefetch(&out_nodes[i])
                __builtin_prefetch(&out_host[i])
                __builtin_prefetch(&out_reason[i])
            i = order[t]
            c = cpu[i]
            m = mem[i]
            md = mode[i]
            req = required_host[i]
            if req < 0:
                best.h = -1
                if query_init(&f, &x, &q, c, m, md):
                    index_find(&f, &x, &q, &best)
            else:
                required_host_fit(&f, req, c, m, md, &best)
            if best.h >= 0:
                index_commit(&f, &x, best.h, c, m, md, best.w, &out_cpu[i, 0], &out_mem[i, 0],
                             &out_nodes[i])
                out_host[i] = <int32_t>best.h
            else:
                out_reason[i] = pending_reason(&f, c, m, md, req, x.tree[x.nw + C_TC],
                                               x.tree[x.nw + C_TM])
    return STATUS_OK



# ---------------------------------------------------------------------------------------------
# Embedding: every host's answer for one request alone (numasched.embedding's filter_hosts,
# score_hosts and score_batch). The placement loop's own helpers decide, so a host is feasible
# exactly where place_into would put the request if that host were the only one allowed, on the
# node set it would use, and the best rank is the host place_into's index search finds.
# ---------------------------------------------------------------------------------------------

# Under best-effort a narrower node set outranks any score: rank = score - width * WIDTH_RANK.
# Scores are >= 0 and below 2**44 (dot-product with weights 1000 is the largest, < 2**43), so
# comparing ranks compares (width, -score) lexicographically, as place_into does.
cdef int64_t WIDTH_RANK_C = (<int64_t>1) << 44
WIDTH_RANK = WIDTH_RANK_C


cdef uint64_t node_mask(Fleet* f, int64_t h, int64_t cpu, int64_t mem, int mode,
                        int64_t width) noexcept nogil:
    """The mask of the nodes commit() would take the request from on host h (free only read):
    the proportional split's nodes under mode none, else the node set set_search chooses."""
    cdef int64_t row_c[MAX_K]
    cdef int64_t row_m[MAX_K]
    cdef int nodes[MAX_K]
    cdef uint64_t mask = 0
    cdef int64_t j, k
    if mode == MODE_NONE:
        proportional(f, h, cpu, f.free_c + h * f.K, f.tot_free_c[h], row_c)
        proportional(f, h, mem, f.free_m + h * f.K, f.tot_free_m[h], row_m)
        for k in range(f.K):
            if row_c[k] > 0 or row_m[k] > 0:
                mask |= (<uint64_t>1) << k
        return mask
    set_search(f, h, cpu, mem, width, 0, 1, nodes)
    for j in range(width):
        mask |= (<uint64_t>1) << nodes[j]
    return mask


def score_into(const int64_t[:, ::1] node_cpu, const int64_t[:, ::1] node_mem,
               const int64_t[:, :, ::1] distance, const uint8_t[::1] schedulable,
               const int64_t[:, ::1] free_cpu, const int64_t[:, ::1] free_mem,
               const int64_t[::1] cpu, const int64_t[::1] mem, const int8_t[::1] mode,
               const int32_t[::1] required_host, int policy, int node_choice, int64_t cpu_weight,
               int64_t mem_weight, int64_t[:, ::1] out_rank, uint64_t[:, ::1] out_nodes,
               uint8_t[:, ::1] out_ok):
    """For each request i alone and each host h: can it go there now, how good is it, and on
    which NUMA nodes.

    Arrays as in ``place_into`` (cpu, mem, mode, required_host of length M); free_cpu/free_mem
    are only read. Writes out_ok[i, h] (1 = place_into would put request i on host h if h were
    the only host allowed), out_rank[i, h] (higher is better: the host score, minus
    width * WIDTH_RANK under best-effort) and out_nodes[i, h] (the mask of the nodes it would
    use), each [M, H]; where out_ok is 0 the other two are 0. Returns 0, or a non-zero status
    (see STATUS_MESSAGES) before anything is written. Runs without the GIL and allocates O(H)
    once per call, nothing per host.
    """
    cdef int64_t H = node_cpu.shape[0], M = cpu.shape[0], h, i, c, m, req, w, s
    cdef int md, status
    cdef Fleet f
    status = check_inputs(node_cpu, node_mem, distance, schedulable, free_cpu, free_mem, cpu, mem,
                          mode, required_host, policy, node_choice, cpu_weight, mem_weight)
    if status != STATUS_OK:
        return status
    if (out_rank.shape[0] != M or out_rank.shape[1] != H or out_nodes.shape[0] != M
            or out_nodes.shape[1] != H or out_ok.shape[0] != M or out_ok.shape[1] != H):
        return STATUS_SHAPE
    if M == 0 or H == 0:
        return STATUS_OK
    # The Fleet's free pointers are writable because commit() writes through them; nothing
    # here commits, so the caller's const free arrays are only read.
    state = fleet_init(&f, node_cpu, node_mem, distance, schedulable, <int64_t*>ptr2(free_cpu),
                       <int64_t*>ptr2(free_mem), policy, node_choice, cpu_weight, mem_weight)
    with nogil:
        for i in range(M):
            c = cpu[i]
            m = mem[i]
            md = mode[i]
            req = required_host[i]
            for h in range(H):
                out_ok[i, h] = 0
                out_rank[i, h] = 0
                out_nodes[i, h] = 0
                if ((req >= 0 and req != h) or not f.sched[h] or f.tot_free_c[h] < c
                        or f.tot_free_m[h] < m):
                    continue
                w = fit_width(&f, h, c, m, md, MAX_K)
                if w == 0:
                    continue
                s = host_score(&f, h, c, m)
                out_ok[i, h] = 1
                out_rank[i, h] = s - w * WIDTH_RANK_C if md == MODE_BEST_EFFORT else s
                out_nodes[i, h] = node_mask(&f, h, c, m, md, w)
    return STATUS_OK
