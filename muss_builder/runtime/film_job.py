"""What a film carries between stages (``FilmWork``), what the driver learns (``FilmResult``),
and the film's timings. The stages' own work is in their packages (subjects/, captions/,
samples/); the stages themselves are in ``stages.py``; ``film_flow.py`` moves a film through them.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from muss_builder.captions.collector import ShotPixels
from muss_builder.captions.records import WindowCaptions
from muss_builder.config import PipelineConfig
from muss_builder.core.text import escape_path, utf8_text
from muss_builder.filters import DROPPING_FLAGS
from muss_builder.media.probe import FilmProbe
from muss_builder.samples.curate import KeyframeReports
from muss_builder.samples.film_record import FilmRecord
from muss_builder.samples.verdicts import FilmCuration
from muss_builder.samples.windows import WindowPlan
from muss_builder.shots.segment import Shot, ShotDetection
from muss_builder.subjects.stage import FilmSubjects

# What a film's wall time is split into (FilmResult.timings; films.parquet's seconds_{bucket}):
# steps of the work, not the pipeline's stages (analyse times probe and shots apart).
TIMING_BUCKETS = ("probe", "shots", "subjects", "curate", "captions", "clips", "shards")


@dataclass
class FilmResult:
    """What the driver learns about one input film; becomes a films.parquet row."""

    path: str
    film_id: str | None
    status: str = "failed"  # ok | failed | skipped | duplicate (running while stages go on)
    reason: str | None = None
    resumed: bool = False
    duration_seconds: float | None = None
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    n_frames: int | None = None
    n_shots: int = 0
    n_samples: int = 0
    n_shards: int = 0
    attempts: int = 1
    timings: dict[str, float] = field(default_factory=lambda: dict.fromkeys(TIMING_BUCKETS, 0.0))
    # curation (issue 16): the earlier input a duplicate film repeats, and the shot funnel
    duplicate_of: str | None = None
    shots_kept: int | None = None
    shots_dropped: int | None = None
    dropped: dict[str, int] | None = None  # flag -> shots; columns dropped_{flag}
    captions: dict | None = None  # the captioner's counters (stats.json), not a table column
    traceback: str | None = None  # where a failure came from (films.parquet and the build log)
    # What the workers reported on the way (retries, warnings): the build log, not a column.
    notes: list[str] = field(default_factory=list)
    # Set when the failure is the machine's, not the film's (the disk is full): the build stops.
    fatal: str | None = None
    # the path as the tables show it (relative to the inputs given; set before they are
    # written); ``path`` stays this machine's, for reading the film and the build log
    shown: str | None = None

    def table_row(self) -> dict:
        row = asdict(self)
        for key in ("captions", "notes", "fatal", "shown"):
            row.pop(key)
        # Arrow and JSON readers refuse the surrogates of a non-UTF-8 file name (names.py).
        row["path"] = escape_path(self.shown or self.path)
        for key in ("reason", "traceback"):
            row[key] = utf8_text(row[key]) if row[key] is not None else None
        timings = row.pop("timings")
        for bucket in TIMING_BUCKETS:
            row[f"seconds_{bucket}"] = round(timings.get(bucket, 0.0), 4)
        row["seconds_total"] = round(sum(timings.values()), 4)
        dropped = row.pop("dropped")
        for flag in DROPPING_FLAGS:  # a fixed column set: one Arrow schema for every row
            row[f"dropped_{flag}"] = None if dropped is None else dropped.get(flag, 0)
        return row

    @classmethod
    def from_record(cls, path: str, record: FilmRecord, resumed: bool) -> FilmResult:
        """Rebuild a result from a finished ``films/{id}.json`` (used on resume)."""
        probe, curation = record.probe, record.curation
        return cls(
            path=path,
            film_id=record.film_id,
            status=record.status,
            reason=record.reason,
            resumed=resumed,
            duration_seconds=probe.duration_seconds,
            fps=probe.fps,
            width=probe.width,
            height=probe.height,
            n_frames=record.n_frames,
            n_shots=len(record.shots),
            n_samples=len({s.key for s in record.samples}),  # rows: one per (sample, track)
            n_shards=len(record.shards),
            attempts=0,
            timings={k: 0.0 for k in TIMING_BUCKETS},
            duplicate_of=record.duplicate_of.film_id if record.duplicate_of else None,
            shots_kept=curation.shots_kept if curation else None,
            shots_dropped=curation.shots_in - curation.shots_kept if curation else None,
            dropped=dict(curation.dropped) if curation else None,
        )


@dataclass
class ClipOut:
    """One window's encoded clip, or why it has none."""

    window: int
    clip: bytes | None = None
    size: tuple[int, int] | None = None
    dropped: str | None = None
    note: str | None = None  # a warning for the film's notes (a GPU encoder fell back)


@dataclass
class FilmWork:
    """Everything one film carries from stage to stage (a Ray object between tasks/actors)."""

    path: str
    film_id: str
    config: PipelineConfig
    out_dir: str
    result: FilmResult
    probe: FilmProbe | None = None
    detection: ShotDetection | None = None
    plan: WindowPlan | None = None
    windows: list[list[Shot]] = field(default_factory=list)  # clean shots of each window
    subjects: FilmSubjects | None = None
    pixels: dict[int, ShotPixels] = field(default_factory=dict)
    # curation: the verdicts (crops and logo from analyse, flags from curate; None when
    # filters are off) and what the keyframe pass's curation collectors found
    curation: FilmCuration | None = None
    keyframe_reports: KeyframeReports | None = None
    captions: list[WindowCaptions | None] = field(default_factory=list)
    # what each filter cost on this film (record timings ``filter_{name}``; inside the
    # stage buckets already, so never summed into seconds_total)
    filter_seconds: dict[str, float] = field(default_factory=dict)
    # each shot's colour histogram (scene segmentation), from the keyframe pass
    shot_looks: dict[int, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.result.status == "failed"


class Timer:
    def __init__(self, timings: dict[str, float], stage: str) -> None:
        self.timings, self.stage = timings, stage

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.timings[self.stage] += time.perf_counter() - self.start


def record_timings(work: FilmWork) -> dict[str, float]:
    """Every wall-clock figure of the film record, in one place: the rest of the record is
    the same on every run, so a comparison of two builds drops ``timings`` alone."""
    timings = {k: round(v, 4) for k, v in work.result.timings.items()}
    if work.subjects is not None:
        timings |= work.subjects.timings()
    if work.result.captions and "model_seconds" in work.result.captions:
        timings["captions_model"] = round(work.result.captions["model_seconds"], 4)
    timings |= {f"filter_{k}": round(v, 4) for k, v in sorted(work.filter_seconds.items())}
    return timings
