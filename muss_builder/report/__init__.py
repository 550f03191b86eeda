"""``muss-builder report DIR``: an HTML page with PNG charts and contact sheets of a dataset."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from muss_builder.report.charts import Chart, draw_charts
from muss_builder.report.collect import ReportData, ReportInputError, collect
from muss_builder.report.curation_page import curation_section, draw_curation
from muss_builder.report.page import render_page
from muss_builder.report.scenes_page import scenes_section
from muss_builder.report.sheets import SheetSample, draw_sheets, pick_samples
from muss_builder.shards.reader import DEFAULT_LIMITS, ReaderLimits

__all__ = ["Report", "ReportInputError", "write_report"]

PAGE_NAME = "report.html"


@dataclass
class Report:
    """What ``write_report`` wrote, with the numbers it shows."""

    page: Path
    data: ReportData
    charts: list[Chart]
    sheets: list[SheetSample]
    curation_images: list[str]  # the curation section's charts and drop-reason sheets


def write_report(
    dataset_dir: str | Path,
    out_dir: str | Path | None = None,
    samples: int = 6,
    seed: int = 0,
    limits: ReaderLimits = DEFAULT_LIMITS,
) -> Report:
    """Write ``report.html`` and its PNGs into ``out_dir`` (default ``DIR/report``).

    ``samples`` random samples (drawn with ``seed``) get contact sheets. Raises
    ReportInputError when ``dataset_dir`` is not a readable dataset.
    """
    if samples < 0:
        raise ValueError(f"samples must be >= 0, got {samples}")
    data = collect(dataset_dir, limits)
    out = Path(out_dir) if out_dir is not None else Path(dataset_dir) / "report"
    out.mkdir(parents=True, exist_ok=True)
    charts = draw_charts(data, out, "charts")
    keys = pick_samples(list(data.shard_of), samples, seed)
    shards = Path(dataset_dir) / "shards"
    sheets = draw_sheets(shards, data.shard_of, keys, out, "samples", limits)
    page = out / PAGE_NAME
    curation_charts, drop_sheets = draw_curation(data.curation, out, "curation")
    curation = curation_section(data.curation, curation_charts, drop_sheets)
    curation += scenes_section(data.scenes)  # after the funnel: scenes are of the kept shots
    page.write_text(render_page(data, charts, sheets, seed, curation), encoding="utf-8")
    images = [c.file for c in curation_charts] + [file for file, _, _ in drop_sheets.values()]
    return Report(page=page, data=data, charts=charts, sheets=sheets, curation_images=images)
