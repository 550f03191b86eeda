"""Container and stream facts of a film, with a readable reason when it cannot be read.

Sizes are display sizes: rotation applied and non-square pixels (sample aspect ratio)
unsqueezed by widening, so every stage scales frames to the picture a viewer sees. Times are
the video stream's own: its duration runs from its first timestamp to the end of its last
packet, whatever the container says about itself or its other streams.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from fractions import Fraction
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from muss_builder.media.commands import interlace_detect, probe_streams
from muss_builder.media.decode import even
from muss_builder.media.gpu import choose_decoder
from muss_builder.media.hashing import film_id_of
from muss_builder.media.timeline import stream_timing
from muss_builder.media.tools import MediaError, run


class FilmProbe(BaseModel):
    """What ffprobe says about a film's first video stream (display orientation applied)."""

    path: str
    file_name: str
    size_bytes: int
    film_id: str
    container: str
    duration_seconds: float
    start_time_seconds: float
    video_codec: str
    pix_fmt: str | None
    coded_width: int
    coded_height: int
    rotation: int  # degrees, as the display matrix says; 0, 90, 180 or 270
    sample_aspect_ratio: str = "1:1"  # of the coded pixels, as "num:den"
    width: int  # display width: sample aspect ratio and rotation applied
    height: int
    fps: float  # average frame rate; see `variable_frame_rate`
    fps_fraction: str  # exact average rate as "num/den"
    variable_frame_rate: bool
    frame_count_estimate: int  # from the container; the decode pass counts the real number
    has_audio: bool
    audio_codec: str | None
    field_order: str = "unknown"  # ffprobe's: progressive, tt, bb, tb, bt or unknown
    # what ffmpeg's idet saw when field_order is unknown (None: not run)
    idet_interlaced: bool | None = None
    # whether every decode of this film deinterlaces (media.deinterlace, field_order, idet)
    deinterlace: bool = False
    # "stream": the film's own timestamps; "rebuilt": they restart or are missing, so every
    # decode numbers frames from the start and times them frame / fps (no seeking)
    timestamps: Literal["stream", "rebuilt"] = "stream"
    # media.decoder, carried to every decode of the film; each node decides for itself whether
    # NVDEC serves it (media/gpu.py). Not a fact of the film: left out of the film record
    decoder: Literal["auto", "cpu", "nvdec"] = Field("cpu", exclude=True)

    @property
    def interlaced(self) -> bool:
        return self.field_order in INTERLACED_FIELD_ORDERS


INTERLACED_FIELD_ORDERS = frozenset({"tt", "bb", "tb", "bt"})


def _fraction(text: str | None) -> Fraction | None:
    if not text or text in {"0/0", "N/A"}:
        return None
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None
    return value if value > 0 else None


def _rotation(stream: dict) -> int:
    for side in stream.get("side_data_list", []) or []:
        if "rotation" in side:
            return round(float(side["rotation"])) % 360
    tag = (stream.get("tags") or {}).get("rotate")
    return int(tag) % 360 if tag and tag.lstrip("-").isdigit() else 0


def _sample_aspect(stream: dict) -> Fraction:
    """The coded pixels' aspect (width / height of one pixel); 1 when absent or nonsense."""
    text = str(stream.get("sample_aspect_ratio") or "").replace(":", "/")
    value = _fraction(text)
    # a SAR beyond 4:1 either way is a broken header, not a real lens
    return value if value is not None and Fraction(1, 4) <= value <= 4 else Fraction(1)


_IDET = re.compile(r"Multi frame detection:\s*TFF:\s*(\d+)\s*BFF:\s*(\d+)\s*Progressive:\s*(\d+)")
_IDET_FRAMES = 200


def idet_interlaced(path: Path, middle: float) -> bool:
    """ffmpeg's idet over ``_IDET_FRAMES`` frames from ``middle`` (seconds from the start):
    interlaced when clearly more frames look interlaced than progressive. Used only when the
    stream does not say (field_order unknown): the film's middle, past titles and black."""
    try:
        proc = subprocess.run(
            interlace_detect(path, middle, _IDET_FRAMES),
            capture_output=True,
            timeout=120,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    # the last verdict: ffmpeg sets a -filter_complex graph up once before the first frame
    # and again with it, and idet reports (all zeros) when the first one is torn down
    verdicts = _IDET.findall(proc.stderr.decode("utf-8", "replace"))
    if not verdicts:
        return False
    tff, bff, progressive = (int(g) for g in verdicts[-1])
    # synthetic or static footage gives a few interlaced-looking frames: ask for a clear call
    return tff + bff >= 10 and tff + bff > 2 * progressive


def check_readable_file(path: Path) -> None:
    """Refuse what is not a regular, non-empty, readable file, before ffprobe sees it."""
    if not path.exists():
        raise MediaError(f"file not found: {path}")
    if path.is_dir():
        raise MediaError(f"is a directory, not a film: {path}")
    if not path.is_file():
        raise MediaError(f"not a regular file: {path}")
    if path.stat().st_size == 0:
        raise MediaError(f"empty file (0 bytes): {path}")
    if not os.access(path, os.R_OK):
        raise MediaError(f"file is not readable: {path}")


def _streams(path: Path) -> tuple[dict, dict, list[dict]]:
    """ffprobe's container facts, first video stream and audio streams of ``path``."""
    out = run(
        probe_streams(path),
        what="cannot probe (not a media file or corrupt)",
        timeout=120,
    )
    info = json.loads(out or b"{}")
    streams = info.get("streams") or []
    video = [
        s
        for s in streams
        if s.get("codec_type") == "video"
        and not (s.get("disposition") or {}).get("attached_pic")  # cover art is not a film
    ]
    audio = [s for s in streams if s.get("codec_type") == "audio"]
    if not video:
        kind = "audio-only file" if audio else "no streams"
        raise MediaError(f"no video stream ({kind})")
    return info.get("format") or {}, video[0], audio


def probe_film(
    path: str | Path,
    film_id: str | None = None,
    deinterlace: Literal["auto", "on", "off"] = "auto",
    decoder: Literal["auto", "cpu", "nvdec"] = "cpu",
) -> FilmProbe:
    """Probe ``path``; raise MediaError with a readable reason if it is not a usable film.

    ``deinterlace`` is ``media.deinterlace``: auto deinterlaces when the stream says its
    fields are interlaced; ``decoder`` is ``media.decoder`` (see ``decode_options``)."""
    path = Path(path)
    check_readable_file(path)
    fmt, v, audio = _streams(path)
    avg = _fraction(v.get("avg_frame_rate"))
    real = _fraction(v.get("r_frame_rate"))
    rate = avg or real
    if rate is None:
        raise MediaError("video stream has no frame rate")
    timing = stream_timing(path, v, fmt, rate)
    start, duration, untimed = timing.start, timing.duration, timing.untimed
    if timing.rate is not None:  # the container's average counts untimed frames wrong
        rate = avg = real = timing.rate
    if duration <= 0:
        raise MediaError("video stream has no duration")
    coded_w, coded_h = int(v.get("width") or 0), int(v.get("height") or 0)
    if coded_w <= 0 or coded_h <= 0:
        raise MediaError("video stream has no frame size")
    rotation = _rotation(v)
    sar = _sample_aspect(v)
    # unsqueeze by widening (ffmpeg's own display size): no source row is lost
    shown_w = even(coded_w * sar) if sar != 1 else coded_w
    width, height = (coded_h, shown_w) if rotation in (90, 270) else (shown_w, coded_h)
    field_order = str(v.get("field_order") or "unknown")
    idet = None  # the stream says (or nobody asked): no pixels looked at
    if deinterlace == "auto" and field_order == "unknown":
        idet = idet_interlaced(path, duration / 2)
    nb_frames = v.get("nb_frames")
    estimate = int(nb_frames) if nb_frames and str(nb_frames).isdigit() else round(duration * rate)
    return FilmProbe(
        path=str(path.resolve()),
        file_name=path.name,
        size_bytes=path.stat().st_size,
        film_id=film_id or film_id_of(path),
        container=str(fmt.get("format_name", "unknown")),
        duration_seconds=duration,
        start_time_seconds=start,
        video_codec=str(v.get("codec_name", "unknown")),
        pix_fmt=v.get("pix_fmt"),
        coded_width=coded_w,
        coded_height=coded_h,
        rotation=rotation,
        sample_aspect_ratio=f"{sar.numerator}:{sar.denominator}",
        width=width,
        height=height,
        fps=float(rate),
        fps_fraction=f"{rate.numerator}/{rate.denominator}",
        # ffprobe's r_frame_rate is the base rate; a mean rate that differs means timestamps vary
        variable_frame_rate=bool(avg and real and abs(float(avg) - float(real)) > 0.01),
        frame_count_estimate=estimate,
        has_audio=bool(audio),
        audio_codec=str(audio[0].get("codec_name")) if audio else None,
        field_order=field_order,
        timestamps="rebuilt" if untimed else "stream",
        deinterlace=deinterlace == "on"
        or (deinterlace == "auto" and field_order in INTERLACED_FIELD_ORDERS)
        or bool(idet),
        idet_interlaced=idet,
        decoder=decoder,
    )


def decode_options(probe: FilmProbe) -> dict:
    """FrameReader options that every stage decoding ``probe``'s film must share, so shots,
    keyframes and clips see the same frames at the same times."""
    rebuilt = probe.timestamps == "rebuilt"
    return {
        "deinterlace": probe.deinterlace,
        "retime_fps": Fraction(probe.fps_fraction) if rebuilt else None,
        # NVDEC where this node has it (decided here, on the node that decodes)
        "hwaccel": choose_decoder(probe.decoder, probe.video_codec).value,
    }
