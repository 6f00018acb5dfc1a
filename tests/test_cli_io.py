"""The ``numasched`` CLI's topology, place and simulate commands, end to end.

A few tests run the real console script in a subprocess (each costs about a second); the rest
use click's in-process runner.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import numasched
from numasched.cli import cli

REPO = Path(numasched.__file__).resolve().parents[1]
GiB = 2**30

NRT = """\
apiVersion: topology.node.k8s.io/v1alpha2
kind: NodeResourceTopology
metadata: {{name: {name}}}
attributes:
- {{name: topologyManagerPolicy, value: single-numa-node}}
zones:
- name: node-0
  type: Node
  costs: [{{name: node-0, value: 10}}, {{name: node-1, value: 21}}]
  resources:
  - {{name: cpu, capacity: "16", allocatable: "16", available: "{free0}"}}
  - {{name: memory, capacity: "68719476736", allocatable: "68719476736", available: 64Gi}}
- name: node-1
  type: Node
  costs: [{{name: node-0, value: 21}}, {{name: node-1, value: 10}}]
  resources:
  - {{name: cpu, capacity: "16", allocatable: "16", available: "16"}}
  - {{name: memory, capacity: 64Gi, allocatable: 64Gi, available: 64Gi}}
"""

WORKLOADS = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 3
  template:
    spec:
      containers:
      - name: web
        resources: {requests: {cpu: "6", memory: 8Gi}, limits: {cpu: "6", memory: 8Gi}}
---
apiVersion: v1
kind: Pod
metadata: {name: huge, namespace: shop}
spec:
  containers:
  - name: x
    resources: {requests: {cpu: "20", memory: 1Gi}, limits: {cpu: "20", memory: 1Gi}}
---
apiVersion: v1
kind: ResourceQuota
metadata: {name: q, namespace: shop}
spec: {hard: {cpu: "100"}}
"""


def console_script() -> list[str]:
    """The installed ``numasched`` console script (the entry point users run)."""
    script = Path(sys.executable).parent / "numasched"
    if script.exists():
        return [str(script)]
    found = shutil.which("numasched")
    if found:
        return [found]
    pytest.fail("the numasched console script is not installed (pip install -e .)")


def run(*args: str) -> subprocess.CompletedProcess:
    """Run the console script on this checkout (PYTHONPATH first, whatever was installed)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return subprocess.run(console_script() + list(args), capture_output=True, text=True,
                          timeout=120, env=env)


@pytest.fixture
def cluster_dir(tmp_path) -> Path:
    d = tmp_path / "topology"
    d.mkdir()
    (d / "a.yaml").write_text(NRT.format(name="worker-a", free0="4"))
    (d / "b.yaml").write_text(NRT.format(name="worker-b", free0="16"))
    return d


@pytest.fixture
def workloads_file(tmp_path) -> Path:
    path = tmp_path / "apps.yaml"
    path.write_text(WORKLOADS)
    return path


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


# --------------------------------------------------------------------------------------------
# Through the console script
# --------------------------------------------------------------------------------------------
def test_place_json_end_to_end(cluster_dir, workloads_file):
    proc = run("place", "--topology", str(cluster_dir), "--workloads", str(workloads_file),
               "--output", "json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["numa_default"] == {"mode": "single-numa-node", "from": "topologyManagerPolicy",
                                     "per_pod": True}
    rows = {r["workload"]: r for r in report["placements"]}
    assert list(rows) == ["shop/web-0", "shop/web-1", "shop/web-2", "shop/huge"]
    # best-fit packs the fuller worker-a, whose node 0 has only 4 free cores: its node 1 takes
    # two 6-core replicas (12 of 16), the third goes to worker-b; each stays on one node
    placed = sorted((r["host"], r["nodes"]) for r in rows.values() if r["status"] == "placed")
    assert placed == [("worker-a", [1]), ("worker-a", [1]), ("worker-b", [0])]
    assert rows["shop/huge"]["status"] == "too-large" and rows["shop/huge"]["host"] is None
    assert rows["shop/web-0"]["cpu_m"] == 6000 and rows["shop/web-0"]["memory_bytes"] == 8 * GiB
    assert report["summary"]["placed"] == 3 and report["summary"]["locality"] == 1.0
    assert any("ResourceQuota skipped" in n for n in report["notes"])


def test_topology_json_end_to_end(cluster_dir):
    proc = run("topology", str(cluster_dir), "-o", "json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert [h["name"] for h in report["hosts"]] == ["worker-a", "worker-b"]
    node0 = report["hosts"][0]["nodes"][0]
    assert (node0["cpu_m"], node0["free_cpu_m"], node0["memory_bytes"]) == (16_000, 4000, 64 * GiB)
    assert node0["distance"] == [10, 21]


def test_malformed_yaml_is_one_line_and_exit_2(tmp_path, workloads_file):
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: NodeResourceTopology\nzones: [\n")
    proc = run("place", "--topology", str(bad), "--workloads", str(workloads_file))
    assert proc.returncode == 2
    line = one_error_line(proc.stderr)
    assert f"{bad}: invalid YAML" in line and "line 3" in line
    assert proc.stdout == ""


# --------------------------------------------------------------------------------------------
# In process
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make, message", [
    (lambda d, w: ["place", "--topology", str(d / "missing"), "--workloads", str(w)],
     "missing: no such file or directory"),
    (lambda d, w: ["place", "--topology", str(d), "--workloads", str(w.parent / "none.yaml")],
     "none.yaml: no such file or directory"),
    (lambda d, w: ["topology", str(d / "missing.csv")], "missing.csv: no such file or directory"),
    (lambda d, w: (w.write_text(WORKLOADS.replace("memory: 8Gi", "memory: 8GB")),
                   ["place", "--topology", str(d), "--workloads", str(w)])[1],
     "spec.template.spec.containers[0].resources.requests.memory: invalid quantity '8GB' "
     "(unknown unit 'GB'"),
    (lambda d, w: ((d / "a.yaml").write_text(NRT.format(name="worker-a", free0="4 cores")),
                   ["topology", str(d)])[1],
     "zones[0].resources[0].available: invalid quantity '4 cores'"),
    (lambda d, w: ["place", "--topology", str(d), "--workloads", str(w), "--policy", "nope"],
     "unknown policy 'nope'; known: first-fit"),
    (lambda d, w: ["topology", "--sysfs", str(d / "absent")], "absent: not found"),
])
def test_user_errors_are_one_line_and_exit_2(cluster_dir, workloads_file, make, message):
    result = CliRunner().invoke(cli, make(cluster_dir, workloads_file))
    assert result.exit_code == 2, result.output
    assert message in one_error_line(result.stderr)
    assert result.stdout == ""


def test_place_table_and_yaml(cluster_dir, workloads_file):
    runner = CliRunner()
    result = runner.invoke(cli, ["place", "--topology", str(cluster_dir), "--workloads",
                                 str(workloads_file), "--numa", "restricted"])
    assert result.exit_code == 0, result.output
    assert "numa restricted (--numa)" in " ".join(result.output.split())
    assert "shop/huge" in result.output
    # restricted lets the 20-core pod span both 16-core nodes of a host
    assert "0,1" in result.output and "placed / pending           4 / 0" in result.output
    result = runner.invoke(cli, ["place", "--topology", str(cluster_dir), "--workloads",
                                 str(workloads_file), "-o", "yaml", "--policy", "worst-fit"])
    assert result.exit_code == 0, result.output
    report = yaml.safe_load(result.stdout)
    assert report["settings"]["policy"] == "worst-fit" and report["summary"]["requests"] == 4


def test_place_plot_writes_a_png(cluster_dir, workloads_file, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "occ.png"
    result = CliRunner().invoke(cli, ["place", "--topology", str(cluster_dir), "--workloads",
                                      str(workloads_file), "--plot", str(png), "-o", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["plot"] == str(png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_topology_of_this_machine_and_of_a_sysfs_tree(tmp_path):
    for node, cpus in ((0, "0-3"), (1, "4-7")):
        d = tmp_path / "node" / f"node{node}"
        d.mkdir(parents=True)
        (d / "cpulist").write_text(cpus + "\n")
        (d / "meminfo").write_text(f"Node {node} MemTotal: 8388608 kB\nNode {node} MemFree: 1024 kB\n")
        (d / "distance").write_text("10 21\n" if node == 0 else "21 10\n")
    runner = CliRunner()
    result = runner.invoke(cli, ["topology", "--sysfs", str(tmp_path / "node"), "-o", "json"])
    assert result.exit_code == 0, result.output
    nodes = json.loads(result.stdout)["hosts"][0]["nodes"]
    assert [(n["cpu_m"], n["memory_bytes"], n["cpulist"]) for n in nodes] == \
        [(4000, 8 * GiB, "0-3"), (4000, 8 * GiB, "4-7")]
    result = runner.invoke(cli, ["topology", "--sysfs", str(tmp_path / "node"), "-o", "yaml"])
    nrt = yaml.safe_load(result.stdout)
    assert nrt["kind"] == "NodeResourceTopology" and len(nrt["zones"]) == 2
    if Path("/sys/devices/system/node").is_dir():
        result = runner.invoke(cli, ["topology"])
        assert result.exit_code == 0, result.output
        assert "Topology from /sys/devices/system/node" in result.output


def test_place_on_the_documented_inventory_examples():
    docs = REPO / "docs" / "examples"
    runner = CliRunner()
    for inventory, names in (("inventory.csv", ["esx-01", "esx-02", "edge-01"]),
                             ("inventory.yaml", [f"rack-{i}" for i in range(4)])):
        result = runner.invoke(cli, ["place", "--topology", str(docs / inventory), "--workloads",
                                     str(docs / "workloads.yaml"), "-o", "json"])
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["topology"]["hosts"] == len(names)
        hosts = {r["host"] for r in report["placements"] if r["host"]}
        assert hosts and hosts <= set(names)
        assert report["summary"]["requests"] == 13     # 6 web + postgres + VM + 4 crunch + giant
