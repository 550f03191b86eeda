"""Synthetic films with exact ground truth, made by ffmpeg's lavfi sources.

Used by the tests and benchmarks: every segment is a visually distinct source trimmed to an
exact frame count, joined by hard cuts, so the first frame of each shot is known exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from muss_builder.media.commands import H264Options, quiet_ffmpeg
from muss_builder.media.decode import FrameReader
from muss_builder.media.tools import run

# Distinct looks that a content detector must separate. Each has some motion inside the shot
# (a moving box or an animated pattern) so that a shot is not a frozen frame.
_COLORS = [
    "0xC03030",
    "0x30A040",
    "0x3050C0",
    "0xD0C030",
    "0x9030B0",
    "0x30B0B0",
    "0xE07020",
    "0x707070",
    "0xF0F0F0",
    "0x204020",
    "0x602010",
    "0x101060",
]


def segment_source(i: int, width: int, height: int, fps: float) -> str:
    """lavfi graph for segment ``i``: alternating solid colours with a moving box and patterns."""
    size = f"{width}x{height}"
    kind = i % 4
    if kind == 3:
        return f"testsrc2=s={size}:r={fps},hue=h={(i * 47) % 360}"
    if kind == 1 and i % 8 == 1:
        return f"smptebars=s={size}:r={fps}"
    color = _COLORS[i % len(_COLORS)]
    box = max(8, width // 8)
    return (
        f"color=c={color}:s={size}:r={fps},"
        f"drawbox=x='mod(t*{width // 3}+{i * 37},{width - box})':y={height // 3}:"
        f"w={box}:h={box}:color=white@0.9:t=fill"
    )


def _segments(
    frames: Sequence[int], width: int, height: int, fps: float, *, label: str, extra: str = ""
) -> tuple[list[str], list[str]]:
    """ffmpeg arguments with one lavfi input per segment, and filter chains that trim
    segment ``i`` to exactly ``frames[i]`` frames as stream ``[{label}{i}]``."""
    args = quiet_ffmpeg()
    for i, _ in enumerate(frames):
        args += ["-f", "lavfi", "-i", segment_source(i, width, height, fps)]
    chains = [
        f"[{i}:v]trim=end_frame={n},setpts=PTS-STARTPTS,format=yuv420p{extra}[{label}{i}]"
        for i, n in enumerate(frames)
    ]
    return args, chains


@dataclass(frozen=True)
class SyntheticFilm:
    path: Path
    fps: float
    segment_frames: tuple[int, ...]
    width: int
    height: int

    @property
    def cut_frames(self) -> list[int]:
        """First frame of every shot after the first."""
        cuts, total = [], 0
        for n in self.segment_frames[:-1]:
            total += n
            cuts.append(total)
        return cuts

    @property
    def n_frames(self) -> int:
        return sum(self.segment_frames)


def make_film(
    path: str | Path,
    segment_frames: Sequence[int],
    *,
    fps: float = 24.0,
    width: int = 320,
    height: int = 180,
    extra_output_args: Sequence[str] = (),
    audio: bool = False,
    crf: int = 23,
    preset: str = "ultrafast",
    sar: str | None = None,
) -> SyntheticFilm:
    """Write an H.264 film whose shots have exactly ``segment_frames`` frames each;
    ``sar`` ("32:27") flags its pixels as non-square (an anamorphic film)."""
    path = Path(path)
    args, chains = _segments(segment_frames, width, height, fps, label="v")
    inputs = "".join(f"[v{i}]" for i in range(len(segment_frames)))
    aspect = f",setsar={sar.replace(':', '/')}" if sar else ""
    graph = ";".join(chains) + f";{inputs}concat=n={len(segment_frames)}:v=1:a=0{aspect}[out]"
    if audio:
        total = sum(segment_frames) / fps
        args += ["-f", "lavfi", "-t", f"{total:.3f}", "-i", "sine=frequency=440:sample_rate=16000"]
    args += ["-filter_complex", graph, "-map", "[out]"]
    if audio:
        args += ["-map", f"{len(segment_frames)}:a", "-c:a", "aac"]
    args += [
        *H264Options(preset=preset, crf=crf).codec_args(),
        "-r",
        str(fps),
        *extra_output_args,
        str(path),
    ]
    run(args, what=f"make synthetic film {path.name}", timeout=1800)
    return SyntheticFilm(path, fps, tuple(segment_frames), width, height)


def cut_frames_in(path: str | Path, size: tuple[int, int], threshold: float = 25.0) -> list[int]:
    """Frames whose mean absolute difference to the previous frame is large: the hard cuts
    of a synthetic film (its segments differ far more than frames inside a segment)."""
    cuts, previous = [], None
    for frame in FrameReader(path, size, pix_fmt="rgb24"):
        image = frame.image.astype(np.float32)
        if previous is not None and np.abs(image - previous).mean() > threshold:
            cuts.append(frame.index)
        previous = image
    return cuts


XFADE_OF = {
    "dissolve": "fade",
    "fade_black": "fadeblack",
    "fade_white": "fadewhite",
    "wipe": "wipeleft",
}


@dataclass(frozen=True)
class TransitionFilm:
    path: Path
    fps: float
    n_frames: int
    # (kind, first frame, last frame): cuts have first == last == first frame of the new shot
    transitions: tuple[tuple[str, int, int], ...]


def make_transition_film(
    path: str | Path,
    segments: Sequence[tuple[int, str, int]],
    *,
    fps: float = 24.0,
    width: int = 320,
    height: int = 180,
    flashes: Sequence[int] = (),
) -> TransitionFilm:
    """A film of segments joined by cuts or xfade transitions, with exact ground truth.

    ``segments``: (frames, kind joining it to the previous segment, transition frames); the
    first segment's kind is ignored. ``flashes``: output frames made white-hot for 2 frames
    (hard negatives: not cuts).
    """
    path = Path(path)
    # xfade wants both inputs on one time base
    args, chains = _segments(
        [n for n, _, _ in segments], width, height, fps, label="s", extra=f",settb=1/{int(fps)}"
    )
    current, length = "[s0]", segments[0][0]
    truth: list[tuple[str, int, int]] = []
    for i, (n, kind, duration) in enumerate(segments[1:], start=1):
        out = f"[j{i}]"
        if kind == "cut":
            # concat changes the time base, which xfade refuses: set it back
            chains.append(f"{current}[s{i}]concat=n=2:v=1:a=0,settb=1/{int(fps)}{out}")
            truth.append(("cut", length, length))
            length += n
        else:
            offset = (length - duration) / fps
            chains.append(
                f"{current}[s{i}]xfade=transition={XFADE_OF[kind]}:"
                f"duration={duration / fps:.6f}:offset={offset:.6f}{out}"
            )
            truth.append((kind, length - duration, length - 1))
            length += n - duration
        current = out
    if flashes:
        expr = "+".join(f"between(n,{f},{f + 1})" for f in flashes)
        chains.append(f"{current}eq=brightness=0.7:enable='{expr}'[final]")
        current = "[final]"
    args += [
        "-filter_complex",
        ";".join(chains),
        "-map",
        current,
        *H264Options(preset="ultrafast", crf=20).codec_args(),
        "-r",
        str(fps),
        str(path),
    ]
    run(args, what=f"make transition film {path.name}", timeout=600)
    return TransitionFilm(path, fps, length, tuple(truth))


def make_audio_only(path: str | Path, seconds: float = 2.0) -> Path:
    """An AAC file with no video stream: a film that is not one."""
    path = Path(path)
    run(
        quiet_ffmpeg("-f", "lavfi", "-i", f"sine=d={seconds:g}", "-c:a", "aac", str(path)),
        what=f"make audio-only {path.name}",
    )
    return path


def ffmpeg_to(path: str | Path, *args: str) -> Path:
    """Run ``ffmpeg -y ARGS PATH`` (quiet): remuxes and re-encodes that make odd films."""
    path = Path(path)
    run(quiet_ffmpeg(*args, str(path)), what=f"make {path.name}", timeout=600)
    return path


def make_concatenated_ts(path: str | Path, parts: Sequence[Path]) -> Path:
    """MPEG-TS files joined byte for byte (as ``cat a.ts b.ts``): timestamps restart."""
    path = Path(path)
    with path.open("wb") as out:
        for part in parts:
            tmp = ffmpeg_to(
                path.with_name(f"{path.stem}.{part.stem}.part.ts"),
                "-i",
                str(part),
                "-c",
                "copy",
                "-f",
                "mpegts",
            )
            out.write(tmp.read_bytes())
            tmp.unlink()
    return path


def make_interlaced(path: str | Path, seconds: float = 2.0, fps: int = 25) -> Path:
    """Interlaced H.264 (top field first) of a fast-moving bar: each frame weaves two fields
    sampled 1 / (2 fps) apart, so the bar's edges comb unless the decode deinterlaces."""
    rate = 2 * fps
    source = (
        f"color=c=0x202020:s=320x240:r={rate}[bg];color=c=white:s=40x120:r={rate}[bar];"
        "[bg][bar]overlay=x='mod(t*600,280)':y=60:eval=frame[out0]"
    )
    return ffmpeg_to(
        path,
        *("-f", "lavfi", "-t", f"{seconds:g}", "-i", source),
        *("-vf", "interlace=scan=tff:lowpass=0"),
        *H264Options(preset="ultrafast", crf=18).codec_args(),
        *("-flags", "+ilme+ildct", "-field_order", "tt"),
    )
