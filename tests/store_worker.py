"""A process that works on a shared store, for the crash, concurrency and leader tests.

    python store_worker.py churn URL SEED      apply / delete / reconcile / host changes forever
    python store_worker.py apply URL PREFIX N  apply N Pods one by one (no reconcile)
    python store_worker.py serve URL LEASE     the controller loop with leader election
    python store_worker.py increment URL N     N read-modify-write updates of one Deployment
                                               (its replicas + 1), retried on Conflict
    python store_worker.py open DIR N T0       open N fresh SQLite stores DIR/k.db, store k at
                                               time T0 + k / 20 (other workers open the same)

Every operation is announced on stdout before it starts (``BEGIN ...``) and after it returned
(``ACK ...``), flushed, so a test that kills the process knows what was acknowledged.
"""
from __future__ import annotations

import random
import sys
import threading
import time

from numasched.control import Conflict, Controller, QuotaExceeded


def pod(name: str, cpu: str) -> dict:
    return {"kind": "Pod", "metadata": {"name": name, "namespace": "team"}, "spec": {
        "containers": [{"name": "c", "resources": {"requests": {"cpu": cpu, "memory": "1Gi"}}}]}}


def say(*words) -> None:
    print(*words, flush=True)


def churn(url: str, seed: int) -> None:
    rng = random.Random(seed)
    c = Controller(store=url, backend="cython")
    if "team" not in {n["metadata"]["name"] for n in c.list("Namespace")}:
        c.apply([{"kind": "Namespace", "metadata": {"name": "team"}},
                 {"kind": "ResourceQuota", "metadata": {"name": "q", "namespace": "team"},
                  "spec": {"hard": {"requests.cpu": "40", "pods": "30"}}}])
    for h in ("h0", "h1", "h2"):
        if not [x for x in c.list("Host") if x["metadata"]["name"] == h]:
            c.ops.add_host(h, nodes=[("8", "32Gi"), ("8", "32Gi")])
    say("READY")
    i = 0
    while True:
        i += 1
        op = rng.random()
        if op < 0.45:
            name = f"p{seed}-{i}"
            say("BEGIN", "create", name)
            try:
                c.apply(pod(name, rng.choice(["1", "2", "3"])))
            except QuotaExceeded:
                say("ACK", "refused", name)
                continue
            say("ACK", "create", name)
        elif op < 0.6:
            pods = [p["metadata"]["name"] for p in c.list("Pod", "team")]
            if pods:
                name = rng.choice(pods)
                say("BEGIN", "delete", name)
                c.delete("Pod", "team", name)
                say("ACK", "delete", name)
        elif op < 0.7:
            say("BEGIN", "deploy")
            try:
                c.apply({"kind": "Deployment", "metadata": {"name": "web", "namespace": "team"},
                         "spec": {"replicas": rng.randint(0, 8), "template": {"spec": {
                             "containers": [{"name": "c", "resources": {"requests": {
                                 "cpu": "1", "memory": "1Gi"}}}]}}}})
            except QuotaExceeded:
                pass
            say("ACK", "deploy")
        elif op < 0.8:
            h = rng.choice(["h0", "h1", "h2"])
            state = c.get("Host", None, h)["status"]["state"]
            say("BEGIN", "host", h)
            if state == "ready":
                c.ops.fail_host(h)
            else:
                c.ops.recover_host(h)
            say("ACK", "host", h)
        else:
            say("BEGIN", "reconcile")
            c.reconcile()
            say("ACK", "reconcile")


def apply_many(url: str, prefix: str, n: int) -> None:
    c = Controller(store=url, backend="cython")
    for i in range(n):
        c.apply({"kind": "Pod", "metadata": {"name": f"{prefix}-{i}"}, "spec": {
            "containers": [{"name": "c", "resources": {"requests": {"cpu": "1m"}}}]}})
        say("ACK", f"{prefix}-{i}")


def increment(url: str, n: int) -> None:
    c = Controller(store=url, backend="cython")
    conflicts = 0
    for _ in range(n):
        while True:
            current = c.get("Deployment", "default", "counter")
            manifest = {"kind": "Deployment", "metadata": {
                "name": "counter", "resourceVersion": current["metadata"]["resourceVersion"]},
                "spec": dict(current["spec"], replicas=current["spec"]["replicas"] + 1)}
            try:
                c.apply(manifest)
                break
            except Conflict:
                conflicts += 1
    say("CONFLICTS", conflicts)


def open_fresh(directory: str, n: int, t0: float) -> None:
    from numasched.control.backends import open_store

    for k in range(n):
        while time.time() < t0 + k / 20:
            pass   # spin: the workers' opens of one file start within microseconds
        try:
            open_store(f"sqlite:///{directory}/{k}.db")
            say("OPENED", k)
        except ValueError as exc:
            say("FAILED", k, exc)


def serve(url: str, lease: float) -> None:
    c = Controller(store=url, backend="cython")

    def report(result, leader):
        if leader:
            say("LEADER", result.round, result.count("placed"))

    c.serve(interval=0.05, lease=lease, stop=threading.Event(), on_round=report)


if __name__ == "__main__":
    mode, url = sys.argv[1], sys.argv[2]
    if mode == "churn":
        churn(url, int(sys.argv[3]))
    elif mode == "apply":
        apply_many(url, sys.argv[3], int(sys.argv[4]))
    elif mode == "increment":
        increment(url, int(sys.argv[3]))
    elif mode == "open":
        open_fresh(url, int(sys.argv[3]), float(sys.argv[4]))
    else:
        serve(url, float(sys.argv[3]))
