"""What a stage is to the drivers: the ``Stage`` base class, the report of one call, and the
error that stops a build whose stage cannot start.

A stage's ``call(work, unit)`` returns a ``StageReport`` (small: what the driver needs to route
the film and show progress) and a payload (large: the ``FilmWork`` for the next stage, or a clip
unit's clips). Models load in ``setup(config)``, once per process that runs the stage, before
any film: a model that cannot load stops the build at its start (``StageSetupError``) instead
of failing every film. Errors inside ``process`` never raise: they mark the film failed on its
result, which the report carries, and the run goes on.

The shipped stages are in ``stages.py``; ``film_flow.py`` moves a film from stage to stage.
"""

from __future__ import annotations

import contextlib
import time
import traceback
from dataclasses import dataclass
from typing import Any, ClassVar

from muss_builder.config import PipelineConfig, StageResources
from muss_builder.core.storage import Storage
from muss_builder.media.tools import MediaError
from muss_builder.runtime.film_job import FilmResult, FilmWork
from muss_builder.runtime.layout import remove_film_outputs
from muss_builder.runtime.outdir import fatal_cause
from muss_builder.samples.windows import window_seconds


class StageSetupError(Exception):
    """A stage cannot start (its model does not load): the build stops before its films."""

    def __init__(self, stage: str, why: str) -> None:
        super().__init__(f"stage {stage} cannot start: {why}")
        self.stage = stage


@dataclass
class StageReport:
    """What the driver learns from one stage call (the payload stays in the object store)."""

    film_id: str
    stage: str
    status: str  # the film's status after the call: running | ok | skipped | failed
    reason: str | None = None
    started: float = 0.0  # wall clock (time.time) on the worker, for busy shares
    finished: float = 0.0
    film_seconds: float = 0.0  # footage this call covered, for per-stage throughput
    result: FilmResult | None = None  # the film's result as this call left it
    window_seconds: list[float] | None = None  # footage of each sample window, once planned

    @property
    def seconds(self) -> float:
        return self.finished - self.started


@dataclass
class Gathered:
    """A fan-out stage's output handed to the next stage: each unit's payload (or a Ray
    reference to it, fetched one unit at a time) and the seconds the units spent."""

    units: list[Any]
    seconds: float = 0.0


class Stage:
    """Base class: ``kind`` says whether the stage runs as Ray tasks or an actor pool."""

    name: ClassVar[str] = "stage"
    kind: ClassVar[str] = "task"  # task | actor
    fan_out: ClassVar[bool] = False  # True: the next stage gets every unit's payload, Gathered

    def setup(self, config: PipelineConfig) -> None:
        """Load the models ``config`` names. The inline driver calls it once before the first
        film and a Ray actor in its constructor; a Ray task calls it before each call, so a
        stage's loaders cache what they load per process. Raise when a model cannot load."""

    def resources(self, config: PipelineConfig) -> StageResources:
        return getattr(config.runtime.stages, self.name)

    def runs_in_input_order(self, config: PipelineConfig) -> bool:
        """Whether this stage's calls must run in the order the films were given (a film's
        call waits until every film started before it has passed the stage): for a stage
        whose outcome depends on which films came before, like the duplicate claim. The
        inline driver runs films one after the other, so it always does."""
        return False

    def units_for(self, report: StageReport, config: PipelineConfig) -> list[Any]:
        """Units this film's call fans out into, from the previous stage's report (the
        driver never holds the film's data); ``[None]`` is one call for the whole film."""
        return [None]

    def process(self, work: FilmWork, unit: Any) -> Any:
        raise NotImplementedError

    def call(self, work: FilmWork, unit: Any = None) -> tuple[StageReport, Any]:
        """Run ``process`` and report; a failure is recorded on the film, never raised."""
        started = time.time()
        payload: Any = work
        if not work.failed:
            try:
                payload = self.process(work, unit)
            except MediaError as exc:
                _fail(work, str(exc), fatal_cause(exc))
            except Exception as exc:  # a bug must not stop the run; it is reported on the film
                why = f"internal error in {self.name}: {type(exc).__name__}: {exc}"
                _fail(work, why, fatal_cause(exc))
            if work.failed:
                payload = work
        result = work.result
        report = StageReport(
            work.film_id,
            self.name,
            result.status,
            result.reason,
            started,
            time.time(),
            film_seconds=self.covered_seconds(work, unit),
            result=result,
            window_seconds=(
                [window_seconds(work.detection.shots, w) for w in work.plan.windows]
                if work.plan and work.detection
                else None
            ),
        )
        return report, payload

    def covered_seconds(self, work: FilmWork, unit: Any) -> float:
        return work.result.duration_seconds or 0.0


def set_up(stage: Stage, config: PipelineConfig) -> None:
    """``stage.setup(config)``, or ``StageSetupError`` naming the stage and what failed."""
    try:
        stage.setup(config)
    except Exception as exc:
        raise StageSetupError(stage.name, one_line(f"{type(exc).__name__}: {exc}")) from exc


def one_line(text: str) -> str:
    """A message on one line (a films.parquet cell, a log line, the CLI's error)."""
    return " | ".join(line.strip() for line in text.splitlines() if line.strip())


def _fail(work: FilmWork, reason: str, fatal: str | None = None) -> None:
    result = work.result
    result.status, result.reason = "failed", one_line(reason)  # the traceback keeps the rest
    result.traceback, result.fatal = traceback.format_exc(), fatal
    with contextlib.suppress(OSError):  # on a full disk, removing may fail too: the rerun will
        remove_film_outputs(Storage.open(work.out_dir), work.film_id)
