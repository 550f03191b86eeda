"""The build-wide registry of shot fingerprints: which footage the dataset already holds.

One registry per build output (``OUT``): a plain object in the driver process, or one named
Ray actor shared by every worker of a Ray build (``open_registry``). ``claim`` is atomic (the
actor runs one call at a time; the local object holds a lock): it matches a film against every
film registered so far and against its own earlier shots, then registers the film's original
shots, so "earlier" means "claimed first".

Persistence and resume: each claim writes ``OUT/curation/fingerprints/{film_id}.npz``
(atomically, through ``core.storage``, so ``s3://`` outputs work); a registry opened on the
same ``OUT`` reloads them in their claim order (kept in the file), so a resumed run still
sees the films of the earlier run.

Retries and failures (the choice made): a film is registered as soon as it claims, so a
copy in flight at the same time already sees it. Claiming again under the same ``film_id``
(a retried attempt, or a film re-run after a crash) first drops its earlier registration: a
film never matches itself. ``forget(film_id)`` drops a film that failed after claiming
(index and file). A film that matched it in the meantime keeps its ``duplicate`` flags:
rare (a copy must be built while its original fails), and said in the README.

Order: "earlier" is "claimed first", and the drivers make the claims follow the input order.
Inline, films run one after the other; on Ray the curate stage runs in input order
(``Stage.runs_in_input_order``, ``runtime.claims_in_input_order``): a film that finished its
keyframe pass first waits there until every film given before it has claimed or finished. So
of two copies of one footage the earlier input is the original on every executor, and two
builds of the same inputs record the same flags. With the setting off, whichever claims first
is the original (the one whose keyframe pass ends first). A shot's recorded similarity counts a
shot of another film only when it is a match (``match_film``), so a shot that copies nothing
records the same value whatever claimed before it. A resumed run's films were claimed before
this run's, whatever their place among the inputs.

Memory: vectors only (no frames). The default fingerprint is 6 views x 448 values a shot:
5.4 KB in the registry while its index is exact (float16), 2.8 KB once it is an inverted file
(8-bit codes), 5.1 KB in the (float16, compressed) files: for 3,000 films of 1,500 shots
~12.6 GB in the registry and ~23 GB of files (docs/benchmarks.md, "Near-duplicates").
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from muss_builder.core.naming import FINGERPRINTS_DIR
from muss_builder.core.storage import Storage
from muss_builder.curation.duplicate_index import (
    FingerprintIndex,
    fingerprint_file_bytes,
    match_film,
    own_matches,
    read_fingerprint_file,
)
from muss_builder.curation.duplicates import DuplicatesConfig, FilmDuplicates, ShotFingerprints

FOLDER = FINGERPRINTS_DIR


def _file_of(film_id: str) -> str:
    return f"{FOLDER}/{film_id}.npz"


class DuplicateRegistry:
    """Registered fingerprints of one build output; safe to call from several threads."""

    def __init__(self, out_dir: str | None, config: DuplicatesConfig | None = None) -> None:
        self.config = config or DuplicatesConfig()
        self.index = FingerprintIndex(self.config)
        self.storage = Storage.open(out_dir) if out_dir else None
        self._lock = threading.Lock()
        self._order: dict[str, float] = {}  # film -> claim stamp (sorts the reload)
        self._last = 0.0
        if self.storage is not None:
            self._reload()

    def _reload(self) -> None:
        loaded = []
        for rel in self.storage.list(FOLDER, ".npz"):
            found = read_fingerprint_file(self.storage.read_bytes(rel), self.config)
            if found is not None:  # None: made with other settings, left out
                loaded.append(found)
        for f in sorted(loaded, key=lambda x: (x.order, x.film_id)):
            self.index.add(f.film_id, f.shots, f.vectors)
            self._order[f.film_id] = f.order
            self._last = max(self._last, f.order)

    def claim(
        self,
        film_id: str,
        fingerprints: ShotFingerprints,
        shot_seconds: list[float],
        own: list[tuple[int, float] | None] | None = None,
    ) -> FilmDuplicates:
        """Match ``film_id`` against everything registered so far, then register its original
        shots (a whole-film duplicate registers none). ``own`` (``own_matches``: the film
        against itself, S^2 work) may come precomputed by the caller; it is done before the
        lock either way, so other films' claims do not wait for it."""
        if own is None:
            own = own_matches(fingerprints.vectors, fingerprints.valid)
        with self._lock:
            self._drop(film_id)
            result, register = match_film(self.index, film_id, fingerprints, shot_seconds, own=own)
            if result.film_duplicate_of is not None:
                return result  # another rip of a registered film: nothing new to register
            shots = np.asarray(fingerprints.shots, np.int64)[register]
            vectors = fingerprints.vectors[register]
            # wall-clock stamps keep a resumed run's films after the earlier run's
            order = self._last = max(time.time(), self._last + 1e-3)
            self.index.add(film_id, shots, vectors)
            self._order[film_id] = order
            if self.storage is not None:
                self._write(film_id, shots, vectors, order)
            return result

    def forget(self, film_id: str) -> bool:
        """Drop a film that failed after claiming; True when it was registered."""
        with self._lock:
            return self._drop(film_id)

    def _drop(self, film_id: str) -> bool:
        self._order.pop(film_id, None)
        known = self.index.remove(film_id)
        if self.storage is not None:
            self.storage.remove(_file_of(film_id))
        return known

    def _write(self, film_id: str, shots: np.ndarray, vectors: np.ndarray, order: float) -> None:
        data = fingerprint_file_bytes(film_id, order, self.config, shots, vectors)
        self.storage.write_bytes(_file_of(film_id), data)

    def films(self) -> list[str]:
        """Registered films in claim order."""
        with self._lock:
            return list(self.index.films)

    def n_shots(self) -> int:
        with self._lock:
            return self.index.n_shots


class _ActorHandle:
    """The registry actor behind the same blocking methods as ``DuplicateRegistry``."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor

    def claim(
        self, film_id: str, fingerprints: ShotFingerprints, shot_seconds: list[float]
    ) -> FilmDuplicates:
        import ray

        # the film against itself is worked out here, in the worker: the actor, which serves
        # every film one call at a time, only searches the index and registers
        own = own_matches(fingerprints.vectors, fingerprints.valid)
        return ray.get(self.actor.claim.remote(film_id, fingerprints, shot_seconds, own))

    def forget(self, film_id: str) -> bool:
        import ray

        return ray.get(self.actor.forget.remote(film_id))

    def films(self) -> list[str]:
        import ray

        return ray.get(self.actor.films.remote())

    def n_shots(self) -> int:
        import ray

        return ray.get(self.actor.n_shots.remote())


def actor_name(out_dir: str) -> str:
    """One actor per output: two builds on one Ray cluster never share a registry."""
    import hashlib

    return "muss-duplicates-" + hashlib.sha256(out_dir.rstrip("/").encode()).hexdigest()[:16]


def open_registry(
    out_dir: str, use_ray: bool, config: DuplicatesConfig | None = None
) -> DuplicateRegistry | _ActorHandle:
    """The registry of ``out_dir``: a local object, or (``use_ray``) the build's named actor,
    found by name (Ray must be initialised). The build's driver opens it first (runtime/
    build.py), so the driver owns it and it is placed on the driver's node when that node can
    take it: an actor dies with its owner, and a worker node can be lost mid-build. The actor
    lives as long as the driver's job (not detached): a new run reloads from the files."""
    if not use_ray:
        return DuplicateRegistry(out_dir, config)
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()
    cls = ray.remote(DuplicateRegistry).options(
        name=actor_name(out_dir),
        get_if_exists=True,
        lifetime=None,  # not detached: it ends with the build's driver
        num_cpus=0,  # it searches briefly per film; it must not hold a worker's CPU slot
        max_concurrency=1,  # calls run one at a time: claim is atomic
        max_restarts=-1,  # a lost node: it comes back elsewhere and reloads the files
        max_task_retries=-1,
        # the creator's node when it is alive (the driver's, for a build), else anywhere
        scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=True),
    )
    return _ActorHandle(cls.remote(out_dir, config))
