"""The report page: one static HTML file, its style inline, images as relative PNG paths.

No scripts, no external URLs: the page opens from a folder, a zip or a CI artifact alike.
Every string that comes from the dataset (film names, reasons, captions) goes through
``html.escape``; a film may be called anything.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable
from typing import Any

from muss_builder.report.charts import Chart
from muss_builder.report.collect import ReportData
from muss_builder.report.sheets import SheetSample

_STYLE = """
body { font-family: "DejaVu Sans", Helvetica, Arial, sans-serif; margin: 0; color: #1d1d1f;
       background: #f4f5f7; }
header { background: #20324d; color: #fff; padding: 18px 24px 14px; }
header h1 { margin: 0 0 4px; font-size: 24px; }
header p { margin: 2px 0; color: #c9d3e3; font-size: 13px; }
main { padding: 8px 24px 40px; max-width: 1400px; }
h2 { border-bottom: 2px solid #20324d; padding-bottom: 4px; margin-top: 28px; }
.counts { display: flex; flex-wrap: wrap; gap: 10px; margin-top: 16px; }
.count { background: #fff; border-radius: 6px; padding: 10px 16px; min-width: 120px;
         box-shadow: 0 1px 2px rgba(0,0,0,.12); }
.count .value { font-size: 24px; font-weight: bold; }
.count .label { font-size: 12px; color: #555; }
.count .detail { font-size: 12px; color: #333; }
table { border-collapse: collapse; background: #fff; font-size: 13px; }
th, td { border: 1px solid #d5d8dd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #e8ebf0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.failed td { background: #fde8e8; }
tr.skipped td { background: #fff6dd; }
.status-failed { color: #b00020; font-weight: bold; }
.status-skipped { color: #8a6100; font-weight: bold; }
.status-ok { color: #1b7f3b; font-weight: bold; }
.charts { display: flex; flex-wrap: wrap; gap: 14px; }
figure { background: #fff; margin: 0; padding: 8px; border-radius: 6px;
         box-shadow: 0 1px 2px rgba(0,0,0,.12); }
figure img { width: 380px; height: auto; display: block; }
figcaption { font-size: 12px; color: #444; margin-top: 4px; max-width: 380px; }
.sample { background: #fff; border-radius: 6px; padding: 10px 14px; margin: 12px 0;
          box-shadow: 0 1px 2px rgba(0,0,0,.12); }
.sample h3 { margin: 0 0 6px; font-size: 15px; }
.sample img { max-width: 100%; }
.sample .meta { color: #555; font-size: 12px; }
.sample p, .sample li { font-size: 13px; }
.problem { color: #b00020; }
.note { color: #555; font-size: 13px; }
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _count(value: str, label: str, detail: str = "") -> str:
    extra = f'<div class="detail">{_e(detail)}</div>' if detail else ""
    return (
        f'<div class="count"><div class="value">{_e(value)}</div>'
        f'<div class="label">{_e(label)}</div>{extra}</div>'
    )


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"


def _bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def _counts(data: ReportData) -> str:
    c = data.counts
    tracks = "serving " + ", ".join(f"{n} {t}" for t, n in c.samples_by_track.items())
    cards = [
        _count(
            str(c.films),
            "input films",
            f"{c.films_ok} ok, {c.films_failed} failed, {c.films_skipped} skipped",
        ),
        _count(str(c.samples), "samples", tracks),
        _count(str(c.shots_in_samples), "shots in samples", "each clip once"),
        _count(_hours(c.sample_seconds), "of clips", "each clip once"),
        _count(_hours(c.film_seconds), "of source film", "films that probed"),
        _count(str(c.shards), "shards", _bytes(c.shard_bytes)),
        _count(str(c.film_subjects), "film subject ids", f"{c.references} reference crops"),
    ]
    return f'<div class="counts">{"".join(cards)}</div>'


def _table(headers: Iterable[str], rows: Iterable[str]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _num(value: Any, fmt: str = "{}") -> str:
    return f'<td class="num">{_e("-" if value is None else fmt.format(value))}</td>'


MAX_OK_ROWS = 100  # a shelf of thousands of films: list every problem, not every success


def _reason_kind(reason: str | None) -> str:
    # reasons read "what: detail" (the detail names the file): group by the "what"
    return (reason or "no reason recorded").split(":", 1)[0].strip()


def _problems(data: ReportData) -> str:
    counts = Counter(
        (f.status, _reason_kind(f.reason)) for f in data.films if f.status in ("failed", "skipped")
    )
    if not counts:
        return '<p class="note">Every input film built.</p>'
    rows = [
        f'<tr class="{_e(status)}"><td class="status-{_e(status)}">{_e(status)}</td>'
        f"<td>{_e(kind)}</td>{_num(n)}</tr>"
        for (status, kind), n in counts.most_common()
    ]
    return _table(("status", "reason", "films"), rows)


def _films(data: ReportData) -> str:
    rows = []
    ok_shown = 0
    for f in data.films:
        if f.status == "ok":
            ok_shown += 1
            if ok_shown > MAX_OK_ROWS:
                continue
        status = f.status + (" (resumed)" if f.resumed else "")
        rows.append(
            f'<tr class="{_e(f.status)}"><td title="{_e(f.path)}">{_e(f.name)}</td>'
            f"<td><code>{_e(f.film_id or '-')}</code></td>"
            f'<td class="status-{_e(f.status)}">{_e(status)}</td><td>{_e(f.reason or "")}</td>'
            + _num(f.duration_seconds, "{:.1f}")
            + _num(f.n_shots)
            + _num(f.n_samples)
            + _num(f.n_shards)
            + _num(f.attempts)
            + _num(f.seconds_total, "{:.1f}")
            + "</tr>"
        )
    headers = ("film", "film id", "status", "reason", "duration (s)", "shots", "samples",
               "shards", "attempts", "build time (s)")  # fmt: skip
    hidden = ok_shown - MAX_OK_ROWS
    note = f'<p class="note">{hidden} more ok films are in films.parquet.</p>' if hidden > 0 else ""
    return _table(headers, rows) + note


def _counter_table(counter: Counter[str], what: str, empty: str) -> str:
    if not counter:
        return f'<p class="note">{_e(empty)}</p>'
    rows = [f"<tr><td>{_e(k)}</td>{_num(v)}</tr>" for k, v in counter.most_common()]
    return _table((what, "shots"), rows)


def _stages(stats: dict[str, Any]) -> str:
    seconds = stats.get("stage_seconds") or {}
    if not seconds:
        return '<p class="note">stats.json has no stage timings.</p>'
    speed = stats.get("stage_film_seconds_per_second") or {}
    rows = [
        f"<tr><td>{_e(stage)}</td>{_num(s, '{:.1f}')}{_num(speed.get(stage), '{:.1f}')}</tr>"
        for stage, s in seconds.items()
    ]
    return _table(("stage", "seconds (all films)", "film seconds per second"), rows)


def _charts(charts: list[Chart]) -> str:
    figures = [
        f'<figure><img src="{_e(c.file)}" alt="{_e(c.title)}">'
        f"<figcaption>{_e(c.summary)}</figcaption></figure>"
        for c in charts
    ]
    return f'<div class="charts">{"".join(figures)}</div>'


def _sample(s: SheetSample) -> str:
    focus = f", focus {', '.join(s.focus_subjects)}" if s.focus_subjects else ""
    parts = [
        f'<div class="sample"><h3><code>{_e(s.key)}</code></h3>',
        f'<div class="meta">{_e(" + ".join(s.tracks))} tracks{_e(focus)} &middot; '
        f"{_e(s.source_file)} "
        f"&middot; {len(s.shots)} shots, {s.duration_seconds:.2f} s</div>",
        f'<img src="{_e(s.file)}" alt="frames of {_e(s.key)}">',
    ]
    if s.problem:
        parts.append(f'<p class="problem">{_e(s.problem)}</p>')
    parts.append(f"<p><b>Global caption.</b> {_e(s.global_caption or '(none)')}</p><ol>")
    for shot in s.shots:
        who = f" [{', '.join(shot.subjects)}]" if shot.subjects else ""
        parts.append(
            f"<li><b>{_e(shot.transition_in)}</b>, {shot.start_seconds:.2f} to "
            f"{shot.end_seconds:.2f} s{_e(who)}: {_e(shot.caption or '(no caption)')}</li>"
        )
    parts.append("</ol>")
    if s.references:
        items = "".join(f"<li>{_e(r)}</li>" for r in s.references)
        parts.append(f"<p><b>References</b></p><ul>{items}</ul>")
    parts.append("</div>")
    return "".join(parts)


def render_page(
    data: ReportData,
    charts: list[Chart],
    sheets: list[SheetSample],
    seed: int,
    curation: str = "",
) -> str:
    """The whole page as a string; ``curation`` is the curation section's HTML."""
    stats = data.stats
    name = data.dataset.rstrip("/").rsplit("/", 1)[-1] or data.dataset
    built = (
        f"pipeline {stats.get('pipeline', '?')} (config {stats.get('config_hash', '?')}), "
        f"muss-builder {stats.get('muss_builder_version', '?')}, "
        f"{stats.get('executor', '?')} executor, last run {stats.get('wall_seconds', '?')} s"
    )
    sheet_note = (
        f"{len(sheets)} of {data.counts.samples} samples drawn at random (seed {seed}): one "
        "frame per shot (the keyframe its subject boxes were measured on, else the middle "
        "frame) and the reference crops; boxes are labelled with film subject ids."
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Dataset report: {_e(name)}</title>
<style>{_STYLE}</style></head>
<body>
<header><h1>Dataset report: {_e(name)}</h1>
<p>{_e(data.dataset)}</p><p>{_e(built)}</p></header>
<main>
{_counts(data)}
<h2>Films</h2>
<p class="note">Failed and skipped inputs by reason:</p>
{_problems(data)}
<p class="note">One row per input (films.parquet); failures first, with their reasons.</p>
{_films(data)}
{curation}
<h2>Shots left out of samples</h2>
{_counter_table(data.excluded_shots, "reason", "No shot was left out.")}
<h2>Distributions</h2>
<p class="note">Per index.parquet row (stacked by track; a sample serving both tracks has a
row in each, one clip); per shot from the samples' metadata, so every clip counts once.</p>
{_charts(charts)}
<h2>Samples</h2>
<p class="note">{_e(sheet_note)}</p>
{"".join(_sample(s) for s in sheets) or '<p class="note">The dataset has no samples.</p>'}
<h2>Where the build time went</h2>
<p class="note">stats.json of the last run (a resumed film costs that run nothing).</p>
{_stages(stats)}
</main></body></html>
"""
