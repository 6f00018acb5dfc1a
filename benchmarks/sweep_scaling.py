"""Sweep scaling: the same CPU-bound sweep on 1 and on 2 Dask worker processes, side by side.

    python benchmarks/sweep_scaling.py            # prints both wall times and the speed-up

Each LocalCluster is started and warmed (every worker imports numasched and loads the Numba
caches) before its clock starts, so the ratio compares sweeping, not process start-up. The two
tables must be identical (wall time aside): the script exits 1 otherwise, since a speed-up of a
different computation means nothing. A progress bar runs on stderr when it is a terminal.
"""
from __future__ import annotations

import argparse
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


def timed(workers: int, grid: dict, quiet: bool):
    with sw.connect(workers=workers) as client:
        warm(client)
        with progress(f"{workers} worker{'s' if workers > 1 else ''}", quiet) as advance:
            start = time.perf_counter()
            frame = sw.sweep(grid, client=client, progress=advance)
            return time.perf_counter() - start, frame


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    runs = len(sw.expand(GRID))
    one, frame1 = timed(1, GRID, args.quiet)
    two, frame2 = timed(2, GRID, args.quiet)
    if not sw.same_results(frame1, frame2):
        print("the sweeps on 1 and 2 workers gave different tables", file=sys.stderr)
        return 1
    print(f"{runs} runs; 1 worker: {one:.2f} s, 2 workers: {two:.2f} s; "
          f"speed-up {one / two:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
