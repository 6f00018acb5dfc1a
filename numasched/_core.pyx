"""numasched._core: the Cython placement kernel (the default backend).

``place_into`` runs the whole placement loop without the GIL on C-contiguous typed memoryviews
that ``numasched.api.place`` prepared; it allocates nothing per request and reports failure as an
integer status. Its semantics are those of ``numasched.kernels.reference`` (the specification),
bit for bit; read that file for the rules, this one for how they are made fast enough.

Invariants kept by every step of the loop, for every host h and node k:
  0 <= free[h, k] <= cap[h, k]                        (no node is ever overcommitted)
  tot_free[h] == sum over k of free[h, k]              (host totals are exact, not estimates)
  a request's shares sum to its amount, on one host    (allocations are never partial)
"""
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint64_t

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


cdef int set_search(Fleet* f, int64_t h, int64_t cpu, int64_t mem, int64_t width,
                    bint at_capacity, bint want_best, int* out_nodes) noexcept nogil:
    """Search the node sets of ``width`` present nodes of host h for the equal split.

    Sets are visited in lexicographic order of their sorted node ids. With ``want_best`` = 0 the
    first set that fits is returned (an existence test); otherwise the best by (distance sum,
    then pack/spread utilisation), earlier sets winning ties. Returns 1 and writes the sorted ids
    into out_nodes[0:width], or returns 0 when no set fits. Availability is the capacity when
    ``at_capacity``, else the free capacity.
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

    # Candidates: present nodes that hold at least the base share. Every member of a fitting set
    # is one, so enumerating subsets of the candidates visits every fitting set, in the same order.
    for k in range(f.K):
        if (present >> k) & 1 and avail_c[k] >= base_c and avail_m[k] >= base_m:
            cand[m] = k
            m += 1
    if m < width:
        return 0
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
            if not want_best:
                for j in range(width):
                    out_nodes[j] = cand[idx[j]]
                return 1
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
    for w in range(1, f.n_present[h] + 1):
        if set_search(f, h, cpu, mem, w, 1, 0, nodes):
            return w
    return 0


cdef int64_t fit_width(Fleet* f, int64_t h, int64_t cpu, int64_t mem, int mode,
                       int64_t max_width) noexcept nogil:
    """Width of the node set the request would use on host h now under ``mode``; 0 = no fit.

    For best-effort only widths up to ``max_width`` are tried (a wider set could not win).
    The caller has checked that the host's free totals cover the request.
    """
    cdef int nodes[MAX_K]
    cdef int64_t w
    if mode == MODE_NONE:
        return f.n_present[h]
    if mode == MODE_SINGLE:
        return 1 if set_search(f, h, cpu, mem, 1, 0, 0, nodes) else 0
    if mode == MODE_RESTRICTED:
        w = min_nodes(f, h, cpu, mem)
        if w > 0 and set_search(f, h, cpu, mem, w, 0, 0, nodes):
            return w
        return 0
    for w in range(1, min(max_width, f.n_present[h]) + 1):
        if set_search(f, h, cpu, mem, w, 0, 0, nodes):
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


cdef int8_t pending_reason(Fleet* f, int64_t cpu, int64_t mem, int mode,
                           int64_t required) noexcept nogil:
    """The first pending reason that applies, in the order of DESIGN.md."""
    cdef int64_t h, h0 = 0, h1 = f.H
    cdef bint ever = 0, cpu_ok = 0, mem_ok = 0
    for h in range(f.H):
        if could_ever_hold(f, h, cpu, mem, mode):
            ever = 1
            break
    if not ever:
        return REASON_TOO_LARGE
    if required >= 0:
        if not f.sched[required] or not could_ever_hold(f, required, cpu, mem, mode):
            return REASON_CONSTRAINT
        h0 = required
        h1 = required + 1
    for h in range(h0, h1):
        if f.sched[h]:
            cpu_ok = cpu_ok or f.tot_free_c[h] >= cpu
            mem_ok = mem_ok or f.tot_free_m[h] >= mem
    if not cpu_ok:
        return REASON_NO_CPU
    if not mem_ok:
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


cdef inline const int64_t* ptr2(const int64_t[:, ::1] a) noexcept nogil:
    return &a[0, 0] if a.shape[0] > 0 and a.shape[1] > 0 else NULL


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
    cdef int64_t h, k, t, i, c, m, req, h0, h1, s, w, max_w, best_h, best_w, best_s, first
    cdef int md
    cdef Fleet f

    if (node_mem.shape[0] != H or node_mem.shape[1] != K or free_cpu.shape[0] != H
            or free_cpu.shape[1] != K or free_mem.shape[0] != H or free_mem.shape[1] != K
            or schedulable.shape[0] != H or K > MAX_K or K < 1
            or distance.shape[1] != K or distance.shape[2] != K
            or not (distance.shape[0] == 1 or distance.shape[0] == H)
            or mem.shape[0] != N or mode.shape[0] != N or required_host.shape[0] != N
            or order.shape[0] != N or out_host.shape[0] != N or out_nodes.shape[0] != N
            or out_reason.shape[0] != N or out_cpu.shape[0] != N or out_cpu.shape[1] != K
            or out_mem.shape[0] != N or out_mem.shape[1] != K):
        return STATUS_SHAPE
    if not (0 <= policy <= POLICY_DOT_PRODUCT and 0 <= node_choice <= NODE_SPREAD
            and 0 <= cpu_weight <= MAX_WEIGHT and 0 <= mem_weight <= MAX_WEIGHT):
        return STATUS_CODE
    for i in range(N):
        if mode[i] < MODE_NONE or mode[i] > MODE_BEST_EFFORT:
            return STATUS_CODE
    if N == 0:
        return STATUS_OK

    # Per-call (never per-request) scratch, [H] each.
    tot_cap_c = np.zeros(H, dtype=np.int64)
    tot_cap_m = np.zeros(H, dtype=np.int64)
    tot_free_c = np.zeros(H, dtype=np.int64)
    tot_free_m = np.zeros(H, dtype=np.int64)
    present = np.zeros(H, dtype=np.uint64)
    n_present = np.zeros(H, dtype=np.int64)
    uniform = np.zeros(H, dtype=np.uint8)
    cdef int64_t[::1] v_tcc = tot_cap_c, v_tcm = tot_cap_m, v_tfc = tot_free_c, v_tfm = tot_free_m
    cdef int64_t[::1] v_np = n_present
    cdef uint64_t[::1] v_pr = present
    cdef uint8_t[::1] v_un = uniform
    cdef int64_t dummy = 0

    f.H = H
    f.K = K
    f.cap_c = ptr2(node_cpu)
    f.cap_m = ptr2(node_mem)
    f.dist = &distance[0, 0, 0]
    f.dist_stride = K * K if distance.shape[0] > 1 else 0
    f.sched = &schedulable[0] if H > 0 else NULL
    f.tot_cap_c = &v_tcc[0] if H > 0 else &dummy
    f.tot_cap_m = &v_tcm[0] if H > 0 else &dummy
    f.tot_free_c = &v_tfc[0] if H > 0 else &dummy
    f.tot_free_m = &v_tfm[0] if H > 0 else &dummy
    f.present = &v_pr[0] if H > 0 else NULL
    f.n_present = &v_np[0] if H > 0 else &dummy
    f.uniform = &v_un[0] if H > 0 else NULL
    f.free_c = &free_cpu[0, 0] if H > 0 else NULL
    f.free_m = &free_mem[0, 0] if H > 0 else NULL
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

        for t in range(N):
            i = order[t]
            c = cpu[i]
            m = mem[i]
            md = mode[i]
            req = required_host[i]
            h0 = req if req >= 0 else 0
            h1 = req + 1 if req >= 0 else H
            best_h = -1
            best_w = 0
            best_s = 0
            for h in range(h0, h1):
                # Cheap host-level rejections first; every mode needs the totals to cover r.
                if not f.sched[h] or f.tot_free_c[h] < c or f.tot_free_m[h] < m:
                    continue
                s = host_score(&f, h, c, m)
                if md == MODE_BEST_EFFORT:
                    # Rank (narrower width, higher score, lower index): only a set narrower than
                    # the incumbent's, or as narrow with a strictly higher score, can win.
                    if best_h < 0:
                        max_w = f.n_present[h]
                    elif s > best_s:
                        max_w = best_w
                    else:
                        max_w = best_w - 1
                    if max_w < 1:
                        continue
                    w = fit_width(&f, h, c, m, md, max_w)
                    if w > 0:
                        best_h = h
                        best_w = w
                        best_s = s
                        if w == 1 and policy == POLICY_FIRST_FIT:
                            break
                else:
                    if best_h >= 0 and s <= best_s:
                        continue
                    w = fit_width(&f, h, c, m, md, MAX_K)
                    if w > 0:
                        best_h = h
                        best_w = w
                        best_s = s
                        if policy == POLICY_FIRST_FIT:
                            break
            if best_h >= 0:
                commit(&f, best_h, c, m, md, best_w, &out_cpu[i, 0], &out_mem[i, 0],
                       &out_nodes[i])
                out_host[i] = <int32_t>best_h
            else:
                out_reason[i] = pending_reason(&f, c, m, md, req)
    return STATUS_OK

