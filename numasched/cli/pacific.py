"""``numasched pacific``: the Project Pacific table (esxi against linux on one workload)."""
from __future__ import annotations

import click

from .. import _backend
from ..evaluation import pacific as pacific_report
from .common import POLICY, console, emit, output_option, user_errors


@click.command("pacific")
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
@click.option("--policy", "extra", type=POLICY, multiple=True,
              help="Also place under this policy (any name of numasched policies; repeatable): "
                   "a row after esxi and linux.")
@click.option("--backend", type=click.Choice(list(_backend.BACKENDS)), default="auto",
              show_default=True, help="Placement backend.")
@output_option("table, json or yaml (the table's data).", json_alias=True)
def command(hosts, vms, containers, seed, memory_boundness, extra, backend, output,
            as_json) -> None:
    """The Project Pacific table: one workload under esxi and linux, beside published figures."""
    with user_errors():
        report = pacific_report.pacific_table(hosts=hosts, vms=vms, containers=containers,
                                              seed=seed, memory_boundness=memory_boundness,
                                              backend=backend, extra_policies=extra)
    output = "json" if as_json else output
    if output == "table":
        pacific_report.render(report, console())
    else:
        emit(report, output)
