"""What every ``numasched`` command shares: ``-o table|json|yaml``, one-line errors (exit 2) for
click's own parse errors too, policy names checked with "did you mean", tables that do not wrap
when piped; and ``numasched policies``, ``place --fail-on-pending``, presets in demo and pacific.

All in-process (click's runner) on small sizes: a few seconds in total.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import numasched
from numasched import policies
from numasched.cli import cli

REPO = Path(numasched.__file__).resolve().parents[1]
EXAMPLES = REPO / "docs" / "examples"
TOPOLOGY = str(EXAMPLES / "topology")
WORKLOADS = str(EXAMPLES / "workloads.yaml")
SMALL_DEMO = ["--hosts", "6", "--vms", "30", "--containers", "30"]
STORE = f"sqlite:///{tempfile.mkdtemp(prefix='numasched-cli-')}/state.db"

# Commands that serve forever print no report, so they have nothing to put through -o.
SERVERS = {"extender"}

# Arguments that make each command do its (small) job.
RUNS = {
    "demo": ["demo", *SMALL_DEMO],
    "pacific": ["pacific", *SMALL_DEMO],
    "policies": ["policies"],
    "topology": ["topology", TOPOLOGY],
    "place": ["place", "--topology", TOPOLOGY, "--workloads", WORKLOADS],
    "simulate": ["simulate", "--topology", TOPOLOGY, "--trace", str(EXAMPLES / "trace.csv")],
    "plan": ["plan", "--host-shape", "2x48c/384Gi", "--workloads", WORKLOADS],
    # the store commands share one SQLite file in a temporary folder (in this order: sorted)
    "apply": ["apply", "-f", str(EXAMPLES / "inventory.yaml"), "-f", str(EXAMPLES / "shop.yaml"),
              "--store", STORE],
    "controller": ["controller", "--rounds", "1", "--interval", "0.01", "--store", STORE],
    "delete": ["delete", "pod", "postgres", "-n", "shop", "--ignore-not-found", "--store", STORE],
    "describe": ["describe", "deployment", "web", "-n", "shop", "--store", STORE],
    "events": ["events", "--store", STORE],
    "get": ["get", "pods", "-A", "--store", STORE],
    "sweep": ["sweep", "--hosts", "3", "--workload", "mixed:5:5", "--workers", "0"],
    "cells": ["cells", str(EXAMPLES / "cells"), "--workers", "0"],
}


def run(*args, **kwargs):
    return CliRunner().invoke(cli, list(args), **kwargs)


def test_every_reporting_command_is_covered_here():
    assert set(cli.commands) - SERVERS == set(RUNS)


@pytest.mark.parametrize("name", sorted(RUNS))
def test_every_command_takes_output_table_json_yaml(name):
    args = RUNS[name]
    table = run(*args)
    assert table.exit_code == 0, table.output
    as_json = run(*args, "-o", "json")
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    as_yaml = run(*args, "--output", "yaml")
    assert as_yaml.exit_code == 0, as_yaml.output
    if name != "topology":   # topology's yaml is NodeResourceTopology objects, its json a report
        assert _strip_timings(yaml.safe_load(as_yaml.output)) == _strip_timings(data)


def _strip_timings(data):
    if isinstance(data, dict):
        return {k: _strip_timings(v) for k, v in data.items() if k not in ("wall_ms",)}
    if isinstance(data, list):
        return [_strip_timings(v) for v in data]
    return data


@pytest.mark.parametrize("name", sorted(RUNS))
@pytest.mark.parametrize("bad", [["--no-such-option"], ["-o", "xml"]])
def test_parse_errors_are_one_line_exit_2_without_usage(name, bad):
    result = run(*RUNS[name], *bad)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "Usage:" not in result.output


def test_a_missing_required_option_is_one_line():
    result = run("place", "--topology", TOPOLOGY)
    assert result.exit_code == 2
    assert result.output.strip() == "Error: Missing option '--workloads'."


@pytest.mark.parametrize("name", ["demo", "place", "simulate"])
def test_unknown_policy_names_the_closest_and_the_known(name):
    result = run(*RUNS[name], "--policy", "bestfit")
    assert result.exit_code == 2
    line = result.output.strip()
    assert "\n" not in line
    assert "unknown policy 'bestfit' (did you mean 'best-fit'?)" in line
    assert "vector-pack" in line   # the known names follow
    result = run(*RUNS[name], "--policy", "zzz")
    assert result.exit_code == 2 and "did you mean" not in result.output


def test_help_and_version_still_exit_0():
    assert run("--help").exit_code == 0
    assert run("place", "--help").exit_code == 0
    result = run("--version")
    assert result.exit_code == 0 and numasched.__version__ in result.output


def test_policies_lists_every_policy_one_line_each():
    result = run("policies")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    for name in policies.names():
        assert sum(line.split()[0] == name for line in lines if line.strip()) == 1, name
    esxi = next(line for line in lines if line.startswith("esxi "))
    assert esxi.split()[1:5] == ["preset", "best-fit", "restricted", "spread"]
    data = json.loads(run("policies", "-o", "json").output)
    assert [r["name"] for r in data] == policies.names()
    by_name = {r["name"]: r for r in data}
    assert by_name["best-fit"]["kind"] == "score" and by_name["best-fit"]["numa"] is None
    assert by_name["vector-pack"]["order"] == "fill"


def test_place_lists_pending_first_with_the_reasons_meaning():
    result = run(*RUNS["place"], "--numa", "restricted")
    assert result.exit_code == 0
    rows = [line.split() for line in result.output.splitlines()
            if line.startswith(("shop/", "vms/", "batch/"))]
    assert len(rows) == 13
    assert rows[0][0] == "shop/giant" and rows[0][-1] == "too-large"
    assert all(r[-1] == "placed" for r in rows[1:])
    assert "too-large 1: larger than any host could ever hold under its NUMA mode" in \
        " ".join(result.output.split())
    # under the kubelets' own alignment the VM is pending too: both come first, in input order
    statuses = [line.split()[-1] for line in run(*RUNS["place"]).output.splitlines()
                if line.startswith(("shop/", "vms/", "batch/"))]
    assert statuses[:2] == ["too-large", "too-large"] and set(statuses[2:]) == {"placed"}
    data = json.loads(run(*RUNS["place"], "-o", "json").output)
    assert data["placements"][-1]["workload"] == "shop/giant"   # data keeps the input order


@pytest.mark.parametrize("policy,numa,header,used", [
    ("best-fit", None, "numa per pod, as its host's kubelet would align it", "restricted"),
    ("best-fit", "best-effort", "numa best-effort (--numa)", "best-effort"),
    ("linux", "restricted", "numa none (set by policy linux)", "none"),
    ("esxi", None, "numa restricted (set by policy esxi)", "restricted"),
])
def test_place_header_shows_the_mode_used(policy, numa, header, used):
    args = [*RUNS["place"], "--policy", policy] + (["--numa", numa] if numa else [])
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert header in result.output.splitlines()[0]
    data = json.loads(run(*args, "-o", "json").output)
    assert data["settings"]["numa"] == used
    modes = {r["numa"] for r in data["placements"] if r["workload"].startswith("shop/web")}
    assert modes == ({"none"} if numa is None and policy == "best-fit" else {used})


def test_place_on_an_inventory_takes_the_hosts_topology_manager_policy():
    result = run("place", "--topology", str(EXAMPLES / "inventory.yaml"), "--workloads", WORKLOADS)
    assert result.exit_code == 0, result.output
    assert "numa per pod, as its host's kubelet would align it" in result.output.splitlines()[0]
    data = json.loads(run("place", "--topology", str(EXAMPLES / "inventory.yaml"), "--workloads",
                          WORKLOADS, "-o", "json").output)
    assert data["numa_default"] == {"mode": "single-numa-node", "from": "topologyManagerPolicy",
                                    "per_pod": True}


def test_fail_on_pending_exits_1_after_the_report(tmp_path):
    result = run(*RUNS["place"], "--fail-on-pending")
    assert result.exit_code == 1
    assert "shop/giant" in result.output
    assert "2 workload(s) pending (--fail-on-pending)" in result.output
    as_json = run(*RUNS["place"], "--fail-on-pending", "-o", "json")
    assert as_json.exit_code == 1
    assert json.loads(as_json.output)["summary"]["pending"] == 2   # stdout stays pure JSON
    small = tmp_path / "small.yaml"
    small.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n"
                     "  - name: a\n    resources: {requests: {cpu: '1', memory: 1Gi}}\n")
    result = run("place", "--topology", TOPOLOGY, "--workloads", str(small), "--fail-on-pending")
    assert result.exit_code == 0, result.output


def test_tables_do_not_wrap_when_piped():
    long_host = "ip-192-167-190-41.us-gov-west-1.compute.internal"
    for args in (RUNS["topology"], RUNS["place"]):
        result = run(*args, env={"COLUMNS": "40"})
        assert result.exit_code == 0
        lines = result.output.splitlines()
        notes = [line for line in lines if line.startswith("note: ")]
        assert any(line.endswith("all of it assumed free") for line in notes)   # one line each
        assert all(lines[i + 1].startswith(("note: ", "warning: "))
                   for i, line in enumerate(lines[:-1]) if line.startswith("note: "))
        if args is RUNS["topology"]:
            assert any(line.startswith(long_host) for line in lines)


@pytest.mark.parametrize("policy", ["esxi", "linux", "vector-pack"])
def test_demo_takes_any_preset(policy):
    result = run("demo", *SMALL_DEMO, "--policy", policy, "-o", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    fixed = policies.get(policy).numa
    assert report["parameters"]["numa"] == (fixed or "restricted")
    assert report["parameters"]["numa_from"] == ("policy" if fixed else "option")
    assert report["placement"]["settings"]["policy"] == policy
    # the comparison still varies the mode, keeping the preset's other choices
    modes = {m: r["settings"]["numa"] for m, r in report["comparison"].items()}
    assert modes == {m: m for m in modes}
    assert {r["settings"]["node"] for r in report["comparison"].values()} == \
        {policies.get(policy).node or "pack"}


def test_demo_json_alias_and_table_header():
    alias = run("demo", *SMALL_DEMO, "--json")
    assert alias.exit_code == 0
    assert json.loads(alias.output)["parameters"]["hosts"] == 6
    table = run("demo", *SMALL_DEMO, "--policy", "linux")
    assert "Placement under numa=none (set by policy linux)" in table.output


def test_pacific_adds_rows_for_other_policies():
    result = run("pacific", *SMALL_DEMO, "--policy", "kubelet-restricted", "--policy", "spread",
                 "-o", "yaml")
    assert result.exit_code == 0, result.output
    report = yaml.safe_load(result.output)
    assert [r["policy"] for r in report["rows"]] == ["esxi", "linux", "kubelet-restricted",
                                                     "spread"]
    spread = report["rows"][-1]
    assert spread["vs_linux"] == pytest.approx(spread["relative_throughput"]
                                               / report["rows"][1]["relative_throughput"])
    result = run("pacific", *SMALL_DEMO, "--policy", "esx")
    assert result.exit_code == 2 and "did you mean 'esxi'?" in result.output
