"""``muss-builder inspect SHARD`` and ``muss-builder validate DIR``.

Both read files anyone could have made: every line they print goes through ``printable``
(an ESC, BEL or newline in a name cannot reach the terminal), and every problem is printed
with the shard, the member and the reason, with a non-zero exit.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from muss_builder.media.tools import MediaError
from muss_builder.shards.extract import ExtractError, safe_extract
from muss_builder.shards.inspect import format_summary, summarize_shard, write_contact_sheet
from muss_builder.shards.reader import (
    DEFAULT_LIMITS,
    ReaderLimits,
    ShardFormatError,
    iter_samples,
    load_sample_json,
)
from muss_builder.shards.untrusted import printable
from muss_builder.shards.validate import check_dataset

_LIMIT_HELP = (
    "EXT=SIZE: the largest member of that extension a reader accepts (repeatable; "
    "defaults mp4=2GiB, json=16MiB, jpg=64MiB, *=2GiB for any other)"
)


def _echo(text: str, err: bool = False) -> None:
    for line in text.splitlines() or [""]:
        typer.echo(printable(line), err=err)


def _fail(message: str, code: int) -> typer.Exit:
    _echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _limits(specs: list[str]) -> ReaderLimits:
    try:
        return DEFAULT_LIMITS.with_caps(specs)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--max-member-size") from exc


def _print_sample(shard: Path, key: str, limits: ReaderLimits) -> None:
    for sample in iter_samples(shard, limits, load=("json",)):
        if sample.key == key:
            # ensure_ascii (the default) escapes every control character in the values
            typer.echo(json.dumps(load_sample_json(sample, limits), indent=2))
            return
    raise _fail(f"{shard}: no sample {key}", 1)


def _extract(shard: Path, dest: Path, limits: ReaderLimits) -> None:
    try:
        written = safe_extract(shard, dest, limits=limits)
    except (ExtractError, OSError) as exc:  # the destination: exists, read-only, disk full
        raise _fail(f"cannot extract into {dest}: {exc} (nothing was written)", 2) from exc
    for path in written:
        _echo(str(path))
    _echo(f"{len(written)} files written to {dest}")


def inspect(
    shard: Path = typer.Argument(..., exists=True, dir_okay=False, help="a shard .tar"),
    sample: str | None = typer.Option(None, "--sample", help="print this sample's metadata"),
    extract: Path | None = typer.Option(
        None,
        "--extract",
        file_okay=False,
        help="write the shard's members as files into DIR (new or empty; all or nothing)",
    ),
    contact_sheet: Path | None = typer.Option(
        None, "--contact-sheet", dir_okay=False, help="write a PNG of every shot's middle frame"
    ),
    max_member_size: list[str] = typer.Option([], "--max-member-size", help=_LIMIT_HELP),
) -> None:
    """Summarize SHARD, or print one sample, extract it safely, or draw a contact sheet."""
    limits = _limits(max_member_size)
    try:
        if sample is not None:
            _print_sample(shard, sample, limits)
        if extract is not None:
            _extract(shard, extract, limits)
        if contact_sheet is not None:
            _echo(str(write_contact_sheet(shard, contact_sheet, limits=limits)))
        if sample is None and extract is None and contact_sheet is None:
            _echo(format_summary(summarize_shard(shard, limits)))
    except (ShardFormatError, MediaError) as exc:
        raise _fail(str(exc), 2) from exc
    except OSError as exc:  # an unreadable shard file (permissions, a folder, I/O error)
        raise _fail(f"{shard}: cannot read: {exc}", 2) from exc


def validate(
    directory: Path = typer.Argument(..., metavar="DIR", help="a dataset output folder"),
    max_member_size: list[str] = typer.Option([], "--max-member-size", help=_LIMIT_HELP),
) -> None:
    """Check DIR against the output contract: schemas, shard integrity, index vs shards,
    films.parquet vs the film records, and leftovers of interrupted builds."""
    try:
        report = check_dataset(directory, _limits(max_member_size))
    except OSError as exc:  # a folder of the dataset cannot be listed (permissions, I/O)
        raise _fail(f"{directory}: cannot read: {exc}", 2) from exc
    for problem in report.problems:
        _echo(problem)
    if report.problems:
        n = len(report.problems)
        typer.echo(f"{n} problem{'s' if n != 1 else ''}")
        raise typer.Exit(1)
    _echo(f"ok: {directory} ({report.n_shards} shards, {report.n_samples} samples)")


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect)
    app.command("validate")(validate)
