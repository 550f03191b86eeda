"""``muss-builder inspect SHARDS...`` and ``muss-builder validate DIR_OR_SHARDS...``.

Both take a build's shard, a packed shard, or shard lists (folders, globs, brace patterns,
``manifest.json``, ``s3://`` urls: ``pack.shardlist.expand_shard_list``), and ``--json``.

Both read files anyone could have made: every line they print goes through ``printable``
(an ESC, BEL or newline in a name cannot reach the terminal), and every problem is printed
with the shard, the member and the reason, with a non-zero exit.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from muss_builder.media.tools import MediaError
from muss_builder.pack.shardlist import expand_shard_list, local_shard
from muss_builder.pack.validate import check_packed, check_shard_list, is_packed_folder
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


def _print_sample(shards: list[str], key: str, limits: ReaderLimits) -> None:
    for location in shards:
        with local_shard(location) as shard:
            for sample in iter_samples(shard, limits, load=("json",)):
                if sample.key == key:
                    # ensure_ascii (the default) escapes every control character in the values
                    typer.echo(json.dumps(load_sample_json(sample, limits), indent=2))
                    return
    where = shards[0] if len(shards) == 1 else f"{len(shards)} shards"
    raise _fail(f"{where}: no sample {key}", 1)


def _extract(shard: Path, dest: Path, limits: ReaderLimits) -> None:
    try:
        written = safe_extract(shard, dest, limits=limits)
    except (ExtractError, OSError) as exc:  # the destination: exists, read-only, disk full
        raise _fail(f"cannot extract into {dest}: {exc} (nothing was written)", 2) from exc
    for path in written:
        _echo(str(path))
    _echo(f"{len(written)} files written to {dest}")


def _one_shard(targets: list[str]) -> str | None:
    """The single local shard file the targets name, else None (a list to expand)."""
    if len(targets) == 1 and Path(targets[0]).is_file() and targets[0].endswith(".tar"):
        return targets[0]
    return None


def _shards(targets: list[str]) -> list[str]:
    try:
        return expand_shard_list(targets)
    except (FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc), 2) from exc


def _inspect_list(shards: list[str], limits: ReaderLimits, as_json: bool) -> None:
    """One line per shard and the totals (``--json``: every shard's summary)."""
    summaries = []
    for location in shards:
        with local_shard(location) as path:
            summary = summarize_shard(path, limits)
        summary["shard"] = location
        summaries.append(summary)
    totals = {
        "shards": len(summaries),
        "samples": sum(s["totals"]["samples"] for s in summaries),
        "shots": sum(s["totals"]["shots"] for s in summaries),
        "duration_seconds": round(sum(s["totals"]["duration_seconds"] for s in summaries), 3),
        "bytes": sum(s["totals"]["bytes"] for s in summaries),
    }
    if as_json:
        typer.echo(json.dumps({"shards": summaries, "totals": totals}, indent=2))
        return
    for s in summaries:
        t = s["totals"]
        _echo(
            f"{s['shard']}: {t['samples']} samples, {t['shots']} shots, "
            f"{t['duration_seconds']:.1f} s, {t['bytes'] / 1e6:.1f} MB"
        )
    _echo(
        f"{totals['shards']} shards: {totals['samples']} samples, {totals['shots']} shots, "
        f"{totals['duration_seconds']:.1f} s, {totals['bytes'] / 1e6:.1f} MB"
    )


def inspect(
    targets: list[str] = typer.Argument(
        ...,
        metavar="SHARDS...",
        help="a shard .tar (a build's or a packed one), or shard lists: folders, globs, "
        "brace patterns (train-both-{00000..00009}.tar), manifest.json, s3:// urls",
    ),
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
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
) -> None:
    """Summarize shards (one shard: every sample; a folder or list: a line per shard), or
    print one sample, extract a shard safely, or draw a shard's contact sheet."""
    limits = _limits(max_member_size)
    single = _one_shard(targets)
    shards = [single] if single else _shards(targets)
    try:
        if sample is not None:
            _print_sample(shards, sample, limits)
        if extract is not None or contact_sheet is not None:
            if len(shards) != 1:
                raise _fail(f"--extract and --contact-sheet take one shard, not {len(shards)}", 2)
            with local_shard(shards[0]) as shard:
                if extract is not None:
                    _extract(shard, extract, limits)
                if contact_sheet is not None:
                    _echo(str(write_contact_sheet(shard, contact_sheet, limits=limits)))
        if sample is None and extract is None and contact_sheet is None:
            if single is not None:
                summary = summarize_shard(Path(single), limits)
                if as_json:
                    typer.echo(json.dumps(summary, indent=2))
                else:
                    _echo(format_summary(summary))
            else:
                _inspect_list(shards, limits, as_json)
    except (ShardFormatError, MediaError) as exc:
        raise _fail(str(exc), 2) from exc
    except OSError as exc:  # an unreadable shard file (permissions, a folder, I/O error)
        raise _fail(f"{' '.join(targets)}: cannot read: {exc}", 2) from exc


def validate(
    targets: list[str] = typer.Argument(
        ...,
        metavar="DIR_OR_SHARDS...",
        help="a build folder, a packed folder (pack, select), or shard lists: folders, "
        "globs, brace patterns, manifest.json, s3:// urls",
    ),
    max_member_size: list[str] = typer.Option([], "--max-member-size", help=_LIMIT_HELP),
    as_json: bool = typer.Option(False, "--json", help="print the report as JSON on stdout"),
) -> None:
    """Check a build folder against the output contract (schemas, shard integrity, index vs
    shards, films.parquet vs the film records, leftovers of interrupted builds), a packed
    folder against its manifest and index, or every sample of a list of shards.

    Exit codes: 0 valid; 1 problems found (each printed); 2 unreadable or missing input."""
    limits = _limits(max_member_size)
    target = targets[0]
    kind = "shards"
    try:
        if len(targets) == 1 and is_packed_folder(target):
            kind, report = "packed", check_packed(target, limits)
        elif len(targets) == 1 and _is_build_folder(target):
            kind, report = "build", check_dataset(Path(target), limits)
        else:
            report = check_shard_list(targets, limits)
    except (FileNotFoundError, ValueError) as exc:
        raise _fail(str(exc), 2) from exc
    except OSError as exc:  # a folder of the dataset cannot be listed (permissions, I/O)
        raise _fail(f"{target}: cannot read: {exc}", 2) from exc
    n = len(report.problems)
    if as_json:
        doc = {
            "target": targets if len(targets) > 1 else target,
            "kind": kind,
            "ok": not report.problems,
            "n_shards": report.n_shards,
            "n_samples": report.n_samples,
            "problems": report.problems,
        }
        typer.echo(json.dumps(doc, indent=2))
    else:
        for problem in report.problems:
            _echo(problem)
        if report.problems:
            typer.echo(f"{n} problem{'s' if n != 1 else ''}")
        else:
            name = " ".join(targets)
            _echo(f"ok: {name} ({report.n_shards} shards, {report.n_samples} samples)")
    if report.problems:
        raise typer.Exit(1)


def _is_build_folder(target: str) -> bool:
    root = Path(target)
    return root.is_dir() and any((root / p).exists() for p in ("films", "films.parquet"))


def register(app: typer.Typer) -> None:
    app.command("inspect")(inspect)
    app.command("validate")(validate)
