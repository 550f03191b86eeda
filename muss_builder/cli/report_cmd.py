"""``muss-builder report DIR``: the dataset report (HTML page, PNG charts, contact sheets)."""

from __future__ import annotations

from pathlib import Path

import typer

from muss_builder.report import ReportInputError, write_report
from muss_builder.shards.reader import DEFAULT_LIMITS
from muss_builder.shards.untrusted import printable


def report(
    directory: Path = typer.Argument(..., metavar="DIR", help="a dataset output folder"),
    out: Path | None = typer.Option(
        None, "--out", file_okay=False, help="where report.html and its PNGs go [DIR/report]"
    ),
    samples: int = typer.Option(6, "--samples", min=0, help="random samples to draw"),
    seed: int = typer.Option(0, "--seed", help="seed of the random sample choice"),
    max_member_size: list[str] = typer.Option(
        [], "--max-member-size", help="EXT=SIZE: the largest shard member accepted (as validate)"
    ),
) -> None:
    """Write an HTML report of the dataset in DIR: counts, films, distributions, samples."""
    try:
        limits = DEFAULT_LIMITS.with_caps(max_member_size)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--max-member-size") from exc
    try:
        written = write_report(directory, out, samples=samples, seed=seed, limits=limits)
    except ReportInputError as exc:
        typer.echo(printable(f"error: {exc}"), err=True)  # names come from the dataset
        raise typer.Exit(2) from exc
    c = written.data.counts
    typer.echo(
        f"{c.films} films ({c.films_ok} ok, {c.films_failed} failed, {c.films_skipped} "
        f"skipped), {c.samples} samples, {len(written.charts)} charts, "
        f"{len(written.sheets)} sample sheets"
    )
    typer.echo(f"report: {written.page}")


def register(app: typer.Typer) -> None:
    app.command("report")(report)
