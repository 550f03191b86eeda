"""The decoder of whole videos: an mp4 given as a path, as bytes, or streamed, into frames."""

from __future__ import annotations

from pathlib import Path
from typing import IO

import numpy as np
import pytest

from muss_builder.media.decode import read_frames
from muss_builder.media.h264 import write_h264
from muss_builder.media.tools import MediaError


class _Chunks:
    """A source that streams its bytes in pieces, as a shard member does."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def copy_to(self, out: IO[bytes]) -> None:
        for at in range(0, len(self.data), 1000):
            out.write(self.data[at : at + 1000])


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 frames, frame t a flat grey of 20 * t: each frame says its index."""
    frames = np.stack([np.full((48, 64, 3), 20 * t, np.uint8) for t in range(12)])
    return write_h264(frames, tmp_path_factory.mktemp("decode") / "clip.mp4", 24)


def test_path_bytes_and_streamed_inputs_decode_alike(clip: Path) -> None:
    from_path = read_frames(clip, (32, 24))
    from_bytes = read_frames(clip.read_bytes(), (32, 24))
    streamed = read_frames(_Chunks(clip.read_bytes()), (32, 24))
    assert sorted(from_path) == list(range(12))
    for index, image in from_path.items():
        assert image.shape == (24, 32, 3)
        assert abs(int(image.mean()) - 20 * index) <= 2
        assert np.array_equal(image, from_bytes[index])
        assert np.array_equal(image, streamed[index])


def test_wanted_frames_only_and_past_the_end(clip: Path) -> None:
    assert sorted(read_frames(clip, (32, 24), wanted=[3, 7])) == [3, 7]
    assert sorted(read_frames(clip, (32, 24), wanted={11, 40})) == [11]  # 40: no such frame
    assert read_frames(clip, (32, 24), wanted=[]) == {}
    yuv = read_frames(str(clip), (32, 24), wanted=[0], pix_fmt="yuv420p")
    assert yuv[0].shape == (36, 32)


def test_what_is_not_a_video_is_a_media_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 100)
    with pytest.raises(MediaError):
        read_frames(junk, (32, 24), require_frames=True)
    with pytest.raises(MediaError):
        read_frames(b"not a video" * 100, (32, 24), require_frames=True)
