"""Trace replay: a CSV of timed requests driving the controller through time.

Format (a header row, then one request per row; ``#`` lines are comments)::

    arrival,departure,cpu,memory,kind,namespace,name,numa,vnuma,priority
    0,3600,2,4Gi,Pod,web,,,,
    10,,16,128Gi,VirtualMachine,vms,db-1,restricted,true,100

- ``arrival``: when the request is submitted (a number >= 0; seconds, or any unit, the same for
  every row); ``departure``: when it is deleted, empty = it stays to the end; it must be later
  than the arrival. A request that departs while still Pending is withdrawn.
- ``cpu``, ``memory``: Kubernetes quantities (``2`` is two cores, ``500m``, ``4Gi``).
- ``kind``: ``Pod`` or ``VirtualMachine``; ``namespace``: a DNS-1123 label (``default`` if
  empty).
- optional ``name`` (default ``<kind>-<row>``), ``numa`` (a NUMA mode, empty = the replay's
  default), ``vnuma`` (true/false, VMs only), ``priority`` (an integer, default 0).

``replay`` builds a ``numasched.control.Controller`` on the topology's hosts, then, at each
distinct event time in order, deletes what departs, applies what arrives (as Pod / KubeVirt
VirtualMachine manifests) and reconciles once. After every reconcile it records pending and
running requests, CPU and memory utilisation of the whole cluster, and the memory-weighted
locality of what runs (``numasched.evaluation.metrics``' definition) and the hosts in use. The
hosts start empty: the controller's ``ops.add_host`` takes capacity only, so a topology's
``available`` amounts are not carried into the replay (the report says so).

With ``rebalance="plan"`` the replay also rebalances every ``rebalance_every`` time units: a
migration plan of at most ``max_moves`` moves for ``objective`` (``numasched.control.rebalance``:
VMs migrate live, Pods are evicted and re-placed on reserved capacity) is applied after that
time's reconcile. ``rebalance="descheduler"`` is the baseline: at the same times, every workload
of the least used hosts under 50 % utilisation is evicted (at most ``max_moves``) and a reconcile
lets the scheduler place them again. The series then hold ``moves`` per event time and the
summary ``moves`` and ``moves_per_hour`` (time taken as seconds).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from .. import codes
from . import limits
from .files import read_text
from .quantity import cpu_millicores, format_cpu, format_memory, memory_bytes
from .topology import Topology, csv_rows

REBALANCE_MODES = ("plan", "descheduler")
DESCHEDULER_THRESHOLD = 0.5
REQUIRED = ("arrival", "departure", "cpu", "memory", "kind", "namespace")
OPTIONAL = ("name", "numa", "vnuma", "priority")
KINDS = ("Pod", "VirtualMachine")
NUMA_ANNOTATION = "numasched.io/numa"
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_TRUE = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False, "": False}


@dataclass(frozen=True)
class Trace:
    """Requests of a trace as columns ([N] each); ``departure`` is ``inf`` for stayers."""

    arrival: np.ndarray      # float64
    departure: np.ndarray    # float64, > arrival
    cpu: np.ndarray          # int64 millicores
    mem: np.ndarray          # int64 bytes
    kind: tuple[str, ...]
    namespace: tuple[str, ...]
    name: tuple[str, ...]
    numa: tuple[str | None, ...]
    vnuma: np.ndarray        # bool
    priority: np.ndarray     # int64
    source: str = "trace"

    def __len__(self) -> int:
        return len(self.name)

    def manifest(self, i: int) -> dict:
        """Request ``i`` as the Pod or KubeVirt VirtualMachine manifest the controller applies."""
        meta = {"name": self.name[i], "namespace": self.namespace[i]}
        if self.numa[i]:
            meta["annotations"] = {NUMA_ANNOTATION: self.numa[i]}
        cpu, mem = format_cpu(int(self.cpu[i])), format_memory(int(self.mem[i]))
        priority = int(self.priority[i])
        if self.kind[i] == "Pod":
            return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
                    "spec": {"priority": priority, "containers": [
                        {"name": "main", "resources": {"requests": {"cpu": cpu, "memory": mem}}}]}}
        domain = {"resources": {"requests": {"cpu": cpu, "memory": mem}}, "memory": {"guest": mem}}
        if self.vnuma[i]:
            domain["cpu"] = {"numa": {"guestMappingPassthrough": {}}}
        return {"apiVersion": "kubevirt.io/v1", "kind": "VirtualMachine", "metadata": meta,
                "spec": {"template": {"spec": {"priority": priority, "domain": domain}}}}


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}: expected a number, got {text!r:.40}") from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{where}: expected a finite number >= 0, got {text!r:.40}")
    return value


def parse_trace(text: str, source: str = "trace") -> Trace:
    """A trace from CSV text (see the module docstring); ``ValueError`` naming the line, the
    column and the value."""
    reader = csv_rows(text, source, REQUIRED, OPTIONAL, "trace")
    cols: dict[str, list] = {c: [] for c in REQUIRED + OPTIONAL}
    seen: dict[tuple[str, str, str], int] = {}
    most = limits.current().max_requests
    for n, row in enumerate(reader):
        line = n + 2
        where = f"{source}: line {line}"
        if n >= most:
            raise ValueError(f"{where}: more than {most:,} requests (limits.max_requests)")
        if None in row:
            raise ValueError(f"{where}: more fields than the header has columns")
        get = {c: (row.get(c) or "").strip() for c in REQUIRED + OPTIONAL}
        arrival = _number(get["arrival"], f"{where}: arrival")
        departure = math.inf if not get["departure"] else _number(get["departure"], f"{where}: departure")
        if departure <= arrival:
            raise ValueError(f"{where}: departure {get['departure']!r} is not after the arrival "
                             f"{get['arrival']!r}")
        cpu = cpu_millicores(get["cpu"], f"{where}: cpu")
        mem = memory_bytes(get["memory"], f"{where}: memory")
        if cpu == 0 or mem == 0:
            raise ValueError(f"{where}: {'cpu' if cpu == 0 else 'memory'}: a request must be positive")
        kind = get["kind"]
        if kind not in KINDS:
            raise ValueError(f"{where}: kind: expected one of {', '.join(KINDS)}, got {kind!r}")
        namespace = get["namespace"] or "default"
        if not _LABEL.match(namespace):
            raise ValueError(f"{where}: namespace: must be a DNS-1123 label, got {namespace!r}")
        name = get["name"] or f"{'pod' if kind == 'Pod' else 'vm'}-{n}"
        if not _SUBDOMAIN.match(name):
            raise ValueError(f"{where}: name: must be a DNS-1123 name, got {name!r}")
        key = (kind, namespace, name)
        if key in seen:
            raise ValueError(f"{where}: {kind} {namespace}/{name} already appears on line {seen[key]}")
        seen[key] = line
        numa = get["numa"] or None
        if numa is not None:
            try:
                codes.resolve(codes.NUMA_MODES, numa, "numa mode")
            except ValueError as exc:
                raise ValueError(f"{where}: numa: {exc}") from None
        if get["vnuma"].lower() not in _TRUE:
            raise ValueError(f"{where}: vnuma: expected true or false, got {get['vnuma']!r}")
        vnuma = _TRUE[get["vnuma"].lower()]
        if vnuma and kind != "VirtualMachine":
            raise ValueError(f"{where}: vnuma: only a VirtualMachine has a guest NUMA layout")
        try:
            priority = int(get["priority"] or 0)
        except ValueError:
            raise ValueError(f"{where}: priority: expected an integer, got "
                             f"{get['priority']!r:.40}") from None
        if not -(2**31) <= priority < 2**31:
            raise ValueError(f"{where}: priority: must fit in int32, got {priority}")
        for c, v in zip(REQUIRED + OPTIONAL, (arrival, departure, cpu, mem, kind, namespace, name,
                                              numa, vnuma, priority)):
            cols[c].append(v)
    if not cols["name"]:
        raise ValueError(f"{source}: the trace has no requests")
    return Trace(arrival=np.array(cols["arrival"], dtype=np.float64),
                 departure=np.array(cols["departure"], dtype=np.float64),
                 cpu=np.array(cols["cpu"], dtype=np.int64), mem=np.array(cols["memory"], dtype=np.int64),
                 kind=tuple(cols["kind"]), namespace=tuple(cols["namespace"]),
                 name=tuple(cols["name"]), numa=tuple(cols["numa"]),
                 vnuma=np.array(cols["vnuma"], dtype=bool),
                 priority=np.array(cols["priority"], dtype=np.int64), source=source)


def load_trace(path) -> Trace:
    """``parse_trace`` of a file."""
    return parse_trace(read_text(path, "a trace file"), str(path))


def _request_locality(status: dict) -> float:
    """Local fraction of one running workload: sum_i c_i * m_i over its nodes' shares, 1.0 for
    a vNUMA guest split into equal clients (numasched.evaluation.metrics' definition)."""
    alloc = status["allocated"]
    if status["vnuma"] and status["numa"] != "none":
        return 1.0
    cpu = sum(a["cpu"] for a in alloc)
    mem = sum(a["memory"] for a in alloc)
    if cpu <= 0 or mem <= 0:
        return 1.0
    return sum(a["cpu"] * a["memory"] for a in alloc) / (cpu * mem)


def replay(topology: Topology, trace: Trace, *, policy: str = "best-fit", numa: str = "restricted",
           backend: str = "auto", progress=None, rebalance: str | None = None,
           rebalance_every: float = 60.0, max_moves: int = 10, objective: str = "hosts") -> dict:
    """Replay ``trace`` on ``topology``'s hosts; the time series and their summary (plain data).

    ``progress``, if given, is called as ``progress(done, total)`` after each event time.
    ``rebalance`` is None, ``"plan"`` or ``"descheduler"`` (module docstring).
    """
    from ..control import Controller
    from ..control import rebalance as rebalancing

    if rebalance is not None and rebalance not in REBALANCE_MODES:
        raise ValueError(f"rebalance: unknown mode {rebalance!r}; known: "
                         + ", ".join(REBALANCE_MODES))
    if isinstance(rebalance_every, bool) or not isinstance(rebalance_every, (int, float)) \
            or not math.isfinite(rebalance_every) or rebalance_every <= 0:
        raise ValueError(f"rebalance_every must be a positive number, got {rebalance_every!r}")
    if isinstance(max_moves, bool) or not isinstance(max_moves, int) or max_moves < 1:
        raise ValueError(f"max_moves must be a positive integer, got {max_moves!r}")
    if objective not in rebalancing.rb.OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; known: "
                         + ", ".join(rebalancing.rb.OBJECTIVES))

    ctl = Controller(policy=policy, numa=numa, backend=backend)
    c = topology.cluster
    for h, name in enumerate(topology.names):
        nodes = [(int(c.node_cpu[h, k]), int(c.node_mem[h, k])) for k in range(c.nodes)]
        dist = c.distance[h if c.distance.shape[0] > 1 else 0]
        ctl.ops.add_host(name, nodes=nodes, distance=dist)
        if not c.schedulable[h]:
            ctl.ops.enter_maintenance(name)
    for namespace in sorted(set(trace.namespace) - {"default"}):
        ctl.ops.create_namespace(namespace)
    notes = []
    if not (np.array_equal(c.free_cpu, c.node_cpu) and np.array_equal(c.free_mem, c.node_mem)):
        notes.append("the topology's free (available) amounts are not carried into the replay: "
                     "hosts start empty")

    n = len(trace)
    times = np.unique(np.concatenate([trace.arrival, trace.departure[np.isfinite(trace.departure)]]))
    arrive_order = np.argsort(trace.arrival, kind="stable")
    depart_order = np.argsort(trace.departure, kind="stable")
    key_of = {(trace.kind[i], trace.namespace[i], trace.name[i]): i for i in range(n)}
    cap_cpu, cap_mem = int(c.node_cpu.sum()), int(c.node_mem.sum())
    running: dict[int, tuple[int, float]] = {}   # request -> (memory, memory * local fraction)
    first_placed = np.full(n, np.nan)
    present = np.zeros(n, dtype=bool)
    series = {k: [] for k in ("time", "pending", "running", "cpu_utilisation", "mem_utilisation",
                              "locality", "hosts_used", "moves")}
    next_rebalance = float(times[0]) + rebalance_every if times.size else 0.0

    def record(key) -> None:
        status = ctl.get(*key)["status"]
        mem = sum(x["memory"] for x in status["allocated"])
        running[key_of[key]] = (mem, mem * _request_locality(status))

    a = d = 0
    for step, t in enumerate(times.tolist()):
        while d < n and trace.departure[depart_order[d]] <= t:
            i = int(depart_order[d])
            d += 1
            if present[i]:
                ctl.delete(trace.kind[i], trace.namespace[i], trace.name[i])
                present[i] = False
                running.pop(i, None)
        while a < n and trace.arrival[arrive_order[a]] <= t:
            i = int(arrive_order[a])
            a += 1
            ctl.apply(trace.manifest(i))
            present[i] = True
        result = ctl.reconcile()
        for key in result.evicted:
            running.pop(key_of.get(key, -1), None)
        for key in result.placed:
            i = key_of[key]
            record(key)
            if np.isnan(first_placed[i]):
                first_placed[i] = t
        moves = 0
        if rebalance is not None and t >= next_rebalance:
            while next_rebalance <= t:
                next_rebalance += rebalance_every
            if rebalance == "plan":
                done = rebalancing.apply(ctl, rebalancing.plan(ctl, max_moves=max_moves,
                                                               objective=objective))
                for step in done.steps:
                    record((step.kind, step.namespace, step.name))
                moves = len(done.steps)
            else:
                evicted = rebalancing.evict_underused(ctl, threshold=DESCHEDULER_THRESHOLD,
                                                      max_moves=max_moves)
                for key in evicted:
                    running.pop(key_of.get(key, -1), None)
                if evicted:
                    result = ctl.reconcile()
                    for key in result.placed:
                        record(key)
                moves = len(evicted)
        cluster, _ = ctl.cluster()
        used_cpu = cap_cpu - int(cluster.free_cpu.sum())
        used_mem = cap_mem - int(cluster.free_mem.sum())
        weight = sum(m for m, _ in running.values())
        series["time"].append(t)
        series["pending"].append(result.count("pending"))
        series["running"].append(len(running))
        series["cpu_utilisation"].append(used_cpu / cap_cpu if cap_cpu else 0.0)
        series["mem_utilisation"].append(used_mem / cap_mem if cap_mem else 0.0)
        series["locality"].append(sum(x for _, x in running.values()) / weight if weight else None)
        series["hosts_used"].append(int(((cluster.node_cpu - cluster.free_cpu).any(axis=1)
                                         | (cluster.node_mem - cluster.free_mem).any(axis=1)).sum()))
        series["moves"].append(moves)
        if progress is not None:
            progress(step + 1, len(times))
    problems = ctl.audit()
    if problems:
        raise RuntimeError(f"the controller's accounting broke during the replay: {problems[0]}")

    t = np.array(series["time"])
    widths = np.diff(t) if t.size > 1 else np.ones(1)
    def mean(name):   # time-weighted over [t_i, t_i+1) (the last point has no duration); None skipped
        values = np.array([np.nan if v is None else v for v in series[name]], dtype=np.float64)
        values, w = (values[:-1], widths) if t.size > 1 else (values, np.ones(1))
        ok = ~np.isnan(values)
        if not ok.any():
            return None
        return float((values[ok] * w[ok]).sum() / w[ok].sum()) if w[ok].sum() > 0 else float(values[ok].mean())
    placed = ~np.isnan(first_placed)
    waits = first_placed[placed] - trace.arrival[placed]
    summary = {
        "requests": n, "event_times": int(t.size), "start": float(t[0]), "end": float(t[-1]),
        "placed": int(placed.sum()), "never_placed": int((~placed).sum()),
        "placed_on_arrival": int((waits == 0).sum()),
        "mean_wait": float(waits.mean()) if waits.size else None,
        "max_wait": float(waits.max()) if waits.size else None,
        "max_pending": int(max(series["pending"])),
        "mean_pending": mean("pending"), "mean_running": mean("running"),
        "mean_cpu_utilisation": mean("cpu_utilisation"),
        "mean_mem_utilisation": mean("mem_utilisation"),
        "mean_locality": mean("locality"),
        "final_pending": series["pending"][-1], "final_running": series["running"][-1],
        "mean_hosts_used": mean("hosts_used"), "max_hosts_used": int(max(series["hosts_used"])),
        "moves": int(sum(series["moves"])),
        "moves_per_hour": (float(sum(series["moves"])) * 3600.0 / float(t[-1] - t[0])
                           if t[-1] > t[0] else 0.0),
    }
    return {"trace": trace.source, "hosts": len(topology), "policy": policy, "numa": numa,
            "backend": backend, "summary": summary, "series": series, "notes": notes,
            "rebalance": None if rebalance is None else {
                "mode": rebalance, "every": rebalance_every, "max_moves": max_moves,
                "objective": objective if rebalance == "plan" else None}}


def render(report: dict, console=None, rows: int = 12) -> None:
    """The replay's summary and a sample of its time series as rich tables."""
    from rich.console import Console
    from rich.markup import escape

    from .report import _table

    console = console or Console()
    s = report["summary"]
    console.print(f"[bold]Trace replay[/bold] of {escape(report['trace'])}: {s['requests']:,} "
                  f"requests, {s['event_times']:,} event times, {report['hosts']:,} hosts, policy "
                  f"{report['policy']}, numa {report['numa']}")
    t = _table("Summary", "metric", "value", left=("metric", "value"), show_header=False)
    t.add_row("placed (ever) / never", f"{s['placed']:,} / {s['never_placed']:,}")
    wait = "-" if s["mean_wait"] is None else f"{s['mean_wait']:.3g} (max {s['max_wait']:.3g})"
    t.add_row("placed on arrival", f"{s['placed_on_arrival']:,}; mean wait {wait}")
    t.add_row("pending: max / mean", f"{s['max_pending']:,} / {s['mean_pending']:.2f}")
    t.add_row("mean utilisation", f"CPU {100 * s['mean_cpu_utilisation']:.1f}%, memory "
                                  f"{100 * s['mean_mem_utilisation']:.1f}%")
    t.add_row("mean locality (running)", _pct(s["mean_locality"]))
    t.add_row("hosts in use: mean / max", f"{s['mean_hosts_used']:.2f} / {s['max_hosts_used']:,}")
    if report.get("rebalance"):
        rb_ = report["rebalance"]
        t.add_row(f"rebalancing ({rb_['mode']}, every {rb_['every']:g})",
                  f"{s['moves']:,} moves, {s['moves_per_hour']:.1f} per hour")
    t.add_row("at the end", f"{s['final_running']:,} running, {s['final_pending']:,} pending")
    console.print(t)
    series = report["series"]
    total = len(series["time"])
    picks = sorted(set(np.linspace(0, total - 1, min(rows, total)).round().astype(int).tolist()))
    t = _table("Over time (sampled)", "time", "pending", "running", "CPU", "memory", "locality",
               "hosts")
    for i in picks:
        t.add_row(f"{series['time'][i]:g}", f"{series['pending'][i]:,}", f"{series['running'][i]:,}",
                  f"{100 * series['cpu_utilisation'][i]:.1f}%",
                  f"{100 * series['mem_utilisation'][i]:.1f}%", _pct(series["locality"][i]),
                  f"{series['hosts_used'][i]:,}")
    console.print(t)
    for note in report["notes"]:
        console.print(f"note: {escape(note)}", style="dim")


def _pct(x) -> str:
    return "-" if x is None else f"{100.0 * x:.1f}%"


__all__ = ["Trace", "parse_trace", "load_trace", "replay", "render", "REQUIRED", "OPTIONAL",
           "REBALANCE_MODES"]
