"""`muss-builder shots FILM` prints the shot list as JSON or CSV."""

from __future__ import annotations

import csv
import io
import json

from typer.testing import CliRunner

from muss_builder.cli.main import app
from muss_builder.config import load_pipeline

runner = CliRunner()


def test_shots_json(twelve_film) -> None:
    result = runner.invoke(app, ["shots", str(twelve_film.path), "--config", "tiny"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [s["start_frame"] for s in doc["shots"][1:]] == twelve_film.cut_frames
    assert doc["n_frames"] == twelve_film.n_frames
    assert doc["detector"] == load_pipeline("tiny").shots.detector
    assert [t["start_frame"] for t in doc["transitions"]] == twelve_film.cut_frames
    assert {t["kind"] for t in doc["transitions"]} == {"cut"}


def test_shots_csv(twelve_film) -> None:
    result = runner.invoke(
        app, ["shots", str(twelve_film.path), "--format", "csv", "--config", "tiny"]
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [int(r["n_frames"]) for r in rows] == list(twelve_film.segment_frames)
    assert {"start_frame", "end_frame", "start_seconds", "end_seconds"} <= set(rows[0])


def test_shots_on_a_bad_file_exits_2_with_reason(tmp_path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a film")
    result = runner.invoke(app, ["shots", str(bad)])
    assert result.exit_code == 2
    assert "cannot probe" in result.output


def test_shots_stats_file(twelve_film, tmp_path) -> None:
    stats = tmp_path / "stats.csv"
    result = runner.invoke(
        app, ["shots", str(twelve_film.path), "--config", "tiny", "--stats-file", str(stats)]
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    rows = list(csv.DictReader(stats.open(newline="")))
    assert len(rows) == doc["n_frames"] == twelve_film.n_frames
    cuts = [int(r["frame"]) for r in rows if r["transition"] == "cut"]
    assert cuts == [s["start_frame"] for s in doc["shots"][1:]] == twelve_film.cut_frames
