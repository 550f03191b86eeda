"""The video stream's own timeline: where it starts, how long it lasts, whether its packets
carry times at all. Containers are not trusted for this (see docs/design-notes.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

from muss_builder.media.commands import probe_packets
from muss_builder.media.tools import MediaError, run

# rates a film is made at; a rate measured from sparse timestamps snaps to one within 0.2%
_COMMON_RATES = tuple(
    Fraction(r)
    for r in ("24000/1001", "24", "25", "30000/1001", "30", "48", "50", "60000/1001", "60")
)


_TAIL_SECONDS = 10.0
_TAIL_ENTRIES = "packet=pts,dts,duration:stream=time_base"


@dataclass(frozen=True)
class StreamTiming:
    start: float  # seconds, the stream's first timestamp
    duration: float  # seconds, from ``start`` to the end of the last packet
    # packets with no time at all (neither presentation nor decode): every decode must number
    # frames itself and time them frame / rate (``FilmProbe.timestamps = "rebuilt"``)
    untimed: bool
    rate: Fraction | None  # the frame rate the timed packets imply, when some are untimed


def _ticks(value: object, base: Fraction) -> float | None:
    return float(int(value) * base) if str(value).lstrip("-").isdigit() else None


def tail_packets(path: Path, near: float) -> list[tuple[float | None, float]]:
    """(time, duration) of the video packets after a seek to ``near`` (a guess at or after the
    end: the demuxer lands on the last keyframe before it), in decode order. A packet's time
    is its presentation time, else its decode time (AVI with B-frames), else None."""
    try:
        out = run(
            # nothing to seek to: read from the start (raw streams cannot seek at all)
            probe_packets(path, _TAIL_ENTRIES, read_from=near if near > 0 else None),
            what="read the last video packets",
            timeout=120,
        )
    except MediaError:
        return []
    doc = json.loads(out or b"{}")
    base = Fraction((doc.get("streams") or [{}])[0].get("time_base", "1/1"))
    packets = []
    for packet in doc.get("packets") or []:
        at = _ticks(packet.get("pts"), base)
        at = _ticks(packet.get("dts"), base) if at is None else at
        packets.append((at, _ticks(packet.get("duration"), base) or 0.0))
    return packets


def _implied_rate(packets: list[tuple[float | None, float]]) -> Fraction | None:
    """Frames per second between the first and last timed packet (untimed ones between them
    count as frames: an MKV that laces frames times only the first of each lace)."""
    timed = [(i, at) for i, (at, _) in enumerate(packets) if at is not None]
    if len(timed) < 2 or timed[-1][1] <= timed[0][1]:
        return None
    rate = (timed[-1][0] - timed[0][0]) / (timed[-1][1] - timed[0][1])
    near = min(_COMMON_RATES, key=lambda r: abs(float(r) - rate))
    return near if abs(float(near) - rate) <= 0.002 * rate else Fraction(round(rate * 1000), 1000)


def stream_timing(path: Path, video: dict, fmt: dict, rate: Fraction) -> StreamTiming:
    """The video stream's start and duration from its own packets.

    A container's duration may count from zero or from another stream (an MKV written with a
    one-hour timestamp offset says 3606 s for 6 s of video); the end of the last packet,
    read after a seek to the end, does not. A stream that states no duration and whose
    packets carry no time at all (a raw H.264 file) is as long as its packets at ``rate``."""
    start = float(video.get("start_time") or fmt.get("start_time") or 0.0)
    claimed = float(video.get("duration") or fmt.get("duration") or 0.0)
    # ten seconds before the claimed end: at least the last GOP, and enough packets to see
    # whether they carry times (a cue-less MKV lands exactly where it is asked to)
    packets = tail_packets(path, start + claimed - _TAIL_SECONDS)
    untimed = any(at is None for at, _ in packets)
    ends = [at + length for at, length in packets if at is not None]
    if ends and max(ends) > start:
        end = max(ends)
        implied = _implied_rate(packets) if untimed else None
        if implied is not None:
            # untimed frames after the last timed packet still show, one per frame time
            last_timed = max(i for i, (at, _) in enumerate(packets) if at is not None)
            end += (len(packets) - 1 - last_timed) / float(implied)
        return StreamTiming(start, round(end - start, 6), untimed, implied)
    if claimed <= 0 and packets:
        # no seek happened (nothing to seek to), so every packet was read: one per frame
        return StreamTiming(0.0, round(len(packets) / float(rate), 6), True, None)
    return StreamTiming(start, claimed, untimed, None)
