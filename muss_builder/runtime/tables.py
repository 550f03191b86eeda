"""Write index.parquet, films.parquet and stats.json at the end of a build."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from muss_builder.runtime.layout import OutputLayout, write_atomic
from muss_builder.shards.schemas import table_schema


def write_table(rows: list[dict], schema_name: str, path: Path) -> None:
    schema = table_schema(schema_name)
    table = pa.Table.from_pylist(
        [{f.name: r.get(f.name) for f in schema} for r in rows], schema=schema
    )
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    write_atomic(path, sink.getvalue().to_pybytes())


def index_rows_from_records(layout: OutputLayout) -> list[dict]:
    """Every sample of every finished film in the output, sorted by key."""
    rows: list[dict] = []
    for record_path in sorted(layout.films.glob("*.json")):
        record = json.loads(record_path.read_text())
        rows.extend(record.get("samples", []))
    return sorted(rows, key=lambda r: r["key"])


def merge_film_rows(layout: OutputLayout, rows: list[dict]) -> list[dict]:
    """This run's rows, plus earlier runs' rows for inputs this run did not see."""
    seen = {r["path"] for r in rows}
    merged = list(rows)
    if layout.films_table.is_file():
        for old in pq.read_table(layout.films_table).to_pylist():
            if old["path"] not in seen:
                merged.append(old)
    return merged
