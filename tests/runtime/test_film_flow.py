"""The film state machine both drivers feed: fan-out and gather in unit order, failures,
lost attempts with their notes, and stale answers."""

from __future__ import annotations

from typing import Any

import pytest

from muss_builder.config import PipelineConfig
from muss_builder.runtime.film_flow import FilmFlow, UnitCall
from muss_builder.runtime.film_job import FilmResult
from muss_builder.runtime.stage_base import Gathered, Stage, StageReport


class First(Stage):
    name = "first"


class Split(Stage):
    """Three units per film, gathered for the next stage."""

    name = "split"
    fan_out = True

    def units_for(self, report: StageReport, config: PipelineConfig) -> list[Any]:
        return [[0], [1], [2]]


class Last(Stage):
    name = "last"


def report(status: str = "running", seconds: float = 1.0) -> StageReport:
    result = FilmResult(path="a.mp4", film_id="f", status=status)
    return StageReport("f", "x", status, None, 10.0, 10.0 + seconds, result=result)


@pytest.fixture
def flow() -> FilmFlow:
    return FilmFlow("a.mp4", "f", [First(), Split(), Last()], PipelineConfig())


def test_units_fan_out_and_are_gathered_in_unit_order(flow: FilmFlow) -> None:
    (first,) = flow.begin("work-0")
    assert (first.stage, first.unit) == (0, None)
    split = flow.unit_done(first, report(), "work-1")
    assert [(c.stage, c.index, c.unit) for c in split] == [(1, 0, [0]), (1, 1, [1]), (1, 2, [2])]
    assert flow.work == "work-1"
    # answers come in any order; the next stage starts with the last one
    assert flow.unit_done(split[2], report(seconds=3.0), "clips-2") == []
    assert flow.unit_done(split[0], report(seconds=1.0), "clips-0") == []
    (last,) = flow.unit_done(split[1], report(seconds=2.0), "clips-1")
    assert last.stage == 2
    assert last.unit == Gathered(["clips-0", "clips-1", "clips-2"], 6.0)
    assert flow.work == "work-1"  # a fan-out stage's payloads go with the unit, not as work
    done = report("ok")
    assert flow.unit_done(last, done, "work-2") == [] and flow.finished
    assert flow.result is done.result and flow.result.attempts == 1


def test_a_failed_unit_finishes_the_film_and_its_other_units_are_stale(flow: FilmFlow) -> None:
    split = flow.unit_done(flow.begin("work")[0], report(), "work")
    failed = report("failed")
    assert flow.unit_done(split[1], failed, None) == []
    assert flow.finished and flow.result is failed.result
    assert not any(flow.is_current(c) for c in split)


def test_lost_attempts_restart_the_film_then_fail_it_with_notes(flow: FilmFlow) -> None:
    calls: list[UnitCall] = flow.begin(flow.new_work("/out"))
    flow.lost("first: WorkerCrashedError: gone", "trace 1", max_retries=1)
    assert not flow.finished and not flow.is_current(calls[0])  # the lost call's answer is stale
    work = flow.new_work("/out")
    assert work.result.attempts == 2
    (again,) = flow.begin(work)
    assert flow.is_current(again) and again.stage == 0
    split = flow.unit_done(again, report(), work)
    flow.lost("split: ActorDiedError: gone", "trace 2", max_retries=1)
    assert flow.finished and not flow.is_current(split[0])
    result = flow.result
    assert result is not None and result.status == "failed"
    assert result.reason == "lost 2 times, last: split: ActorDiedError: gone"
    assert (result.attempts, result.traceback) == (2, "trace 2")
    assert result.notes == [
        "retried after: first: WorkerCrashedError: gone",
        "retried after: split: ActorDiedError: gone",
    ]


def test_a_result_after_a_retry_carries_the_retry(flow: FilmFlow) -> None:
    flow.begin("work")
    flow.lost("first: WorkerCrashedError: gone", "trace", max_retries=2)
    (first,) = flow.begin("work")
    split = flow.unit_done(first, report(), "work")
    for call in split[:-1]:
        flow.unit_done(call, report(), [])
    (last,) = flow.unit_done(split[-1], report(), [])
    flow.unit_done(last, report("ok"), "work")
    assert flow.result is not None
    assert flow.result.attempts == 2
    assert flow.result.notes == ["retried after: first: WorkerCrashedError: gone"]


def test_an_uncounted_loss_restarts_the_film_without_spending_a_retry(flow: FilmFlow) -> None:
    """A call an unavailable actor refused starts the film again like any loss (its calls go
    stale, the attempt number grows) but leaves the film its retries."""
    (first,) = flow.begin(flow.new_work("/out"))
    flow.lost("first: ActorUnavailableError: node gone", "trace 1", max_retries=0, counted=False)
    assert not flow.finished and not flow.is_current(first)
    assert (flow.attempt, flow.counted_losses, flow.refusals) == (1, 0, 1)
    flow.begin(flow.new_work("/out"))
    flow.lost("first: WorkerCrashedError: gone", "trace 2", max_retries=0)
    result = flow.result
    assert result is not None and result.status == "failed"
    assert result.reason == "lost 2 times, last: first: WorkerCrashedError: gone"
    assert result.attempts == 2 and len(result.notes) == 2
