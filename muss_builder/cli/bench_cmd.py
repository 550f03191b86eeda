"""``muss-builder bench sbd DIR``: score shot-boundary detectors against exact ground truth.

Rows come from detectors run here (``--detector``, all fed by one decode per film) or from
prediction files written by anything else (``--predictions DIR`` holding ``{film}.json``).
Scores follow TRECVID conventions; docs/sbd-benchmark.md defines every column.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import typer

from muss_builder.bench.sbd import (
    TOLERANCES,
    FilmScore,
    GroundTruth,
    GroundTruthError,
    SetScore,
    aggregate,
    format_markdown,
    load_ground_truth_dir,
    load_predictions,
    predictions_document,
    score_ground_truth,
)
from muss_builder.media.tools import MediaError


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


def register(app: typer.Typer) -> None:
    """Add the ``bench`` group (a fresh one per app, so registering twice is harmless)."""
    bench = typer.Typer(help="Benchmarks: shot-boundary detection (sbd).", no_args_is_help=True)
    bench.command("sbd")(sbd)
    app.add_typer(bench, name="bench")
