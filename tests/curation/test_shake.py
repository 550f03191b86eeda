"""Camera shake (``shaky``) on synthetic films: a photo filmed by a window that shakes, pans,
sways or stands still (ffmpeg ``crop`` with per-frame expressions), at 854x480 and 24 fps,
read the way a build reads it (analysis frames of 256 px, ``PictureObserver``)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from muss_builder.curation.picture_config import PictureConfig, ShakyConfig
from muss_builder.curation.shake import ShakeTrack, shot_shake
from muss_builder.media.tools import binary, run
from tests.curation.test_picture import true_report

FPS, N, W, H = 24, 72, 854, 480
TREMOR = "(sin(2*PI*3.1*n/24)+0.6*sin(2*PI*5.3*n/24+1)+0.4*sin(2*PI*7.7*n/24+2))"
# x, y of the 854x480 window inside a 1024x576 picture (centre: 85, 48)
MOVES = {
    "still": ("85", "48"),
    "pan": ("20+2*n", "48"),  # a steady pan: 2 px a frame
    "ease": ("20+130*(1-cos(PI*n/71))/2", "48"),  # a pan that starts and stops smoothly
    "sway": ("85+9*sin(2*PI*0.8*n/24)", "48+4*sin(2*PI*0.6*n/24)"),  # slow handheld, 1 %
    "shake": (f"85+26*{TREMOR}", f"48+16*{TREMOR.replace('3.1', '2.3')}"),  # 3 % tremor
}


@pytest.fixture(scope="module")
def shake_film(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One film, five shots of N frames (the order of ``MOVES``), joined by cuts."""
    from skimage import data

    root = tmp_path_factory.mktemp("shake")
    photo = root / "photo.png"
    image = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    cv2.imwrite(str(photo), cv2.resize(image, (1024, 576), interpolation=cv2.INTER_CUBIC))
    parts = []
    for k, (x, y) in enumerate(MOVES.values()):
        flip = ",hflip" if k % 2 else ""  # neighbouring shots differ: a cut between them
        parts.append(
            f"[0:v]trim=end_frame={N},setpts=N/{FPS}/TB{flip},crop={W}:{H}:'{x}':'{y}'[s{k}]"
        )
    joined = "".join(f"[s{k}]" for k in range(len(MOVES)))
    graph = ";".join(parts) + f";{joined}concat=n={len(MOVES)}:v=1:a=0,format=yuv420p[out]"
    out = root / "shake.mp4"
    args = [binary("ffmpeg"), "-nostdin", "-v", "error", "-y", "-loop", "1", "-framerate"]
    args += [str(FPS), "-i", str(photo), "-filter_complex", graph, "-map", "[out]"]
    args += ["-frames:v", str(N * len(MOVES)), "-c:v", "libx264", "-crf", "18", str(out)]
    run(args, what="make the shake film", timeout=300)
    return out


def report(path: Path, cfg: PictureConfig | None = None):
    return true_report(path, cfg, [(k * N, (k + 1) * N) for k in range(len(MOVES))])


def test_only_the_shaking_camera_is_shaky(shake_film: Path) -> None:
    found = report(shake_film)
    shakes = {name: q["shake"] for name, q in zip(MOVES, found.shot_quality, strict=True)}
    flagged = [name for name, f in zip(MOVES, found.shot_flags, strict=True) if "shaky" in f]
    assert flagged == ["shake"], shakes
    # steady moves stay near the noise floor, far under the threshold
    assert max(v for k, v in shakes.items() if k != "shake") < ShakyConfig().max_shake / 4
    assert "static" in found.shot_flags[0] and "static" not in found.shot_flags[-1]


def test_the_switch_and_the_threshold(shake_film: Path) -> None:
    off = report(shake_film, PictureConfig(shaky=ShakyConfig(enabled=False)))
    assert all("shake" not in q and "shaky" not in f for q, f in
               zip(off.shot_quality, off.shot_flags, strict=True))  # fmt: skip
    strict = report(shake_film, PictureConfig(shaky=ShakyConfig(max_shake=1.0)))
    assert not any("shaky" in f for f in strict.shot_flags)


def test_a_range_split_track_equals_one_pass() -> None:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (200, 300), np.uint8)
    base = cv2.GaussianBlur(base, (5, 5), 0)
    frames = [base[10 + k % 7 : 154 + k % 7, 20 + 3 * k % 11 : 276 + 3 * k % 11] for k in range(40)]
    cfg = ShakyConfig()
    one = ShakeTrack(256, 144, cfg)
    for i, f in enumerate(frames):
        one.process(i, f)
    parts = []
    for first, stop in ((0, 13), (13, 29), (29, None)):
        part = ShakeTrack(256, 144, cfg, first, stop)
        for i in range(max(0, first - 2), len(frames) if stop is None else stop):
            part.process(i, frames[i])  # a range also sees margin frames before its first
        parts.append(part)
    assert np.array_equal(ShakeTrack.stacked(parts), one.frames(), equal_nan=True)


def test_too_few_trusted_frames_leave_the_shot_unmeasured() -> None:
    cfg = ShakyConfig(min_frames=6, min_trusted_share=0.5)
    untrusted = np.tile(np.array([[np.nan, np.nan, 0.2]], np.float32), (30, 1))  # 2 of 9 tiles
    assert shot_shake(untrusted, 24.0, cfg) is None
    steady = np.tile(np.array([[0.01, 0.0, 1.0]], np.float32), (30, 1))
    assert shot_shake(steady, 24.0, cfg) == pytest.approx(0.0, abs=1e-9)
    # frames frame_step skipped (all NaN) are neither trusted nor counted against the share
    skipped = steady.copy()
    skipped[1::2] = np.nan
    assert shot_shake(skipped, 24.0, cfg) == pytest.approx(0.0, abs=1e-9)
    mostly_bad = steady.copy()
    mostly_bad[:20, :2] = np.nan  # 19 of the 29 measured moves untrusted
    assert shot_shake(mostly_bad, 24.0, cfg) is None
