"""One film's samples, read in order from its per-film shards, checked as they go.

A film is opened when the interleave first needs it and closed when its last sample is out:
only ``window`` films are open at a time. A local shard is read in place (members are copied
from their offsets, never loaded whole); a shard on an object store is downloaded to the
staging folder first, one shard of each open film at a time, and deleted once read. Every
shard goes through ``shards.reader`` (safe names, types, sizes, end-of-archive marker), its
sha256 is checked against the film record before any of it is used, and its keys must be the
record's keys in the record's order.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import IO

from muss_builder.core.naming import SHARDS_DIR, film_of_key
from muss_builder.core.storage import Storage, file_sha256, local_copy
from muss_builder.pack.source import SourceFilm, SourceShard, keys_digest
from muss_builder.shards.reader import Member, ShardFormatError, ShardSample, iter_samples


class PackError(RuntimeError):
    """A source shard is not what its film record says (changed or damaged since the build)."""

    def __init__(self, film_id: str, shard: str, reason: str) -> None:
        self.film_id, self.shard, self.reason = film_id, shard, reason
        super().__init__(f"{SHARDS_DIR}/{shard} (film {film_id}): {reason}")


class FilmStream:
    """The samples of ``film``, as (key, members) in the order of its shards."""

    def __init__(self, store: Storage, film: SourceFilm, staging: Path, verify: bool) -> None:
        self.store, self.film, self.staging, self.verify = store, film, staging, verify
        self._shards = iter(film.shards)
        self._shard: SourceShard | None = None
        self._copy: Path | None = None  # a downloaded shard, deleted when read
        self._samples: Iterator[ShardSample] | None = None
        self._keys: list[str] = []
        self.file: IO[bytes] | None = None  # the shard being read, for copying its members
        self.position = 0  # samples of the film read so far

    def _fail(self, reason: str) -> PackError:
        name = self._shard.name if self._shard else "(none)"
        return PackError(self.film.film_id, name, reason)

    def _open_next(self) -> None:
        self._shard = next(self._shards, None)
        if self._shard is None:
            raise PackError(
                self.film.film_id,
                self.film.shards[-1].name if self.film.shards else "(none)",
                f"the film's shards hold fewer samples than its record's {self.film.n_samples}",
            )
        rel = f"{SHARDS_DIR}/{self._shard.name}"
        try:
            if self.store.remote:
                self._copy = local_copy(self.store.url(rel), self.staging / "sources")
                path = self._copy
            else:
                path = Path(self.store.url(rel))
            if self.verify and file_sha256(path) != self._shard.sha256:
                raise self._fail("its content differs from the sha256 its film record lists")
        except OSError as exc:
            raise self._fail(f"cannot read: {exc}") from exc
        self._samples = iter_samples(path, load=())
        self._keys = []
        self.file = open(path, "rb")  # noqa: SIM115 - closed in _end_shard() or close()

    def _end_shard(self) -> None:
        assert self._shard is not None
        if len(self._keys) != self._shard.n_samples or (
            keys_digest(self._keys) != self._shard.keys_digest
        ):
            raise self._fail(
                f"holds {len(self._keys)} samples whose keys are not the "
                f"{self._shard.n_samples} its film record lists"
            )
        self._drop_copy()
        self._samples = None

    def _drop_copy(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
        if self._copy is not None:
            self._copy.unlink(missing_ok=True)
            self._copy = None

    def _next_sample(self) -> ShardSample | None:
        assert self._samples is not None
        try:
            return next(self._samples, None)
        except ShardFormatError as exc:
            raise self._fail(exc.detail) from exc

    def next(self) -> tuple[str, list[Member]]:
        """The film's next sample: its key and its members in tar order (their bytes are in
        ``self.file`` until the next call)."""
        while True:
            if self._samples is None:
                self._open_next()
            sample = self._next_sample()
            if sample is None:
                self._end_shard()
                continue
            if film_of_key(sample.key) != self.film.film_id:
                raise self._fail(f"holds sample {sample.key}, not a key of this film")
            self._keys.append(sample.key)
            self.position += 1
            return sample.key, list(sample.entries.values())

    def skip(self, n: int) -> None:
        """Pass over ``n`` samples (those a resumed pack already wrote): headers only."""
        for _ in range(n):
            self.next()

    def skip_to(self, position: int) -> None:
        """Pass over samples (headers only) until the film's ``position``-th is next."""
        self.skip(position - self.position)

    def finish(self) -> None:
        """After the last sample: the film's shards must hold nothing more."""
        if self._samples is not None:
            if self._next_sample() is not None:
                raise self._fail(f"holds more samples than its record's {self.film.n_samples}")
            self._end_shard()
        if next(self._shards, None) is not None:
            raise self._fail(f"the record lists more shards than its {self.film.n_samples} samples")

    def close(self) -> None:
        """Release the film (on success or error): a downloaded shard is deleted."""
        if self._samples is not None and hasattr(self._samples, "close"):
            self._samples.close()  # type: ignore[union-attr]
        self._samples = None
        self._drop_copy()
