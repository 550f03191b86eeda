"""Subject windows: runs of shots chosen around one subject (issue 19, the subject track).

A montage window is cut where the story allows; whichever subject it happens to show becomes
its focus. A subject window is chosen *for* a subject: it starts and ends on a shot the
subject is in, the subject is in at least ``samples.subject_min_share`` of its shots, it
stays inside one scene unless the subject goes on over the break (the shots on both sides
of it hold the subject, and ``samples.subject_cross_scene`` allows it), and its references
come from shots outside it as for any subject view (a subject none can be found for gets no
window). Subjects seen in more usable shots go first; each takes the window holding it in
the most shots (then the longest, then the earliest), again and again, its windows never
sharing a shot, while no shot passes ``samples.max_shot_uses`` windows of any kind; a window
equal to one already planned is not repeated.
The sample records the subject, its share and the scenes crossed (``window.reason``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from muss_builder.config import SamplesConfig
from muss_builder.samples.windows import SUBJECT, SUBJECT_EDGE, Window, count_uses, window_fits
from muss_builder.shots.segment import Shot
from muss_builder.subjects.stage import subject_order


def _crossings_ok(
    first: int, last: int, holds: Sequence[bool], scene_at: Sequence[int], cross: bool
) -> bool:
    """Every scene break inside ``first..last`` has the subject on both sides (and crossing
    is allowed at all)."""
    for p in range(first + 1, last + 1):
        if scene_at[p] != scene_at[p - 1] and not (cross and holds[p] and holds[p - 1]):
            return False
    return True


def _best_window(
    shots: Sequence[Shot],
    run: range,
    holds: Sequence[bool],
    scene_at: Sequence[int],
    uses: Mapping[int, int],
    own: set[int],
    seen: set[tuple[int, int]],
    cfg: SamplesConfig,
    can_reference: Callable[[list[int]], bool],
) -> tuple[int, int, int] | None:
    """(first, last, shots holding the subject) of the best free window in ``run`` (``own``:
    shots of the subject's earlier windows, which its windows never share)."""
    best: tuple[int, int, int] | None = None
    free = [uses.get(p, 0) < cfg.max_shot_uses and p not in own for p in range(len(shots))]
    for first in run:
        if not (holds[first] and free[first]):
            continue
        held = 0
        for last in range(first, min(run.stop, first + cfg.max_shots)):
            if not free[last]:
                break
            held += holds[last]
            n = last - first + 1
            if not holds[last] or held < cfg.subject_min_share * n or (first, last) in seen:
                continue
            if not window_fits(shots, first, last, cfg):
                continue
            if not _crossings_ok(first, last, holds, scene_at, cfg.subject_cross_scene):
                continue
            better = best is None or (held, n) > (best[2], best[1] - best[0] + 1)
            if better and can_reference([shots[p].index for p in range(first, last + 1)]):
                best = (first, last, held)
    return best


def subject_windows(
    shots: Sequence[Shot],
    runs: Sequence[range],
    subjects_at: Mapping[int, Sequence[str]],
    scene_of: Mapping[int, int],
    taken: Sequence[Window],
    cfg: SamplesConfig,
    can_reference: Callable[[str, list[int]], bool],
) -> list[Window]:
    """Windows around each subject over ``runs`` (usable shots of one crop); ``subjects_at``:
    position -> subject ids in that shot; ``can_reference(subject, film shot indexes)``:
    whether a subject view of those shots would find the subject a reference."""
    scene_at = [scene_of.get(s.index, 0) for s in shots]
    usable = {p for run in runs for p in run}
    count: dict[str, int] = {}
    for p in usable:
        for sid in subjects_at.get(p, ()):
            count[sid] = count.get(sid, 0) + 1
    uses = count_uses(taken)
    seen = {(w.first, w.last) for w in taken}
    out: list[Window] = []
    for sid in sorted(count, key=lambda s: (-count[s], subject_order(s))):
        if count[sid] < cfg.min_shots:
            continue
        holds = [sid in subjects_at.get(p, ()) for p in range(len(shots))]
        own: set[int] = set()
        while True:
            found = [
                b
                for run in runs
                if (b := _best_window(
                    shots, run, holds, scene_at, uses, own, seen, cfg,
                    lambda film_shots, s=sid: can_reference(s, film_shots),
                )) is not None
            ]  # fmt: skip
            if not found:
                break
            first, last, held = max(found, key=lambda b: (b[2], b[1] - b[0], -b[0]))
            out.append(_window(sid, first, last, held, scene_at))
            seen.add((first, last))
            for p in range(first, last + 1):
                uses[p] = uses.get(p, 0) + 1
                own.add(p)
    return out


def _window(sid: str, first: int, last: int, held: int, scene_at: Sequence[int]) -> Window:
    n = last - first + 1
    scenes = sorted(set(scene_at[first : last + 1]))
    reason = f"{sid} is in {held} of {n} shots"
    if len(scenes) > 1:
        reason += f", going on over {len(scenes) - 1} scene break(s)"
    return Window(first, last, SUBJECT, SUBJECT_EDGE, SUBJECT_EDGE, sid, reason)
