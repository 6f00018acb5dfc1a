"""The extender's HTTP server under hostile and heavy clients: framing, limits, timeouts,
connection caps, keep-alive, and scoring that survives Numba's workqueue threading layer."""
from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from numasched.extender import MAX_JSON_DEPTH, Extender, make_server
from numasched.extender.binder import APIServerBinder

from test_extender import pod, topology_dir  # noqa: F401 (a fixture)
from test_extender_race import FakeAPIServer

REPO = Path(__file__).resolve().parents[1]


def serve(topology_dir, **options):
    ext = Extender.from_path(topology_dir, **{k: options.pop(k) for k in ("on_bind",) if k in options})
    srv = make_server(ext, "127.0.0.1", 0, **options)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return ext, srv, srv.server_address[1]


@pytest.fixture
def server(topology_dir):
    ext, srv, port = serve(topology_dir, read_timeout=1.0, idle_timeout=1.5, max_connections=20,
                           workers=2)
    yield ext, port
    srv.shutdown()
    srv.server_close()


def raw(port: int, data: bytes, timeout: float = 10) -> bytes:
    """Send ``data``, read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
        return out


def status_and_error(response: bytes) -> tuple[int, str]:
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)["Error"]


BODY = json.dumps({"Pod": pod("1"), "NodeNames": ["node-c"]}).encode()


@pytest.mark.parametrize("head, status, message", [
    (b"POST /filter HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400,
     "header Content-Length given twice"),
    (b"POST /filter HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 400,
     "header Content-Length given twice"),
    (b"POST /filter HTTP/1.1\r\nContent-Length: +5\r\n\r\n", 400, "invalid Content-Length '+5'"),
    (b"POST /filter HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400,
     "both Content-Length and Transfer-Encoding given"),
    (b"POST /filter HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400,
     "malformed chunk size line 'zz'"),
    (b"POST /filter HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n", 400,
     "a chunk is not followed by CRLF"),
    (b"POST /filter HTTP/1.1\r\nTransfer-Encoding: identity, chunked\r\n\r\n", 400,
     "unsupported Transfer-Encoding 'identity, chunked'"),
    (b"GARBAGE\r\n\r\n", 400, "malformed request line 'GARBAGE'"),
    (b"POST /filter HTTP/1.1\r\nBad Header: x\r\n\r\n", 400, "malformed header line"),
    (b"POST /filter HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", 413,
     "request body of 99999999 bytes; the limit is 1048576"),
])
def test_malformed_framing_is_400_and_closes(server, head, status, message):
    _, port = server
    got_status, error = status_and_error(raw(port, head))
    assert got_status == status
    assert error.startswith(message)


def test_chunked_bodies_are_decoded(server):
    _, port = server
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(BODY[i:i + 100]), BODY[i:i + 100])
                      for i in range(0, len(BODY), 100))
    response = raw(port, b"POST /filter HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                         b"Connection: close\r\n\r\n" + chunks + b"0\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 200 OK")
    assert json.loads(response.partition(b"\r\n\r\n")[2])["NodeNames"] == ["node-c"]


def test_bad_bodies_are_400_with_a_short_quote(server):
    _, port = server
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    deep = b"[" * 100_000 + b"]" * 100_000
    nested = json.dumps({"Pod": pod("1"), "NodeNames": ["node-c"],
                         "x": "NEST"}).replace('"NEST"', "[" * 70 + "]" * 70)
    for body, message in [
            (deep, f"the body nests deeper than {MAX_JSON_DEPTH} levels"),
            (nested.encode(), f"the body nests deeper than {MAX_JSON_DEPTH} levels"),
            (b"x" * 500_000, "the body is not JSON at byte 0: it starts 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'..."),
            (b"\xff\xfe", "the body is not JSON")]:
        conn.request("POST", "/filter", body)
        response = conn.getresponse()
        payload = json.loads(response.read())
        assert response.status == 400
        assert payload["Error"].startswith(message), payload
        assert len(payload["Error"]) < 200
    # a huge invalid quantity is quoted, not echoed
    conn.request("POST", "/filter", json.dumps({"Pod": pod("9" * 100_000 + "x"), "NodeNames": ["node-c"]}))
    response = conn.getresponse()
    payload = json.loads(response.read())
    assert response.status == 400 and len(payload["Error"]) < 300, payload
    # the connection is still good after refused bodies (their framing was fine)
    conn.request("GET", "/healthz")
    assert conn.getresponse().status == 200


def test_keep_alive_and_pipelining(server):
    _, port = server
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for _ in range(50):
        conn.request("POST", "/filter", BODY)
        response = conn.getresponse()
        assert response.status == 200 and response.getheader("Connection") is None
        response.read()
    one = (b"POST /filter HTTP/1.1\r\nContent-Length: %d\r\n\r\n" % len(BODY)) + BODY
    last = (b"POST /filter HTTP/1.1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
            % len(BODY)) + BODY
    out = raw(port, one * 3 + last)
    assert out.count(b"HTTP/1.1 200 OK") == 4
    assert out.count(b'"NodeNames":["node-c"]') == 4


def test_slow_and_idle_clients_are_cut_off(server):
    _, port = server
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /filter HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")   # never finished
        response = s.recv(65536)
        assert response.startswith(b"HTTP/1.1 408")
        assert s.recv(1) == b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        t0 = time.monotonic()
        assert s.recv(1) == b""              # idle: closed without a word
        assert time.monotonic() - t0 < 5


def test_connections_over_the_cap_get_503_and_threads_stay_bounded(server):
    _, port = server
    assert raw(port, b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n").startswith(b"HTTP/1.1 200")
    before = threading.active_count()       # the server's threads are all up by now
    socks = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(20)]
    try:
        for s in socks:
            s.sendall(b"POST /filter HTTP/1.1\r\n")          # half-open requests
        status, error = status_and_error(raw(port, b"GET /healthz HTTP/1.1\r\n\r\n"))
        assert (status, error) == (503, "too many connections (at most 20)")
        assert threading.active_count() == before             # no thread per connection
    finally:
        for s in socks:
            s.close()
    deadline = time.monotonic() + 10                          # closed ones free their slots
    while time.monotonic() < deadline:
        if raw(port, b"GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n").startswith(b"HTTP/1.1 200"):
            break
        time.sleep(0.1)
    else:
        pytest.fail("connection slots were not freed")


def test_bind_records_and_reserves(server):
    ext, port = server
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def call(verb, body):
        conn.request("POST", f"/{verb}", json.dumps(body))
        return json.loads(conn.getresponse().read())

    def twelve(i):
        p = pod("12", numa="single-numa-node")
        p["metadata"] = dict(p["metadata"], uid=f"uid-{i}", name=f"web-{i}")
        return p

    args = {"Pod": twelve(1), "NodeNames": ["node-a", "node-b", "node-c"]}
    assert call("filter", args)["NodeNames"] == ["node-c"]      # 16 + 16 free cores
    bind = {"PodName": "web-1", "PodNamespace": "shop", "PodUID": "uid-1", "Node": "node-c"}
    assert call("bind", bind) == {"Error": ""}
    assert call("bind", bind) == {"Error": ""}                        # a retried bind
    moved = call("bind", dict(bind, Node="node-b"))["Error"]
    assert "already bound to node-c; a bound pod is never moved" in moved
    conn.request("GET", "/bindings")
    record = json.loads(conn.getresponse().read())
    assert [b["node"] for b in record["bindings"]] == ["node-c"]
    (res,) = record["reservations"]
    assert sum(res["cpuMillicores"]) == 12_000 and len(res["numaNodes"]) == 1
    # the second 12-core pod takes node-c's other NUMA node; then a third no longer fits
    assert call("filter", dict(args, Pod=twelve(2)))["NodeNames"] == ["node-c"]
    assert call("bind", dict(bind, PodName="web-2", PodUID="uid-2")) == {"Error": ""}
    result = call("filter", {"Pod": twelve(3), "NodeNames": ["node-c"]})
    assert result["FailedNodes"] == {"node-c": "numasched: insufficient-cpu: not enough free CPU on this node"}
    refused = call("bind", dict(bind, PodName="web-3", PodUID="uid-3"))["Error"]
    assert refused.startswith("numasched: node-c can no longer take pod shop/web-3: insufficient-cpu")
    other = twelve(4)
    # a pod already bound (spec.nodeName) passes only its node
    bound = dict(other, spec=dict(other["spec"], nodeName="node-b"))
    assert call("filter", {"Pod": bound, "NodeNames": ["node-b", "node-c"]})["NodeNames"] == ["node-b"]
    unknown = call("bind", dict(bind, PodUID="never-seen"))["Error"]
    assert "was not seen by filter or prioritize" in unknown


def test_binder_posts_a_binding_to_the_api_server(topology_dir, tmp_path):
    api = FakeAPIServer()
    api.bound["shop/web-7d4b9c-x2x9q"] = ("node-b", 0.0)        # someone else bound it
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    ext = Extender.from_path(topology_dir, on_bind=APIServerBinder(api.url, token_file=token))
    try:
        ext.filter({"Pod": pod("1"), "NodeNames": ["node-c"]})
        args = {"PodName": "web-7d4b9c-x2x9q", "PodNamespace": "shop",
                "PodUID": "1c1c3e52-0c7a-4b37", "Node": "node-c"}
        refused = ext.bind(args)["Error"]
        assert refused == ("numasched: binding shop/web-7d4b9c-x2x9q to node-c failed: the API "
                           "server answered 409: pod is already assigned")
        assert len(ext.cache) == 0 and ext.bindings()["bindings"] == []   # reservation ended
        del api.bound["shop/web-7d4b9c-x2x9q"]
        assert ext.bind(args) == {"Error": ""}
        assert len(ext.cache) == 1
        path, auth, body = api.requests[-1]
        assert path == "/api/v1/namespaces/shop/pods/web-7d4b9c-x2x9q/binding"
        assert auth == "Bearer s3cret"
        assert body == {"apiVersion": "v1", "kind": "Binding",
                        "metadata": {"name": "web-7d4b9c-x2x9q", "namespace": "shop",
                                     "uid": "1c1c3e52-0c7a-4b37"},
                        "target": {"apiVersion": "v1", "kind": "Node", "name": "node-c"}}
    finally:
        ext.stop()
        api.server.shutdown()
        api.server.server_close()


WORKQUEUE = """
import json, sys, threading, http.client
sys.path.insert(0, {tests!r})
from numasched.extender import Extender, make_server
from test_extender import pod
ext = Extender.from_path({topology!r}, backend="numba")
srv = make_server(ext, "127.0.0.1", 0, workers=8)
threading.Thread(target=srv.serve_forever, daemon=True).start()
errors = []
def client(i):
    conn = http.client.HTTPConnection("127.0.0.1", srv.server_address[1], timeout=120)
    for j in range(15):
        body = json.dumps({{"Pod": pod(str(1 + (i * 15 + j) % 7)), "NodeNames": ["node-a", "node-b", "node-c"]}})
        conn.request("POST", "/prioritize", body)
        r = conn.getresponse(); r.read()
        if r.status != 200: errors.append(r.status)
threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
[t.start() for t in threads]; [t.join() for t in threads]
import numba
print("layer", numba.threading_layer(), "errors", errors)
"""


@pytest.mark.numba   # its extender scores on Numba: after the session's warmup, from the cache
def test_concurrent_prioritize_survives_the_workqueue_threading_layer(topology_dir):
    env = dict(os.environ, NUMBA_THREADING_LAYER="workqueue",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    code = WORKQUEUE.format(tests=str(REPO / "tests"), topology=str(topology_dir))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "layer workqueue errors []"
