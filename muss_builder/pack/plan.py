"""What goes where, decided from the seed and the build's metadata alone (no shard bytes).

- The split of a film: named test films go to ``test``; every other film by a seeded hash of
  its id against the cumulative split shares. A film's split depends only on (seed, film id):
  it never moves when films are added to the build and the pack redone, so a test film never
  leaks into train between versions. Shares are therefore by film count, exact in expectation
  (a 3-film build may well get no validation film: name films with ``--test-films``).
- The order of a split's samples: films in a seeded order; ``window`` films are "open" at a
  time, and each next sample comes from one of them, picked at random with a weight equal to
  the samples it has left (a seeded random merge of the open films' streams). A film's
  samples keep their order but are spread among the samples of ~``window`` other films, so
  a packed shard mixes many films, while only ``window`` source streams are ever open.
- Where a split's shards end: each shard family of the split (the tracks its samples serve:
  ``families``) gets N = ceil(total / target) shards, and a sample goes to the family's next
  shard once its middle passes the next N-th of the family's total, so all shards are within
  half a sample of total / N (never a tiny last shard). The families' totals are estimated
  from the records (a sample's clip size, its share of the rest of its source shard), so the
  last shard of a family is the one that takes what an estimate missed.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from muss_builder.pack.source import TAR_OVERHEAD, SourceFilm

DEFAULT_SPLITS = {"train": 0.98, "validation": 0.01, "test": 0.01}
TEST_SPLIT = "test"
DEFAULT_WINDOW = 32
_SPLIT_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


def parse_splits(text: str) -> dict[str, float]:
    """``train=0.98,validation=0.01,test=0.01`` -> shares (they must add up to 1)."""
    shares: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or not _SPLIT_NAME.fullmatch(name):
            raise ValueError(f"not NAME=SHARE with a lowercase name: {part!r}")
        if name in shares:
            raise ValueError(f"split {name} given twice")
        try:
            share = float(value)
        except ValueError:
            raise ValueError(f"not a number: {part!r}") from None
        if not 0 <= share <= 1:
            raise ValueError(f"a share is between 0 and 1: {part!r}")
        shares[name] = share
    if not shares:
        raise ValueError("no splits given (e.g. train=0.98,validation=0.01,test=0.01)")
    if abs(sum(shares.values()) - 1) > 1e-6:
        raise ValueError(f"split shares add up to {sum(shares.values()):g}, not 1: {text!r}")
    return shares


def _unit(seed: int, purpose: str, film_id: str) -> float:
    """A number in [0, 1) fixed by the seed, a purpose and a film id."""
    digest = hashlib.sha256(f"{seed}:{purpose}:{film_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def resolve_films(films: Iterable[SourceFilm], names: Iterable[str]) -> set[str]:
    """Film ids of ``names`` (film ids, or the input files' names); ValueError for others."""
    by_name: dict[str, list[str]] = {}
    ids = set()
    for film in films:
        ids.add(film.film_id)
        by_name.setdefault(film.source_name, []).append(film.film_id)
    found, unknown = set(), []
    for name in names:
        if name in ids:
            found.add(name)
        elif len(by_name.get(name, [])) == 1:
            found.add(by_name[name][0])
        elif name in by_name:
            raise ValueError(f"{name} names {len(by_name[name])} films: give their film ids")
        else:
            unknown.append(name)
    if unknown:
        raise ValueError(f"not a film of this build (film id or input file name): {unknown}")
    return found


def assign_splits(
    films: list[SourceFilm], shares: dict[str, float], seed: int, test_films: set[str]
) -> dict[str, str]:
    """film id -> split name (see the module docstring)."""
    if test_films and TEST_SPLIT not in shares:
        raise ValueError(f"--test-films needs a '{TEST_SPLIT}' split in the split shares")
    bounds, total = [], 0.0
    for name, share in shares.items():
        total += share
        bounds.append((total, name))
    splits = {}
    for film in films:
        if film.film_id in test_films:
            splits[film.film_id] = TEST_SPLIT
            continue
        u = _unit(seed, "split", film.film_id)
        # shares of 0 never match; the last positive share takes u's rounding remainder
        splits[film.film_id] = next(
            (n for b, n in bounds if u < b and shares[n] > 0),
            [n for n in shares if shares[n] > 0][-1],
        )
    return splits


def film_order(films: list[SourceFilm], seed: int) -> list[SourceFilm]:
    """The films of a split in their seeded order (independent of the other splits)."""
    return sorted(films, key=lambda f: (_unit(seed, "order", f.film_id), f.film_id))


def interleave(counts: list[int], seed: int, split: str, window: int) -> Iterator[int]:
    """Indexes into ``counts`` (films in order, with their sample counts), one per sample: a
    seeded random merge of ``window`` open films at a time, weighted by samples left."""
    rng = random.Random(f"{seed}:interleave:{split}")  # str seeds are hashed: stable
    active: list[list[int]] = []  # [film index, samples left]
    following = 0
    while True:
        while len(active) < window and following < len(counts):
            if counts[following] > 0:
                active.append([following, counts[following]])
            following += 1
        if not active:
            return
        pick = rng.randrange(sum(left for _, left in active))
        slot = 0
        while pick >= active[slot][1]:
            pick -= active[slot][1]
            slot += 1
        yield active[slot][0]
        active[slot][1] -= 1
        if active[slot][1] == 0:
            del active[slot]


@dataclass(frozen=True)
class Boundaries:
    """Where a split's (shard family's) packed shards end (see the module docstring)."""

    n_shards: int
    total: float  # bytes, or samples when the target is in samples only
    by_bytes: bool

    @classmethod
    def plan(
        cls,
        films: list[SourceFilm],
        target_bytes: int | None,
        target_samples: int | None,
    ) -> Boundaries:
        n_samples = sum(f.n_samples for f in films)
        n_bytes = sum(max(0, s.size_bytes - TAR_OVERHEAD) for f in films for s in f.shards)
        return cls.for_totals(n_samples, n_bytes, target_bytes, target_samples)

    @classmethod
    def for_totals(
        cls, n_samples: int, n_bytes: float, target_bytes: int | None, target_samples: int | None
    ) -> Boundaries:
        """The boundaries of ``n_samples`` samples of ``n_bytes`` (a shard family's)."""
        n = 1
        if target_bytes:
            n = max(n, math.ceil(n_bytes / target_bytes))
        if target_samples:
            n = max(n, math.ceil(n_samples / target_samples))
        # never more shards than samples: a build of few large samples (bigger than the
        # target) would otherwise plan shards no sample reaches, and end short of its plan
        n = min(n, max(1, n_samples))
        by_bytes = bool(target_bytes)
        return cls(n, float(n_bytes if by_bytes else n_samples), by_bytes)

    def weight(self, sample_bytes: int) -> int:
        return sample_bytes if self.by_bytes else 1

    def cut_before(self, shard: int, done: float, weight: float, shard_empty: bool) -> bool:
        """Whether a sample of ``weight``, after ``done`` of the split, starts a new shard."""
        if shard_empty or shard >= self.n_shards - 1:
            return False  # the last shard takes the rest (the total is an estimate)
        return done + weight / 2 > (shard + 1) * self.total / self.n_shards
