"""Write index.parquet, films.parquet and stats.json at the end of a build."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from muss_builder.runtime.layout import write_atomic
from muss_builder.runtime.storage import Storage
from muss_builder.shards.schemas import table_schema


def table_bytes(rows: list[dict], schema_name: str) -> bytes:
    """A parquet file of ``rows`` with the contract schema ``schema_name``."""
    schema = table_schema(schema_name)
    table = pa.Table.from_pylist(
        [{f.name: r.get(f.name) for f in schema} for r in rows], schema=schema
    )
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


def write_table(rows: list[dict], schema_name: str, path: Path) -> None:
    write_atomic(path, table_bytes(rows, schema_name))


def index_rows_from_records(store: Storage) -> list[dict]:
    """Every sample of every finished film in the output, sorted by key."""
    rows: list[dict] = []
    for rel in store.list("films", ".json"):
        record = json.loads(store.read_bytes(rel))
        rows.extend(record.get("samples", []))
    return sorted(rows, key=lambda r: r["key"])


def merge_film_rows(store: Storage, rows: list[dict]) -> list[dict]:
    """This run's rows, plus earlier runs' rows for inputs this run did not see."""
    seen = {r["path"] for r in rows}
    merged = list(rows)
    if store.exists("films.parquet"):
        old_table = pq.read_table(pa.BufferReader(store.read_bytes("films.parquet")))
        merged.extend(old for old in old_table.to_pylist() if old["path"] not in seen)
    return merged
