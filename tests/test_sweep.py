"""Sweeps and cells on real Dask workers (LocalCluster processes).

One two-worker LocalCluster is shared by the module; the kill test starts its own, because it
SIGKILLs a worker process in the middle of a sweep.
"""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

try:
    import distributed  # noqa: F401
    import pandas as pd
except ImportError:   # the distributed extra is missing
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("needs the distributed extra: pip install 'numasched[distributed]'",
                allow_module_level=True)

from click.testing import CliRunner

import numasched
from numasched import place
from numasched.cli import cli
from numasched.evaluation import sweep as sw
from numasched.evaluation import workloads
from numasched.io.report import place_report
from numasched.io.topology import read_topology
from numasched.io.trace import parse_trace
from numasched.io.workloads import read_workloads

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples"
PROBE = Path(__file__).with_name("sweep_probe.py")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def client():
    with sw.connect(workers=2) as c:
        c.upload_file(str(PROBE))   # the counting inputs of test_large_inputs_travel_once
        pids = set(c.run(os.getpid).values())
        assert len(pids) == 2 and os.getpid() not in pids
        yield c
    assert_gone(pids)


def assert_gone(pids) -> None:
    """Every process of ``pids`` ends within 10 s (killed or reaped: a zombie counts as alive
    only until its parent, the nanny, reaps it)."""
    deadline = time.monotonic() + 10
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(alive(p) for p in pids), "worker processes outlived their LocalCluster"


def short_trace(rows: int = 150):
    """The first ``rows`` requests of the example trace (about half a second per replay)."""
    lines = (EXAMPLES / "trace.csv").read_text(encoding="utf-8").splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("arrival"))
    return parse_trace("\n".join(lines[header:header + 1 + rows]), "short-trace")


def without_timing(frame):
    return frame.drop(columns=list(sw.TIMING_COLUMNS))


# --- the core stays light --------------------------------------------------------------------
def test_import_numasched_does_not_import_dask():
    code = ("import sys, numasched, numasched.cli; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('dask', 'distributed', 'pandas', 'pyarrow')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "[]"


def test_missing_extra_is_a_one_line_error():
    code = ("import sys; sys.modules['distributed'] = None; "
            "from numasched.cli import main; main(['sweep', '--hosts', '3'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.returncode == 2
    assert out.stderr.splitlines() == [
        "Error: sweeps need distributed (the distributed extra): "
        "pip install 'numasched[distributed]'"]
    code = "import sys; sys.modules['pandas'] = None; import numasched; numasched.sweep()"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stderr.strip().splitlines()[-1] == (
        "ImportError: sweeps need pandas (the distributed extra): "
        "pip install 'numasched[distributed]'")


def test_workers_import_this_checkout(client):
    files = client.run(lambda: __import__("numasched").__file__)
    assert set(files.values()) == {numasched.__file__}


# --- the grid --------------------------------------------------------------------------------
GRID = {"policy": ["best-fit", "linux", "esxi"], "numa": ["restricted", "none"],
        "hosts": [18, 24], "workload": ["mixed:300:300"], "seed": 2}


def test_the_grid_expands_in_order_and_keeps_identical_runs_once():
    runs = sw.expand(GRID)
    # best-fit x 2 modes, linux and esxi fix their mode: 4 choices x 2 host counts x 2 seeds
    assert len(runs) == 16
    keys = [(r.params["policy"], r.params["numa"], r.params["hosts"], r.params["seed"]) for r in runs]
    assert keys[:4] == [("best-fit", "restricted", 18, 0), ("best-fit", "restricted", 18, 1),
                        ("best-fit", "restricted", 24, 0), ("best-fit", "restricted", 24, 1)]
    assert {(p, n) for p, n, _, _ in keys} == {("best-fit", "restricted"), ("best-fit", "none"),
                                               ("linux", "none"), ("esxi", "restricted")}
    assert {r.params["node"] for r in runs if r.params["policy"] == "esxi"} == {"spread"}
    # one value stands for a list of one, objects included
    (one,) = sw.expand({"workload": workloads.mixed(5, 5), "cluster": workloads.demo_cluster(3),
                        "policy": "esxi", "seed": 4})
    assert (one.params["workload"], one.params["cluster"], one.params["hosts"],
            one.params["seed"]) == ("workload-0", "cluster-0", 3, None)
    # a file workload is the same for every seed: it runs once per point, seed NA
    fixed = sw.expand({"workload": [str(EXAMPLES / "workloads.yaml")], "hosts": [4], "seed": 3})
    assert [r.params["seed"] for r in fixed] == [None]
    assert [r.params["seed"] for r in sw.expand({"workload": [str(EXAMPLES / "workloads.yaml")],
                                                 "hosts": [4], "seed": 2, "refine": 0.01})] == [0, 1]


@pytest.mark.parametrize("grid, match", [
    ({"policies": ["best-fit"]}, "unknown grid axis 'policies'"),
    ({"policy": ["best-fits"]}, "unknown policy 'best-fits'"),
    ({"numa": ["strict"]}, "numa"),
    ({"shape": ["2x32"]}, r"host shape '2x32': expected NODESxCORESc/MEMORY"),
    ({"shape": ["0x32c/256Gi"]}, "the node count must be 1 to 64"),
    ({"hosts": [0]}, "hosts: expected an integer >= 1, got 0"),
    ({"hosts": []}, "hosts: the axis is empty"),
    ({"seed": 0}, "a count of seeds must be >= 1"),
    ({"seed": [-1]}, "seed: expected an integer >= 0, got -1"),
    ({"refine": [-1]}, "refine must be a non-negative number"),
    ({"workload": ["mixed:10"]}, "workload 'mixed:10': expected demo"),
    ({"workload": ["/nonexistent/w.yaml"]}, "no such file or directory"),
    ({"workload": [3]}, "workload 'workload-0': expected"),
    ({"cluster": ["x"], "hosts": [3]}, "either cluster or shape and hosts"),
])
def test_bad_grids_are_refused_before_anything_runs(grid, match):
    with pytest.raises(ValueError, match=match):
        sw.expand(grid)


def test_bad_dask_arguments_are_refused_before_a_cluster_starts(client):
    with pytest.raises(ValueError, match="workers applies to the local cluster only"):
        sw.sweep({"hosts": [3]}, client=client, workers=2)
    with pytest.raises(ValueError, match="give client or scheduler, not both"):
        sw.sweep({"hosts": [3]}, client=client, scheduler=client.scheduler.address)
    with pytest.raises(ValueError, match="workers: expected an integer >= 0, got -1"):
        sw.sweep({"hosts": [3]}, workers=-1)


def test_sweep_rows_are_the_local_runs_in_grid_order_and_reproduce(client):
    frame = sw.sweep(GRID, client=client)
    runs = sw.expand(GRID)
    assert list(frame.columns) == list(sw.PARAMETER_COLUMNS) + list(sw.RESULT_COLUMNS)
    assert len(frame) == len(runs)
    # every row is what the same run gives in this process, without Dask
    for i, run in enumerate(runs):
        topology = sw.uniform_topology(run.cluster.shape, run.cluster.hosts)
        requests = sw.generated_workload(*run.workload.generator, run.params["seed"])
        local = sw._table([sw.run_one(run.params, topology, requests)])
        pd.testing.assert_frame_equal(without_timing(frame.iloc[[i]]).reset_index(drop=True),
                                      without_timing(local))
    # spot-check against place() itself
    row = frame[(frame.policy == "linux") & (frame.hosts == 18) & (frame.seed == 1)].iloc[0]
    p = place(workloads.demo_cluster(18), workloads.mixed(300, 300, 1), policy="linux")
    s = p.summary()
    assert (row.placed, row.pending, row.hosts_used, row.hosts_lower_bound) == (
        s["placed"], s["pending"], s["hosts_used"], s["hosts_lower_bound"])
    assert row.locality == s["locality"]
    assert row.pending_no_numa_fit + row.pending_insufficient_cpu + \
        row.pending_insufficient_memory + row.pending_too_large == row.pending
    # a re-run gives the same table (wall time aside)
    again = sw.sweep(GRID, client=client)
    assert sw.same_results(frame, again)
    assert sw.same_results(frame, sw.sweep(GRID, workers=0))   # in-process: the same table
    assert not sw.same_results(frame, again.assign(locality=again.locality * 0.5))


def test_large_inputs_travel_once_per_worker(client):
    from sweep_probe import CountingCluster, CountingRequests, count

    rng = np.random.default_rng(3)
    req_token, cl_token = f"r-{uuid.uuid4()}", f"c-{uuid.uuid4()}"
    requests = CountingRequests(req_token, rng.integers(500, 8000, 20_000),
                                rng.integers(2**28, 2**33, 20_000))
    cluster = CountingCluster(cl_token, np.full((400, 2), 32_000), np.full((400, 2), 256 * 2**30))
    grid = {"cluster": {"big": cluster}, "workload": {"many": requests},
            "policy": ["first-fit", "best-fit", "worst-fit", "balanced", "dot-product"],
            "numa": ["restricted", "best-effort", "none"], "node": ["pack", "spread"]}
    frame = sw.sweep(grid, client=client)
    assert len(frame) == 30 and (frame.requests == 20_000).all()
    for token in (req_token, cl_token):
        per_worker = client.run(count, token)
        # 30 runs on 2 workers, but each worker unpickled each input at most once
        assert sum(per_worker.values()) >= 1
        assert max(per_worker.values()) == 1, per_worker


def test_replays_and_manifests_and_named_clusters(client):
    trace = short_trace(60)
    frame = sw.sweep({"cluster": {"inv": str(EXAMPLES / "inventory.yaml")},
                      "workload": {"trace": trace, "manifests": str(EXAMPLES / "workloads.yaml")},
                      "policy": ["best-fit", "spread"]}, client=client)
    assert frame[["workload", "kind", "policy", "order", "hosts"]].values.tolist() == [
        ["trace", "replay", "best-fit", "given", 4], ["manifests", "place", "best-fit", "decreasing", 4],
        ["trace", "replay", "spread", "given", 4], ["manifests", "place", "spread", "decreasing", 4]]
    replays = frame[frame.kind == "replay"]
    assert (replays.requests == 60).all() and replays.hosts_used.isna().all()
    assert (replays.placed + replays.never_placed == 60).all()
    assert replays.locality.between(0, 1).all() and replays.mean_pending.notna().all()


# --- cells -----------------------------------------------------------------------------------
def make_cells(root: Path) -> Path:
    (root / "east").mkdir(parents=True)
    (root / "east" / "topology.yaml").write_text((EXAMPLES / "inventory.yaml").read_text())
    (root / "east" / "workloads.yaml").write_text((EXAMPLES / "workloads.yaml").read_text())
    (root / "west").mkdir()
    (root / "west" / "topology.csv").write_text((EXAMPLES / "inventory.csv").read_text())
    (root / "west" / "workloads.yaml").write_text((EXAMPLES / "workloads.yaml").read_text())
    (root / "lab").mkdir()
    (root / "lab" / "topology.yaml").write_text((EXAMPLES / "inventory.yaml").read_text())
    lines = (EXAMPLES / "trace.csv").read_text().splitlines()
    (root / "lab" / "trace.csv").write_text("\n".join(lines[:40]) + "\n")
    return root


def test_cells_per_cell_and_in_total(client, tmp_path):
    root = make_cells(tmp_path / "cells")
    per_cell, totals = sw.cells(root, client=client)
    assert per_cell["cell"].tolist() == ["east", "lab", "west"]
    assert per_cell["kind"].tolist() == ["place", "replay", "place"]
    placed = per_cell[per_cell.kind == "place"]
    one = place(read_topology(root / "east" / "topology.yaml").cluster,
                read_workloads(root / "east" / "workloads.yaml").requests)
    assert placed.iloc[0].placed == one.summary()["placed"]
    total = totals.set_index("kind")
    assert total.loc["place", "cells"] == 2
    for column in ("requests", "placed", "pending", "hosts_used", "placed_mem"):
        assert total.loc["place", column] == placed[column].sum()
    weights = placed.placed_mem.astype(float)
    assert total.loc["place", "locality"] == pytest.approx(
        (placed.locality * weights).sum() / weights.sum())
    assert total.loc["replay", "requests"] == per_cell[per_cell.kind == "replay"].requests.sum()


CELL_INVENTORY = """\
hosts:
- name: a
  nodes: [{cpu: 8, memory: 16Gi}, {cpu: 8, memory: 16Gi}]
- name: b
  nodes: [{cpu: 8, memory: 16Gi}, {cpu: 8, memory: 16Gi}]
"""
CELL_MANIFESTS = """\
apiVersion: v1
kind: Pod
metadata: {name: old, namespace: prod}
spec:
  nodeName: a
  containers: [{name: c, resources: {requests: {cpu: "7", memory: 8Gi}}}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: prod}
spec:
  template:
    spec:
      containers: [{name: c, resources: {requests: {cpu: "1", memory: 1Gi}}}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: prod}
spec:
  replicas: 5
  template:
    spec:
      containers: [{name: c, resources: {requests: {cpu: "4", memory: 4Gi}}}]
"""


def test_a_cell_reads_manifests_as_place_does(client, tmp_path):
    """DaemonSets get a pod per host and bound pods are existing load, as in numasched place."""
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "topology.yaml").write_text(CELL_INVENTORY)
    (tmp_path / "c" / "workloads.yaml").write_text(CELL_MANIFESTS)
    per_cell, _ = sw.cells(tmp_path, client=client)
    topology = read_topology(tmp_path / "c" / "topology.yaml")
    work = read_workloads(tmp_path / "c" / "workloads.yaml", topology)
    _, placement = place_report(topology, work, numa="restricted")
    s = placement.summary()
    row = per_cell.iloc[0]
    assert row.requests == 7 == s["requests"]    # 2 DaemonSet pods + 5 replicas; the bound pod is load
    assert (row.placed, row.pending, row.hosts_used) == (s["placed"], s["pending"], s["hosts_used"])
    assert row.locality == s["locality"]
    # the bound pod's 7 cores on host a change the outcome: ignoring them, host a's agent waits
    assert (row.pending, place(topology.cluster, work.requests).summary()["pending"]) == (0, 1)


@pytest.mark.parametrize("layout, match", [
    ({"a/topology.yaml": "inventory.yaml"}, "needs exactly one of workloads.yaml"),
    ({"a/workloads.yaml": "workloads.yaml"}, "no topology"),
    ({"a/topology.yaml": "inventory.yaml", "a/topology.csv": "inventory.csv",
      "a/trace.csv": "trace.csv"}, "more than one topology"),
    ({}, "no cells"),
])
def test_bad_cell_directories_are_refused(tmp_path, layout, match):
    for name, source in layout.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text((EXAMPLES / source).read_text())
    with pytest.raises(ValueError, match=match):
        sw.read_cells(tmp_path)


# --- the command line ------------------------------------------------------------------------
def run_cli(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_cli_sweep_writes_csv_json_parquet_and_a_plot(client, tmp_path):
    address = client.scheduler.address
    common = ["sweep", "--policies", "best-fit,worst-fit", "--hosts", "10,14",
              "--workload", "mixed:100:100", "--seeds", "2", "--scheduler", address, "-q"]
    out = run_cli(*common, "-o", "csv")
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].startswith("kind,workload,cluster,shape,hosts,policy,") and len(lines) == 9
    out = run_cli(*common, "-o", "json")
    records = json.loads(out.output)
    assert [(r["policy"], r["hosts"], r["seed"]) for r in records][:3] == [
        ("best-fit", 10, 0), ("best-fit", 10, 1), ("best-fit", 14, 0)]
    parquet, png = tmp_path / "s.parquet", tmp_path / "s.png"
    out = run_cli(*common, "-o", "parquet", "--output-file", str(parquet), "--plot", str(png),
                  "--metric", "hosts_used")
    assert out.exit_code == 0, out.output
    back = pd.read_parquet(parquet)
    assert sw.same_results(back, pd.DataFrame.from_records(records).astype(back.dtypes.to_dict()))
    assert png.read_bytes()[:4] == b"\x89PNG"
    out = run_cli(*common)
    assert out.exit_code == 0 and "Sweep: 8 runs" in out.output and "worst-fit" in out.output
    # a table of runs with and without a seed, on named clusters
    out = run_cli("sweep", "--topology", str(EXAMPLES / "topology"), "--topology",
                  str(EXAMPLES / "inventory.csv"), "--workload", str(EXAMPLES / "workloads.yaml"),
                  "--workload", "vms:20", "--seeds", "2", "--scheduler", address, "-q")
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].startswith("Sweep: 6 runs")
    assert [line.split()[-8] for line in lines[3:]] == ["-", "0", "1"] * 2   # the seed column


@pytest.mark.parametrize("args, match", [
    (["--policies", "nope"], "Error: unknown policy 'nope'"),
    (["--hosts", "3,x"], "Error: --hosts: expected a comma-separated list of numbers"),
    (["--hosts", "3", "--topology", "docs/examples/inventory.yaml"], "Error: --topology replaces"),
    (["--workers", "1", "--scheduler", "tcp://127.0.0.1:1"], "Error: --workers starts a local"),
    (["--hosts", "3", "-o", "parquet"], "Error: -o parquet writes a binary file"),
    (["--metric", "colour", "--plot", "/tmp/x.png", "--hosts", "3"], "Error: metric 'colour'"),
])
def test_cli_sweep_refuses_bad_options(client, args, match):
    extra = [] if "--workers" in args else ["--scheduler", client.scheduler.address]
    out = CliRunner().invoke(cli, ["sweep", "-q", *args, *extra])
    assert out.exit_code == 2 and match in out.output, out.output


def test_cli_cells(client, tmp_path):
    root = make_cells(tmp_path / "cells")
    out = run_cli("cells", str(root), "--scheduler", client.scheduler.address, "-o", "json")
    data = json.loads(out.output)
    assert [c["cell"] for c in data["cells"]] == ["east", "lab", "west"]
    assert [t["kind"] for t in data["totals"]] == ["place", "replay"]
    out = run_cli("cells", str(root), "--scheduler", client.scheduler.address, "-q")
    assert "Total" in out.output and "east" in out.output


# --- fault tolerance -------------------------------------------------------------------------
KILL_GRID = {"cluster": {"three": sw.topology_of(workloads.demo_cluster(3))},
             "policy": ["best-fit", "worst-fit", "balanced"], "numa": ["restricted", "none"]}


def executing(dask_worker):
    """(key, seconds running) of the tasks a worker is executing now."""
    now = time.time()
    return [(ts.key, now - ts.start_time) for ts in dask_worker.state.executing if ts.start_time]


def sweep_with_kills(grid, kill_after: float) -> tuple:
    """The sweep on its own 2-worker LocalCluster, with one worker SIGKILLed while it executes
    a run that has been running for ``kill_after`` seconds; (table, the remove-worker event)."""
    result: dict = {}
    with sw.connect(workers=2) as c:
        pids = c.run(os.getpid)
        thread = threading.Thread(target=lambda: result.update(frame=sw.sweep(grid, client=c)))
        thread.start()
        victim = None
        deadline = time.monotonic() + 60
        while victim is None and thread.is_alive() and time.monotonic() < deadline:
            for address, tasks in c.run(executing).items():
                if any(k.startswith("run_one") and age >= kill_after for k, age in tasks):
                    victim = address
                    os.kill(pids[address], signal.SIGKILL)
                    break
            time.sleep(0.01)
        thread.join(120)
        assert victim is not None, "no run was seen executing: nothing was killed"
        assert not thread.is_alive() and "frame" in result
        events = [e for _, e in c.get_events(victim) if e.get("action") == "remove-worker"]
        started = set(pids.values()) | set(c.run(os.getpid).values())   # with the restarted one
    assert_gone(started)
    return result["frame"], events


def test_a_worker_killed_mid_sweep_loses_nothing(client):
    grid = {**KILL_GRID, "workload": {"trace": short_trace(150)}}
    undisturbed = sw.sweep(grid, client=client)
    frame, events = sweep_with_kills(grid, kill_after=0.05)
    # the killed worker was executing a run: the scheduler had to run it again elsewhere
    assert events and any(k.startswith("run_one") for k in events[0]["processing-tasks"])
    assert sw.same_results(frame, undisturbed)


@pytest.mark.slow
@pytest.mark.parametrize("attempt", range(5))
def test_a_worker_killed_at_random_points_loses_nothing(client, attempt):
    grid = {**KILL_GRID, "workload": {"trace": short_trace(150)}}
    undisturbed = sw.sweep(grid, client=client)
    # A random point within the shortest run (as long as the machine takes for one; a fixed
    # range in seconds outlasted every run once the kernels got faster, and nothing was killed)
    shortest = float(undisturbed["wall_ms"].min()) / 1000.0
    kill_after = random.Random(attempt).uniform(0.0, 0.8) * shortest
    frame, events = sweep_with_kills(grid, kill_after=kill_after)
    assert events and sw.same_results(frame, undisturbed)
