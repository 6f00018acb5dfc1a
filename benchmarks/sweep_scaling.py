"""Sweep scaling: the same CPU-bound sweep on 1 and on 2 Dask worker processes, side by side.

    python benchmarks/sweep_scaling.py            # prints both wall times and the speed-up

Each LocalCluster is started and warmed (every worker imports numasched and loads the Numba
caches) before its clock starts, so the ratio compares sweeping, not process start-up. The two
tables must be identical (wall time aside): the script exits 1 otherwise, since a speed-up of a
different computation means nothing. A progress bar runs on stderr when it is a terminal.
"""
from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
from pathlib import Path

from numasched.cli.common import progress
from numasched.evaluation import sweep as sw

#: 4 policies x 2 NUMA modes x 2 host counts = 16 replays of the example trace (300 timed
#: requests through the controller): CPU-bound Python, about a second each, all alike.
TRACE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "trace.csv"
GRID = {"policy": ["best-fit", "worst-fit", "balanced", "first-fit"],
        "numa": ["restricted", "none"], "hosts": [3, 4], "workload": [str(TRACE)]}


def warm(client) -> None:
    """One small run on every worker (imports, Numba caches), outside the timing."""
    (run,) = sw.expand({"hosts": [4], "workload": ["mixed:20:20"], "refine": [0.01]})
    topology = sw.uniform_topology(run.cluster.shape, run.cluster.hosts)
    requests = sw.generated_workload(*run.workload.generator, 0)
    client.run(sw.run_one, run.params, topology, requests)


def _spin(n: int) -> int:
    x = 0
    for i in range(n):
        x += i * i
    return x


def ceiling(pool, n: int = 6_000_000) -> float:
    """What a second process gains on this machine right now, without Dask: two equal pure
    Python loops one after the other, against two processes side by side. On an idle 2-core
    machine about 2; on a shared one, whatever the other load leaves."""
    start = time.perf_counter()
    _spin(n)
    _spin(n)
    serial = time.perf_counter() - start
    start = time.perf_counter()
    pool.map(_spin, [n, n], chunksize=1)
    return serial / (time.perf_counter() - start)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3,
                        help="sweeps per worker count, alternating; the fastest of each counts")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    runs = len(sw.expand(GRID))
    best = {1: float("inf"), 2: float("inf")}
    tables = {}
    ceilings = []
    with sw.connect(workers=1) as one, sw.connect(workers=2) as two, \
            multiprocessing.get_context("spawn").Pool(2) as pool:
        pool.map(_spin, [1, 1])
        clients = {1: one, 2: two}
        for client in clients.values():
            warm(client)
        for _ in range(args.repeat):
            for workers, client in clients.items():
                label = f"{workers} worker{'s' if workers > 1 else ''}"
                with progress(f"{label}: {runs} runs", args.quiet) as advance:
                    start = time.perf_counter()
                    frame = sw.sweep(GRID, client=client, progress=advance)
                    best[workers] = min(best[workers], time.perf_counter() - start)
                if workers in tables and not sw.same_results(tables[workers], frame):
                    print(f"two sweeps on {label} gave different tables", file=sys.stderr)
                    return 1
                tables[workers] = frame
            ceilings.append(ceiling(pool))
    if not sw.same_results(tables[1], tables[2]):
        print("the sweeps on 1 and 2 workers gave different tables", file=sys.stderr)
        return 1
    print(f"{runs} runs, fastest of {args.repeat}: 1 worker {best[1]:.2f} s, "
          f"2 workers {best[2]:.2f} s; speed-up {best[1] / best[2]:.2f}x "
          f"(two bare processes, measured between the sweeps: "
          f"{min(ceilings):.2f}x-{max(ceilings):.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
