"""The ``numasched`` command line (also ``python -m numasched``).

A click group: each subcommand is a thin wrapper that parses options, calls a library function
returning data, and renders it (rich) or prints it as JSON or YAML. User errors -- bad options,
missing or malformed files, invalid quantities, anything the library refuses with
``ValueError`` -- are one ``Error: ...`` line on stderr and exit status 2, never a traceback
(``common.Group``).
"""
from __future__ import annotations

import click

from .. import __version__
from .common import Group


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="numasched")
def cli() -> None:
    """numasched: NUMA-aware placement of VMs and containers onto hosts with NUMA nodes."""


# One module per command (or per small family of commands), defining ``command`` (or a list
# ``commands``); a new command is one module and one entry here.
from . import (  # noqa: E402
    controller, demo, extender, objects, pacific, place, plan, policies, simulate, sweep, topology,
)

for _module in (demo, pacific, topology, place, simulate, sweep, extender, plan, policies, objects,
                controller):
    for _command in getattr(_module, "commands", None) or [_module.command]:
        cli.add_command(_command)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point (``numasched = "numasched.cli:main"``)."""
    cli.main(args=argv, prog_name="numasched")


if __name__ == "__main__":
    main()
