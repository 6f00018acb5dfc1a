"""Load on the extender over real HTTP, from client processes apart from the server's.

Two measurements, each printed as a table and saved as JSON under benchmarks/results/:

``connections`` (the server itself): 200 concurrent clients POST ``filter`` for one pod
against a small topology, with a new connection per request and with keep-alive; requests/s,
p50/p99 latency and failed requests (resets, timeouts, non-200) for the server of this tree
(``after``) and, side by side in the same run, the server as it was on ``--before-ref``
(``before``, default ``main``), started from that revision's source.

``throughput`` (5,000 nodes): concurrent clients each schedule pods as kube-scheduler does with
``nodeCacheCapable: true``: ``filter`` then ``prioritize`` for one pod with all 5,000 node
names; pods/s and p50/p99 of the pair. Pods come from ``--shapes`` distinct requests (the
replicas of a few Deployments share one shape; ``--shapes 0`` makes every pod distinct). The
extender of this tree (``after``) and, in the same run, this tree with ``numasched/extender/``
as it was on ``--before-ref`` (``before``) take turns, one server at a time.

    python benchmarks/extender_load.py connections [--clients 200] [--seconds 10]
    python benchmarks/extender_load.py throughput [--nodes 5000] [--clients 32] [--seconds 20]
        [--rounds 2] [--before-ref main]

Clients are asyncio connections spread over ``--processes`` processes; the server runs in its
own process (``numasched extender``), so neither side's GIL throttles the other.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

def write_topology(directory: Path, nodes: int, seed: int = 7) -> list[str]:
    """``nodes`` NRT objects (2 NUMA nodes x 32 cores x 128 GiB) in one JSON List file, free
    capacity drawn at random."""
    from numasched import Cluster
    from numasched.io.topology import Topology, to_nrt

    rng = np.random.default_rng(seed)
    names = tuple(f"node-{i:05d}" for i in range(nodes))
    full = Cluster.uniform(hosts=nodes, nodes_per_host=2, cpu_per_node=32_000,
                           mem_per_node=128 * 2**30)
    cluster = full.with_free(rng.integers(0, 33, size=(nodes, 2)) * 1000,
                             rng.integers(0, 129, size=(nodes, 2)) * 2**30)
    topology = Topology(cluster=cluster, names=names, attributes=({},) * nodes,
                        sources=("benchmark",) * nodes)
    (directory / "nrt.json").write_text(json.dumps({"kind": "List", "items": to_nrt(topology)}))
    return list(names)


def pod(i: int, cpu_m: int, mem_mi: int) -> dict:
    return {"metadata": {"name": f"web-{i}", "namespace": "bench", "uid": f"uid-{i}"},
            "spec": {"containers": [{"name": "c", "resources": {
                "requests": {"cpu": f"{cpu_m}m", "memory": f"{mem_mi}Mi"}}}]}}


def go_json(value) -> bytes:
    """JSON as kube-scheduler's Go client sends it (json.Marshal: no spaces)."""
    return json.dumps(value, separators=(",", ":")).encode()


# ---------------------------------------------------------------------------------------------
# servers
# ---------------------------------------------------------------------------------------------
OLD_RUNNER = """
import sys, threading
sys.path.insert(0, {old_dir!r})
import old_server
ext = old_server.Extender.from_path({topology!r})
ext.warm_up()
srv = old_server.make_server(ext, "127.0.0.1", 0)
print("listening on http://127.0.0.1:%d" % srv.server_address[1], file=sys.stderr, flush=True)
srv.serve_forever()
"""


def package_at(ref: str, workdir: Path) -> Path:
    """A copy of this tree's ``numasched`` package (built kernels included) with
    ``numasched/extender/`` as it was on ``ref``; the directory to put on ``PYTHONPATH``."""
    import shutil

    root = workdir / "before-tree"
    if not root.exists():
        shutil.copytree(ROOT / "numasched", root / "numasched",
                        ignore=shutil.ignore_patterns("__pycache__"))
        shutil.rmtree(root / "numasched" / "extender")
        (root / "numasched" / "extender").mkdir()
        files = subprocess.run(["git", "-C", str(ROOT), "ls-tree", "--name-only", ref,
                                "numasched/extender/"], check=True, capture_output=True,
                               text=True).stdout.split()
        for name in files:
            text = subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:{name}"], check=True,
                                  capture_output=True, text=True).stdout
            (root / name).write_text(text)
    return root


def start_server(which: str, topology: Path, ref: str, workdir: Path, workers: int = 8,
                 tree: Path = ROOT) -> tuple[subprocess.Popen, int]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(tree), os.environ.get("PYTHONPATH")])))
    if which == "after":
        cmd = [sys.executable, "-m", "numasched", "extender", "--topology", str(topology),
               "--port", "0", "--workers", str(workers)]
    else:
        source = subprocess.run(["git", "-C", str(ROOT), "show", f"{ref}:numasched/extender/server.py"],
                                check=True, capture_output=True, text=True).stdout
        source = re.sub(r"from \.\.(\w*)", lambda m: "from numasched" + ("." + m[1] if m[1] else ""),
                        source)
        (workdir / "old_server.py").write_text(source)
        runner = workdir / "run_old.py"
        runner.write_text(OLD_RUNNER.format(old_dir=str(workdir), topology=str(topology)))
        cmd = [sys.executable, str(runner)]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    line = proc.stderr.readline()
    m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
    if not m:
        proc.kill()
        raise SystemExit(f"{which} server did not start: {line}{proc.stderr.read()}")
    return proc, int(m.group(1))


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ---------------------------------------------------------------------------------------------
# clients
# ---------------------------------------------------------------------------------------------
def http_request(path: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def read_response(reader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    m = re.search(rb"(?i)content-length: *(\d+)", head)
    body = await reader.readexactly(int(m.group(1))) if m else b""
    return status, body


async def client_loop(port, make_requests, deadline, keep_alive, out, timeout=30.0):
    """Run request sequences (one per scheduled item) until ``deadline``; append the latency of
    each sequence to ``out['lat']``, failures to ``out['failed']``."""
    conn = None
    while time.monotonic() < deadline:
        t0 = time.perf_counter()
        try:
            for raw in make_requests():
                if conn is None:
                    conn = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
                reader, writer = conn
                writer.write(raw)
                status, _ = await asyncio.wait_for(read_response(reader), timeout)
                if status != 200:
                    raise RuntimeError(f"status {status}")
                if not keep_alive:
                    writer.close()
                    conn = None
            out["lat"].append(time.perf_counter() - t0)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, RuntimeError) as exc:
            out["failed"].append(type(exc).__name__ + ": " + str(exc)[:60])
            if conn is not None:
                conn[1].close()
            conn = None
    if conn is not None:
        conn[1].close()


def client_process(port, spec, clients, seconds, keep_alive, start_at, queue):
    """One load process: ``clients`` connections for ``seconds`` from ``start_at`` (time.time)."""
    kind = spec["kind"]
    rng = np.random.default_rng(os.getpid())
    if kind == "connections":
        names_json = go_json(spec["names"])
        counter = iter(range(10**9))

        def make():   # a new pod each time (name and uid), as kube-scheduler sends
            body = (b'{"Pod":' + go_json(pod(os.getpid() * 10**6 + next(counter), 1000, 1024))
                    + b',"Nodes":null,"NodeNames":' + names_json + b"}")
            return [http_request("/filter", body)]
    else:
        names_json = go_json(spec["names"])    # encoded once: clients stay cheap
        shapes = spec["shapes"]
        counter = iter(range(10**9))

        def make():
            i = next(counter)
            s = int(rng.integers(shapes)) if shapes else 10**6 + os.getpid() * 10**6 + i
            cpu, mem = 250 + (s % 16) * 250, 256 + (s % 61) * 64 + (s // 1000) % 1000
            args = b'{"Pod":' + go_json(pod(i, cpu, mem)) + b',"Nodes":null,"NodeNames":' + names_json + b"}"
            return [http_request("/filter", args), http_request("/prioritize", args)]

    out = {"lat": [], "failed": []}

    async def main():
        await asyncio.sleep(max(0.0, start_at - time.time()))
        deadline = time.monotonic() + seconds
        await asyncio.gather(*(client_loop(port, make, deadline, keep_alive, out)
                               for _ in range(clients)))
    asyncio.run(main())
    queue.put(out)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_load(port, spec, clients, processes, seconds, keep_alive, server_pid=None) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    start_at = time.time() + 2.0      # every process starts together, after spawning
    per = [clients // processes + (i < clients % processes) for i in range(processes)]
    procs = [ctx.Process(target=client_process, args=(port, spec, n, seconds, keep_alive, start_at, queue))
             for n in per if n]
    for p in procs:
        p.start()
    time.sleep(max(0.0, start_at - time.time()))
    cpu0 = cpu_seconds(server_pid) if server_pid else None
    outs = [queue.get() for _ in procs]
    cpu1 = cpu_seconds(server_pid) if server_pid else None
    for p in procs:
        p.join()
    lat = np.array([x for o in outs for x in o["lat"]])
    failed = [x for o in outs for x in o["failed"]]
    return {"done": int(lat.size), "failed": len(failed), "per_s": lat.size / seconds,
            "p50_ms": float(np.percentile(lat, 50) * 1e3) if lat.size else None,
            "p99_ms": float(np.percentile(lat, 99) * 1e3) if lat.size else None,
            "failures": sorted(set(failed))[:5],
            # the server's CPU per completed item: what the rate would be on idle cores
            "server_cpu_ms": (cpu1 - cpu0) / lat.size * 1e3 if server_pid and lat.size else None,
            "load_average": os.getloadavg()[0]}


# ---------------------------------------------------------------------------------------------
def connections(args) -> dict:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        names = write_topology(tmp, 4)
        spec = {"kind": "connections", "names": names}
        for which in ("before", "after"):
            proc, port = start_server(which, tmp / "nrt.json", args.before_ref, tmp, args.workers)
            try:
                for mode, keep in (("new connection", False), ("keep-alive", True)):
                    r = run_load(port, spec, args.clients, args.processes, args.seconds, keep, proc.pid)
                    results[f"{which} / {mode}"] = r
                    print(f"{which:6s} {mode:15s} {r['per_s']:8.0f} req/s  p50 {r['p50_ms'] or 0:7.1f} ms"
                          f"  p99 {r['p99_ms'] or 0:7.1f} ms  server CPU {r['server_cpu_ms'] or 0:.2f} ms/req"
                          f"  load {r['load_average']:.1f}  failed {r['failed']} {r['failures'][:2]}",
                          flush=True)
            finally:
                stop_server(proc)
    return results


def throughput(args) -> dict:
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        names = write_topology(tmp, args.nodes)
        for which in ("before", "after") * args.rounds:   # alternated: load drifts
            tree = package_at(args.before_ref, tmp) if which == "before" else ROOT
            proc, port = start_server("after", tmp / "nrt.json", args.before_ref, tmp,
                                      args.workers, tree)
            try:
                for shapes in args.shapes:
                    spec = {"kind": "throughput", "names": names, "shapes": shapes}
                    r = run_load(port, spec, args.clients, args.processes, args.seconds, True,
                                 proc.pid)
                    label = f"{which} / {args.nodes} nodes, {shapes or 'all distinct'} shapes"
                    results.setdefault(label, []).append(r)
                    print(f"{label:42s} {r['per_s']:8.0f} pods/s  p50 {r['p50_ms'] or 0:7.1f} ms  "
                          f"p99 {r['p99_ms'] or 0:7.1f} ms  server CPU {r['server_cpu_ms'] or 0:.2f} "
                          f"ms/pod  load {r['load_average']:.1f}  failed {r['failed']} "
                          f"{r['failures'][:2]}", flush=True)
            finally:
                stop_server(proc)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["connections", "throughput"])
    parser.add_argument("--clients", type=int, default=None)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--shapes", type=int, nargs="+", default=[8, 0])
    parser.add_argument("--before-ref", default="main")
    parser.add_argument("--rounds", type=int, default=2,
                        help="throughput: before/after turns, alternated")
    parser.add_argument("--workers", type=int, default=8, help="the server's --workers")
    parser.add_argument("--save", action="store_true", help="write benchmarks/results/extender_<what>.json")
    args = parser.parse_args()
    if args.what == "connections":
        args.clients = args.clients or 200
        args.seconds = args.seconds or 10
        results = connections(args)
    else:
        args.clients = args.clients or 32
        args.seconds = args.seconds or 20
        results = throughput(args)
    if args.save:
        RESULTS.mkdir(exist_ok=True)
        meta = {"cpus": os.cpu_count(), "clients": args.clients, "seconds": args.seconds,
                "processes": args.processes, "before_ref": args.before_ref,
                "command": " ".join(["python", "benchmarks/extender_load.py"] + sys.argv[1:])}
        (RESULTS / f"extender_{args.what}.json").write_text(
            json.dumps({"settings": meta, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
