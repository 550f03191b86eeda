"""The dataset report: its numbers against the tables, its images, and the page in Chromium."""

from __future__ import annotations

import html
import io
import json
import os
import re
import shutil
import statistics
import tarfile
import zlib
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

from muss_builder.cli.main import app
from muss_builder.config import PipelineConfig
from muss_builder.media.decode import scaled_size
from muss_builder.report import Report, ReportInputError, write_report
from muss_builder.report.browser import find_chromium, render
from muss_builder.report.sheets import (
    THUMB_WIDTH,
    _ref_crops,
    box_colour,
    draw_strip,
    pick_samples,
)
from muss_builder.runtime.build import BuildSummary, build
from muss_builder.samples.records import Reference, Sample
from muss_builder.shards.reader import Member, iter_samples, load_sample_json
from muss_builder.testing.synthetic_films import SyntheticFilm

BROKEN_NAME = '<img src=x onerror=alert(1)> "film" & co.mp4'  # markup: must be escaped


_CARD = ("value", "label")


class PageText(HTMLParser):
    """The page's count cards, table rows, figure captions and image sources."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.cards: dict[str, str] = {}  # label -> value
        self.rows: list[list[str]] = []
        self.captions: list[str] = []
        self.images: list[str] = []
        self._classes: list[str] = []
        self._card: list[str] = []
        self._text: list[str] | None = None
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        cls = dict(attrs).get("class") or ""
        self._classes.append(cls)
        if tag == "img":
            self.images.append(dict(attrs)["src"] or "")
            self._classes.pop()
        elif tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th", "figcaption") or cls in _CARD:
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        cls = self._classes.pop() if self._classes else ""
        if self._text is None or not (tag in ("td", "th", "figcaption") or cls in _CARD):
            return  # the end of an inline tag inside a cell (<code>, <b>)
        text, self._text = "".join(self._text).strip(), None
        if tag in ("td", "th"):
            self.rows[-1].append(text)
        elif tag == "figcaption":
            self.captions.append(text)
        elif cls == "value":
            self._card = [text]
        elif cls == "label":
            self.cards[text] = self._card[0]

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)


@pytest.fixture(scope="module")
def report(built_dataset: BuildSummary, tmp_path_factory: pytest.TempPathFactory) -> Report:
    return write_report(built_dataset.out, tmp_path_factory.mktemp("report"), samples=3, seed=1)


@pytest.fixture(scope="module")
def failed_report(
    built_dataset: BuildSummary,
    twelve_film: SyntheticFilm,
    film30: SyntheticFilm,
    tiny_config: PipelineConfig,
    tmp_path_factory: pytest.TempPathFactory,
) -> Report:
    """The built dataset plus one corrupt input: the two films resume, the third fails."""
    root = tmp_path_factory.mktemp("with-failure")
    out = root / "out"
    shutil.copytree(built_dataset.out, out)
    broken = root / BROKEN_NAME
    data = twelve_film.path.read_bytes()
    broken.write_bytes(data[: len(data) // 2])  # cut before its index: "moov atom not found"
    paths = [str(twelve_film.path), str(film30.path), str(broken)]
    build(paths, out, tiny_config, executor="inline")
    return write_report(out, root / "report", samples=2, seed=0)


def _index(dataset: Path) -> list[dict]:
    return pq.read_table(dataset / "index.parquet").to_pylist()


def _summary(values: list[float], unit: str) -> str:
    # the same format as the page, computed here from the table
    return (
        f"n={len(values)}, median {statistics.median(values):.3g} {unit}, "
        f"range {min(values):.3g} to {max(values):.3g} {unit}"
    )


def test_page_numbers_match_the_tables(report: Report, built_dataset: BuildSummary) -> None:
    index = _index(built_dataset.out)
    films = pq.read_table(built_dataset.out / "films.parquet").to_pylist()
    montage = [r for r in index if r["track"] == "montage"]  # every sample: each clip once
    assert montage  # the fixture's films give samples: otherwise this test proves nothing
    page = PageText(report.page.read_text())

    assert page.cards["input films"] == str(len(films))
    assert page.cards["samples"] == str(len({r["key"] for r in index}))
    assert page.cards["shots in samples"] == str(sum(r["n_shots"] for r in montage))
    assert page.cards["shards"] == str(len(list((built_dataset.out / "shards").glob("*.tar"))))
    # one films-table row per input, with its status and counts
    film_rows = {r[1]: r for r in page.rows if len(r) == 10 and r[0] != "film"}
    assert set(film_rows) == {f["film_id"] for f in films}
    for f in films:
        row = film_rows[f["film_id"]]
        assert row[0] == Path(f["path"]).name and row[2] == f["status"]
        assert (row[5], row[6]) == (str(f["n_shots"]), str(f["n_samples"]))

    captions = page.captions
    assert _summary([r["n_shots"] for r in index], "shots") in captions
    assert _summary([r["duration_seconds"] for r in index], "s") in captions
    assert _summary([d for r in montage for d in r["shot_durations"]], "s") in captions
    global_chars = [r["global_caption_chars"] for r in montage]
    assert _summary(global_chars, "chars") in captions
    # per-shot facts come from the shards' json: their totals must agree with the index
    transitions = sum(r["n_shots"] - 1 for r in montage)
    shots = sum(r["n_shots"] for r in montage)
    assert sum(report.data.transitions.values()) == transitions
    assert sum(report.data.shot_scales.values()) == shots
    assert sum(report.data.camera_motions.values()) == shots
    assert any(c.startswith(f"n={transitions}: cut ") for c in captions)


def test_every_image_is_a_local_png_that_opens(report: Report) -> None:
    text = report.page.read_text()
    page = PageText(text)
    assert "http://" not in text and "https://" not in text and "<script" not in text
    assert len(report.charts) == 11
    shown = {c.file for c in report.charts} | {s.file for s in report.sheets}
    assert shown | set(report.curation_images) == set(page.images)
    for src in page.images:
        path = report.page.parent / src
        assert not Path(src).is_absolute() and path.is_file(), src
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width >= 300 and image.height >= 100, src
            pixels = np.asarray(image.convert("L"))
        assert pixels.std() > 5, f"{src} is blank"


def test_sample_sheets_are_a_seeded_choice_with_every_shot(
    report: Report, built_dataset: BuildSummary
) -> None:
    keys = [r["key"] for r in _index(built_dataset.out)]
    chosen = [s.key for s in report.sheets]
    assert chosen == pick_samples(keys, 3, seed=1) and len(chosen) == 3
    by_key = {r["key"]: r for r in _index(built_dataset.out)}
    page = report.page.read_text()
    for sheet in report.sheets:
        assert len(sheet.shots) == by_key[sheet.key]["n_shots"] and sheet.problem is None
        for shot in sheet.shots:
            assert shot.caption and html.escape(shot.caption) in page


def test_subject_boxes_are_drawn_on_their_frame(built_dataset: BuildSummary) -> None:
    shard = sorted((built_dataset.out / "shards").glob("*.tar"))[0]
    sample = next(iter_samples(shard))
    doc = load_sample_json(sample)
    plain, _ = draw_strip(sample, Sample.model_validate(doc))
    shot = doc["shots"][1]
    frame = (shot["clip_start_frame"] + shot["clip_end_frame"]) // 2
    # the synthetic films have no faces to detect: give the second shot a subject box on
    # the frame the sheet shows, then on another frame (which must not be drawn there)
    box = {"source_frame": 0, "clip_frame": frame, "box": [0.25, 0.25, 0.75, 0.75]}
    shot["subjects"] = [{"id": "S1", "kind": "face", "label": "face", "boxes": [box]}]
    boxed, _ = draw_strip(sample, Sample.model_validate(doc))
    tw, th = scaled_size(doc["clip"]["width"], doc["clip"]["height"], target_width=THUMB_WIDTH)
    left, top = 6 + (tw + 6), 6  # the second tile
    diff = np.abs(np.asarray(boxed, np.int16) - np.asarray(plain, np.int16)).sum(axis=2)
    ys, xs = np.nonzero(diff > 60)
    assert len(xs) > 2 * (tw + th) // 2  # the outline changed pixels all round
    assert abs(xs.min() - (left + 0.25 * tw)) <= 2 and abs(xs.max() - (left + 0.75 * tw)) <= 2
    assert abs(ys.min() - (top + 0.25 * th)) <= 2 and abs(ys.max() - (top + 0.75 * th)) <= 2
    edge = boxed.getpixel((round(left + 0.25 * tw), round(top + 0.5 * th)))
    assert edge == box_colour("S1")

    # a second subject measured on another frame is not drawn on this one
    other = {"source_frame": 0, "clip_frame": frame + 1, "box": [0.05, 0.05, 0.2, 0.2]}
    shot["subjects"].append({"id": "S2", "kind": "face", "label": "face", "boxes": [other]})
    both, _ = draw_strip(sample, Sample.model_validate(doc))
    assert np.array_equal(np.asarray(both), np.asarray(boxed))


def test_failed_film_and_its_reason_are_shown(failed_report: Report) -> None:
    text = failed_report.page.read_text()
    assert BROKEN_NAME not in text and html.escape(BROKEN_NAME) in text  # never raw markup
    page = PageText(text)
    assert page.cards["input films"] == "3"
    failed = [r for r in page.rows if len(r) == 10 and r[2] == "failed"]
    assert len(failed) == 1
    assert failed[0][0] == BROKEN_NAME and "moov atom not found" in failed[0][3]
    assert failed_report.data.counts.films_failed == 1
    # and the failures-by-reason table groups it under the reason's first clause
    assert ["failed", failed[0][3].split(":")[0], "1"] in page.rows
    assert sum(r[2] == "ok (resumed)" for r in page.rows if len(r) == 10) == 2


def _chromium_or_skip() -> str:
    chromium = find_chromium()
    if chromium is None:
        if os.environ.get("CI"):
            pytest.fail("chromium missing in CI: make test runs scripts/ensure_chromium.sh")
        pytest.skip("no chromium on PATH (bash scripts/ensure_chromium.sh installs it)")
    return chromium


@pytest.mark.slow
def test_page_renders_in_chromium_without_console_errors(
    failed_report: Report, tmp_path: Path
) -> None:
    chromium = _chromium_or_skip()
    # the console check itself must catch an error (else an empty list proves nothing)
    probe = tmp_path / "probe.html"
    probe.write_text('<!DOCTYPE html><html><body><script>console.error("bad"); nope()</script>')
    caught = render(probe, tmp_path / "p.png", (400, 300), chromium).console
    assert caught[0].startswith("bad") and "nope is not defined" in caught[1], caught

    run = render(failed_report.page, tmp_path / "shot.png", (1280, 1600), chromium)
    assert run.console == []
    with Image.open(run.screenshot) as shot:
        assert shot.size == (1280, 1600)
        pixels = np.asarray(shot.convert("RGB"))
    assert run.screenshot.stat().st_size > 30_000
    # not blank: many colours, and the dark header band is drawn at the top
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 500
    assert pixels[:40].mean() < 100 < pixels[200:].mean()


def test_cli_writes_the_report_and_refuses_a_non_dataset(
    built_dataset: BuildSummary, tmp_path: Path
) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app, ["report", str(built_dataset.out), "--out", str(tmp_path / "r"), "--samples", "0"]
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r" / "report.html").is_file() and "report: " in result.output
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["report", str(tmp_path / "empty")])
    assert result.exit_code == 2
    assert "error: " in result.output and "not a muss-builder dataset" in result.output


def test_a_shard_missing_from_the_dataset_is_named(
    built_dataset: BuildSummary, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    shutil.copytree(built_dataset.out, out)
    gone = sorted((out / "shards").glob("*.tar"))[-1]
    gone.unlink()
    missing = re.escape(f"{gone.name}: listed in index.parquet but missing")
    with pytest.raises(ReportInputError, match=missing):
        write_report(out, tmp_path / "report")


def test_a_hostile_index_or_sample_is_a_clear_refusal(
    built_dataset: BuildSummary, tmp_path: Path
) -> None:
    out = Path(shutil.copytree(built_dataset.out, tmp_path / "out"))
    index = pq.read_table(out / "index.parquet")
    rows = index.to_pylist()
    # a shard name that leaves shards/ (today it is opened: ../films.parquet exists)
    rows[0]["shard"] = "../films.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=index.schema), out / "index.parquet")
    with pytest.raises(ReportInputError, match=r"shard name '\.\./films\.parquet' is not a file"):
        write_report(out, tmp_path / "r1")
    shutil.copy(built_dataset.out / "index.parquet", out / "index.parquet")
    # a sample document of the wrong shape (today: TypeError, unhashable list)
    shard = sorted((out / "shards").glob("*.tar"))[0]
    samples = list(iter_samples(shard))
    with tarfile.open(shard, "w", format=tarfile.GNU_FORMAT) as tar:
        for n, sample in enumerate(samples):
            members = dict(sample.members)
            if n == 0:
                doc = json.loads(members["json"])
                doc["shots"][-1]["transition_in"] = ["cut"]
                members["json"] = json.dumps(doc).encode()
            for ext in sorted(members):
                info = tarfile.TarInfo(f"{sample.key}.{ext}")
                info.size = len(members[ext])
                tar.addfile(info, io.BytesIO(members[ext]))
    wrong = re.escape(f"{shard.name}: member '{samples[0].key}.json': not a valid sample document")
    with pytest.raises(ReportInputError, match=wrong):
        write_report(out, tmp_path / "r2")


def test_report_applies_member_size_caps(built_dataset: BuildSummary, tmp_path: Path) -> None:
    args = ["report", str(built_dataset.out), "--out", str(tmp_path / "r"), "--samples", "0"]
    result = CliRunner().invoke(app, [*args, "--max-member-size", "json=10"])
    assert result.exit_code == 2
    assert "error: unreadable shard: " in result.stderr
    assert "bytes, over the 10-byte limit for this kind of member" in result.stderr


def test_a_reference_strip_declaring_a_huge_image_is_left_out() -> None:
    # a PNG whose header says 20000x20000 (400 M pixels): decoding it would take 1.2 GB
    small = io.BytesIO()
    Image.new("RGB", (4, 4)).save(small, format="PNG")
    data = bytearray(small.getvalue())
    data[16:24] = (20000).to_bytes(4, "big") * 2  # IHDR width and height
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")  # the chunk's CRC
    record = Sample.model_construct(references=[Reference.model_construct(strip_box=[0, 0, 4, 4])])
    member = Member.from_bytes("s.tar", "k.refs.jpg", bytes(data))
    assert _ref_crops(member, record, 50) == [None]
    fine = Member.from_bytes("s.tar", "k.refs.jpg", small.getvalue())
    (crop,) = _ref_crops(fine, record, 50)
    assert crop is not None and crop.size == (50, 50)
    outside = Sample.model_construct(references=[Reference.model_construct(strip_box=[2, 0, 9, 4])])
    assert _ref_crops(fine, outside, 50) == [None]  # a box past the strip: nothing to show
