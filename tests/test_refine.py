"""The refinement pass: never breaks a constraint, never adds hosts, deterministic per seed."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

import numasched
from numasched.optimize import refine as refine_module

from conftest import build, check_invariants, examples, instances

GiB = 2**30


@settings(max_examples=examples(40))
@given(inst=instances(max_hosts=5, max_nodes=3, max_requests=14))
@pytest.mark.parametrize("policy", ["first-fit", "best-fit", "esxi", "linux", "kubelet-best-effort"])
def test_refinement_keeps_invariants_and_never_adds_hosts(inst, policy):
    cluster, requests = build(inst)
    greedy = numasched.place(cluster, requests, policy=policy)
    refined = numasched.place(cluster, requests, policy=policy, refine=0.02, seed=3)
    check_invariants(cluster, requests, refined)
    assert refined.summary()["hosts_used"] <= greedy.summary()["hosts_used"]
    assert refined.summary()["placed"] >= greedy.summary()["placed"]
    again = numasched.place(cluster, requests, policy=policy, refine=0.02, seed=3)
    for field in ("host", "cpu_by_node", "mem_by_node", "nodes", "reason", "free_cpu", "free_mem"):
        assert np.array_equal(getattr(refined, field), getattr(again, field)), field


def test_refinement_reaches_the_optimum_that_worst_fit_misses():
    # 70 + 30 and 60 + 40 fill two hosts of 100 exactly; worst-fit spreads them over four.
    cpu = np.array([30_000, 70_000, 60_000, 40_000], dtype=np.int64)
    cluster = numasched.Cluster.uniform(5, 1, 100_000, 64 * GiB)
    requests = numasched.Requests(cpu, np.full(cpu.size, GiB))
    greedy = numasched.place(cluster, requests, policy="worst-fit", order="given")
    refined = numasched.place(cluster, requests, policy="worst-fit", order="given", refine=0.2)
    assert greedy.summary()["hosts_used"] == 4
    assert refined.summary()["hosts_used"] == 2
    check_invariants(cluster, requests, refined)


def test_refinement_never_widens_a_best_effort_request():
    # The locality pass only ever moves a best-effort request onto a narrower node set.
    cluster = numasched.Cluster.uniform(2, 2, 32_000, 256 * GiB)
    requests = numasched.Requests([20_000, 24_000], [8 * GiB, 8 * GiB], numa="best-effort")
    greedy = numasched.place(cluster, requests, policy="first-fit", order="given")
    refined = numasched.place(cluster, requests, policy="first-fit", order="given", refine=0.1)
    widths = [bin(int(x)).count("1") for x in refined.nodes]
    greedy_widths = [bin(int(x)).count("1") for x in greedy.nodes]
    assert all(w <= g for w, g in zip(widths, greedy_widths))
    check_invariants(cluster, requests, refined)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf"), "1", True])
def test_bad_refine_budget_is_refused(bad):
    cluster = numasched.Cluster.uniform(2, 2, 32_000, 256 * GiB)
    requests = numasched.Requests([1000], [GiB])
    with pytest.raises(ValueError, match="refine"):
        numasched.place(cluster, requests, refine=bad)


@pytest.mark.parametrize("bad", [-1, 1.5, "x"])
def test_bad_seed_is_refused(bad):
    cluster = numasched.Cluster.uniform(2, 2, 32_000, 256 * GiB)
    with pytest.raises(ValueError, match="seed"):
        numasched.place(cluster, numasched.Requests([1000], [GiB]), refine=0.1, seed=bad)


def test_budget_is_work_not_wall_time():
    assert refine_module.budget_units(0) == 0
    assert refine_module.budget_units(1.0) == refine_module.WORK_PER_SECOND


def perfect_triplets(seed: int, bins: int):
    """Items that fill ``bins`` bins of 150 exactly, three per bin, shuffled: the optimum is
    known (``bins``) and greedy orders rarely find it."""
    rng = np.random.default_rng(seed)
    sizes = []
    for _ in range(bins):
        a = int(rng.integers(20, 66))
        b = int(rng.integers(20, 151 - a - 20))
        sizes += [a, b, 150 - a - b]
    return rng.permutation(np.array(sizes, dtype=np.int64))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bin_packing_reaches_the_optimum_of_exact_triplets(seed):
    sizes = perfect_triplets(seed, 40)
    n = sizes.size
    cluster = numasched.Cluster(np.full((n, 1), 150), np.full((n, 1), n))
    requests = numasched.Requests(sizes, np.ones(n, dtype=np.int64))
    greedy = numasched.place(cluster, requests, policy="vector-pack")
    refined = numasched.place(cluster, requests, policy="vector-pack", refine=0.25, seed=seed)
    check_invariants(cluster, requests, refined)
    assert greedy.summary()["hosts_used"] > 40
    assert refined.summary()["hosts_used"] == 40
    again = numasched.place(cluster, requests, policy="vector-pack", refine=0.25, seed=seed)
    assert np.array_equal(refined.host, again.host)


def test_two_resource_bin_packing_keeps_every_rule():
    rng = np.random.default_rng(7)
    n = 120
    cluster = numasched.Cluster(np.full((n, 1), 100_000), np.full((n, 1), 100 * GiB))
    requests = numasched.Requests(rng.integers(5_000, 60_000, n), rng.integers(5, 60, n) * GiB,
                                  numa=rng.choice(["restricted", "none", "best-effort"], n).tolist())
    greedy = numasched.place(cluster, requests, policy="vector-pack")
    refined = numasched.place(cluster, requests, policy="vector-pack", refine=0.1, seed=1)
    check_invariants(cluster, requests, refined)
    assert refined.summary()["hosts_used"] <= greedy.summary()["hosts_used"]
