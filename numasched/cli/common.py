"""What every command shares: one-line user errors (exit 2), the ``-o table|json|yaml`` option and
its JSON / YAML output, policy names with "did you mean", a console that does not wrap when
piped, and the progress bar."""
from __future__ import annotations

import contextlib
import difflib
import json
import sys

import click

OUTPUTS = ("table", "json", "yaml")

#: Width of the console when stdout is not a terminal: wide enough that no table row wraps, so a
#: pipe (grep, awk, a file) gets one line per row.
PIPE_WIDTH = 10_000


class UserError(click.ClickException):
    """A refused input: printed as one ``Error: ...`` line, exit status 2 (as click's usage
    errors), so scripts can tell user errors from crashes (1)."""

    exit_code = 2


class Group(click.Group):
    """A click group whose errors are all one ``Error: ...`` line on stderr.

    Click prints a usage error (an unknown option, a bad choice, a missing option) as the
    command's usage, a hint and the error on three lines; here every error -- click's own and
    ``UserError`` alike -- is the error line only, exit status 2 (``--help`` shows the usage).
    """

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True,
             **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            # returns the exit status of ctx.exit(n) (--help, --version, a command's own
            # status) or the command's return value (None)
            status = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as exc:
            click.echo(f"Error: {' '.join(exc.format_message().split())}", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(status if isinstance(status, int) else 0)


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


def output_option(help: str = "table, json or yaml.", json_alias: bool = False):
    """The ``-o/--output table|json|yaml`` option every command takes (parameter ``output``).

    ``json_alias`` adds a hidden ``--json`` flag that means ``-o json`` (older spelling of the
    demo and pacific commands)."""
    def decorate(f):
        f = click.option("--output", "-o", type=click.Choice(OUTPUTS), default="table",
                         show_default=True, help=help)(f)
        if json_alias:
            f = click.option("--json", "as_json", is_flag=True, hidden=True,
                             help="The same as -o json.")(f)
        return f
    return decorate


def emit(data, output: str) -> None:
    """Print ``data`` as JSON or YAML (``output`` is json or yaml)."""
    if output == "json":
        click.echo(json.dumps(data, indent=2, allow_nan=False))
    else:
        import yaml
        click.echo(yaml.safe_dump(data, sort_keys=False, default_flow_style=False), nl=False)


def show(report: dict, output: str, render) -> None:
    """Print a command's report: ``render(report, console)`` for a table (and where a plot
    went, if the report has one), else the report as JSON or YAML."""
    if output != "table":
        emit(report, output)
        return
    render(report, console())
    if report.get("plot"):
        click.echo(f"plot written to {report['plot']}")


def console():
    """A rich console on stdout: the terminal's width on a terminal; when piped, wide enough
    that tables never wrap (one line per row for grep and friends)."""
    from rich.console import Console

    out = Console()
    if out.is_terminal:
        return out
    return Console(width=PIPE_WIDTH)


def did_you_mean(value: str, known) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``known``, or an empty string."""
    close = difflib.get_close_matches(value, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class PolicyName(click.ParamType):
    """A name of ``numasched.policies.names()`` (a host score or a preset), checked when the
    option is parsed: an unknown name is a one-line error with the closest name and the list."""

    name = "policy"

    def get_metavar(self, param, ctx=None) -> str:
        return "NAME"

    def convert(self, value, param, ctx):
        from .. import policies

        known = policies.names()
        if value in known:
            return value
        self.fail(f"unknown policy {value!r}{did_you_mean(str(value), known)}; known: "
                  f"{', '.join(known)} (numasched policies lists them)", param, ctx)


POLICY = PolicyName()


@contextlib.contextmanager
def progress(description: str, quiet: bool):
    """A rich progress bar on stderr, shown only on a terminal and without --quiet, so JSON on
    stdout stays clean; yields ``advance(done, total)``."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    err = Console(stderr=True)
    if quiet or not err.is_terminal:
        yield None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True) as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)
