"""``muss-builder inspect SHARD`` and ``muss-builder validate DIR``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from muss_builder.media.tools import MediaError
from muss_builder.shards.inspect import format_summary, summarize_shard, write_contact_sheet
from muss_builder.shards.reader import (
    ShardFormatError,
    iter_samples,
    load_sample_json,
    safe_extract,
)
from muss_builder.shards.validate import check_dataset


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _print_sample(shard: Path, key: str) -> None:
    for sample in iter_samples(shard):
        if sample.key == key:
            typer.echo(json.dumps(load_sample_json(sample), indent=2))
            return
    raise _fail(f"{shard}: no sample {key}", 1)


def _extract(shard: Path, dest: Path) -> None:
    written = safe_extract(shard, dest)
    for path in written:
        typer.echo(str(path))
    typer.echo(f"{len(written)} files written to {dest}")


def inspect(
    shard: Path = typer.Argument(..., exists=True, dir_okay=False, help="a shard .tar"),
    sample: str | None = typer.Option(None, "--sample", help="print this sample's metadata"),
    extract: Path | None = typer.Option(
        None, "--extract", file_okay=False, help="write the shard's members as files into DIR"
    ),
    contact_sheet: Path | None = typer.Option(
        None, "--contact-sheet", dir_okay=False, help="write a PNG of every shot's middle frame"
    ),
) -> None:
    """Summarize SHARD, or print one sample, extract it safely, or draw a contact sheet."""
    try:
        if sample is not None:
            _print_sample(shard, sample)
        if extract is not None:
            _extract(shard, extract)
        if contact_sheet is not None:
            typer.echo(str(write_contact_sheet(shard, contact_sheet)))
        if sample is None and extract is None and contact_sheet is None:
            typer.echo(format_summary(summarize_shard(shard)), nl=False)
    except (ShardFormatError, MediaError) as exc:
        raise _fail(str(exc), 2) from exc


def validate(
    directory: Path = typer.Argument(..., metavar="DIR", help="a dataset output folder"),
) -> None:
    """Check DIR against the output contract: schemas, shard integrity, index vs shards."""
    report = check_dataset(directory)
    for problem in report.problems:
        typer.echo(problem)
    if report.problems:
        n = len(report.problems)
        typer.echo(f"{n} problem{'s' if n != 1 else ''}")
        raise typer.Exit(1)
    typer.echo(f"ok: {directory} ({report.n_shards} shards, {report.n_samples} samples)")


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect)
    app.command("validate")(validate)
