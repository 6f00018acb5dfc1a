"""Group "pacific": the Project Pacific workload placed under esxi and under linux.

The workload of ``numasched pacific`` (``numasched.evaluation.pacific`` defaults: 4,000 Azure-mix VMs and
4,000 containers on 300 hosts of 2 NUMA nodes x 32 cores x 256 GiB). Each benchmark times one
``place()`` call and stores the row of the table in ``extra_info``; the last test prints the
table (``numasched.evaluation.pacific.render``) beside the published figures.
"""
from __future__ import annotations

import io

import pytest
from rich.console import Console

from numasched import place
from numasched.evaluation import pacific, workloads

MEMORY_BOUNDNESS = pacific.DEFAULT_MEMORY_BOUNDNESS


@pytest.fixture(scope="module")
def instance():
    return (workloads.demo_cluster(pacific.DEFAULT_HOSTS),
            workloads.mixed(pacific.DEFAULT_VMS, pacific.DEFAULT_CONTAINERS, pacific.DEFAULT_SEED))


@pytest.mark.benchmark(group="pacific")
@pytest.mark.parametrize("policy", [name for name, _ in pacific.POLICIES])
def test_place(benchmark, cython_backend, instance, policy, figures):
    cluster, requests = instance
    placement = benchmark(place, cluster, requests, policy=policy, backend=cython_backend)
    row = pacific.policy_row(placement, pacific.DEFAULT_VMS, memory_boundness=MEMORY_BOUNDNESS,
                             wall_ms=benchmark.stats.stats.median * 1000.0)
    benchmark.extra_info.update(row)
    figures(f"pacific {policy:<6} local {100 * row['local_fraction']:.1f}%, single-node "
            f"{100 * row['single_node_fraction']:.1f}%, hosts {row['hosts_used']}, placed "
            f"{row['placed']}/{row['requests']}, median {row['wall_ms']:.2f} ms")


@pytest.mark.benchmark(group="pacific-table")
def test_table(benchmark, cython_backend, figures):
    report = benchmark.pedantic(pacific.pacific_table, kwargs={"backend": cython_backend},
                                rounds=1, iterations=1)
    out = io.StringIO()
    pacific.render(report, Console(file=out, width=100, force_terminal=False, color_system=None))
    for line in out.getvalue().rstrip().splitlines():
        figures(line.rstrip())
    benchmark.extra_info.update({
        "rows": report["rows"], "published": report["published"],
        "sensitivity": report["sensitivity"],
        "esxi_over_linux": next(r["vs_linux"] for r in report["rows"] if r["policy"] == "esxi"),
    })
