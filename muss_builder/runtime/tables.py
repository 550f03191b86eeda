"""Write index.parquet, films.parquet and stats.json at the end of a build.

Both tables are made from what is on disk, never from one run's memory alone: the index from
the film records, films.parquet from the records plus this run's rows (failures, duplicates)
and earlier runs' failure rows. A film finished by an earlier build keeps its row even when
films.parquet was lost or this run never saw the film.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from muss_builder.core.storage import Storage, write_atomic
from muss_builder.runtime.film_job import FilmResult
from muss_builder.runtime.outdir import Records
from muss_builder.samples.film_record import FilmRecord
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


def index_rows(records: Records) -> list[dict]:
    """Every sample of every finished film in the output, sorted by key."""
    rows = [s.model_dump(mode="json") for r in records.by_id.values() for s in r.samples]
    return sorted(rows, key=lambda r: r["key"])


def earlier_film_rows(store: Storage) -> tuple[list[dict], str | None]:
    """films.parquet as an earlier build left it, or [] and why it could not be read."""
    if not store.exists("films.parquet"):
        return [], None
    try:
        return pq.read_table(pa.BufferReader(store.read_bytes("films.parquet"))).to_pylist(), None
    except (OSError, pa.ArrowException) as exc:  # cut short: the records still hold the films
        return [], f"films.parquet unreadable, rebuilt from the film records ({exc})"


def film_rows(records: Records, results: list[FilmResult], earlier: list[dict]) -> list[dict]:
    """films.parquet: this run's rows; earlier rows of inputs this run did not see (failures,
    and films whose record is still there); a row read off every other record."""
    rows = [r.table_row() for r in results]
    seen = {r["path"] for r in rows}
    for old in earlier:
        if old["path"] in seen:
            continue
        # a failure stays until its film has a record; a finished film stays while it has one
        if (old["status"] == "failed") != (old.get("film_id") in records.by_id):
            rows.append(old)
    listed = {r["film_id"] for r in rows if r["status"] != "failed"}
    for film_id, record in records.by_id.items():
        if film_id not in listed:
            rows.append(_row_of_record(record))
    return sorted(rows, key=lambda r: (r["path"], r.get("film_id") or ""))


def _row_of_record(record: FilmRecord) -> dict:
    """The row of a film known only from its record (its path as the record names it)."""
    path = record.probe.path
    row = FilmResult.from_record(path, record, resumed=False).table_row()
    row["path"] = path or f"(unknown path of film {record.film_id})"
    return row
