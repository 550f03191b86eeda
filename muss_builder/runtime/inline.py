"""Run every film in this process, one after the other (the inline executor; tests; debugging).

Each stage is set up once before the first film (a model that cannot load stops the build
there, ``StageSetupError``), then each film's ``FilmFlow`` is driven call by call: the same
state machine the Ray driver feeds, with the stages called in-process.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence

from muss_builder.config import PipelineConfig
from muss_builder.core.interrupts import stop_if_interrupted
from muss_builder.runtime.film_flow import FilmFlow
from muss_builder.runtime.film_job import FilmResult
from muss_builder.runtime.monitor import StageMonitor
from muss_builder.runtime.stage_base import Stage, StageReport, set_up


class InlineRunner:
    """The films of a build through ``stages`` in this process; ``run`` yields each result."""

    def __init__(
        self,
        stages: Sequence[Stage],
        config: PipelineConfig,
        out_dir: str,
        monitor_tick: Callable[[StageMonitor], None] | None = None,
    ) -> None:
        self.stages, self.config, self.out_dir = stages, config, out_dir
        self.monitor = StageMonitor([s.name for s in stages])
        self.tick = monitor_tick

    def describe(self) -> dict:
        return {}

    def run(self, films: list[tuple[str, str]]) -> Iterator[FilmResult]:
        if not films:
            return  # nothing to build: no model is loaded
        for stage in self.stages:
            set_up(stage, self.config)
        for path, film_id in films:
            yield process_film(path, film_id, self.stages, self.config, self.out_dir, self._seen)
            if self.tick:
                self.tick(self.monitor)

    def _seen(self, report: StageReport) -> None:
        monitor = self.monitor
        monitor.finished_call(report.stage, report.started, report.finished, report.film_seconds)


def process_film(
    path: str,
    film_id: str,
    stages: Sequence[Stage],
    config: PipelineConfig,
    out_dir: str,
    on_report: Callable[[StageReport], None] | None = None,
) -> FilmResult:
    """Every stage of one film in this process (stages set up already, see ``set_up``).
    ``on_report(report)`` sees each call's report, as the Ray driver's monitor does."""
    flow = FilmFlow(path, film_id, stages, config)
    calls = deque(flow.begin(flow.new_work(out_dir)))
    while calls:
        stop_if_interrupted()  # a Ctrl-C a finaliser swallowed still stops the build here
        call = calls.popleft()
        if not flow.is_current(call):
            continue  # a unit of a stage whose earlier unit failed the film
        report, payload = stages[call.stage].call(flow.work, call.unit)
        if on_report:
            on_report(report)
        calls.extend(flow.unit_done(call, report, payload))
    assert flow.result is not None
    return flow.result
