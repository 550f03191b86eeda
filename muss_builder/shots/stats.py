"""Per-frame statistics of a shot detection, for tuning (like PySceneDetect's stats file).

``muss-builder shots FILM --stats-file stats.csv`` writes one row per decoded frame. Every
detector fills the first four columns; the default detector ("muss") fills the scores it
computed and what it decided about each candidate; "transnetv2" fills the net's columns.
A column a detector does not compute is empty. See docs/shots-stats.md for how to read it.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from muss_builder.shots.combined import MussDetector
    from muss_builder.shots.detector import ShotDetector
    from muss_builder.shots.segment import ShotDetection

# column -> what it holds; the order is the file's column order
STATS_COLUMNS: dict[str, str] = {
    "frame": "index of the decoded frame (the shot list's frame numbers)",
    "seconds": "time of the frame from the film's first frame",
    "shot": "index of the shot the frame belongs to",
    "transition": "'cut' on the first frame of a shot after a cut; the kind (dissolve, "
    "fade_black, fade_white, wipe, gradual) on the frames of a gradual transition",
    "hist_diff": "HSV histogram distance to the previous frame, 0..1",
    "pixel_diff": "mean absolute thumbnail difference to the previous frame, 0..1",
    "change": "max(hist_diff, pixel_diff): the cut score candidates are peaks of",
    "local_median": "median change of the frames around (median_radius each side)",
    "gradual_change": "histogram distance from frame t - L to t + L (gradual candidates)",
    "luma": "mean grey level of the thumbnail, 0..1 (fades)",
    "luma_std": "its standard deviation (a fade's bottom is uniform)",
    "step_ratio": "change across the frame over the largest change beside it (on the "
    "picture's side only where a picture appears on or vanishes into an empty frame)",
    "changed_share": "share of the picture whose grey level changed from the frame before",
    "net_single": "TransNetV2 single-frame probability (empty where the net did not run)",
    "net_many": "TransNetV2 many-hot probability",
    "cut_candidate": "verdict on a cut candidate: flash, fade_black/fade_white, clear_cut, "
    "net_cut, net_no_cut, step_cut, step_no_cut (empty: not a candidate)",
    "gradual_candidate": "verdict on a gradual candidate: the kind typed from features, "
    "cut_shadow (a clear cut's), not_asked, net_<kind>, net_no_gradual",
}

Columns = dict[str, list]


def detector_columns(detector: ShotDetector) -> Columns:
    """The per-frame columns ``detector`` computed (after ``finish``), by column name."""
    if detector.name == "muss":
        return _muss_columns(detector)  # type: ignore[arg-type]
    prediction = getattr(detector, "prediction", None)
    if prediction is None:
        return {}
    return {"net_single": list(prediction.single), "net_many": list(prediction.many)}


def _muss_columns(detector: MussDetector) -> Columns:
    f = detector.features
    if f is None:
        return {}
    th = detector.th
    change = np.maximum(f.hist_diff, f.pixel_diff)
    frames = range(f.first, f.first + f.n)
    from muss_builder.shots.combined import changed_share, local_median

    probs = detector.probabilities
    empty_edges = detector.empty_edges(f)
    return {
        "hist_diff": list(f.hist_diff),
        "pixel_diff": list(f.pixel_diff),
        "change": list(change),
        "local_median": list(local_median(change, th.median_radius)),
        "gradual_change": list(detector.gradual_change(f)),
        "luma": list(f.luma),
        "luma_std": list(f.luma_std),
        "step_ratio": [detector.step_ratio(f, t, int(empty_edges[f.local(t)])) for t in frames],
        "changed_share": [0.0] + [changed_share(f, t, th.changed_pixel) for t in frames[1:]],
        "net_single": [probs[t][0] if t in probs else None for t in frames],
        "net_many": [probs[t][1] if t in probs else None for t in frames],
        "cut_candidate": [detector.cut_verdicts.get(t) for t in frames],
        "gradual_candidate": [detector.gradual_verdicts.get(t) for t in frames],
    }


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, float | np.floating):
        return f"{float(value):.6g}"
    return value


def stats_rows(detection: ShotDetection) -> list[dict[str, object]]:
    """One row per decoded frame of ``detection`` (which must hold ``frame_stats``)."""
    columns = detection.frame_stats or {}
    marks: dict[int, str] = {}
    for t in detection.transitions:
        if t.is_cut:
            marks[t.start_frame] = "cut"
        else:
            marks.update((k, t.kind) for k in range(t.start_frame, t.end_frame + 1))
    shot_of = np.zeros(detection.n_frames, np.int64)
    for shot in detection.shots:
        shot_of[shot.start_frame : shot.end_frame] = shot.index
    rows = []
    for frame in range(detection.n_frames):
        row: dict[str, object] = {
            "frame": frame,
            "seconds": detection.seconds_of(frame),
            "shot": int(shot_of[frame]),
            "transition": marks.get(frame, ""),
        }
        for name in list(STATS_COLUMNS)[4:]:
            values = columns.get(name)
            row[name] = _cell(values[frame] if values is not None else None)
        rows.append(row)
    return rows


def write_stats_csv(path: str | Path, detection: ShotDetection) -> int:
    """Write the statistics file; returns the number of rows (frames)."""
    rows = stats_rows(detection)
    with open(path, "w", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(STATS_COLUMNS))
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)
