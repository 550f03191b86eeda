"""Contact sheets of random samples: one PNG strip per sample, subject boxes drawn on it.

A strip shows one frame per shot and, for the subject track, the sample's reference crops.
The frame of a shot is the clip frame its subject boxes were measured on (a keyframe) when
it has any, else its middle frame, so every box is drawn on the very frame it belongs to.
Captions are not drawn into the image: the page prints them as text, which reads better.
"""

from __future__ import annotations

import io
import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw

from muss_builder.core.naming import REFS_MEMBER
from muss_builder.media.contact_sheet import (
    Tile,
    TileStyle,
    clip_frames,
    draw_tiles,
    label_font,
    row_width,
)
from muss_builder.media.decode import scaled_size
from muss_builder.media.tools import MediaError
from muss_builder.report.collect import valid_sample
from muss_builder.samples.records import Sample, SampleShot
from muss_builder.shards.reader import (
    DEFAULT_LIMITS,
    Member,
    ReaderLimits,
    ShardFormatError,
    ShardSample,
    iter_samples,
)

THUMB_WIDTH = 200
_MAX_REF_PIXELS = 64_000_000  # a crop declaring more is a decompression bomb, not a face
_PAD = 6
_LINE = 15
_BACKGROUND = (250, 250, 250)
_TEXT = (30, 30, 30)
_PLACEHOLDER = (200, 200, 200)
# one line under each tile, placeholders plain grey
_TILES = TileStyle(pad=_PAD, line_height=_LINE, text=_TEXT, dim=_TEXT, placeholder=_PLACEHOLDER)
_BOX_COLOURS = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180))


@dataclass
class SheetShot:
    """A shot's line under the strip: number, incoming transition, clip seconds, caption."""

    number: int
    transition_in: str
    start_seconds: float
    end_seconds: float
    subjects: list[str]
    caption: str | None


@dataclass
class SheetSample:
    """One sample of the page's contact sheets."""

    key: str
    tracks: list[str]
    source_file: str
    duration_seconds: float
    file: str  # the strip PNG, relative to the page
    global_caption: str | None
    focus_subjects: list[str]
    shots: list[SheetShot] = field(default_factory=list)
    references: list[str] = field(default_factory=list)  # "ref 0: S1 from shot 7" lines
    problem: str | None = None  # e.g. the clip does not decode


def pick_samples(keys: list[str], n: int, seed: int) -> list[str]:
    """``n`` keys drawn at random with ``seed`` (the same every run), in index order."""
    chosen = set(random.Random(seed).sample(keys, min(n, len(keys))))
    return [k for k in keys if k in chosen]


def shown_frame(shot: SampleShot) -> int:
    """The clip frame a shot's tile shows: its first subject box's frame, else its middle."""
    for subject in shot.subjects:
        for box in subject.boxes:
            return box.clip_frame
    return (shot.clip_start_frame + shot.clip_end_frame) // 2


def box_colour(subject_id: str) -> tuple[int, int, int]:
    """One colour per subject number, so a subject keeps its colour across a strip."""
    digits = "".join(ch for ch in subject_id if ch.isdigit()) or "0"
    return _BOX_COLOURS[int(digits) % len(_BOX_COLOURS)]


def _draw_boxes(thumb: Image.Image, shot: SampleShot, frame: int) -> None:
    draw = ImageDraw.Draw(thumb)
    font = label_font()
    w, h = thumb.size
    for subject in shot.subjects:
        for box in subject.boxes:
            if box.clip_frame != frame:
                continue
            x0, y0, x1, y1 = box.box
            colour = box_colour(subject.id)
            draw.rectangle((x0 * w, y0 * h, x1 * w, y1 * h), outline=colour, width=2)
            # the id on a tab of the box's colour: readable on any picture
            left, top, right, bottom = draw.textbbox((0, 0), subject.id, font=font)
            tab = (x0 * w, y0 * h, x0 * w + right - left + 6, y0 * h + bottom - top + 5)
            draw.rectangle(tab, fill=colour)
            draw.text((x0 * w + 3 - left, y0 * h + 2 - top), subject.id, font=font, fill="white")


def _ref_crops(member: Member | None, record: Sample, height: int) -> list[Image.Image | None]:
    """The sample's reference crops cut from its ``refs.jpg`` strip, scaled to ``height``;
    all None when the strip is missing or not a sane image (a report shows, never fails)."""
    crops: list[Image.Image | None] = [None] * len(record.references)
    if member is None or not record.references:
        return crops
    try:
        with Image.open(io.BytesIO(member.read())) as image:
            if image.width * image.height > _MAX_REF_PIXELS:  # checked before decoding
                return crops
            strip = image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError, ShardFormatError):
        return crops
    for n, ref in enumerate(record.references):
        x0, y0, x1, y1 = ref.strip_box
        if 0 <= x0 < x1 <= strip.width and 0 <= y0 < y1 <= strip.height:
            crop = strip.crop((x0, y0, x1, y1))
            crops[n] = crop.resize((max(1, round(crop.width * height / crop.height)), height))
    return crops


def draw_strip(sample: ShardSample, record: Sample) -> tuple[Image.Image, str | None]:
    """A sample's tiles side by side, and what went wrong decoding its clip (or None)."""
    clip = record.clip
    size = scaled_size(clip.width, clip.height, target_width=THUMB_WIDTH)
    shots = record.shots
    wanted = [shown_frame(s) for s in shots]
    problem = None
    try:
        frames = clip_frames(sample.entries.get("mp4"), size, wanted)
    except MediaError as exc:  # a report is for looking: show the problem, do not fail
        frames, problem = {}, f"the clip does not decode ({exc})"
    tiles: list[Tile] = []
    for n, (shot, frame) in enumerate(zip(shots, wanted, strict=True)):
        thumb = frames.get(frame)
        if thumb is not None:
            _draw_boxes(thumb, shot, frame)
        tiles.append(Tile(thumb, [f"shot {n + 1} ({shot.transition_in}) f{frame}"], size))
    crops = _ref_crops(sample.entries.get(REFS_MEMBER), record, size[1])
    for n, (ref, crop) in enumerate(zip(record.references, crops, strict=True)):
        if crop is not None:
            tiles.append(Tile.of(crop, [f"ref {n} {ref.subject}"], size))
    strip = Image.new(
        "RGB", (_PAD + row_width(tiles, _TILES), size[1] + _LINE + 2 * _PAD), _BACKGROUND
    )
    draw_tiles(strip, tiles, (_PAD, _PAD), _TILES, label_font())
    return strip, problem


def _sheet_sample(
    sample: ShardSample, folder: Path, subdir: str, limits: ReaderLimits
) -> SheetSample:
    record = valid_sample(sample, limits)
    strip, problem = draw_strip(sample, record)
    name = f"{subdir}/{sample.key}.png"
    strip.save(folder / f"{sample.key}.png", format="PNG", optimize=True)
    return SheetSample(
        key=sample.key,
        tracks=list(record.tracks),
        source_file=record.source.file_name,
        duration_seconds=record.duration_seconds,
        file=name,
        global_caption=record.global_caption,
        focus_subjects=list(record.focus_subjects),
        shots=[
            SheetShot(
                number=n + 1,
                transition_in=s.transition_in,
                start_seconds=s.clip_start_seconds,
                end_seconds=s.clip_end_seconds,
                subjects=[x.id for x in s.subjects],
                caption=s.caption,
            )
            for n, s in enumerate(record.shots)
        ],
        references=[
            f"ref {n}: {r.subject} from film shot {r.source_shot}"
            + (f", pose delta {r.pose_delta:.0f} deg" if r.pose_delta >= 0 else "")
            + (" (fallback: from this sample)" if r.fallback else "")
            for n, r in enumerate(record.references)
        ],
        problem=problem,
    )


def draw_sheets(
    shards_dir: Path,
    shard_of: dict[str, str],
    keys: list[str],
    out_dir: Path,
    subdir: str,
    limits: ReaderLimits = DEFAULT_LIMITS,
) -> list[SheetSample]:
    """Strips of the samples ``keys`` (``shard_of``: key -> shard name) under out_dir/subdir."""
    folder = out_dir / subdir
    folder.mkdir(parents=True, exist_ok=True)
    by_shard: dict[str, set[str]] = defaultdict(set)
    for key in keys:
        by_shard[shard_of[key]].add(key)
    found: dict[str, SheetSample] = {}
    for shard, wanted in sorted(by_shard.items()):
        # only the json is loaded: the clip is streamed to the decoder, refs read one by one
        for sample in iter_samples(shards_dir / shard, limits, load=("json",)):
            if sample.key in wanted:
                found[sample.key] = _sheet_sample(sample, folder, subdir, limits)
                wanted.discard(sample.key)
                if not wanted:  # the rest holds none (write_report's collect checked it all)
                    break
    return [found[k] for k in keys if k in found]
