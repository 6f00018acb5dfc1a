"""Topology readers: NodeResourceTopology / Node objects, inventories and sysfs -> Cluster."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from numasched.io import topology as topo
from numasched.io.topology import read_sysfs, read_topology, to_nrt

GiB = 2**30
SHARED_NRT = Path(__file__).resolve().parents[2] / "shared" / "data" / "k8s" / "nrt-nfd-v0.13.yaml"
REAL_NAME = "ip-192-167-190-41.us-gov-west-1.compute.internal"

NRT_TWO_ZONES = """\
apiVersion: topology.node.k8s.io/v1alpha2
kind: NodeResourceTopology
metadata: {name: worker-a}
attributes:
- {name: topologyManagerPolicy, value: restricted}
zones:
- name: node-0
  type: Node
  costs: [{name: node-0, value: 10}, {name: node-1, value: 32}]
  resources:
  - {name: cpu, capacity: "16", allocatable: "15500m", available: "12"}
  - {name: memory, capacity: "267242119168", allocatable: "265094635520", available: 200Gi}
  - {name: hugepages-2Mi, capacity: "0", allocatable: "0", available: "0"}
- name: node-1
  type: Node
  costs: [{name: node-0, value: 32}, {name: node-1, value: 10}]
  resources:
  - {name: cpu, capacity: "16", allocatable: "16", available: "16"}
  - {name: memory, capacity: 64Gi, allocatable: 64Gi}
- name: socket-0
  type: Socket
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def node_object(name: str, cpu="64", memory="512Gi", allocatable_cpu=None, unschedulable=False) -> str:
    status = {"capacity": {"cpu": cpu, "memory": memory}}
    if allocatable_cpu is not None:
        status["allocatable"] = {"cpu": allocatable_cpu}
    doc = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "status": status}
    if unschedulable:
        doc["spec"] = {"unschedulable": True}
    return yaml.safe_dump(doc)


# --------------------------------------------------------------------------------------------
# NodeResourceTopology
# --------------------------------------------------------------------------------------------
def test_nrt_quantities_become_the_expected_arrays(tmp_path):
    t = read_topology(write(tmp_path / "nrt.yaml", NRT_TWO_ZONES))
    c = t.cluster
    assert t.names == ("worker-a",)
    assert c.node_cpu.tolist() == [[15_500, 16_000]]              # allocatable, not capacity
    assert c.free_cpu.tolist() == [[12_000, 16_000]]              # available seeds the free state
    assert c.node_mem.tolist() == [[265_094_635_520, 64 * GiB]]
    assert c.free_mem.tolist() == [[200 * GiB, 64 * GiB]]         # available absent -> all free
    assert c.distance.tolist() == [[[10, 32], [32, 10]]]
    assert t.attributes == ({"topologyManagerPolicy": "restricted"},)
    assert t.topology_manager_policy() == "restricted"
    assert t.notes == ()


def test_capacity_is_used_when_allocatable_is_missing(tmp_path):
    text = NRT_TWO_ZONES.replace('allocatable: "15500m", ', "").replace('allocatable: "265094635520", ', "")
    c = read_topology(write(tmp_path / "nrt.yaml", text)).cluster
    assert c.node_cpu[0, 0] == 16_000 and c.node_mem[0, 0] == 267_242_119_168


@pytest.mark.skipif(not SHARED_NRT.exists(), reason="shared data folder not present")
def test_real_nfd_object_needs_the_node_for_cpu(tmp_path):
    with pytest.raises(ValueError, match=rf"NodeResourceTopology '{REAL_NAME}': no zone lists a "
                                         r"'cpu' resource.*give the Node object"):
        read_topology(SHARED_NRT)
    write(tmp_path / "nrt.yaml", SHARED_NRT.read_text())
    write(tmp_path / "node.yaml", node_object(REAL_NAME, cpu="64", allocatable_cpu="63"))
    t = read_topology(tmp_path)
    c = t.cluster
    assert t.names == (REAL_NAME,)
    assert c.node_mem.tolist() == [[265_094_635_520, 265_474_244_608]]
    assert c.free_mem.tolist() == [[265_094_635_520, 265_474_244_608]]
    assert c.node_cpu.tolist() == [[31_500, 31_500]]   # Node allocatable 63 over two zones
    assert c.free_cpu.tolist() == [[31_500, 31_500]]
    assert c.distance.tolist() == [[[10, 21], [21, 10]]]
    assert t.attributes[0] == {"topologyManagerPolicy": "single-numa-node",
                               "topologyManagerScope": "container",
                               "topologyPolicies": "SingleNUMANodeContainerLevel"}
    assert any("cpu from the Node object (63) divided evenly over 2" in n for n in t.notes)


def test_uneven_cpu_split_gives_the_remainder_to_the_lowest_zones(tmp_path):
    zones = "".join(f"- name: node-{k}\n  type: Node\n  resources:\n"
                    f"  - {{name: memory, capacity: 1Gi}}\n" for k in range(3))
    write(tmp_path / "a.yaml", "kind: NodeResourceTopology\nmetadata: {name: h}\nzones:\n" + zones)
    write(tmp_path / "b.yaml", node_object("h", cpu="1001m"))
    t = read_topology(tmp_path)
    assert t.cluster.node_cpu.tolist() == [[334, 334, 333]]
    assert any("10 local / 20 remote" in n for n in t.notes)           # no costs given
    assert t.cluster.distance[0].tolist() == [[10, 20, 20], [20, 10, 20], [20, 20, 10]]


def test_missing_zones_are_absent_nodes_and_hosts_are_padded(tmp_path):
    sparse = """\
kind: NodeResourceTopology
metadata: {name: sparse}
zones:
- {name: node-0, type: Node, resources: [{name: cpu, capacity: "8"}, {name: memory, capacity: 8Gi}]}
- {name: node-2, type: Node, resources: [{name: cpu, capacity: "8"}, {name: memory, capacity: 8Gi}],
   costs: [{name: node-0, value: 30}, {name: node-2, value: 10}]}
---
kind: NodeResourceTopology
metadata: {name: small}
zones:
- {name: node-0, type: Node, resources: [{name: cpu, capacity: "4"}, {name: memory, capacity: 4Gi}]}
"""
    t = read_topology(write(tmp_path / "nrt.yaml", sparse))
    c = t.cluster
    assert t.names == ("sparse", "small")
    assert c.node_cpu.tolist() == [[8000, 0, 8000], [4000, 0, 0]]
    assert c.present.tolist() == [[True, False, True], [True, False, False]]
    assert c.distance[0, 2, 0] == 30 and c.distance[0, 0, 2] == 20   # row 0 was not given
    assert t.index("small") == 1 and "sparse" in t and "other" not in t


def test_list_kinds_and_nodes_without_nrt(tmp_path):
    items = {"apiVersion": "v1", "kind": "NodeList", "items": [
        yaml.safe_load(node_object("plain", cpu="8", memory="16Gi", unschedulable=True))]}
    write(tmp_path / "nodes.yaml", yaml.safe_dump(items))
    write(tmp_path / "nrt.yaml", NRT_TWO_ZONES)
    t = read_topology(tmp_path)
    assert t.names == ("plain", "worker-a")                      # files sorted, first named first
    assert t.cluster.node_cpu[0].tolist() == [8000, 0]
    assert t.cluster.schedulable.tolist() == [0, 1]
    assert any("Node plain has no NodeResourceTopology" in n for n in t.notes)


def test_nrt_round_trips_through_to_nrt(tmp_path):
    first = read_topology(write(tmp_path / "a" / "nrt.yaml", NRT_TWO_ZONES))
    text = yaml.safe_dump_all(to_nrt(first))
    second = read_topology(write(tmp_path / "b" / "nrt.yaml", text))
    for field in ("node_cpu", "node_mem", "free_cpu", "free_mem", "distance", "schedulable"):
        assert np.array_equal(getattr(first.cluster, field), getattr(second.cluster, field)), field
    assert second.names == first.names and second.attributes == first.attributes


@pytest.mark.parametrize("text, message", [
    (NRT_TWO_ZONES.replace('available: 200Gi', 'available: 2GB'),
     r"^{f}: zones\[0\]\.resources\[1\]\.available: invalid quantity '2GB' \(unknown unit 'GB'"),
    (NRT_TWO_ZONES.replace('available: "12"', 'available: "17"'),
     r"^{f}: zones\[0\]\.resources\[0\]\.available: '17' is more than the allocatable '15500m'"),
    (NRT_TWO_ZONES.replace("name: node-1\n", "name: numa1\n"),
     r"^{f}: zones\[1\]\.name: a zone of type Node must be named node-<id>, got 'numa1'"),
    (NRT_TWO_ZONES.replace("value: 32}, {name: node-1, value: 10}]", "value: -5}]"),
     r"^{f}: zones\[1\]\.costs\[0\]\.value: a SLIT distance must be an integer in 10\.\.254 \(ACPI\), got -5"),
    (NRT_TWO_ZONES + "---\n" + NRT_TWO_ZONES, r"host 'worker-a' is defined twice"),
    ("kind: Pod\nmetadata: {name: p}\n", r"kind 'Pod' is not a topology source"),
    ("zones: [\n", r"^{f}: invalid YAML at line 2, column 1: "),
    ("kind: NodeResourceTopology\nmetadata: {name: x}\nzones: []\n", r"has no zone of type Node"),
])
def test_nrt_errors_name_the_file_the_field_and_the_value(tmp_path, text, message):
    path = write(tmp_path / "nrt.yaml", text)
    with pytest.raises(ValueError, match=message.replace("{f}", str(path).replace(".", r"\."))):
        read_topology(path)


def test_yaml_is_loaded_safely_never_constructing_objects(tmp_path):
    marker = tmp_path / "ran"
    evil = f"!!python/object/apply:os.system ['touch {marker}']\n"
    with pytest.raises(ValueError, match="could not determine a constructor"):
        read_topology(write(tmp_path / "evil.yaml", evil))
    assert not marker.exists()


def test_missing_and_empty_paths(tmp_path):
    with pytest.raises(ValueError, match=r"nope\.yaml: no such file or directory$"):
        read_topology(tmp_path / "nope.yaml")
    with pytest.raises(ValueError, match=r"no topology files"):
        read_topology(tmp_path)


# --------------------------------------------------------------------------------------------
# Inventories
# --------------------------------------------------------------------------------------------
def test_yaml_inventory(tmp_path):
    inv = """\
hosts:
- name: rack
  count: 2
  nodes:
  - {cpu: 32, memory: 256Gi}
  - {cpu: 32, memory: 256Gi, free_cpu: 30.5, free_memory: 128Gi}
  distance: [[10, 21], [21, 10]]
  attributes: {topologyManagerPolicy: best-effort}
- name: odd
  nodes: [{cpu: "4", memory: 8Gi}]
  schedulable: false
"""
    t = read_topology(write(tmp_path / "inv.yaml", inv))
    c = t.cluster
    assert t.names == ("rack-0", "rack-1", "odd")
    assert c.node_cpu.tolist() == [[32_000, 32_000]] * 2 + [[4000, 0]]   # YAML 32 is 32 cores
    assert c.free_cpu[1].tolist() == [32_000, 30_500]
    assert c.free_mem[0].tolist() == [256 * GiB, 128 * GiB]
    assert c.schedulable.tolist() == [1, 1, 0]
    assert c.distance[0].tolist() == [[10, 21], [21, 10]]
    assert t.attributes[2] == {} and t.attributes[0] == {"topologyManagerPolicy": "best-effort"}
    assert t.topology_manager_policy() is None        # the hosts disagree


@pytest.mark.parametrize("inv, message", [
    ("hosts:\n- name: a\n  nodes: [{cpu: 4, memory: 8GB}]\n",
     r"hosts\[0\]\.nodes\[0\]\.memory: invalid quantity '8GB' \(unknown unit 'GB'"),
    ("hosts:\n- name: a\n  nodes: [{cpu: 4, memory: 8Gi, gpu: 1}]\n", r"unknown key\(s\) \['gpu'\]"),
    ("hosts:\n- name: a\n  nodes: [{cpu: 4, memory: 8Gi}]\n  distance: [[10, 20]]\n",
     r"hosts\[0\]\.distance\[0\]: expected 1 values"),
    ("hosts:\n- name: a\n  nodes: [{cpu: 4, memory: 8Gi, free_cpu: 5}]\n",
     r"nodes\[0\]\.free_cpu: 5 is more than the node's cpu 4$"),
    ("hosts: []\n", r"lists no hosts"),
])
def test_yaml_inventory_errors(tmp_path, inv, message):
    with pytest.raises(ValueError, match=message):
        read_topology(write(tmp_path / "inv.yaml", inv))


def test_csv_inventory(tmp_path):
    text = """\
# host inventory
host,node,cpu,memory,free_cpu,free_memory,distance
a,0,32,256Gi,,,10 21
a,1,32,256Gi,16,128Gi,21 10
b,0,8,32Gi,,,
"""
    t = read_topology(write(tmp_path / "inv.csv", text))
    c = t.cluster
    assert t.names == ("a", "b")
    assert c.node_cpu.tolist() == [[32_000, 32_000], [8000, 0]]
    assert c.free_mem.tolist() == [[256 * GiB, 128 * GiB], [32 * GiB, 0]]
    assert c.distance[0].tolist() == [[10, 21], [21, 10]]


@pytest.mark.parametrize("text, message", [
    ("host,node,cpu\na,0,1\n", r"needs columns host, node, cpu, memory; missing memory"),
    ("host,node,cpu,memory,colour\na,0,1,1Gi,red\n", r"unknown CSV column\(s\) colour"),
    ("host,node,cpu,memory\na,x,1,1Gi\n", r"line 2: node: expected a NUMA node id"),
    ("host,node,cpu,memory\na,0,1,1Gi\na,0,1,1Gi\n", r"line 3: host 'a' node 0 is listed twice"),
    ("host,node,cpu,memory\na,0,1q,1Gi\n", r"line 2\.cpu: invalid quantity '1q' \(unknown unit 'q'"),
])
def test_csv_inventory_errors(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        read_topology(write(tmp_path / "inv.csv", text))


# --------------------------------------------------------------------------------------------
# sysfs
# --------------------------------------------------------------------------------------------
def fake_sysfs(root: Path, nodes: dict[int, tuple[str, int, int, str]], online: str | None) -> Path:
    """nodes: id -> (cpulist, MemTotal kB, MemFree kB, distance row)."""
    for node, (cpulist, total, free, distance) in nodes.items():
        d = root / f"node{node}"
        write(d / "cpulist", cpulist + "\n")
        write(d / "meminfo", f"Node {node} MemTotal:       {total} kB\n"
                             f"Node {node} MemFree:        {free} kB\n"
                             f"Node {node} HugePages_Total:     0\n")
        write(d / "distance", distance + "\n")
    write(root / "possible", "0-7\n")
    if online is not None:
        write(root / "online", online + "\n")
    (root / "power").mkdir()
    return root


def test_sysfs_layout(tmp_path):
    root = fake_sysfs(tmp_path / "node", {
        0: ("0-3,8-11", 16 * 2**20, 2**20, "10 21 31"),
        1: ("4-7,12-15", 16 * 2**20, 2**20, "21 10 31"),
        3: ("", 64 * 2**20, 64 * 2**20, "31 31 10"),       # a memory-only node (CXL)
    }, online="0-1,3")
    t = read_sysfs(root, hostname="box")
    c = t.cluster
    assert t.names == ("box",)
    assert c.node_cpu.tolist() == [[8000, 8000, 0, 0]]
    assert c.node_mem.tolist() == [[16 * GiB, 16 * GiB, 0, 64 * GiB]]
    assert c.present.tolist() == [[True, True, False, True]]
    assert c.distance[0][np.ix_([0, 1, 3], [0, 1, 3])].tolist() == [[10, 21, 31], [21, 10, 31],
                                                                   [31, 31, 10]]
    assert c.free_cpu.tolist() == c.node_cpu.tolist()
    assert t.details[0][0] == {"cpulist": "0-3,8-11", "mem_free": GiB}


def test_sysfs_errors(tmp_path):
    with pytest.raises(ValueError, match=r"not found; this machine exposes no NUMA layout there"):
        read_sysfs(tmp_path / "absent")
    root = fake_sysfs(tmp_path / "a", {0: ("0-3", 1024, 0, "10 20")}, online="0")
    with pytest.raises(ValueError, match=r"node0/distance: 2 distances for 1 online nodes"):
        read_sysfs(root)
    root = fake_sysfs(tmp_path / "b", {0: ("0-x", 1024, 0, "10")}, online=None)
    with pytest.raises(ValueError, match=r"node0/cpulist: malformed CPU list '0-x'"):
        read_sysfs(root)


@pytest.mark.skipif(not os.path.isdir(topo.SYSFS_NODE_ROOT), reason="no sysfs NUMA folder here")
def test_this_machine():
    t = read_sysfs()
    assert len(t) == 1
    assert t.cluster.node_cpu.sum() == 1000 * os.cpu_count()      # every online CPU, once


def test_parse_cpulist():
    assert topo.parse_cpulist("0-2,5,7-8") == [0, 1, 2, 5, 7, 8]
    assert topo.parse_cpulist("\n") == []
    with pytest.raises(ValueError, match="runs backwards"):
        topo.parse_cpulist("3-1")
