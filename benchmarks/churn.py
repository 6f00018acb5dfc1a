"""Rebalancing on churn: traces with arrivals and departures replayed through the controller
without rebalancing, with migration plans and with a descheduler-like baseline, side by side.

One command, from the repository root:

    python benchmarks/churn.py                       # the example trace + two generated ones
    python benchmarks/churn.py --requests 4000 --hosts 80 --every 60 --max-moves 10

For each trace, in one run: ``numasched.io.trace.replay`` with ``rebalance=None``, ``"plan"``
(every ``--every`` seconds of trace time a migration plan of at most ``--max-moves`` moves for
fewer hosts is applied: VMs migrate live, Pods are evicted and re-placed on reserved capacity)
and ``"descheduler"`` (at the same times every workload of the least used hosts under 50 %
utilisation is evicted, at most ``--max-moves``, and the scheduler places them again). The
table gives, per mode: time-weighted mean hosts in use (and its ratio to no rebalancing),
time-weighted mean pending requests, mean locality of what runs, requests never placed, moves
per hour, and the replay's wall time as a ratio to the replay without rebalancing (same run).

Generated traces (``churn_trace``): Azure-mix VMs and containers, one in four a VM, Poisson
arrivals whose rate rises and falls once over the trace (a day's peak), log-normal lifetimes
(median ``--lifetime`` seconds; what would leave after the last arrival stays), sized so that
the offered load at the peak is about ``--load`` of the cluster's CPU; hosts of 2 NUMA nodes x
32 cores x 256 GiB. Every mode is warmed up (compiled) on a short generated trace before
anything is timed. The figures land in
``benchmarks/results/churn.json`` and ``churn.png`` (``--plot``).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from numasched.api import Cluster
from numasched.evaluation import workloads
from numasched.io.topology import Topology, read_topology
from numasched.io.trace import Trace, load_trace, replay

ROOT = Path(__file__).resolve().parent.parent
MODES = (None, "plan", "descheduler")


def churn_trace(n: int, hosts: int, *, seed: int = 0, load: float = 0.9,
                lifetime: float = 600.0) -> Trace:
    """``n`` requests arriving as a Poisson process whose rate rises and falls once (a day's
    peak), each staying a log-normal lifetime; at the peak the offered CPU load is ``load``."""
    rng = np.random.default_rng(seed)
    vm_seed, ct_seed = np.random.SeedSequence(seed).spawn(2)
    n_vms = n // 4
    vms = workloads.azure_vm_mix(n_vms, vm_seed)
    cts = workloads.containers(n - n_vms, ct_seed)
    cpu = np.concatenate([vms.cpu, cts.cpu])
    mem = np.concatenate([vms.mem, cts.mem])
    vnuma = np.concatenate([vms.vnuma, np.zeros(n - n_vms, dtype=bool)])
    order = rng.permutation(n)
    cpu, mem, vnuma = cpu[order], mem[order], vnuma[order]
    kind = tuple("VirtualMachine" if o < n_vms else "Pod" for o in order.tolist())
    life = rng.lognormal(np.log(lifetime), 0.8, n)
    # Little's law: CPU in use = arrival rate x mean lifetime x mean CPU per request; the rate
    # follows 0.1 + 0.9 sin^2(pi t / T) of its peak over the trace's length T.
    capacity = hosts * workloads.DEMO_NODES_PER_HOST * workloads.DEMO_CPU_PER_NODE
    peak = load * capacity / (float(life.mean()) * float(cpu.mean()))
    length = n / (0.55 * peak)                  # the mean of the shape is 0.55
    times = []
    t = 0.0
    while len(times) < n:                       # thinning of a Poisson process of rate `peak`
        t += rng.exponential(1.0 / peak)
        if rng.random() < 0.1 + 0.9 * np.sin(np.pi * min(t, length) / length) ** 2:
            times.append(t)
    arrival = np.round(np.array(times), 1)
    departure = np.round(arrival + np.maximum(life, 1.0), 1)
    departure[departure > arrival[-1]] = np.inf   # the replay ends with the last arrival
    return Trace(arrival=arrival, departure=departure, cpu=cpu, mem=mem, kind=kind,
                 namespace=("default",) * n,
                 name=tuple(f"{'vm' if k == 'VirtualMachine' else 'pod'}-{i}"
                            for i, k in enumerate(kind)),
                 numa=(None,) * n, vnuma=vnuma, priority=np.zeros(n, dtype=np.int64),
                 source=f"generated: {n} requests, peak load {load:g}, seed {seed}")


def demo_topology(hosts: int) -> Topology:
    cluster: Cluster = workloads.demo_cluster(hosts)
    return Topology(cluster=cluster, names=tuple(f"host-{h}" for h in range(hosts)),
                    attributes=tuple({} for _ in range(hosts)),
                    sources=("generated",) * hosts)


def run(label: str, topology: Topology, trace: Trace, every: float, max_moves: int) -> dict:
    reports, seconds = {}, {}
    for mode in MODES:
        t0 = time.perf_counter()
        reports[mode or "none"] = replay(topology, trace, rebalance=mode, rebalance_every=every,
                                         max_moves=max_moves)
        seconds[mode or "none"] = time.perf_counter() - t0
    base = reports["none"]["summary"]
    rows = []
    for mode, report in reports.items():
        s = report["summary"]
        rows.append({
            "trace": label, "mode": mode, "requests": s["requests"], "hosts": report["hosts"],
            "mean_hosts_used": s["mean_hosts_used"],
            "hosts_ratio": s["mean_hosts_used"] / base["mean_hosts_used"],
            "mean_pending": s["mean_pending"], "mean_locality": s["mean_locality"],
            "never_placed": s["never_placed"], "mean_wait": s["mean_wait"],
            "moves": s["moves"], "moves_per_hour": s["moves_per_hour"],
            "time_ratio": seconds[mode] / seconds["none"],
        })
    return {"label": label, "rows": rows, "reports": reports}


def render(results: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="Rebalancing on churn (time-weighted means; ratios to no rebalancing, "
                    "same run)", title_justify="left")
    for col in ("trace", "mode", "hosts in use", "ratio", "pending", "locality", "never placed",
                "moves/hour", "time ratio"):
        t.add_column(col, justify="left" if col in ("trace", "mode") else "right")
    for result in results:
        for r in result["rows"]:
            t.add_row(r["trace"], r["mode"], f"{r['mean_hosts_used']:.2f}",
                      f"{r['hosts_ratio']:.3f}", f"{r['mean_pending']:.2f}",
                      f"{100 * (r['mean_locality'] or 0):.1f}%", f"{r['never_placed']:,}",
                      f"{r['moves_per_hour']:.1f}", f"{r['time_ratio']:.2f}x")
    Console(width=150).print(t)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="requests per generated trace")
    parser.add_argument("--hosts", type=int, default=30, help="hosts for generated traces")
    parser.add_argument("--load", type=float, default=1.0, help="offered CPU load at the peak")
    parser.add_argument("--lifetime", type=float, default=600.0, help="median lifetime (s)")
    parser.add_argument("--every", type=float, default=60.0, help="seconds between rounds")
    parser.add_argument("--max-moves", type=int, default=10, help="moves per round")
    parser.add_argument("--seeds", type=int, default=2, help="generated traces")
    parser.add_argument("--json", default=str(ROOT / "benchmarks/results/churn.json"))
    parser.add_argument("--plot", default=str(ROOT / "benchmarks/results/churn.png"),
                        help="the rebalancing plot of the first generated trace ('' for none)")
    args = parser.parse_args(argv)
    warm = churn_trace(60, 4, seed=99, lifetime=60.0)
    for mode in MODES:   # compile every kernel the modes use before anything is timed
        replay(demo_topology(4), warm, rebalance=mode, rebalance_every=10.0)

    results = [run("example", read_topology(ROOT / "docs/examples/topology/workers.yaml"),
                   load_trace(ROOT / "docs/examples/trace.csv"), args.every, args.max_moves)]
    for seed in range(args.seeds):
        trace = churn_trace(args.requests, args.hosts, seed=seed, load=args.load,
                            lifetime=args.lifetime)
        results.append(run(f"generated-{seed}", demo_topology(args.hosts), trace, args.every,
                           args.max_moves))
    render(results)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args),
                                               "rows": [r for x in results for r in x["rows"]]},
                                              indent=2))
    if args.plot and len(results) > 1:
        from numasched.io import plots
        plots.rebalance_plot(results[1]["reports"], args.plot,
                             title=f"Rebalancing on churn: {results[1]['reports']['none']['trace']}")


if __name__ == "__main__":
    main()
