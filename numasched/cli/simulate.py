"""``numasched simulate``: a trace of timed requests replayed through the controller."""
from __future__ import annotations

import click

from .. import _backend, codes
from .common import OUTPUTS, POLICY, progress, show, user_errors


@click.command("simulate")
@click.option("--topology", "topology_path", required=True, metavar="PATH",
              help="NodeResourceTopology / Node YAML (file or directory) or an inventory YAML/CSV.")
@click.option("--trace", "trace_path", required=True, metavar="FILE",
              help="CSV of timed requests: arrival,departure,cpu,memory,kind,namespace[,name,"
                   "numa,vnuma,priority].")
@click.option("--policy", type=POLICY, default="best-fit", show_default=True,
              help="Placement policy: a host score or a preset (numasched policies lists them).")
@click.option("--numa", type=click.Choice(list(codes.NUMA_MODES)), default=None,
              help="NUMA mode of requests that set none "
                   "[default: the hosts' topologyManagerPolicy, else restricted].")
@click.option("--backend", type=click.Choice(list(_backend.BACKENDS)), default="auto",
              show_default=True, help="Placement backend.")
@click.option("--output", "-o", type=click.Choice(OUTPUTS), default="table", show_default=True,
              help="table, json or yaml (json/yaml include the whole time series).")
@click.option("--plot", "plot_path", default=None, metavar="FILE",
              help="Also write pending and utilisation over time (PNG; needs matplotlib).")
@click.option("--rebalance", type=click.Choice(["plan", "descheduler"]), default=None,
              help="Also rebalance during the replay: migration plans (plan) or the "
                   "descheduler-like baseline (evict from under-used hosts).")
@click.option("--rebalance-every", default=60.0, show_default=True, type=click.FloatRange(min=0,
              min_open=True), metavar="T", help="Trace time between rebalancing rounds.")
@click.option("--max-moves", default=10, show_default=True, type=click.IntRange(min=1),
              help="Moves (or evictions) per rebalancing round.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def command(topology_path, trace_path, policy, numa, backend, output, plot_path, rebalance,
            rebalance_every, max_moves, quiet) -> None:
    """Replay a trace of timed requests through the controller; report pending, locality and
    utilisation over time."""
    from ..io import trace as io_trace
    from ..io.report import default_numa
    from ..io.topology import read_topology

    with user_errors():
        topo = read_topology(topology_path)
        trace = io_trace.load_trace(trace_path)
        mode, _ = default_numa(topo, numa, policy)
        with progress(f"replaying {len(trace):,} requests", quiet) as advance:
            report = io_trace.replay(topo, trace, policy=policy, numa=mode, backend=backend,
                                     progress=advance, rebalance=rebalance,
                                     rebalance_every=rebalance_every, max_moves=max_moves)
        if plot_path:
            from ..io import plots
            plots.replay_plot(report, plot_path)
            report["plot"] = plot_path
    show(report, output, io_trace.render)
