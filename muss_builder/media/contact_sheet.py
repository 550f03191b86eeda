"""The one contact-sheet renderer: tiles (a clip frame or a crop, with text lines under it) in a
row on a canvas, and the clip frames they show.

Two pages use it: ``muss-builder inspect --sheet`` (shards/inspect.py: one PNG per shard, a row
per sample after a label column) and the report's strips (report/sheets.py: one PNG per
sample, reference crops after the shots). Each keeps its own look through a ``TileStyle``;
the decoding, geometry and drawing are here once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFont

from muss_builder.media.decode import StreamsBytes, read_frames
from muss_builder.media.tools import MediaError

RGB = tuple[int, int, int]
Font = ImageFont.ImageFont | ImageFont.FreeTypeFont


@dataclass(frozen=True)
class TileStyle:
    pad: int  # between tiles
    line_height: int
    text: RGB
    dim: RGB  # lines other than ``bright_line``
    placeholder: RGB  # fills a tile whose frame did not decode
    bright_line: int | None = None  # the one line drawn in ``text``; None: every line
    placeholder_text: str | None = None  # written on a placeholder, in ``text``


@dataclass
class Tile:
    image: Image.Image | None  # None: a placeholder of ``size``
    lines: list[str]
    size: tuple[int, int]

    @classmethod
    def of(cls, image: Image.Image | None, lines: list[str], size: tuple[int, int]) -> Tile:
        return cls(image, lines, image.size if image is not None else size)


def label_font() -> Font:
    try:
        return ImageFont.load_default(size=12)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def clip_frames(
    mp4: StreamsBytes | None, size: tuple[int, int], wanted: list[int]
) -> dict[int, Image.Image]:
    """Frames ``wanted`` of a sample's mp4 scaled to ``size``, in one decode that stops after
    the last; the mp4 is streamed to the decoder, never whole in memory."""
    if not wanted:
        return {}
    if mp4 is None:
        raise MediaError("the sample has no mp4")
    frames = read_frames(mp4, size, wanted=wanted, pix_fmt="rgb24")
    return {i: Image.fromarray(image.copy(), "RGB") for i, image in frames.items()}


def row_width(tiles: Sequence[Tile], style: TileStyle) -> int:
    """Width of ``tiles`` drawn in a row, a gap after each."""
    return sum(tile.size[0] + style.pad for tile in tiles)


def draw_tiles(
    canvas: Image.Image,
    tiles: Sequence[Tile],
    origin: tuple[int, int],
    style: TileStyle,
    font: Font,
) -> None:
    """Draw ``tiles`` left to right from ``origin`` (the first tile's top left corner), each
    tile's lines under it."""
    draw = ImageDraw.Draw(canvas)
    x, y = origin
    for tile in tiles:
        width, height = tile.size
        if tile.image is None:
            draw.rectangle((x, y, x + width - 1, y + height - 1), fill=style.placeholder)
            if style.placeholder_text:
                draw.text((x + 4, y + 4), style.placeholder_text, font=font, fill=style.text)
        else:
            canvas.paste(tile.image, (x, y))
        for i, line in enumerate(tile.lines):
            bright = style.bright_line is None or i == style.bright_line
            fill = style.text if bright else style.dim
            draw.text((x, y + height + 1 + i * style.line_height), line, font=font, fill=fill)
        x += width + style.pad
