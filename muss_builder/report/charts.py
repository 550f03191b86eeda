"""The report's charts: one PNG per distribution, drawn with matplotlib's Agg backend.

Every chart has a title, axis labels with units and a one-line summary (n, median, range);
a distribution with no values still gets its PNG, saying so, so the page never shows a hole.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from muss_builder.captions.camera import CAMERA_KINDS
from muss_builder.captions.facts import SCALES
from muss_builder.report.collect import ReportData
from muss_builder.shots.transitions import TransitionKind

FIGSIZE = (5.2, 3.2)  # inches; at DPI this is the PNG size in pixels / 100
DPI = 100
TRACK_COLOURS = {"montage": "#4c72b0", "subject": "#dd8452"}
BAR_COLOUR = "#55a868"
MAX_BINS = 30

# category orders of the sample schema, so charts of two datasets line up
TRANSITIONS = get_args(TransitionKind)
SHOT_SCALES = SCALES
CAMERA_MOTIONS = CAMERA_KINDS


@dataclass(frozen=True)
class Chart:
    """A chart as the page shows it: its PNG (relative to the page), title and summary."""

    file: str
    title: str
    summary: str


def summarize(values: Sequence[float], unit: str = "") -> str:
    """``n=12, median 3.5 s, range 1.0 to 9.2 s``: the numbers under a histogram."""
    if not values:
        return "n=0"
    unit = f" {unit}" if unit else ""
    return (
        f"n={len(values)}, median {statistics.median(values):.3g}{unit}, "
        f"range {min(values):.3g} to {max(values):.3g}{unit}"
    )


def _empty(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} in this dataset", ha="center", va="center", color="#777777")
    ax.set_xticks([])
    ax.set_yticks([])


def _figure() -> tuple[Figure, Axes]:
    # Agg canvas, no pyplot: no global figure registry, no display lookup, nothing to close
    fig = Figure(figsize=FIGSIZE)
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def _save(fig: Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)


def _bins(values: Sequence[float], integer: bool) -> np.ndarray:
    if integer and max(values) - min(values) < MAX_BINS:  # a bar per whole number, centred
        return np.arange(min(values) - 0.5, max(values) + 1.5)
    edges = np.histogram_bin_edges(values, bins="auto")
    if len(edges) - 1 > MAX_BINS:
        edges = np.histogram_bin_edges(values, bins=MAX_BINS)
    return edges


def histogram(
    path: Path,
    title: str,
    xlabel: str,
    ylabel: str,
    series: dict[str, Sequence[float]],
    integer: bool = False,
) -> None:
    """A histogram of one or more series (stacked, in a legend when more than one)."""
    fig, ax = _figure()
    present = {name: list(v) for name, v in series.items() if len(v)}
    if not present:
        _empty(ax, ylabel)
    else:
        every = [x for v in present.values() for x in v]
        colours = [TRACK_COLOURS.get(name, BAR_COLOUR) for name in present]
        ax.hist(
            list(present.values()),
            bins=_bins(every, integer),
            stacked=True,
            label=list(present),
            color=colours,
            edgecolor="white",
            linewidth=0.5,
        )
        ax.set_ylabel(ylabel)
        ax.yaxis.get_major_locator().set_params(integer=True)
        if integer and max(every) - min(every) < 12:  # few values: a tick on each
            ax.set_xticks(range(int(min(every)), int(max(every)) + 1))
        elif integer:
            ax.xaxis.get_major_locator().set_params(integer=True)
        if len(present) > 1:
            ax.legend(frameon=False)
        ax.spines[["top", "right"]].set_visible(False)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    _save(fig, path)


def bar_chart(
    path: Path, title: str, xlabel: str, ylabel: str, counts: Counter[str], order: Sequence[str]
) -> None:
    """Bars of category counts: the schema's categories in order, then any others."""
    fig, ax = _figure()
    names = [c for c in order if counts.get(c)] + sorted(c for c in counts if c not in order)
    if not names:
        _empty(ax, ylabel)
    else:
        values = [counts[c] for c in names]
        bars = ax.bar(range(len(names)), values, color=BAR_COLOUR)
        ax.bar_label(bars, fontsize=8)
        ax.set_xticks(range(len(names)), [n.replace("_", " ") for n in names])
        ax.tick_params(axis="x", labelrotation=30 if len(names) > 4 else 0, labelsize=8)
        ax.set_ylabel(ylabel)
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.spines[["top", "right"]].set_visible(False)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    _save(fig, path)


def _share(counts: Counter[str]) -> str:
    total = sum(counts.values())
    if not total:
        return "n=0"
    top = ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in counts.most_common(3))
    return f"n={total}: {top}"


def draw_charts(data: ReportData, out_dir: Path, subdir: str = "charts") -> list[Chart]:
    """Every chart of the page as PNGs under ``out_dir/subdir``; paths relative to out_dir."""
    folder = out_dir / subdir
    folder.mkdir(parents=True, exist_ok=True)
    charts: list[Chart] = []

    def add(name: str, title: str, summary: str) -> Path:
        charts.append(Chart(f"{subdir}/{name}.png", title, summary))
        return folder / f"{name}.png"

    every = [x for v in data.shots_per_sample.values() for x in v]
    title = "Shots per sample"
    path = add("shots_per_sample", title, summarize(every, "shots"))
    histogram(path, title, "shots in the sample", "samples", data.shots_per_sample, integer=True)

    every = [x for v in data.sample_seconds.values() for x in v]
    title = "Sample duration"
    path = add("sample_seconds", title, summarize(every, "s"))
    histogram(path, title, "clip duration (s)", "samples", data.sample_seconds)

    title = "Shot duration (shots of montage samples)"
    path = add("shot_seconds", title, summarize(data.shot_seconds, "s"))
    histogram(path, title, "shot duration (s)", "shots", {"montage": data.shot_seconds})

    every = [x for v in data.subjects_per_sample.values() for x in v]
    title = "Film subjects per sample"
    path = add("subjects_per_sample", title, summarize(every, "subjects"))
    histogram(path, title, "subject ids in the sample", "samples", data.subjects_per_sample, True)

    title = "Global caption length (montage samples)"
    path = add("global_caption_chars", title, summarize(data.global_caption_chars, "chars"))
    histogram(path, title, "characters", "captions", {"global": data.global_caption_chars})

    title = "Shot caption length"
    path = add("shot_caption_chars", title, summarize(data.shot_caption_chars, "chars"))
    histogram(path, title, "characters", "captions", {"shot": data.shot_caption_chars})

    title = "Transitions into shots (inside samples)"
    path = add("transitions", title, _share(data.transitions))
    bar_chart(path, title, "transition type", "transitions", data.transitions, TRANSITIONS)

    title = "Shot scale"
    path = add("shot_scales", title, _share(data.shot_scales))
    bar_chart(
        path, title, "shot scale (largest subject box)", "shots", data.shot_scales, SHOT_SCALES
    )

    title = "Camera motion"
    path = add("camera_motions", title, _share(data.camera_motions))
    bar_chart(
        path, title, "camera motion (optical flow)", "shots", data.camera_motions, CAMERA_MOTIONS
    )

    title = "Identity cluster sizes"
    path = add("cluster_sizes", title, summarize(data.cluster_detections, "detections"))
    series = {"subjects": data.cluster_detections}
    histogram(path, title, "detections per film subject id", "subject ids", series, True)

    title = "Reference pose delta"
    path = add("pose_deltas", title, summarize(data.pose_deltas, "deg"))
    series = {"references": data.pose_deltas}
    histogram(path, title, "head-pose change from the target (degrees)", "references", series)
    return charts
