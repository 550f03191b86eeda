"""Grouping shots into non-overlapping 2..N-shot windows, with reasons for the rest."""

from __future__ import annotations

from muss_builder.config import SamplesConfig
from muss_builder.samples.windows import NO_WINDOW, SHORT_EDGE, TOO_LONG, plan_windows
from muss_builder.shots.segment import Shot


def shots_of(durations: list[float]) -> list[Shot]:
    shots, t = [], 0.0
    for i, d in enumerate(durations):
        shots.append(
            Shot(i, round(t * 24), round((t + d) * 24), t, t + d, "start" if i == 0 else "cut")
        )
        t += d
    return shots


CFG = SamplesConfig(
    min_shots=2,
    max_shots=3,
    min_shot_seconds=1.0,
    max_shot_seconds=10.0,
    min_sample_seconds=3.0,
    max_sample_seconds=20.0,
)


def test_windows_do_not_overlap_and_respect_max_shots() -> None:
    plan = plan_windows(shots_of([2] * 7), CFG)
    assert [(w.first, w.last) for w in plan.windows] == [(0, 2), (3, 5)]
    assert plan.excluded == {6: NO_WINDOW}


def test_short_shot_is_never_an_edge_but_may_be_inside() -> None:
    plan = plan_windows(shots_of([0.3, 2, 0.3, 2, 0.4]), CFG)
    assert [(w.first, w.last) for w in plan.windows] == [(1, 3)]
    assert plan.excluded == {0: SHORT_EDGE, 4: SHORT_EDGE}
    for w in plan.windows:
        for edge in (w.first, w.last):
            assert shots_of([0.3, 2, 0.3, 2, 0.4])[edge].duration_seconds >= 1.0


def test_long_shot_breaks_runs() -> None:
    plan = plan_windows(shots_of([2, 2, 15, 2, 2]), CFG)
    assert [(w.first, w.last) for w in plan.windows] == [(0, 1), (3, 4)]
    assert plan.excluded == {2: TOO_LONG}


def test_sample_duration_limits() -> None:
    cfg = CFG.model_copy(update={"max_sample_seconds": 5.0})
    plan = plan_windows(shots_of([2, 2, 2, 2]), cfg)
    assert [(w.first, w.last) for w in plan.windows] == [(0, 1), (2, 3)]


def test_film_without_sample_says_why() -> None:
    plan = plan_windows(shots_of([5]), CFG)
    assert plan.windows == [] and "at least 2 shots" in (plan.reason_no_sample or "")
    plan = plan_windows(shots_of([1.2, 1.2]), CFG)
    assert "needs at least 3.0s" in (plan.reason_no_sample or "")


def test_a_dropped_shot_breaks_runs_and_is_excluded_with_its_flag() -> None:
    plan = plan_windows(shots_of([2] * 7), CFG, dropped={2: "credits", 5: "black"})
    assert [(w.first, w.last) for w in plan.windows] == [(0, 1), (3, 4)]
    assert plan.excluded == {2: "credits", 5: "black", 6: NO_WINDOW}
    inside = {i for w in plan.windows for i in range(w.first, w.last + 1)}
    assert not inside & {2, 5}


def test_a_window_never_spans_two_crops() -> None:
    plan = plan_windows(shots_of([2] * 6), CFG, crop_groups=[0, 0, 1, 1, 1, 0])
    assert [(w.first, w.last) for w in plan.windows] == [(0, 1), (2, 4)]
    assert plan.excluded == {5: NO_WINDOW}


def test_a_film_whose_every_shot_is_dropped_names_the_counts() -> None:
    dropped = dict.fromkeys(range(6), "credits") | {6: "black", 7: "black", 8: "black"}
    plan = plan_windows(shots_of([2] * 9), CFG, dropped=dropped)
    assert plan.windows == []
    assert plan.reason_no_sample == "all 9 shots dropped (credits 6, black 3)"
