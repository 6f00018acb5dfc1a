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
import threading
import time
from pathlib import Path

import pytest

from numasched.extender import PODS_ATTRIBUTE, AssumeCache, Extender, make_server

CPU, MEM = 8, 32          # cores and GiB per NUMA node, two NUMA nodes per host
GI = 2**30


def nrt(name: str, used: list[tuple[int, int]], pods: list[str]) -> str:
    zones = []
    for k, (cpu_m, mem) in enumerate(used):
        zones.append({"name": f"node-{k}", "type": "Node",
                      "costs": [{"name": f"node-{j}", "value": 10 if j == k else 21} for j in range(2)],
                      "resources": [
                          {"name": "cpu", "capacity": str(CPU), "allocatable": str(CPU),
                           "available": f"{max(CPU * 1000 - cpu_m, 0)}m"},
                          {"name": "memory", "capacity": f"{MEM}Gi", "allocatable": f"{MEM}Gi",
                           "available": str(max(MEM * GI - mem, 0))}]})
    return json.dumps({"apiVersion": "topology.node.k8s.io/v1alpha2",
                       "kind": "NodeResourceTopology", "metadata": {"name": name},
                       "attributes": [{"name": "topologyManagerPolicy", "value": "single-numa-node"},
                                      {"name": PODS_ATTRIBUTE, "value": ",".join(pods)}],
                       "zones": zones})


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
            tmp.write_text(nrt(host, [tuple(u) for u in used], pods))
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
        todo = [{"metadata": {"name": f"p-{i}", "namespace": "race", "uid": f"u-{seed}-{i}"},
                 "spec": {"containers": [{"name": "c", "resources": {"requests": {
                     "cpu": f"{rng.choice([500, 1000, 1500, 2000])}m",
                     "memory": f"{rng.choice([1, 2, 4])}Gi"}}}]}} for i in range(pods)]
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
