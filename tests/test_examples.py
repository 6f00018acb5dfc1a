"""Hand-computed placements, pinned exactly, on every backend; and the summary metrics."""
from __future__ import annotations

import numpy as np
import pytest

import numasched
from numasched import codes

from conftest import GiB, check_invariants, check_summary

C, M = 32000, 256 * GiB  # one node of the DESIGN's reference host: 32 cores, 256 GiB


def place(cluster, requests, backend, **kw):
    p = numasched.place(cluster, requests, backend=backend, **kw)
    check_invariants(cluster, requests, p)
    check_summary(p)
    return p


def test_wide_vm_under_restricted_splits_equally(backend):
    cluster = numasched.Cluster.uniform(2, 2, C, M)
    requests = numasched.Requests([48000, 48001], [64 * GiB, 64 * GiB + 1])
    p = place(cluster, requests, backend, numa="restricted", order="given")
    # host 0 keeps 8 cores per node after the first VM, so the second goes to host 1
    assert p.host.tolist() == [0, 1]
    assert p.cpu_by_node.tolist() == [[24000, 24000], [24001, 24000]]
    assert p.mem_by_node.tolist() == [[32 * GiB, 32 * GiB], [32 * GiB + 1, 32 * GiB]]
    assert p.nodes.tolist() == [0b11, 0b11]
    assert p.reason.tolist() == [0, 0]
    assert p.free_cpu.tolist() == [[8000, 8000], [C - 24001, C - 24000]]
    assert p.free_mem.tolist() == [[M - 32 * GiB, M - 32 * GiB], [M - 32 * GiB - 1, M - 32 * GiB]]
    # a 16-vCPU VM stays on one node (its home node)
    p = place(cluster, numasched.Requests([16000], [64 * GiB]), backend, numa="restricted")
    assert p.nodes.tolist() == [0b01] and p.cpu_by_node.tolist() == [[16000, 0]]


def test_equal_split_remainder_goes_to_the_lowest_ids_of_the_set(backend):
    # node 0 is full, so the 2-wide set is {1, 2}; 9 = 5 + 4 with the extra unit on node 1
    cluster = numasched.Cluster([[7, 7, 7]], [[5, 5, 5]], free_cpu=[[0, 7, 7]])
    p = place(cluster, numasched.Requests([9], [3]), backend, numa="best-effort")
    assert p.nodes.tolist() == [0b110]
    assert p.cpu_by_node.tolist() == [[0, 5, 4]]
    assert p.mem_by_node.tolist() == [[0, 2, 1]]
    # restricted: ceil(20 / 7) = 3 nodes, 20 = 7 + 7 + 6
    cluster = numasched.Cluster([[7, 7, 7]], [[5, 5, 5]])
    p = place(cluster, numasched.Requests([20], [4]), backend, numa="restricted")
    assert p.cpu_by_node.tolist() == [[7, 7, 6]]
    assert p.mem_by_node.tolist() == [[2, 1, 1]]


@pytest.mark.parametrize("fuller", [0, 1])
def test_best_fit_picks_the_fuller_host_and_worst_fit_the_emptier(backend, fuller):
    free_cpu = [[16000, 16000], [16000, 16000]]
    free_mem = [[64 * GiB] * 2, [64 * GiB] * 2]
    free_cpu[fuller][0] = 8000
    free_mem[fuller][0] = 32 * GiB
    cluster = numasched.Cluster([[16000, 16000]] * 2, [[64 * GiB] * 2] * 2,
                                free_cpu=free_cpu, free_mem=free_mem)
    requests = numasched.Requests([4000], [8 * GiB])
    assert place(cluster, requests, backend, policy="best-fit").host.tolist() == [fuller]
    assert place(cluster, requests, backend, policy="worst-fit").host.tolist() == [1 - fuller]
    assert place(cluster, requests, backend, policy="first-fit").host.tolist() == [0]
    # on the fuller host, pack picks the half-used node
    p = place(cluster, requests, backend, policy="best-fit", node="pack")
    assert p.nodes.tolist() == [0b01]


def test_balanced_and_dot_product(backend):
    # host 1 has half its memory in use; the request is CPU-heavy
    cluster = numasched.Cluster([[10000], [10000]], [[10 * GiB], [10 * GiB]],
                                free_mem=[[10 * GiB], [5 * GiB]])
    requests = numasched.Requests([5000], [GiB])
    # balanced: |0.5 - 0.1| on host 0 against |0.5 - 0.6| on host 1
    assert place(cluster, requests, backend, policy="balanced").host.tolist() == [1]
    # dot-product: 0.5*1 + 0.1*1 on host 0 against 0.5*1 + 0.1*0.5 on host 1
    assert place(cluster, requests, backend, policy="dot-product").host.tolist() == [0]
    assert place(cluster, requests, backend, policy="best-fit").host.tolist() == [1]
    assert place(cluster, requests, backend, policy="worst-fit").host.tolist() == [0]


def test_pack_and_spread_pick_different_nodes_on_a_half_used_host(backend):
    cluster = numasched.Cluster([[16000, 16000]], [[64 * GiB, 64 * GiB]],
                                free_cpu=[[8000, 16000]], free_mem=[[32 * GiB, 64 * GiB]])
    requests = numasched.Requests([2000], [4 * GiB])
    for numa in ("single-numa-node", "restricted", "best-effort"):
        pack = place(cluster, requests, backend, numa=numa, node="pack")
        spread = place(cluster, requests, backend, numa=numa, node="spread")
        assert pack.nodes.tolist() == [0b01] and pack.cpu_by_node.tolist() == [[2000, 0]]
        assert spread.nodes.tolist() == [0b10] and spread.cpu_by_node.tolist() == [[0, 2000]]


def test_distance_comes_before_pack_and_spread(backend):
    node_cpu, node_mem = [[8000] * 4], [[32 * GiB] * 4]
    free_cpu = [[8000, 8000, 6000, 8000]]
    free_mem = [[32 * GiB, 32 * GiB, 16 * GiB, 32 * GiB]]
    pairs = np.full((4, 4), 21)
    np.fill_diagonal(pairs, 10)
    pairs[0, 1] = pairs[1, 0] = pairs[2, 3] = pairs[3, 2] = 12
    requests = numasched.Requests([10000], [8 * GiB])  # two nodes at capacity: 5000 + 5000
    cluster = numasched.Cluster(node_cpu, node_mem, pairs, free_cpu=free_cpu, free_mem=free_mem)
    pack = place(cluster, requests, backend, numa="restricted", node="pack")
    spread = place(cluster, requests, backend, numa="restricted", node="spread")
    assert pack.nodes.tolist() == [0b1100]     # {2, 3}: as near as {0, 1}, and fuller
    assert spread.nodes.tolist() == [0b0011]   # {0, 1}: as near as {2, 3}, and emptier
    assert pack.cpu_by_node.tolist() == [[0, 0, 5000, 5000]]
    # a nearer pair wins whatever the node choice
    pairs[0, 3] = pairs[3, 0] = 11
    cluster = numasched.Cluster(node_cpu, node_mem, pairs, free_cpu=free_cpu, free_mem=free_mem)
    for node in ("pack", "spread"):
        assert place(cluster, requests, backend, numa="restricted",
                     node=node).nodes.tolist() == [0b1001]
    # per-host distances: host 1 has the {0, 3} shortcut, host 0 does not
    per_host = np.stack([np.where(pairs == 11, 21, pairs), pairs])
    cluster = numasched.Cluster(node_cpu * 2, node_mem * 2, per_host,
                                free_cpu=free_cpu * 2, free_mem=free_mem * 2)
    p = place(cluster, numasched.Requests([10000, 10000], [8 * GiB, 8 * GiB]), backend,
              numa="restricted", node="spread", policy="first-fit", order="given")
    assert p.host.tolist() == [0, 0]
    assert p.nodes.tolist() == [0b0011, 0b1100]
    p = place(cluster, numasched.Requests([10000], [8 * GiB], required_host=[1]), backend,
              numa="restricted", node="spread")
    assert p.nodes.tolist() == [0b1001]


def test_best_effort_prefers_a_narrower_set_on_a_later_host(backend):
    # host 0: two empty 16-core nodes; host 1: two 32-core nodes, node 0 partly used
    cluster = numasched.Cluster([[16000, 16000], [32000, 32000]],
                                [[64 * GiB] * 2, [128 * GiB] * 2],
                                free_cpu=[[16000, 16000], [24000, 32000]])
    requests = numasched.Requests([24000], [8 * GiB])
    for policy in ("first-fit", "worst-fit"):
        p = place(cluster, requests, backend, numa="best-effort", policy=policy)
        assert p.host.tolist() == [1], policy
        assert p.nodes.tolist() == [0b01]          # pack: the fuller node of host 1
        assert p.cpu_by_node.tolist() == [[24000, 0]]
    # restricted on host 0 needs exactly 2 nodes (its preferred width), which fit: first-fit
    # takes host 0
    p = place(cluster, requests, backend, numa="restricted", policy="first-fit")
    assert p.host.tolist() == [0] and p.nodes.tolist() == [0b11]
    assert p.cpu_by_node.tolist() == [[12000, 12000]]


def test_numa_none_spreads_in_proportion_to_free(backend):
    cluster = numasched.Cluster([[16000, 16000]], [[32 * GiB, 32 * GiB]],
                                free_cpu=[[12000, 4000]], free_mem=[[30 * GiB, 10 * GiB]])
    p = place(cluster, numasched.Requests([8000], [8 * GiB]), backend, numa="none")
    assert p.cpu_by_node.tolist() == [[6000, 2000]]
    assert p.mem_by_node.tolist() == [[6 * GiB, 2 * GiB]]
    assert p.nodes.tolist() == [0b11]
    # largest remainder, ties to the lowest node id: 7 over three equal nodes is 3 + 2 + 2
    cluster = numasched.Cluster([[5, 5, 5]], [[5, 5, 5]])
    p = place(cluster, numasched.Requests([7], [1]), backend, numa="none")
    assert p.cpu_by_node.tolist() == [[3, 2, 2]]
    assert p.mem_by_node.tolist() == [[1, 0, 0]]
    assert p.nodes.tolist() == [0b111]  # CPU on every node, memory on node 0 only
    # never more than a node has: 10 over free (9, 1, 0) with a full node 2
    cluster = numasched.Cluster([[9, 9, 9]], [[4, 4, 4]], free_cpu=[[9, 1, 0]],
                                free_mem=[[0, 4, 0]])
    p = place(cluster, numasched.Requests([10], [4]), backend, numa="none")
    assert p.cpu_by_node.tolist() == [[9, 1, 0]]
    assert p.mem_by_node.tolist() == [[0, 4, 0]]
    assert p.nodes.tolist() == [0b011]
    assert not p.free_cpu.any() and not p.free_mem.any()


def test_pending_reasons_in_design_order(backend):
    # host 0: 12 cores / 44 GiB free, scattered over two nodes; host 1: unschedulable, empty
    cluster = numasched.Cluster(
        [[16000, 16000], [16000, 16000]], [[64 * GiB] * 2] * 2,
        schedulable=[True, False],
        free_cpu=[[6000, 6000], [16000, 16000]], free_mem=[[40 * GiB, 4 * GiB], [64 * GiB] * 2])
    R = codes
    rows = [
        # cpu,  mem,     numa,               pin, expected reason
        (40000, GiB, "restricted", -1, R.REASON_TOO_LARGE),        # wider than any host
        (20000, GiB, "single-numa-node", -1, R.REASON_TOO_LARGE),  # wider than any node
        (40000, GiB, None, 1, R.REASON_TOO_LARGE),                 # too large wins over the pin
        (1000, GiB, None, 1, R.REASON_CONSTRAINT),                 # pinned to unschedulable
        (14000, GiB, None, 1, R.REASON_CONSTRAINT),                # the pin wins over no-cpu
        (14000, GiB, None, -1, R.REASON_NO_CPU),                   # host 0 has 12 cores free
        (14000, 50 * GiB, "none", -1, R.REASON_NO_CPU),            # no-cpu wins over no-memory
        (2000, 50 * GiB, None, -1, R.REASON_NO_MEMORY),            # host 0 has 44 GiB free
        (8000, GiB, "single-numa-node", -1, R.REASON_NO_NUMA_FIT), # 12 cores, 6 per node
        (7000, 2 * GiB, "restricted", 0, R.REASON_NO_NUMA_FIT),    # 1 node wide; 6 cores each
        (12000, 44 * GiB, "none", -1, R.PLACED),                   # the host-level fit
    ]
    cpu, mem, numa, pin, expected = map(list, zip(*rows))
    requests = numasched.Requests(cpu, mem, numa=numa, required_host=pin)
    p = place(cluster, requests, backend, numa="restricted", order="given")
    assert p.reason.tolist() == expected
    assert p.host.tolist() == [-1] * (len(rows) - 1) + [0]
    assert p.pending_reasons() == {"too-large": 3, "host-constraint": 2, "insufficient-cpu": 2,
                                   "insufficient-memory": 1, "no-numa-fit": 2}
    assert p.summary()["pending_by_reason"] == p.pending_reasons()


def test_constraint_when_the_pinned_host_could_never_hold_it(backend):
    cluster = numasched.Cluster([[8000], [32000]], [[8 * GiB], [32 * GiB]])
    requests = numasched.Requests([16000, 16000], [GiB, GiB], required_host=[0, 1])
    p = place(cluster, requests, backend)
    assert p.reason.tolist() == [codes.REASON_CONSTRAINT, codes.PLACED]
    assert p.host.tolist() == [-1, 1]


def test_a_request_larger_than_every_host_is_pending_not_an_error(backend):
    cluster = numasched.Cluster.uniform(3, 2, C, M)
    for numa in codes.NUMA_MODES:
        p = place(cluster, numasched.Requests([2 * C + 1, 1000], [GiB, GiB]), backend, numa=numa)
        assert p.host[0] == -1 and p.reason[0] == codes.REASON_TOO_LARGE
        assert p.host[1] == 0


def test_unschedulable_hosts_keep_their_work_and_take_nothing(backend):
    cluster = numasched.Cluster([[8000, 8000]] * 3, [[8 * GiB] * 2] * 3,
                                schedulable=[False, True, False],
                                free_cpu=[[0, 8000], [8000, 8000], [8000, 8000]])
    requests = numasched.Requests([4000] * 5, [GiB] * 5)
    p = place(cluster, requests, backend, numa="single-numa-node", policy="first-fit")
    assert p.host.tolist() == [1, 1, 1, 1, -1]
    assert p.reason[4] == codes.REASON_NO_CPU
    assert p.free_cpu[0].tolist() == [0, 8000] and p.free_cpu[2].tolist() == [8000, 8000]


def test_order_decreasing_and_given(backend):
    cluster = numasched.Cluster([[8000]], [[8 * GiB]])
    # priority first under decreasing; ignored under given
    prio = numasched.Requests([8000, 6000], [GiB, GiB], priority=[0, 1])
    assert place(cluster, prio, backend, order="decreasing").host.tolist() == [-1, 0]
    assert place(cluster, prio, backend, order="given").host.tolist() == [0, -1]
    # then the dominant share: 2000m/7GiB (7/8 of memory) before 6500m/1GiB (13/16 of CPU)
    dom = numasched.Requests([6500, 2000], [GiB, 7 * GiB])
    assert place(cluster, dom, backend, order="decreasing").host.tolist() == [-1, 0]
    assert place(cluster, dom, backend, order="given").host.tolist() == [0, -1]
    # then the index: identical requests go in submission order
    same = numasched.Requests([8000, 8000], [GiB, GiB])
    assert place(cluster, same, backend, order="decreasing").host.tolist() == [0, -1]


def test_first_fit_fills_identical_hosts_in_index_order(backend):
    cluster = numasched.Cluster.uniform(3, 2, 8000, 16 * GiB)
    requests = numasched.Requests([8000] * 7, [GiB] * 7)
    p = place(cluster, requests, backend, policy="first-fit", numa="single-numa-node")
    assert p.host.tolist() == [0, 0, 1, 1, 2, 2, -1]
    assert p.nodes.tolist() == [1, 2, 1, 2, 1, 2, 0]
    w = place(cluster, requests, backend, policy="worst-fit", numa="single-numa-node")
    assert w.host.tolist() == [0, 1, 2, 0, 1, 2, -1]


def test_k64_uses_the_top_bit(backend):
    node_cpu = np.full((1, 64), 1000, dtype=np.int64)
    free_cpu = np.zeros((1, 64), dtype=np.int64)
    free_cpu[0, 63] = 1000
    free_cpu[0, 62] = 1000
    cluster = numasched.Cluster(node_cpu, node_cpu * GiB, free_cpu=free_cpu)
    p = place(cluster, numasched.Requests([1000, 1000], [GiB, GiB]), backend,
              numa="single-numa-node", order="given")
    assert p.nodes.tolist() == [1 << 62, 1 << 63]
    assert p.nodes.dtype == np.uint64
    assert p.cpu_by_node[1, 63] == 1000
    q = place(cluster, numasched.Requests([1200], [GiB]), backend, numa="restricted")
    assert q.nodes.tolist() == [(1 << 62) | (1 << 63)]
    assert q.cpu_by_node[0, 62:].tolist() == [600, 600]


# --------------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------------
def test_summary_locality_none_versus_single(backend):
    cluster = numasched.Cluster.uniform(4, 2, C, M)
    requests = numasched.Requests([4000, 8000, 2000, 16000, 6000, 1000] * 3,
                                  [16 * GiB, 32 * GiB, 4 * GiB, 64 * GiB, 8 * GiB, 2 * GiB] * 3)
    none = place(cluster, requests, backend, numa="none").summary()
    single = place(cluster, requests, backend, numa="single-numa-node").summary()
    assert none["placed"] == single["placed"] == len(requests)
    assert none["pending"] == single["pending"] == 0
    assert abs(none["locality"] - 0.5) < 0.01   # Linux-like: half the accesses are remote
    assert single["locality"] == 1.0
    assert single["single_node_fraction"] == 1.0
    assert none["single_node_fraction"] == 0.0


def test_summary_vnuma_counts_a_split_vm_as_local(backend):
    cluster = numasched.Cluster.uniform(1, 2, C, M)
    wide = numasched.Requests([48000], [64 * GiB], vnuma=[False])
    wide_vnuma = numasched.Requests([48000], [64 * GiB], vnuma=[True])
    assert place(cluster, wide, backend).summary()["locality"] == pytest.approx(0.5)
    assert place(cluster, wide_vnuma, backend).summary()["locality"] == 1.0
    # under numa='none' the split is not into equal clients: vnuma does not help
    s = place(cluster, wide_vnuma, backend, numa="none").summary()
    assert s["locality"] == pytest.approx(0.5)


def test_summary_counts_and_bounds(backend):
    cluster = numasched.Cluster.uniform(4, 2, 16000, 64 * GiB)
    requests = numasched.Requests([10000] * 4 + [100000], [8 * GiB] * 4 + [GiB])
    p = place(cluster, requests, backend, policy="worst-fit", numa="restricted")
    s = p.summary()
    assert (s["requests"], s["placed"], s["pending"]) == (5, 4, 1)
    assert s["pending_by_reason"] == {"too-large": 1}
    assert s["hosts"] == 4
    assert s["hosts_used"] == 4                 # worst-fit spreads one per host
    assert s["hosts_lower_bound"] == 2          # ceil(40000 / 32000)
    assert s["hosts_over_bound"] == 2.0
    assert s["cpu_utilisation"] == pytest.approx(40000 / 128000)
    assert s["mem_utilisation"] == pytest.approx(32 / 512)
    b = place(cluster, requests, backend, policy="best-fit", numa="restricted").summary()
    assert b["hosts_used"] == 2 == b["hosts_lower_bound"]
    assert b["hosts_over_bound"] == 1.0


def test_summary_of_an_empty_placement(backend):
    cluster = numasched.Cluster.uniform(2, 2, C, M)
    s = place(cluster, numasched.Requests([], []), backend).summary()
    assert (s["requests"], s["placed"], s["pending"], s["hosts_used"]) == (0, 0, 0, 0)
    assert s["hosts_lower_bound"] == 0
    assert s["pending_by_reason"] == {}
