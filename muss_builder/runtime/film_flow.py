"""One film's way through the stages: the state machine both executors drive.

A film is at one stage at a time. That stage's ``units_for`` splits the film into units
(``[None]``: one call for the whole film; a long film's clips: one unit per group of windows).
The driver makes one call per unit wherever it runs them (in this process, or as Ray tasks and
actor calls) and hands each call's report and payload back to ``unit_done``, which answers with
the calls to make next. When every unit is in, the film moves on: a fan-out stage's payloads go
to the next stage together (``Gathered``), any other stage's payload is the next stage's work.
The flow never runs a stage and never touches Ray or the disk.

Attempts: a driver that loses a call with its worker, actor or node says so (``lost``); the film
starts again from its first stage with new work (``begin``), at most ``max_retries`` times,
then fails with the error. Calls of an earlier attempt, or of a film already finished, are stale
(``is_current``): their answers are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from muss_builder.config import PipelineConfig
from muss_builder.runtime.film_job import FilmResult, FilmWork
from muss_builder.runtime.stage_base import Gathered, Stage, StageReport


@dataclass(frozen=True, eq=False)
class UnitCall:
    """One call for the driver to make: stage number ``stage`` on ``unit`` of the film's work."""

    flow: FilmFlow
    attempt: int
    stage: int
    index: int  # the unit's place among the stage's units (the order Gathered keeps)
    unit: Any


class FilmFlow:
    """Which stage one film is in, which of its units are out, what they returned so far, and
    its lost attempts; ``result`` is set once the film is finished."""

    def __init__(
        self, path: str, film_id: str, stages: Sequence[Stage], config: PipelineConfig
    ) -> None:
        self.path, self.film_id = path, film_id
        self.stages, self.config = stages, config
        self.attempt = 0
        self.stage = 0
        # the current stage's input: a FilmWork, or the driver's handle to one (a Ray reference)
        self.work: Any = None
        self.result: FilmResult | None = None
        self.retries: list[str] = []  # why each lost attempt was lost
        self.refusals = 0  # lost attempts that do not count (an unavailable actor's refusals)
        self._payloads: list[Any] = []
        self._units_left = 0
        self._unit_seconds = 0.0

    @property
    def finished(self) -> bool:
        return self.result is not None

    @property
    def counted_losses(self) -> int:
        """Lost attempts that count toward ``runtime.max_retries``."""
        return len(self.retries) - self.refusals

    def new_work(self, out_dir: str) -> FilmWork:
        """What the first stage of this attempt starts from."""
        result = FilmResult(
            path=self.path, film_id=self.film_id, status="running", attempts=self.attempt + 1
        )
        return FilmWork(self.path, self.film_id, self.config, out_dir, result)

    def begin(self, work: Any) -> list[UnitCall]:
        """Start this attempt at the first stage with ``work`` (see ``new_work``)."""
        self.work = work
        return self._enter(0, [None])

    def is_current(self, call: UnitCall) -> bool:
        return self.result is None and call.attempt == self.attempt

    def unit_done(self, call: UnitCall, report: StageReport, payload: Any) -> list[UnitCall]:
        """Take one current call's answer; the calls to make next (none while other units
        of the stage are out, or once the film is finished)."""
        assert self.is_current(call), "a stale call's answer is dropped by the driver"
        if report.status == "failed":
            return self._finish(report.result)
        self._payloads[call.index] = payload
        self._unit_seconds += report.seconds
        self._units_left -= 1
        if self._units_left:
            return []
        if self.stage == len(self.stages) - 1:
            return self._finish(report.result)
        if self.stages[self.stage].fan_out:
            return self._enter(self.stage + 1, [Gathered(self._payloads, self._unit_seconds)])
        self.work = self._payloads[0]
        next_stage = self.stages[self.stage + 1]
        return self._enter(self.stage + 1, next_stage.units_for(report, self.config))

    def lost(self, reason: str, trace: str, max_retries: int, counted: bool = True) -> None:
        """A call of this attempt was lost with its worker, actor or node: the next attempt
        is due (the driver calls ``begin`` with new work), or, past ``max_retries`` counted
        losses, the film has failed (``finished``). A loss the driver does not count
        (``counted=False``: an actor refused the call, see ``streaming.py``) still starts a
        new attempt."""
        self.retries.append(reason)
        self.refusals += not counted
        if self.counted_losses > max_retries:
            self.fail(f"lost {len(self.retries)} times, last: {reason}", trace)
        else:
            self.attempt += 1

    def fail(self, reason: str, trace: str | None = None) -> FilmResult:
        """Fail the film for a reason of the driver's (a stage raised, no actor is left)."""
        self.result = FilmResult(
            path=self.path,
            film_id=self.film_id,
            reason=reason,
            attempts=self.attempt + 1,
            traceback=trace,
            notes=self.retry_notes(),
        )
        return self.result

    def retry_notes(self) -> list[str]:
        """What the build log says of this film's lost attempts."""
        return [f"retried after: {why}" for why in self.retries]

    def _enter(self, stage: int, units: list[Any]) -> list[UnitCall]:
        if not units:
            raise ValueError(f"stage {self.stages[stage].name}: units_for gave no unit")
        self.stage = stage
        self._payloads = [None] * len(units)
        self._units_left, self._unit_seconds = len(units), 0.0
        return [UnitCall(self, self.attempt, stage, i, unit) for i, unit in enumerate(units)]

    def _finish(self, result: FilmResult | None) -> list[UnitCall]:
        assert result is not None
        result.attempts = self.attempt + 1
        result.notes[:0] = self.retry_notes()
        self.result = result
        return []
