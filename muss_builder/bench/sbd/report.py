"""The markdown table of shot-boundary scores, one row per detector."""

from __future__ import annotations

import math
from collections.abc import Mapping

from muss_builder.bench.sbd.tally import SetScore

_COLUMNS = (
    "detector",
    "cut F1 ±0",
    "cut F1 ±1",
    "cut F1 ±2",
    "cut P ±1",
    "cut R ±1",
    "gradual F1",
    "gradual P",
    "gradual R",
    "type acc.",
    "found as cut",
    "all F1 ±2",
    "false /10 flashes",
    "false /10 whip-pans",
    "same-loc. R",
    "seconds",
    "frames/s",
)


def _num(value: float | None, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def _cut(score: SetScore, k: int, what: str) -> str:
    counts = score.cuts.get(k)
    return _num(getattr(counts, what)) if counts else "-"


def _seconds(speeds: Mapping | None, name: str) -> float | None:
    if not speeds or name not in speeds:
        return None
    value = speeds[name]
    if isinstance(value, Mapping):
        value = value.get("seconds")
    return None if value is None else float(value)


def format_markdown(results: Mapping[str, SetScore], speeds: Mapping | None = None) -> str:
    """A Markdown table, one row per detector. ``speeds`` maps a detector to its processing
    seconds over the whole set (a number, or a mapping with ``seconds``)."""
    lines = ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    for name, s in results.items():
        seconds = _seconds(speeds, name)
        fps = s.n_frames / seconds if seconds else None
        gradual_found = f"{s.graduals_found_as_cut}/{s.gt_graduals}"
        cells = [
            name,
            _cut(s, 0, "f1"),
            _cut(s, 1, "f1"),
            _cut(s, 2, "f1"),
            _cut(s, 1, "precision"),
            _cut(s, 1, "recall"),
            _num(s.graduals.f1),
            _num(s.graduals.precision),
            _num(s.graduals.recall),
            _num(s.type_accuracy),
            gradual_found,
            _num(s.transitions.f1),
            _num(s.false_per_ten("flash"), 2),
            _num(s.false_per_ten("whip_pan"), 2),
            _num(s.noted_recall("same_location")),
            _num(seconds, 1),
            _num(fps, 0),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if results:
        gt = next(iter(results.values()))
        lines.append("")
        lines.append(
            f"{gt.n_films} films, {gt.n_frames} frames ({gt.duration_seconds / 60:.1f} min); "
            f"ground truth: {gt.gt_cuts} cuts, {gt.gt_graduals} gradual transitions, "
            f"{gt.negatives.get('flash', 0)} flashes, {gt.negatives.get('whip_pan', 0)} "
            "whip-pans. Cut tolerances in frames; columns defined in docs/sbd-benchmark.md."
        )
    return "\n".join(lines) + "\n"
