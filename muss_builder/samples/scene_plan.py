"""Scenes for the window planner: segment a film's shots and fold the scenes into the groups
a window may not span (``windows.plan_windows``'s ``crop_groups``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from muss_builder.config import ScenesConfig
from muss_builder.samples.windows import scene_groups
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
    """The groups a window must stay inside: its crop, and its scene unless cross-scene
    windows are allowed."""
    if not scene_of or cfg.cross_scene:
        return list(crop_groups) if crop_groups is not None else None
    return scene_groups(crop_groups, [scene_of[s.index] for s in shots])
