"""What every command shares: one-line user errors (exit 2) and the JSON / YAML output."""
from __future__ import annotations

import contextlib
import json

import click

OUTPUTS = ("table", "json", "yaml")


class UserError(click.ClickException):
    """A refused input: printed as one ``Error: ...`` line, exit status 2 (as click's usage
    errors), so scripts can tell user errors from crashes (1)."""

    exit_code = 2


@contextlib.contextmanager
def user_errors():
    """Turn the library's ``ValueError`` and file-system ``OSError`` into ``UserError``."""
    try:
        yield
    except (ValueError, OSError) as exc:
        if isinstance(exc, ValueError):
            message = str(exc)
        elif getattr(exc, "filename", None):
            message = f"{exc.filename}: {exc.strerror or exc}"
        else:
            message = exc.strerror or str(exc)
        raise UserError(" ".join(message.split())) from None


def emit(data, output: str) -> None:
    """Print ``data`` as JSON or YAML (``output`` is json or yaml)."""
    if output == "json":
        click.echo(json.dumps(data, indent=2, allow_nan=False))
    else:
        import yaml
        click.echo(yaml.safe_dump(data, sort_keys=False, default_flow_style=False), nl=False)


@contextlib.contextmanager
def progress(description: str, quiet: bool):
    """A rich progress bar on stderr, shown only on a terminal and without --quiet, so JSON on
    stdout stays clean; yields ``advance(done, total)``."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if quiet or not console.is_terminal:
        yield None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)
