"""Numba kernels behind ``Placement.summary()`` and the packing lower bounds.

One pass over the requests, no Python loop, so summarising a million requests costs less than
placing them. Every helper a cached kernel calls lives in this file (Numba's cache keys on it).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .config import NUMBA_JIT_KWARGS


@njit(**NUMBA_JIT_KWARGS)
def request_stats(host, cpu_by_node, mem_by_node, nodes, mem, equal_clients):
    """Return (placed, on one node, sum of mem * local fraction, sum of mem) over placed requests.

    The local fraction of a request is sum_k c_k * m_k with c, m its CPU and memory shares per
    node (uniform-access model); 1.0 where ``equal_clients`` (a vNUMA guest split into equal
    NUMA clients keeps its accesses local).
    """
    n, n_nodes = cpu_by_node.shape
    placed = 0
    single = 0
    weighted = 0.0
    total_mem = 0.0
    for i in range(n):
        if host[i] < 0:
            continue
        placed += 1
        x = nodes[i]
        if x != 0 and (x & (x - np.uint64(1))) == 0:
            single += 1
        if equal_clients[i]:
            local = 1.0
        else:
            cpu_total = 0.0
            mem_total = 0.0
            cross = 0.0
            for k in range(n_nodes):
                c = float(cpu_by_node[i, k])
                m = float(mem_by_node[i, k])
                cpu_total += c
                mem_total += m
                cross += c * m
            local = cross / (cpu_total * mem_total)
        weighted += float(mem[i]) * local
        total_mem += float(mem[i])
    return placed, single, weighted, total_mem


@njit(**NUMBA_JIT_KWARGS)
def martello_toth_l2(sizes, capacity):
    """Martello and Toth's L2 lower bound on bins of ``capacity`` for one-dimensional items.

    ``sizes`` must be sorted ascending, each in (0, capacity]. For every alpha in
    {0} U {sizes <= capacity / 2}: J1 = items > C - alpha, J2 = C/2 < items <= C - alpha,
    J3 = alpha <= items <= C/2, and
        L(alpha) = |J1| + |J2| + max(0, ceil((sum J3 - (|J2| C - sum J2)) / C));
    L2 is the largest L(alpha). Prefix sums and binary search make it O(n log n).
    """
    n = sizes.shape[0]
    if n == 0:
        return 0
    prefix = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        prefix[i + 1] = prefix[i] + sizes[i]
    half = capacity // 2
    big = np.searchsorted(sizes, half, side="right")  # first index with 2 * size > capacity
    best = 0
    j = -1
    while True:
        alpha = 0 if j < 0 else sizes[j]
        if j >= 0 and 2 * alpha > capacity:
            break
        above = np.searchsorted(sizes, capacity - alpha, side="right")
        n1 = n - above
        n2 = above - big if above > big else 0
        s2 = prefix[above] - prefix[big] if above > big else 0
        lo3 = np.searchsorted(sizes, alpha, side="left")
        s3 = prefix[big] - prefix[lo3] if big > lo3 else 0
        excess = s3 - (n2 * capacity - s2)
        extra = (excess + capacity - 1) // capacity if excess > 0 else 0
        value = n1 + n2 + extra
        if value > best:
            best = value
        # Next distinct alpha.
        j += 1
        while j < n and j > 0 and sizes[j] == sizes[j - 1]:
            j += 1
        if j >= n:
            break
    return best


def fractional_host_bound(demand: int, capacities: np.ndarray) -> int:
    """Fewest hosts whose capacities, largest first, cover ``demand`` (work may be split)."""
    if demand <= 0:
        return 0
    cumulative = np.cumsum(np.sort(np.asarray(capacities, dtype=np.int64))[::-1])
    if cumulative.size == 0 or cumulative[-1] < demand:
        return int(cumulative.size) + 1
    return int(np.searchsorted(cumulative, demand) + 1)
