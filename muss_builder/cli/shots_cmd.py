"""``muss-builder shots FILM``: the shot list of one film, as JSON or CSV."""

from __future__ import annotations

import csv
import json
import sys
from enum import Enum
from pathlib import Path

import typer

from muss_builder.config import load_pipeline
from muss_builder.media.probe import probe_film
from muss_builder.media.tools import MediaError
from muss_builder.shots.segment import detect_shots, detect_shots_single_pass
from muss_builder.shots.stats import write_stats_csv


class ShotFormat(str, Enum):
    json = "json"
    csv = "csv"


def shots(
    film: Path = typer.Argument(..., help="video file"),
    fmt: ShotFormat = typer.Option(ShotFormat.json, "--format", help="json or csv"),
    config: str = typer.Option("default", "--config", help="pipeline YAML path or name"),
    stats_file: Path | None = typer.Option(
        None,
        "--stats-file",
        help="also write a CSV with one row per frame: the detector's scores, its verdict on "
        "each candidate and the transition found (columns: docs/shots-stats.md). The film "
        "is then read in one pass, not in ranges (the shots are the same).",
    ),
) -> None:
    """Detect the shots of FILM and print them (frames are indices of decoded frames)."""
    cfg = load_pipeline(config)
    try:
        probe = probe_film(film)
        if stats_file is None:
            detection = detect_shots(film, probe, cfg.shots, cfg.analysis)
        else:
            detection = detect_shots_single_pass(
                film, probe, cfg.shots, cfg.analysis, frame_stats=True
            )
    except MediaError as exc:
        typer.echo(f"error: {film}: {exc}", err=True)
        raise typer.Exit(2) from exc
    if stats_file is not None:
        rows = write_stats_csv(stats_file, detection)
        typer.echo(f"{stats_file}: {rows} frames", err=True)
    rows = [s.to_dict() for s in detection.shots]
    if fmt is ShotFormat.json:
        doc = {
            "film_id": probe.film_id,
            "file": str(film),
            "fps": probe.fps,
            "n_frames": detection.n_frames,
            "detector": detection.detector,
            "letterbox": detection.letterbox,
            "transitions": [t.to_dict() for t in detection.transitions],
            "shots": rows,
        }
        typer.echo(json.dumps(doc, indent=2))
        return
    writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else ["index"])
    writer.writeheader()
    writer.writerows(rows)


def register(app: typer.Typer) -> None:
    app.command("shots")(shots)
