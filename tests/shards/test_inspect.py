"""Shard summaries and contact sheets over the built test dataset."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from muss_builder.media.decode import FrameReader, scaled_size
from muss_builder.runtime.build import BuildSummary
from muss_builder.shards import inspect as shard_inspect
from muss_builder.shards.extract import safe_extract
from muss_builder.shards.inspect import format_summary, summarize_shard, write_contact_sheet
from muss_builder.shards.reader import (
    ShardFormatError,
    iter_samples,
    load_sample_json,
)


@pytest.fixture(scope="module")
def shards(built_dataset: BuildSummary) -> list[Path]:
    paths = sorted((built_dataset.out / "shards").glob("*.tar"))
    assert paths
    return paths


@pytest.fixture(scope="module")
def biggest_shard(shards: list[Path]) -> Path:
    """The shard with the most samples (the contact sheet needs several rows)."""
    return max(shards, key=lambda p: sum(1 for _ in iter_samples(p)))


def _index_rows(built_dataset: BuildSummary, shard: Path) -> dict[str, dict]:
    rows = pq.read_table(built_dataset.out / "index.parquet").to_pylist()
    return {r["key"]: r for r in rows if r["shard"] == shard.name}


def test_summary_lists_every_sample_with_its_shot_count(
    built_dataset: BuildSummary, shards: list[Path]
) -> None:
    for shard in shards:
        rows = _index_rows(built_dataset, shard)
        summary = summarize_shard(shard)
        assert {s["key"]: s["n_shots"] for s in summary["samples"]} == {
            k: r["n_shots"] for k, r in rows.items()
        }
        totals = summary["totals"]
        assert totals["samples"] == len(rows)
        assert totals["shots"] == sum(r["n_shots"] for r in rows.values())
        assert totals["bytes"] == shard.stat().st_size
        assert totals["mean_shots_per_sample"] == pytest.approx(
            totals["shots"] / len(rows), abs=1e-3
        )
        text = format_summary(summary)
        lines = text.splitlines()
        for key, row in rows.items():
            (line,) = [ln for ln in lines if ln.startswith(key)]
            # tracks, window kind (tiny.yaml lets windows cross scenes), shots
            assert line.split()[1:4] == ["montage", row["window_kind"], str(row["n_shots"])]
        assert f"{len(rows)} samples, {totals['shots']} shots" in text


def test_summary_reports_boundaries_captions_and_refs(shards: list[Path]) -> None:
    sample = next(iter_samples(shards[0]))
    doc = load_sample_json(sample)
    (facts,) = [s for s in summarize_shard(shards[0])["samples"] if s["key"] == sample.key]
    assert facts["shot_boundaries"] == [s["clip_start_frame"] for s in doc["shots"]] + [
        doc["clip"]["n_frames"]
    ]
    assert facts["shot_boundaries"][0] == 0
    assert facts["clip"]["n_frames"] == doc["clip"]["n_frames"]
    assert facts["global_caption"] is True  # the facts captioner writes one for every sample
    assert facts["n_refs"] == 0 and facts["tracks"] == ["montage"]
    assert facts["members"] == ["json", "mp4", "refs.jpg"]  # the same in every sample


def test_contact_sheet_has_one_row_per_sample(biggest_shard: Path, tmp_path: Path) -> None:
    n_samples = sum(1 for _ in iter_samples(biggest_shard))
    assert n_samples >= 2
    full = write_contact_sheet(biggest_shard, tmp_path / "sheets" / "full.png")
    one = write_contact_sheet(biggest_shard, tmp_path / "one.png", max_samples=1)
    assert full == tmp_path / "sheets" / "full.png"
    with Image.open(full) as big, Image.open(one) as small:
        assert big.format == "PNG" and small.format == "PNG"
        header = shard_inspect._TITLE_HEIGHT
        # Every row of the test dataset has the same geometry: the height is linear in rows.
        row = small.height - header
        assert row > 0
        assert big.height == header + n_samples * row
        max_shots = max(len(load_sample_json(s)["shots"]) for s in iter_samples(biggest_shard))
        assert big.width >= shard_inspect._LABEL_WIDTH + max_shots * shard_inspect.THUMB_WIDTH


def test_contact_sheet_thumbnail_is_the_middle_frame_of_the_shot(
    biggest_shard: Path, tmp_path: Path
) -> None:
    sheet_path = write_contact_sheet(biggest_shard, tmp_path / "sheet.png", max_samples=1)
    sample = next(iter_samples(biggest_shard))
    doc = load_sample_json(sample)
    (mp4,) = [
        p
        for p in safe_extract(biggest_shard, tmp_path / "x", keys={sample.key})
        if p.suffix == ".mp4"
    ]
    size = scaled_size(
        doc["clip"]["width"], doc["clip"]["height"], target_width=shard_inspect.THUMB_WIDTH
    )
    frames = {f.index: f.image for f in FrameReader(mp4, size, pix_fmt="rgb24")}
    with Image.open(sheet_path) as sheet:
        pixels = np.asarray(sheet.convert("RGB"))
    top = shard_inspect._TITLE_HEIGHT + shard_inspect._PAD
    for n, shot in enumerate(doc["shots"]):
        middle = (shot["clip_start_frame"] + shot["clip_end_frame"]) // 2
        left = shard_inspect._LABEL_WIDTH + n * (size[0] + shard_inspect._PAD)
        thumb = pixels[top : top + size[1], left : left + size[0]].astype(int)
        expected = frames[middle].astype(int)
        assert np.abs(thumb - expected).mean() < 1.0, f"shot {n}"
        if shot["clip_end_frame"] < doc["clip"]["n_frames"]:
            # the next shot's first frame looks different: the match above is not a fluke
            following = frames[shot["clip_end_frame"]].astype(int)
            assert np.abs(thumb - following).mean() > 5.0, f"shot {n}"


def _shard_with(tmp_path: Path, source: Path, change: dict[str, bytes]) -> Path:
    """A copy of the first sample of ``source`` with some members replaced."""
    sample = next(iter_samples(source))
    members = {**sample.members, **change}
    out = tmp_path / source.name
    with tarfile.open(out, "w") as tar:
        for ext in sorted(members):
            info = tarfile.TarInfo(f"{sample.key}.{ext}")
            info.size = len(members[ext])
            tar.addfile(info, io.BytesIO(members[ext]))
    return out


def test_contact_sheet_shows_placeholders_for_an_undecodable_clip(
    shards: list[Path], tmp_path: Path
) -> None:
    shard = _shard_with(tmp_path, shards[0], {"mp4": b"not a video" * 100})
    sheet_path = write_contact_sheet(shard, tmp_path / "sheet.png")
    with Image.open(sheet_path) as sheet:
        top = shard_inspect._TITLE_HEIGHT + shard_inspect._PAD
        pixel = sheet.convert("RGB").getpixel((shard_inspect._LABEL_WIDTH + 40, top + 40))
    assert pixel == shard_inspect._PLACEHOLDER


def test_malformed_metadata_is_a_shard_format_error(shards: list[Path], tmp_path: Path) -> None:
    shard = _shard_with(tmp_path, shards[0], {"json": json.dumps({"shots": 5}).encode()})
    with pytest.raises(ShardFormatError, match=r"\.json': metadata of an unexpected shape"):
        summarize_shard(shard)
    with pytest.raises(ShardFormatError, match=r"\.json': not a valid sample document"):
        write_contact_sheet(shard, tmp_path / "sheet.png")
    assert not (tmp_path / "sheet.png").exists()
