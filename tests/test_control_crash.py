"""Durable stores under real processes: kill -9 at random points, two writers, leader election.

Each test runs real worker processes (``store_worker.py``) against a real SQLite file or a real
etcd server, kills them with real signals, reopens the store and checks the invariants: no
acknowledged write lost, nothing bound twice or to a missing host, no NUMA node over capacity,
no quota exceeded (``Controller.audit()`` is empty).
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time

import pytest

from numasched.control import Controller

HERE = os.path.dirname(__file__)
WORKER = os.path.join(HERE, "store_worker.py")
KILLS = int(os.environ.get("NUMASCHED_CRASH_KILLS", "3"))


def start(*args) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(HERE)] + os.environ.get("PYTHONPATH", "").split(os.pathsep)))
    return subprocess.Popen([sys.executable, WORKER, *map(str, args)], stdout=subprocess.PIPE,
                            text=True, env=env)


class Lines:
    """The lines a worker printed, read by a thread (so a killed worker's are all kept)."""

    def __init__(self, process: subprocess.Popen):
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process):
        for line in process.stdout:
            if line.endswith("\n"):     # a line cut by the kill is not a whole message
                self.lines.append(line.split())

    def wait_for(self, word: str, timeout: float = 60) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in self.lines:
                if line and line[0] == word:
                    return line
            time.sleep(0.02)
        raise AssertionError(f"the worker never printed {word!r}: {self.lines[-5:]}")

    def join(self):
        self._thread.join(10)


def kill9(process: subprocess.Popen) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def check_after_crash(url: str, lines: list[list[str]]) -> None:
    c = Controller(store=url, backend="cython")
    assert c.audit() == []
    pods = {p["metadata"]["name"] for p in c.list("Pod", "team")}
    in_flight = lines[-1] if lines and lines[-1][:1] == ["BEGIN"] else None
    alive = set()
    for line in lines:
        if line[0] == "ACK" and line[1] == "create":
            alive.add(line[2])
        elif line[0] == "ACK" and line[1] == "delete":
            alive.discard(line[2])
    if in_flight and in_flight[1] == "delete":
        alive.discard(in_flight[2])
    assert alive <= pods, f"acknowledged Pods lost: {sorted(alive - pods)}"
    # a reconcile on the reopened store works and keeps every invariant
    c.reconcile()
    assert c.audit() == []
    c.close()


def crash_loop(url: str, kills: int, seed: int) -> None:
    rng = random.Random(seed)
    for k in range(kills):
        worker = start("churn", url, seed * 100 + k)
        out = Lines(worker)
        out.wait_for("READY")
        time.sleep(rng.uniform(0.05, 0.8))
        kill9(worker)
        out.join()
        check_after_crash(url, out.lines)


def test_kill_9_at_random_points_loses_nothing_on_sqlite(tmp_path):
    crash_loop(f"sqlite:///{tmp_path}/state.db", KILLS, seed=1)


def test_kill_9_at_random_points_loses_nothing_on_etcd(etcd_url):
    # a fresh prefix per test is not needed: the churn worker works in its own namespace and
    # the invariants hold whatever else the store holds
    crash_loop(etcd_url, KILLS, seed=2)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "etcd"])
def test_kill_9_many_times(backend, tmp_path, request):
    url = (f"sqlite:///{tmp_path}/state.db" if backend == "sqlite"
           else request.getfixturevalue("etcd_url"))
    crash_loop(url, 40, seed=3)


def test_processes_opening_one_fresh_sqlite_store_at_once_all_succeed(tmp_path):
    # Turning a new file to WAL takes an exclusive lock that SQLite does not wait for: before
    # the store retried, about one open in ten of four racing processes failed.
    n, workers = 40, 4
    t0 = time.time() + 3.0   # after every worker has imported numasched
    procs = [start("open", tmp_path, n, t0) for _ in range(workers)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs)
    lines = [line for out in outs for line in out.splitlines()]
    assert sorted(lines) == sorted(f"OPENED {k}" for k in range(n) for _ in range(workers)), \
        [line for line in lines if not line.startswith("OPENED")]


@pytest.mark.parametrize("backend", ["sqlite", "etcd"])
def test_two_processes_applying_to_one_store_lose_no_update(backend, tmp_path, request):
    url = (f"sqlite:///{tmp_path}/state.db" if backend == "sqlite"
           else request.getfixturevalue("etcd_url"))
    n = 25
    workers = [start("apply", url, f"w{backend}{i}", n) for i in range(2)]
    for w in workers:
        assert w.wait(120) == 0
    c = Controller(store=url, backend="cython")
    names = {p["metadata"]["name"] for p in c.list("Pod")}
    for i in range(2):
        assert {f"w{backend}{i}-{j}" for j in range(n)} <= names
    assert c.audit() == []
    # every commit took its own revision: none was overwritten by the other process
    revisions = [int(p["metadata"]["resourceVersion"]) for p in c.list("Pod")
                 if p["metadata"]["name"].startswith(f"w{backend}")]
    assert len(set(revisions)) == 2 * n


@pytest.mark.parametrize("backend", ["sqlite", "etcd"])
def test_read_modify_write_from_two_processes_loses_no_update(backend, tmp_path, request):
    """Two processes each add 1 to a Deployment's replicas 15 times (get, then apply with the
    resourceVersion read; a Conflict means read again): the result is exactly +30."""
    url = (f"sqlite:///{tmp_path}/state.db" if backend == "sqlite"
           else request.getfixturevalue("etcd_url"))
    c = Controller(store=url, backend="cython")
    try:
        c.delete("Deployment", "default", "counter")
    except ValueError:
        pass
    c.apply({"kind": "Deployment", "metadata": {"name": "counter"}, "spec": {
        "replicas": 0, "template": {"spec": {"containers": [
            {"name": "c", "resources": {"requests": {"cpu": "1m"}}}]}}}})
    workers = [start("increment", url, 15) for _ in range(2)]
    outs = [Lines(w) for w in workers]
    for w in workers:
        assert w.wait(120) == 0
    for o in outs:
        o.join()
    assert c.get("Deployment", "default", "counter")["spec"]["replicas"] == 30
    assert c.audit() == []


def test_leader_election_on_etcd_kill_and_pause(etcd_url):
    """Three controllers on one etcd: exactly one reconciles; kill -9 it and another takes
    over within the lease; a paused (SIGSTOP) leader whose lease expired cannot write when it
    resumes, and nothing is ever bound twice."""
    lease = 2.0
    c = Controller(store=etcd_url, backend="cython")
    c.ops.add_host("lead-h", nodes=[("64", "256Gi")])
    procs = [start("serve", etcd_url, lease) for _ in range(3)]
    outs = [Lines(p) for p in procs]
    try:
        def leading(window: float = 0.5) -> list[int]:
            counts = [len(o.lines) for o in outs]
            time.sleep(window)
            return [i for i, o in enumerate(outs) if len(o.lines) > counts[i] and procs[i].poll() is None]

        deadline = time.monotonic() + 30
        while not (who := leading()) and time.monotonic() < deadline:
            pass
        assert len(who) == 1, f"leaders: {who}"
        first = who[0]
        # the leader reconciles what is applied
        c.apply({"kind": "Pod", "metadata": {"name": "lead-a"}, "spec": {"containers": [
            {"name": "c", "resources": {"requests": {"cpu": "1"}}}]}})
        time.sleep(0.5)
        assert c.get("Pod", "default", "lead-a")["status"]["phase"] == "Running"
        # kill -9 the leader: another takes over within the lease (plus a round)
        kill9(procs[first])
        time.sleep(lease + 0.5)
        who = leading()
        assert len(who) == 1 and who[0] != first, f"leaders after the kill: {who}"
        second = who[0]
        # pause the new leader past its lease; a third takes over; the paused one resumes
        os.kill(procs[second].pid, signal.SIGSTOP)
        time.sleep(lease + 1.0)
        c.apply({"kind": "Pod", "metadata": {"name": "lead-b"}, "spec": {"containers": [
            {"name": "c", "resources": {"requests": {"cpu": "1"}}}]}})
        time.sleep(0.5)
        assert c.get("Pod", "default", "lead-b")["status"]["phase"] == "Running"
        os.kill(procs[second].pid, signal.SIGCONT)
        time.sleep(0.5)
        who = leading()
        assert len(who) == 1 and who[0] not in (first, second), f"leaders after the pause: {who}"
        assert c.audit() == []
        assert {c.get("Pod", "default", n)["status"]["host"] for n in ("lead-a", "lead-b")} \
            <= {h["metadata"]["name"] for h in c.list("Host")}
    finally:
        for p in procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGCONT)
                kill9(p)


def test_leader_election_on_sqlite_kill_9(tmp_path):
    """Two controllers on one SQLite file: one reconciles; kill -9 it, the other takes over."""
    url = f"sqlite:///{tmp_path}/state.db"
    lease = 1.0
    Controller(store=url, backend="cython").ops.add_host("h", nodes=[("8", "8Gi")])
    procs = [start("serve", url, lease) for _ in range(2)]
    outs = [Lines(p) for p in procs]
    try:
        def leading() -> list[int]:
            counts = [len(o.lines) for o in outs]
            time.sleep(0.6)
            return [i for i, o in enumerate(outs)
                    if len(o.lines) > counts[i] and procs[i].poll() is None]

        deadline = time.monotonic() + 30
        while not (who := leading()) and time.monotonic() < deadline:
            pass
        assert len(who) == 1, who
        kill9(procs[who[0]])
        time.sleep(lease + 0.5)
        after = leading()
        assert len(after) == 1 and after != who, after
        c = Controller(store=url, backend="cython")
        c.apply({"kind": "Pod", "metadata": {"name": "x"}, "spec": {"containers": [
            {"name": "c", "resources": {"requests": {"cpu": "1"}}}]}})
        time.sleep(0.5)
        assert c.get("Pod", "default", "x")["status"]["phase"] == "Running"
        assert c.audit() == []
    finally:
        for p in procs:
            if p.poll() is None:
                kill9(p)


def test_the_controller_service_stops_cleanly_on_sigterm(tmp_path):
    url = f"sqlite:///{tmp_path}/state.db"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(HERE)] + os.environ.get("PYTHONPATH", "").split(os.pathsep)))
    service = subprocess.Popen([sys.executable, "-m", "numasched", "controller", "--store", url,
                                "--interval", "0.05", "--lease", "2"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    c = None
    while time.monotonic() < deadline:          # wait until it holds the lease
        c = c or (Controller(store=url, backend="cython") if os.path.exists(f"{tmp_path}/state.db")
                  else None)
        if c is not None and c._kv.get("/numasched/leader"):
            break
        time.sleep(0.1)
    os.kill(service.pid, signal.SIGTERM)
    out, err = service.communicate(timeout=30)
    assert service.returncode == 0, err
    assert c._kv.get("/numasched/leader") is None      # the lease was given back
