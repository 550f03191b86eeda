"""Odd films through the real pipeline (tiny config, inline): what the user gets in the
tables, the film records and the shards."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from muss_builder.media.probe import probe_film
from muss_builder.runtime.build import build
from muss_builder.shards.reader import iter_samples, load_sample_json
from muss_builder.testing.synthetic_films import (
    cut_frames_in,
    ffmpeg_to,
    make_concatenated_ts,
    make_film,
)
from muss_builder.testing.synthetic_mkv import make_laced_mkv

_X264 = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")


def _odd_films(root: Path) -> dict[str, Path]:
    base = make_film(root / "base.mp4", (24, 30, 18), fps=24)
    other = make_film(root / "other.mp4", (30, 18), fps=24)
    flipped = ffmpeg_to(root / "flipped.mp4", "-i", str(other.path), "-vf", "hflip,negate")
    at48 = make_film(root / "at48.mp4", (48, 48, 48), fps=48)
    return {
        "anamorphic": make_film(
            root / "anamorphic.mp4", (24, 24, 24), fps=24, width=360, height=240, sar="32:27"
        ).path,
        "late": ffmpeg_to(
            root / "late.mkv", "-i", str(base.path), "-c", "copy", "-output_ts_offset", "3600"
        ),
        "restarting": make_concatenated_ts(root / "joined.ts", [base.path, flipped]),
        "laced": make_laced_mkv(
            ffmpeg_to(root / "timed.mkv", "-i", str(base.path), "-c", "copy"), root / "laced.mkv"
        ),
        # an elementary stream: packets with no time at all, no duration in any header
        "elementary": ffmpeg_to(
            root / "raw.h264", "-i", str(base.path), "-c", "copy", "-f", "h264"
        ),
        # fields of the 48 fps film woven two by two: 24 fps interlaced, cuts at 24 and 48
        "interlaced": ffmpeg_to(
            root / "interlaced.mp4",
            *("-i", str(at48.path), "-vf", "interlace=scan=tff:lowpass=0", *_X264),
            *("-flags", "+ilme+ildct", "-field_order", "tt"),
        ),
    }


@pytest.fixture(scope="module")
def odd_build(tmp_path_factory: pytest.TempPathFactory, tiny_config):
    root = tmp_path_factory.mktemp("odd_build")
    films = _odd_films(root)
    out = root / "out"
    build([str(p) for p in films.values()], out, tiny_config, executor="inline")
    rows = {Path(r["path"]).name: r for r in pq.read_table(out / "films.parquet").to_pylist()}
    records = {}
    for path in (out / "films").glob("*.json"):
        record = json.loads(path.read_text())
        records[record["probe"]["file_name"]] = record
    samples: dict[str, list] = {}
    for shard in sorted((out / "shards").glob("*.tar")):
        for sample in iter_samples(shard):
            doc = load_sample_json(sample)
            samples.setdefault(doc["source"]["file_name"], []).append((doc, sample))
    return films, rows, records, samples, root


def test_every_odd_film_is_built(odd_build) -> None:
    films, rows, _, samples, _ = odd_build
    for path in films.values():
        assert rows[path.name]["status"] == "ok", rows[path.name]["reason"]
        assert samples[path.name]


def test_anamorphic_clips_are_unsqueezed(odd_build) -> None:
    films, rows, records, samples, root = odd_build
    name = films["anamorphic"].name
    # 360x240 stored with 32:27 pixels is a 426x240 picture; clips at 96 px short side
    assert (rows[name]["width"], rows[name]["height"]) == (426, 240)
    assert records[name]["probe"]["sample_aspect_ratio"] == "32:27"
    for doc, sample in samples[name]:
        assert (doc["source"]["width"], doc["source"]["height"]) == (426, 240)
        assert (doc["clip"]["width"], doc["clip"]["height"]) == (170, 96)
        clip = root / f"{sample.key}.mp4"
        clip.write_bytes(sample.members["mp4"])
        written = probe_film(clip)  # square pixels: players show what the metadata says
        assert (written.width, written.height, written.sample_aspect_ratio) == (170, 96, "1:1")


def test_late_mkv_is_as_long_as_its_video(odd_build) -> None:
    films, rows, records, _, _ = odd_build
    name = films["late"].name
    assert rows[name]["duration_seconds"] == pytest.approx(3.0, abs=0.01)  # not 3603 s
    assert records[name]["probe"]["start_time_seconds"] == 3600.0
    assert rows[name]["n_frames"] == 72


def test_restarting_timestamps_give_frame_exact_clips(odd_build) -> None:
    films, rows, records, samples, root = odd_build
    name = films["restarting"].name
    assert records[name]["probe"]["timestamps"] == "rebuilt"
    assert rows[name]["n_frames"] == 120 and rows[name]["duration_seconds"] == pytest.approx(5.0)
    starts = [s["start_frame"] for s in records[name]["shots"][1:]]
    assert starts == [24, 54, 72, 102]  # the restart at 72 is a cut like the others
    for doc, sample in samples[name]:
        clip = root / f"{sample.key}.mp4"
        clip.write_bytes(sample.members["mp4"])
        size = (doc["clip"]["width"], doc["clip"]["height"])
        assert cut_frames_in(clip, size) == [s["clip_start_frame"] for s in doc["shots"][1:]]


@pytest.mark.parametrize("kind", ["elementary", "laced"])
def test_untimed_packets_are_built_with_frame_exact_clips(odd_build, kind: str) -> None:
    """A raw H.264 file was refused ("video stream has no duration"), an MKV with laced
    (untimed) frames failed ("truncated or corrupt video: decoded 145 of 148 frames")."""
    films, rows, records, samples, root = odd_build
    name = films[kind].name
    assert rows[name]["status"] == "ok" and records[name]["probe"]["timestamps"] == "rebuilt"
    assert rows[name]["n_frames"] == 72 and rows[name]["duration_seconds"] == pytest.approx(3.0)
    assert [s["start_frame"] for s in records[name]["shots"][1:]] == [24, 54]
    for doc, sample in samples[name]:
        clip = root / f"{sample.key}.mp4"
        clip.write_bytes(sample.members["mp4"])
        size = (doc["clip"]["width"], doc["clip"]["height"])
        assert cut_frames_in(clip, size) == [s["clip_start_frame"] for s in doc["shots"][1:]]


def test_interlaced_film_is_deinterlaced_and_recorded(odd_build) -> None:
    films, _, records, _, _ = odd_build
    name = films["interlaced"].name
    probe = records[name]["probe"]
    assert probe["field_order"] == "tt" and probe["deinterlace"] is True
    assert [s["start_frame"] for s in records[name]["shots"][1:]] == [24, 48]
    assert probe_film(films["interlaced"], deinterlace="off").deinterlace is False
