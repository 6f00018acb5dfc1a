"""``numasched topology``: this machine's NUMA layout, or a topology file's."""
from __future__ import annotations

import click

from .common import OUTPUTS, UserError, console, emit, user_errors


@click.command("topology")
@click.argument("path", required=False)
@click.option("--sysfs", "sysfs", default=None, metavar="DIR",
              help="Read this machine's layout from DIR instead of /sys/devices/system/node "
                   "(e.g. a host's /sys mounted into a container).")
@click.option("--output", "-o", type=click.Choice(OUTPUTS), default="table", show_default=True,
              help="table, json, or yaml (yaml: NodeResourceTopology objects).")
def command(path, sysfs, output) -> None:
    """Show this machine's NUMA layout, or the topology in PATH (a file or a directory of
    NodeResourceTopology / Node YAML, or an inventory YAML/CSV)."""
    from ..io import report as io_report
    from ..io import topology as io_topology

    if path is not None and sysfs is not None:
        raise UserError("give either PATH or --sysfs, not both")
    with user_errors():
        if path is None:
            source = sysfs or io_topology.SYSFS_NODE_ROOT
            topo = io_topology.read_sysfs(source)
        else:
            source = path
            topo = io_topology.read_topology(path)
    if output == "yaml":
        import yaml
        click.echo(yaml.safe_dump_all(io_topology.to_nrt(topo), sort_keys=False), nl=False)
    elif output == "json":
        emit(io_report.topology_report(topo, source), "json")
    else:
        io_report.render_topology(io_report.topology_report(topo, source), console())
