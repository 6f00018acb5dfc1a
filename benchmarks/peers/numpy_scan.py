"""A NumPy full scan: every host scored for every request, vectorised over hosts.

The baseline that ``numasched``'s kernel is compared with "like with like": it computes the same
placement as ``place(...)`` (same hosts, same node shares, same free state after) for the cases it
supports, and it does the obvious amount of work, O(hosts) NumPy operations per request. Its
exactness is tested in ``tests/test_numpy_scan.py`` against ``place(..., backend="cython")``.

Supported (anything else raises ``ValueError``):

- hosts of exactly 2 NUMA nodes, every node with CPU > 0 and memory > 0 (capacities may differ
  between hosts and between the two nodes of a host); any free state; any ``schedulable``;
- NUMA mode ``single-numa-node`` or ``restricted``, for the call or per request;
- every host score (first-fit, best-fit, worst-fit, balanced, dot-product) with the registered
  score policy's weights; node choice ``pack`` or ``spread``; every order (``decreasing``,
  ``given``, ``fill``: the permutation comes from numasched's own ``api.request_order``);
- no ``required_host``. Pending requests get host -1 (no reason code is computed).

The semantics are those of ``numasched.kernels.reference`` restricted to two present nodes, where
they become short: the distance never decides (one set of width 2; width-1 sets have no distance),
``restricted`` means width ``min_nodes`` = 1 if either node could hold the request at capacity,
else 2 if the equal split fits both nodes at capacity, else the host can never hold it; the width-2
split gives the odd unit to node 0. Host scores use host totals in the fixed point of
``numasched.policies`` (``(x << 16) // cap``), ties to the lowest host index (``np.argmax`` returns
the first maximum). The request order is numasched's own ``api.request_order`` (for decreasing, a
vectorised sort), computed inside the timed call as the kernels' wrapper does.
"""
from __future__ import annotations

import numpy as np

from numasched import Cluster, Requests, codes, policies
from numasched.api import request_order
from numasched.codes import (
    FIXED_ONE,
    FIXED_SHIFT,
    MODE_DEFAULT,
    MODE_RESTRICTED,
    MODE_SINGLE,
    NODE_PACK,
    POLICY_BALANCED,
    POLICY_BEST_FIT,
    POLICY_DOT_PRODUCT,
    POLICY_FIRST_FIT,
    POLICY_WORST_FIT,
)

#: A score no feasible host can have (every score of numasched.policies is >= 0).
INFEASIBLE = -1


def _fx(x: int, cap: int) -> int:
    return (x << FIXED_SHIFT) // cap


def _check(cluster: Cluster, requests: Requests, default_mode: int) -> np.ndarray:
    """The resolved mode of every request, after refusing what this scan does not support."""
    if cluster.nodes != 2:
        raise ValueError(f"the NumPy scan supports hosts of exactly 2 NUMA nodes, got K = {cluster.nodes}")
    if (cluster.node_cpu <= 0).any() or (cluster.node_mem <= 0).any():
        raise ValueError("the NumPy scan needs CPU > 0 and memory > 0 on every node of every host")
    if (requests.required_host >= 0).any():
        raise ValueError("the NumPy scan does not support required_host")
    modes = np.where(requests.numa == MODE_DEFAULT, default_mode, requests.numa)
    if not np.isin(modes, (MODE_SINGLE, MODE_RESTRICTED)).all():
        raise ValueError("the NumPy scan supports the NUMA modes single-numa-node and restricted only")
    return modes


def place_scan(cluster: Cluster, requests: Requests, *, policy: str = "best-fit",
               numa: str = "restricted", order: str = "decreasing", node: str = "pack") -> dict:
    """Place ``requests`` on ``cluster`` with a full scan; same arguments as ``numasched.place``
    (``policy`` must be one of the host-score policies). Returns ``host`` (int32 ``[N]``, -1 =
    pending), ``cpu_by_node`` / ``mem_by_node`` (int64 ``[N, 2]``) and ``free_cpu`` / ``free_mem``
    (int64 ``[H, 2]``, after placing)."""
    if policy not in codes.HOST_POLICIES:
        raise ValueError(f"the NumPy scan takes a host-score policy, one of "
                         f"{', '.join(map(repr, codes.HOST_POLICIES))}; got {policy!r}")
    compiled = policies.get(policy).compile(numa=numa, node=node, order=order)
    modes = _check(cluster, requests, compiled.numa)
    score_code, wc, wm = compiled.score, compiled.cpu_weight, compiled.mem_weight
    pack = compiled.node == NODE_PACK

    n, n_hosts = len(requests), cluster.hosts
    # One contiguous vector per node and resource: column slices of [H, 2] would be strided.
    cap_c0, cap_c1 = (np.ascontiguousarray(cluster.node_cpu[:, k]) for k in (0, 1))
    cap_m0, cap_m1 = (np.ascontiguousarray(cluster.node_mem[:, k]) for k in (0, 1))
    free_c0, free_c1 = (cluster.free_cpu[:, k].copy() for k in (0, 1))
    free_m0, free_m1 = (cluster.free_mem[:, k].copy() for k in (0, 1))
    total_c, total_m = free_c0 + free_c1, free_m0 + free_m1      # free per host, kept in step
    cap_c, cap_m = cap_c0 + cap_c1, cap_m0 + cap_m1              # host capacities
    schedulable = cluster.schedulable.astype(bool)
    all_schedulable = bool(schedulable.all())
    # With identical hosts, min_nodes is one number per request instead of one per host.
    uniform = all(bool((a == a[0]).all()) for a in (cap_c0, cap_c1, cap_m0, cap_m1)) if n_hosts else True

    host = np.full(n, -1, dtype=np.int32)
    cpu_by = np.zeros((n, 2), dtype=np.int64)
    mem_by = np.zeros((n, 2), dtype=np.int64)
    cpu_list, mem_list, mode_list = requests.cpu.tolist(), requests.mem.tolist(), modes.tolist()

    for i in request_order(cluster, requests, compiled.order).tolist():
        c, m = cpu_list[i], mem_list[i]
        hi_c, lo_c, hi_m, lo_m = c - c // 2, c // 2, m - m // 2, m // 2   # the width-2 split
        one = ((free_c0 >= c) & (free_m0 >= m)) | ((free_c1 >= c) & (free_m1 >= m))
        # narrow: the request takes one node (True / False for every host, or per host).
        if mode_list[i] == MODE_SINGLE:
            feasible, narrow = one, True
        elif uniform:
            if n_hosts == 0:
                continue
            if (cap_c0[0] >= c and cap_m0[0] >= m) or (cap_c1[0] >= c and cap_m1[0] >= m):
                feasible, narrow = one, True
            elif cap_c0[0] >= hi_c and cap_c1[0] >= lo_c and cap_m0[0] >= hi_m and cap_m1[0] >= lo_m:
                feasible, narrow = ((free_c0 >= hi_c) & (free_c1 >= lo_c)
                                    & (free_m0 >= hi_m) & (free_m1 >= lo_m)), False
            else:
                continue  # too large for every host under restricted
        else:
            narrow = ((cap_c0 >= c) & (cap_m0 >= m)) | ((cap_c1 >= c) & (cap_m1 >= m))
            width_two = (~narrow & (cap_c0 >= hi_c) & (cap_c1 >= lo_c)
                         & (cap_m0 >= hi_m) & (cap_m1 >= lo_m))
            feasible = narrow & one
            if width_two.any():
                feasible |= (width_two & (free_c0 >= hi_c) & (free_c1 >= lo_c)
                             & (free_m0 >= hi_m) & (free_m1 >= lo_m))
        if not all_schedulable:
            feasible &= schedulable

        if score_code == POLICY_FIRST_FIT:
            h = int(np.argmax(feasible)) if n_hosts else 0
            if not n_hosts or not feasible[h]:
                continue
        else:
            if score_code == POLICY_BEST_FIT:
                score = ((wc + wm) * FIXED_ONE - wc * (((total_c - c) << FIXED_SHIFT) // cap_c)
                         - wm * (((total_m - m) << FIXED_SHIFT) // cap_m))
            elif score_code == POLICY_WORST_FIT:
                score = (wc * (((total_c - c) << FIXED_SHIFT) // cap_c)
                         + wm * (((total_m - m) << FIXED_SHIFT) // cap_m))
            elif score_code == POLICY_BALANCED:
                used_c = ((cap_c - total_c + c) << FIXED_SHIFT) // cap_c
                used_m = ((cap_m - total_m + m) << FIXED_SHIFT) // cap_m
                score = FIXED_ONE - np.abs(used_c - used_m)
            elif score_code == POLICY_DOT_PRODUCT:
                score = (wc * ((c << FIXED_SHIFT) // cap_c) * ((total_c << FIXED_SHIFT) // cap_c)
                         + wm * ((m << FIXED_SHIFT) // cap_m) * ((total_m << FIXED_SHIFT) // cap_m))
            else:  # pragma: no cover - codes.HOST_POLICIES has exactly the five above
                raise ValueError(f"unknown score code {score_code}")
            score = np.where(feasible, score, INFEASIBLE)
            h = int(np.argmax(score)) if n_hosts else 0
            if not n_hosts or score[h] == INFEASIBLE:
                continue

        # Node choice on the chosen host, in Python integers.
        f_c0, f_c1, f_m0, f_m1 = int(free_c0[h]), int(free_c1[h]), int(free_m0[h]), int(free_m1[h])
        if narrow if isinstance(narrow, bool) else narrow[h]:
            fits0 = f_c0 >= c and f_m0 >= m
            fits1 = f_c1 >= c and f_m1 >= m
            k = 0 if fits0 else 1
            if fits0 and fits1:
                util0 = (_fx(int(cap_c0[h]) - f_c0 + c, int(cap_c0[h]))
                         + _fx(int(cap_m0[h]) - f_m0 + m, int(cap_m0[h])))
                util1 = (_fx(int(cap_c1[h]) - f_c1 + c, int(cap_c1[h]))
                         + _fx(int(cap_m1[h]) - f_m1 + m, int(cap_m1[h])))
                k = 1 if (util1 > util0 if pack else util1 < util0) else 0
            if k == 0:
                free_c0[h], free_m0[h] = f_c0 - c, f_m0 - m
            else:
                free_c1[h], free_m1[h] = f_c1 - c, f_m1 - m
            cpu_by[i, k], mem_by[i, k] = c, m
        else:
            free_c0[h], free_c1[h] = f_c0 - hi_c, f_c1 - lo_c
            free_m0[h], free_m1[h] = f_m0 - hi_m, f_m1 - lo_m
            cpu_by[i] = (hi_c, lo_c)
            mem_by[i] = (hi_m, lo_m)
        total_c[h] -= c
        total_m[h] -= m
        host[i] = h

    return {"host": host, "cpu_by_node": cpu_by, "mem_by_node": mem_by,
            "free_cpu": np.stack([free_c0, free_c1], axis=1),
            "free_mem": np.stack([free_m0, free_m1], axis=1)}
