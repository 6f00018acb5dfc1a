"""Migration plans: every step feasible with both copies counted, the objective never worse,
modes and pins kept, deterministic per seed; and no worse than a descheduler-like baseline."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numasched
from numasched import codes
from numasched.kernels import reference as ref
from numasched.optimize.rebalance import (
    OBJECTIVES,
    apply_moves,
    evict_underused,
    rebalance,
    running_state,
)

from conftest import build, examples, instances, ref_host

GiB = 2**30


def replay_and_check(plan) -> None:
    """Replay the plan step by step on plain arrays (independently of ``apply_moves``)."""
    start = plan.initial
    cluster, requests, modes = start.cluster, start.requests, start.modes
    host = start.host.astype(np.int64).copy()
    alloc_c = start.cpu_by_node.copy()
    alloc_m = start.mem_by_node.copy()
    free_c = start.free_cpu.copy()
    free_m = start.free_mem.copy()
    for step, m in enumerate(plan.moves):
        i, src, dst = m.request, m.source, m.target
        assert m.step == step
        assert host[i] == src, f"step {step}: request {i} is on {host[i]}, not {src}"
        assert cluster.schedulable[dst], f"step {step}: unschedulable target {dst}"
        assert requests.required_host[i] in (-1, dst), f"step {step}: pin of request {i} broken"
        rows_c = np.array(m.cpu_by_node, dtype=np.int64)
        rows_m = np.array(m.mem_by_node, dtype=np.int64)
        # Both copies held: the target is reserved while the source still holds its share.
        free_c[dst] -= rows_c
        free_m[dst] -= rows_m
        assert (free_c >= 0).all() and (free_m >= 0).all(), f"step {step}: a node is over capacity"
        check_rules(cluster, requests, modes, i, dst, rows_c, rows_m, m.target_nodes)
        free_c[src] += alloc_c[i]
        free_m[src] += alloc_m[i]
        alloc_c[i], alloc_m[i], host[i] = rows_c, rows_m, dst
    final = plan.final
    assert np.array_equal(final.host, host)
    assert np.array_equal(final.free_cpu, free_c) and np.array_equal(final.free_mem, free_m)
    assert np.array_equal(final.cpu_by_node, alloc_c) and np.array_equal(final.mem_by_node, alloc_m)
    # Nothing changed host without a move, pending requests stay pending.
    assert np.array_equal(final.host < 0, start.host < 0)


def check_rules(cluster, requests, modes, i, h, rows_c, rows_m, nodes) -> None:
    """The target allocation follows the placement rules of request i's NUMA mode."""
    cpu, mem, mode = int(requests.cpu[i]), int(requests.mem[i]), int(modes[i])
    assert rows_c.sum() == cpu and rows_m.sum() == mem
    present = cluster.present[h]
    assert not (rows_c[~present].any() or rows_m[~present].any())
    chosen = sorted(nodes)
    if mode == codes.MODE_NONE:
        nonzero = [k for k in range(cluster.nodes) if rows_c[k] or rows_m[k]]
        assert chosen == nonzero
        return
    assert rows_c[chosen].tolist() == ref.split(cpu, len(chosen))
    assert rows_m[chosen].tolist() == ref.split(mem, len(chosen))
    if mode == codes.MODE_SINGLE:
        assert len(chosen) == 1
    elif mode == codes.MODE_RESTRICTED:
        assert len(chosen) == ref_host(cluster, h).min_nodes(cpu, mem)


def objective_value(placement, objective) -> float:
    s = placement.summary()
    return {"hosts": s["hosts_used"], "locality": -s["locality"],
            "stranded": s["stranded_cpu"] + s["stranded_mem"]}[objective]


def churned(cluster, requests, policy, stay):
    """The placement after the requests not in ``stay`` left (and the pending ones gave up)."""
    start = numasched.place(cluster, requests, policy=policy, order="given")
    keep = np.flatnonzero(np.asarray(stay, dtype=bool) & (start.host >= 0))
    r = requests
    kept = numasched.Requests(r.cpu[keep], r.mem[keep], numa=start.modes[keep],
                              vnuma=r.vnuma[keep], required_host=r.required_host[keep])
    return running_state(cluster, kept, start.host[keep], start.cpu_by_node[keep],
                         start.mem_by_node[keep], numa=start.settings["numa"]), start


@settings(max_examples=examples(40))
@given(inst=instances(max_hosts=6, max_nodes=3, max_requests=16),
       policy=st.sampled_from(["worst-fit", "first-fit", "esxi", "kubelet-best-effort", "linux"]),
       objective=st.sampled_from(OBJECTIVES), max_moves=st.integers(0, 8), data=st.data())
def test_every_plan_replays_step_by_step(inst, policy, objective, max_moves, data):
    cluster, requests = build(inst)
    stay = data.draw(st.lists(st.booleans(), min_size=len(requests), max_size=len(requests)))
    state, start = churned(cluster, requests, policy, stay)
    pending = None
    if objective == "pending":
        # The requests that left come back twice as large (and the ones never placed, as they were).
        back = np.flatnonzero(~np.asarray(stay, dtype=bool) | (start.host < 0))
        if back.size == 0:
            back = np.arange(len(requests))
        pending = numasched.Requests(requests.cpu[back] * 2, requests.mem[back] * 2,
                                     numa=start.modes[back])
    plan = rebalance(state, objective=objective, max_moves=max_moves, pending=pending, seed=1)
    assert len(plan.moves) <= max_moves
    replay_and_check(plan)
    assert plan.after["objective"] <= plan.before["objective"]
    if objective != "pending":
        assert objective_value(plan.final, objective) <= objective_value(state, objective) + 1e-12
    else:
        assert plan.after["pending_placeable"] >= plan.before["pending_placeable"]
    if objective == "hosts":
        assert plan.after["hosts_used"] <= plan.before["hosts_used"]
    again = rebalance(state, objective=objective, max_moves=max_moves, pending=pending, seed=1)
    assert again.moves == plan.moves
    # The input placement is untouched.
    assert np.array_equal(state.host, plan.initial.host)


def fragmented(seed: int, hosts: int = 24, n: int = 120, keep: float = 0.5, mixed: bool = False):
    """A worst-fit placement after about half of its requests left: many half-empty hosts.
    ``mixed``: hosts of 1 to 4 nodes of different sizes, some unschedulable, some holding other
    work, and every NUMA mode, vNUMA guests and pins among the requests."""
    rng = np.random.default_rng(seed)
    if mixed:
        nodes = 4
        width = rng.integers(1, nodes + 1, hosts)
        per_c = rng.choice([8000, 16_000, 24_000], hosts)
        per_m = rng.choice([32, 64, 96], hosts) * GiB
        node_cpu = np.where(np.arange(nodes) < width[:, None], per_c[:, None], 0)
        node_mem = np.where(np.arange(nodes) < width[:, None], per_m[:, None], 0)
        other = rng.random(hosts) < 0.15
        cluster = numasched.Cluster(node_cpu, node_mem, schedulable=rng.random(hosts) < 0.9,
                                    free_cpu=np.where(other[:, None], node_cpu // 2, node_cpu),
                                    free_mem=node_mem)
        modes = ["restricted", "single-numa-node", "best-effort", "none"]
    else:
        cluster = numasched.Cluster.uniform(hosts, 2, 16_000, 96 * GiB)
        modes = ["restricted", "single-numa-node", "best-effort"]
    cpu = rng.choice([1000, 2000, 4000, 8000, 12000], n)
    mem = rng.choice([2, 4, 8, 16, 32], n) * GiB
    numa = rng.choice(modes, n).tolist()
    required = np.where(rng.random(n) < 0.05, rng.integers(0, hosts, n), -1)
    vnuma = rng.random(n) < (0.3 if mixed else 0.0)
    full = numasched.Requests(cpu, mem, numa=numa, required_host=required, vnuma=vnuma)
    p = numasched.place(cluster, full, policy="worst-fit", order="given")
    stay = np.flatnonzero((rng.random(n) < keep) & (p.host >= 0))
    requests = numasched.Requests(cpu[stay], mem[stay], numa=[numa[i] for i in stay],
                                  required_host=required[stay], vnuma=vnuma[stay])
    return running_state(cluster, requests, p.host[stay], p.cpu_by_node[stay], p.mem_by_node[stay])


@settings(max_examples=examples(30))
@given(seed=st.integers(0, 2**16), objective=st.sampled_from(OBJECTIVES),
       max_moves=st.integers(1, 25), keep=st.sampled_from([0.3, 0.5, 0.8]))
def test_plans_on_churned_mixed_clusters_replay_step_by_step(seed, objective, max_moves, keep):
    state = fragmented(seed, hosts=12, n=60, keep=keep, mixed=True)
    pending = None
    if objective == "pending":
        pending = numasched.Requests([20_000, 8000, 30_000], [40 * GiB, 64 * GiB, 100 * GiB],
                                     numa=["restricted", "single-numa-node", "best-effort"])
    plan = rebalance(state, objective=objective, max_moves=max_moves, pending=pending, seed=seed)
    assert len(plan.moves) <= max_moves
    replay_and_check(plan)
    assert plan.after["objective"] <= plan.before["objective"]
    if objective == "hosts":
        assert plan.after["hosts_used"] <= plan.before["hosts_used"]
    again = rebalance(state, objective=objective, max_moves=max_moves, pending=pending, seed=seed)
    assert again.moves == plan.moves


@pytest.mark.parametrize("seed", range(6))
def test_fewer_hosts_than_the_descheduler_baseline(seed):
    state = fragmented(seed)
    plan = rebalance(state, objective="hosts", max_moves=40)
    replay_and_check(plan)
    baseline, evicted = evict_underused(state, max_moves=40)
    assert plan.after["hosts_used"] < plan.before["hosts_used"]
    assert plan.after["hosts_used"] <= baseline.summary()["hosts_used"]
    # The plan never leaves anything pending; the baseline's evictions may.
    assert plan.after["pending"] == state.summary()["pending"] == 0
    assert len(plan.moves) <= 40


def test_a_plan_makes_room_for_a_wide_pending_vm():
    # Four 2-node hosts each half full with small pods: no host can take a VM of a whole host.
    cluster = numasched.Cluster.uniform(4, 2, 16_000, 64 * GiB)
    requests = numasched.Requests([8000] * 4, [32 * GiB] * 4, numa="single-numa-node")
    state = running_state(cluster, requests, [0, 1, 2, 3])
    vm = numasched.Requests([32_000], [128 * GiB], numa="restricted")
    assert numasched.place(state.cluster_after(), vm).host[0] == -1
    plan = rebalance(state, objective="pending", pending=vm, max_moves=3)
    replay_and_check(plan)
    assert plan.before["pending_placeable"] == 0 and plan.after["pending_placeable"] == 1
    assert len(plan.moves) == 1
    assert numasched.place(plan.final.cluster_after(), vm).host[0] >= 0


def test_locality_moves_a_spread_best_effort_request_onto_one_node():
    cluster = numasched.Cluster.uniform(2, 2, 16_000, 64 * GiB)
    # Request 0 is spread over both nodes of host 0; host 1 has a whole node free.
    requests = numasched.Requests([8000, 12_000], [16 * GiB, 8 * GiB], numa="best-effort")
    state = running_state(cluster, requests, [0, 1],
                          cpu_by_node=[[4000, 4000], [12_000, 0]],
                          mem_by_node=[[8 * GiB, 8 * GiB], [8 * GiB, 0]])
    plan = rebalance(state, objective="locality", max_moves=5)
    replay_and_check(plan)
    assert plan.before["locality"] < 1.0 and plan.after["locality"] == pytest.approx(1.0)
    assert [m.request for m in plan.moves] == [0]


def test_pinned_requests_and_foreign_work_keep_their_hosts():
    state = fragmented(3)
    plan = rebalance(state, objective="hosts", max_moves=60)
    pinned = np.flatnonzero(state.requests.required_host >= 0)
    assert all(m.request not in pinned.tolist() or m.target == m.source for m in plan.moves)
    assert np.array_equal(plan.final.host[pinned], state.host[pinned])


def test_the_budget_of_moves_is_kept_and_zero_means_no_plan():
    state = fragmented(1)
    assert len(rebalance(state, max_moves=0).moves) == 0
    for budget in (1, 3, 7):
        plan = rebalance(state, max_moves=budget)
        assert len(plan.moves) <= budget
        replay_and_check(plan)


def test_a_plan_is_plain_data():
    plan = rebalance(fragmented(2), max_moves=10)
    data = plan.as_dict()
    assert data["objective"] == "hosts" and len(data["moves"]) == len(plan.moves)
    assert data["after"]["hosts_used"] == plan.after["hosts_used"]
    import json
    json.dumps(data)


def test_apply_moves_refuses_a_step_that_overcommits():
    cluster = numasched.Cluster.uniform(2, 1, 10_000, 10 * GiB)
    requests = numasched.Requests([6000, 6000], [GiB, GiB])
    state = running_state(cluster, requests, [0, 1])
    plan = rebalance(state, max_moves=2)
    assert len(plan.moves) == 0   # 6 + 6 > 10: no host can be emptied
    bad = dataclasses.replace(rebalance(fragmented(0), max_moves=1).moves[0], step=0)
    move = dataclasses.replace(bad, request=0, source=0, target=1, target_nodes=(0,),
                               cpu_by_node=(6000,), mem_by_node=(GiB,))
    with pytest.raises(ValueError, match="over capacity"):
        apply_moves(state, [move])


@pytest.mark.parametrize("kwargs,match", [
    ({"objective": "fastest"}, "unknown objective 'fastest'"),
    ({"max_moves": -1}, "max_moves must be an integer >= 0"),
    ({"max_moves": 1.5}, "max_moves"),
    ({"seed": -2}, "seed"),
    ({"effort": float("nan")}, "effort"),
    ({"pending": numasched.Requests([1], [1])}, "pending is only used by objective 'pending'"),
])
def test_bad_arguments_are_refused(kwargs, match):
    state = fragmented(0)
    with pytest.raises(ValueError, match=match):
        rebalance(state, **kwargs)


def test_a_cluster_with_bad_running_state_is_refused():
    cluster = numasched.Cluster.uniform(2, 2, 16_000, 64 * GiB)
    requests = numasched.Requests([8000, 8000], [GiB, GiB], required_host=[-1, 1])
    with pytest.raises(ValueError, match=r"host\[1\] = 0, but request 1 requires host 1"):
        rebalance(cluster, requests, host=[0, 0])
    with pytest.raises(ValueError, match="host must be <= 1"):
        rebalance(cluster, requests, host=[0, 5])
    big = numasched.Requests([40_000], [GiB])
    with pytest.raises(ValueError, match=r"host\[0\] = 0: request 0 does not fit there"):
        rebalance(cluster, big, host=[0])
    with pytest.raises(ValueError, match=r"cpu_by_node\[0\] sums to 1000, but request 0 asks "
                                         r"for 8000"):
        rebalance(cluster, requests, host=[0, 1], cpu_by_node=[[1000, 0], [8000, 0]],
                  mem_by_node=[[GiB, 0], [GiB, 0]])
    with pytest.raises(ValueError, match="with a Cluster, pass requests= and host="):
        rebalance(cluster)


def test_group_caps_limit_the_moves_of_each_group():
    state = fragmented(4)
    n = len(state.requests)
    groups = np.arange(n) % 3          # three groups; group 2 may not move at all
    plan = rebalance(state, max_moves=40, groups=groups, group_moves=[2, 5, 0])
    replay_and_check(plan)
    moved = np.bincount([groups[m.request] for m in plan.moves], minlength=3)
    assert moved[0] <= 2 and moved[1] <= 5 and moved[2] == 0
    with pytest.raises(ValueError, match="groups names group 2, but group_moves has 2 entries"):
        rebalance(state, groups=groups, group_moves=[1, 1])


# ---------------------------------------------------------------------------------------------
# In the controller
# ---------------------------------------------------------------------------------------------
def _pod(name, cpu, mem):
    return {"kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [
        {"name": "a", "resources": {"requests": {"cpu": cpu, "memory": mem}}}]}}


def _vm(name, cpu, mem):
    return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": {"name": name},
            "spec": {"template": {"spec": {"domain": {"resources": {
                "requests": {"cpu": cpu, "memory": mem}}}}}}}


def _web(replicas, max_unavailable):
    spec = {"replicas": replicas, "template": {"spec": {"containers": [
        {"name": "a", "resources": {"requests": {"cpu": "2", "memory": "2Gi"}}}]}}}
    if max_unavailable is not None:
        spec["strategy"] = {"rollingUpdate": {"maxUnavailable": max_unavailable}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": spec}


def spread_controller(max_unavailable=1, **kwargs):
    from numasched.control import Controller

    ctl = Controller(policy="worst-fit", **kwargs)
    for h in range(6):
        ctl.ops.add_host(f"h{h}", nodes=[("16", "64Gi"), ("16", "64Gi")])
    for i in range(6):
        ctl.apply(_pod(f"p{i}", "4", "8Gi"))
        ctl.apply(_vm(f"v{i}", "4", "8Gi"))
    ctl.apply(_web(6, max_unavailable))
    ctl.reconcile()
    return ctl


def hosts_in_use(ctl) -> int:
    cluster, _ = ctl.cluster()
    return int(((cluster.free_cpu != cluster.node_cpu).any(axis=1)).sum())


def test_controller_dry_run_changes_nothing_and_applying_moves_bindings():
    ctl = spread_controller(max_unavailable="100%")
    before = {(w["kind"], w["metadata"]["name"]): w["status"]["host"]
              for kind in ("Pod", "VirtualMachine") for w in ctl.list(kind)}
    events = len(ctl.list("Event"))
    dry = ctl.rebalance(max_moves=30)
    assert not dry.applied and len(dry.steps) > 0 and hosts_in_use(ctl) == 6
    assert len(ctl.list("Event")) == events
    done = ctl.rebalance(max_moves=30, dry_run=False)
    assert done.applied and [s.name for s in done.steps] == [s.name for s in dry.steps]
    assert ctl.audit() == []
    assert hosts_in_use(ctl) == done.after["hosts_used"] < 6
    after = {(w["kind"], w["metadata"]["name"]): w["status"] for kind in ("Pod", "VirtualMachine")
             for w in ctl.list(kind)}
    assert all(s["phase"] == "Running" for s in after.values())
    for step in done.steps:
        key = (step.kind, step.name)
        assert before[key] == step.source and after[key]["host"] == step.target
        assert step.action == ("migrate" if step.kind == "VirtualMachine" else "evict")
    log = ctl.list("Event")[events:]
    reasons = [(e["reason"], e["name"]) for e in log]
    for step in done.steps:
        if step.action == "migrate":
            assert ("Migrated", step.name) in reasons
        else:
            assert ("Evicted", step.name) in reasons and ("Scheduled", step.name) in reasons


def test_max_unavailable_bounds_the_replicas_moved_per_plan():
    for cap, limit in ((1, 1), ("50%", 3), (None, 1)):   # None: Kubernetes' default 25% of 6
        ctl = spread_controller(max_unavailable=cap)
        plan = ctl.rebalance(max_moves=40)
        moved = sum(1 for s in plan.steps if s.name.startswith("web-"))
        assert moved <= limit, (cap, moved)
    with pytest.raises(ValueError, match="maxUnavailable: expected an integer or a percentage"):
        from numasched.control.rebalance import max_unavailable
        max_unavailable({"spec": {"strategy": {"rollingUpdate": {"maxUnavailable": "x"}}}}, 4)


def test_a_stale_plan_stops_at_the_first_move_that_no_longer_holds():
    ctl = spread_controller(max_unavailable="100%")
    planned = ctl.rebalance(max_moves=30)
    first = planned.steps[0]
    ctl.delete(first.kind, first.namespace, first.name)
    ctl.reconcile()
    from numasched.control import rebalance as control_rebalance
    done = control_rebalance.apply(ctl, planned)
    assert len(done.steps) == 0 and ctl.audit() == []
    assert ctl.list("Event")[-1]["reason"] == "RebalanceStopped"


def test_periodic_mode_rebalances_when_out_of_balance():
    ctl = spread_controller(max_unavailable="100%", rebalance_every=2, rebalance_threshold=0.1,
                            rebalance_moves=30)
    assert ctl.reconcile().rebalanced is not None     # round 2: due, hosts 6 over a bound of 2
    assert hosts_in_use(ctl) < 6 and ctl.audit() == []
    assert ctl.reconcile().rebalanced is None          # round 3: not due
    with pytest.raises(ValueError, match="rebalance_every must be a positive integer"):
        spread_controller(rebalance_every=0)
