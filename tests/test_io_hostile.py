"""Hostile inputs: every reader refuses them in one line naming the file and the place, without
hanging, exhausting memory or printing a traceback (each test is the short reproducer of one
finding)."""
from __future__ import annotations

import os
import threading

import pytest

from numasched import codes
from numasched.control import Controller
from numasched.control.manifests import load_documents, workload_spec
from numasched.io import files, limits
from numasched.io import quantity as q
from numasched.io.topology import parse_cpulist, read_sysfs, read_topology
from numasched.io.trace import parse_trace
from numasched.io.workloads import read_workloads

POD = """apiVersion: v1
kind: Pod
metadata: {{name: web}}
spec:
  containers:
  - name: app
    resources:
      requests: {{cpu: "{cpu}", memory: "{mem}"}}
"""


def one_line(exc_info) -> str:
    text = str(exc_info.value)
    assert "\n" not in text and "Traceback" not in text
    return text


# --------------------------------------------------------------------------------------------
# Quantities
# --------------------------------------------------------------------------------------------
def test_a_20000_character_quantity_is_refused_at_once_and_the_error_is_short():
    value = "1" * 20_000 + "x"
    with pytest.raises(ValueError, match=r"^spec.cpu: invalid quantity .*longer than 64") as info:
        q.cpu_millicores(value, "spec.cpu")
    assert len(str(info.value)) < 200
    with limits.override(max_quantity_chars=30_000):   # linear even when allowed: no hang
        with pytest.raises(ValueError, match="not a number|unknown unit"):
            q.cpu_millicores("1" * 20_000 + ".5.", "spec.cpu")
        with pytest.raises(ValueError, match=r"^spec.cpu: .*more than 1000 digits"):
            q.cpu_millicores("1" * 20_000, "spec.cpu")


@pytest.mark.parametrize("value", ["１", "٣", "2\u0660", "1e\u0663"])
def test_non_ascii_digits_are_refused(value):
    with pytest.raises(ValueError, match=r"^cpu: invalid quantity .*ASCII"):
        q.cpu_millicores(value, "cpu")


@pytest.mark.parametrize("value, maximum, unit", [
    (str(2**62 + 1), codes.MAX_REQUEST_AMOUNT, "bytes"),
    ("1e30", codes.MAX_REQUEST_AMOUNT, "bytes"),
    ("17Ti", codes.MAX_NODE_AMOUNT, "bytes"),
])
def test_amounts_above_the_array_limits_are_refused_naming_the_field(value, maximum, unit):
    with pytest.raises(ValueError, match=rf"^spec.memory: .* above the largest amount .*{unit}"):
        q.memory_bytes(value, "spec.memory", maximum=maximum)


# --------------------------------------------------------------------------------------------
# Admission: amounts the array API would refuse never get in
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cpu, mem, field", [
    (str(2**62 // 1000 + 1), "1Gi", "requests.cpu"),            # 2^62 .. 2^63 millicores
    ("1", str(2**62 + 5), "requests.memory"),                   # 2^62 .. 2^63 bytes
    ("1", str(2**63 + 5), "requests.memory"),                   # >= 2^63: ValueError too
])
def test_admission_refuses_amounts_beyond_the_array_api(cpu, mem, field):
    with pytest.raises(ValueError, match=rf"^spec.containers\[0\].resources.{field}: .*above"):
        workload_spec(load_documents(POD.format(cpu=cpu, mem=mem))[0])


def test_a_pod_whose_containers_sum_above_the_limit_is_refused():
    half = str(2**61 + 1)
    manifest = load_documents(POD.format(cpu="1", mem=half))[0]
    manifest["spec"]["containers"].append(dict(manifest["spec"]["containers"][0], name="b"))
    with pytest.raises(ValueError, match=r"^spec: the pod's memory request .* above"):
        workload_spec(manifest)


def test_controller_apply_of_a_huge_pod_is_refused_and_changes_nothing():
    ctl = Controller()
    ctl.ops.add_host("h", nodes=[(4000, 8 << 30)])
    good = POD.format(cpu="1", mem="1Gi")
    bad = POD.format(cpu="1", mem=str(2**63)).replace("name: web", "name: huge")
    with pytest.raises(ValueError, match="above the largest"):
        ctl.apply(good + "---\n" + bad)
    assert ctl.list("Pod") == []          # all-or-nothing
    ctl.apply(good)
    assert ctl.reconcile().count("placed") == 1


# --------------------------------------------------------------------------------------------
# YAML: duplicate keys, depth, aliases, BOM, size
# --------------------------------------------------------------------------------------------
def test_duplicate_keys_are_refused_with_both_lines(tmp_path):
    path = tmp_path / "pods.yaml"
    path.write_text(POD.format(cpu="1", mem="1Gi").replace('cpu: "1"', 'cpu: "1", cpu: "48"'))
    with pytest.raises(ValueError) as info:
        read_workloads(path)
    assert one_line(info).startswith(f"{path}: invalid YAML at line 8, column 28")
    assert "duplicate key 'cpu' (first given at line 8, column 18)" in str(info.value)


def test_a_merge_key_may_still_be_overridden():
    docs = files.load_yaml("base: &b {cpu: 1, memory: 2}\nx: {<<: *b, cpu: 3}\n")
    assert docs[0]["x"] == {"cpu": 3, "memory": 2}


@pytest.mark.parametrize("text", ["[" * 5000 + "]" * 5000, "[" * 200_000,
                                  "a:\n" + "".join("  " * i + "b:\n" for i in range(1, 200))])
def test_deep_nesting_is_refused_before_anything_is_built(text):
    with pytest.raises(ValueError, match=r"^t.yaml: more than 64 levels of nesting \(limits.max_yaml_depth\) at line"):
        files.load_yaml(text, "t.yaml")


def test_alias_bombs_are_refused():
    rows = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    rows += [f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]"
             for i in range(9)]
    with pytest.raises(ValueError, match="aliases expand to more than"):
        files.load_yaml("\n".join(rows), "bomb.yaml")


def test_a_byte_order_mark_is_accepted(tmp_path):
    csv = tmp_path / "inv.csv"
    csv.write_bytes(b"\xef\xbb\xbfhost,node,cpu,memory\na,0,4,8Gi\n")
    assert read_topology(csv).names == ("a",)
    pods = tmp_path / "pods.yaml"
    pods.write_bytes(b"\xef\xbb\xbf" + POD.format(cpu="1", mem="1Gi").encode())
    assert read_workloads(pods).labels == ("default/web",)


def test_files_larger_than_the_limit_are_refused_by_bytes_read(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("a: " + "x" * 5000)
    with limits.override(max_file_bytes=1000):
        with pytest.raises(ValueError, match=r"larger than 1,000 bytes \(limits.max_file_bytes\)"):
            read_topology(path)
    assert files.read_text(path).startswith("a: ")


def test_too_many_documents_or_items_are_refused(tmp_path):
    with limits.override(max_objects=3):
        with pytest.raises(ValueError, match=r"more than 3 documents"):
            files.load_yaml("---\na: 1\n" * 5, "x")
        with pytest.raises(ValueError, match=r"5 objects, more than 3"):
            load_documents({"kind": "List", "items": [{"kind": "Pod"}] * 5})


# --------------------------------------------------------------------------------------------
# Special files
# --------------------------------------------------------------------------------------------
def test_a_topology_linked_to_dev_zero_is_refused(tmp_path):
    link = tmp_path / "topology.yaml"
    link.symlink_to("/dev/zero")
    with pytest.raises(ValueError, match=r"topology.yaml: not a regular file \(a character device\)"):
        read_topology(link)


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "pods.yaml"
    os.mkfifo(fifo)
    result = []

    def read():
        try:
            read_workloads(fifo)
        except ValueError as exc:
            result.append(str(exc))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(20)
    if reader.is_alive():   # unblock the reader before failing
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("reading a FIFO blocked")
    assert result and "not a regular file (a FIFO)" in result[0]


# --------------------------------------------------------------------------------------------
# Numbers out of range in inventories, traces, sysfs
# --------------------------------------------------------------------------------------------
def test_1e30_in_an_inventory_csv_is_one_line(tmp_path):
    path = tmp_path / "inv.csv"
    path.write_text("host,node,cpu,memory\na,0,1e30,8Gi\n")
    with pytest.raises(ValueError) as info:
        read_topology(path)
    assert one_line(info).startswith(f"{path}: line 2.cpu: '1e30' is above the largest amount")


def test_1e30_in_a_trace_is_one_line():
    text = "arrival,departure,cpu,memory,kind,namespace\n0,,1e30,1Gi,Pod,default\n"
    with pytest.raises(ValueError, match=r"^t.csv: line 2: cpu: '1e30' is above"):
        parse_trace(text, "t.csv")


def sysfs(tmp_path, *, memtotal="4096", cpulist="0-3", distance="10"):
    node = tmp_path / "node0"
    node.mkdir(parents=True)
    (node / "cpulist").write_text(cpulist + "\n")
    (node / "meminfo").write_text(f"Node 0 MemTotal:       {memtotal} kB\nNode 0 MemFree: 1 kB\n")
    (node / "distance").write_text(distance + "\n")
    return tmp_path


def test_sysfs_huge_memtotal_and_cpulist_are_refused(tmp_path):
    with pytest.raises(ValueError, match=r"meminfo: MemTotal .* above the largest amount"):
        read_sysfs(sysfs(tmp_path / "a", memtotal="1" + "0" * 30), hostname="h")
    with pytest.raises(ValueError, match=r"cpulist: CPU list '0-4294967295' names more than 65,536"):
        read_sysfs(sysfs(tmp_path / "b", cpulist="0-4294967295"), hostname="h")
    assert len(parse_cpulist("0-63")) == 64


@pytest.mark.parametrize("rows, match", [
    ("10 9\n9 10", "SLIT distance must be an integer in 10..254"),
    ("12 20\n20 10", "distance from node 0 to itself is 12"),
    ("10 10\n10 10", "distance from node 0 to node 1 is 10; a remote distance must be above"),
    ("10 255\n255 10", "255 means unreachable"),
])
def test_slit_matrices_are_validated(tmp_path, rows, match):
    path = tmp_path / "inv.yaml"
    matrix = [[int(v) for v in r.split()] for r in rows.splitlines()]
    path.write_text("hosts:\n- name: a\n  nodes: [{cpu: 4, memory: 8Gi}, {cpu: 4, memory: 8Gi}]\n"
                    f"  distance: {matrix}\n")
    with pytest.raises(ValueError, match=match):
        read_topology(path)


# --------------------------------------------------------------------------------------------
# Amplification
# --------------------------------------------------------------------------------------------
def test_ten_million_replicas_are_refused_in_one_line(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text("kind: Deployment\nmetadata: {name: x}\nspec:\n  replicas: 10000000\n"
                    "  template: {spec: {containers: [{name: a}]}}\n")
    with pytest.raises(ValueError, match=r"spec.replicas: must be between 0 and 100,000 "
                                         r"\(limits.max_replicas\), got 10000000"):
        read_workloads(path)
    with limits.override(max_replicas=20_000_000, max_requests=5):
        with pytest.raises(ValueError, match=r"more than 5 requests \(limits.max_requests\)"):
            read_workloads(path)


def test_a_million_hosts_on_one_inventory_line_are_refused(tmp_path):
    path = tmp_path / "inv.yaml"
    path.write_text("hosts:\n- {name: r, count: 1000000, nodes: [{cpu: 4, memory: 8Gi}]}\n")
    with pytest.raises(ValueError, match=r"count: expected an integer in 1..100000 "
                                         r"\(limits.max_inventory_count\)"):
        read_topology(path)
    many = tmp_path / "i2.yaml"
    many.write_text("hosts:\n- {name: r, count: 30, nodes: [{cpu: 4, memory: 8Gi}]}\n")
    with limits.override(max_inventory_count=50, max_hosts=20):
        with pytest.raises(ValueError, match=r"more than 20 \(limits.max_hosts\)"):
            read_topology(many)


def test_limits_from_the_environment_and_overrides():
    assert limits._from_environment("max_replicas=5, max_file_bytes=1Mi") == limits.Limits(
        max_replicas=5, max_file_bytes=2**20)
    with pytest.raises(ValueError, match="NUMASCHED_LIMITS: 'max_replica=5' is not NAME=VALUE"):
        limits._from_environment("max_replica=5")
    with pytest.raises(ValueError, match="limits.max_replicas: expected a positive integer"):
        limits.Limits(max_replicas=0)
    before = limits.current()
    with limits.override(max_replicas=7) as inside:
        assert inside.max_replicas == limits.current().max_replicas == 7
    assert limits.current() == before
