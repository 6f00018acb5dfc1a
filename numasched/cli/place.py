"""``numasched place``: workload manifests placed onto a topology."""
from __future__ import annotations

import click

from .. import _backend, codes
from .common import OUTPUTS, POLICY, show, user_errors


@click.command("place")
@click.option("--topology", "topology_path", required=True, metavar="PATH",
              help="NodeResourceTopology / Node YAML (file or directory) or an inventory YAML/CSV.")
@click.option("--workloads", "workloads_path", required=True, metavar="PATH",
              help="Pod, Deployment and VirtualMachine manifests (file or directory).")
@click.option("--policy", type=POLICY, default="best-fit", show_default=True,
              help="Placement policy: a host score or a preset (numasched policies lists them).")
@click.option("--numa", type=click.Choice(list(codes.NUMA_MODES)), default=None,
              help="NUMA mode of workloads without the numasched.io/numa annotation "
                   "[default: the hosts' topologyManagerPolicy, else restricted; a preset that "
                   "sets one wins].")
@click.option("--backend", type=click.Choice(list(_backend.BACKENDS)), default="auto",
              show_default=True, help="Placement backend.")
@click.option("--output", "-o", type=click.Choice(OUTPUTS), default="table", show_default=True,
              help="table, json or yaml.")
@click.option("--strict", is_flag=True, default=False,
              help="Refuse manifests with unknown fields or kinds (by default they are warnings).")
@click.option("--plot", "plot_path", default=None, metavar="FILE",
              help="Also write a per-host, per-NUMA-node occupancy heatmap (PNG; needs matplotlib).")
@click.option("--fail-on-pending", is_flag=True,
              help="Exit with status 1 when any workload stays pending (for CI checks); the "
                   "report is printed first.")
@click.pass_context
def command(ctx, topology_path, workloads_path, policy, numa, backend, output, strict,
            plot_path, fail_on_pending) -> None:
    """Place workload manifests onto a topology; print the placement and its summary.

    Pods already bound to a host (spec.nodeName) are shown as existing load there, never moved.
    Pending workloads are listed first, each with its reason; the summary says what each reason
    means. Exit status: 0 placed (or pending without --fail-on-pending), 1 pending with
    --fail-on-pending, 2 bad input.
    """
    import warnings

    from ..control.manifests import ManifestWarning
    from ..io import report as io_report
    from ..io.topology import read_topology
    from ..io.workloads import read_workloads

    with user_errors(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ManifestWarning)
        topo = read_topology(topology_path)
        work = read_workloads(workloads_path, topo, strict=strict)
        report, placement = io_report.place_report(topo, work, policy=policy, numa=numa,
                                                   backend=backend)
        if plot_path:
            from ..io import plots
            plots.occupancy_heatmap(placement, topo.names, plot_path)
            report["plot"] = plot_path
    report["warnings"] = [str(w.message) for w in caught if w.category is ManifestWarning]
    show(report, output, io_report.render_place)
    if fail_on_pending and report["summary"]["pending"]:
        if output == "table":
            click.echo(f"{report['summary']['pending']:,} workload(s) pending (--fail-on-pending)",
                       err=True)
        ctx.exit(1)
