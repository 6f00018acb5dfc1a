"""The kube-scheduler extender: real HTTP requests, bodies shaped like kube-scheduler's."""
from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import numasched
from numasched import embedding
from numasched.extender import MAX_BODY_BYTES, UNKNOWN_NODE, Extender, make_server

REPO = Path(numasched.__file__).resolve().parents[1]

NRT = """\
apiVersion: topology.node.k8s.io/v1alpha2
kind: NodeResourceTopology
metadata: {{name: {name}}}
zones:
- name: node-0
  type: Node
  costs: [{{name: node-0, value: 10}}, {{name: node-1, value: 21}}]
  resources:
  - {{name: cpu, capacity: "16", allocatable: "16", available: "{cpu0}"}}
  - {{name: memory, capacity: 64Gi, allocatable: 64Gi, available: 64Gi}}
- name: node-1
  type: Node
  costs: [{{name: node-0, value: 21}}, {{name: node-1, value: 10}}]
  resources:
  - {{name: cpu, capacity: "16", allocatable: "16", available: "{cpu1}"}}
  - {{name: memory, capacity: 64Gi, allocatable: 64Gi, available: 64Gi}}
"""
# free cores per node: a is nearly full, b half full, c empty
FREE = {"node-a": (2, 3), "node-b": (8, 10), "node-c": (16, 16)}


def pod(cpu: str, memory: str = "4Gi", numa: str | None = None) -> dict:
    """A v1.Pod as kube-scheduler serialises it into ExtenderArgs (Go's JSON: no kind)."""
    meta = {"name": "web-7d4b9c-x2x9q", "namespace": "shop", "uid": "1c1c3e52-0c7a-4b37",
            "creationTimestamp": "2026-11-26T17:00:00Z", "labels": {"app": "web"}}
    if numa:
        meta["annotations"] = {"numasched.io/numa": numa}
    return {"metadata": meta,
            "spec": {"containers": [{"name": "web", "image": "nginx:1.27",
                                     "resources": {"requests": {"cpu": cpu, "memory": memory},
                                                   "limits": {"memory": memory}}}],
                     "schedulerName": "default-scheduler", "priority": 0},
            "status": {"phase": "Pending", "qosClass": "Burstable"}}


def node(name: str) -> dict:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "status": {"capacity": {"cpu": "32", "memory": "128Gi"}}}


@pytest.fixture
def topology_dir(tmp_path) -> Path:
    d = tmp_path / "nrt"
    d.mkdir()
    for name, (cpu0, cpu1) in FREE.items():
        (d / f"{name}.yaml").write_text(NRT.format(name=name, cpu0=cpu0, cpu1=cpu1))
    return d


@pytest.fixture
def server(topology_dir):
    ext = Extender.from_path(topology_dir, policy="best-fit")
    srv = make_server(ext, "127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield ext, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def post(url: str, body) -> tuple[int, object]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def test_filter_with_node_names(server):
    ext, url = server
    status, result = post(url + "/filter", {"Pod": pod("6"), "NodeNames": ["node-a", "node-b", "ghost", "node-c"]})
    assert status == 200
    assert result["NodeNames"] == ["node-b", "node-c"]
    assert result["Error"] == ""
    assert result["FailedNodes"] == {
        "node-a": "numasched: insufficient-cpu: not enough free CPU on this node",
        "ghost": UNKNOWN_NODE}
    # the same answer as the embedding API's filter on the same free state
    ok = numasched.filter_hosts(ext.topology.cluster, (6000, 4 * 2**30), numa=ext.numa)
    assert [n for n, passes in zip(ext.topology.names, ok) if passes] == ["node-b", "node-c"]


def test_filter_with_node_objects_under_a_url_prefix(server):
    _, url = server
    args = {"Pod": pod("12", numa="single-numa-node"),
            "Nodes": {"items": [node("node-a"), node("node-b"), node("node-c")]}}
    status, result = post(url + "/scheduler/filter", args)
    assert status == 200
    assert result["Nodes"]["items"] == [node("node-c")]     # only c has a node with 12 free
    assert set(result["FailedNodes"]) == {"node-a", "node-b"}
    assert "no-numa-fit" in result["FailedNodes"]["node-b"]  # 18 free in total, 10 at most on a node
    assert "NodeNames" not in result


def test_prioritize_scores_0_to_10_over_the_candidates(server):
    ext, url = server
    names = ["node-c", "node-b", "node-a", "ghost"]
    status, result = post(url + "/prioritize", {"Pod": pod("2"), "NodeNames": names})
    assert status == 200
    assert [r["Host"] for r in result] == names
    scores = {r["Host"]: r["Score"] for r in result}
    assert all(0 <= s <= 10 for s in scores.values())
    assert scores["ghost"] == 0
    # best-fit: the fullest host that fits is the best
    assert scores["node-a"] == 10 and scores["node-c"] == 0 and 0 < scores["node-b"] < 10
    raw = embedding.score_hosts(ext.topology.cluster, (2000, 4 * 2**30), policy="best-fit",
                                numa=ext.numa).score
    expect = {n: int(s) * embedding.MAX_EXTENDER_SCORE // embedding.MAX_SCORE
              for n, s in zip(ext.topology.names, raw)}
    assert {n: scores[n] for n in expect} == expect
    # scores are relative to the candidates in the call: without node-a, node-b is the best
    _, result = post(url + "/prioritize", {"Pod": pod("2"), "NodeNames": ["node-b", "node-c"]})
    assert [r["Score"] for r in result] == [10, 0]


def test_infeasible_hosts_score_zero(server):
    _, url = server
    _, result = post(url + "/prioritize",
                     {"Pod": pod("20"), "Nodes": {"items": [node("node-a"), node("node-c")]}})
    assert result == [{"Host": "node-a", "Score": 0}, {"Host": "node-c", "Score": 10}]


def test_bad_requests(server):
    _, url = server
    assert post(url + "/filter", b"{not json")[0] == 400
    status, result = post(url + "/filter", {"NodeNames": ["node-a"]})
    assert (status, result) == (400, {"Error": "Pod: required (a v1.Pod object)"})
    status, result = post(url + "/prioritize", {"Pod": pod("2GB"), "NodeNames": ["node-a"]})
    assert status == 400
    assert "spec.containers[0].resources.requests.cpu: invalid quantity '2GB'" in result["Error"]
    status, result = post(url + "/filter", {"Pod": pod("1")})
    assert (status, result) == (400, {"Error": "one of Nodes or NodeNames is required"})
    status, result = post(url + "/bind", {"PodName": "x"})
    assert (status, result) == (400, {"Error": "PodNamespace: required (a non-empty string), got None"})
    assert post(url + "/unbind", {"PodName": "x"})[0] == 404
    with urllib.request.urlopen(url + "/healthz", timeout=30) as r:
        assert json.load(r) == {"status": "ok", "hosts": 3, "reservations": 0}


def test_body_size_limit(server):
    _, url = server
    port = int(url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.putrequest("POST", "/filter")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(MAX_BODY_BYTES + 1))
    conn.endheaders()            # the body is never sent: the server must not wait for it
    response = conn.getresponse()
    assert response.status == 413
    assert "limit is 1048576" in json.load(response)["Error"]
    conn.close()


def test_topology_is_reread_when_a_file_changes(server, topology_dir):
    ext, url = server
    args = {"Pod": pod("10"), "NodeNames": ["node-a"]}
    assert post(url + "/filter", args)[1]["NodeNames"] == []
    path = topology_dir / "node-a.yaml"
    path.write_text(NRT.format(name="node-a", cpu0=16, cpu1=16))
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))   # a later mtime, whatever the clock
    assert ext.refresh()          # what the server's watcher thread does every second
    assert post(url + "/filter", args)[1]["NodeNames"] == ["node-a"]
    path.write_text("zones: [\n")          # a broken rewrite keeps the last good topology
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 2 * 10**9))
    assert not ext.refresh()
    assert post(url + "/filter", args)[1]["NodeNames"] == ["node-a"]


def test_extender_command_serves_on_a_free_port(topology_dir):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    from test_cli_io import console_script
    proc = subprocess.Popen(console_script() + ["extender", "--topology", str(topology_dir),
                                                "--port", "0", "--access-log"],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    try:
        line = proc.stderr.readline()
        match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        assert match, line
        status, result = post(f"http://127.0.0.1:{match.group(1)}/scheduler/filter",
                              {"Pod": pod("1"), "NodeNames": ["node-c"]})
        assert (status, result["NodeNames"]) == (200, ["node-c"])
        # --access-log: one line per request (client, request line, status, bytes, time)
        access = proc.stderr.readline()
        assert re.search(r"numasched\.extender\.access INFO 127\.0\.0\.1 "
                         r'"POST /scheduler/filter" 200 \d+ [\d.]+ms$', access), access
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_extender_refuses_an_unknown_policy(topology_dir):
    with pytest.raises(ValueError, match="policy"):
        Extender.from_path(topology_dir, policy="nope")
    assert np.all(Extender.from_path(topology_dir).topology.cluster.node_cpu == 16_000)


def test_extender_command_on_a_busy_port_is_a_one_line_error(topology_dir):
    import socket

    from click.testing import CliRunner

    from numasched.cli import cli

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(cli, ["extender", "--topology", str(topology_dir),
                                          "--port", str(port)])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == \
        f"Error: cannot listen on 127.0.0.1:{port}: Address already in use"


def test_http_answers_equal_the_library_verbs(topology_dir):
    ext = Extender.from_path(topology_dir)
    bound = pod("2")
    bound["spec"]["nodeName"] = "node-b"
    cases = [{"Pod": pod("6"), "NodeNames": ["node-a", "node-b", "ghost", "node-c"]},
             {"Pod": pod("12", numa="single-numa-node"), "NodeNames": ["node-c", "node-b", "node-a"]},
             {"Pod": pod("1"), "NodeNames": []},
             {"Pod": pod("40"), "NodeNames": ["node-a", "node-b", "x\u00e9\"y"]},
             {"Pod": bound, "NodeNames": ["node-a", "node-b"]},
             {"Pod": pod("6"), "Nodes": {"items": [node("node-a"), node("node-b")]}}]
    for args in cases:
        body = json.dumps(args).encode()
        for verb in ("filter", "prioritize"):
            status, answer = ext.handle("POST", f"/{verb}", body)
            assert status == 200
            assert json.loads(answer) == getattr(ext, verb)(args), (verb, args)


def test_raw_node_names_take_the_same_path_as_decoded_ones(topology_dir):
    from numasched.extender.verbs import split_node_names

    ext = Extender.from_path(topology_dir)
    tricky = pod("6")
    tricky["metadata"]["annotations"] = {"note": ',"NodeNames":["node-a"]}'}
    names = ["node-a", "node-b", "ghost", "node-c"]
    go = json.dumps({"Pod": tricky, "Nodes": None, "NodeNames": names}, separators=(",", ":")).encode()
    assert split_node_names(go)[1] == b'"node-a","node-b","ghost","node-c"'
    bodies = [go, go + b"\n",
              json.dumps({"NodeNames": names, "Pod": tricky}).encode(),            # another order
              json.dumps({"Pod": tricky, "NodeNames": names + ["x\\]y"]}).encode(),  # escapes
              json.dumps({"Pod": tricky, "NodeNames": ["node-a", 3]}).encode()]
    expected = ext.filter({"Pod": tricky, "NodeNames": names})
    for body in bodies[:3]:
        assert json.loads(ext.handle("POST", "/filter", body)[1]) == expected
        assert json.loads(ext.handle("POST", "/filter", body)[1]) == expected   # cached names
    assert json.loads(ext.handle("POST", "/filter", bodies[3])[1])["FailedNodes"]["x\\]y"] == UNKNOWN_NODE
    assert ext.handle("POST", "/prioritize", bodies[4]) == \
        (400, b'{"Error": "NodeNames: expected a list of node names"}')


def test_the_kubelet_policy_the_hosts_state_decides_which_pods_are_aligned(topology_dir):
    ext = Extender.from_path(topology_dir)
    assert ext.numa == "restricted"                           # no host states a policy
    guaranteed = pod("20")
    guaranteed["spec"]["containers"][0]["resources"]["limits"] = {"cpu": "20", "memory": "4Gi"}
    burstable = pod("20")
    for p in (guaranteed, burstable):                        # two 16-core NUMA nodes, both free
        assert ext.filter({"Pod": p, "NodeNames": ["node-c"]})["NodeNames"] == ["node-c"]
    for name in FREE:                                         # every host: single-numa-node
        path = topology_dir / f"{name}.yaml"
        path.write_text(path.read_text().replace(
            "zones:", "attributes: [{name: topologyManagerPolicy, value: single-numa-node}]\nzones:"))
        os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert ext.refresh() and ext.numa == "single-numa-node"
    # a Guaranteed whole-CPU pod is aligned to one NUMA node, and 20 cores never fit one;
    # a Burstable pod is not aligned by the kubelet and floats over the host
    assert ext.filter({"Pod": guaranteed, "NodeNames": ["node-c"]})["NodeNames"] == []
    assert ext.filter({"Pod": burstable, "NodeNames": ["node-c"]})["NodeNames"] == ["node-c"]
    # the annotation still wins
    annotated = pod("20", numa="single-numa-node")
    assert ext.filter({"Pod": annotated, "NodeNames": ["node-c"]})["NodeNames"] == []


def test_answers_kept_per_shape_follow_the_free_state_and_stay_bounded(topology_dir, monkeypatch):
    """Pods of one shape share the encoded answers of one free state; a bind makes new ones,
    a bound pod never gets the shape's answer, and the per-shape caches stay bounded."""
    from numasched.extender import verbs

    ext = Extender.from_path(topology_dir)
    names = ["node-a", "node-b", "ghost", "node-c"]

    def replica(i: int, cpu: str = "20", node_name: str | None = None) -> dict:
        p = pod(cpu)
        p["metadata"].update(name=f"web-{i}", uid=f"uid-{i}")
        if node_name:
            p["spec"]["nodeName"] = node_name
        return {"Pod": p, "Nodes": None, "NodeNames": names}

    def answers(args) -> dict:
        body = json.dumps(args, separators=(",", ":")).encode()   # as Go sends it
        out = {}
        for verb in ("filter", "prioritize"):
            status, answer = ext.handle("POST", f"/{verb}", body)
            assert status == 200
            out[verb] = json.loads(answer)
            assert out[verb] == getattr(ext, verb)(args), (verb, args)
        return out

    first = answers(replica(1))
    assert answers(replica(2)) == first
    assert len(ext._snap.answers) == 2                 # one filter, one prioritize answer
    bound = answers(replica(3, node_name="node-b"))     # same shape, bound: its own answer
    assert bound["filter"]["NodeNames"] == ["node-b"] and bound != first
    assert first["filter"]["NodeNames"] == ["node-c"]
    # a bind takes room on node-c: the same shape now gets answers of the new free state
    assert ext.bind({"PodName": "web-2", "PodNamespace": "shop", "PodUID": "uid-2",
                     "Node": "node-c"}) == {"Error": ""}
    after = answers(replica(4))
    assert after != first and after["filter"]["NodeNames"] == []
    monkeypatch.setattr(verbs, "MAX_SHAPES", 3)
    monkeypatch.setattr(verbs, "MAX_ANSWERS", 4)
    for i in range(8):
        answers(replica(10 + i, cpu=f"{i + 1}"))
    assert len(ext._snap.scores) <= 3 and len(ext._snap.answers) <= 4
    ext.stop()
