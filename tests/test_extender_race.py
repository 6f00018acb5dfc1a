"""The assume cache against a lagging topology source: pods scheduled filter -> prioritize ->
bind over real HTTP by concurrent clients on nearly full nodes, while a fake exporter
republishes NodeResourceTopology files a while after each bind (as the kubelet admits the pod and
the exporter's next report includes it). Invariant: no NUMA node ends over capacity; without the
cache the same scenario over-commits (the baseline)."""
from __future__ import annotations

import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from numasched import Cluster
from numasched.extender import PODS_ATTRIBUTE, AssumeCache, Extender, make_server
from numasched.io.topology import Topology, to_nrt

CPU, MEM = 8, 32          # cores and GiB per NUMA node, two NUMA nodes per host
GI = 2**30


def nrt(name: str, used_cpu: list[int], used_mem: list[int], pods: list[str], *,
        cpu: int = CPU * 1000, mem: int = MEM * GI) -> str:
    """One host's NodeResourceTopology (as JSON): NUMA nodes of ``cpu`` millicores and ``mem``
    bytes, ``used_*`` taken on each, listing ``pods`` in ``numasched.io/pods``."""
    k = len(used_cpu)
    full = Cluster.uniform(hosts=1, nodes_per_host=k, cpu_per_node=cpu, mem_per_node=mem)
    host = full.with_free(np.maximum(cpu - np.array([used_cpu]), 0),
                          np.maximum(mem - np.array([used_mem]), 0))
    topology = Topology(cluster=host, names=(name,), sources=("exporter",), attributes=(
        {"topologyManagerPolicy": "single-numa-node", PODS_ATTRIBUTE: ",".join(pods)},))
    (doc,) = to_nrt(topology)
    return json.dumps(doc)


class FakeExporter:
    """Publishes each host's NRT: the initial load plus the pods bound at least ``lag`` seconds
    ago (read from the extender's recorded bindings, standing for the API server), listing
    them in ``numasched.io/pods``; files are replaced atomically every ``period`` seconds."""

    def __init__(self, directory: Path, initial: dict, url_port: int, lag: float, period: float):
        self.directory, self.initial, self.port = directory, initial, url_port
        self.lag, self.period = lag, period
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def publish(self, bindings: list[dict], now: float) -> None:
        for host, base in self.initial.items():
            used = [list(x) for x in base]
            pods = []
            for b in bindings:
                if b["node"] == host and b["boundAt"] <= now - self.lag:
                    for k in range(2):
                        used[k][0] += b["cpuMillicores"][k]
                        used[k][1] += b["memoryBytes"][k]
                    pods.append(f"{b['namespace']}/{b['name']}")
            tmp = self.directory / f".{host}.tmp"
            tmp.write_text(nrt(host, [u[0] for u in used], [u[1] for u in used], pods))
            os.replace(tmp, self.directory / f"{host}.json")

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while not self.stop.wait(self.period):
            conn.request("GET", "/bindings")
            self.publish(json.loads(conn.getresponse().read())["bindings"], time.time())


def schedule(port: int, names: list[str], pods: list[dict], clients: int, seed: int) -> dict:
    """Concurrent clients, each a keep-alive connection, run filter -> prioritize -> bind per
    pod (a bind refused is retried from filter, up to three times)."""
    queue = list(pods)
    lock = threading.Lock()
    stats = {"bound": 0, "unschedulable": 0, "bind_refused": 0}

    def call(conn, verb, body):
        conn.request("POST", f"/scheduler/{verb}", json.dumps(body),
                     {"Content-Type": "application/json"})
        response = conn.getresponse()
        payload = json.loads(response.read())
        assert response.status == 200, payload
        return payload

    def client(i):
        rng = random.Random(seed * 1000 + i)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                if not queue:
                    return
                pod = queue.pop()
            for _ in range(3):
                args = {"Pod": pod, "NodeNames": names}
                passing = call(conn, "filter", args)["NodeNames"]
                if not passing:
                    with lock:
                        stats["unschedulable"] += 1
                    break
                scores = {r["Host"]: r["Score"] for r in call(conn, "prioritize", {"Pod": pod, "NodeNames": passing})}
                best = max(scores.values())
                host = rng.choice([h for h, s in scores.items() if s == best])
                meta = pod["metadata"]
                result = call(conn, "bind", {"PodName": meta["name"], "PodNamespace": meta["namespace"],
                                             "PodUID": meta["uid"], "Node": host})
                with lock:
                    if result["Error"]:
                        stats["bind_refused"] += 1
                        continue
                    stats["bound"] += 1
                break

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return stats


def race(tmp_path: Path, *, assume: bool, hosts: int, pods: int, clients: int, lag: float,
         seed: int) -> dict:
    rng = random.Random(seed)
    initial = {f"host-{h:02d}": [(rng.randint(0, 5) * 1000, rng.randint(0, 16) * GI) for _ in range(2)]
               for h in range(hosts)}
    d = tmp_path / ("assume" if assume else "no-assume")
    d.mkdir()
    exporter = FakeExporter(d, initial, 0, lag, 0.05)
    exporter.publish([], time.time())
    ext = Extender.from_path(d, assume=assume, assume_ttl=60)
    srv = make_server(ext, "127.0.0.1", 0, workers=4)
    server_thread = threading.Thread(target=srv.serve_forever, daemon=True)
    server_thread.start()
    ext.watch(0.02)
    exporter.port = srv.server_address[1]
    exporter.thread.start()
    try:
        def guaranteed(cpu_m: int, mem_gi: int) -> dict:   # whole CPUs: the kubelet aligns it
            amounts = {"cpu": f"{cpu_m}m", "memory": f"{mem_gi}Gi"}
            return {"requests": amounts, "limits": amounts}

        todo = [{"metadata": {"name": f"p-{i}", "namespace": "race", "uid": f"u-{seed}-{i}"},
                 "spec": {"containers": [{"name": "c", "resources": guaranteed(
                     rng.choice([1000, 2000, 3000]), rng.choice([1, 2, 4]))}]}}
                for i in range(pods)]
        stats = schedule(srv.server_address[1], sorted(initial), todo, clients, seed)
        bindings = ext.bindings()["bindings"]
        # let the exporter catch up: every reservation is then confirmed by the source
        deadline = time.monotonic() + 30
        while assume and len(ext.cache) and time.monotonic() < deadline:
            time.sleep(0.05)
        stats["held_at_end"] = len(ext.cache)
        stats["released"] = dict(ext.cache.released)
    finally:
        exporter.stop.set()
        exporter.thread.join()
        ext.stop()
        srv.shutdown()
        srv.server_close()
    over = excess = 0
    for host, base in initial.items():
        for k in range(2):
            cpu = base[k][0] + sum(b["cpuMillicores"][k] for b in bindings if b["node"] == host)
            mem = base[k][1] + sum(b["memoryBytes"][k] for b in bindings if b["node"] == host)
            over += cpu > CPU * 1000 or mem > MEM * GI
            excess += max(cpu - CPU * 1000, 0)
    stats["over_capacity"] = over           # NUMA nodes over capacity (CPU or memory)
    stats["excess_cpu_m"] = excess          # millicores bound beyond capacity, summed
    stats["bindings"] = len(bindings)
    return stats


def test_assume_cache_never_over_commits_while_the_source_lags(tmp_path):
    with_cache = race(tmp_path, assume=True, hosts=6, pods=120, clients=8, lag=0.5, seed=1)
    assert with_cache["over_capacity"] == 0, with_cache
    assert with_cache["bound"] == with_cache["bindings"] > 0
    assert with_cache["held_at_end"] == 0                      # all confirmed by the source
    assert with_cache["released"]["confirmed"] == with_cache["bound"]
    baseline = race(tmp_path, assume=False, hosts=6, pods=120, clients=8, lag=0.5, seed=1)
    assert baseline["over_capacity"] > 0, baseline            # the bug the cache removes


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(5))
def test_assume_cache_race_many_pods(tmp_path, seed):
    with_cache = race(tmp_path, assume=True, hosts=20, pods=600, clients=24, lag=1.0, seed=seed)
    assert with_cache["over_capacity"] == 0, with_cache
    assert with_cache["held_at_end"] == 0
    baseline = race(tmp_path, assume=False, hosts=20, pods=600, clients=24, lag=1.0, seed=seed)
    assert baseline["over_capacity"] > 0, baseline


def test_reservations_expire_when_the_source_never_lists_the_pod():
    now = [100.0]
    cache = AssumeCache(ttl=30, clock=lambda: now[0])
    cache.add("u1", "ns", "a", "host-0", [2000, 0], [GI, 0], 0b1)
    cache.add("u2", "ns", "b", "host-0", [0, 1000], [0, GI], 0b10)
    assert cache.reconcile(["host-0"], [{PODS_ATTRIBUTE: "ns/b"}]) == 1   # b is in the source
    assert [r.name for r in cache.reservations()] == ["a"]
    now[0] += 29.9
    assert cache.reconcile(["host-0"], [{}]) == 0
    now[0] += 0.2
    assert cache.reconcile(["host-0"], [{}]) == 1
    assert len(cache) == 0 and cache.released == {"confirmed": 1, "expired": 1, "forgotten": 0}
    with pytest.raises(ValueError, match="ttl must be positive"):
        AssumeCache(ttl=0)


# ---------------------------------------------------------------------------------------------
# kill -9: the extender process dies at random points and restarts from its journal
# ---------------------------------------------------------------------------------------------
REPO = Path(__file__).resolve().parents[1]
HOST_CPU = 8_000        # one NUMA node per host here, so a Binding names all a pod takes


class FakeAPIServer:
    """Records pods/binding POSTs (the cluster's truth); a second binding of a pod is 409."""

    def __init__(self):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.bound: dict[str, tuple[str, float]] = {}    # "ns/name" -> (node, time)
        self.requests: list[tuple[str, str, dict]] = []   # (path, Authorization, body)
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = f"{body['metadata']['namespace']}/{body['metadata']['name']}"
                with lock:
                    outer.requests.append((self.path, self.headers["Authorization"], body))
                    code = 409 if key in outer.bound else 201
                    if code == 201:
                        outer.bound[key] = (body["target"]["name"], time.time())
                payload = json.dumps({"kind": "Status", "message": "pod is already assigned"
                                      if code == 409 else ""}).encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def start_extender(directory: Path, api_url: str, journal: bool) -> tuple[subprocess.Popen, int]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    state = ["--state", str(directory / "state.jsonl")] if journal else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "numasched", "extender", "--topology", str(directory / "nrt"),
         "--port", "0", "--bind-api-server", api_url, "--refresh", "0.05", "--assume-ttl", "60",
         *state],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    line = proc.stderr.readline()
    m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
    assert m, line + proc.stderr.read()
    threading.Thread(target=proc.stderr.read, daemon=True).start()   # drain the log
    return proc, int(m.group(1))


def crash_race(tmp_path: Path, *, hosts: int, pods: int, clients: int, kills: int, lag: float,
               seed: int, journal: bool = True) -> dict:
    rng = random.Random(seed)
    tmp_path = tmp_path / ("journal" if journal else "no-journal")
    (tmp_path / "nrt").mkdir(parents=True)
    initial = {f"host-{h:02d}": rng.randint(0, 4) * 1000 for h in range(hosts)}
    requests = {f"race/p-{i}": rng.choice([500, 1000, 1500, 2000]) for i in range(pods)}
    api = FakeAPIServer()
    stop = threading.Event()

    def export():
        while True:
            now = time.time()
            for host, base in initial.items():
                mine = [k for k, (node, t) in list(api.bound.items()) if node == host and t <= now - lag]
                tmp = tmp_path / "nrt" / f".{host}.tmp"
                tmp.write_text(nrt(host, [base + sum(requests[k] for k in mine)], [0], mine,
                                   cpu=HOST_CPU, mem=64 * GI))
                os.replace(tmp, tmp_path / "nrt" / f"{host}.json")
            if stop.wait(0.05):
                return

    exporter = threading.Thread(target=export, daemon=True)
    stop.set()
    export()                     # the first files, before the extender reads them
    stop.clear()
    exporter.start()
    state = {"port": None, "restarts": 0}
    proc, state["port"] = start_extender(tmp_path, api.url, journal)
    queue = list(requests)
    lock = threading.Lock()
    names = sorted(initial)

    def client(i):
        conn, port = None, None
        while True:
            with lock:
                if not queue:
                    return
                key = queue.pop()
            ns, name = key.split("/")
            pod = {"metadata": {"name": name, "namespace": ns, "uid": f"u-{key}"},
                   "spec": {"containers": [{"name": "c", "resources": {"requests": {
                       "cpu": f"{requests[key]}m", "memory": "1Gi"}}}]}}
            for _ in range(20):
                try:
                    if conn is None or port != state["port"]:
                        port = state["port"]
                        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

                    def call(verb, body):
                        conn.request("POST", f"/{verb}", json.dumps(body))
                        return json.loads(conn.getresponse().read())

                    passing = call("filter", {"Pod": pod, "NodeNames": names})["NodeNames"]
                    if not passing:
                        break
                    scores = call("prioritize", {"Pod": pod, "NodeNames": passing})
                    host = max(scores, key=lambda r: r["Score"])["Host"]
                    if not call("bind", {"PodName": name, "PodNamespace": ns,
                                         "PodUID": f"u-{key}", "Node": host})["Error"]:
                        break
                except (OSError, http.client.HTTPException, ValueError):
                    conn = None
                    time.sleep(0.1)            # the extender is restarting

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    try:
        # kill at random points while pods are being bound (after a random number of binds)
        marks = sorted(rng.sample(range(2, max(3, pods // 4)), kills))
        for mark in marks:
            deadline = time.monotonic() + 60
            while len(api.bound) < mark and any(t.is_alive() for t in threads) \
                    and time.monotonic() < deadline:
                time.sleep(0.005)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            proc, state["port"] = start_extender(tmp_path, api.url, journal)
            state["restarts"] += 1
        for t in threads:
            t.join()
    finally:
        proc.kill()
        proc.wait()
        stop.set()
        exporter.join()
        api.server.shutdown()
        api.server.server_close()
    used = dict(initial)
    for key, (node, _) in api.bound.items():
        used[node] += requests[key]
    return {"bound": len(api.bound), "restarts": state["restarts"],
            "over_capacity": sum(u > HOST_CPU for u in used.values())}


def test_a_killed_extender_restarts_from_its_journal_without_over_committing(tmp_path):
    result = crash_race(tmp_path, hosts=6, pods=80, clients=6, kills=1, lag=10.0, seed=3)
    assert result["restarts"] == 1 and result["bound"] > 0
    assert result["over_capacity"] == 0, result


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(3))
def test_kill_9_race_many_times(tmp_path, seed):
    result = crash_race(tmp_path, hosts=12, pods=300, clients=12, kills=5, lag=10.0, seed=seed)
    assert result["restarts"] == 5
    assert result["over_capacity"] == 0, result
    # the same kills without the journal: the restarted extender forgets what it bound
    baseline = crash_race(tmp_path, hosts=12, pods=300, clients=12, kills=5, lag=10.0, seed=seed,
                          journal=False)
    assert baseline["over_capacity"] > 0, baseline
