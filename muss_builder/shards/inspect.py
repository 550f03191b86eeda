"""Look inside one shard: a text summary of its samples and a contact sheet of their shots."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw
from rich import box
from rich.console import Console
from rich.table import Table

from muss_builder.media.contact_sheet import (
    Font,
    Tile,
    TileStyle,
    clip_frames,
    draw_tiles,
    label_font,
    row_width,
)
from muss_builder.media.decode import scaled_size
from muss_builder.media.tools import MediaError
from muss_builder.shards.reader import (
    DEFAULT_LIMITS,
    ReaderLimits,
    ShardFormatError,
    ShardSample,
    iter_samples,
    load_sample_json,
    raise_problems,
)
from muss_builder.shards.schemas import schema_errors
from muss_builder.shards.untrusted import printable

# Contact sheet geometry (pixels).
THUMB_WIDTH = 160
_PAD = 6
_LABEL_WIDTH = 190
_TEXT_LINE = 15
_SHOT_TEXT_LINES = 3
_TITLE_HEIGHT = 2 * _TEXT_LINE + 2 * _PAD
_BACKGROUND = (24, 24, 24)
_TEXT = (235, 235, 235)
_DIM = (150, 150, 150)
_PLACEHOLDER = (70, 70, 70)
# the shot's tile: a thumbnail, or "no frame"; under it the clip seconds stand out
_TILES = TileStyle(
    pad=_PAD,
    line_height=_TEXT_LINE,
    text=_TEXT,
    dim=_DIM,
    placeholder=_PLACEHOLDER,
    bright_line=1,
    placeholder_text="no frame",
)


# ---------------------------------------------------------------------------- summary


def _number(value: Any) -> int | float | None:
    # a shard's json may hold anything: only real numbers are summed and formatted
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text(value: Any, limit: int = 60) -> str | None:
    return None if value is None else printable(value, limit)


def _sample_summary(sample: ShardSample, limits: ReaderLimits) -> dict[str, Any]:
    try:
        return _facts(sample, load_sample_json(sample, limits))
    except (AttributeError, KeyError, TypeError) as exc:  # a document of the wrong shape
        raise ShardFormatError(
            sample.shard, sample.member_name("json"), f"metadata of an unexpected shape ({exc!r})"
        ) from exc


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _window(value: Any) -> str:
    """'scene', 'cross_scene' or 'subject S1' (the window's kind, and its subject)."""
    if not isinstance(value, dict):
        return ""
    kind, subject = _text(value.get("kind"), 20) or "", _text(value.get("subject"), 20) or ""
    return f"{kind} {subject}".strip()


def _facts(sample: ShardSample, doc: dict[str, Any]) -> dict[str, Any]:
    # .get throughout: inspect is for looking at odd shards too, not only valid ones; every
    # value is a number or escaped text, so nothing from the shard reaches the terminal raw
    shots = doc.get("shots") or []
    clip = doc.get("clip") or {}
    boundaries = [_number(s.get("clip_start_frame")) for s in shots]
    if shots:
        boundaries.append(_number(shots[-1].get("clip_end_frame")))
    return {
        "key": sample.key,
        "tracks": [_text(t) or "" for t in _list(doc.get("tracks"))],
        "window": _window(doc.get("window")),
        "n_shots": _number(doc.get("n_shots", len(shots))),
        "duration_seconds": _number(doc.get("duration_seconds")),
        "clip": {k: _number(clip.get(k)) for k in ("n_frames", "fps", "width", "height")},
        "shot_boundaries": boundaries,
        "global_caption": bool(doc.get("global_caption")),
        "shot_captions": sum(bool(s.get("caption")) for s in shots),
        "subjects": [printable(x, 40) for x in doc.get("subjects") or []],
        "n_refs": len(_list(doc.get("references"))),  # crops in its refs.jpg strip
        "members": sorted(sample.entries),
        "bytes": sum(m.size for m in sample.entries.values()),
    }


def summarize_shard(
    shard_path: str | Path, limits: ReaderLimits = DEFAULT_LIMITS
) -> dict[str, Any]:
    """Per-sample facts and totals of one shard. Only the ``.json`` members are read, so a
    shard of any size is summarized in little memory. ShardFormatError lists every problem."""
    shard = Path(shard_path)
    problems: list[ShardFormatError] = []
    samples = []
    for sample in iter_samples(shard, limits, load=("json",), on_problem=problems.append):
        try:
            samples.append(_sample_summary(sample, limits))
        except ShardFormatError as exc:
            problems.append(exc)
    raise_problems(problems)
    n_shots = sum(s["n_shots"] or 0 for s in samples)
    return {
        "shard": str(shard),
        "samples": samples,
        "totals": {
            "samples": len(samples),
            "shots": n_shots,
            "mean_shots_per_sample": round(n_shots / len(samples), 3) if samples else 0.0,
            "duration_seconds": round(sum(s["duration_seconds"] or 0 for s in samples), 3),
            "bytes": shard.stat().st_size,
        },
    }


def _fmt_clip(clip: dict[str, Any]) -> str:
    n, fps, w, h = (clip[k] for k in ("n_frames", "fps", "width", "height"))
    if None in (n, fps, w, h):
        return "?"
    return f"{n} f @ {fps:g} fps, {w}x{h}"


def _summary_table(summary: dict[str, Any]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    longest_key = max((len(s["key"]) for s in summary["samples"]), default=3)
    table.add_column("key", no_wrap=True, min_width=longest_key)
    table.add_column("tracks")
    table.add_column("window")
    table.add_column("shots", justify="right")
    table.add_column("dur s", justify="right")
    table.add_column("clip", no_wrap=True)
    table.add_column("shot boundaries (clip frames)", overflow="fold")
    table.add_column("captions G/shots")
    table.add_column("subjects", overflow="fold")
    table.add_column("refs", justify="right")
    for s in summary["samples"]:
        captions = f"{'yes' if s['global_caption'] else 'no'} / {s['shot_captions']}/{s['n_shots']}"
        table.add_row(
            s["key"],
            "+".join(s["tracks"]) or "-",
            s["window"] or "-",
            str(s["n_shots"]),
            f"{s['duration_seconds'] or 0:.2f}",
            _fmt_clip(s["clip"]),
            " ".join(str(b) for b in s["shot_boundaries"]),
            captions,
            ", ".join(s["subjects"]) or "-",
            str(s["n_refs"]),
        )
    return table


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as plain text: a header, one table row per sample, a totals line."""
    t = summary["totals"]
    buffer = io.StringIO()
    # A wide, colourless console: the text goes to terminals, files and test assertions alike.
    # markup and emoji off: a "[/x]" or ":smile:" in a shard's json is text, not an instruction
    console = Console(
        file=buffer,
        width=160,
        color_system=None,
        force_terminal=False,
        highlight=False,
        markup=False,
        emoji=False,
    )
    console.print(f"shard {printable(summary['shard'])}")
    console.print(_summary_table(summary))
    console.print(
        f"{t['samples']} samples, {t['shots']} shots "
        f"({t['mean_shots_per_sample']:.2f} per sample), "
        f"{t['duration_seconds']:.2f} s of source, {t['bytes']:,} bytes"
    )
    return buffer.getvalue()


# ---------------------------------------------------------------------------- contact sheet


def _middle_frames(shots: list[dict[str, Any]]) -> list[int]:
    return [(s["clip_start_frame"] + s["clip_end_frame"]) // 2 for s in shots]


def _shot_lines(shot: dict[str, Any], number: int) -> list[str]:
    return [
        f"#{number} {shot.get('transition_in', '')}",
        # ASCII dash: Pillow's default font has no en dash
        f"{shot['clip_start_seconds']:.2f} - {shot['clip_end_seconds']:.2f} s",
        f"source frame {shot['source_start_frame']}",
    ]


class _Row:
    """One sample's row: its label, and per shot a tile (the thumbnail or a placeholder)."""

    def __init__(self, key: str, label: list[str], tiles: list[Tile], thumb_height: int) -> None:
        self.key, self.label, self.tiles, self.thumb_height = key, label, tiles, thumb_height

    @property
    def height(self) -> int:
        text = max(len(self.label), _SHOT_TEXT_LINES) * _TEXT_LINE
        return max(self.thumb_height + _SHOT_TEXT_LINES * _TEXT_LINE, text) + 2 * _PAD


def _sample_row(sample: ShardSample, limits: ReaderLimits) -> _Row:
    doc = load_sample_json(sample, limits)
    errors = schema_errors("sample", doc)
    if errors:  # the sheet reads shots and clip facts: refuse clearly rather than crash
        raise ShardFormatError(
            sample.shard, sample.member_name("json"), f"not a valid sample document ({errors[0]})"
        )
    shots = doc["shots"]
    clip = doc["clip"]
    size = scaled_size(clip["width"], clip["height"], target_width=THUMB_WIDTH)
    label = [
        sample.key,
        f"{'+'.join(doc['tracks'])} ({_window(doc.get('window'))}), {len(shots)} shots",
        f"{clip['n_frames']} f @ {clip['fps']:g} fps",
        f"{doc['duration_seconds']:.2f} s",
    ]
    wanted = _middle_frames(shots)
    try:
        frames = clip_frames(sample.entries.get("mp4"), size, wanted)
    except MediaError:  # a sheet is for looking: show the problem instead of failing
        frames = {}
        label.append("mp4 does not decode")
    tiles = [
        Tile(frames.get(i), _shot_lines(s, n), size)
        for n, (i, s) in enumerate(zip(wanted, shots, strict=True))
    ]
    return _Row(sample.key, label, tiles, size[1])


def _draw_row(
    sheet: Image.Image, draw: ImageDraw.ImageDraw, row: _Row, top: int, font: Font
) -> None:
    for i, line in enumerate(row.label):
        draw.text(
            (_PAD, top + _PAD + i * _TEXT_LINE), line, font=font, fill=_TEXT if i == 0 else _DIM
        )
    draw_tiles(sheet, row.tiles, (_LABEL_WIDTH, top + _PAD), _TILES, font)


def write_contact_sheet(
    shard_path: str | Path,
    png_path: str | Path,
    max_samples: int = 12,
    limits: ReaderLimits = DEFAULT_LIMITS,
) -> Path:
    """A PNG with one row per sample (up to ``max_samples``) and the middle frame of each shot."""
    shard, out = Path(shard_path), Path(png_path)
    rows: list[_Row] = []
    total = 0
    for sample in iter_samples(shard, limits, load=("json",)):
        total += 1
        if len(rows) < max_samples:
            rows.append(_sample_row(sample, limits))
    thumbs_width = max((row_width(r.tiles, _TILES) for r in rows), default=0)
    width = max(_LABEL_WIDTH + thumbs_width + _PAD, 480)
    height = _TITLE_HEIGHT + sum(r.height for r in rows)
    sheet = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    font = label_font()
    draw.text((_PAD, _PAD), shard.name, font=font, fill=_TEXT)
    draw.text(
        (_PAD, _PAD + _TEXT_LINE),
        f"{len(rows)} of {total} samples; one middle frame per shot, "
        "clip seconds and first source frame",
        font=font,
        fill=_DIM,
    )
    top = _TITLE_HEIGHT
    for row in rows:
        draw.line((0, top, width, top), fill=_PLACEHOLDER)
        _draw_row(sheet, draw, row, top, font)
        top += row.height
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out, format="PNG")
    return out
