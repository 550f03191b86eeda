"""The output folder contract (see README "Output layout") and atomic file writes."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class OutputLayout:
    root: Path

    @property
    def shards(self) -> Path:
        return self.root / "shards"

    @property
    def films(self) -> Path:
        return self.root / "films"

    @property
    def index(self) -> Path:
        return self.root / "index.parquet"

    @property
    def films_table(self) -> Path:
        return self.root / "films.parquet"

    @property
    def stats(self) -> Path:
        return self.root / "stats.json"

    def film_json(self, film_id: str) -> Path:
        return self.films / f"{film_id}.json"

    def make(self) -> None:
        self.shards.mkdir(parents=True, exist_ok=True)
        self.films.mkdir(parents=True, exist_ok=True)


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary sibling and rename: readers see the old file or the new one."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_json_atomic(path: Path, document: Any) -> None:
    write_atomic(path, (json.dumps(document, indent=2, sort_keys=False) + "\n").encode())


def film_is_complete(layout: OutputLayout, film_id: str, config_hash: str) -> dict | None:
    """The film's record if it was built with this config and every shard it lists is in
    place, else None.

    The film json is written last, after every shard was renamed into place, so it is the
    completion marker; sizes are checked so a shard replaced by hand is noticed, and the
    config hash so that a rerun with other settings rebuilds the film instead of keeping
    samples made under the old ones.
    """
    path = layout.film_json(film_id)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    if (record.get("pipeline") or {}).get("config_hash") != config_hash:
        return None
    for shard in record.get("shards", []):
        shard_path = layout.shards / shard["name"]
        if not shard_path.is_file() or shard_path.stat().st_size != shard["size_bytes"]:
            return None
    return record


def remove_film_outputs(layout: OutputLayout, film_id: str) -> None:
    """Remove shards (finished or partial) and the record of a film about to be (re)built."""
    layout.film_json(film_id).unlink(missing_ok=True)
    for pattern in (f"{film_id}-*.tar", f".{film_id}-*.tar.partial*"):
        for stale in layout.shards.glob(pattern):
            stale.unlink(missing_ok=True)
