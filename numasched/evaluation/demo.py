"""The ``numasched demo`` report: one mixed VM + container workload on a demo cluster.

``run_demo()`` returns plain data (a JSON-ready dict); ``render()`` draws it with rich. The
``numasched demo`` command only parses options and picks one of the outputs.

The default size (5,000 Azure-mix VMs and 5,150 containers on 300 hosts of 2 x 32 cores x
256 GiB) asks for 99.9 % of the cluster's CPU: NUMA-oblivious placement (``none``, Linux-like)
still fits everything but leaves half of all memory accesses remote, while the NUMA-aligned modes
keep every request on one node and leave the requests that no node has room for pending.
"""
from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np

from .. import _backend, codes, policies
from . import workloads
from ..api import Cluster, Placement, Requests, place

DEFAULT_HOSTS = 300
DEFAULT_VMS = 5000
DEFAULT_CONTAINERS = 5150
DEFAULT_SEED = 0
DEFAULT_POLICY = "best-fit"
DEFAULT_NUMA = "restricted"
DEFAULT_BACKEND = "auto"

#: Rows of the NUMA-mode comparison, from NUMA-oblivious to the most permissive aligned mode.
COMPARED_MODES = ("none", "single-numa-node", "restricted", "best-effort")

MODE_NOTES = {
    "none": "NUMA-oblivious, like Linux's balancer",
    "single-numa-node": "exactly one NUMA node",
    "restricted": "the fewest nodes that could hold it, like ESXi's home node",
    "best-effort": "the narrowest node set that fits now",
}

GIB = 2**30


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def describe_workload(requests: Requests, n_vms: int, cluster: Cluster) -> dict:
    """Counts and totals per kind (the first ``n_vms`` requests are VMs, the rest containers)."""
    kinds = {}
    for kind, sl in (("vm", slice(0, n_vms)), ("container", slice(n_vms, len(requests)))):
        cpu, mem = requests.cpu[sl], requests.mem[sl]
        kinds[kind] = {
            "count": int(cpu.size),
            "vcpus": int(cpu.sum()) / 1000,
            "memory_gib": int(mem.sum()) / GIB,
            "vnuma": int(requests.vnuma[sl].sum()),
            "cpu_min_m": int(cpu.min()) if cpu.size else 0,
            "cpu_max_m": int(cpu.max()) if cpu.size else 0,
            "mem_min_mib": int(mem.min()) // 2**20 if mem.size else 0,
            "mem_max_mib": int(mem.max()) // 2**20 if mem.size else 0,
        }
    cap_cpu, cap_mem = int(cluster.node_cpu.sum()), int(cluster.node_mem.sum())
    return {
        "requests": len(requests),
        "kinds": kinds,
        "cpu_demand_of_capacity": int(requests.cpu.sum()) / cap_cpu if cap_cpu else None,
        "mem_demand_of_capacity": int(requests.mem.sum()) / cap_mem if cap_mem else None,
    }


def describe_cluster(cluster: Cluster) -> dict:
    node_cpu, node_mem = cluster.node_cpu, cluster.node_mem
    dist = cluster.distance[0]
    off = dist[~np.eye(cluster.nodes, dtype=bool)]
    return {
        "hosts": cluster.hosts,
        "nodes_per_host": cluster.nodes,
        "cores_per_node": int(node_cpu.max()) / 1000 if node_cpu.size else 0,
        "memory_gib_per_node": int(node_mem.max()) / GIB if node_mem.size else 0,
        "cores": int(node_cpu.sum()) / 1000,
        "memory_gib": int(node_mem.sum()) / GIB,
        "distance_local": int(dist[0, 0]),
        "distance_remote": int(off.max()) if off.size else None,
    }


def timed_place(cluster: Cluster, requests: Requests, **kwargs) -> tuple[Placement, float]:
    """``place()`` and its wall time in milliseconds."""
    start = time.perf_counter()
    placement = place(cluster, requests, **kwargs)
    return placement, (time.perf_counter() - start) * 1000.0


def placement_report(placement: Placement, wall_ms: float, n_vms: int) -> dict:
    """``Placement.summary()`` plus per-kind counts, reason messages and the wall time."""
    summary = placement.summary()
    summary["hosts_over_bound"] = _finite(summary["hosts_over_bound"])
    placed = placement.placed
    summary["by_kind"] = {
        kind: {"placed": int(placed[sl].sum()), "pending": int((~placed[sl]).sum())}
        for kind, sl in (("vm", slice(0, n_vms)), ("container", slice(n_vms, None)))
    }
    counts = np.bincount(placement.reason.astype(np.int64), minlength=len(codes.REASONS))
    summary["pending_reasons"] = [
        {"code": code, "reason": codes.REASONS[code], "count": int(counts[code]),
         "message": codes.REASON_MESSAGES[code]}
        for code in codes.REASONS if code != codes.PLACED and counts[code]
    ]
    summary["settings"] = dict(placement.settings)
    summary["wall_ms"] = wall_ms
    return summary


def run_demo(hosts: int = DEFAULT_HOSTS, vms: int = DEFAULT_VMS,
             containers: int = DEFAULT_CONTAINERS, seed: int = DEFAULT_SEED,
             policy: str = DEFAULT_POLICY, numa: str = DEFAULT_NUMA,
             backend: str = DEFAULT_BACKEND) -> dict:
    """Build the workload and cluster, place under ``numa`` and under every mode; return data.

    ``policy`` is any name of ``numasched.policies.names()`` (a host score or a preset). A
    preset that fixes the NUMA mode (``esxi``, ``linux``, ``kubelet-*``) wins over ``numa`` for
    the detailed placement (``parameters["numa"]`` is the mode used, ``numa_from`` says why);
    the comparison keeps the preset's other choices and varies the mode.

    Raises ValueError (from the library) on a bad policy, mode or backend.
    """
    chosen = policies.get(policy)
    codes.resolve(codes.NUMA_MODES, numa, "numa mode")
    _backend.get(backend)  # refuse an unavailable backend before building anything
    cluster = workloads.demo_cluster(hosts)
    requests = workloads.mixed(vms, containers, seed)

    used = chosen.numa or numa
    detail, wall_ms = timed_place(cluster, requests, policy=chosen, numa=used, backend=backend)
    # the comparison varies the mode: a preset's own mode is opened, its other choices kept
    open_mode = replace(chosen, numa=None) if chosen.numa is not None else chosen
    by_mode = {used: placement_report(detail, wall_ms, vms)}
    for mode in COMPARED_MODES:
        if mode not in by_mode:
            placement, ms = timed_place(cluster, requests, policy=open_mode, numa=mode,
                                        backend=backend)
            by_mode[mode] = placement_report(placement, ms, vms)
    return {
        "version": _version(),
        "backend": by_mode[used]["settings"]["backend"],
        "parameters": {"hosts": hosts, "vms": vms, "containers": containers, "seed": seed,
                       "policy": policy, "numa": used,
                       "numa_from": "policy" if chosen.numa is not None else "option",
                       "backend": backend},
        "workload": describe_workload(requests, vms, cluster),
        "cluster": describe_cluster(cluster),
        "placement": by_mode[used],
        "comparison": {mode: by_mode[mode] for mode in COMPARED_MODES},
    }


def _version() -> str:
    from .. import __version__
    return __version__


# --- rendering -------------------------------------------------------------------------------

def _pct(x: float | None, digits: int = 1) -> str:
    return "-" if x is None else f"{100.0 * x:.{digits}f}%"


def _num(x: float) -> str:
    return f"{x:,.0f}" if float(x).is_integer() else f"{x:,.1f}"


def _ratio(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def _cpu_range(lo_m: int, hi_m: int) -> str:
    if lo_m % 1000 == 0 and hi_m % 1000 == 0:
        return f"{lo_m // 1000}-{hi_m // 1000} vCPU"
    return f"{lo_m:,}m-{hi_m:,}m"


def _mem_range(lo_mib: int, hi_mib: int) -> str:
    def one(mib: int) -> str:
        return f"{mib:,} MiB" if mib < 1024 else f"{mib / 1024:.3g} GiB"
    return f"{one(lo_mib)}-{one(hi_mib)}"


def render(report: dict, console=None) -> None:
    """Draw ``report`` (from ``run_demo``) as rich tables (they fit in 80 columns)."""
    from rich import box
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console()

    def table(title: str, *columns: str, left: tuple[str, ...] = (), note: str = "",
              **kwargs) -> Table:
        title = f"[bold]{escape(title)}[/bold]" + (f"\n[dim]{escape(note)}[/dim]" if note else "")
        t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD,
                  padding=(0, 1, 0, 0), show_edge=False, **kwargs)
        for col in columns:
            t.add_column(col, justify="left" if col in left else "right", no_wrap=True)
        return t

    p = report["parameters"]
    console.print(f"[bold]numasched {report['version']} demo[/bold]: "
                  f"{report['workload']['requests']:,} requests on {p['hosts']:,} hosts, "
                  f"policy {p['policy']}, backend {report['backend']}, seed {p['seed']}")
    console.print()

    wl = report["workload"]
    t = table("Workload", "kind", "count", "vCPUs", "GiB", "vNUMA", "CPU", "memory",
              left=("kind", "CPU", "memory"))
    labels = {"vm": "VMs (Azure mix)", "container": "containers"}
    for kind, k in wl["kinds"].items():
        t.add_row(labels[kind], f"{k['count']:,}", _num(k["vcpus"]), _num(k["memory_gib"]),
                  f"{k['vnuma']:,}",
                  _cpu_range(k["cpu_min_m"], k["cpu_max_m"]) if k["count"] else "-",
                  _mem_range(k["mem_min_mib"], k["mem_max_mib"]) if k["count"] else "-")
    console.print(t)
    console.print(f"demand: {_pct(wl['cpu_demand_of_capacity'])} of the cluster's CPU, "
                  f"{_pct(wl['mem_demand_of_capacity'])} of its memory")
    console.print()

    c = report["cluster"]
    remote = c["distance_remote"] if c["distance_remote"] is not None else "-"
    t = table("Cluster", "hosts", "nodes/host", "per node", "SLIT", "total",
              left=("per node", "total"))
    t.add_row(f"{c['hosts']:,}", str(c["nodes_per_host"]),
              f"{_num(c['cores_per_node'])} cores, {_num(c['memory_gib_per_node'])} GiB",
              f"{c['distance_local']}/{remote}",
              f"{_num(c['cores'])} cores, {_num(c['memory_gib'])} GiB")
    console.print(t)
    console.print()

    pl = report["placement"]
    kinds = pl["by_kind"]
    by_policy = f" (set by policy {p['policy']})" if p.get("numa_from") == "policy" else ""
    t = table(f"Placement under numa={p['numa']}{by_policy}", "metric", "value",
              left=("metric", "value"), note=MODE_NOTES.get(p["numa"], ""), show_header=False)
    t.add_row("placed", f"{pl['placed']:,} of {pl['requests']:,} (VMs {kinds['vm']['placed']:,}, "
                        f"containers {kinds['container']['placed']:,})")
    t.add_row("pending", f"{pl['pending']:,} (VMs {kinds['vm']['pending']:,}, "
                         f"containers {kinds['container']['pending']:,})")
    t.add_row("hosts used / lower bound", f"{pl['hosts_used']:,} / {pl['hosts_lower_bound']:,} = "
                                          f"{_ratio(pl['hosts_over_bound'])}")
    t.add_row("locality (local accesses)", _pct(pl["locality"]))
    t.add_row("on a single NUMA node", _pct(pl["single_node_fraction"]))
    t.add_row("utilisation (used hosts)", f"CPU {_pct(pl['cpu_utilisation'])}, "
                                          f"memory {_pct(pl['mem_utilisation'])}")
    t.add_row("stranded (used hosts)", f"CPU {_pct(pl['stranded_cpu'])}, "
                                       f"memory {_pct(pl['stranded_mem'])}")
    t.add_row("wall time", f"{pl['wall_ms']:.1f} ms")
    console.print(t)
    console.print()
    if pl["pending_reasons"]:
        t = table("Pending, by reason", "code", "reason", "count", "meaning",
                  left=("reason", "meaning"))
        t.columns[3].no_wrap = False
        for r in pl["pending_reasons"]:
            t.add_row(str(r["code"]), r["reason"], f"{r['count']:,}", r["message"])
        console.print(t)
        console.print()

    t = table("The same workload under each NUMA mode", "numa mode", "placed", "pending", "hosts",
              "bound", "ratio", "1-node", "local", "ms", left=("numa mode",))
    for mode, m in report["comparison"].items():
        t.add_row(mode, f"{m['placed']:,}", f"{m['pending']:,}", f"{m['hosts_used']:,}",
                  f"{m['hosts_lower_bound']:,}", _ratio(m["hosts_over_bound"]),
                  _pct(m["single_node_fraction"]), _pct(m["locality"]), f"{m['wall_ms']:.1f}")
    console.print(t)
    console.print("hosts = hosts used, ratio = used / lower bound, 1-node = placed on one NUMA "
                  "node, local = memory-weighted local accesses, ms = wall time of place(). "
                  "none is Linux's balancer (~50% local), restricted ESXi's home node (~99%).",
                  style="dim")


__all__ = ["run_demo", "render", "describe_workload", "describe_cluster", "placement_report",
           "timed_place", "COMPARED_MODES"]
