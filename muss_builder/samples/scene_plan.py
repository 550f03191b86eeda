"""A film's windows, planned with its scenes: scenes segmented from the shots' looks, montage
windows inside a scene (or across, labelled, with ``scenes.cross_scene``) with edges on
natural points, more lengths when asked, and subject windows around each subject."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from muss_builder.config import PipelineConfig, ScenesConfig
from muss_builder.samples.story_points import natural_points
from muss_builder.samples.subject_windows import subject_windows
from muss_builder.samples.windows import (
    CROSS_SCENE,
    WindowPlan,
    plan_windows,
    scene_groups,
    usable_runs,
)
from muss_builder.scenes.segment import segment_scenes
from muss_builder.shots.segment import Shot
from muss_builder.subjects.stage import FilmSubjects


def film_scenes(
    shots: Sequence[Shot],
    looks: Mapping[int, Any],
    subjects: FilmSubjects | None,
    cfg: ScenesConfig,
) -> tuple[list[dict], dict[int, int]]:
    """(scene records for the film record, shot index -> scene index); none when off."""
    if not cfg.enabled or not shots:
        return [], {}
    by_shot = (
        {s.index: frozenset(subjects.shot_subjects(s.index)) for s in shots} if subjects else {}
    )
    scenes, _ = segment_scenes(shots, looks, by_shot, cfg)
    scene_of = {shot: scene.index for scene in scenes for shot in scene.shots}
    return [scene.to_dict() for scene in scenes], scene_of


def window_groups(
    shots: Sequence[Shot],
    crop_groups: Sequence[int] | None,
    scene_of: Mapping[int, int],
    cfg: ScenesConfig,
) -> list[int] | None:
    """The groups a montage window must stay inside: its crop, and its scene unless
    cross-scene windows are allowed."""
    if not scene_of or cfg.cross_scene:
        return list(crop_groups) if crop_groups is not None else None
    return scene_groups(crop_groups, [scene_of[s.index] for s in shots])


def plan_film(
    shots: list[Shot],
    config: PipelineConfig,
    dropped: Mapping[int, str],
    crop_groups: Sequence[int] | None,
    looks: Mapping[int, Any],
    subjects: FilmSubjects | None,
    can_reference: Callable[[str, list[int]], bool] | None,
) -> WindowPlan:
    """Every window of a film (montage, then subject windows, in film order) with its scenes.
    ``can_reference``: whether a subject view of some shots finds the subject a reference
    (None: no subject windows)."""
    scenes, scene_of = film_scenes(shots, looks, subjects, config.scenes)
    natural = natural_points(shots, looks, scene_of, config.scenes)
    groups = window_groups(shots, crop_groups, scene_of, config.scenes)
    plan = plan_windows(shots, config.samples, dropped, groups, natural)
    plan.scenes, plan.scene_of = scenes, scene_of
    plan.windows = [
        w if _n_scenes(shots, w.first, w.last, scene_of) < 2 else replace(w, kind=CROSS_SCENE)
        for w in plan.windows
    ]
    if subjects is not None and can_reference is not None and config.samples.subject_windows:
        runs, _ = usable_runs(shots, config.samples, dropped, crop_groups)
        at = {p: subjects.shot_subjects(s.index) for p, s in enumerate(shots)}
        extra = subject_windows(
            shots, runs, at, scene_of, plan.windows, config.samples, can_reference
        )
        plan.windows = sorted([*plan.windows, *extra], key=lambda w: (w.first, w.last))
        if extra and plan.reason_no_sample is not None:
            plan.reason_no_sample = None
        held = {p for w in plan.windows for p in w.positions}
        plan.excluded = {p: r for p, r in plan.excluded.items() if p not in held}
    return plan


def _n_scenes(shots: Sequence[Shot], first: int, last: int, scene_of: Mapping[int, int]) -> int:
    return len({scene_of.get(shots[p].index, 0) for p in range(first, last + 1)})
