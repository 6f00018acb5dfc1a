"""Group "stores": the controller on its durable stores, side by side in one run.

- ``reconcile-100k``: the 100,000 pending pods of ``test_controller.py`` (one Deployment per VM
  size of the Azure mix, 10,000 demo hosts), one ``reconcile()`` on ``memory://``, on a SQLite
  file and on etcd; the round is one transaction (one commit). Target: SQLite at most 3x the
  in-memory round.
- ``apply``: objects per second of one-Pod applies (each one committed) on each store.

Run: ``python -m pytest benchmarks/test_stores.py --benchmark-only -s`` (etcd: started on a free
port, as in the tests).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from numasched.control import Controller
from test_controller import N_HOSTS, azure_deployments, deployment_manifest, CPU_PER_NODE, MEM_PER_NODE

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from etcd_server import start_etcd, stop_etcd  # noqa: E402

N_APPLY = 200
N_BATCH = 5_000


@pytest.fixture(scope="module")
def etcd(tmp_path_factory):
    server = start_etcd(tmp_path_factory.mktemp("etcd"))
    yield server.url
    stop_etcd(server)


def loaded(url: str, deployments) -> Controller:
    c = Controller(store=url, backend="cython")
    node = {"cpu": f"{CPU_PER_NODE}m", "memory": str(MEM_PER_NODE)}
    c.apply({"hosts": [{"name": "host", "count": N_HOSTS, "nodes": [node, node]}]})
    c.apply([deployment_manifest(i, cpu, mem, k) for i, (cpu, mem, k) in enumerate(deployments)])
    return c


def test_reconcile_100k_per_store(tmp_path, etcd, figures):
    deployments = azure_deployments(100_000)
    times = {}
    # memory first and last (the warmed-up figure of the two is kept), the stores in between
    for name, url in (("memory", "memory://"), ("sqlite", f"sqlite:///{tmp_path}/bench.db"),
                      ("etcd", etcd), ("memory", "memory://")):
        c = loaded(url, deployments)
        t0 = time.perf_counter()
        result = c.reconcile()
        elapsed = time.perf_counter() - t0
        times[name] = min(elapsed, times.get(name, elapsed))
        assert c.audit() == [] and result.count("placed") > 0
        c.close()
    ratio_sqlite = times["sqlite"] / times["memory"]
    ratio_etcd = times["etcd"] / times["memory"]
    figures(f"stores reconcile-100k: memory {times['memory']:.3f} s, sqlite {times['sqlite']:.3f} s "
            f"({ratio_sqlite:.2f}x, target <= 3x), etcd {times['etcd']:.3f} s ({ratio_etcd:.2f}x)")


def test_apply_throughput_per_store(tmp_path, etcd, figures):
    rates, batched = {}, {}
    for name, url in (("memory", "memory://"), ("sqlite", f"sqlite:///{tmp_path}/apply.db"),
                      ("etcd", etcd)):
        c = Controller(store=url, backend="cython")
        t0 = time.perf_counter()
        for i in range(N_APPLY):
            c.apply({"kind": "Pod", "metadata": {"name": f"bench-{i}"}, "spec": {"containers": [
                {"name": "c", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]}})
        rates[name] = N_APPLY / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        c.apply([{"kind": "Pod", "metadata": {"name": f"batch-{i}"}, "spec": {"containers": [
            {"name": "c", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]}}
            for i in range(N_BATCH)])
        batched[name] = N_BATCH / (time.perf_counter() - t0)
        c.close()
    figures("stores apply, one Pod per call (each committed): " + ", ".join(
        f"{n} {r:,.0f} objects/s" for n, r in rates.items()))
    figures(f"stores apply, {N_BATCH:,} Pods in one call (one commit): " + ", ".join(
        f"{n} {r:,.0f} objects/s" for n, r in batched.items()))
