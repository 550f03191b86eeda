"""Keyframes: a few full-quality frames per shot for the face and object models.

Keyframes sit evenly inside the clean part of a shot (after its incoming transition, before
the next one's), so a model never sees two shots blended. They are decoded at display
orientation, shrunk so the long side is at most ``max_side`` (face detectors work at 640 px
anyway), in chunks: one seek per run of nearby keyframes, frames kept by exact timestamp,
the same way the parallel shot detection reads a range.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from muss_builder.media.clips import EXACT_SCALE_FLAGS
from muss_builder.media.decode import FrameReader, scaled_size
from muss_builder.media.probe import FilmProbe, decode_options
from muss_builder.media.tools import MediaError
from muss_builder.shots.segment import Shot, clean_span

_MATCH_TOLERANCE = 1e-4  # seconds: the decoded frame's pts equals the analysis pass's


@dataclass(frozen=True)
class Keyframe:
    shot: int  # film shot index
    frame: int  # source frame index (the analysis decode's numbering)
    image: np.ndarray  # HxWx3 uint8 BGR, display orientation


def keyframe_frames(shots: list[Shot], per_shot: int) -> dict[int, list[int]]:
    """Source frames of each shot's keyframes, evenly spaced inside its clean span."""
    chosen: dict[int, list[int]] = {}
    for i, shot in enumerate(shots):
        start, end = clean_span(shots, i)
        n = min(per_shot, end - start)
        chosen[shot.index] = sorted({start + int((k + 0.5) * (end - start) / n) for k in range(n)})
    return chosen


def keyframe_size(probe: FilmProbe, max_side: int) -> tuple[int, int]:
    scale = min(1.0, max_side / max(probe.width, probe.height))
    return scaled_size(probe.width, probe.height, target_width=round(probe.width * scale))


def read_keyframes(
    path: str,
    probe: FilmProbe,
    frame_pts: np.ndarray,
    chosen: dict[int, list[int]],
    max_side: int = 1280,
    seek_gap_seconds: float = 20.0,
    max_per_decode: int = 400,
) -> Iterator[Keyframe]:
    """Decode the chosen frames in film order; a gap longer than ``seek_gap_seconds`` between
    two keyframes starts a new decode with an input seek rather than decoding through it.
    ffmpeg's ``select`` passes on only the chosen frames (at most ``max_per_decode`` per
    decode, which bounds the select expression), so the frames between are decoded but
    never scaled or piped. Each decode costs an ffmpeg start, a seek and the GOP before its
    first frame again: on a film of short shots at 48 a decode (the bound a flat ``select``
    sum allowed) those were most of the pass (the demo's music video: 1,773 frames in 5.0 s,
    1.7 s at 400; a 10-minute 1080p film 69 -> 54 s; benchmarks/keyframe_decode.py), while
    400 terms cost a 1080p decode nothing measurable."""
    wanted = sorted((frame, shot) for shot, frames in chosen.items() for frame in frames)
    if not wanted:
        return
    size = keyframe_size(probe, max_side)
    origin = float(frame_pts[0])
    chunks: list[list[tuple[int, int]]] = [[wanted[0]]]
    for item in wanted[1:]:
        gap = float(frame_pts[item[0]] - frame_pts[chunks[-1][-1][0]])
        if gap > seek_gap_seconds or len(chunks[-1]) >= max_per_decode:
            chunks.append([item])
        else:
            chunks[-1].append(item)
    for chunk in chunks:
        seek = float(frame_pts[chunk[0][0]]) - origin - 1.0  # a second early, then by pts
        reader = FrameReader(
            path,
            size,
            seek_seconds=seek if seek > 0 else None,
            only_times=[float(frame_pts[frame]) for frame, _ in chunk],
            # ffmpeg stops (and flushes) after the last chosen frame; without it, the tail of
            # that frame would wait in ffmpeg's output buffer while it decodes to the end
            max_frames=len(chunk),
            **decode_options(probe),
            # the same pixels on every CPU: faces, embeddings and reference crops follow
            scale_flags=EXACT_SCALE_FLAGS,
        )
        pending = list(chunk)
        for decoded in reader:
            target_frame, shot = pending[0]
            target_pts = float(frame_pts[target_frame])
            if decoded.pts < target_pts - _MATCH_TOLERANCE:
                continue
            if abs(decoded.pts - target_pts) > _MATCH_TOLERANCE:
                raise MediaError(
                    f"keyframe {target_frame} ({target_pts:.6f}s) not found: decoder gave "
                    f"{decoded.pts:.6f}s"
                )
            yield Keyframe(shot, target_frame, decoded.image.copy())
            pending.pop(0)
            if not pending:
                break
        if pending:
            raise MediaError(f"keyframe decode ended before frame {pending[0][0]}")
