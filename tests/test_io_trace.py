"""Trace loading and replay through the controller, and the simulate command."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from numasched.cli import cli
from numasched.io.topology import read_topology
from numasched.io.trace import load_trace, parse_trace, replay

GiB = 2**30

INVENTORY = """\
hosts:
- name: h
  nodes: [{cpu: 4, memory: 16Gi}, {cpu: 4, memory: 16Gi}]
  distance: [[10, 21], [21, 10]]
"""

# One host of 2 nodes x 4 cores. a and b fill one node each; c waits until a leaves at t=10;
# d (a VM wider than a node, vNUMA) is refused until everything else is gone.
TRACE = """\
# a small trace
arrival,departure,cpu,memory,kind,namespace,name,numa,vnuma,priority
0,10,4,4Gi,Pod,web,a,,,
1,20,4,4Gi,Pod,web,b,,,
2,,4,2Gi,Pod,web,c,,,
3,25,6,8Gi,VirtualMachine,vms,d,,true,0
"""


@pytest.fixture
def files(tmp_path):
    topo = tmp_path / "inv.yaml"
    topo.write_text(INVENTORY)
    trace = tmp_path / "trace.csv"
    trace.write_text(TRACE)
    return topo, trace


def test_parse_trace_columns(files):
    t = load_trace(files[1])
    assert t.name == ("a", "b", "c", "d")
    assert t.arrival.tolist() == [0, 1, 2, 3]
    assert t.departure.tolist() == [10, 20, float("inf"), 25]
    assert t.cpu.tolist() == [4000, 4000, 4000, 6000]
    assert t.mem.tolist() == [4 * GiB, 4 * GiB, 2 * GiB, 8 * GiB]
    assert t.vnuma.tolist() == [False, False, False, True]
    vm = t.manifest(3)
    assert vm["kind"] == "VirtualMachine" and "guestMappingPassthrough" in \
        vm["spec"]["template"]["spec"]["domain"]["cpu"]["numa"]
    default_names = parse_trace("arrival,departure,cpu,memory,kind,namespace\n0,,1,1Gi,Pod,\n")
    assert default_names.name == ("pod-0",) and default_names.namespace == ("default",)


@pytest.mark.parametrize("row, message", [
    ("5,5,1,1Gi,Pod,web", r"line 2: departure '5' is not after the arrival '5'"),
    ("0,,1,1GB,Pod,web", r"line 2: memory: invalid quantity '1GB' \(unknown unit 'GB'"),
    ("0,,1,1Gi,Job,web", r"line 2: kind: expected one of Pod, VirtualMachine, got 'Job'"),
    ("x,,1,1Gi,Pod,web", r"line 2: arrival: expected a number, got 'x'"),
    ("0,,1,1Gi,Pod,Web", r"line 2: namespace: must be a DNS-1123 label, got 'Web'"),
    ("0,,0,1Gi,Pod,web", r"line 2: cpu: a request must be positive"),
])
def test_trace_errors_name_line_column_and_value(row, message):
    with pytest.raises(ValueError, match=r"^t\.csv: " + message):
        parse_trace("arrival,departure,cpu,memory,kind,namespace\n" + row + "\n", "t.csv")


def test_trace_header_and_duplicates():
    with pytest.raises(ValueError, match=r"missing namespace"):
        parse_trace("arrival,departure,cpu,memory,kind\n0,,1,1Gi,Pod\n")
    with pytest.raises(ValueError, match=r"unknown trace column\(s\) gpu"):
        parse_trace("arrival,departure,cpu,memory,kind,namespace,gpu\n0,,1,1Gi,Pod,a,1\n")
    with pytest.raises(ValueError, match=r"line 3: Pod a/x already appears on line 2"):
        parse_trace("arrival,departure,cpu,memory,kind,namespace,name\n0,,1,1Gi,Pod,a,x\n"
                    "1,,1,1Gi,Pod,a,x\n")


def test_replay_drives_the_controller_through_time(files):
    topo = read_topology(files[0])
    report = replay(topo, load_trace(files[1]), numa="restricted", backend="cython")
    s = report["series"]
    assert s["time"] == [0, 1, 2, 3, 10, 20, 25]
    # t=2: c waits (both nodes full); t=3: d waits too; t=10: a leaves, c takes its node;
    # t=20: b leaves, but d needs 3 cores on each node and c holds one: d still waits;
    # t=25: d departs without ever running
    assert s["pending"] == [0, 0, 1, 2, 1, 1, 0]
    assert s["running"] == [1, 2, 2, 2, 2, 1, 1]
    assert s["cpu_utilisation"] == [0.5, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5]
    assert s["mem_utilisation"] == [4 / 32, 8 / 32, 8 / 32, 8 / 32, 6 / 32, 2 / 32, 2 / 32]
    assert s["locality"] == [1.0] * 7
    summary = report["summary"]
    assert summary["placed"] == 3 and summary["never_placed"] == 1
    assert summary["placed_on_arrival"] == 2 and summary["max_wait"] == 8.0
    assert summary["max_pending"] == 2
    # time-weighted: pending 0 on [0,2), 1 on [2,3), 2 on [3,10), 1 on [10,25)
    assert summary["mean_pending"] == pytest.approx((0 * 2 + 1 * 1 + 2 * 7 + 1 * 15) / 25)


def test_replay_locality_under_numa_none(files):
    topo = read_topology(files[0])
    trace = parse_trace("arrival,departure,cpu,memory,kind,namespace\n0,,2,2Gi,Pod,web\n")
    report = replay(topo, trace, numa="none", backend="cython")
    assert report["series"]["locality"] == [0.5]   # spread evenly over both nodes: 1/2*1/2*2


def test_simulate_command_json_and_plot(files, tmp_path):
    from test_cli_io import run

    topo, trace = files
    png = tmp_path / "replay.png"
    args = ["simulate", "--topology", str(topo), "--trace", str(trace), "-o", "json"]
    try:
        import matplotlib  # noqa: F401
        args += ["--plot", str(png)]
    except ImportError:
        png = None
    proc = run(*args)               # the console script; no progress bar off a terminal
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["summary"]["never_placed"] == 1 and report["numa"] == "restricted"
    assert report["series"]["pending"] == [0, 0, 1, 2, 1, 1, 0]
    if png is not None:
        assert png.read_bytes()[:4] == b"\x89PNG"
    result = CliRunner().invoke(cli, ["simulate", "--topology", str(topo), "--trace", str(trace)])
    assert result.exit_code == 0, result.output
    assert "Trace replay" in result.output and "pending: max / mean" in result.output


def test_simulate_errors(files, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("arrival,departure,cpu,memory,kind,namespace\n0,,1,2XB,Pod,web\n")
    result = CliRunner().invoke(cli, ["simulate", "--topology", str(files[0]), "--trace", str(bad)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"Error: {bad}: line 2: memory: invalid quantity '2XB' "
                                     "(unknown unit 'XB'; known: 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', "
                                     "'Ei', 'n', 'u', 'm', 'k', 'M', 'G', 'T', 'P', 'E')")
