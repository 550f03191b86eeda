"""What a build does to films' outputs in its output folder: whether a film is complete,
removing a film's outputs before it is rebuilt, and where a worker stages them.

The names and the folder contract are ``muss_builder.core.naming``'s."""

from __future__ import annotations

import fnmatch
import hashlib
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from muss_builder.core.naming import (
    FILMS_DIR,
    SHARDS_DIR,
    OutputLayout,
    film_record_path,
    shard_globs,
)
from muss_builder.core.storage import Storage, is_remote
from muss_builder.curation.examples import EXAMPLES_DIR

if TYPE_CHECKING:  # the records import the captioner, which writes through core
    from muss_builder.samples.film_record import FilmRecord


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
    return all(
        store.size(f"{SHARDS_DIR}/{shard.name}") == shard.size_bytes for shard in record.shards
    )


def remove_film_outputs(store: Storage, film_id: str) -> None:
    """Remove shards (finished or partial) and the record of a film about to be (re)built."""
    record = film_record_path(film_id)
    store.remove(record)
    for rel in store.list(f"{EXAMPLES_DIR}/{film_id}", ".jpg"):  # the report's drop examples
        store.remove(rel)
    finished, partial = shard_globs(film_id)
    if not store.remote:  # partial files are hidden, which Storage.list leaves out
        root = Path(store.root)
        for folder, pattern in (
            (SHARDS_DIR, finished),
            (SHARDS_DIR, partial),
            (FILMS_DIR, f".{Path(record).name}.*"),  # a record whose write was cut short
        ):
            for stale in (root / folder).glob(pattern):
                stale.unlink(missing_ok=True)
        return
    for rel in store.list(SHARDS_DIR, ".tar"):  # objects appear whole: no partial ones
        if fnmatch.fnmatchcase(rel.rsplit("/", 1)[-1], finished):
            store.remove(rel)


def staging_layout(out: str) -> OutputLayout:
    """Where a worker writes a film's files before they are published to ``out``: ``out``
    itself when it is local, else a folder on this node's disk (one per output url)."""
    if not is_remote(out):
        return OutputLayout(Path(Storage.open(out).root))
    key = hashlib.blake2b(out.encode(), digest_size=6).hexdigest()
    return OutputLayout(Path(tempfile.gettempdir()) / "muss-builder-staging" / key)
