"""``muss-builder`` entry point: registers each command module's commands on one typer app.

Global options: ``-h/--help``, ``-V/--version``, ``-v/--verbose`` (repeat for debug) and
``-q/--quiet`` (Python logging on stderr; see ``cli.style``).
"""

from __future__ import annotations

import typer

from muss_builder import __version__
from muss_builder.cli import (
    bench_cmd,
    build_cmd,
    doctor_cmd,
    pack_cmd,
    report_cmd,
    shard_cmds,
    shots_cmd,
    subset_cmds,
    train_cmd,
)
from muss_builder.cli.style import plain_help, set_verbosity

plain_help()

app = typer.Typer(
    name="muss-builder",
    help="Turn films into a multi-shot WebDataset corpus (shots, samples, clips, shards).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"muss-builder {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False,
        "--version",
        "-V",
        callback=_version,
        is_eager=True,
        help="print the version and exit",
    ),
    verbose: int = typer.Option(
        0, "--verbose", "-v", count=True, help="more log lines on stderr (-vv: debug)"
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="only errors on stderr's log"),
) -> None:
    """muss-builder command line."""
    set_verbosity(verbose, quiet)


build_cmd.register(app)
shots_cmd.register(app)
shard_cmds.register(app)
bench_cmd.register(app)
report_cmd.register(app)
train_cmd.register(app)
pack_cmd.register(app)
doctor_cmd.register(app)
subset_cmds.register(app)


def run() -> None:
    """The console script and ``python -m muss_builder``."""
    app(prog_name="muss-builder")


if __name__ == "__main__":
    run()
