"""Montage windows: runs of 2..N consecutive shots, non-overlapping, with reasons for the rest.

Rules (all from ``SamplesConfig``):
- a shot longer than ``max_shot_seconds`` is never part of a sample (it breaks the run);
- a shot shorter than ``min_shot_seconds`` may sit inside a sample but never at its edge
  (a window that starts or ends on a flash-frame shot teaches the model a broken cut);
- a window has ``min_shots..max_shots`` shots and ``min..max_sample_seconds`` of footage;
- windows are chosen greedily from the start of the film, each as long as the limits allow,
  and never overlap;
- a shot curation dropped (``dropped``: shot -> its dropping flag) breaks the run like a shot
  that is too long, and is excluded with its flag as the reason;
- a window never spans two different crops (``crop_groups``: shots with one active picture
  box share a group), since one clip has one picture size, nor two scenes (the caller folds
  the scene into the group unless ``scenes.cross_scene`` allows it: ``scene_groups``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from muss_builder.config import SamplesConfig
from muss_builder.shots.segment import Shot

# Reason codes stored per shot that is in no sample (film json `excluded_reason`).
TOO_LONG = "shot_too_long"
SHORT_EDGE = "shot_too_short_for_edge"
NO_WINDOW = "no_window_fits"


@dataclass(frozen=True)
class Window:
    first: int  # index of the first shot
    last: int  # index of the last shot (inclusive)

    @property
    def n_shots(self) -> int:
        return self.last - self.first + 1


@dataclass
class WindowPlan:
    windows: list[Window]
    excluded: dict[int, str]  # shot index -> reason code
    reason_no_sample: str | None  # set when ``windows`` is empty
    # the film's scenes the windows were planned in (``scenes.segment``; records for the film
    # record) and each shot's scene; empty when scenes are off
    scenes: list[dict] = field(default_factory=list)
    scene_of: dict[int, int] = field(default_factory=dict)


def _best_end(
    shots: list[Shot],
    first: int,
    cfg: SamplesConfig,
    dropped: Mapping[int, str],
    groups: Sequence[int] | None,
) -> int | None:
    """The furthest shot index that may close a window opened at ``first``, or None."""
    best = None
    start = shots[first].start_seconds
    for last in range(first, min(len(shots), first + cfg.max_shots)):
        shot = shots[last]
        if shot.duration_seconds > cfg.max_shot_seconds or shot.index in dropped:
            break
        if groups is not None and groups[last] != groups[first]:
            break
        span = shot.end_seconds - start
        if span > cfg.max_sample_seconds:
            break
        n = last - first + 1
        if (
            n >= cfg.min_shots
            and span >= cfg.min_sample_seconds
            and (shot.duration_seconds >= cfg.min_shot_seconds)
        ):
            best = last
    return best


def plan_windows(
    shots: list[Shot],
    cfg: SamplesConfig,
    dropped: Mapping[int, str] | None = None,
    crop_groups: Sequence[int] | None = None,
) -> WindowPlan:
    """Windows over ``shots``; ``dropped`` (shot index -> flag) and ``crop_groups`` (one group
    id per shot, in order) come from curation and may be left out."""
    dropped = dropped or {}
    windows: list[Window] = []
    excluded: dict[int, str] = {}
    i = 0
    while i < len(shots):
        shot = shots[i]
        if shot.index in dropped:
            excluded[i] = dropped[shot.index]
            i += 1
            continue
        if shot.duration_seconds > cfg.max_shot_seconds:
            excluded[i] = TOO_LONG
            i += 1
            continue
        if shot.duration_seconds < cfg.min_shot_seconds:
            excluded[i] = SHORT_EDGE
            i += 1
            continue
        last = _best_end(shots, i, cfg, dropped, crop_groups)
        if last is None:
            excluded[i] = NO_WINDOW
            i += 1
            continue
        windows.append(Window(i, last))
        i = last + 1
    reason = None
    if not windows:
        reason = _why_no_sample(shots, excluded, cfg, dropped)
    return WindowPlan(windows, excluded, reason)


def _why_no_sample(
    shots: list[Shot], excluded: dict[int, str], cfg: SamplesConfig, dropped: Mapping[int, str]
) -> str:
    if shots and len(dropped) >= len(shots):
        return f"all {len(shots)} shots dropped ({_counted(dropped.values(), ' ')})"
    total = shots[-1].end_seconds if shots else 0.0
    if len(shots) < cfg.min_shots:
        return (
            f"film has {len(shots)} shot(s) in {total:.2f}s; a sample needs at least "
            f"{cfg.min_shots} shots"
        )
    if total < cfg.min_sample_seconds:
        return f"film is {total:.2f}s long; a sample needs at least {cfg.min_sample_seconds}s"
    detail = _counted(excluded.values())
    return f"no window of {cfg.min_shots}..{cfg.max_shots} usable shots fits ({detail})"


def _counted(codes: Iterable[str], style: str = "") -> str:
    """'2 black, 6 credits' (most first, then by name), or 'credits 6, black 2' (``style``
    ' ': the flag first, as the curation funnel reads)."""
    counts: dict[str, int] = {}
    for code in codes:
        counts[code] = counts.get(code, 0) + 1
    order = (
        sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if style else sorted(counts.items())
    )
    if style:
        return ", ".join(f"{code} {n}" for code, n in order)
    return ", ".join(f"{n} {code}" for code, n in order)


def clean_window_shots(
    shots: list[Shot], window: Window, seconds_of: Callable[[int], float]
) -> list[Shot]:
    """The window's shots with its edges moved off gradual transitions.

    A sample never starts or ends inside a transition: its first shot starts after the frames
    of its incoming dissolve/fade/wipe, and its last shot ends before the next one's. Inside
    the sample, transitions stay where they are. The first shot of a sample is its "start".
    """
    chosen = list(shots[window.first : window.last + 1])
    first = chosen[0]
    start = first.transition_in_frames[1] + 1 if first.transition_in_frames else first.start_frame
    chosen[0] = replace(
        first,
        start_frame=start,
        start_seconds=seconds_of(start),
        transition_in="start",
        transition_in_frames=None,
    )
    following = shots[window.last + 1] if window.last + 1 < len(shots) else None
    if following is not None and following.transition_in_frames:
        end = following.transition_in_frames[0]
        chosen[-1] = replace(chosen[-1], end_frame=end, end_seconds=seconds_of(end))
    return chosen


def window_seconds(shots: list[Shot], window: Window) -> float:
    """Footage a window covers, first shot's start to last shot's end."""
    return shots[window.last].end_seconds - shots[window.first].start_seconds


def scene_groups(
    crop_groups: Sequence[int] | None, scene_of: Sequence[int] | None
) -> list[int] | None:
    """One group per shot from its crop group and its scene: a window stays inside both."""
    if scene_of is None:
        return list(crop_groups) if crop_groups is not None else None
    crops = crop_groups if crop_groups is not None else [0] * len(scene_of)
    ids: dict[tuple[int, int], int] = {}
    return [ids.setdefault(pair, len(ids)) for pair in zip(crops, scene_of, strict=True)]
