"""What-if sweeps and many independent cells, run in parallel on Dask.

``sweep(grid)`` places (or replays) every combination of a grid of policies, NUMA modes, request
orders, node choices, host shapes and counts (or named clusters), workloads, refine budgets and
seeds; ``cells(cells)`` places or replays a list of independent clusters, each with its own
workload, and adds totals. Both return a tidy ``pandas.DataFrame``: one row per run, the
parameters first (``PARAMETER_COLUMNS``), then the outcome (``RESULT_COLUMNS``).

How the work is spread (``dask.distributed``):

- Every run is one task: a pure function of plain data (its parameters) and of two inputs, the
  cluster and the workload. Runs are deterministic for their seed, so a worker lost in the
  middle of a sweep costs nothing but time: the scheduler runs its tasks again elsewhere and
  the table is the same as an undisturbed run's.
- Inputs read on this machine (topology files, manifests, traces, ``Cluster`` and ``Requests``
  objects) are scattered once to every worker (``client.scatter(..., broadcast=True)``) and
  tasks refer to them by key, so a large cluster or trace travels once per worker, never once
  per task, and survives the loss of a worker. Generated inputs (uniform clusters, the built-in
  mixes for each seed) are tasks of their own, computed once on some worker and shared; if their
  worker dies they are computed again.
- By default a ``LocalCluster`` of worker *processes* (one thread each: placement is CPU-bound
  and holds the GIL outside the kernels) is started for the call and closed after it;
  ``scheduler="tcp://host:8786"`` or ``client=`` use a running Dask cluster instead (its workers
  need numasched installed).

The same parameters give the same table, row for row and bit for bit, whatever the number of
workers, except ``wall_ms`` (each run's wall time in milliseconds): compare tables with ``same_results``, which
leaves the ``TIMING_COLUMNS`` out.

Needs the ``distributed`` extra (dask, distributed, pandas, pyarrow for Parquet).
"""
from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import codes
from ..api import Cluster, Requests, place
from . import workloads as builtin
from ..optimize.plan import HostShape, parse_host_shape
from .locality import DEFAULT_MEMORY_BOUNDNESS, distance_ratio, relative_throughput

EXTRA_HINT = "pip install 'numasched[distributed]'"

#: The demo mix of ``numasched demo`` (Azure 2017 VMs and containers), the default workload.
DEMO_WORKLOAD = "demo"
DEMO_VMS = 5000
DEMO_CONTAINERS = 5150
#: The demo host, written as a shape: NUMA nodes x cores per node x memory per node.
DEMO_SHAPE = "2x32c/256Gi"
DEMO_HOSTS = 300

#: Grid axes and their defaults (one value each: ``place()``'s defaults, the demo mix on the demo
#: cluster, seed 0, no refine). ``cluster`` has no default: it replaces ``shape`` x ``hosts``.
AXES = ("policy", "numa", "order", "node", "shape", "hosts", "cluster", "workload", "refine", "seed")
DEFAULTS = {"policy": ("best-fit",), "numa": ("restricted",), "order": ("decreasing",),
            "node": ("pack",), "shape": (DEMO_SHAPE,), "hosts": (DEMO_HOSTS,),
            "workload": (DEMO_WORKLOAD,), "refine": (0.0,), "seed": (0,)}

#: The pending columns, one per reason code of ``numasched.codes.REASONS``.
PENDING_COLUMNS = {code: "pending_" + name.replace("-", "_")
                   for code, name in codes.REASONS.items() if code != codes.PLACED}

PARAMETER_COLUMNS = {
    "kind": "string", "workload": "string", "cluster": "string", "shape": "string",
    "hosts": "Int64", "policy": "string", "numa": "string", "order": "string", "node": "string",
    "refine": "float64", "seed": "Int64",
}
RESULT_COLUMNS = {
    "requests": "Int64", "placed": "Int64", "pending": "Int64",
    **{name: "Int64" for name in PENDING_COLUMNS.values()},
    "hosts_used": "Int64", "hosts_lower_bound": "Int64", "hosts_over_bound": "float64",
    "single_node_fraction": "float64", "locality": "float64", "relative_throughput": "float64",
    "cpu_utilisation": "float64", "mem_utilisation": "float64",
    "stranded_cpu": "float64", "stranded_mem": "float64",
    "placed_cpu": "Int64", "placed_mem": "Int64",
    "never_placed": "Int64", "mean_pending": "float64", "max_pending": "Int64",
    "mean_wait": "float64",
    "wall_ms": "float64",
}
#: Columns that differ between two runs of the same sweep (left out by ``same_results``).
TIMING_COLUMNS = ("wall_ms",)

_GENERATED = re.compile(r"^(demo|vms|containers|mixed)(?::(\d+))?(?::(\d+))?$")


def require_extra() -> None:
    """Import check for the ``distributed`` extra: one-line ``ImportError`` naming what is
    missing and how to install it."""
    for module in ("dask", "distributed", "pandas"):
        try:
            __import__(module)
        except ImportError:
            raise ImportError(f"sweeps need {module} (the distributed extra): {EXTRA_HINT}") from None


# --------------------------------------------------------------------------------------------
# Inputs: what a task receives as its cluster and its workload
# --------------------------------------------------------------------------------------------
def parse_shape(value) -> HostShape:
    """A host shape as ``numasched plan`` writes it: ``"2x32c/256Gi"`` (NUMA nodes x cores per
    node / memory per node; ``numasched.optimize.plan.parse_host_shape``), or a ``HostShape``."""
    return parse_host_shape(value)


def topology_of(cluster: Cluster, source: str = "sweep"):
    """A ``Topology`` around a bare ``Cluster`` (hosts named ``host-0`` ...), for replays."""
    from ..io.topology import Topology

    n = cluster.hosts
    return Topology(cluster=cluster, names=tuple(f"host-{h}" for h in range(n)),
                    attributes=({},) * n, sources=(source,) * n)


def uniform_topology(shape: HostShape, hosts: int):
    """``hosts`` identical hosts of ``shape`` (SLIT 10 local / 21 remote). Runs on a worker."""
    return topology_of(shape.cluster(hosts), str(shape))


def generated_workload(kind: str, counts: tuple[int, ...], seed: int) -> Requests:
    """A built-in mix for ``seed`` (``numasched.evaluation.workloads``). Runs on a worker."""
    if kind == "vms":
        return builtin.azure_vm_mix(counts[0], seed)
    if kind == "containers":
        return builtin.containers(counts[0], seed)
    return builtin.mixed(counts[0], counts[1], seed)


def parse_generated(spec: str) -> tuple[str, tuple[int, ...]] | None:
    """``demo`` (the demo mix), ``vms:N``, ``containers:N`` or ``mixed:VMS:CONTAINERS`` as
    (kind, counts); None if ``spec`` is not of that form (it is then a file)."""
    m = _GENERATED.match(spec.strip())
    if not m:
        return None
    kind, a, b = m[1], m[2], m[3]
    wanted = {"demo": 0, "vms": 1, "containers": 1, "mixed": 2}[kind]
    given = (a is not None) + (b is not None)
    if given != wanted:
        raise ValueError(f"workload {spec!r}: expected demo, vms:N, containers:N or mixed:VMS:CONTAINERS")
    if kind == "demo":
        return "mixed", (DEMO_VMS, DEMO_CONTAINERS)
    return kind, tuple(int(x) for x in (a, b)[:wanted])


@dataclass(frozen=True)
class _Workload:
    name: str
    kind: str                      # "place" or "replay"
    data: object = None            # Requests or Trace read here (scattered), or
    generator: tuple | None = None  # (kind, counts): built per seed on a worker


@dataclass(frozen=True)
class _Cluster:
    name: str
    data: object = None            # a Topology read here (scattered), or
    shape: HostShape | None = None  # a uniform cluster built on a worker
    hosts: int | None = None


def _workload(name: str, value) -> _Workload:
    from ..io.trace import Trace, load_trace
    from ..io.workloads import Workloads, read_workloads

    if isinstance(value, Requests):
        return _Workload(name, "place", data=value)
    if isinstance(value, Workloads):
        return _Workload(name, "place", data=value.requests)
    if isinstance(value, Trace):
        return _Workload(name, "replay", data=value)
    if isinstance(value, (str, os.PathLike)):
        generated = parse_generated(str(value)) if isinstance(value, str) else None
        if generated:
            return _Workload(name, "place", generator=generated)
        if str(value).lower().endswith(".csv"):
            return _Workload(name, "replay", data=load_trace(value))
        return _Workload(name, "place", data=read_workloads(value).requests)
    raise ValueError(f"workload {name!r}: expected demo, vms:N, containers:N, mixed:VMS:CONTAINERS, "
                     f"a manifest file or directory, a trace CSV, Requests, Workloads or a Trace; "
                     f"got {type(value).__name__}")


def _cluster(name: str, value) -> _Cluster:
    from ..io.topology import Topology, read_topology

    if isinstance(value, Topology):
        return _Cluster(name, data=value)
    if isinstance(value, Cluster):
        return _Cluster(name, data=topology_of(value, name))
    if isinstance(value, (str, os.PathLike)):
        return _Cluster(name, data=read_topology(value))
    raise ValueError(f"cluster {name!r}: expected a topology file or directory, a Topology or a "
                     f"Cluster, got {type(value).__name__}")


def _named(axis: str, values) -> list[tuple[str, object]]:
    """(name, value) pairs of a workload or cluster axis: a mapping name -> value, or a list
    whose strings and paths name themselves."""
    if isinstance(values, dict):
        pairs = [(str(k), v) for k, v in values.items()]
    else:
        pairs = [(str(v) if isinstance(v, (str, os.PathLike)) else f"{axis}-{i}", v)
                 for i, v in enumerate(values)]
    names = [n for n, _ in pairs]
    if len(set(names)) != len(names):
        raise ValueError(f"{axis}: names must be unique, got {names}")
    return pairs


# --------------------------------------------------------------------------------------------
# The grid
# --------------------------------------------------------------------------------------------
def _axis(grid: dict, axis: str) -> list:
    values = grid.get(axis, DEFAULTS.get(axis))
    if axis == "seed" and isinstance(values, (int, np.integer)) and not isinstance(values, bool):
        if values < 1:
            raise ValueError(f"seed: a count of seeds must be >= 1, got {values}")
        return list(range(int(values)))   # seed=K means seeds 0 .. K-1
    if not isinstance(values, (list, tuple, range, np.ndarray)):
        values = [values]   # one value: a name, a number, a path, a Cluster, Requests, ...
    values = list(values)
    if not values:
        raise ValueError(f"{axis}: the axis is empty")
    return values


def _pairs(grid: dict, axis: str) -> list[tuple[str, object]]:
    """(name, value) pairs of the cluster or workload axis (a mapping names its values)."""
    raw = grid.get(axis, DEFAULTS.get(axis))
    return _named(axis, raw if isinstance(raw, dict) else _axis(grid, axis))


def _check_int(axis: str, value, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise ValueError(f"{axis}: expected an integer >= {lo}, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class _Run:
    params: dict
    cluster: _Cluster
    workload: _Workload


def _effective(policy, numa, order, node, kind: str) -> dict:
    """The choices a run really makes: a preset fixes some of them, and a replay places
    online (``order="given"``, as the controller does)."""
    from .. import policies

    chosen = policies.get(policy)
    compiled = chosen.compile(numa=numa, node=node, order="given" if kind == "replay" else order)
    return {"policy": chosen.name, "numa": codes.name_of(codes.NUMA_MODES, compiled.numa),
            "order": codes.name_of(codes.ORDERS, compiled.order),
            "node": codes.name_of(codes.NODE_CHOICES, compiled.node)}


def expand(grid: dict | None = None) -> list[_Run]:
    """The runs of a grid, in grid order (axes in ``AXES`` order, the last varying fastest),
    each described by the choices it really makes; runs that would be identical are kept once
    (a preset fixes its NUMA mode, a file workload is the same for every seed unless refine
    uses the seed). Every value is checked here, before anything runs."""
    from ..optimize.refine import budget_units

    grid = dict(grid or {})
    unknown = sorted(set(grid) - set(AXES))
    if unknown:
        raise ValueError(f"unknown grid axis {unknown[0]!r}; known: {', '.join(AXES)}")
    if "cluster" in grid and ("shape" in grid or "hosts" in grid):
        raise ValueError("grid: give either cluster or shape and hosts, not both")
    if "cluster" in grid:
        clusters = [_cluster(n, v) for n, v in _pairs(grid, "cluster")]
    else:
        shapes = [parse_shape(s) for s in _axis(grid, "shape")]
        counts = [_check_int("hosts", h, 1) for h in _axis(grid, "hosts")]
        clusters = [_Cluster(f"{h} x {s}", shape=s, hosts=h) for s in shapes for h in counts]
    work = [_workload(n, v) for n, v in _pairs(grid, "workload")]
    seeds = [_check_int("seed", s, 0) for s in _axis(grid, "seed")]
    refines = []
    for r in _axis(grid, "refine"):
        budget_units(r)
        refines.append(float(r))
    choices = [_axis(grid, a) for a in ("policy", "numa", "order", "node")]

    runs, seen = [], set()
    for policy, numa, order, node, cl, wl, refine, seed in itertools.product(
            *choices, clusters, work, refines, seeds):
        chosen = _effective(policy, numa, order, node, wl.kind)
        if wl.kind == "replay":
            refine = 0.0   # the controller does not refine
        random = wl.generator is not None or refine > 0
        params = {"kind": wl.kind, "workload": wl.name, "cluster": cl.name,
                  "shape": str(cl.shape) if cl.shape else None,
                  "hosts": cl.hosts if cl.hosts else cl.data.cluster.hosts,
                  **chosen, "refine": refine, "seed": seed if random else None}
        key = tuple(params.values())
        if key not in seen:
            seen.add(key)
            runs.append(_Run(params, cl, wl))
    return runs


# --------------------------------------------------------------------------------------------
# One run (executed on a worker)
# --------------------------------------------------------------------------------------------
def run_one(params: dict, topology, work, backend: str = "auto",
            memory_boundness: float = DEFAULT_MEMORY_BOUNDNESS) -> dict:
    """Place (or replay) one grid point; the row of results as plain data. Deterministic for its
    inputs, except ``wall_ms``."""
    cluster = topology.cluster
    row = dict(params)
    ratio = distance_ratio(cluster)
    if params["kind"] == "replay":
        from ..io.trace import replay

        start = time.perf_counter()
        report = replay(topology, work, policy=params["policy"], numa=params["numa"],
                        backend=backend)
        row["wall_ms"] = (time.perf_counter() - start) * 1000.0
        s = report["summary"]
        local = s["mean_locality"]
        row.update(requests=s["requests"], placed=s["placed"], pending=s["final_pending"],
                   never_placed=s["never_placed"], mean_pending=s["mean_pending"],
                   max_pending=s["max_pending"], mean_wait=s["mean_wait"], locality=local,
                   cpu_utilisation=s["mean_cpu_utilisation"],
                   mem_utilisation=s["mean_mem_utilisation"])
    else:
        seed = params["seed"] or 0
        start = time.perf_counter()
        placement = place(cluster, work, policy=params["policy"], numa=params["numa"],
                          order=params["order"], node=params["node"], backend=backend,
                          refine=params["refine"], seed=seed)
        row["wall_ms"] = (time.perf_counter() - start) * 1000.0
        s = placement.summary()
        placed = placement.placed
        local = s["locality"] if s["placed"] else None
        counts = np.bincount(placement.reason.astype(np.int64), minlength=len(codes.REASONS))
        row.update({name: int(counts[code]) for code, name in PENDING_COLUMNS.items()})
        over = s["hosts_over_bound"]
        row.update({k: s[k] for k in ("requests", "placed", "pending", "hosts_used",
                                      "hosts_lower_bound", "single_node_fraction",
                                      "cpu_utilisation", "mem_utilisation", "stranded_cpu",
                                      "stranded_mem")},
                   hosts_over_bound=over if math.isfinite(over) else None, locality=local,
                   placed_cpu=int(work.cpu[placed].sum()), placed_mem=int(work.mem[placed].sum()))
    if local is not None:
        row["relative_throughput"] = relative_throughput(local, memory_boundness=memory_boundness,
                                                         distance_ratio=ratio)
    return row


def _table(rows: list[dict], first: dict | None = None):
    """Rows -> a DataFrame with the fixed columns and dtypes (absent values are NA)."""
    import pandas as pd

    schema = {**(first or {}), **PARAMETER_COLUMNS, **RESULT_COLUMNS}
    frame = pd.DataFrame([{c: r.get(c) for c in schema} for r in rows], columns=list(schema))
    return frame.astype(schema)


# --------------------------------------------------------------------------------------------
# Dask
# --------------------------------------------------------------------------------------------
def default_workers() -> int:
    """Worker processes of the default LocalCluster: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:   # not Linux
        return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def connect(client=None, scheduler: str | None = None, workers: int | None = None):
    """A Dask client: ``client`` as given, one connected to ``scheduler``, or one on a
    ``LocalCluster`` of ``workers`` single-threaded worker processes on 127.0.0.1 (closed, with
    its processes, on exit; ``workers=0``: one worker thread inside this process, no spawn,
    for small sweeps and debugging)."""
    require_extra()
    from distributed import Client, LocalCluster

    if sum(x is not None for x in (client, scheduler)) > 1:
        raise ValueError("give client or scheduler, not both")
    if workers is not None:
        if client is not None or scheduler is not None:
            raise ValueError("workers applies to the local cluster only; a client or a scheduler "
                             "brings its own workers")
        _check_int("workers", workers, 0)
    if client is not None:
        yield client
        return
    if scheduler is not None:
        try:
            remote = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise ValueError(f"scheduler {scheduler!r}: cannot connect ({exc})") from None
        with remote:
            yield remote
        return
    processes = workers != 0   # 0: one worker thread in this process (small sweeps, debugging)
    where = {"host": "127.0.0.1"} if processes else {}   # in-process: inproc://, no socket
    with LocalCluster(n_workers=(workers or default_workers()) if processes else 1,
                      threads_per_worker=1, processes=processes,
                      dashboard_address="127.0.0.1:0", **where) as local, \
            Client(local) as own:
        yield own


def _execute(client, runs: list[_Run], progress=None, backend: str = "auto",
             memory_boundness: float = DEFAULT_MEMORY_BOUNDNESS) -> list[dict]:
    """Submit every run, each with its scattered or generated inputs; rows in ``runs`` order.
    Every key is unique to this call (no content hashing), so cancelling them at the end, or
    on an error, never touches another computation on a shared client."""
    from distributed import as_completed

    inputs: dict = {}

    def cluster_ref(c: _Cluster):
        key = ("cluster", c.name)
        if key not in inputs:
            if c.data is not None:
                inputs[key] = client.scatter(c.data, broadcast=True, hash=False)
            else:
                inputs[key] = client.submit(uniform_topology, c.shape, c.hosts, pure=False)
        return inputs[key]

    def workload_ref(w: _Workload, seed):
        key = ("workload", w.name, seed if w.generator else None)
        if key not in inputs:
            if w.data is not None:
                inputs[key] = client.scatter(w.data, broadcast=True, hash=False)
            else:
                inputs[key] = client.submit(generated_workload, *w.generator, seed or 0,
                                            pure=False)
        return inputs[key]

    futures = {}
    for i, run in enumerate(runs):
        future = client.submit(run_one, run.params, cluster_ref(run.cluster),
                               workload_ref(run.workload, run.params["seed"]), backend,
                               memory_boundness, pure=False)
        futures[future] = i
    rows: list[dict | None] = [None] * len(runs)
    done = 0
    try:
        for future in as_completed(list(futures)):
            rows[futures[future]] = future.result()
            done += 1
            if progress is not None:
                progress(done, len(runs))
    finally:
        client.cancel(list(futures) + list(inputs.values()))
    return rows


def sweep(grid: dict | None = None, *, client=None, scheduler: str | None = None,
          workers: int | None = None, backend: str = "auto",
          memory_boundness: float = DEFAULT_MEMORY_BOUNDNESS, progress=None):
    """Run every point of ``grid`` on Dask; a ``pandas.DataFrame``, one row per run.

    ``grid`` maps axes to lists of values (a single value stands for a list of one; an absent
    axis takes its default of ``DEFAULTS``):

    - ``policy``: host scores and presets (``numasched.policies.names()``); ``numa``, ``order``,
      ``node``: as in ``place()``. A preset fixes some of them: the row holds what ran, and
      points that differ only in a fixed choice run once.
    - ``shape`` (``"2x32c/256Gi"``: NUMA nodes x cores / memory per node) and ``hosts`` (counts):
      uniform clusters, every shape with every count. Or ``cluster``: topology files or
      directories, ``Topology`` or ``Cluster`` objects (a mapping gives them names).
    - ``workload``: ``demo`` (the mix of ``numasched demo``), ``vms:N``, ``containers:N``,
      ``mixed:VMS:CONTAINERS`` (generated for each seed), manifest files or directories and
      ``Requests`` (placed), trace CSVs and ``Trace`` objects (replayed through the controller).
    - ``refine``: seconds of local search after the greedy pass (deterministic budgets).
    - ``seed``: a list of seeds, or a count K for seeds 0 .. K-1. It drives the generated mixes
      and refine; a run that uses neither has seed NA and runs once.

    Runs go to ``client``, to a Dask scheduler at ``scheduler``, or to a LocalCluster of
    ``workers`` processes (default: one per CPU) started for the call. ``progress(done,
    total)`` is called after each run. Rows come in grid order whatever order runs finish in;
    bad values raise ``ValueError`` before anything is submitted.
    """
    require_extra()
    runs = expand(grid)
    with connect(client, scheduler, workers) as dask_client:
        rows = _execute(dask_client, runs, progress, backend, memory_boundness)
    return _table(rows)


# --------------------------------------------------------------------------------------------
# Many cells
# --------------------------------------------------------------------------------------------
CELL_TOPOLOGY = "topology"
CELL_WORKLOADS = "workloads"
CELL_TRACE = "trace.csv"


@dataclass(frozen=True)
class Cell:
    """One independent cluster and its workload: ``cluster`` as ``sweep``'s cluster axis takes
    (a path, a Topology or a Cluster), ``workload`` as its workload axis (manifests, a trace,
    Requests, Workloads, a Trace, or a generated mix)."""

    cluster: object
    workload: object


def _one_entry(directory: Path, stem: str, suffixes: tuple[str, ...]) -> Path | None:
    found = [p for p in sorted(directory.iterdir())
             if (p.is_dir() and p.name == stem) or (p.is_file() and p.name.startswith(stem + ".")
                                                     and p.suffix.lower() in suffixes)]
    if len(found) > 1:
        raise ValueError(f"{directory}: more than one {stem} ({', '.join(p.name for p in found)})")
    return found[0] if found else None


def read_cells(path) -> dict[str, Cell]:
    """Cells from a directory: every subdirectory is a cell named after it, holding its
    topology (``topology.yaml``, ``topology.csv`` or a ``topology/`` directory: anything
    ``numasched.io.topology.read_topology`` reads) and either manifests (``workloads.yaml`` or a
    ``workloads/`` directory) to place or a trace (``trace.csv``) to replay."""
    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"{root}: not a directory of cells")
    out = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        topology = _one_entry(d, CELL_TOPOLOGY, (".yaml", ".yml", ".json", ".csv"))
        manifests = _one_entry(d, CELL_WORKLOADS, (".yaml", ".yml", ".json"))
        trace = d / CELL_TRACE if (d / CELL_TRACE).is_file() else None
        if topology is None:
            raise ValueError(f"{d}: no topology (topology.yaml, topology.csv or topology/)")
        if (manifests is None) == (trace is None):
            raise ValueError(f"{d}: needs exactly one of workloads.yaml (or workloads/) and "
                             f"trace.csv")
        out[d.name] = Cell(str(topology), str(manifests or trace))
    if not out:
        raise ValueError(f"{root}: no cells (subdirectories with a topology and a workload)")
    return out


def cells(cells, *, policy="best-fit", numa: str = "restricted", order: str = "decreasing",
          node: str = "pack", refine: float = 0.0, seed: int = 0, client=None,
          scheduler: str | None = None, workers: int | None = None, backend: str = "auto",
          memory_boundness: float = DEFAULT_MEMORY_BOUNDNESS, progress=None):
    """Place or replay independent clusters in parallel: ``(per_cell, totals)``.

    ``cells`` maps a name to a ``Cell`` (or a ``(cluster, workload)`` pair), or is a directory
    (``read_cells``). ``per_cell`` is ``sweep``'s table with a ``cell`` column first, one row
    per cell in the order given; ``totals`` (``cell_totals``) adds them up, one row per kind
    (place, replay). A cell's manifests are read with its topology, as ``numasched place``
    reads them: DaemonSets run a pod on every host, and pods already bound to a host
    (``spec.nodeName``) are existing load there. The other arguments are as in ``sweep`` and
    ``place()``.
    """
    require_extra()
    if isinstance(cells, (str, os.PathLike)):
        cells = read_cells(cells)
    if not isinstance(cells, dict) or not cells:
        raise ValueError("cells must be a non-empty mapping of names to Cell, or a directory")
    runs, names = [], []
    for name, cell in cells.items():
        if isinstance(cell, tuple) and len(cell) == 2:
            cell = Cell(*cell)
        if not isinstance(cell, Cell):
            raise ValueError(f"cell {name!r}: expected a Cell or a (cluster, workload) pair, "
                             f"got {type(cell).__name__}")
        cluster, workload = _cell_inputs(cell, policy, numa, backend)
        grid = {"policy": [policy], "numa": [numa], "order": [order], "node": [node],
                "cluster": {str(name): cluster}, "refine": [refine], "seed": [seed],
                "workload": {str(cell.workload) if isinstance(cell.workload, (str, os.PathLike))
                             else str(name): workload}}
        (run,) = expand(grid)
        runs.append(run)
        names.append(str(name))
    with connect(client, scheduler, workers) as dask_client:
        rows = _execute(dask_client, runs, progress, backend, memory_boundness)
    for name, row in zip(names, rows):
        row["cell"] = name
    per_cell = _table(rows, first={"cell": "string"})
    return per_cell, cell_totals(per_cell)


def _cell_inputs(cell: Cell, policy, numa: str, backend: str) -> tuple:
    """A cell's cluster and workload, read as ``numasched place`` reads them: manifests with
    the cell's topology (DaemonSets get a pod per host), and pods already bound to a host
    (``spec.nodeName``) held as existing load on it, never placed."""
    from ..io.topology import Topology, read_topology
    from ..io.workloads import existing_load, read_workloads, with_load

    cluster, workload = cell.cluster, cell.workload
    manifests = (isinstance(workload, (str, os.PathLike))
                 and not (isinstance(workload, str) and parse_generated(workload))
                 and not str(workload).lower().endswith(".csv"))
    if not manifests:
        return cluster, workload
    topology = cluster
    if isinstance(topology, (str, os.PathLike)):
        topology = read_topology(topology)
    elif isinstance(topology, Cluster):
        topology = topology_of(topology)
    elif not isinstance(topology, Topology):
        raise ValueError(f"cell cluster: expected a topology file or directory, a Topology or a "
                         f"Cluster, got {type(topology).__name__}")
    work = read_workloads(workload, topology)
    if work.bound:
        load = existing_load(topology, work.bound, policy=policy, numa=numa, backend=backend)
        topology = with_load(topology, load)
    return topology, work


_SUMMED = ("requests", "placed", "pending", *PENDING_COLUMNS.values(), "hosts", "hosts_used",
           "hosts_lower_bound", "placed_cpu", "placed_mem", "never_placed", "max_pending",
           "wall_ms")


def cell_totals(per_cell):
    """Totals over cells, one row per kind: counts summed (``max_pending`` too: the cells run
    side by side), hosts used over the summed bounds, and locality, relative throughput and
    utilisation averaged over cells weighted by placed memory (placements) or by requests
    placed (replays, whose per-request memory the replay does not report)."""
    import pandas as pd

    out = []
    for kind, group in per_cell.groupby("kind", sort=True):
        row = {"kind": kind, "cells": len(group)}
        for column in _SUMMED:
            values = group[column]
            row[column] = values.sum() if values.notna().any() else pd.NA
        bound = row["hosts_lower_bound"]
        row["hosts_over_bound"] = (row["hosts_used"] / bound
                                   if bound is not pd.NA and bound else float("nan"))
        weight = (group["placed_mem"] if kind == "place" else group["placed"]).astype("float64")
        for column in ("locality", "relative_throughput", "cpu_utilisation", "mem_utilisation"):
            values = group[column].astype("float64")
            ok = values.notna() & weight.notna() & (weight > 0)
            row[column] = (float((values[ok] * weight[ok]).sum() / weight[ok].sum())
                           if ok.any() else float("nan"))
        out.append(row)
    columns = ["kind", "cells", *_SUMMED[:-1], "hosts_over_bound", "locality",
               "relative_throughput", "cpu_utilisation", "mem_utilisation", "wall_ms"]
    return pd.DataFrame(out, columns=columns)


# --------------------------------------------------------------------------------------------
# Results: comparison, files, plot
# --------------------------------------------------------------------------------------------
def same_results(a, b) -> bool:
    """Whether two sweep tables hold the same runs with the same outcomes (``TIMING_COLUMNS``
    left out: wall time varies from run to run)."""
    drop = [c for c in TIMING_COLUMNS if c in a.columns]
    return a.drop(columns=drop).equals(b.drop(columns=[c for c in TIMING_COLUMNS if c in b.columns]))


FILE_FORMATS = ("csv", "json", "parquet")


def records(frame) -> list[dict]:
    """The rows as plain dicts (NA as None, numbers as Python numbers, floats exact), for JSON
    and YAML."""
    plain = frame.astype(object).where(frame.notna(), None)
    return [{k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
            for row in plain.to_dict("records")]


def save(frame, path, fmt: str | None = None) -> str:
    """Write a sweep table as CSV, JSON (records) or Parquet (``fmt``, else from the suffix)."""
    fmt = fmt or Path(path).suffix.lower().lstrip(".")
    if fmt not in FILE_FORMATS:
        raise ValueError(f"{path}: cannot tell the format from the suffix; use .csv, .json or "
                         f".parquet")
    try:
        if fmt == "csv":
            frame.to_csv(path, index=False)
        elif fmt == "json":
            with open(path, "w", encoding="utf-8") as f:
                json.dump(records(frame), f, indent=2, allow_nan=False)
                f.write("\n")
        else:
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise ValueError(f"Parquet needs pyarrow: {EXTRA_HINT}") from None
            frame.to_parquet(path, index=False)
    except OSError as exc:
        raise ValueError(f"{path}: cannot write ({exc.strerror or exc})") from None
    return str(path)


def plot(frame, metric: str = "locality", path="sweep.png", *, title: str | None = None) -> str:
    """Write ``metric`` per policy as a PNG: a line per policy over the host count when the
    table has several, else a bar per policy; marks are the mean over the other parameters,
    whiskers or bands their range. Returns ``path``."""
    from ..io.plots import _pyplot, _save

    numeric = [c for c, t in RESULT_COLUMNS.items() if c not in TIMING_COLUMNS] + list(TIMING_COLUMNS)
    if metric not in numeric:
        raise ValueError(f"metric {metric!r} is not a result column; known: {', '.join(numeric)}")
    data = frame[["policy", "hosts", metric]].dropna()
    if data.empty:
        raise ValueError(f"metric {metric!r} has no values in this sweep")
    data = data.astype({metric: "float64", "hosts": "int64"})
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    policies = list(dict.fromkeys(data["policy"]))
    if data["hosts"].nunique() > 1:
        for p in policies:
            g = data[data["policy"] == p].groupby("hosts")[metric].agg(["mean", "min", "max"])
            ax.plot(g.index, g["mean"], marker="o", label=p)
            ax.fill_between(g.index, g["min"], g["max"], alpha=0.2)
        ax.set_xlabel("hosts")
        ax.legend(fontsize=8)
    else:
        g = data.groupby("policy", sort=False)[metric].agg(["mean", "min", "max"]).loc[policies]
        ax.bar(range(len(g)), g["mean"], yerr=[g["mean"] - g["min"], g["max"] - g["mean"]],
               capsize=4, color="tab:blue", alpha=0.8)
        ax.set_xticks(range(len(g)))
        ax.set_xticklabels(g.index, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(f"{metric} (mean; range shaded)" if data["hosts"].nunique() > 1
                  else f"{metric} (mean; range as whiskers)")
    ax.set_title(title or f"{metric} per policy ({len(frame):,} runs)", fontsize=10)
    _save(fig, path)
    return str(path)


__all__ = ["sweep", "cells", "Cell", "read_cells", "cell_totals", "expand", "run_one",
           "same_results", "records", "save", "plot", "parse_shape", "connect",
           "require_extra", "AXES", "DEFAULTS", "PARAMETER_COLUMNS", "RESULT_COLUMNS",
           "TIMING_COLUMNS", "FILE_FORMATS"]
