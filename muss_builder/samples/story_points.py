"""Natural points for window edges: where a film, a scene or an exchange begins.

A sample that starts mid-conversation teaches a generator an opening no film makes. The
window planner (``samples.windows.partition_run``) therefore prefers edges here:

- the film's first shot and its end;
- a scene's first shot (``scenes.segment``), and the end of the scene before it;
- an **exchange's** first shot: set-ups that alternate (A-B-A-B, shot-reverse-shot). Shot
  ``p`` opens one when ``p`` and ``p+2`` look more alike than ``p`` and ``p+1`` by
  ``scenes.exchange_margin`` (colour histograms, ``scenes.looks``), the same holds for
  ``p+1`` and ``p+3``, and the alternation does not already run through ``p-1``. The shot
  after an exchange's last one is natural too (the next beat begins there).

Only a preference: the planner still holds as many shots as it can first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from muss_builder.config import ScenesConfig
from muss_builder.samples.windows import EXCHANGE_EDGE, FILM_EDGE, SCENE_EDGE
from muss_builder.scenes.looks import similarity
from muss_builder.shots.segment import Shot


def _recurs(shots: Sequence[Shot], looks: Mapping[int, Any], p: int, margin: float) -> bool:
    """Shot ``p``'s set-up comes back at ``p+2`` (and ``p+1`` is another set-up)."""
    if p < 0 or p + 2 >= len(shots):
        return False
    a, b, c = (looks.get(shots[q].index) for q in (p, p + 1, p + 2))
    if a is None or b is None or c is None:
        return False
    return similarity(a, c) >= similarity(a, b) + margin


def exchanges(
    shots: Sequence[Shot], looks: Mapping[int, Any], margin: float
) -> list[tuple[int, int]]:
    """(first, last) positions of every run of alternating set-ups of at least 4 shots."""
    recurs = [_recurs(shots, looks, p, margin) for p in range(len(shots))]
    found: list[tuple[int, int]] = []
    p = 0
    while p < len(shots):
        if recurs[p] and p + 1 < len(shots) and recurs[p + 1]:
            q = p
            while q + 1 < len(shots) and recurs[q + 1]:
                q += 1
            found.append((p, q + 2))  # the alternation p..q reaches q+2
            p = q + 1
        else:
            p += 1
    return found


def natural_points(
    shots: Sequence[Shot],
    looks: Mapping[int, Any],
    scene_of: Mapping[int, int],
    cfg: ScenesConfig,
) -> dict[int, str]:
    """Position -> why a window may naturally start there (``len(shots)``: the film's end)."""
    points = {0: FILM_EDGE, len(shots): FILM_EDGE}
    for p in range(1, len(shots)):
        if scene_of.get(shots[p].index) != scene_of.get(shots[p - 1].index):
            points[p] = SCENE_EDGE
    for first, last in exchanges(shots, looks, cfg.exchange_margin):
        points.setdefault(first, EXCHANGE_EDGE)
        points.setdefault(last + 1, EXCHANGE_EDGE)
    return points
