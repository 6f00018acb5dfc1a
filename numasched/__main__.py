"""The ``numasched`` command line (also ``python -m numasched``).

A click group: each subcommand is a thin wrapper that parses options, calls a library function
returning data, and renders it (rich) or prints it as JSON. Library errors become one ``Error:``
line and exit status 1; bad options are usage errors (exit status 2).
"""
from __future__ import annotations

import json

import click

from . import __version__, _backend, codes
from . import demo as demo_report
from . import pacific as pacific_report


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
    try:
        report = demo_report.run_demo(hosts=hosts, vms=vms, containers=containers, seed=seed, policy=policy,
                          numa=numa, backend=backend)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
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
    try:
        report = pacific_report.pacific_table(hosts=hosts, vms=vms, containers=containers,
                                              seed=seed, memory_boundness=memory_boundness)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(report, indent=2, allow_nan=False))
    else:
        pacific_report.render(report)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``numasched = "numasched.__main__:main"``)."""
    cli.main(args=argv, prog_name="numasched")


if __name__ == "__main__":
    main()
