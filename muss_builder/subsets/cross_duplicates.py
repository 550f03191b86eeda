"""Footage repeated between builds that are merged: each build checked its films against its
own registry only, so ``merge`` looks for the rest.

Every film's registered shot fingerprints (``curation/fingerprints/{film_id}.npz``, written by
the build's duplicate registry: the original shots of the footage it holds) are searched, build
by build, against the films of the builds before it, with the duplicate filter's own index and
threshold (the first build's ``pipeline.yaml``, else the defaults). A film of a later build
whose shots match is reported with the films it repeats; nothing in the merged folder is
changed (no record is rewritten and no clip re-encoded): ``select --where "film_id NOT IN
..."``-style pruning, or a build of all the films into one folder, is the user's call.

Fingerprints made with other settings (another grid, embedder or views; ``config`` in each
file) are not comparable: such films are counted as ``not_compared``.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field

import numpy as np
import yaml

from muss_builder.core.naming import FINGERPRINTS_DIR
from muss_builder.curation.duplicate_index import FingerprintIndex
from muss_builder.curation.duplicates import DuplicatesConfig
from muss_builder.filters.duplicates import config_key


@dataclass
class CrossDuplicates:
    """What ``find_cross_duplicates`` found."""

    # film of a later build -> {earlier film: how many of its shots repeat that film's footage}
    films: dict[str, dict[str, int]] = field(default_factory=dict)
    shots: int = 0  # shots of later builds that repeat an earlier build's footage
    compared: int = 0  # films whose fingerprints were searched or indexed
    not_compared: list[str] = field(default_factory=list)  # no file, or other settings

    def as_dict(self) -> dict:
        return {
            "films": self.films,
            "shots": self.shots,
            "films_compared": self.compared,
            "not_compared": self.not_compared,
        }


def duplicates_config(root: str) -> DuplicatesConfig:
    """The duplicate filter's settings of the build at ``root`` (its pipeline.yaml)."""
    path = os.path.join(root, "pipeline.yaml")
    if not os.path.isfile(path):
        return DuplicatesConfig()
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f) or {}
    found = (doc.get("filters") or {}).get("duplicates") or {}
    return DuplicatesConfig.model_validate(found)


def _fingerprints(root: str, film_id: str, key: str) -> tuple[np.ndarray, np.ndarray] | None:
    path = os.path.join(root, FINGERPRINTS_DIR, f"{film_id}.npz")
    if not os.path.isfile(path):
        return None
    with open(path, "rb") as f, np.load(io.BytesIO(f.read())) as doc:
        if str(doc["config"]) != key:
            return None
        return doc["shots"], doc["vectors"].astype(np.float32)


def find_cross_duplicates(
    builds: list[tuple[str, list[str]]], config: DuplicatesConfig
) -> CrossDuplicates:
    """``builds``: (root, ids of its films with samples) in merge order. Each build's films
    are searched against the films of the builds before it (not against each other: their
    own build did that)."""
    index = FingerprintIndex(config)
    key = config_key(config)
    found = CrossDuplicates()
    for root, film_ids in builds:
        loaded = []
        for film_id in film_ids:
            fp = _fingerprints(root, film_id, key)
            if fp is None:
                found.not_compared.append(film_id)
                continue
            loaded.append((film_id, *fp))
        for film_id, _shots, vectors in loaded:
            if index.n_shots == 0 or len(vectors) == 0:
                continue
            for hit in index.best(vectors):
                if hit is not None and hit[2] >= config.threshold:
                    per_film = found.films.setdefault(film_id, {})
                    per_film[hit[0]] = per_film.get(hit[0], 0) + 1
                    found.shots += 1
        for film_id, shots, vectors in loaded:
            index.add(film_id, shots, vectors)
        found.compared += len(loaded)
    return found
