"""The per-frame statistics file: one row per decoded frame, with the detector's scores and
verdicts, whose transition column agrees with the shot list."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from muss_builder.config import ShotsConfig
from muss_builder.media.probe import probe_film
from muss_builder.shots.segment import detect_shots_single_pass
from muss_builder.shots.stats import STATS_COLUMNS, write_stats_csv
from muss_builder.testing.synthetic_films import make_transition_film

SEGMENTS = [(60, "", 0), (60, "dissolve", 16), (60, "cut", 0), (70, "fade_black", 20)]
FLASHES = (30,)  # two white-hot frames inside the first shot


@pytest.fixture(scope="module")
def transition_film(tmp_path_factory):
    root = tmp_path_factory.mktemp("stats")
    return make_transition_film(root / "transitions.mp4", SEGMENTS, flashes=FLASHES)


def _stats(path: Path, out: Path, cfg, detector: str = "muss") -> tuple[list[dict], object]:
    shots = cfg.shots.model_copy(update={"detector": detector})
    detection = detect_shots_single_pass(
        path, probe_film(path), shots, cfg.analysis, frame_stats=True
    )
    assert write_stats_csv(out, detection) == detection.n_frames
    with open(out, newline="") as f:
        return list(csv.DictReader(f)), detection


def test_one_row_per_frame_and_cut_rows_are_the_shot_starts(
    twelve_film, tiny_config, tmp_path: Path
) -> None:
    rows, detection = _stats(twelve_film.path, tmp_path / "stats.csv", tiny_config)
    assert list(rows[0]) == list(STATS_COLUMNS)
    assert [int(r["frame"]) for r in rows] == list(range(twelve_film.n_frames))
    cut_rows = [int(r["frame"]) for r in rows if r["transition"] == "cut"]
    assert cut_rows == twelve_film.cut_frames == [s.start_frame for s in detection.shots[1:]]
    # each frame names its shot; the scores are there for every frame
    assert [int(r["shot"]) for r in rows if r["transition"] == "cut"] == list(
        range(1, len(detection.shots))
    )
    assert all(r["change"] and r["step_ratio"] and r["luma"] for r in rows)
    # a cut was a candidate the detector accepted; the frame before it was not a candidate
    accepted = {"clear_cut", "net_cut", "step_cut"}
    assert all(r["cut_candidate"] in accepted for r in rows if r["transition"] == "cut")
    for frame in cut_rows:
        assert float(rows[frame]["change"]) > float(rows[frame]["local_median"])
        assert rows[frame - 1]["cut_candidate"] == ""


def test_gradual_frames_and_flash_verdicts(transition_film, tiny_config, tmp_path) -> None:
    rows, detection = _stats(transition_film.path, tmp_path / "stats.csv", tiny_config)
    assert len(rows) == transition_film.n_frames
    for t in detection.transitions:
        span = range(t.start_frame, t.end_frame + 1)
        assert {rows[k]["transition"] for k in span} == {t.kind}
    kinds = {r["transition"] for r in rows} - {""}
    assert kinds == {"cut", "dissolve", "fade_black"}
    # the flash was a cut candidate that the detector set aside as a flash
    assert {r["cut_candidate"] for r in rows[29:34]} & {"flash"}
    # no net ran (CPU, no budget): its columns are empty
    assert {r["net_single"] for r in rows} == {""}


def test_other_detectors_fill_the_common_columns(twelve_film, tiny_config, tmp_path) -> None:
    rows, _ = _stats(twelve_film.path, tmp_path / "stats.csv", tiny_config, "adaptive")
    assert len(rows) == twelve_film.n_frames
    assert [int(r["frame"]) for r in rows if r["transition"] == "cut"] == twelve_film.cut_frames
    assert {r["change"] for r in rows} == {""}


def test_columns_are_documented() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "shots-stats.md").read_text()
    assert all(f"`{name}`" in doc for name in STATS_COLUMNS)
    assert ShotsConfig().detector == "muss"
