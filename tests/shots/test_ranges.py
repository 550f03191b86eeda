"""A film detected in overlapping ranges gives exactly the single-pass result."""

from __future__ import annotations

import pytest

from muss_builder.config import AnalysisConfig, ShotsConfig
from muss_builder.media.probe import probe_film
from muss_builder.runtime.executors import RayExecutor
from muss_builder.shots.ranges import packet_timestamps, plan_ranges
from muss_builder.shots.segment import detect_shots_in_ranges, detect_shots_single_pass
from muss_builder.testing.synthetic_films import make_transition_film

SEGMENTS = [(50, "", 0)] + [
    (40 + 7 * (i % 4), ("cut", "dissolve", "cut", "fade_black")[i % 4], 14) for i in range(1, 15)
]


def test_split_ranges_equal_single_pass(tmp_path) -> None:
    film = make_transition_film(tmp_path / "long.mp4", SEGMENTS, flashes=(120, 400))
    probe = probe_film(film.path)
    shots = ShotsConfig(range_seconds=6.0, range_overlap_seconds=1.0)
    ranges = plan_ranges(film.n_frames, 24.0, shots)
    assert len(ranges) >= 4 and ranges[0].margin >= 200
    single = detect_shots_single_pass(film.path, probe, shots, AnalysisConfig())
    split = detect_shots_in_ranges(film.path, probe, shots, AnalysisConfig())
    assert split.transitions == single.transitions
    assert [(s.start_frame, s.end_frame, s.transition_in) for s in split.shots] == [
        (s.start_frame, s.end_frame, s.transition_in) for s in single.shots
    ]
    assert split.letterbox == single.letterbox
    cuts = [start for kind, start, _ in film.transitions if kind == "cut"]
    assert [t.start_frame for t in single.transitions if t.is_cut] == cuts


def test_packet_timestamps_match_decoded_frames(film30) -> None:
    pts = packet_timestamps(film30.path)
    assert len(pts) == film30.n_frames
    assert abs((pts[1] - pts[0]) - 1 / 30) < 1e-9


@pytest.mark.ray
def test_ranges_run_as_ray_tasks(tmp_path) -> None:
    import ray

    film = make_transition_film(tmp_path / "long.mp4", SEGMENTS[:8])
    probe = probe_film(film.path)
    shots = ShotsConfig(range_seconds=4.0, range_overlap_seconds=1.0)
    single = detect_shots_single_pass(film.path, probe, shots, AnalysisConfig())
    with RayExecutor(num_cpus=2):
        assert ray.is_initialized()
        split = detect_shots_in_ranges(film.path, probe, shots, AnalysisConfig())
    assert len(plan_ranges(film.n_frames, 24.0, shots)) >= 2
    assert split.transitions == single.transitions
    assert split.shots == single.shots and split.warnings == single.warnings == []
