"""Capacity planning: the host-shape grammar, the minimal count, the bound and the binding
resource, failure headroom checked independently, the trace's peak, and the CLI."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from click.testing import CliRunner

import numasched
from numasched.cli import cli
from numasched.io.trace import parse_trace
from numasched.optimize import plan as planning

GiB = 2**30


@pytest.mark.parametrize("text,nodes,cpu,mem", [
    ("2x16c/192Gi", 2, 16_000, 192 * GiB),
    ("1x7.5c/1.5Ti", 1, 7500, 1536 * GiB),
    (" 4X8c / 64Gi ", 4, 8000, 64 * GiB),
])
def test_host_shapes_parse(text, nodes, cpu, mem):
    shape = planning.parse_host_shape(text)
    assert (shape.nodes, shape.cpu_per_node, shape.mem_per_node) == (nodes, cpu, mem)
    assert shape.host_cpu == nodes * cpu and shape.host_mem == nodes * mem


@pytest.mark.parametrize("text,match", [
    ("2x16/192Gi", r"host shape '2x16/192Gi': expected NODESxCORESc/MEMORY, e\.g\. 2x16c/192Gi"),
    ("16c/192Gi", "expected NODESxCORESc/MEMORY"),
    ("0x16c/192Gi", "the node count must be 1 to 64, got 0"),
    ("65x1c/1Gi", "the node count must be 1 to 64, got 65"),
    ("2x0c/192Gi", "cores and memory per node must be positive"),
    ("2x16c/lots", "memory: invalid quantity 'lots'"),
    (216, "host shape must be a string"),
])
def test_bad_host_shapes_are_refused(text, match):
    with pytest.raises(ValueError, match=match):
        planning.parse_host_shape(text)


def mix(seed: int, n: int = 80) -> numasched.Requests:
    rng = np.random.default_rng(seed)
    return numasched.Requests(rng.choice([1000, 2000, 4000, 8000, 16_000], n),
                              rng.choice([2, 4, 8, 16, 64], n) * GiB,
                              numa=rng.choice(["restricted", "single-numa-node"], n).tolist())


@pytest.mark.parametrize("policy", ["best-fit", "esxi", "linux", "spread"])
@pytest.mark.parametrize("seed", [0, 1])
def test_the_count_is_the_fewest_hosts_the_policy_fits(policy, seed):
    requests = mix(seed)
    shape = planning.parse_host_shape("2x16c/128Gi")
    result = planning.plan(shape, requests, policy=policy)
    hosts = result["hosts"]
    assert result["lower_bound"] <= hosts
    placed = numasched.place(shape.cluster(hosts), requests, policy=policy)
    assert (placed.host >= 0).all()
    fewer = numasched.place(shape.cluster(hosts - 1), requests, policy=policy)
    assert (fewer.host < 0).any()
    assert result["utilisation"]["cpu"] == pytest.approx(
        requests.cpu.sum() / (hosts * shape.host_cpu))


def test_the_binding_resource_is_the_one_that_runs_out_first():
    shape = "2x16c/64Gi"
    memory_heavy = numasched.Requests([1000] * 10, [60 * GiB] * 10)
    cpu_heavy = numasched.Requests([15_000] * 10, [GiB] * 10)
    assert planning.plan(shape, memory_heavy)["binding"] == "memory"
    assert planning.plan(shape, cpu_heavy)["binding"] == "cpu"
    # 10 requests of 60 GiB on hosts of 128 GiB: two per host, five hosts; the bound says so too.
    assert planning.plan(shape, memory_heavy)["hosts"] == 5
    assert planning.plan(shape, memory_heavy)["lower_bound"] == 5


def restart_ok(shape, requests, hosts, policy, failures) -> bool:
    """Independent check of the headroom: every failure set's requests restart elsewhere."""
    p = numasched.place(shape.cluster(hosts), requests, policy=policy)
    if (p.host < 0).any():
        return False
    for failed in itertools.combinations(range(hosts), failures):
        gone = np.isin(p.host, failed)
        if not gone.any():
            continue
        free_c, free_m = np.array(p.free_cpu), np.array(p.free_mem)
        sched = np.ones(hosts, dtype=bool)
        sched[list(failed)] = False
        state = shape.cluster(hosts).with_free(free_c, free_m, schedulable=sched)
        again = numasched.place(state, numasched.Requests(requests.cpu[gone], requests.mem[gone],
                                                          numa=p.modes[gone]), policy=policy)
        if (again.host < 0).any():
            return False
    return True


@pytest.mark.parametrize("failures", [1, 2])
@pytest.mark.parametrize("policy", ["best-fit", "spread"])
def test_failure_headroom_holds_and_is_the_fewest_that_does(failures, policy):
    requests = mix(3, n=40)
    shape = planning.parse_host_shape("2x16c/128Gi")
    result = planning.plan(shape, requests, policy=policy, failures=failures)
    hosts = result["hosts"]
    assert result["failure_check"]["how"] == "exhaustive"
    assert hosts >= result["hosts_without_failures"] + 1
    assert restart_ok(shape, requests, hosts, policy, failures)
    for fewer in range(result["hosts_without_failures"], hosts):
        assert not restart_ok(shape, requests, fewer, policy, failures)


def test_whole_host_requests_need_one_spare_per_failure():
    requests = numasched.Requests([32_000] * 4, [256 * GiB] * 4)
    assert planning.plan("2x16c/128Gi", requests)["hosts"] == 4
    assert planning.plan("2x16c/128Gi", requests, failures=1)["hosts"] == 5
    assert planning.plan("2x16c/128Gi", requests, failures=3)["hosts"] == 7


def test_a_request_no_host_could_hold_is_named():
    requests = numasched.Requests([4000, 40_000], [GiB, GiB])
    with pytest.raises(ValueError, match=r"db \(cpu 40, memory 1Gi\) can never fit a host of "
                                         r"shape 2x16c/128Gi under NUMA mode restricted"):
        planning.plan("2x16c/128Gi", requests, labels=["web", "db"])
    with pytest.raises(ValueError, match="failures must be a non-negative integer"):
        planning.plan("2x16c/128Gi", requests, failures=-1)


def test_the_trace_peak_is_the_busiest_instant():
    trace = parse_trace("arrival,departure,cpu,memory,kind,namespace\n"
                        "0,10,4,4Gi,Pod,default\n"
                        "5,20,8,8Gi,Pod,default\n"
                        "12,30,2,2Gi,Pod,default\n"
                        "15,,1,1Gi,Pod,default\n")
    requests, t, rows = planning.trace_peak(trace, "1x16c/16Gi")
    # at 5: 4 + 8 = 12 cores; at 12: 8 + 2; at 15: 8 + 2 + 1 = 11
    assert t == 5 and rows.tolist() == [0, 1]
    assert requests.cpu.tolist() == [4000, 8000]


def test_cli_plan_json_has_hosts_and_compares_presets(tmp_path):
    path = tmp_path / "mix.yaml"
    path.write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n"
                    "  replicas: 10\n  template:\n    spec:\n      containers:\n      - name: c\n"
                    "        resources: {requests: {cpu: '6', memory: 24Gi}}\n")
    runner = CliRunner()
    out = runner.invoke(cli, ["plan", "--host-shape", "2x16c/128Gi", "--workloads", str(path),
                              "--policy", "esxi", "--policy", "linux", "--failures", "1",
                              "-o", "json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["hosts"] == data["compare"][0]["hosts"] >= 3
    assert [p["policy"] for p in data["compare"]] == ["esxi", "linux"]
    assert data["binding"] == "cpu" and data["failures"] == 1
    table = runner.invoke(cli, ["plan", "--host-shape", "2x16c/128Gi", "--workloads", str(path)])
    assert table.exit_code == 0 and "binding resource" in table.output
    bad = runner.invoke(cli, ["plan", "--host-shape", "2x16/128Gi", "--workloads", str(path)])
    assert bad.exit_code == 2 and "expected NODESxCORESc/MEMORY" in bad.output
    none = runner.invoke(cli, ["plan", "--host-shape", "2x16c/128Gi"])
    assert none.exit_code == 2 and "exactly one of --workloads, --trace or --inventory" in none.output
