"""Shot detection finds exactly the known cuts of synthetic films."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from muss_builder.media.probe import probe_film
from muss_builder.media.tools import binary, run
from muss_builder.shots.segment import detect_shots, run_detectors, shots_from_transitions
from muss_builder.shots.transitions import cut
from muss_builder.testing.synthetic_films import ffmpeg_to, make_film


def test_twelve_segments_give_exactly_the_known_shots(twelve_film, tiny_config) -> None:
    probe = probe_film(twelve_film.path)
    detection = detect_shots(twelve_film.path, probe, tiny_config.shots, tiny_config.analysis)
    assert detection.n_frames == twelve_film.n_frames
    assert [s.start_frame for s in detection.shots[1:]] == twelve_film.cut_frames
    assert [s.n_frames for s in detection.shots] == list(twelve_film.segment_frames)
    assert detection.shots[0].transition_in == "start"
    assert {s.transition_in for s in detection.shots[1:]} == {"cut"}
    # seconds and frames agree at 24 fps
    for shot in detection.shots:
        assert shot.start_seconds == round(shot.start_frame / 24, 6)


def test_nonzero_start_time_keeps_frame_indices(tmp_path: Path, tiny_config) -> None:
    film = make_film(tmp_path / "a.mp4", (30, 40, 30), fps=24)
    shifted = tmp_path / "shifted.mp4"
    run(
        [
            binary("ffmpeg"),
            "-v",
            "error",
            "-y",
            "-itsoffset",
            "3.5",
            "-i",
            str(film.path),
            "-c",
            "copy",
            "-f",
            "mp4",
            str(shifted),
        ],
        what="shift",
    )
    probe = probe_film(shifted)
    detection = detect_shots(shifted, probe, tiny_config.shots, tiny_config.analysis)
    assert [s.start_frame for s in detection.shots[1:]] == film.cut_frames
    assert detection.shots[1].start_seconds == round(30 / 24, 6)


def test_shots_from_cuts_are_contiguous() -> None:
    pts = np.arange(50) / 25.0
    shots = shots_from_transitions([cut(c) for c in (30, 10, 10, 0, 50)], pts, 2.0)
    assert [(s.start_frame, s.end_frame) for s in shots] == [(0, 10), (10, 30), (30, 50)]
    assert shots[-1].end_seconds == 2.0


def test_cuts_two_seconds_apart_at_one_fps_stay_apart(tmp_path: Path, tiny_config) -> None:
    """Minimum shot length is a time: at 1 fps, six frames would be six seconds and real
    cuts two seconds apart merged (only 2 of 6 were found; PySceneDetect's 15-frame minimum
    scene found none)."""
    film = make_film(tmp_path / "slow.mp4", (3, 2, 2, 2, 3, 2, 3), fps=1)
    probe = probe_film(film.path)
    detection = detect_shots(film.path, probe, tiny_config.shots, tiny_config.analysis)
    assert [s.start_frame for s in detection.shots[1:]] == film.cut_frames
    assert [s.start_seconds for s in detection.shots[1:]] == [3.0, 5.0, 7.0, 9.0, 12.0, 14.0]
    runs = run_detectors(film.path, ["hash", "histogram"], tiny_config.shots)
    for name, detector_run in runs.items():
        assert [t.boundary for t in detector_run.transitions] == film.cut_frames, name


def test_a_short_shot_between_two_alike_at_one_fps_is_no_flash(tmp_path: Path, tiny_config) -> None:
    """Flash suppression (the picture returns within a few frames) is a time too: at 1 fps a
    3 s shot between two shots of one look was taken for a flash and both cuts were lost."""
    two = make_film(tmp_path / "ab.mp4", (3, 3), fps=1)
    graph = (
        "[0:v]split[a][c];[0:v]trim=start_frame=3,setpts=PTS-STARTPTS[b];"
        "[a]trim=end_frame=3,setpts=PTS-STARTPTS[a3];[c]trim=end_frame=3,setpts=PTS-STARTPTS[c3];"
        "[a3][b][c3]concat=n=3:v=1[o]"
    )
    aba = ffmpeg_to(
        tmp_path / "aba.mp4",
        *("-i", str(two.path), "-filter_complex", graph, "-map", "[o]"),
        *("-c:v", "libx264", "-preset", "ultrafast", "-r", "1"),
    )
    probe = probe_film(aba)
    detection = detect_shots(aba, probe, tiny_config.shots, tiny_config.analysis)
    assert detection.n_frames == 9
    assert [s.start_frame for s in detection.shots[1:]] == [3, 6]
