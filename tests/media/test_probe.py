"""Probe facts on synthetic films, and readable reasons for files that are not films."""

from __future__ import annotations

from pathlib import Path

import pytest

from muss_builder.media.probe import probe_film
from muss_builder.media.tools import MediaError, binary, run
from muss_builder.shots.segment import detect_shots
from muss_builder.testing.synthetic_films import make_audio_only, make_film


def test_probe_reports_stream_facts(film30) -> None:
    probe = probe_film(film30.path)
    assert (probe.width, probe.height) == (320, 180)
    assert probe.fps == pytest.approx(30.0)
    assert probe.frame_count_estimate == film30.n_frames
    assert probe.video_codec == "h264"
    assert probe.has_audio and probe.audio_codec == "aac"
    assert probe.rotation == 0 and not probe.variable_frame_rate
    assert len(probe.film_id) == 16


def test_film_id_is_content_hash_not_name(tmp_path: Path, twelve_film) -> None:
    copy = tmp_path / "renamed copy.mp4"
    copy.write_bytes(twelve_film.path.read_bytes())
    assert probe_film(copy).film_id == probe_film(twelve_film.path).film_id


def test_rotated_file_reports_display_size(tmp_path: Path, tiny_config) -> None:
    film = make_film(tmp_path / "plain.mp4", (24, 30, 24), width=320, height=180)
    rotated = tmp_path / "rotated.mp4"
    # the mp4 muxer turns a "rotate" stream tag into a display matrix, as phones write it
    run(
        [
            binary("ffmpeg"),
            "-v",
            "error",
            "-y",
            "-i",
            str(film.path),
            "-c",
            "copy",
            "-metadata:s:v:0",
            "rotate=90",
            str(rotated),
        ],
        what="rotate",
    )
    probe = probe_film(rotated)
    assert probe.rotation in (90, 270)
    assert (probe.coded_width, probe.coded_height) == (320, 180)
    assert (probe.width, probe.height) == (180, 320)
    # frames are decoded upright, and the cuts stay where they were
    detection = detect_shots(rotated, probe, tiny_config.shots, tiny_config.analysis)
    assert [s.start_frame for s in detection.shots[1:]] == film.cut_frames


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_bytes(bytes(range(256)) * 64), "cannot probe"),
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: None, "file not found"),
    ],
)
def test_unusable_inputs_have_readable_reasons(tmp_path: Path, make, reason: str) -> None:
    path = tmp_path / "film.mp4"
    make(path)
    with pytest.raises(MediaError, match=reason):
        probe_film(path)


def test_audio_only_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "song.m4a"
    make_audio_only(path)
    with pytest.raises(MediaError, match="audio-only"):
        probe_film(path)
