"""Montage windows: runs of 2..N consecutive shots, with reasons for the shots left out.

Rules (all from ``SamplesConfig``):
- a shot longer than ``max_shot_seconds`` is never part of a sample (it breaks the run);
- a shot shorter than ``min_shot_seconds`` may sit inside a sample but never at its edge
  (a window that starts or ends on a flash-frame shot teaches the model a broken cut);
- a window has ``min_shots..max_shots`` shots and ``min..max_sample_seconds`` of footage;
- a shot curation dropped (``dropped``: shot -> its dropping flag) breaks the run like a shot
  that is too long, and is excluded with its flag as the reason;
- a window never spans two different crops (``crop_groups``: shots with one active picture
  box share a group), since one clip has one picture size, nor two scenes (the caller folds
  the scene into the group unless ``scenes.cross_scene`` allows it: ``scene_groups``).

How a run of usable shots is cut into windows (``partition_run``, an exact dynamic programme
over the run): as many of its shots as possible go into a sample; then as few windows as
that allows (longer samples: more cuts to learn from); then as many window edges as possible
on natural points (``natural``: a scene's first shot, an exchange's first shot; a run's own
ends count too); then windows of even length (a long scene of 8 shots with at most 6 a window
gives 4 + 4, not 6 + a lost 2). These windows never overlap. ``lengths`` and
``max_shot_uses`` add overlapping windows on top (``extra_length_windows``), and subject
windows come from ``samples.subject_windows``.
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

# What a window is (the sample's ``window.kind``).
SCENE = "scene"  # montage inside one scene (or anywhere, when scenes are off)
CROSS_SCENE = "cross_scene"  # montage over a scene break: only with ``scenes.cross_scene``
SUBJECT = "subject"  # chosen around one subject (``samples.subject_windows``)

# Why a window starts or ends where it does (``window.start_point`` / ``end_point``).
FILM_EDGE = "film_edge"  # the film's first or last shot
SCENE_EDGE = "scene_edge"  # a scene's first or last shot
EXCHANGE_EDGE = "exchange_edge"  # an exchange's (A-B-A-B) first shot, or the shot before it
RUN_EDGE = "run_edge"  # next to a shot no sample may hold (dropped, too long, another crop)
LIMIT = "limit"  # where the length limits or the partition put it
SUBJECT_EDGE = "subject_edge"  # the subject's first or last shot of the window


@dataclass(frozen=True)
class Window:
    first: int  # position of the first shot in the film's shot list
    last: int  # position of the last shot (inclusive)
    kind: str = SCENE
    start_point: str = LIMIT
    end_point: str = LIMIT
    subject: str = ""  # the subject a SUBJECT window was built around
    reason: str = ""  # why these shots, in words

    @property
    def n_shots(self) -> int:
        return self.last - self.first + 1

    @property
    def positions(self) -> range:
        return range(self.first, self.last + 1)


@dataclass
class WindowPlan:
    windows: list[Window]
    excluded: dict[int, str]  # shot index -> reason code
    reason_no_sample: str | None  # set when ``windows`` is empty
    # the film's scenes the windows were planned in (``scenes.segment``; records for the film
    # record) and each shot's scene; empty when scenes are off
    scenes: list[dict] = field(default_factory=list)
    scene_of: dict[int, int] = field(default_factory=dict)

    def shot_uses(self) -> dict[int, int]:
        """Position -> how many windows hold that shot."""
        return count_uses(self.windows)


def count_uses(windows: Iterable[Window]) -> dict[int, int]:
    """Position -> how many of ``windows`` hold that shot."""
    uses: dict[int, int] = {}
    for w in windows:
        for p in w.positions:
            uses[p] = uses.get(p, 0) + 1
    return uses


def window_fits(shots: Sequence[Shot], first: int, last: int, cfg: SamplesConfig) -> bool:
    """Whether shots ``first..last`` (all usable, one group) make a window by the limits."""
    n = last - first + 1
    if not cfg.min_shots <= n <= cfg.max_shots:
        return False
    span = shots[last].end_seconds - shots[first].start_seconds
    if not cfg.min_sample_seconds <= span <= cfg.max_sample_seconds:
        return False
    edges = (shots[first].duration_seconds, shots[last].duration_seconds)
    return min(edges) >= cfg.min_shot_seconds


def usable_runs(
    shots: Sequence[Shot],
    cfg: SamplesConfig,
    dropped: Mapping[int, str],
    groups: Sequence[int] | None,
) -> tuple[list[range], dict[int, str]]:
    """Maximal runs of consecutive shots a window may hold (positions), and the reason of
    every shot that can be in none (dropped: its flag; too long)."""
    runs: list[range] = []
    excluded: dict[int, str] = {}
    start = None
    for p, shot in enumerate(shots):
        bad = dropped.get(shot.index) or (
            TOO_LONG if shot.duration_seconds > cfg.max_shot_seconds else None
        )
        if bad:
            excluded[p] = bad
        new_group = start is not None and groups is not None and groups[p] != groups[p - 1]
        if (bad or new_group) and start is not None:
            runs.append(range(start, p))
            start = None
        if not bad and start is None:
            start = p
    if start is not None:
        runs.append(range(start, len(shots)))
    return runs, excluded


def partition_run(
    shots: Sequence[Shot], run: range, cfg: SamplesConfig, natural: Mapping[int, str]
) -> list[Window]:
    """Non-overlapping windows over one run, best by (shots held, fewer windows, natural
    edges, even lengths); ``natural``: position -> the kind of natural start there."""
    a, b = run.start, run.stop

    def start_point(p: int) -> str:
        return natural.get(p) or (RUN_EDGE if p == a else LIMIT)

    def end_point(p: int) -> str:
        if p == b - 1:
            return natural.get(b) or RUN_EDGE
        return natural.get(p + 1) or LIMIT

    # best[k]: the score of positions k..b-1 and the window chosen at k (None: k is left out)
    best: dict[int, tuple[tuple[int, int, int, int], int | None]] = {b: ((0, 0, 0, 0), None)}
    for k in range(b - 1, a - 1, -1):
        score, pick = best[k + 1][0], None
        for last in range(min(b - 1, k + cfg.max_shots - 1), k + cfg.min_shots - 2, -1):
            if not window_fits(shots, k, last, cfg):
                continue
            n = last - k + 1
            edges = (start_point(k) != LIMIT) + (end_point(last) != LIMIT)
            rest = best[last + 1][0]
            cand = (rest[0] + n, rest[1] - 1, rest[2] + edges, rest[3] - n * n)
            if cand > score:
                score, pick = cand, last
        best[k] = (score, pick)
    windows, k = [], a
    while k < b:
        last = best[k][1]
        if last is None:
            k += 1
            continue
        windows.append(Window(k, last, SCENE, start_point(k), end_point(last)))
        k = last + 1
    return windows


def extra_length_windows(
    shots: Sequence[Shot],
    runs: Sequence[range],
    cfg: SamplesConfig,
    taken: list[Window],
    natural: Mapping[int, str],
) -> list[Window]:
    """Windows of each of ``cfg.lengths`` shots over the runs, overlapping the ones
    ``taken`` while no shot goes past ``cfg.max_shot_uses`` windows (earliest fit first)."""
    uses = count_uses(taken)
    seen = {(w.first, w.last) for w in taken}
    extra: list[Window] = []
    for length in cfg.lengths:
        for run in runs:
            k = run.start
            while k + length <= run.stop:
                last = k + length - 1
                room = all(uses.get(p, 0) < cfg.max_shot_uses for p in range(k, last + 1))
                if room and (k, last) not in seen and window_fits(shots, k, last, cfg):
                    start = natural.get(k) or (RUN_EDGE if k == run.start else LIMIT)
                    end = natural.get(last + 1) or (RUN_EDGE if last + 1 == run.stop else LIMIT)
                    extra.append(Window(k, last, SCENE, start, end, reason=f"{length} shots"))
                    seen.add((k, last))
                    for p in range(k, last + 1):
                        uses[p] = uses.get(p, 0) + 1
                    k = last + 1
                else:
                    k += 1
    return extra


def plan_windows(
    shots: list[Shot],
    cfg: SamplesConfig,
    dropped: Mapping[int, str] | None = None,
    crop_groups: Sequence[int] | None = None,
    natural: Mapping[int, str] | None = None,
) -> WindowPlan:
    """Montage windows over ``shots``; ``dropped`` (shot index -> flag) and ``crop_groups``
    (one group id per shot, in order) come from curation, ``natural`` (position -> kind of
    natural start: ``story_points``) from the scenes; each may be left out."""
    dropped = dropped or {}
    natural = natural or {}
    runs, excluded = usable_runs(shots, cfg, dropped, crop_groups)
    windows = [w for run in runs for w in partition_run(shots, run, cfg, natural)]
    windows += extra_length_windows(shots, runs, cfg, windows, natural)
    windows.sort(key=lambda w: (w.first, w.last))
    held = {p for w in windows for p in w.positions}
    for run in runs:
        for p in run:
            if p not in held:
                short = shots[p].duration_seconds < cfg.min_shot_seconds
                excluded[p] = SHORT_EDGE if short else NO_WINDOW
    excluded = dict(sorted(excluded.items()))
    reason = None if windows else _why_no_sample(shots, excluded, cfg, dropped)
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
