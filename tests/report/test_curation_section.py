"""The report's curation section: funnel, quality histograms and drop-reason sheets, from real
film records of a build (changed here to carry drops) and real thumbnails."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from muss_builder.curation.examples import ShotThumbCollector, example_members
from muss_builder.report.curation import FILM_DUPLICATE, collect_curation, funnel_rows
from muss_builder.report.curation_page import curation_section, draw_curation
from muss_builder.runtime.build import BuildSummary
from muss_builder.samples.film_record import FilmRecord
from muss_builder.shots.segment import Shot
from muss_builder.subjects.keyframes import Keyframe


def _records(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "films").glob("*.json"))]


def _shot(index: int, start: int, end: int) -> Shot:
    return Shot(index, start, end, start / 24, end / 24, "cut" if index else "start")


def test_thumb_collector_keeps_the_middle_keyframe_and_examples_are_capped() -> None:
    shots = [_shot(0, 0, 30), _shot(1, 30, 90)]
    collector = ShotThumbCollector(shots, side=64)
    for frame, shade in ((5, 10), (15, 200), (25, 40), (60, 90)):
        image = np.full((90, 160, 3), shade, np.uint8)
        collector.add(Keyframe(0 if frame < 30 else 1, frame, image), is_keyframe=True)
    collector.add(Keyframe(1, 59, np.zeros((90, 160, 3), np.uint8)), is_keyframe=False)
    thumbs = collector.finish()
    assert sorted(thumbs) == [0, 1]
    first = np.asarray(Image.open(io.BytesIO(thumbs[0])))
    assert first.shape[:2] == (36, 64) and abs(float(first.mean()) - 200) < 3  # frame 15
    dropped = {0: "black", 1: "black", 2: "credits", 3: "black"}  # shot 3 has no thumbnail
    thumbs[2] = thumbs[0]
    folder = f"curation/examples/{'f' * 16}"
    assert sorted(example_members("f" * 16, thumbs, dropped, 1)) == [
        f"{folder}/00000-black.jpg",
        f"{folder}/00002-credits.jpg",
    ]
    assert len(example_members("f" * 16, thumbs, dropped, 5)) == 3


def test_funnel_counts_every_shot_once(built_dataset: BuildSummary, tmp_path: Path) -> None:
    docs = _records(built_dataset.out)
    assert docs, "the build wrote film records"
    doc = docs[0]
    kept_in_samples = sum(s["sample_key"] is not None for d in docs for s in d["shots"])
    # drop the first shot that is in no sample as 'black' and give every shot measures
    for other in docs[1:]:  # the build's own measures: left out here to count exactly
        for shot in other["shots"]:
            shot.pop("quality", None)
    for n, shot in enumerate(doc["shots"]):
        shot["quality"] = {"luma": 10.0 * n, "motion": 1.5}
    free = [s for s in doc["shots"] if s["sample_key"] is None]
    if free:
        free[0]["excluded_reason"] = "black"
    records = [FilmRecord.model_validate(d) for d in docs]
    thumb = Image.new("RGB", (160, 90), "red")
    folder = tmp_path / "curation" / "examples" / doc["film_id"]
    folder.mkdir(parents=True)
    thumb.save(folder / "00000-black.jpg")
    (folder / "notes.txt").write_text("not an example")
    data = collect_curation(records, tmp_path)
    total = sum(len(d["shots"]) for d in docs)
    assert data.shots_in == total and data.in_samples == kept_in_samples
    assert data.kept + sum(data.dropped.values()) == total
    assert data.kept == data.in_samples + sum(data.left_out.values())
    assert data.dropped["black"] == (1 if free else 0)
    assert data.quality["motion"] == [1.5] * len(doc["shots"])
    rows = funnel_rows(data)
    assert rows[0] == ("in", "shots detected", total) and rows[-1][2] == kept_in_samples
    charts, sheets = draw_curation(data, tmp_path / "report", "curation")
    assert {c.title for c in charts} == {"luma", "motion"}
    file, shown, available = sheets["black"]
    assert (shown, available) == (1, 1) and (tmp_path / "report" / file).is_file()
    page = curation_section(data, charts, sheets)
    assert "Dropped: black" in page and "shots detected" in page


def test_a_duplicate_film_counts_all_its_shots(built_dataset: BuildSummary, tmp_path: Path) -> None:
    doc = _records(built_dataset.out)[0]
    doc["status"] = "skipped"  # the current schema's closest status; the record is typed below
    record = FilmRecord.model_validate(doc)
    record = record.model_copy(update={"status": "duplicate"})
    data = collect_curation([record], tmp_path)
    assert data.dropped[FILM_DUPLICATE] == len(doc["shots"]) - data.in_samples
