"""Container and stream facts of a film, with a readable reason when it cannot be read."""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path

from pydantic import BaseModel

from muss_builder.media.hashing import film_id_of
from muss_builder.media.tools import MediaError, binary, run


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
    width: int  # display width after rotation
    height: int
    fps: float  # average frame rate; see `variable_frame_rate`
    fps_fraction: str  # exact average rate as "num/den"
    variable_frame_rate: bool
    frame_count_estimate: int  # from the container; the decode pass counts the real number
    has_audio: bool
    audio_codec: str | None


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


def probe_film(path: str | Path, film_id: str | None = None) -> FilmProbe:
    """Probe ``path``; raise MediaError with a readable reason if it is not a usable film."""
    path = Path(path)
    check_readable_file(path)
    out = run(
        [
            binary("ffprobe"),
            "-v",
            "error",
            "-show_format",
            "-show_streams",
            "-of",
            "json",
            str(path),
        ],
        what="cannot probe (not a media file or corrupt)",
        timeout=120,
    )
    info = json.loads(out or b"{}")
    streams = info.get("streams") or []
    fmt = info.get("format") or {}
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
    v = video[0]
    avg = _fraction(v.get("avg_frame_rate"))
    real = _fraction(v.get("r_frame_rate"))
    rate = avg or real
    if rate is None:
        raise MediaError("video stream has no frame rate")
    duration = float(v.get("duration") or fmt.get("duration") or 0.0)
    if duration <= 0:
        raise MediaError("video stream has no duration")
    coded_w, coded_h = int(v.get("width") or 0), int(v.get("height") or 0)
    if coded_w <= 0 or coded_h <= 0:
        raise MediaError("video stream has no frame size")
    rotation = _rotation(v)
    width, height = (coded_h, coded_w) if rotation in (90, 270) else (coded_w, coded_h)
    nb_frames = v.get("nb_frames")
    estimate = int(nb_frames) if nb_frames and str(nb_frames).isdigit() else round(duration * rate)
    return FilmProbe(
        path=str(path.resolve()),
        file_name=path.name,
        size_bytes=path.stat().st_size,
        film_id=film_id or film_id_of(path),
        container=str(fmt.get("format_name", "unknown")),
        duration_seconds=duration,
        start_time_seconds=float(v.get("start_time") or fmt.get("start_time") or 0.0),
        video_codec=str(v.get("codec_name", "unknown")),
        pix_fmt=v.get("pix_fmt"),
        coded_width=coded_w,
        coded_height=coded_h,
        rotation=rotation,
        width=width,
        height=height,
        fps=float(rate),
        fps_fraction=f"{rate.numerator}/{rate.denominator}",
        # ffprobe's r_frame_rate is the base rate; a mean rate that differs means timestamps vary
        variable_frame_rate=bool(avg and real and abs(float(avg) - float(real)) > 0.01),
        frame_count_estimate=estimate,
        has_audio=bool(audio),
        audio_codec=str(audio[0].get("codec_name")) if audio else None,
    )
