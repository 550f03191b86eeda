"""``muss-builder bench ...``: the shot-boundary benchmark and the generation benchmark.

- ``bench sbd DIR``: score shot-boundary detectors against exact ground truth;
- ``bench make-suite DATASET --out S``: draw a suite of scripts from held-out films of a build;
- ``bench perturb --suite S --out DIR``: the broken baselines (sticker, shuffled, moved cuts);
- ``bench run --suite S (--videos DIR | --ckpt CKPT) --out R``: score videos against the suite.

For ``sbd``, rows come from detectors run here (``--detector``, all fed by one decode per
film) or from prediction files written by anything else (``--predictions DIR`` holding
``{film}.json``).
Scores follow TRECVID conventions; docs/sbd-benchmark.md defines every column.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from muss_builder.bench.sbd.report import format_markdown
from muss_builder.bench.sbd.scoring import TOLERANCES, score_ground_truth
from muss_builder.bench.sbd.tally import FilmScore, SetScore, aggregate
from muss_builder.bench.sbd.truth import (
    GroundTruth,
    GroundTruthError,
    load_ground_truth_dir,
    load_predictions,
    predictions_document,
)
from muss_builder.media.tools import MediaError

if TYPE_CHECKING:
    from muss_builder.bench.metrics import BenchModelsConfig


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _score_prediction_dir(gts: Sequence[GroundTruth], pred_dir: Path) -> list[FilmScore]:
    """Score ``pred_dir/{film}.json`` against each film's ground truth."""
    scores = []
    for gt in gts:
        path = pred_dir / f"{gt.name}.json"
        if not path.is_file():
            raise GroundTruthError(f"{path}: no predictions for {gt.film}")
        scores.append(score_ground_truth(gt, load_predictions(path), TOLERANCES))
    return scores


def _run_detectors(
    gts: Sequence[GroundTruth], names: Sequence[str], save: Path | None
) -> tuple[dict[str, list[FilmScore]], dict[str, float]]:
    """Run the detectors on every film (one shared decode per film) and score them."""
    # imported here: the detectors load models and heavy libraries that scoring never needs
    from muss_builder.shots.segment import run_detectors

    scores: dict[str, list[FilmScore]] = {n: [] for n in names}
    seconds = dict.fromkeys(names, 0.0)
    for gt in gts:
        if not gt.film_path.is_file():
            raise GroundTruthError(f"{gt.path}: film {gt.film_path} not found")
        typer.echo(f"{gt.film}: {', '.join(names)}", err=True)
        runs = run_detectors(gt.film_path, list(names))
        for name in names:
            run = runs[name]
            scores[name].append(score_ground_truth(gt, run.transitions, TOLERANCES))
            seconds[name] += run.seconds
            if save is not None:
                folder = save / name
                folder.mkdir(parents=True, exist_ok=True)
                doc = predictions_document(run.transitions)
                (folder / f"{gt.name}.json").write_text(json.dumps(doc, indent=1) + "\n")
    return scores, seconds


def _row_name(path: Path, taken: set[str]) -> str:
    name = path.name or str(path)
    return name if name not in taken else str(path)


def sbd(
    directory: Path = typer.Argument(
        ...,
        exists=True,
        file_okay=False,
        help="benchmark set: {film}.mp4 + {film}.json (benchmarks/sbd/make_set.py)",
    ),
    detectors: list[str] | None = typer.Option(
        None,
        "--detector",
        "-d",
        help="detector to run (repeatable): muss, adaptive, content, hash, histogram, "
        "transnetv2; default muss unless --predictions is given",
    ),
    predictions: list[Path] | None = typer.Option(
        None, "--predictions", help="folder of {film}.json predictions to score (repeatable)"
    ),
    json_out: Path | None = typer.Option(None, "--json", help="write all scores as JSON"),
    markdown_out: Path | None = typer.Option(None, "--markdown", help="write the table"),
    save_predictions: Path | None = typer.Option(
        None,
        "--save-predictions",
        help="write each detector's predictions to DIR/{detector}/{film}.json",
    ),
) -> None:
    """Score shot-boundary predictions on DIR; print a Markdown table (one row per detector)."""
    names = list(detectors or ([] if predictions else ["muss"]))
    try:
        gts = load_ground_truth_dir(directory)
        per_film: dict[str, list[FilmScore]] = {}
        for pred_dir in predictions or []:
            per_film[_row_name(pred_dir, set(per_film))] = _score_prediction_dir(gts, pred_dir)
        seconds: dict[str, float] = {}
        if names:
            detector_scores, seconds = _run_detectors(gts, names, save_predictions)
            per_film |= detector_scores
    except (GroundTruthError, MediaError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    totals = {name: aggregate(scores) for name, scores in per_film.items()}
    table = format_markdown(totals, seconds or None)
    typer.echo(table, nl=False)
    if markdown_out is not None:
        markdown_out.write_text(table)
    if json_out is not None:
        doc = _json_report(directory, gts, per_film, totals, seconds)
        json_out.write_text(json.dumps(doc, indent=1) + "\n")


def _json_report(
    directory: Path,
    gts: Sequence[GroundTruth],
    per_film: dict[str, list[FilmScore]],
    totals: dict[str, SetScore],
    seconds: dict[str, float],
) -> dict:
    return {
        "set": str(directory),
        "films": [gt.film for gt in gts],
        "tolerances": list(TOLERANCES),
        "results": {
            name: {
                "seconds": seconds.get(name),
                "total": totals[name].to_dict(),
                "films": [score.to_dict() for score in scores],
            }
            for name, scores in per_film.items()
        },
    }


def _models_config(path: Path | None) -> BenchModelsConfig:
    """The metric models of ``--models`` (YAML or JSON, validated strictly), else defaults."""
    import yaml
    from pydantic import ValidationError

    from muss_builder.bench.metrics import BenchModelsConfig

    if path is None:
        return BenchModelsConfig()
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise _fail(f"{path}: cannot read the models config ({exc})") from exc
    if not isinstance(data, dict):
        raise _fail(f"{path}: the models config must be a mapping of fields")
    try:
        return BenchModelsConfig.model_validate(data)
    except (ValidationError, ValueError) as exc:
        raise _fail(f"{path}: invalid models config: {exc}") from exc


def make_suite_cmd(
    dataset: str = typer.Argument(
        ...,
        metavar="DATASET",
        help="a build, a packed folder or a subset (index.parquet + shards), local or s3://",
    ),
    out: Path = typer.Option(..., "--out", help="the suite folder to create"),
    n_scripts: int = typer.Option(50, "--n-scripts", help="most scripts to draw"),
    holdout_fraction: float = typer.Option(
        0.1, "--holdout-fraction", help="share of films held out (by film_id hash)"
    ),
    min_films: int = typer.Option(1, "--min-films", help="least films held out"),
    seed: int = typer.Option(0, "--seed"),
    tracks: list[str] | None = typer.Option(
        None, "--track", help="tracks to draw from, preferred first (default: subject, montage)"
    ),
    shards: list[str] | None = typer.Option(
        None,
        "--shards",
        metavar="SHARDS",
        help="draw only from these shards (repeatable): files, folders, globs, brace "
        "patterns (test-{00000..00003}.tar), manifest.json, s3:// urls",
    ),
) -> None:
    """Draw a suite of multi-shot scripts (with references and real clips) from held-out films."""
    from muss_builder.bench.suite import SuiteError, make_suite
    from muss_builder.shards.reader import ShardFormatError

    try:
        suite = make_suite(
            dataset, out, n_scripts=n_scripts, holdout_fraction=holdout_fraction, seed=seed,
            tracks=tuple(tracks or ("subject", "montage")), min_films=min_films,
            shards=shards,
        )  # fmt: skip
    except (SuiteError, ShardFormatError) as exc:
        raise _fail(str(exc)) from exc
    n_refs = sum(len(s.references) for s in suite.scripts)
    typer.echo(
        f"{out}: {len(suite.scripts)} scripts, {n_refs} references, from "
        f"{len(suite.held_out)} held-out film(s) (suite.json holdout.film_ids: exclude them "
        "from training)"
    )


def perturb_cmd(
    suite: Path = typer.Option(..., "--suite", help="a suite folder (bench make-suite)"),
    out: Path = typer.Option(..., "--out", help="folder for {variant}/{key}.mp4"),
    variants: list[str] | None = typer.Option(
        None, "--variant", help="sticker, shuffled, moved_cuts (repeatable; default all)"
    ),
    d: int = typer.Option(4, "--d", help="frames each cut moves (moved_cuts)"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Make the broken baselines of the suite's real clips (what every metric must score worse)."""
    from muss_builder.bench.perturb import VARIANTS, make_variants
    from muss_builder.bench.suite import SuiteError

    try:
        folders = make_variants(suite, out, tuple(variants or VARIANTS), d=d, seed=seed)
    except (SuiteError, MediaError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    for name, folder in folders.items():
        typer.echo(f"{name}: {folder}")


def run_cmd(
    suite: Path = typer.Option(..., "--suite", help="a suite folder (bench make-suite)"),
    videos: Path | None = typer.Option(None, "--videos", help="folder of {key}.mp4 to score"),
    ckpt: Path | None = typer.Option(
        None, "--ckpt", help="generate every video with this trainer checkpoint first"
    ),
    out: Path = typer.Option(..., "--out", help="folder for results.json and results.md"),
    models: Path | None = typer.Option(
        None, "--models", help="YAML/JSON metric models config (default: offline profile)"
    ),
    allow_missing: bool = typer.Option(False, "--allow-missing", help="skip missing videos"),
    steps: int | None = typer.Option(
        None, "--steps", help="sampling steps (--ckpt; default: the checkpoint's config)"
    ),
    cfg_scale: float | None = typer.Option(
        None, "--cfg-scale", help="guidance scale (--ckpt; default: the checkpoint's config)"
    ),
    seed: int = typer.Option(0, "--seed", help="first sampling seed (--ckpt)"),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda (--ckpt)"),
) -> None:
    """Score videos (given, or generated from --ckpt) against the suite; print the table."""
    from muss_builder.bench.runner import generate_videos, run_suite
    from muss_builder.bench.suite import SuiteError, load_suite

    if (videos is None) == (ckpt is None):
        raise _fail("give exactly one of --videos DIR or --ckpt CKPT")
    if ckpt is not None and not ckpt.exists():
        raise _fail(f"{ckpt}: no such checkpoint")
    if videos is not None and not videos.is_dir():
        raise _fail(f"{videos}: no such folder of videos")
    config = _models_config(models)  # before any generation: a bad config fails at once
    try:
        load_suite(suite)  # before any model loads
    except SuiteError as exc:
        raise _fail(str(exc)) from exc
    if ckpt is not None:
        from muss_builder.train.checkpoint import CheckpointError

        try:
            videos = generate_videos(
                suite, ckpt, out / "videos", steps=steps, cfg_scale=cfg_scale, seed=seed,
                device=device,
            )  # fmt: skip
        except (SuiteError, CheckpointError, MediaError, ValueError) as exc:
            raise _fail(str(exc)) from exc
    from muss_builder.bench.metrics import load_bench_models

    assert videos is not None
    try:
        results = run_suite(
            suite, videos, load_bench_models(config), out, allow_missing=allow_missing
        )
    except (SuiteError, MediaError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    typer.echo((out / "results.md").read_text(), nl=False)
    typer.echo(f"{out / 'results.json'}: {results.n_videos} videos", err=True)


def register(app: typer.Typer) -> None:
    """Add the ``bench`` group (a fresh one per app, so registering twice is harmless)."""
    bench = typer.Typer(
        help="Benchmarks: shot-boundary detection (sbd) and the generation suite "
        "(make-suite, perturb, run).",
        no_args_is_help=True,
    )
    bench.command("sbd")(sbd)
    bench.command("make-suite")(make_suite_cmd)
    bench.command("perturb")(perturb_cmd)
    bench.command("run")(run_cmd)
    app.add_typer(bench, name="bench")
