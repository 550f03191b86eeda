"""What curation decided about a film and each of its shots (``samples/curate.py`` decides;
the window planner, the clips and the film record read it).

Plain data that travels with the film between stages (a Ray object): boxes are lists of ints
in source pixels, end exclusive.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

Box = list[int]  # [x0, y0, x1, y1] source pixels, end exclusive


@dataclass
class ShotVerdict:
    """One shot: its active picture, every measurement, every flag, and what dropped it."""

    crop: Box
    quality: dict[str, float] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)  # sorted
    duplicate_of: tuple[str, int] | None = None  # (film_id, shot)
    dropped_by: str | None = None  # the dropping flag that removed it (first in config order)

    def record_quality(self) -> dict[str, float]:
        """The measurements a JSON record can hold: a measure that came out NaN or infinite
        (a shot too short to measure) is left out rather than written as invalid JSON."""
        return {k: round(float(v), 6) for k, v in sorted(self.quality.items()) if math.isfinite(v)}


@dataclass
class FilmCuration:
    """The film: its active picture (the box of the most footage), the watermark with its
    removal, each shot's verdict, the filters that did not run and why, and the earlier input
    it repeats as a whole (then it has no samples)."""

    crop: Box
    shots: dict[int, ShotVerdict]
    watermark: dict | None = None  # {"box", "score", "removal"}
    not_run: dict[str, str] = field(default_factory=dict)
    duplicate_of: str | None = None

    def dropped(self) -> dict[int, str]:
        """Shot index -> the flag that dropped it."""
        return {i: v.dropped_by for i, v in self.shots.items() if v.dropped_by is not None}

    def funnel(self) -> tuple[int, int, dict[str, int]]:
        """(shots in, shots kept, shots dropped per flag)."""
        counts: dict[str, int] = {}
        for flag in self.dropped().values():
            counts[flag] = counts.get(flag, 0) + 1
        n = len(self.shots)
        return n, n - sum(counts.values()), dict(sorted(counts.items()))

    def crop_groups(self, n_shots: int) -> list[int]:
        """One group id per shot (shots of one box share it): a window never spans two."""
        ids: dict[tuple[int, ...], int] = {}
        whole = tuple(self.crop)
        return [
            ids.setdefault(tuple(self.shots[i].crop) if i in self.shots else whole, len(ids))
            for i in range(n_shots)
        ]

    def shot_crop(self, shot: int) -> Box:
        verdict = self.shots.get(shot)
        return list(verdict.crop) if verdict is not None else list(self.crop)


def whole_frame(width: int, height: int) -> Box:
    return [0, 0, width, height]
