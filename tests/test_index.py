"""The host index (a segment tree over hosts in the Cython and Numba kernels) chooses exactly the
host the reference's full scan chooses, on the cases where a bound or an equivalence class could
go wrong: every host identical, every request identical, one huge request among small ones, hosts
filled exactly to zero, absent nodes, unschedulable hosts, per-host capacities and distances,
and trees deeper than the hypothesis instances of test_parity reach."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numasched
from conftest import (
    GiB,
    MODES,
    OTHER_BACKENDS,
    POLICIES,
    assert_same_placement,
    check_invariants,
    examples,
    place_settings,
    random_instance,
)

pytestmark = pytest.mark.skipif(not OTHER_BACKENDS, reason="no compiled backend")


def parity(cluster, requests, **kw):
    expected = numasched.place(cluster, requests, backend="reference", **kw)
    for backend in OTHER_BACKENDS:
        got = numasched.place(cluster, requests, backend=backend, **kw)
        assert_same_placement(got, expected, context=f"{backend} vs reference, {kw}: ")
    check_invariants(cluster, requests, expected)
    return expected


@st.composite
def identical_hosts(draw):
    """Up to 40 hosts of one shape (some nodes possibly absent), optionally partly used."""
    hosts = draw(st.integers(1, 40))
    nodes = draw(st.integers(1, 4))
    cpu = draw(st.lists(st.sampled_from([0, 4000, 8000]), min_size=nodes, max_size=nodes))
    mem = [0 if c == 0 else draw(st.sampled_from([4, 8])) * GiB for c in cpu]
    if not any(cpu):
        cpu[0], mem[0] = 4000, 8 * GiB
    cluster = numasched.Cluster(np.tile(cpu, (hosts, 1)), np.tile(mem, (hosts, 1)))
    if draw(st.booleans()):  # the same partial use on a run of hosts: classes of equal free state
        used = draw(st.integers(0, hosts))
        free_c = cluster.free_cpu.copy()
        free_m = cluster.free_mem.copy()
        free_c[:used] //= 2
        free_m[:used] //= 2
        cluster = cluster.with_free(free_c, free_m)
    return cluster


@settings(max_examples=examples(60), deadline=None)
@given(cluster=identical_hosts(), n=st.integers(1, 60), cpu=st.sampled_from([500, 1000, 3000, 4000, 7000]),
       mem_gib=st.sampled_from([1, 2, 4, 7]), kw=place_settings)
def test_identical_hosts_identical_requests(cluster, n, cpu, mem_gib, kw):
    """Every host identical and every request identical: ties everywhere, lowest index wins."""
    parity(cluster, numasched.Requests([cpu] * n, [mem_gib * GiB] * n), **kw)


@settings(max_examples=examples(40), deadline=None)
@given(cluster=identical_hosts(), n=st.integers(1, 40), seed=st.integers(0, 2**16), kw=place_settings)
def test_one_huge_request_among_small_ones(cluster, n, seed, kw):
    rng = np.random.default_rng(seed)
    cpu = rng.choice([100, 250, 500], size=n)
    mem = rng.choice([64, 128, 256], size=n) * 2**20
    big = int(rng.integers(0, n))
    cpu[big] = int(cluster.node_cpu.sum(axis=1).max())  # a whole host, or more than one node
    mem[big] = int(cluster.node_mem.sum(axis=1).max())
    parity(cluster, numasched.Requests(cpu, mem), **kw)


@settings(max_examples=examples(60), deadline=None)
@given(cluster=identical_hosts(), n=st.integers(1, 60), seed=st.integers(0, 2**16), kw=place_settings)
def test_classes_under_pinned_requests(cluster, n, seed, kw):
    """Requests pinned to any member of a class of identical hosts, the head or a later one,
    among free requests: hosts leave and rejoin classes out of index order, classes empty and
    are made again (their table slots freed and reused), and the search still sees only heads."""
    rng = np.random.default_rng(seed)
    cpu = rng.choice([500, 1000], size=n)
    mem = rng.choice([1, 2], size=n) * GiB
    pinned = np.where(rng.random(n) < 0.5, rng.integers(0, len(cluster.node_cpu), size=n), -1)
    parity(cluster, numasched.Requests(cpu, mem, required_host=pinned), **kw)


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("numa", MODES)
def test_a_lower_host_joining_a_class_becomes_its_head(policy, numa):
    """Pins make hosts 7, 5 and 2 equal in that order (each joins the class of the ones before
    it, below their index), then free requests of the same size must find host 2 first."""
    cluster = numasched.Cluster(np.full((10, 2), 8000), np.full((10, 2), 8 * GiB))
    pinned = [7, 5, 2, -1, -1, -1, -1]
    requests = numasched.Requests([1000] * 7, [GiB] * 7, required_host=pinned)
    parity(cluster, requests, policy=policy, numa=numa)


def test_pending_reasons_read_exact_maxima_under_balanced():
    """Under balanced the index's leaves are slots of the balance value: a host that takes a
    request and stays in its slot lowers the slot's largest free totals, which the pending
    reason reads at the root (every CPU is taken: no CPU, not no NUMA fit)."""
    cluster = numasched.Cluster([[1], [1], [1], [6], [1]], [[1], [1], [1], [6], [1]],
                                schedulable=[True, True, False, True, False])
    requests = numasched.Requests([1] * 9, [1] * 8 + [2])
    placement = parity(cluster, requests, policy="balanced", numa="none", order="given")
    assert placement.reason[-1] == numasched.codes.REASON_NO_CPU


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("numa", MODES)
def test_hosts_fill_exactly_to_zero(policy, numa):
    """Requests that fill hosts exactly: free reaches 0 on every node, and the rest is pending."""
    cluster = numasched.Cluster.uniform(hosts=37, nodes_per_host=2, cpu_per_node=8000,
                                        mem_per_node=8 * GiB)
    # 4 x (2000 m, 2 GiB) fill a node; 37 hosts x 2 nodes x 4 = 296 fit, 10 more are pending.
    requests = numasched.Requests([2000] * 306, [2 * GiB] * 306)
    placement = parity(cluster, requests, policy=policy, numa=numa)
    assert int(placement.placed.sum()) == 296
    assert not placement.free_cpu.any() and not placement.free_mem.any()


def _deep_tree_policies(seed: int) -> list[str]:
    """Two host scores per seed, so that seeds 0-3 cover all five between them: the reference
    on a few hundred hosts is the slowest part of the default run, and the slow run (all five
    on every seed) checks every combination."""
    return [POLICIES[seed % len(POLICIES)], POLICIES[(seed + 2) % len(POLICIES)]]


@pytest.mark.parametrize("seed,policies", [
    *[pytest.param(seed, _deep_tree_policies(seed), id=str(seed)) for seed in range(4)],
    *[pytest.param(seed, POLICIES, id=f"{seed}-every-score", marks=pytest.mark.slow)
      for seed in range(8)],
])
def test_deep_trees_with_every_feature(seed, policies):
    """A few hundred hosts (a tree of 9-10 levels) with absent nodes, unschedulable hosts,
    per-host distances, used capacity, mixed modes, priorities and pinned requests."""
    rng = np.random.default_rng(seed)
    inst = random_instance(rng, hosts=int(rng.integers(150, 300)), nodes=int(rng.integers(1, 5)),
                           n=int(rng.integers(100, 200)))
    c = inst["cluster"]
    cluster = numasched.Cluster(c["node_cpu"], c["node_mem"], c["distance"],
                                schedulable=c["schedulable"], free_cpu=c["free_cpu"],
                                free_mem=c["free_mem"])
    requests = numasched.Requests(**inst["requests"])
    for policy in policies:
        parity(cluster, requests, policy=policy, numa=MODES[seed % len(MODES)],
               order=("decreasing", "given")[seed % 2], node=("pack", "spread")[seed // 3 % 2])


@pytest.mark.parametrize("policy", POLICIES)
def test_compiled_backends_agree_at_scale(policy):
    """20,000 mixed requests on 2,000 hosts (too slow for the reference): Cython and Numba
    agree bit for bit, under restricted and best-effort."""
    if len(OTHER_BACKENDS) < 2:
        pytest.skip("needs both compiled backends")
    from numasched.evaluation import workloads

    cluster = workloads.demo_cluster(2000)
    requests = workloads.mixed(10_000, 10_000, seed=3)
    for numa in ("restricted", "best-effort"):
        a, b = (numasched.place(cluster, requests, policy=policy, numa=numa, backend=be)
                for be in OTHER_BACKENDS[:2])
        assert_same_placement(a, b, context=f"{policy}, {numa}: ")


# --------------------------------------------------------------------------------------------
# Hard cases for the request-dependent bounds (dot-product's convex chain, balanced's
# utilisation gap, worst-fit's top state): many hosts within a bound's slack of the best, exact ties between hosts that
# are not neighbours (so no equivalence class merges them), identical hosts, mixed capacities.
# --------------------------------------------------------------------------------------------
from numasched.policies import Policy  # noqa: E402

SCORES = [
    "dot-product", "balanced", "worst-fit",
    Policy("w-worst-1-9", score="worst-fit", cpu_weight=1, mem_weight=9),
    Policy("w-dot-1000-1", score="dot-product", cpu_weight=1000, mem_weight=1),
    Policy("w-dot-0-7", score="dot-product", cpu_weight=0, mem_weight=7),
    Policy("w-dot-3-1000", score="dot-product", cpu_weight=3, mem_weight=1000),
]


def arc_cluster(rng, hosts: int, *, mixed_caps: bool) -> numasched.Cluster:
    """Hosts whose free fractions (X, Y) lie near a quarter circle: every direction of request
    has many hosts within a few units of the best, the case that separates a bound taking the
    largest X and the largest Y apart from one that is exact; and near the diagonal, so that
    balanced's target sits inside every subtree's min..max."""
    caps_c = rng.choice([16_000, 32_000], size=hosts) if mixed_caps else np.full(hosts, 32_000)
    caps_m = rng.choice([64, 128], size=hosts) * GiB if mixed_caps else np.full(hosts, 128 * GiB)
    theta = rng.uniform(0, np.pi / 2, size=hosts)
    radius = 0.7 + rng.integers(0, 3, size=hosts) * 1e-4   # three rings, a hair apart
    fx_c = np.clip(radius * np.cos(theta) + 0.15, 0, 1)
    fx_m = np.clip(radius * np.sin(theta) + 0.15, 0, 1)
    free_c = (caps_c * fx_c).astype(np.int64)
    free_m = (caps_m * fx_m).astype(np.int64)
    node_cpu = np.stack([caps_c // 2, caps_c - caps_c // 2], axis=1)
    node_mem = np.stack([caps_m // 2, caps_m - caps_m // 2], axis=1)
    fc = np.stack([np.minimum(free_c // 2, node_cpu[:, 0]), free_c - free_c // 2], axis=1)
    fm = np.stack([np.minimum(free_m // 2, node_mem[:, 0]), free_m - free_m // 2], axis=1)
    return numasched.Cluster(node_cpu, node_mem, free_cpu=np.minimum(fc, node_cpu),
                             free_mem=np.minimum(fm, node_mem))


def fanned_requests(rng, n: int) -> numasched.Requests:
    """Requests in every CPU:memory direction, from all-CPU to all-memory."""
    cpu = rng.choice([1, 250, 1000, 2000, 4000], size=n)
    mem = rng.choice([1, 2**20, GiB, 4 * GiB, 8 * GiB], size=n)
    return numasched.Requests(cpu, mem)


@pytest.mark.parametrize("mixed_caps", [False, True], ids=["one-class", "mixed-classes"])
def test_many_hosts_within_the_bounds_slack(mixed_caps):
    rng = np.random.default_rng(41)
    cluster = arc_cluster(rng, 64, mixed_caps=mixed_caps)
    requests = fanned_requests(rng, 30)
    for policy in SCORES:
        parity(cluster, requests, policy=policy, numa="none", order="given")
        parity(cluster, requests, policy=policy, numa="restricted", order="given")


@pytest.mark.parametrize("policy", SCORES, ids=lambda p: getattr(p, "name", p))
def test_exact_ties_between_hosts_far_apart(policy):
    """Two host states alternating (A, B, A, B, ...): every A ties every other A, none is next to
    another, so only the bound and the lowest-index rule can stop the search; the ties move as
    requests land."""
    hosts = 64
    cluster = numasched.Cluster.uniform(hosts=hosts, nodes_per_host=2, cpu_per_node=16_000,
                                        mem_per_node=64 * GiB)
    free_c = cluster.free_cpu.copy()
    free_m = cluster.free_mem.copy()
    free_c[0::2] = [12_000, 12_000]            # A: CPU-rich
    free_m[0::2] = [16 * GiB, 16 * GiB]
    free_c[1::2] = [4_000, 4_000]              # B: memory-rich
    free_m[1::2] = [48 * GiB, 48 * GiB]
    cluster = cluster.with_free(free_c, free_m)
    rng = np.random.default_rng(7)
    requests = fanned_requests(rng, 50)
    for numa in ("none", "best-effort"):
        parity(cluster, requests, policy=policy, numa=numa, order="given")


@pytest.mark.parametrize("policy", SCORES, ids=lambda p: getattr(p, "name", p))
def test_identical_hosts_under_request_dependent_bounds(policy):
    """Every host identical and the requests fanned over every direction: each request's best
    is the lowest-index host of the freest class, which the request-dependent bounds must find
    exactly."""
    cluster = numasched.Cluster.uniform(hosts=60, nodes_per_host=2, cpu_per_node=32_000,
                                        mem_per_node=128 * GiB)
    rng = np.random.default_rng(8)
    parity(cluster, fanned_requests(rng, 80), policy=policy, numa="restricted",
           order="decreasing")


def test_balanced_pending_reason_after_a_host_leaves_a_shared_slot():
    """Under balanced a host that fills up leaves its slot while another host stays in it: the
    slot's leaf must drop the departed host's free totals, which the pending reason reads at the
    root (after the last free host fills, no host has any CPU: pending for CPU, not memory)."""
    cluster = numasched.Cluster(np.full((4, 1), 2), np.full((4, 1), 2),
                                free_cpu=np.array([[0], [0], [0], [1]]),
                                free_mem=np.array([[0], [0], [0], [1]]))
    requests = numasched.Requests(cpu=[1, 1, 1], mem=[1, 2, 1], priority=[1, 0, 0])
    placement = parity(cluster, requests, policy="balanced", numa="none", order="decreasing")
    assert placement.reason.tolist() == [0, 3, 3]


@settings(max_examples=examples(40), deadline=None)
@given(seed=st.integers(0, 2**16), hosts=st.integers(2, 70),
       policy=st.sampled_from(POLICIES + SCORES[3:]),
       numa=st.sampled_from(["restricted", "single-numa-node", "best-effort"]))
def test_decoy_hosts_that_pass_every_subtree_test(seed, hosts, policy, numa):
    """Decoys: the hosts with the most free capacity, but one of their two nodes has almost no
    memory left. They pass every test a subtree makes (free totals, the most on one node, the
    joint values) and hold the best bound of the spreading scores, yet cannot take a request
    split over both nodes: the search reaches them, finds nothing, and must go back for
    siblings it stacked untested. Scattered among ordinary hosts of lower bound."""
    rng = np.random.default_rng(seed)
    cluster = numasched.Cluster.uniform(hosts=hosts, nodes_per_host=2, cpu_per_node=16_000,
                                        mem_per_node=64 * GiB)
    free_c = cluster.free_cpu.copy()
    free_m = cluster.free_mem.copy()
    decoy = rng.random(hosts) < 0.4
    free_c[decoy] = [16_000, 15_000]
    free_m[decoy] = [64 * GiB, 2 * GiB]
    plain = ~decoy
    free_c[plain] = rng.integers(8_000, 14_000, size=(plain.sum(), 2))
    free_m[plain] = rng.integers(10, 30, size=(plain.sum(), 2)) * GiB
    cluster = cluster.with_free(free_c, free_m)
    n = 40
    big = rng.random(n) < 0.7   # over one node: split in two, 8.5-13 cores and 5-15 GiB each
    cpu = np.where(big, rng.integers(17_000, 26_000, size=n), rng.integers(500, 4_000, size=n))
    mem = np.where(big, rng.integers(10, 30, size=n) * GiB, rng.integers(1, 8, size=n) * GiB)
    result = parity(cluster, numasched.Requests(cpu, mem), policy=policy, numa=numa,
                    order="given")
    assert (result.host >= 0).any()
