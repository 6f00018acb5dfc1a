"""``numasched controller``: the reconcile loop as a long-running service over a store."""
from __future__ import annotations

import signal
import threading

import click

from .. import _backend, codes
from .common import OUTPUTS, emit, user_errors
from .objects import open_controller, store_option


@click.command("controller")
@store_option
@click.option("--interval", default=1.0, show_default=True, metavar="SECONDS",
              help="Seconds between reconcile rounds.")
@click.option("--lease", default=10.0, show_default=True, metavar="SECONDS",
              help="Leader lease: with several controllers on one store, one reconciles; "
                   "another takes over this long after it stops renewing.")
@click.option("--rounds", default=0, show_default=True,
              help="Stop after this many rounds as leader (0: run until SIGTERM / SIGINT).")
@click.option("--policy", default="best-fit", show_default=True, metavar="NAME",
              help="Placement policy (numasched.policies.names()).")
@click.option("--numa", type=click.Choice(list(codes.NUMA_MODES)), default="restricted",
              show_default=True, help="NUMA mode of workloads whose namespace sets none.")
@click.option("--backend", type=click.Choice(list(_backend.BACKENDS)), default="auto",
              show_default=True, help="Placement backend.")
@click.option("--output", "-o", type=click.Choice(OUTPUTS), default="table", show_default=True,
              help="table: a line per round that changed something; json / yaml: one document "
                   "of those rounds when the service stops.")
def command(store, interval, lease, rounds, policy, numa, backend, output) -> None:
    """Reconcile the store until stopped (SIGTERM or SIGINT: the round in progress is finished
    or rolled back, the lease released, and the process exits 0)."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    done = []   # the rounds that changed something

    def report(result, leader: bool) -> None:
        if not leader:
            return
        if result.changed:
            line = {"round": result.round, "placed": result.count("placed"),
                    "pending": result.count("pending"), "evicted": result.count("evicted"),
                    "released": result.count("released")}
            done.append(line)
            if output == "table":
                click.echo(", ".join(f"{k} {v}" for k, v in line.items()))
        report.rounds += 1
        if rounds and report.rounds >= rounds:
            stop.set()

    report.rounds = 0
    with user_errors(), open_controller(store, policy=policy, numa=numa, backend=backend) as c:
        c.serve(interval=interval, lease=lease, stop=stop, on_round=report)
        if output != "table":   # one document when the service stops: the rounds that changed
            emit({"store": c.store_url, "rounds": done}, output)
