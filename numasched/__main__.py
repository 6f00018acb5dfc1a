"""The ``numasched`` command line (also ``python -m numasched``).

A click group: each subcommand is a thin wrapper that parses options, calls a library function
returning data, and renders it (rich) or prints it as JSON or YAML. User errors -- bad options,
missing or malformed files, invalid quantities, anything the library refuses with
``ValueError`` -- are one ``Error: ...`` line on stderr and exit status 2, never a traceback.
"""
from __future__ import annotations

import contextlib
import json

import click

from . import __version__, _backend, codes
from . import demo as demo_report
from . import pacific as pacific_report

OUTPUTS = ("table", "json", "yaml")


class UserError(click.ClickException):
    """A refused input: printed as one ``Error: ...`` line, exit status 2 (as click's usage
    errors), so scripts can tell user errors from crashes (1)."""

    exit_code = 2


@contextlib.contextmanager
def user_errors():
    """Turn the library's ``ValueError`` and file-system ``OSError`` into ``UserError``."""
    try:
        yield
    except (ValueError, OSError) as exc:
        if isinstance(exc, ValueError):
            message = str(exc)
        elif getattr(exc, "filename", None):
            message = f"{exc.filename}: {exc.strerror or exc}"
        else:
            message = exc.strerror or str(exc)
        raise UserError(" ".join(message.split())) from None


def emit(data, output: str) -> None:
    """Print ``data`` as JSON or YAML (``output`` is json or yaml)."""
    if output == "json":
        click.echo(json.dumps(data, indent=2, allow_nan=False))
    else:
        import yaml
        click.echo(yaml.safe_dump(data, sort_keys=False, default_flow_style=False), nl=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="numasched")
def cli() -> None:
    """numasched: NUMA-aware placement of VMs and containers onto hosts with NUMA nodes."""


@cli.command()
@click.option("--hosts", type=click.IntRange(min=1), default=demo_report.DEFAULT_HOSTS, show_default=True,
              help="Hosts in the demo cluster (2 NUMA nodes x 32 cores x 256 GiB each).")
@click.option("--vms", type=click.IntRange(min=0), default=demo_report.DEFAULT_VMS, show_default=True,
              help="VMs drawn from the Azure 2017 size mix.")
@click.option("--containers", type=click.IntRange(min=0), default=demo_report.DEFAULT_CONTAINERS, show_default=True,
              help="Container-sized requests (100m-4000m CPU, 128 MiB-8 GiB).")
@click.option("--seed", type=int, default=demo_report.DEFAULT_SEED, show_default=True,
              help="Workload random seed.")
@click.option("--policy", type=click.Choice(list(codes.HOST_POLICIES)), default=demo_report.DEFAULT_POLICY,
              show_default=True, help="Host scoring policy.")
@click.option("--numa", type=click.Choice(list(codes.NUMA_MODES)), default=demo_report.DEFAULT_NUMA,
              show_default=True, help="NUMA mode of the detailed placement report.")
@click.option("--backend", type=click.Choice(list(_backend.BACKENDS)), default=demo_report.DEFAULT_BACKEND,
              show_default=True, help="Placement backend (auto = cython when built).")
@click.option("--json", "as_json", is_flag=True,
              help="Print a machine-readable JSON summary instead of tables.")
def demo(hosts, vms, containers, seed, policy, numa, backend, as_json) -> None:
    """Place a mixed VM + container workload and compare the NUMA modes."""
    if seed < 0:
        raise click.BadParameter(f"must be a non-negative integer, got {seed}", param_hint="--seed")
    with user_errors():
        report = demo_report.run_demo(hosts=hosts, vms=vms, containers=containers, seed=seed, policy=policy,
                          numa=numa, backend=backend)
    if as_json:
        click.echo(json.dumps(report, indent=2, allow_nan=False))
    else:
        demo_report.render(report)


@cli.command()
@click.option("--hosts", type=click.IntRange(min=1), default=pacific_report.DEFAULT_HOSTS,
              show_default=True, help="Hosts (2 NUMA nodes x 32 cores x 256 GiB each).")
@click.option("--vms", type=click.IntRange(min=0), default=pacific_report.DEFAULT_VMS,
              show_default=True, help="VMs drawn from the Azure 2017 size mix.")
@click.option("--containers", type=click.IntRange(min=0),
              default=pacific_report.DEFAULT_CONTAINERS, show_default=True,
              help="Container-sized requests (100m-4000m CPU, 128 MiB-8 GiB).")
@click.option("--seed", type=click.IntRange(min=0), default=pacific_report.DEFAULT_SEED,
              show_default=True, help="Workload random seed.")
@click.option("--memory-boundness", type=click.FloatRange(0.0, 1.0),
              default=pacific_report.DEFAULT_MEMORY_BOUNDNESS, show_default=True,
              help="Share of run time spent on memory when every access is local "
                   "(the throughput model's parameter).")
@click.option("--json", "as_json", is_flag=True,
              help="Print the table's data as JSON instead of a table.")
def pacific(hosts, vms, containers, seed, memory_boundness, as_json) -> None:
    """The Project Pacific table: one workload under esxi and linux, beside published figures."""
    with user_errors():
        report = pacific_report.pacific_table(hosts=hosts, vms=vms, containers=containers,
                                              seed=seed, memory_boundness=memory_boundness)
    if as_json:
        click.echo(json.dumps(report, indent=2, allow_nan=False))
    else:
        pacific_report.render(report)


@cli.command()
@click.argument("path", required=False)
@click.option("--sysfs", "sysfs", default=None, metavar="DIR",
              help="Read this machine's layout from DIR instead of /sys/devices/system/node "
                   "(e.g. a host's /sys mounted into a container).")
@click.option("--output", "-o", type=click.Choice(OUTPUTS), default="table", show_default=True,
              help="table, json, or yaml (yaml: NodeResourceTopology objects).")
def topology(path, sysfs, output) -> None:
    """Show this machine's NUMA layout, or the topology in PATH (a file or a directory of
    NodeResourceTopology / Node YAML, or an inventory YAML/CSV)."""
    from .io import report as io_report
    from .io import topology as io_topology

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
        io_report.render_topology(io_report.topology_report(topo, source))


@cli.command("place")
@click.option("--topology", "topology_path", required=True, metavar="PATH",
              help="NodeResourceTopology / Node YAML (file or directory) or an inventory YAML/CSV.")
@click.option("--workloads", "workloads_path", required=True, metavar="PATH",
              help="Pod, Deployment and VirtualMachine manifests (file or directory).")
@click.option("--policy", default="best-fit", show_default=True, metavar="NAME",
              help="Placement policy: a host score or a preset (numasched.policies.names()).")
@click.option("--numa", type=click.Choice(list(codes.NUMA_MODES)), default=None,
              help="NUMA mode of workloads without the numasched.io/numa annotation "
                   "[default: the hosts' topologyManagerPolicy, else restricted].")
@click.option("--backend", type=click.Choice(list(_backend.BACKENDS)), default="auto",
              show_default=True, help="Placement backend.")
@click.option("--output", "-o", type=click.Choice(OUTPUTS), default="table", show_default=True,
              help="table, json or yaml.")
@click.option("--plot", "plot_path", default=None, metavar="FILE",
              help="Also write a per-host, per-NUMA-node occupancy heatmap (PNG; needs matplotlib).")
def place_command(topology_path, workloads_path, policy, numa, backend, output, plot_path) -> None:
    """Place workload manifests onto a topology; print the placement and its summary."""
    from . import policies
    from .io import report as io_report
    from .io.topology import read_topology
    from .io.workloads import read_workloads

    if policy not in policies.names():
        raise UserError(f"unknown policy {policy!r}; known: {', '.join(policies.names())}")
    with user_errors():
        topo = read_topology(topology_path)
        work = read_workloads(workloads_path)
        report, placement = io_report.place_report(topo, work, policy=policy, numa=numa,
                                                   backend=backend)
        if plot_path:
            from .io import plots
            plots.occupancy_heatmap(placement, topo.names, plot_path)
            report["plot"] = plot_path
    if output == "table":
        io_report.render_place(report)
        if plot_path:
            click.echo(f"plot written to {plot_path}")
    else:
        emit(report, output)


@cli.command()
@click.option("--topology", "topology_path", required=True, metavar="PATH",
              help="NodeResourceTopology / Node YAML (file or directory) or an inventory YAML/CSV.")
@click.option("--trace", "trace_path", required=True, metavar="FILE",
              help="CSV of timed requests: arrival,departure,cpu,memory,kind,namespace[,name,"
                   "numa,vnuma,priority].")
@click.option("--policy", default="best-fit", show_default=True, metavar="NAME",
              help="Placement policy: a host score or a preset (numasched.policies.names()).")
@click.option("--numa", type=click.Choice(list(codes.NUMA_MODES)), default=None,
              help="NUMA mode of requests that set none "
                   "[default: the hosts' topologyManagerPolicy, else restricted].")
@click.option("--backend", type=click.Choice(list(_backend.BACKENDS)), default="auto",
              show_default=True, help="Placement backend.")
@click.option("--output", "-o", type=click.Choice(OUTPUTS), default="table", show_default=True,
              help="table, json or yaml (json/yaml include the whole time series).")
@click.option("--plot", "plot_path", default=None, metavar="FILE",
              help="Also write pending and utilisation over time (PNG; needs matplotlib).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def simulate(topology_path, trace_path, policy, numa, backend, output, plot_path, quiet) -> None:
    """Replay a trace of timed requests through the controller; report pending, locality and
    utilisation over time."""
    from . import policies
    from .io import trace as io_trace
    from .io.report import default_numa
    from .io.topology import read_topology

    if policy not in policies.names():
        raise UserError(f"unknown policy {policy!r}; known: {', '.join(policies.names())}")
    with user_errors():
        topo = read_topology(topology_path)
        trace = io_trace.load_trace(trace_path)
        mode, _ = default_numa(topo, numa)
        with _progress(f"replaying {len(trace):,} requests", quiet) as advance:
            report = io_trace.replay(topo, trace, policy=policy, numa=mode, backend=backend,
                                     progress=advance)
        if plot_path:
            from .io import plots
            plots.replay_plot(report, plot_path)
            report["plot"] = plot_path
    if output == "table":
        io_trace.render(report)
        if plot_path:
            click.echo(f"plot written to {plot_path}")
    else:
        emit(report, output)


@contextlib.contextmanager
def _progress(description: str, quiet: bool):
    """A rich progress bar on stderr, shown only on a terminal and without --quiet, so JSON on
    stdout stays clean; yields ``advance(done, total)``."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if quiet or not console.is_terminal:
        yield None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


@cli.command()
@click.option("--topology", "topology_path", required=True, metavar="PATH",
              help="Topology directory or file (NodeResourceTopology / Node YAML, inventory).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind (only 127.0.0.1 unless you mean to expose it).")
@click.option("--port", type=click.IntRange(0, 65535), default=8888, show_default=True,
              help="TCP port (0 = any free port).")
@click.option("--policy", default="best-fit", show_default=True, metavar="NAME",
              help="Host score or preset used by prioritize.")
@click.option("--numa", type=click.Choice(list(codes.NUMA_MODES)), default=None,
              help="NUMA mode of pods without the numasched.io/numa annotation "
                   "[default: the hosts' topologyManagerPolicy, else restricted].")
def extender(topology_path, host, port, policy, numa) -> None:
    """Serve the kube-scheduler extender verbs (POST /filter, /prioritize) for a topology."""
    import logging

    from . import policies
    from .extender import Extender, make_server

    if policy not in policies.names():
        raise UserError(f"unknown policy {policy!r}; known: {', '.join(policies.names())}")
    with user_errors():
        ext = Extender.from_path(topology_path, policy=policy, numa=numa)
        ext.warm_up()
    try:
        server = make_server(ext, host, port)
    except OSError as exc:   # address in use, no such interface, a privileged port
        raise UserError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    # serving from here on: topology re-reads and refusals are logged on stderr
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    bound_host, bound_port = server.server_address[:2]
    click.echo(f"numasched extender: {len(ext.topology):,} hosts from {topology_path}, policy "
               f"{policy}, numa {ext.numa} ({ext.numa_from}); listening on "
               f"http://{bound_host}:{bound_port} (POST /filter, /prioritize; GET /healthz)",
               err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``numasched = "numasched.__main__:main"``)."""
    cli.main(args=argv, prog_name="numasched")


if __name__ == "__main__":
    main()
