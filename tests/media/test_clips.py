"""Clips are frame-exact: the cuts inside the written mp4 sit where the metadata says."""

from __future__ import annotations

import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from muss_builder.config import ClipsConfig
from muss_builder.media.clips import encode_clip, plan_clip
from muss_builder.media.commands import clip_options
from muss_builder.media.probe import probe_film
from muss_builder.media.tools import binary, run
from muss_builder.shots.segment import detect_shots
from muss_builder.testing.synthetic_films import cut_frames_in, make_film


@pytest.mark.parametrize("fps", [24, 30, 12, 25])
def test_clip_cuts_match_plan(tmp_path: Path, film30, tiny_config, fps: int) -> None:
    probe = probe_film(film30.path)
    detection = detect_shots(film30.path, probe, tiny_config.shots, tiny_config.analysis)
    shots = detection.shots[2:6]
    plan = plan_clip(
        detection.frame_pts,
        detection.end_pts,
        shots[0].start_frame,
        shots[-1].end_frame,
        Fraction(fps),
    )
    expected = [plan.first_output_frame(s.start_frame) for s in shots[1:]]
    span_seconds = (shots[-1].end_frame - shots[0].start_frame) / 30
    assert plan.n_frames == round(span_seconds * fps)
    size = encode_clip(
        film30.path,
        probe,
        detection.frame_pts,
        plan,
        ClipsConfig(fps=fps, short_side=90, preset="ultrafast"),
        tmp_path / "clip.mp4",
    )
    assert size == (160, 90)
    assert cut_frames_in(tmp_path / "clip.mp4", size) == expected
    # boundaries follow from time: output frame j shows time j/fps after the span start
    for shot, clip_start in zip(shots[1:], expected, strict=True):
        t = (shot.start_frame - shots[0].start_frame) / 30
        assert clip_start == int(np.ceil(t * fps - 1e-6))


def test_plan_identity_at_source_rate() -> None:
    pts = np.arange(100) / 24.0
    plan = plan_clip(pts, 100 / 24.0, 10, 60, Fraction(24))
    assert plan.source_index.tolist() == list(range(10, 60))
    assert plan.first_output_frame(35) == 25


def test_variable_frame_rate_clip_is_exact(tmp_path: Path, tiny_config) -> None:
    film = make_film(tmp_path / "cfr.mp4", (30, 40, 25, 50, 36), fps=24)
    vfr = tmp_path / "vfr.mp4"
    # frames 0..79 at 24 fps, then 12 fps: same frames, stretched timestamps
    run(
        [
            binary("ffmpeg"),
            "-v",
            "error",
            "-y",
            "-i",
            str(film.path),
            "-vf",
            "setpts='if(lt(N,80),N/24,80/24+(N-80)/12)/TB'",
            "-fps_mode",
            "passthrough",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            str(vfr),
        ],
        what="vfr",
    )
    probe = probe_film(vfr)
    assert probe.variable_frame_rate
    detection = detect_shots(vfr, probe, tiny_config.shots, tiny_config.analysis)
    assert [s.start_frame for s in detection.shots[1:]] == film.cut_frames
    assert detection.shots[3].start_seconds == round(80 / 24 + 15 / 12, 6)
    shots = detection.shots[1:5]
    plan = plan_clip(
        detection.frame_pts,
        detection.end_pts,
        shots[0].start_frame,
        shots[-1].end_frame,
        Fraction(24),
    )
    expected = [plan.first_output_frame(s.start_frame) for s in shots[1:]]
    size = encode_clip(
        vfr,
        probe,
        detection.frame_pts,
        plan,
        ClipsConfig(fps=24, short_side=90, preset="ultrafast"),
        tmp_path / "clip.mp4",
    )
    assert cut_frames_in(tmp_path / "clip.mp4", size) == expected
    # the 12 fps part is shown for twice as many 24 fps output frames
    assert expected[-1] - expected[-2] == 2 * shots[2].n_frames


def test_clip_pixels_do_not_depend_on_the_cpus_simd(tmp_path: Path) -> None:
    """A cluster mixes CPUs: the clip must equal one scaled by ffmpeg's plain C code
    (``-cpuflags 0``), which the default SIMD scaler does not (its rounding differs). The
    encoder here is a literal command line in the order the clips had before the command
    builder: option order must not matter to the bytes."""
    film = make_film(tmp_path / "film.mp4", (20, 28), fps=24, width=640, height=360)
    probe = probe_film(film.path)
    pts = np.arange(film.n_frames) / 24.0
    plan = plan_clip(pts, film.n_frames / 24.0, 0, film.n_frames, Fraction(24))
    cfg = ClipsConfig(short_side=240, preset="ultrafast")
    size = encode_clip(film.path, probe, pts, plan, cfg, tmp_path / "clip.mp4")
    decoder = [binary("ffmpeg"), "-nostdin", "-v", "error", "-cpuflags", "0"]
    decoder += ["-i", str(film.path), "-vf", f"scale={size[0]}:{size[1]}:flags=area"]
    decoder += ["-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "yuv420p", "pipe:1"]
    raw = run(decoder, what="decode with the C scaler")
    encoder = [binary("ffmpeg"), "-nostdin", "-v", "error", "-y", "-f", "rawvideo"]
    encoder += ["-pix_fmt", "yuv420p", "-s", f"{size[0]}x{size[1]}", "-framerate", "24"]
    encoder += ["-i", "pipe:0", *clip_options(cfg).codec_args()]
    encoder += ["-movflags", "+faststart", "-map_metadata", "-1", "-fflags", "+bitexact"]
    encoder += ["-flags:v", "+bitexact", str(tmp_path / "c.mp4")]
    subprocess.run(encoder, input=raw, check=True)
    assert (tmp_path / "clip.mp4").read_bytes() == (tmp_path / "c.mp4").read_bytes()


@pytest.mark.parametrize("threading", ["frame", "slice"])
def test_threaded_encodes_repeat_byte_for_byte(tmp_path: Path, threading: str) -> None:
    """Two threads, a decoder feeding the pipe: three encodes write one file."""
    film = make_film(tmp_path / "film.mp4", (30, 26, 40), fps=24, width=640, height=360)
    probe = probe_film(film.path)
    pts = np.arange(film.n_frames) / 24.0
    plan = plan_clip(pts, film.n_frames / 24.0, 0, film.n_frames, Fraction(24))
    cfg = ClipsConfig(short_side=240, encoder_threads=2, encoder_threading=threading)
    clips = set()
    for i in range(3):
        encode_clip(film.path, probe, pts, plan, cfg, tmp_path / f"{i}.mp4")
        clips.add((tmp_path / f"{i}.mp4").read_bytes())
    assert len(clips) == 1
