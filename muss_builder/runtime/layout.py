"""The output folder contract (see README "Output layout") and atomic file writes."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from muss_builder.runtime.storage import Storage, is_remote

if TYPE_CHECKING:  # the records import the captioner, which writes through this module
    from muss_builder.samples.film_record import FilmRecord


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


def is_leftover(name: str, in_root: bool = False) -> bool:
    """Whether a file named ``name`` in shards/ or films/ (``in_root``: in OUT itself) is a
    temporary of an interrupted writer (write_atomic, Storage's tmp + rename, the shard
    writer's hidden partial tar) or a stray ``*.tmp``/``*.part``: a finished build leaves
    none, the next build removes them and ``validate`` names them. In the root only dot-named
    temporaries count: ``.lock`` and the user's own dot-files stay."""
    if in_root:
        return name.startswith(".") and (".tmp" in name or ".part" in name)
    return name.startswith(".") or name.endswith((".tmp", ".part")) or ".tmp-" in name


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary sibling and rename: readers see the old file or the new one."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_json_atomic(path: Path, document: Any) -> None:
    write_atomic(path, json_bytes(document))


def film_is_complete(store: Storage, record: FilmRecord, config_hash: str) -> bool:
    """Whether the film of ``record`` (read with ``outdir.read_record``) was built with this
    config and every shard it lists is in place.

    The film json is written last, after every shard was renamed (or uploaded) into place, so
    it is the completion marker; sizes are checked so a shard replaced by hand is noticed, and
    the config hash so that a rerun with other settings rebuilds the film instead of keeping
    samples made under the old ones.
    """
    if record.pipeline.get("config_hash") != config_hash:
        return False
    return all(store.size(f"shards/{shard.name}") == shard.size_bytes for shard in record.shards)


def remove_film_outputs(store: Storage, film_id: str) -> None:
    """Remove shards (finished or partial) and the record of a film about to be (re)built."""
    store.remove(f"films/{film_id}.json")
    if not store.remote:  # partial files are hidden, which Storage.list leaves out
        root = Path(store.root)
        for folder, pattern in (
            ("shards", f"{film_id}-*.tar"),
            ("shards", f".{film_id}-*.tar.partial*"),
            ("films", f".{film_id}.json.*"),  # a record whose write was cut short
        ):
            for stale in (root / folder).glob(pattern):
                stale.unlink(missing_ok=True)
        return
    for rel in store.list("shards", ".tar"):  # objects appear whole: no partial ones
        if rel.rsplit("/", 1)[-1].startswith(f"{film_id}-"):
            store.remove(rel)


def staging_layout(out: str) -> OutputLayout:
    """Where a worker writes a film's files before they are published to ``out``: ``out``
    itself when it is local, else a folder on this node's disk (one per output url)."""
    if not is_remote(out):
        return OutputLayout(Path(Storage.open(out).root))
    key = hashlib.blake2b(out.encode(), digest_size=6).hexdigest()
    return OutputLayout(Path(tempfile.gettempdir()) / "muss-builder-staging" / key)


def json_bytes(document: Any) -> bytes:
    return (json.dumps(document, indent=2, sort_keys=False) + "\n").encode()
