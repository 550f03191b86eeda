"""Ctrl-C stops a build even when the interrupt lands in a finaliser, where Python drops it.

Seen once in CI: a SIGINT sent as the first of three films finished gave exit 0 with all
three built. The finaliser here sends the SIGINT itself, so the interrupt is raised inside
``__del__`` every time, as it was by chance there."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from muss_builder.config import PipelineConfig
from muss_builder.core.interrupts import latched_interrupts, stop_if_interrupted
from muss_builder.runtime.build import build
from muss_builder.runtime.film_job import FilmWork
from muss_builder.runtime.stages import SubjectsStage, default_stages
from muss_builder.testing.interrupts import swallowed_ctrl_c
from muss_builder.testing.synthetic_films import make_film

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def test_python_drops_a_ctrl_c_raised_in_a_finaliser() -> None:
    """Why the latch exists: without it nothing is raised (this would fail if Python kept it)."""
    swallowed_ctrl_c()
    for _ in range(10_000):
        pass  # no KeyboardInterrupt arrives here


def test_the_latch_raises_it_again() -> None:
    with latched_interrupts():
        swallowed_ctrl_c()
        with pytest.raises(KeyboardInterrupt):
            stop_if_interrupted()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    stop_if_interrupted()  # the request ends with the block


class InterruptedSubjects(SubjectsStage):
    """The subject stage, which on one film drops an object whose finaliser takes the Ctrl-C."""

    def __init__(self, victim: str) -> None:
        self.victim = victim

    def process(self, work: FilmWork, unit: object) -> FilmWork:
        work = super().process(work, unit)
        if Path(work.path).name == self.victim:
            swallowed_ctrl_c()
        return work


def test_a_swallowed_ctrl_c_stops_the_build_at_the_next_stage(
    tmp_path: Path, tiny_config: PipelineConfig
) -> None:
    films = [
        str(make_film(tmp_path / f"reel{i}.mp4", (30 + i, 26, 34), fps=24).path) for i in range(3)
    ]
    stages = default_stages()
    stages[1] = InterruptedSubjects("reel0.mp4")
    assert isinstance(default_stages()[1], SubjectsStage)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        build(films, out, tiny_config, executor="inline", stages=stages)
    # stopped before reel0's next stage: no film finished, the next films never started
    assert not list((out / "films").glob("*.json"))
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    assert not (out / ".lock").exists()
