"""``numasched policies``: every registered policy (host scores and presets), one line each."""
from __future__ import annotations

import click

from .common import console, emit, output_option

OPEN = "call"   # a field the policy leaves to the call's argument (--numa, place(node=...), ...)


def policy_rows() -> list[dict]:
    """One dict per registered policy, in registration order: the host scores, then presets."""
    from .. import codes, policies

    rows = []
    for name in policies.names():
        p = policies.get(name)
        is_score = (name in codes.HOST_POLICIES and p.numa is None and p.node is None
                    and p.order is None)
        rows.append({"name": p.name, "kind": "score" if is_score else "preset",
                     "score": p.score, "numa": p.numa, "node": p.node, "order": p.order,
                     "cpu_weight": p.cpu_weight, "mem_weight": p.mem_weight,
                     "description": p.description})
    return rows


@click.command("policies")
@output_option()
def command(output) -> None:
    """List the placement policies: host scores and presets, one line each.

    Any NAME listed goes to --policy of demo, place, simulate and extender, and to
    numasched.place(..., policy=NAME). A field shown as "call" is left to the command's or the
    call's own option (--numa, node=, order=).
    """
    rows = policy_rows()
    if output != "table":
        emit(rows, output)
        return
    from ..io.report import _table

    t = _table("", "name", "kind", "score", "numa", "node", "order", "description",
               left=("name", "kind", "score", "numa", "node", "order", "description"))
    for r in rows:
        t.add_row(r["name"], r["kind"], r["score"], r["numa"] or OPEN, r["node"] or OPEN,
                  r["order"] or OPEN, r["description"])
    console().print(t)
