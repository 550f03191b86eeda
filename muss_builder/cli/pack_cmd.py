"""``muss-builder pack OUT``: a finished build -> uniform, film-mixed training shards.

Exit codes: 0 packed (or already packed with these options), 1 the build cannot be packed
(incomplete or invalid: every reason is printed) or a source shard differs from its record,
2 bad options, 130 interrupted (Ctrl-C; finished shards are kept for a rerun). Progress goes
to stderr, the summary (or ``--json``) to stdout.
"""

from __future__ import annotations

import json

import typer

from muss_builder.pack.films import PackError
from muss_builder.pack.packer import PackOptions, PackResult, pack_build
from muss_builder.pack.plan import DEFAULT_WINDOW, parse_splits
from muss_builder.pack.source import BuildRefused
from muss_builder.pack.tarout import PackedShard
from muss_builder.shards.untrusted import parse_size, printable

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # as a shell reports a command stopped by SIGINT
_DEFAULT_BYTES = 1_000_000_000


def _echo(text: str, err: bool = False) -> None:
    for line in text.splitlines() or [""]:
        typer.echo(printable(line), err=err)


def pack_options(
    target_bytes: str | None,
    target_samples: int | None,
    seed: int,
    splits: str,
    test_films: str,
    window: int,
    verify: bool,
) -> PackOptions:
    try:
        size = parse_size(target_bytes) if target_bytes else None
        if size is None and target_samples is None:
            size = _DEFAULT_BYTES  # neither given: ~1 GB shards
        return PackOptions(
            target_bytes=size,
            target_samples=target_samples,
            seed=seed,
            splits=parse_splits(splits),
            test_films=tuple(f.strip() for f in test_films.split(",") if f.strip()),
            window=window,
            verify=verify,
        )
    except ValueError as exc:
        _echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from exc


def _summary(result: PackResult) -> str:
    lines = [f"packed into {result.dest}" + (" (already done)" if result.already_done else "")]
    for name, split in result.manifest["splits"].items():
        lines.append(
            f"  {name:<12} {split['n_films']:>6} films {split['n_samples']:>9} samples "
            f"{split['n_shards']:>6} shards {split['size_bytes'] / 1e9:>9.3f} GB"
            + (f"  {split['pattern']}" if split["pattern"] else "")
        )
    if result.resumed_shards and not result.already_done:
        lines.append(f"  resumed: {result.resumed_shards} shards kept from an interrupted run")
    return "\n".join(lines)


def pack(
    out: str = typer.Argument(..., metavar="OUT", help="a finished build (folder or s3://...)"),
    to: str | None = typer.Option(
        None, "--to", metavar="DIR", help="where to write (folder or s3://...); OUT/packed"
    ),
    target_bytes: str | None = typer.Option(
        None, "--target-bytes", metavar="SIZE", help="shard size, e.g. 1GB, 512MiB (default 1GB)"
    ),
    target_samples: int | None = typer.Option(
        None, "--target-samples", metavar="N", help="samples per shard (alone or with bytes)"
    ),
    seed: int = typer.Option(0, "--seed", metavar="S", help="seed of the splits and the order"),
    splits: str = typer.Option(
        "train=0.98,validation=0.01,test=0.01",
        "--splits",
        metavar="NAME=SHARE,...",
        help="split shares by film; a film never straddles splits",
    ),
    test_films: str = typer.Option(
        "", "--test-films", metavar="ID,...", help="films (ids or input file names) kept for test"
    ),
    window: int = typer.Option(
        DEFAULT_WINDOW, "--window", metavar="N", help="films mixed at a time (open streams)"
    ),
    verify: bool = typer.Option(
        True, "--verify/--no-verify", help="check each source shard's sha256 against its record"
    ),
    as_json: bool = typer.Option(False, "--json", help="print the manifest as JSON on stdout"),
) -> None:
    """Pack the build OUT into uniform, film-mixed shards per split and track family
    ({split}-{montage,both,subject}-NNNNN.tar: each sample once, by the tracks it serves), with
    manifest.json and index.parquet. Rerun the same command to resume an interrupted pack."""
    options = pack_options(target_bytes, target_samples, seed, splits, test_films, window, verify)

    def progress(shard: PackedShard) -> None:
        _echo(f"{shard.name}: {shard.n_samples} samples, {shard.size_bytes / 1e6:.1f} MB", True)

    try:
        result = pack_build(out, to, options, on_shard=None if as_json else progress)
    except BuildRefused as exc:
        _echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_REFUSED) from exc
    except PackError as exc:
        _echo(f"error: {exc} (shards finished so far are kept: fix the build, rerun)", err=True)
        raise typer.Exit(EXIT_REFUSED) from exc
    except (ValueError, FileNotFoundError) as exc:
        _echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from exc
    except KeyboardInterrupt as exc:
        _echo("interrupted: finished shards are kept; rerun the same command to resume", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from exc
    if to is None:  # OUT/packed: the build's card now names the packed shards
        refresh_card(out)
    if as_json:
        typer.echo(json.dumps(result.manifest, indent=2))
    else:
        _echo(_summary(result))


def refresh_card(out: str) -> None:
    """Rewrite OUT's dataset card (its configs point at OUT/packed once packed)."""
    from muss_builder.report.card import write_card

    try:
        write_card(out)
    except (OSError, ValueError) as exc:  # the pack is done: a card that fails is a warning
        _echo(f"warning: the dataset card was not rewritten: {exc}", err=True)


def register(app: typer.Typer) -> None:
    app.command("pack")(pack)
