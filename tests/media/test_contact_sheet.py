"""The contact-sheet renderer: tiles sit side by side with a gap, a frame that did not decode
is a placeholder, and a clip's frames come out of one decode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from muss_builder.media.contact_sheet import (
    Tile,
    TileStyle,
    clip_frames,
    draw_tiles,
    label_font,
    row_width,
)
from muss_builder.media.h264 import write_h264
from muss_builder.media.tools import MediaError

STYLE = TileStyle(
    pad=6, line_height=15, text=(255, 255, 255), dim=(9, 9, 9), placeholder=(70, 70, 70)
)


def test_tiles_are_drawn_left_to_right_with_placeholders() -> None:
    red = Image.new("RGB", (20, 10), (255, 0, 0))
    crop = Image.new("RGB", (8, 10), (0, 0, 255))
    tiles = [Tile(red, ["one"], (20, 10)), Tile(None, [], (20, 10)), Tile.of(crop, ["ref"], (0, 0))]
    assert tiles[2].size == (8, 10)
    assert row_width(tiles, STYLE) == 20 + 6 + 20 + 6 + 8 + 6
    canvas = Image.new("RGB", (80, 40), (0, 0, 0))
    draw_tiles(canvas, tiles, (3, 2), STYLE, label_font())
    assert canvas.getpixel((3, 2)) == (255, 0, 0) and canvas.getpixel((22, 11)) == (255, 0, 0)
    assert canvas.getpixel((29, 2)) == (70, 70, 70) and canvas.getpixel((48, 11)) == (70, 70, 70)
    assert canvas.getpixel((55, 2)) == (0, 0, 255)
    under = np.asarray(canvas)[13:28, 3:23]
    assert (under == 255).all(axis=-1).any(), "the tile's line is written under it"


def test_clip_frames_decodes_the_wanted_frames(tmp_path: Path) -> None:
    frames = np.stack([np.full((48, 64, 3), 30 * t, np.uint8) for t in range(6)])
    clip = write_h264(frames, tmp_path / "c.mp4", 24)

    class Member:
        def copy_to(self, out) -> None:
            out.write(clip.read_bytes())

    thumbs = clip_frames(Member(), (32, 24), [1, 4])
    assert sorted(thumbs) == [1, 4] and thumbs[4].size == (32, 24)
    assert clip_frames(None, (32, 24), []) == {}
    with pytest.raises(MediaError, match="no mp4"):
        clip_frames(None, (32, 24), [0])
