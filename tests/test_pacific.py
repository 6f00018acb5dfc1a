"""The Project Pacific table (numasched.evaluation.pacific, ``numasched pacific``) and the locality model
behind its throughput column."""
from __future__ import annotations

import io
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from rich.console import Console

from numasched.evaluation import locality, pacific, workloads
from numasched.cli import cli


@pytest.fixture(scope="module")
def report():
    return pacific.pacific_table()


def _row(report, policy):
    return next(r for r in report["rows"] if r["policy"] == policy)


def test_default_workload_places_everything_under_both_policies(report):
    p = report["parameters"]
    assert (p["hosts"], p["vms"], p["containers"]) == (pacific.DEFAULT_HOSTS, pacific.DEFAULT_VMS,
                                                       pacific.DEFAULT_CONTAINERS)
    for policy in ("esxi", "linux"):
        row = _row(report, policy)
        assert row["placed"] == row["requests"] == p["vms"] + p["containers"]
        assert row["pending"] == 0
        assert 0 < row["hosts_used"] <= p["hosts"]
        assert row["hosts_used"] >= row["hosts_lower_bound"]
    assert 0 < report["demand"]["cpu"] < 1


def test_esxi_local_and_linux_half_local(report):
    esxi, linux = _row(report, "esxi"), _row(report, "linux")
    assert esxi["local_fraction"] >= 0.99
    assert esxi["local_fraction_containers"] >= 0.99 and esxi["local_fraction_vms"] >= 0.99
    assert esxi["single_node_fraction"] >= 0.99
    assert 0.45 <= linux["local_fraction"] <= 0.55
    assert 0.45 <= linux["local_fraction_containers"] <= 0.55
    assert linux["single_node_fraction"] <= 0.05
    assert esxi["numa"] == "restricted" and linux["numa"] == "none"


def test_throughput_columns(report):
    esxi, linux = _row(report, "esxi"), _row(report, "linux")
    assert report["distance_ratio"] == pytest.approx(2.1)
    assert linux["vs_linux"] == 1.0
    assert esxi["vs_linux"] == pytest.approx(esxi["relative_throughput"]
                                             / linux["relative_throughput"])
    for row in (esxi, linux):
        assert row["relative_throughput"] == pytest.approx(locality.relative_throughput(
            row["local_fraction"], memory_boundness=0.15, distance_ratio=2.1))
    assert 1.05 <= esxi["vs_linux"] <= 1.11  # near the published ~8 % at the default beta
    sens = {s["memory_boundness"]: s["esxi_over_linux"] for s in report["sensitivity"]}
    values = [sens[b] for b in sorted(sens)]
    assert values == sorted(values) and sens[0.15] == pytest.approx(esxi["vs_linux"])
    assert report["published"]["model_at_published"] == pytest.approx(
        locality.relative_throughput(0.99, memory_boundness=0.15)
        / locality.relative_throughput(0.50, memory_boundness=0.15))


def test_published_rows(report):
    pub = report["published"]
    assert "Project Pacific" in pub["source"]
    rows = {r["policy"]: r for r in pub["rows"]}
    assert rows["esxi (published)"]["local_fraction"] == 0.99
    assert rows["linux (published)"]["local_fraction"] == 0.50
    assert rows["esxi (published)"]["vs_linux"] == 1.08
    assert rows["linux (published)"]["hosts_used"] is None


def test_report_is_plain_json(report):
    assert json.loads(json.dumps(report, allow_nan=False)) == report


def test_memory_boundness_changes_only_the_estimate():
    a = pacific.pacific_table(40, 300, 300, seed=2, memory_boundness=0.0)
    b = pacific.pacific_table(40, 300, 300, seed=2, memory_boundness=0.5)
    for ra, rb in zip(a["rows"], b["rows"]):
        assert ra["local_fraction"] == rb["local_fraction"]
        assert ra["hosts_used"] == rb["hosts_used"]
        assert ra["relative_throughput"] == 1.0
    assert _row(b, "esxi")["vs_linux"] > 1.2


def test_pending_work_is_reported_not_hidden():
    small = pacific.pacific_table(hosts=5, vms=300, containers=300)
    for row in small["rows"]:
        assert row["pending"] > 0 and row["placed"] + row["pending"] == row["requests"]
        assert row["hosts_used"] == 5


def test_containers_only_and_vms_only():
    only_c = pacific.pacific_table(hosts=10, vms=0, containers=200)
    assert _row(only_c, "esxi")["local_fraction_vms"] is None
    assert _row(only_c, "linux")["local_fraction_containers"] == pytest.approx(0.5, abs=0.05)
    only_v = pacific.pacific_table(hosts=10, vms=100, containers=0)
    assert _row(only_v, "linux")["local_fraction_containers"] is None


@pytest.mark.parametrize("kwargs,message", [
    ({"hosts": 0}, "hosts"),
    ({"vms": -1}, "vms"),
    ({"containers": 1.5}, "containers"),
    ({"hosts": True}, "hosts"),
    ({"memory_boundness": 1.5}, "memory_boundness"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pacific.pacific_table(**kwargs)


def test_render(report):
    out = io.StringIO()
    pacific.render(report, Console(file=out, width=80, color_system=None))
    text = out.getvalue()
    assert "esxi (published)" in text and "linux (published)" in text
    assert "100.0%" in text and "50.0%" in text and "+8.0%" in text
    assert max(len(line) for line in text.splitlines()) <= 80


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------
def test_cli_json_end_to_end():
    proc = subprocess.run([sys.executable, "-m", "numasched", "pacific", "--json", "--hosts", "60",
                           "--vms", "500", "--containers", "500"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert [r["policy"] for r in data["rows"]] == ["esxi", "linux"]
    assert data["parameters"]["hosts"] == 60
    assert _row(data, "esxi")["local_fraction"] >= 0.99


def test_cli_table_and_options():
    runner = CliRunner()
    result = runner.invoke(cli, ["pacific", "--hosts", "20", "--vms", "100", "--containers", "100",
                                 "--seed", "3", "--memory-boundness", "0.3"])
    assert result.exit_code == 0, result.output
    assert "Project Pacific table" in result.output and "esxi (published)" in result.output
    result = runner.invoke(cli, ["pacific", "--json", "--hosts", "20", "--vms", "100",
                                 "--containers", "100", "--memory-boundness", "0.3"])
    assert json.loads(result.output)["parameters"]["memory_boundness"] == 0.3
    for bad in (["--memory-boundness", "1.5"], ["--hosts", "0"], ["--seed", "-1"],
                ["--vms", "x"]):
        result = runner.invoke(cli, ["pacific", *bad])
        assert result.exit_code == 2, (bad, result.output)
    result = runner.invoke(cli, ["--help"])
    assert "pacific" in result.output


# --------------------------------------------------------------------------------------------
# The locality model (numasched.evaluation.locality)
# --------------------------------------------------------------------------------------------
def test_relative_throughput_formula():
    for beta in (0.0, 0.15, 1.0):
        for rho in (1.0, 2.1, 3.2):
            t = locality.relative_throughput(1.0, memory_boundness=beta, distance_ratio=rho)
            assert t == 1.0
    assert locality.relative_throughput(0.5) == pytest.approx(1 / (0.85 + 0.15 * (0.5 + 0.5 * 2.1)))
    assert locality.relative_throughput(0.0, memory_boundness=1.0, distance_ratio=2.0) == 0.5
    assert locality.relative_throughput(0.3, memory_boundness=0.0) == 1.0
    assert locality.relative_throughput(0.3, distance_ratio=1.0) == 1.0
    assert isinstance(locality.relative_throughput(0.7), float)


def test_relative_throughput_is_monotone():
    local = np.linspace(0, 1, 21)
    t = locality.relative_throughput(local)
    assert t.shape == local.shape and (np.diff(t) > 0).all() and t[-1] == 1.0
    by_beta = [locality.relative_throughput(0.5, memory_boundness=b) for b in (0, 0.1, 0.3, 0.9)]
    assert by_beta == sorted(by_beta, reverse=True)
    by_rho = [locality.relative_throughput(0.5, distance_ratio=r) for r in (1, 1.5, 2.1, 3)]
    assert by_rho == sorted(by_rho, reverse=True)


@pytest.mark.parametrize("args,kwargs,message", [
    ((-0.1,), {}, "local_fraction"),
    ((1.1,), {}, "local_fraction"),
    ((math.nan,), {}, "local_fraction"),
    (([0.5, 2.0],), {}, "local_fraction"),
    ((0.5,), {"memory_boundness": -0.01}, "memory_boundness"),
    ((0.5,), {"memory_boundness": 1.5}, "memory_boundness"),
    ((0.5,), {"distance_ratio": 0.9}, "distance_ratio"),
    ((0.5,), {"distance_ratio": math.nan}, "distance_ratio"),
])
def test_relative_throughput_refuses_bad_arguments(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        locality.relative_throughput(*args, **kwargs)


def test_distance_ratio_and_estimate():
    from numasched import Cluster, Requests, place

    assert locality.distance_ratio(workloads.demo_cluster(3)) == pytest.approx(2.1)
    assert locality.distance_ratio(Cluster.uniform(2, 1, 8, 8)) == 1.0  # no remote node
    cluster = Cluster.uniform(1, 2, 8000, 8 * 2**30, remote_distance=32)
    assert locality.distance_ratio(cluster) == pytest.approx(3.2)
    p = place(cluster, Requests([2000], [2**30]), policy="linux")
    est = locality.estimate(p, memory_boundness=0.2)
    assert est["local_fraction"] == pytest.approx(0.5)
    assert est["relative_throughput"] == pytest.approx(1 / (0.8 + 0.2 * (0.5 + 0.5 * 3.2)))
