"""``muss-builder select OUT --where ... --out SUBSET`` and ``muss-builder merge A B --out C``.

Exit codes (both): 0 written; 1 refused (an incomplete or invalid build, an empty selection,
colliding films or schemas: every reason is printed, nothing is written); 2 bad options (a
clause that does not parse or names no column, a destination that is not new or empty).
Progress goes to stderr, the summary (or ``--json``) to stdout.
"""

from __future__ import annotations

import json

import typer

from muss_builder.cli.pack_cmd import pack_options
from muss_builder.pack.films import PackError
from muss_builder.pack.plan import DEFAULT_WINDOW
from muss_builder.pack.source import BuildRefused
from muss_builder.pack.tarout import PackedShard
from muss_builder.shards.untrusted import printable
from muss_builder.subsets.merge import MergeRefused, merge_builds
from muss_builder.subsets.select import EmptySelection, select_build
from muss_builder.subsets.where import WhereError

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2

_WHERE_HELP = (
    "a condition on index.parquet's columns: col OP value (=, !=, <, <=, >, >=), "
    "col [NOT] IN (...), col IS [NOT] NULL, len(list_col), AND, OR, NOT, parentheses; "
    "e.g. \"n_shots >= 4 AND worst_aesthetic > 5 AND track = 'subject'\""
)


def _echo(text: str, err: bool = False) -> None:
    for line in text.splitlines() or [""]:
        typer.echo(printable(line), err=err)


def _fail(text: str, code: int) -> typer.Exit:
    _echo(f"error: {text}", err=True)
    return typer.Exit(code)


def select(
    out: str = typer.Argument(..., metavar="OUT", help="a finished build (folder or s3://...)"),
    where: str = typer.Option(..., "--where", "-w", metavar="CLAUSE", help=_WHERE_HELP),
    dest: str = typer.Option(
        ..., "--out", "-o", metavar="SUBSET", help="the new dataset (a new folder or s3://...)"
    ),
    target_bytes: str | None = typer.Option(
        None, "--target-bytes", metavar="SIZE", help="shard size, e.g. 1GB, 512MiB (default 1GB)"
    ),
    seed: int = typer.Option(0, "--seed", metavar="S", help="seed of the splits and the order"),
    splits: str = typer.Option(
        "train=0.98,validation=0.01,test=0.01",
        "--splits",
        metavar="NAME=SHARE,...",
        help="split shares by film (as pack: the same seed puts a film in the same split)",
    ),
    test_films: str = typer.Option(
        "", "--test-films", metavar="ID,...", help="films (ids or input file names) kept for test"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the subset's manifest as JSON"),
) -> None:
    """Write the samples of OUT whose index rows match --where as a new dataset: packed
    shards per split, index.parquet, films.parquet, the film records and manifest.json.
    Members are copied byte for byte (nothing is re-encoded)."""
    options = pack_options(target_bytes, None, seed, splits, test_films, DEFAULT_WINDOW, True)

    def progress(shard: PackedShard) -> None:
        _echo(f"{shard.name}: {shard.n_samples} samples, {shard.size_bytes / 1e6:.1f} MB", True)

    try:
        result = select_build(out, where, dest, options, on_shard=progress)
    except (BuildRefused, EmptySelection) as exc:
        raise _fail(str(exc), EXIT_REFUSED) from exc
    except PackError as exc:
        raise _fail(f"{exc} (nothing was written)", EXIT_REFUSED) from exc
    except (WhereError, ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc), EXIT_USAGE) from exc
    if as_json:
        typer.echo(json.dumps(result.manifest, indent=2))
        return
    lines = [f"selected {result.n_samples} samples ({result.n_rows} index rows) into {result.dest}"]
    for name, split in result.manifest["splits"].items():
        if split["n_shards"]:
            lines.append(
                f"  {name:<12} {split['n_films']:>6} films {split['n_samples']:>9} samples "
                f"{split['n_shards']:>6} shards  {split['pattern']}"
            )
    _echo("\n".join(lines))


def merge(
    builds: list[str] = typer.Argument(..., metavar="BUILD...", help="two or more builds"),
    dest: str = typer.Option(..., "--out", "-o", metavar="DIR", help="the merged build (new)"),
    as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
) -> None:
    """Merge finished local builds into one build folder without re-encoding: shards and film
    records are hard-linked (copied across disks), index.parquet and films.parquet joined.
    Refuses films in two builds (colliding keys) and different schema versions."""
    try:
        result = merge_builds(builds, dest)
    except (BuildRefused, MergeRefused) as exc:
        raise _fail(str(exc), EXIT_REFUSED) from exc
    except ValueError as exc:
        raise _fail(str(exc), EXIT_USAGE) from exc
    summary = {
        "out": str(result.dest),
        "builds": list(builds),
        "n_films": result.n_films,
        "n_samples": result.n_samples,
        "n_index_rows": result.n_index_rows,
        "files_linked": result.linked,
        "files_copied": result.copied,
        "cross_build_duplicates": result.cross.as_dict(),
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    _echo(
        f"merged {len(builds)} builds into {result.dest}: {result.n_films} films, "
        f"{result.n_samples} samples ({result.linked} files linked, {result.copied} copied)"
    )
    cross = result.cross
    if cross.shots:
        _echo(
            f"warning: {cross.shots} shot(s) of {len(cross.films)} film(s) repeat footage of "
            "films in an earlier build (not removed; listed in stats.json "
            "cross_build_duplicates)",
            err=True,
        )
    if cross.not_compared:
        _echo(
            f"note: {len(cross.not_compared)} film(s) not checked for footage repeated across "
            "builds (no fingerprints, or fingerprints of other settings)",
            err=True,
        )


def register(app: typer.Typer) -> None:
    app.command("select")(select)
    app.command("merge")(merge)
