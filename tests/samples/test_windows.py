"""Grouping shots into 2..N-shot windows (a partition that holds as many shots as it can, on
natural edges, plus overlapping lengths and subject windows), with reasons for the rest."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from muss_builder.config import SamplesConfig
from muss_builder.samples.subject_windows import subject_windows
from muss_builder.samples.windows import (
    EXCHANGE_EDGE,
    LIMIT,
    NO_WINDOW,
    RUN_EDGE,
    SHORT_EDGE,
    SUBJECT,
    TOO_LONG,
    plan_windows,
    usable_runs,
)
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


def test_windows_do_not_overlap_respect_max_shots_and_hold_every_shot_they_can() -> None:
    # 7 shots, at most 3 a window: greedy 3 + 3 would lose the seventh; 3 + 2 + 2 holds all
    plan = plan_windows(shots_of([2] * 7), CFG)
    assert [(w.first, w.last) for w in plan.windows] == [(0, 2), (3, 4), (5, 6)]
    assert plan.excluded == {}
    assert set(plan.shot_uses().values()) == {1}
    # at least 3 a window: 3 + 3, and the last shot fits no window
    plan = plan_windows(shots_of([2] * 7), CFG.model_copy(update={"min_shots": 3}))
    # (the left-out shot goes inside: both windows then end on the run's edges)
    assert [(w.first, w.last) for w in plan.windows] == [(0, 2), (4, 6)]
    assert plan.excluded == {3: NO_WINDOW}


def test_a_long_run_is_cut_evenly_and_on_a_natural_point_when_there_is_one() -> None:
    cfg = CFG.model_copy(update={"max_shots": 6})
    plan = plan_windows(shots_of([2] * 8), cfg)
    assert [(w.first, w.last) for w in plan.windows] == [(0, 3), (4, 7)]  # not 6 + 2
    assert (plan.windows[0].start_point, plan.windows[0].end_point) == (RUN_EDGE, LIMIT)
    # an exchange opening on shot 3: the cut goes there, though 3 + 5 is less even
    plan = plan_windows(shots_of([2] * 8), cfg, natural={3: EXCHANGE_EDGE})
    assert [(w.first, w.last) for w in plan.windows] == [(0, 2), (3, 7)]
    assert plan.windows[0].end_point == EXCHANGE_EDGE
    assert plan.windows[1].start_point == EXCHANGE_EDGE
    # holding shots comes first: a natural point on shot 1 cannot cost shot 0
    plan = plan_windows(shots_of([2] * 4), cfg, natural={1: EXCHANGE_EDGE})
    assert [(w.first, w.last) for w in plan.windows] == [(0, 3)]


def test_more_lengths_overlap_up_to_the_reuse_cap() -> None:
    cfg = CFG.model_copy(update={"lengths": [2], "max_shot_uses": 2})
    plan = plan_windows(shots_of([2] * 6), cfg)
    spans = [(w.first, w.last) for w in plan.windows]
    assert spans == [(0, 1), (0, 2), (2, 3), (3, 5), (4, 5)]
    assert max(plan.shot_uses().values()) == 2
    assert plan.shot_uses() == {0: 2, 1: 2, 2: 2, 3: 2, 4: 2, 5: 2}
    # one use a shot: the partition only
    plan = plan_windows(shots_of([2] * 6), cfg.model_copy(update={"max_shot_uses": 1}))
    assert [(w.first, w.last) for w in plan.windows] == [(0, 2), (3, 5)]


def test_lengths_outside_the_shot_limits_are_refused() -> None:
    with pytest.raises(ValidationError, match=r"samples\.lengths: 5 is outside"):
        SamplesConfig.model_validate(CFG.model_dump() | {"lengths": [5]})


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


def _subject_plan(
    holding: dict[int, set[str]],
    scene_of: dict[int, int],
    cfg: SamplesConfig,
    n: int = 10,
    can_reference=lambda subject, shots: True,
):
    shots = shots_of([2] * n)
    runs, _ = usable_runs(shots, cfg, {}, None)
    at = {p: sorted(holding.get(p, set())) for p in range(n)}
    return subject_windows(shots, runs, at, scene_of, [], cfg, can_reference)


def test_a_subject_window_starts_and_ends_on_the_subject_and_follows_it_over_a_break() -> None:
    cfg = CFG.model_copy(update={"max_shots": 4})
    holding = {3: {"F001"}, 4: {"F001"}, 5: {"F001"}, 6: {"F001"}}
    scenes = {p: 0 if p < 5 else 1 for p in range(10)}
    (window,) = _subject_plan(holding, scenes, cfg)
    assert (window.first, window.last, window.kind, window.subject) == (3, 6, SUBJECT, "F001")
    assert "4 of 4 shots" in window.reason and "1 scene break" in window.reason
    # not allowed over the break: one window on each side
    no_cross = cfg.model_copy(update={"subject_cross_scene": False})
    got = _subject_plan(holding, scenes, no_cross)
    assert sorted((w.first, w.last) for w in got) == [(3, 4), (5, 6)]


def test_a_subject_window_needs_its_share_a_reference_and_room_under_the_cap() -> None:
    cfg = CFG.model_copy(update={"max_shots": 4})
    # F002 in shots 0 and 2 (2 of 3: share 0.67 >= 0.6); in 0 and 3 (2 of 4) too thin
    (w,) = _subject_plan({0: {"F002"}, 2: {"F002"}}, {}, cfg)
    assert (w.first, w.last) == (0, 2)
    assert _subject_plan({0: {"F002"}, 3: {"F002"}}, {}, cfg) == []
    # no reference crop anywhere outside the shots: no window
    assert (
        _subject_plan({0: {"F002"}, 2: {"F002"}}, {}, cfg, can_reference=lambda s, x: False) == []
    )
    # shots already in max_shot_uses windows are not used again
    shots = shots_of([2] * 10)
    runs, _ = usable_runs(shots, cfg, {}, None)
    taken = plan_windows(shots, cfg).windows  # every shot once
    at = {0: ["F002"], 2: ["F002"]}
    one_use = cfg.model_copy(update={"max_shot_uses": 1})
    assert subject_windows(shots, runs, at, {}, taken, one_use, lambda s, x: True) == []
