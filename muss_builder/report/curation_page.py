"""Drawing the report's curation section (the data is ``curation.py``'s): quality histograms,
one contact sheet per drop reason and the section's HTML."""

from __future__ import annotations

import html
from pathlib import Path

from PIL import Image, ImageDraw

from muss_builder.report.charts import Chart, histogram, summarize
from muss_builder.report.curation import CurationData, Example, funnel_rows

SHEET_COLUMNS = 6
TILE = (192, 120)  # thumbnail box on a sheet, with a caption line under it
CAPTION_HEIGHT = 14


def draw_sheet(examples: list[Example], path: Path, limit: int = 18) -> int:
    """A grid of up to ``limit`` thumbnails labelled 'film_id shot'; how many it shows."""
    shown = examples[:limit]
    rows = (len(shown) + SHEET_COLUMNS - 1) // SHEET_COLUMNS
    tw, th = TILE
    sheet = Image.new("RGB", (SHEET_COLUMNS * tw, rows * (th + CAPTION_HEIGHT)), "white")
    draw = ImageDraw.Draw(sheet)
    for n, example in enumerate(shown):
        x, y = (n % SHEET_COLUMNS) * tw, (n // SHEET_COLUMNS) * (th + CAPTION_HEIGHT)
        with Image.open(example.path) as image:
            image = image.convert("RGB")
            image.thumbnail((tw - 4, th - 4))
            sheet.paste(image, (x + (tw - image.width) // 2, y + (th - image.height) // 2))
        draw.text((x + 4, y + th), f"{example.film_id[:8]} shot {example.shot}", fill="black")
    sheet.save(path, optimize=True)
    return len(shown)


def draw_curation(data: CurationData, out_dir: Path, subdir: str) -> tuple[list[Chart], dict]:
    """Histograms of the quality measures and one example sheet per drop reason."""
    folder = out_dir / subdir
    folder.mkdir(parents=True, exist_ok=True)
    charts = []
    for measure, values in sorted(data.quality.items()):
        name = f"quality_{measure}"
        charts.append(Chart(f"{subdir}/{name}.png", measure, summarize(values)))
        histogram(folder / f"{name}.png", measure, measure, "shots", {"all shots": values})
    sheets = {}
    for reason, examples in sorted(data.examples.items()):
        name = f"dropped_{reason}.png"
        sheets[reason] = (f"{subdir}/{name}", draw_sheet(examples, folder / name), len(examples))
    return charts, sheets


def _pct(n: int, total: int) -> str:
    return f"{100 * n / total:.1f} %" if total else "-"


def curation_section(data: CurationData, charts: list[Chart], sheets: dict) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(step)}</td><td>{e(reason)}</td><td>{n:,}</td>"
        f"<td>{_pct(n, data.shots_in)}</td></tr>"
        for step, reason, n in funnel_rows(data)
    )
    parts = [
        "<h2>Curation</h2>",
        '<p class="note">Every detected shot, from the film records: dropped by a filter '
        "(its reason code), kept, then left out by the window planner or put in a sample.</p>",
        "<table><tr><th>step</th><th>reason</th><th>shots</th><th>share</th></tr>",
        rows,
        "</table>",
    ]
    if charts:
        figures = "".join(
            f'<figure><img src="{e(c.file)}" alt="{e(c.title)}">'
            f"<figcaption>{e(c.title)}: {e(c.summary)}</figcaption></figure>"
            for c in charts
        )
        parts.append(f'<h3>Quality measures (all shots)</h3><div class="charts">{figures}</div>')
    for reason, (file, shown, total) in sheets.items():
        parts.append(
            f'<h3>Dropped: {e(reason)}</h3><p class="note">{shown} of the {total} example '
            f"thumbnails the build kept (film id, shot index).</p>"
            f'<img src="{e(file)}" alt="shots dropped as {e(reason)}">'
        )
    if data.dropped and not sheets:
        parts.append('<p class="note">The build kept no thumbnails of dropped shots.</p>')
    return "".join(parts)
