"""Reports of the ``topology`` and ``place`` commands: plain data (JSON/YAML-ready dicts) and
their rich rendering. The CLI only parses options and picks an output.
"""
from __future__ import annotations

import math

import numpy as np

from .. import codes
from ..api import Placement, Requests, place
from .topology import Topology
from .workloads import Workloads, existing_load, kubelet_modes, with_load

GIB = 2**30


def _json_number(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _mask_nodes(mask: int) -> list[int]:
    return [k for k in range(64) if (mask >> k) & 1]


def default_numa(topology: Topology, numa: str | None, policy=None) -> tuple[str, str]:
    """The NUMA mode for requests that set none, and where it came from: a policy that fixes
    one (``esxi``, ``linux``, ``kubelet-*``: it wins over the option, as in ``place()``), else
    the option, else the hosts' common kubelet ``topologyManagerPolicy`` attribute, else
    ``restricted``."""
    if policy is not None:
        from .. import policies
        fixed = policies.get(policy).numa
        if fixed is not None:
            return fixed, "policy"
    if numa is not None:
        return numa, "option"
    policy = topology.topology_manager_policy()
    if policy in codes.NUMA_MODES:
        return policy, "topologyManagerPolicy"
    return "restricted", "default"


# --------------------------------------------------------------------------------------------
# topology
# --------------------------------------------------------------------------------------------
def topology_report(topology: Topology, source: str) -> dict:
    """Hosts, their nodes (capacity, free, distance row) and attributes, as plain data."""
    c = topology.cluster
    hosts = []
    for h, name in enumerate(topology.names):
        dist = c.distance[h if c.distance.shape[0] > 1 else 0]
        present = [k for k in range(c.nodes) if c.present[h, k]]
        nodes = []
        for k in present:
            node = {"node": k, "cpu_m": int(c.node_cpu[h, k]), "memory_bytes": int(c.node_mem[h, k]),
                    "free_cpu_m": int(c.free_cpu[h, k]), "free_memory_bytes": int(c.free_mem[h, k]),
                    "distance": [int(dist[k, j]) for j in present]}
            node.update(topology.details[h].get(k, {}) if topology.details else {})
            nodes.append(node)
        hosts.append({"name": name, "schedulable": bool(c.schedulable[h]), "nodes": nodes,
                      "attributes": dict(topology.attributes[h]), "source": topology.sources[h]})
    return {"source": source, "hosts": hosts, "notes": list(topology.notes)}


def _gib(num_bytes: int) -> str:
    return f"{num_bytes / GIB:,.1f}"


def render_topology(report: dict, console=None) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = console or Console()
    hosts = report["hosts"]
    console.print(f"[bold]Topology[/bold] from {escape(report['source'])}: {len(hosts):,} host(s)")
    shown = hosts if len(hosts) <= 20 else hosts[:20]
    t = _table("", "host", "node", "CPUs", "free", "memory GiB", "free GiB", "distance", "cpulist",
               left=("host", "distance", "cpulist"))
    has_cpulist = any("cpulist" in n for h in shown for n in h["nodes"])
    if not has_cpulist:
        t.columns.pop()
    for host in shown:
        label = host["name"] + ("" if host["schedulable"] else " (unschedulable)")
        for i, n in enumerate(host["nodes"]):
            row = [escape(label) if i == 0 else "", str(n["node"]), _cores(n["cpu_m"]),
                   _cores(n["free_cpu_m"]), _gib(n["memory_bytes"]),
                   _gib(n["free_memory_bytes"]), " ".join(map(str, n["distance"]))]
            if has_cpulist:
                row.append(n.get("cpulist") or "-")
            t.add_row(*row)
    console.print(t)
    if len(hosts) > len(shown):
        console.print(f"... and {len(hosts) - len(shown):,} more hosts (--output json lists all)")
    attrs = {}
    for host in hosts:
        for key, value in host["attributes"].items():
            attrs.setdefault(f"{key}={value}", []).append(host["name"])
    for kv, names in attrs.items():
        console.print(f"attribute {escape(kv)}: {len(names):,} host(s)")
    for note in report["notes"]:
        console.print(f"note: {escape(note)}", style="dim")


# --------------------------------------------------------------------------------------------
# place
# --------------------------------------------------------------------------------------------
def place_report(topology: Topology, workloads: Workloads, *, policy: str = "best-fit",
                 numa: str | None = None, backend: str = "auto") -> tuple[dict, Placement]:
    """Place the workloads onto the topology's free state; the report and the Placement.

    Bound pods (``workloads.bound``) are existing load on their hosts first (see
    ``workloads.existing_load``), listed with status ``bound`` and never moved. Without
    ``numa``, when the hosts state a kubelet ``topologyManagerPolicy``, each request gets the
    mode the kubelet would give it (``workloads.kubelet_modes``); with ``numa`` or a policy that
    fixes the mode, every request without an annotation gets that mode."""
    mode, mode_from = default_numa(topology, numa, policy)
    requests = workloads.requests
    bound_modes, notes, per_pod = None, [], False
    if numa is None and mode_from != "policy":   # an explicit mode (option, preset) wins
        modes, note = kubelet_modes(topology, workloads.specs)
        if modes is not None:
            requests = Requests(cpu=requests.cpu, mem=requests.mem, numa=modes,
                                vnuma=requests.vnuma, priority=requests.priority,
                                required_host=requests.required_host)
            bound_modes, _ = kubelet_modes(topology, [s for _, s in workloads.bound])
            notes += [note] if note else []
            per_pod = True
    load = existing_load(topology, workloads.bound, policy=policy, numa=mode, modes=bound_modes,
                         backend=backend)
    if workloads.bound:
        topology = with_load(topology, load)
    placement = place(topology.cluster, requests, policy=policy, numa=mode, backend=backend)
    summary = {k: _json_number(v) for k, v in placement.summary().items()}
    settings = dict(placement.settings)
    settings["weights"] = list(settings["weights"])
    rows = []
    for i, label in enumerate(workloads.labels):
        h = int(placement.host[i])
        nodes = _mask_nodes(int(placement.nodes[i]))
        reason = int(placement.reason[i])
        rows.append({
            "workload": label, "kind": workloads.specs[i].kind,
            "cpu_m": int(workloads.requests.cpu[i]), "memory_bytes": int(workloads.requests.mem[i]),
            "numa": codes.name_of(codes.NUMA_MODES, int(placement.modes[i])),
            "host": topology.names[h] if h >= 0 else None, "nodes": nodes,
            "cpu_by_node_m": {str(k): int(placement.cpu_by_node[i, k]) for k in nodes},
            "memory_by_node_bytes": {str(k): int(placement.mem_by_node[i, k]) for k in nodes},
            "status": codes.REASONS[reason],
            **({"message": codes.REASON_MESSAGES[reason]} if reason else {}),
        })
    bound_specs = dict(workloads.bound)
    for i, (label, h, nodes, cpu_by, mem_by) in enumerate(load.rows):
        spec = bound_specs[label]
        rows.append({
            "workload": label, "kind": spec.kind, "cpu_m": max(spec.cpu, 1),
            "memory_bytes": max(spec.mem, 1),
            "numa": bound_modes[i] if bound_modes is not None else spec.numa or mode,
            "host": topology.names[h], "nodes": nodes,
            "cpu_by_node_m": {str(k): v for k, v in cpu_by.items()},
            "memory_by_node_bytes": {str(k): v for k, v in mem_by.items()},
            "status": "bound", "message": "already bound to this host: existing load, not moved",
        })
    c = topology.cluster
    hosts = []
    for h in np.flatnonzero(np.bincount(placement.host[placement.host >= 0], minlength=c.hosts)):
        hosts.append({"name": topology.names[h], "requests": int((placement.host == h).sum()),
                      "nodes": [{"node": k, "cpu_m": int(c.node_cpu[h, k]),
                                 "free_cpu_m": int(placement.free_cpu[h, k]),
                                 "memory_bytes": int(c.node_mem[h, k]),
                                 "free_memory_bytes": int(placement.free_mem[h, k])}
                                for k in range(c.nodes) if c.present[h, k]]})
    report = {
        "topology": {"hosts": c.hosts, "nodes_per_host": c.nodes, "notes": list(topology.notes)},
        # per_pod: each pod got the mode its host's kubelet would give it (QoS class, scope)
        "numa_default": {"mode": mode, "from": mode_from, "per_pod": per_pod},
        "settings": settings,
        "summary": summary,
        "placements": rows,
        "hosts_used": hosts,
        "bound": len(workloads.bound),
        "notes": list(workloads.notes) + list(load.notes) + notes,
    }
    return report, placement


def render_place(report: dict, console=None) -> None:
    from rich.console import Console
    from rich.markup import escape

    console = console or Console()
    s, st = report["summary"], report["settings"]
    nd = report["numa_default"]
    bound = report.get("bound", 0)
    origin = {"policy": f"set by policy {st['policy']}", "option": "--numa"}.get(nd["from"],
                                                                                 nd["from"])
    used = ("numa per pod, as its host's kubelet would align it (topologyManagerPolicy)"
            if nd.get("per_pod") else f"numa {st['numa']} ({origin})")
    console.print(f"[bold]Placement[/bold] of {s['requests']:,} request(s) on "
                  f"{report['topology']['hosts']:,} host(s): policy {st['policy']}, {used}, "
                  f"backend {st['backend']}"
                  + (f"; {bound:,} bound pod(s) held as existing load" if bound else ""))
    # pending first (what needs attention), then placed, then bound, each in input order
    rank = {"placed": 1, "bound": 2}
    rows = sorted(report["placements"], key=lambda r: rank.get(r["status"], 0))
    shown = rows[:50]
    modes = {r["numa"] for r in rows}
    columns = ["workload", "CPU", "GiB"] + (["numa"] if len(modes) > 1 else []) + \
        ["host", "nodes", "status"]
    t = _table("", *columns, left=("workload", "numa", "host", "nodes", "status"))
    for r in shown:
        row = [escape(r["workload"]), _cores(r["cpu_m"]), _gib(r["memory_bytes"])]
        if len(modes) > 1:
            row.append(r["numa"])
        row += [escape(r["host"] or "-"), ",".join(map(str, r["nodes"])) or "-", r["status"]]
        t.add_row(*row)
    console.print(t)
    if len(rows) > len(shown):
        console.print(f"... and {len(rows) - len(shown):,} more (--output json lists all)")
    t = _table("Summary", "metric", "value", left=("metric", "value"), show_header=False)
    t.add_row("placed / pending", f"{s['placed']:,} / {s['pending']:,}")
    meaning = {name: codes.REASON_MESSAGES[code] for code, name in codes.REASONS.items()}
    for reason, count in s["pending_by_reason"].items():
        t.add_row(f"pending: {reason}", f"{count:,}: {meaning[reason]}")
    bound = "-" if s["hosts_over_bound"] is None else f"{s['hosts_over_bound']:.3f}"
    t.add_row("hosts used / lower bound", f"{s['hosts_used']:,} / {s['hosts_lower_bound']:,} = {bound}")
    t.add_row("locality (local accesses)", _pct(s["locality"]))
    t.add_row("on a single NUMA node", _pct(s["single_node_fraction"]))
    t.add_row("utilisation (used hosts)", f"CPU {_pct(s['cpu_utilisation'])}, memory "
                                          f"{_pct(s['mem_utilisation'])}")
    console.print(t)
    for note in report["topology"]["notes"] + report["notes"]:
        console.print(f"note: {escape(note)}", style="dim")
    for warning in report.get("warnings", []):
        console.print(f"warning: {escape(warning)}", style="yellow")


def _pct(x) -> str:
    return "-" if x is None else f"{100.0 * x:.1f}%"


def _table(title: str, *columns: str, left=(), **kwargs):
    from rich import box
    from rich.table import Table

    t = Table(title=f"[bold]{title}[/bold]" if title else None, title_justify="left",
              box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), show_edge=False, **kwargs)
    for col in columns:
        if col in FOLD:   # names may be long (cloud host names): fold them, keep numbers whole
            t.add_column(col, justify="left", overflow="fold", min_width=12)
        else:
            t.add_column(col, justify="left" if col in left else "right", no_wrap=True)
    return t


FOLD = ("host", "workload")


def _cores(millicores: int) -> str:
    return f"{millicores / 1000:,.3g}" if millicores < 1_000_000 else f"{millicores / 1000:,.0f}"


__all__ = ["topology_report", "render_topology", "place_report", "render_place", "default_numa"]
