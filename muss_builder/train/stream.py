"""Generic shard streaming: rank/worker split, shuffle buffer, shape batching, exact resume.

Nothing here knows what a sample holds: ``ShardStream`` reads raw ``ShardSample``s and leaves
turning one into a training item to a subclass's ``decode`` (``ShardClipDataset`` in
``muss_builder.train.data``, ``LatentShardDataset`` in ``muss_builder.train.cache``).

The stream of one epoch is fixed by ``(seed, epoch, rank, world_size, num_workers)``:
shards are shuffled with ``(seed, epoch)`` (the same list on every rank), rank ``r`` reads
``shards[r::world_size]``, logical worker ``w`` of ``n`` reads ``rank_shards[w::n]`` and
shuffles its samples in a buffer seeded with ``(seed, epoch, rank, w)``. A DataLoader hands
out worker outputs round-robin over the workers that still have data, so the merged order is
fixed too.

Resuming: every item leaves its worker with a ``Tag``: its logical worker, how many raw
samples that worker has taken from its shuffled stream, and (when batching by shape) the raw
positions still waiting in its buckets; each worker ends with a ``done`` tag. The
``ResumableLoader`` (``muss_builder.train.loader``) records the tag of each item as it hands
it out, so ``state_dict()`` (plain JSON-able data) says exactly what was consumed. On resume
each worker replays its raw stream past its position (reading the tar bytes again, decoding
nothing), re-decodes the pending samples into its buckets, and the workers are rotated so
that the one after the last consumed item speaks first. The continuation is then the same
items in the same order, as long as seed, ``num_workers``, rank and world size are the same
(refused otherwise). Iterating to the end of a pass moves the cursor to the next epoch
(``set_epoch`` also works).

Held-out films (``exclude_film_ids``, e.g. a benchmark suite's): a shard is named
``{film_id}-{n:05d}.tar`` and holds that film only, so shards of excluded films are dropped
from the list *before* the rank/worker split (never opened; the split, the resume state and
the shard fingerprint are those of the remaining list, and a state saved with another
exclusion is refused). Samples whose key ``{film_id}_{i:05d}`` names an excluded film are
still skipped before decoding, for shards not named after one film. Both are counted in
``stats`` (``skipped_holdout_shards`` once per stream, ``skipped_holdout`` per sample read).

Errors: a malformed shard or sample raises ``ShardFormatError`` naming the member and reason;
members are checked by the shared reader (``muss_builder.shards.reader``: names, types, size
caps from ``limits``, JSON depth) before their bytes are read.
The ``on_error`` handler (webdataset style) decides: ``raise_error`` (default) re-raises;
``skip_and_log`` logs a warning and skips the sample (or the rest of a shard whose tar is
broken). Decode errors are counted in ``stats["errors"]``; ``ResumableLoader`` sums the
workers' ``stats`` into the stream's in the main process.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from torch.utils.data import IterableDataset, get_worker_info

from muss_builder.core.naming import film_of_key, film_of_shard
from muss_builder.pack.shardlist import local_shard, shard_name
from muss_builder.shards.reader import (
    DEFAULT_LIMITS,
    ReaderLimits,
    ShardFormatError,
    ShardSample,
    iter_samples,
)
from muss_builder.train.shard_list import (
    check_film_ids,
    rank_and_world,
    resolve_shards,
)

__all__ = [
    "STATE_FORMAT",
    "OnError",
    "ShapeBucketer",
    "ShardStream",
    "Tag",
    "raise_error",
    "skip_and_log",
]

log = logging.getLogger(__name__)

OnError = Callable[[Exception], None]
STATE_FORMAT = 1


def raise_error(exc: Exception) -> None:
    """Default ``on_error``: a malformed shard stops training (the message names the member)."""
    raise exc


def skip_and_log(exc: Exception) -> None:
    """``on_error`` that skips the bad sample (or the rest of a broken tar) with a warning."""
    log.warning("skipping: %s", exc)


class ShapeBucketer:
    """Group entries by a shape key; a bucket is handed out when it holds ``batch_size``."""

    def __init__(self, batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = batch_size
        self._buckets: dict[Any, list[Any]] = {}

    def add(self, key: Any, entry: Any) -> list[Any] | None:
        bucket = self._buckets.setdefault(key, [])
        bucket.append(entry)
        if len(bucket) < self.batch_size:
            return None
        del self._buckets[key]  # a new bucket of this shape queues behind older ones
        return bucket

    def pending(self) -> list[Any]:
        return [entry for bucket in self._buckets.values() for entry in bucket]

    def flush(self) -> Iterator[list[Any]]:
        """The partial buckets, oldest first, emptying the bucketer."""
        while self._buckets:
            key = next(iter(self._buckets))
            yield self._buckets.pop(key)


class Tag(NamedTuple):
    """Where a worker's stream stood when it handed out an item."""

    worker: int  # logical worker
    raw: int  # raw samples taken from its shuffled stream so far
    pending: tuple[int, ...]  # raw positions waiting in its shape buckets
    done: bool  # the worker's stream has ended (the item is None)
    stats: dict[str, int]  # the worker's counters (its skips are visible in the main process)


class ShardStream(IterableDataset):
    """Shard reading, rank/worker split, shuffling, batching and resume; subclasses decode."""

    def __init__(
        self,
        shards: Sequence[str | Path] | str | Path,
        *,
        seed: int = 0,
        shuffle_buffer: int = 64,
        rank: int | None = None,
        world_size: int | None = None,
        batch_size: int | None = None,
        drop_last: bool = False,
        on_error: OnError = raise_error,
        exclude_film_ids: Iterable[str] = (),
        limits: ReaderLimits = DEFAULT_LIMITS,
        tracks: Sequence[str] = ("montage", "subject"),
    ) -> None:
        self.limits = limits  # member size caps and JSON depth of the shard reader
        self.exclude_film_ids = frozenset(check_film_ids(exclude_film_ids))
        self.stats: Counter[str] = Counter()  # in the process that decodes (workers: theirs)
        # one track: a packed folder's shards of the other track's family are never opened
        self.shards = self._without_excluded(resolve_shards(shards, tracks=tracks))
        self.seed, self.shuffle_buffer = seed, shuffle_buffer
        self.rank, self.world_size = rank_and_world(rank, world_size)
        self.batch_size, self.drop_last, self.on_error = batch_size, drop_last, on_error
        self.epoch = 0
        self._num_workers: int | None = None  # fixed by the first loader or a loaded state
        self._positions: dict[int, tuple[int, tuple[int, ...], bool]] = {}
        self._next_worker = 0

    def _without_excluded(self, shards: list[Path | str]) -> list[Path | str]:
        # before the split: every rank computes the same remaining list, so ranks and workers
        # share out only shards that are read, and the resume state describes that list
        if not self.exclude_film_ids:
            return shards
        kept = [s for s in shards if film_of_shard(shard_name(s)) not in self.exclude_film_ids]
        dropped = len(shards) - len(kept)
        if dropped:
            self.stats["skipped_holdout_shards"] += dropped
            log.info("%d of %d shards belong to excluded films, not read", dropped, len(shards))
        if not kept:
            raise ValueError(
                f"all {len(shards)} shards belong to the {len(self.exclude_film_ids)} excluded "
                "film(s): nothing is left to read"
            )
        return kept

    def excluded(self, sample: ShardSample) -> bool:
        """True (counted) when the sample's key names an excluded film: it is not decoded."""
        if self.exclude_film_ids and film_of_key(sample.key) in self.exclude_film_ids:
            self.stats["skipped_holdout"] += 1
            return True
        return False

    # ---- what subclasses provide -------------------------------------------------------
    def decode(self, sample: ShardSample) -> Any | None:
        """The training item of a raw sample; None to skip it (counted in ``stats``)."""
        raise NotImplementedError

    def shape_key(self, item: Any) -> Any:
        raise NotImplementedError

    def make_batch(self, items: list[Any]) -> Any:
        return items

    # ---- epochs and state ---------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Select the pass to iterate; a different epoch than the current starts it fresh."""
        if epoch != self.epoch:
            self.epoch, self._positions, self._next_worker = epoch, {}, 0

    def state_dict(self) -> dict[str, Any]:
        """Where the consumer is: enough to continue with exactly the next items."""
        return {
            "format": STATE_FORMAT,
            "shards": self.shards_fingerprint(),
            "epoch": self.epoch,
            "seed": self.seed,
            "rank": self.rank,
            "world_size": self.world_size,
            "num_workers": self._num_workers,
            "next_worker": self._next_worker,
            "workers": [
                {"worker": w, "raw": raw, "pending": list(pending), "done": done}
                for w, (raw, pending, done) in sorted(self._positions.items())
            ],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("format") != STATE_FORMAT:
            raise ValueError(f"unknown data state format {state.get('format')!r}")
        if state.get("shards") != self.shards_fingerprint():
            raise ValueError(
                "data state was saved over a different shard list (or other excluded films): "
                "the streams would differ"
            )
        for name in ("seed", "rank", "world_size"):
            if state[name] != getattr(self, name):
                raise ValueError(
                    f"data state was saved with {name}={state[name]}, this stream has "
                    f"{name}={getattr(self, name)}: the shard split would differ"
                )
        self.epoch, self._num_workers = int(state["epoch"]), state["num_workers"]
        self._next_worker = int(state["next_worker"])
        self._positions = {
            int(w["worker"]): (int(w["raw"]), tuple(w["pending"]), bool(w["done"]))
            for w in state["workers"]
        }

    def shards_fingerprint(self) -> str:
        """A digest of the shard names in order (folders may move; names and order may not),
        and of the excluded films when there are any (they change the stream too)."""
        names = "\n".join(shard_name(p) for p in self.shards)
        digest = f"{len(self.shards)}:{hashlib.sha256(names.encode()).hexdigest()[:16]}"
        if self.exclude_film_ids:  # only then: states saved before exclusions existed still load
            films = "\n".join(sorted(self.exclude_film_ids))
            digest += f":x{hashlib.sha256(films.encode()).hexdigest()[:16]}"
        return digest

    def bind_workers(self, num_workers: int) -> None:
        n = max(1, num_workers)
        if self._positions and self._num_workers not in (None, n):
            raise ValueError(
                f"data state was saved with {self._num_workers} loader workers, this loader has"
                f" {n}: resume with the same num_workers (the per-worker streams differ)"
            )
        self._num_workers = n

    def record(self, tag: Tag) -> None:
        self._positions[tag.worker] = (tag.raw, tag.pending, tag.done)
        if not tag.done:
            self._next_worker = (tag.worker + 1) % (self._num_workers or 1)

    @property
    def next_worker(self) -> int:
        """The logical worker that speaks first when iteration continues."""
        return self._next_worker

    def end_epoch(self) -> None:
        self.set_epoch(self.epoch + 1)

    # ---- the stream ---------------------------------------------------------------------
    def worker_shards(self, worker: int, num_workers: int) -> list[Path | str]:
        order = list(self.shards)
        if self.shuffle_buffer > 0:
            perm = np.random.default_rng([self.seed, self.epoch]).permutation(len(order))
            order = [order[i] for i in perm]
        return order[self.rank :: self.world_size][worker::num_workers]

    def _read(self, shards: list[Path | str]) -> Iterator[ShardSample]:
        for shard in shards:
            try:
                # a refused member (name, type, size over the cap) goes to on_error: raised,
                # or logged and skipped (its sample then lacks it and is skipped when decoded);
                # a shard on an object store is read from a temporary download
                with local_shard(shard) as path:
                    yield from iter_samples(path, self.limits, on_problem=self.on_error)
            except ShardFormatError as exc:
                self.on_error(exc)  # returning means: skip the rest of this shard
            except OSError as exc:
                self.on_error(ShardFormatError(shard, None, f"cannot read the shard: {exc}"))

    def _shuffled(self, samples: Iterator[ShardSample], worker: int) -> Iterator[ShardSample]:
        if self.shuffle_buffer <= 1:
            yield from samples
            return
        rng = np.random.default_rng([self.seed, self.epoch, self.rank, worker])
        buffer: list[ShardSample] = []
        for sample in samples:
            if len(buffer) < self.shuffle_buffer:
                buffer.append(sample)
                continue
            i = int(rng.integers(len(buffer)))
            buffer[i], sample = sample, buffer[i]
            yield sample
        while buffer:
            i = int(rng.integers(len(buffer)))
            buffer[i], buffer[-1] = buffer[-1], buffer[i]
            yield buffer.pop()

    def _decode_or_handle(self, sample: ShardSample) -> Any | None:
        if self.excluded(sample):
            return None
        try:
            return self.decode(sample)
        except ShardFormatError as exc:
            self.stats["errors"] += 1
            self.on_error(exc)
            return None

    def iter_tagged(self, worker: int, num_workers: int) -> Iterator[tuple[Tag, Any]]:
        """``(tag, item)`` for logical ``worker``; the last pair is ``(done tag, None)``."""
        if self._num_workers not in (None, num_workers) and self._positions:
            raise ValueError(f"resume state is for {self._num_workers} workers, not {num_workers}")
        start, pending, done = self._positions.get(worker, (0, (), False))
        if done:
            return
        waiting = set(pending)
        bucketer = ShapeBucketer(self.batch_size) if self.batch_size else None
        raw = 0
        samples = self._shuffled(self._read(self.worker_shards(worker, num_workers)), worker)
        for raw, sample in enumerate(samples, start=1):
            if raw <= start and raw - 1 not in waiting:
                continue  # consumed before the resume point: read, never decoded
            item = self._decode_or_handle(sample)
            if item is None:
                continue
            if bucketer is None:
                yield Tag(worker, raw, (), False, dict(self.stats)), item
                continue
            full = bucketer.add(self.shape_key(item), (raw - 1, item))
            if full is not None and raw > start:
                left = tuple(pos for pos, _ in bucketer.pending())
                yield (
                    Tag(worker, raw, left, False, dict(self.stats)),
                    self.make_batch([it for _, it in full]),
                )
        raw = max(raw, start)
        if bucketer is not None:
            partial = list(bucketer.flush())
            for i, bucket in enumerate(partial):
                if self.drop_last and len(bucket) < (self.batch_size or 0):
                    continue
                left = tuple(pos for b in partial[i + 1 :] for pos, _ in b)
                yield (
                    Tag(worker, raw, left, False, dict(self.stats)),
                    self.make_batch([it for _, it in bucket]),
                )
        yield Tag(worker, raw, (), True, dict(self.stats)), None

    def __iter__(self) -> Iterator[Any]:
        info = get_worker_info()
        if info is not None:
            # inside a plain DataLoader: split correctly, but only ResumableLoader tracks state
            for _, item in self.iter_tagged(info.id, info.num_workers):
                if item is not None:
                    yield item
            return
        # outside any DataLoader: what ResumableLoader does without workers
        self.bind_workers(0)
        for tag, item in self.iter_tagged(0, 1):
            self.record(tag)
            if item is not None:
                yield item
        self.end_epoch()
