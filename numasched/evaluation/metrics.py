"""Placement metrics (``Placement.summary()``), vectorised over requests and hosts.

Definitions (DESIGN.md, "Metrics"):

- ``hosts_used``: hosts with any capacity in use after the placement (work placed earlier counts).
- ``hosts_lower_bound``: for each resource, the fewest hosts whose capacities (largest first) add
  up to the capacity in use, the larger over CPU and memory. On identical hosts this is
  ceil(demand / host capacity); on mixed hosts it is the fractional bound (work may be split).
  On identical hosts that started empty it is raised to Martello and Toth's L2 bound of each
  resource taken alone (requests cannot be split across hosts); ``hosts_lower_bound_l2`` is that
  bound alone (None where it does not apply).
- ``locality``: the memory-weighted mean over placed requests of the share of local accesses
  under the uniform-access model: with CPU shares c_i and memory shares m_i over nodes, a thread
  on node i touches memory on node i with probability m_i, so the local fraction is sum_i c_i*m_i.
  A ``vnuma`` request split into equal NUMA clients counts 1.0 (its guest keeps accesses local).
- ``single_node_fraction``: placed requests that sit on one NUMA node.
- ``cpu_utilisation`` / ``mem_utilisation``: in use over capacity, on used hosts.
- ``stranded_cpu`` / ``stranded_mem``: free capacity on used hosts that the other resource's free
  capacity could not accompany at the host's own CPU:memory ratio, over used hosts' capacity.
"""
from __future__ import annotations

import numpy as np

from ..codes import MODE_NONE
from ..kernels.metrics import fractional_host_bound, martello_toth_l2, request_stats


def started_empty(cluster) -> bool:
    return (np.array_equal(cluster.free_cpu, cluster.node_cpu)
            and np.array_equal(cluster.free_mem, cluster.node_mem))


def host_lower_bounds(cluster, requests, placed, used_cpu: int, used_mem: int):
    """(bound, l2): the fractional bound on hosts for ``used_cpu``/``used_mem`` in use, raised
    to the L2 bound of the ``placed`` requests on identical hosts that started empty; l2 is
    None where it does not apply."""
    cap_c = cluster.node_cpu.sum(axis=1)
    cap_m = cluster.node_mem.sum(axis=1)
    bound = max(fractional_host_bound(used_cpu, cap_c), fractional_host_bound(used_mem, cap_m))
    l2 = None
    if (cluster.hosts and started_empty(cluster) and np.all(cap_c == cap_c[0])
            and np.all(cap_m == cap_m[0])):
        l2 = max(martello_toth_l2(np.sort(requests.cpu[placed]), int(cap_c[0])),
                 martello_toth_l2(np.sort(requests.mem[placed]), int(cap_m[0])))
        bound = max(bound, l2)
    return int(bound), None if l2 is None else int(l2)


def locality(placement, subset=slice(None)) -> tuple[int, int, float | None]:
    """(placed, placed on one node, memory-weighted local fraction or None) of the requests in
    ``subset`` (a slice), by the kernel ``request_stats``."""
    requests = placement.requests
    equal_clients = ((requests.vnuma[subset] == 1)
                     & (placement.modes[subset] != MODE_NONE)).astype(np.uint8)
    placed, single, weighted, placed_mem = request_stats(
        *(np.ascontiguousarray(a[subset]) for a in (
            placement.host, placement.cpu_by_node, placement.mem_by_node, placement.nodes,
            requests.mem)), equal_clients)
    return int(placed), int(single), (float(weighted / placed_mem) if placed_mem > 0 else None)


def summarize(placement) -> dict:
    cluster = placement.cluster
    placed = placement.host >= 0
    n_placed, n_single, local = locality(placement)

    cap_c = cluster.node_cpu.sum(axis=1)
    cap_m = cluster.node_mem.sum(axis=1)
    free_c = placement.free_cpu.sum(axis=1)
    free_m = placement.free_mem.sum(axis=1)
    used_c, used_m = cap_c - free_c, cap_m - free_m
    used_hosts = (used_c > 0) | (used_m > 0)
    n_used = int(used_hosts.sum())
    bound, bound_l2 = host_lower_bounds(cluster, placement.requests, placed, int(used_c.sum()),
                                        int(used_m.sum()))

    cu = cap_c[used_hosts].astype(np.float64)
    mu = cap_m[used_hosts].astype(np.float64)
    fcu = free_c[used_hosts].astype(np.float64)
    fmu = free_m[used_hosts].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        stranded_c = np.maximum(0.0, fcu - np.where(mu > 0, fmu * cu / mu, 0.0))
        stranded_m = np.maximum(0.0, fmu - np.where(cu > 0, fcu * mu / cu, 0.0))

    def ratio(a: float, b: float) -> float:
        return float(a / b) if b > 0 else 0.0

    return {
        "requests": int(placed.size),
        "placed": n_placed,
        "pending": int(placed.size) - n_placed,
        "pending_by_reason": placement.pending_reasons(),
        "hosts": int(cluster.hosts),
        "hosts_used": n_used,
        "hosts_lower_bound": bound,
        "hosts_lower_bound_l2": bound_l2,
        "hosts_over_bound": ratio(n_used, bound) if bound else (1.0 if n_used == 0 else float("inf")),
        "single_node_fraction": ratio(float(n_single), float(n_placed)),
        "locality": 0.0 if local is None else local,
        "cpu_utilisation": ratio(float(used_c[used_hosts].sum()), float(cu.sum())),
        "mem_utilisation": ratio(float(used_m[used_hosts].sum()), float(mu.sum())),
        "stranded_cpu": ratio(float(stranded_c.sum()), float(cu.sum())),
        "stranded_mem": ratio(float(stranded_m.sum()), float(mu.sum())),
    }
