"""The H.264 writer: what it writes decodes to the same number of frames of the same size,
and in bit-exact mode the same frames give the same bytes."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from muss_builder.config import ClipsConfig
from muss_builder.media.commands import H264Options, clip_options
from muss_builder.media.decode import read_frames
from muss_builder.media.h264 import H264Writer, frame_rate, write_h264
from muss_builder.media.probe import probe_film
from muss_builder.media.tools import MediaError


def _frames(n: int, width: int = 64, height: int = 48) -> np.ndarray:
    """A gradient that moves, one grey level a frame: smooth enough to survive crf 18."""
    x = np.arange(width)[None, :, None]
    y = np.arange(height)[:, None, None]
    return np.stack(
        [np.broadcast_to((x * 3 + y + t * 8) % 256, (height, width, 3)) for t in range(n)]
    ).astype(np.uint8)


def test_round_trip_keeps_frame_count_size_and_pixels(tmp_path: Path) -> None:
    frames = _frames(10)
    path = write_h264(frames, tmp_path / "v.mp4", 24.0)
    decoded = read_frames(path, (64, 48))
    assert sorted(decoded) == list(range(10))
    assert all(image.shape == (48, 64, 3) for image in decoded.values())
    error = np.abs(np.stack(list(decoded.values())).astype(int) - frames.astype(int)).mean()
    assert error < 4, error
    probe = probe_film(path)
    assert (probe.width, probe.height, probe.fps_fraction) == (64, 48, "24/1")


def test_bit_exact_mode_gives_the_same_bytes_twice(tmp_path: Path) -> None:
    options = clip_options(ClipsConfig(encoder_threads=2))
    assert options.bit_exact
    frames = _frames(30)
    first = write_h264(frames, tmp_path / "a.mp4", Fraction(24000, 1001), options)
    second = write_h264(frames, tmp_path / "b.mp4", Fraction(24000, 1001), options)
    assert first.read_bytes() == second.read_bytes()
    assert b"Lavf" not in first.read_bytes()  # no muxer version string in a bit-exact file


def test_streamed_yuv_and_bgr_frames_and_scaling(tmp_path: Path) -> None:
    frames = _frames(5)
    yuv = np.zeros((48 * 3 // 2, 64), np.uint8)
    with H264Writer(tmp_path / "y.mp4", (64, 48), 25, pix_fmt="yuv420p") as writer:
        for _ in range(4):
            writer.write(yuv.tobytes())
    assert writer.frames_written == 4
    assert len(read_frames(tmp_path / "y.mp4", (64, 48))) == 4
    options = H264Options(preset="ultrafast", keyframe_interval=2)
    write_h264(
        frames[..., ::-1], tmp_path / "s.mp4", 25, options, pix_fmt="bgr24", scale_to=(32, 24)
    )
    assert {image.shape for image in read_frames(tmp_path / "s.mp4", (32, 24)).values()} == {
        (24, 32, 3)
    }
    assert probe_film(tmp_path / "s.mp4").width == 32


def test_a_frame_of_the_wrong_size_and_a_failing_encode_are_refused(tmp_path: Path) -> None:
    with (
        pytest.raises(ValueError, match="needs 9216"),
        H264Writer(tmp_path / "w.mp4", (64, 48), 24) as writer,
    ):
        writer.write(np.zeros((10, 10, 3), np.uint8))
    # 4:2:0 needs even sizes: x264 refuses, and the error names what failed
    odd = H264Writer(tmp_path / "odd.mp4", (63, 47), 24, what="odd encode")
    with pytest.raises(MediaError, match="odd encode"), odd:
        odd.write(np.zeros((47, 63, 3), np.uint8))


def test_frame_rates() -> None:
    assert frame_rate(23.976) == Fraction(2997, 125)
    assert frame_rate(Fraction(1000000, 33367)) == Fraction(1000000, 33367)  # kept as it is
