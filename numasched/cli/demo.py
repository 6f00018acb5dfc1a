"""``numasched demo``: one mixed VM + container workload on a demo cluster, every NUMA mode."""
from __future__ import annotations

import click

from .. import _backend, codes
from ..evaluation import demo as demo_report
from .common import POLICY, console, emit, output_option, user_errors


@click.command("demo")
@click.option("--hosts", type=click.IntRange(min=1), default=demo_report.DEFAULT_HOSTS, show_default=True,
              help="Hosts in the demo cluster (2 NUMA nodes x 32 cores x 256 GiB each).")
@click.option("--vms", type=click.IntRange(min=0), default=demo_report.DEFAULT_VMS, show_default=True,
              help="VMs drawn from the Azure 2017 size mix.")
@click.option("--containers", type=click.IntRange(min=0), default=demo_report.DEFAULT_CONTAINERS, show_default=True,
              help="Container-sized requests (100m-4000m CPU, 128 MiB-8 GiB).")
@click.option("--seed", type=click.IntRange(min=0), default=demo_report.DEFAULT_SEED, show_default=True,
              help="Workload random seed.")
@click.option("--policy", type=POLICY, default=demo_report.DEFAULT_POLICY, show_default=True,
              help="Placement policy: a host score or a preset (numasched policies lists them).")
@click.option("--numa", type=click.Choice(list(codes.NUMA_MODES)), default=demo_report.DEFAULT_NUMA,
              show_default=True,
              help="NUMA mode of the detailed placement report (a preset that sets one wins).")
@click.option("--backend", type=click.Choice(list(_backend.BACKENDS)), default=demo_report.DEFAULT_BACKEND,
              show_default=True, help="Placement backend (auto = cython when built).")
@output_option("table, json or yaml (the same data: workload, cluster, placement, comparison).",
               json_alias=True)
def command(hosts, vms, containers, seed, policy, numa, backend, output, as_json) -> None:
    """Place a mixed VM + container workload and compare the NUMA modes."""
    with user_errors():
        report = demo_report.run_demo(hosts=hosts, vms=vms, containers=containers, seed=seed,
                                      policy=policy, numa=numa, backend=backend)
    output = "json" if as_json else output
    if output == "table":
        demo_report.render(report, console())
    else:
        emit(report, output)
