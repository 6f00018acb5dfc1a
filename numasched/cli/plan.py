"""``numasched plan``: how many hosts of one shape a mix needs, with failure headroom."""
from __future__ import annotations

import click

from .. import _backend, codes
from .common import OUTPUTS, POLICY, UserError, emit, user_errors


@click.command("plan")
@click.option("--host-shape", "shape", required=True, metavar="SHAPE",
              help="NODESxCORESc/MEMORY per NUMA node: 2x16c/192Gi is 2 nodes of 16 cores and "
                   "192Gi each.")
@click.option("--workloads", "workloads_path", default=None, metavar="PATH",
              help="The mix: Pod, Deployment and VirtualMachine manifests (file or directory).")
@click.option("--trace", "trace_path", default=None, metavar="FILE",
              help="The mix: the requests of a trace CSV present together at its peak.")
@click.option("--inventory", "inventory_path", default=None, metavar="PATH",
              help="The mix: what is in use on each NUMA node of an inventory or topology.")
@click.option("--policy", "policy_names", type=POLICY, multiple=True,
              help="Placement policy (repeat to compare side by side, e.g. --policy esxi "
                   "--policy linux) [default: best-fit].")
@click.option("--numa", type=click.Choice(list(codes.NUMA_MODES)), default=None,
              help="NUMA mode of requests that set none [default: the policy's, else restricted].")
@click.option("--failures", default=0, show_default=True, type=click.IntRange(min=0),
              help="Hosts that may fail at once: their requests must restart on the others.")
@click.option("--backend", type=click.Choice(list(_backend.BACKENDS)), default="auto",
              show_default=True, help="Placement backend.")
@click.option("--output", "-o", type=click.Choice(OUTPUTS), default="table", show_default=True,
              help="table, json or yaml (the first policy's plan; more policies under "
                   "\"compare\").")
def command(shape, workloads_path, trace_path, inventory_path, policy_names, numa, failures,
            backend, output) -> None:
    """How many hosts of a shape a mix needs under a policy, with N hosts' failure headroom;
    the lower bound and the binding resource."""
    from ..optimize import plan as planning

    sources = [p for p in (workloads_path, trace_path, inventory_path) if p is not None]
    if len(sources) != 1:
        raise UserError("give the mix as exactly one of --workloads, --trace or --inventory")
    names = list(policy_names) or ["best-fit"]
    with user_errors():
        host_shape = planning.parse_host_shape(shape)
        labels, source, note = None, sources[0], None
        if workloads_path is not None:
            from ..io.workloads import read_workloads

            work = read_workloads(workloads_path)
            requests, labels = work.requests, work.labels
        elif trace_path is not None:
            from ..io.trace import load_trace

            trace = load_trace(trace_path)
            requests, peak, rows = planning.trace_peak(trace, host_shape)
            labels = [f"{trace.kind[i]} {trace.namespace[i]}/{trace.name[i]}" for i in rows.tolist()]
            note = f"the trace's peak at time {peak:g}: {len(requests)} requests present"
        else:
            from ..io.topology import read_topology

            requests = planning.inventory_load(read_topology(inventory_path))
            note = f"what is in use on the inventory's NUMA nodes: {len(requests)} requests"
        plans = [planning.plan(host_shape, requests, policy=name, numa=numa, failures=failures,
                               backend=backend, labels=labels) for name in names]
    report = dict(plans[0])
    report["source"] = str(source)
    if note:
        report["note"] = note
    if len(plans) > 1:
        report["compare"] = plans
    if output != "table":
        emit(report, output)
        return
    _render(report, plans)


def _render(report: dict, plans: list[dict]) -> None:
    from rich.console import Console

    from ..io.report import _table

    console = Console()
    host = report["host"]
    console.print(f"[bold]Capacity plan[/bold] for {report['requests']:,} requests of "
                  f"{report['source']} on hosts of {report['host_shape']} ({host['nodes']} NUMA "
                  f"nodes, {host['cpu'] / 1000:g} cores and {host['memory'] / 2**30:g} GiB per "
                  f"host), {report['failures']} host failure(s) tolerated")
    if report.get("note"):
        console.print(report["note"], style="dim")
    t = _table("Hosts needed", "", *[p["policy"] for p in plans], left=("",))
    t.add_row("hosts", *[f"[bold]{p['hosts']:,}[/bold]" for p in plans])
    t.add_row("without failures", *[f"{p['hosts_without_failures']:,}" for p in plans])
    t.add_row("lower bound", *[f"{p['lower_bound']:,}" for p in plans])
    t.add_row("binding resource", *[p["binding"] for p in plans])
    t.add_row("NUMA mode", *[p["numa"] for p in plans])
    t.add_row("CPU / memory in use", *[f"{100 * p['utilisation']['cpu']:.1f}% / "
                                       f"{100 * p['utilisation']['memory']:.1f}%" for p in plans])
    t.add_row("locality", *[f"{100 * p['summary']['locality']:.1f}%" for p in plans])
    t.add_row("failure sets checked", *[f"{p['failure_check']['sets']:,} "
                                        f"({p['failure_check']['how']})" for p in plans])
    console.print(t)
