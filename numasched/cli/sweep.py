"""``numasched sweep`` (a what-if grid) and ``numasched cells`` (independent clusters), on Dask."""
from __future__ import annotations

import click

from .. import _backend
from .common import OUTPUTS, UserError, emit, progress, user_errors

SWEEP_OUTPUTS = OUTPUTS + ("csv", "parquet")


def _list(text: str | None, option: str, convert=str) -> list | None:
    """A comma-separated option as a list (None when the option is absent)."""
    if text is None:
        return None
    items = [x.strip() for x in text.split(",")]
    if not all(items):
        raise UserError(f"{option}: empty item in {text!r}")
    try:
        return [convert(x) for x in items]
    except ValueError:
        raise UserError(f"{option}: expected a comma-separated list of numbers, got {text!r}") from None


def _library():
    """The sweep module, or a one-line error when the distributed extra is missing."""
    from ..evaluation import sweep as lib
    try:
        lib.require_extra()
    except ImportError as exc:
        raise UserError(str(exc)) from None
    return lib


def _emit_frame(lib, frame, output: str, output_file: str | None, render) -> None:
    """Print or write a result table as ``-o`` and ``--output`` ask."""
    if output_file:
        fmt = output if output in lib.FILE_FORMATS else None
        with user_errors():
            lib.save(frame, output_file, fmt)
        if output == "table":
            render()
        click.echo(f"{len(frame):,} rows written to {output_file}", err=output != "table")
        return
    if output == "parquet":
        raise UserError("-o parquet writes a binary file: give --output-file FILE")
    if output == "table":
        render()
    elif output == "csv":
        click.echo(frame.to_csv(index=False), nl=False)
    else:
        emit(lib.records(frame), output)


def _pct(x) -> str:
    import pandas as pd
    return "-" if pd.isna(x) else f"{100 * x:.1f}%"


def _int(x) -> str:
    import pandas as pd
    return "-" if pd.isna(x) else f"{int(x):,}"


def _render(frame, title: str, always=("policy",), first=(), skip=()) -> None:
    """The runs as a rich table: the parameters that vary, then the main outcomes (pending at
    the end, never placed for replays, hosts used and their lower bound, local accesses,
    estimated relative throughput, wall time)."""
    import pandas as pd

    from ..io.report import _table

    uniform = frame["shape"].notna().all()   # then the cluster is named by shape and hosts
    shown = [c for c in first if c in frame.columns] + [
        c for c in ("workload", "cluster", "shape", "hosts", "policy", "numa", "order", "node",
                    "refine", "seed")
        if (c in always or frame[c].nunique(dropna=False) > 1)
        and not (c == "cluster" and uniform) and c not in skip]
    replays = bool((frame["kind"] == "replay").any())
    outcomes = ("placed", "pending", *(("never",) if replays else ()), "used", "bound", "local",
                "thrpt", "ms")
    rows = []
    for _, r in frame.iterrows():
        params = ["-" if pd.isna(r[c]) else str(r[c]) for c in shown]
        never = (_int(r["never_placed"]),) if replays else ()
        rows.append((*params, _int(r["placed"]), _int(r["pending"]), *never,
                     _int(r["hosts_used"]), _int(r["hosts_lower_bound"]), _pct(r["locality"]),
                     "-" if pd.isna(r["relative_throughput"])
                     else f"{r['relative_throughput']:.3f}", f"{r['wall_ms']:.1f}"))
    t = _table(title, *shown, *outcomes, left=tuple(shown))
    for row in rows:
        t.add_row(*row)
    _print(t)


def _print(table) -> None:
    """Print a table at its natural width even on a narrower terminal (the terminal wraps the
    lines): rich would otherwise cut figures short ("1.…")."""
    from rich.console import Console

    console = Console()
    natural = console.measure(table, options=console.options.update_width(1 << 12)).maximum
    if natural > console.width:
        console = Console(width=natural)
    console.print(table)


def _dask_options(f):
    f = click.option("--scheduler", default=None, metavar="ADDRESS",
                     help="A running Dask scheduler (tcp://host:8786) [default: a local cluster].")(f)
    f = click.option("--workers", type=click.IntRange(min=0), default=None,
                     help="Worker processes of the local cluster; 0 runs in this process "
                          "[default: one per CPU].")(f)
    return f


def _output_options(f):
    f = click.option("--quiet", "-q", is_flag=True, help="No progress bar.")(f)
    f = click.option("--output-file", "output_file", default=None, metavar="FILE",
                     help="Write the table to FILE (.csv, .json or .parquet, or as -o says).")(f)
    f = click.option("--output", "-o", "output", type=click.Choice(SWEEP_OUTPUTS),
                     default="table", show_default=True,
                     help="table, csv, json, yaml, or parquet (with --output-file).")(f)
    return f


@click.command("sweep")
@click.option("--policies", default=None, metavar="A,B,...",
              help="Policies: host scores and presets (numasched.policies.names()) [best-fit].")
@click.option("--numa", default=None, metavar="A,B,...",
              help="NUMA modes of requests that set none [restricted].")
@click.option("--order", default=None, metavar="A,B,...", help="Request orders [decreasing].")
@click.option("--node", default=None, metavar="A,B,...", help="Node choices [pack].")
@click.option("--shapes", default=None, metavar="S,...",
              help="Host shapes, NODESxCORESc/MEMORY per node [2x32c/256Gi].")
@click.option("--hosts", default=None, metavar="N,M,...", help="Host counts [300].")
@click.option("--topology", "topologies", multiple=True, metavar="PATH",
              help="A topology file or directory as a cluster (repeatable; replaces --shapes "
                   "and --hosts).")
@click.option("--workload", "workload_specs", multiple=True, metavar="SPEC",
              help="demo, vms:N, containers:N, mixed:VMS:CONTAINERS, a manifest file or "
                   "directory, or a trace CSV (repeatable) [demo].")
@click.option("--seeds", type=click.IntRange(min=1), default=None,
              help="Seeds 0..K-1 of the generated workloads (and of refine) [1].")
@click.option("--refine", default=None, metavar="S,...",
              help="Seconds of local search after the greedy pass [0].")
@click.option("--backend", type=click.Choice(list(_backend.BACKENDS)), default="auto",
              show_default=True, help="Placement backend.")
@click.option("--plot", "plot_path", default=None, metavar="FILE",
              help="Also write --metric per policy (PNG; needs matplotlib).")
@click.option("--metric", default="locality", show_default=True,
              help="The result column --plot shows.")
@_dask_options
@_output_options
def sweep_command(policies, numa, order, node, shapes, hosts, topologies, workload_specs, seeds,
                  refine, backend, plot_path, metric, workers, scheduler, output, output_file,
                  quiet) -> None:
    """Place (or replay) every combination of policies, NUMA modes, clusters, workloads and
    seeds on Dask; one row per run."""
    lib = _library()
    grid = {}
    for axis, value in (("policy", _list(policies, "--policies")), ("numa", _list(numa, "--numa")),
                        ("order", _list(order, "--order")), ("node", _list(node, "--node")),
                        ("shape", _list(shapes, "--shapes")),
                        ("hosts", _list(hosts, "--hosts", int)),
                        ("refine", _list(refine, "--refine", float))):
        if value is not None:
            grid[axis] = value
    if topologies:
        if shapes or hosts:
            raise UserError("--topology replaces --shapes and --hosts: give one or the other")
        grid["cluster"] = list(topologies)
    if workload_specs:
        grid["workload"] = list(workload_specs)
    if seeds is not None:
        grid["seed"] = seeds
    with user_errors():
        if scheduler is not None and workers is not None:
            raise ValueError("--workers starts a local cluster; --scheduler uses a running one: "
                             "give one or the other")
        with progress("sweep", quiet) as advance:
            frame = lib.sweep(grid, scheduler=scheduler, workers=workers, backend=backend,
                              progress=advance)
        if plot_path:
            lib.plot(frame, metric, plot_path)
    _emit_frame(lib, frame, output, output_file,
                lambda: _render(frame, f"Sweep: {len(frame):,} runs"))
    if plot_path:
        click.echo(f"plot written to {plot_path}", err=output != "table")


@click.command("cells")
@click.argument("directory", type=click.Path())
@click.option("--policy", default="best-fit", show_default=True, metavar="NAME",
              help="Placement policy: a host score or a preset.")
@click.option("--numa", default="restricted", show_default=True,
              help="NUMA mode of requests that set none.")
@click.option("--backend", type=click.Choice(list(_backend.BACKENDS)), default="auto",
              show_default=True, help="Placement backend.")
@_dask_options
@_output_options
def cells_command(directory, policy, numa, backend, workers, scheduler, output, output_file,
                  quiet) -> None:
    """Place or replay independent clusters in parallel: DIRECTORY holds one subdirectory per
    cell with a topology and workload manifests or a trace."""
    lib = _library()
    with user_errors():
        if scheduler is not None and workers is not None:
            raise ValueError("--workers starts a local cluster; --scheduler uses a running one: "
                             "give one or the other")
        found = lib.read_cells(directory)
        with progress("cells", quiet) as advance:
            per_cell, totals = lib.cells(found, policy=policy, numa=numa, backend=backend,
                                         scheduler=scheduler, workers=workers, progress=advance)

    def render():
        from ..io.report import _table

        _render(per_cell, f"Cells: {len(per_cell):,}", always=("hosts",), first=("cell", "kind"),
                skip=("workload", "cluster", "order"))
        t = _table("Total", "kind", "cells", "requests", "placed", "pending", "hosts used",
                   "bound", "locality", left=("kind",))
        for _, r in totals.iterrows():
            t.add_row(r["kind"], _int(r["cells"]), _int(r["requests"]), _int(r["placed"]),
                      _int(r["pending"]), _int(r["hosts_used"]), _int(r["hosts_lower_bound"]),
                      _pct(r["locality"]))
        _print(t)

    if output in ("json", "yaml") and not output_file:
        emit({"cells": lib.records(per_cell), "totals": lib.records(totals)}, output)
    else:
        _emit_frame(lib, per_cell, output, output_file, render)


commands = [sweep_command, cells_command]
