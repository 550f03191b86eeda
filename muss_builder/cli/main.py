"""``muss-builder`` entry point: registers each command module's commands on one typer app."""

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
    train_cmd,
)

app = typer.Typer(
    name="muss-builder",
    help="Turn films into a multi-shot WebDataset corpus (shots, samples, clips, shards).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"muss-builder {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="print the version and exit"
    ),
) -> None:
    """muss-builder command line."""


build_cmd.register(app)
shots_cmd.register(app)
shard_cmds.register(app)
bench_cmd.register(app)
report_cmd.register(app)
train_cmd.register(app)
pack_cmd.register(app)
doctor_cmd.register(app)

if __name__ == "__main__":
    app()
