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

import os
from dataclasses import dataclass, field

from muss_builder.config import load_pipeline
from muss_builder.core.naming import FINGERPRINTS_DIR
from muss_builder.curation.duplicate_index import (
    FingerprintFile,
    FingerprintIndex,
    read_fingerprint_file,
)
from muss_builder.curation.duplicates import DuplicatesConfig
from muss_builder.report.card import PIPELINE_FILE


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
    path = os.path.join(root, PIPELINE_FILE)
    if not os.path.isfile(path):
        return DuplicatesConfig()
    return load_pipeline(path).filters.duplicates


def _fingerprints(root: str, film_id: str, config: DuplicatesConfig) -> FingerprintFile | None:
    path = os.path.join(root, FINGERPRINTS_DIR, f"{film_id}.npz")
    if not os.path.isfile(path):
        return None
    with open(path, "rb") as f:
        return read_fingerprint_file(f.read(), config)


def find_cross_duplicates(
    builds: list[tuple[str, list[str]]], config: DuplicatesConfig
) -> CrossDuplicates:
    """``builds``: (root, ids of its films with samples) in merge order. Each build's films
    are searched against the films of the builds before it (not against each other: their
    own build did that)."""
    index = FingerprintIndex(config)
    found = CrossDuplicates()
    for root, film_ids in builds:
        loaded = []
        for film_id in film_ids:
            fp = _fingerprints(root, film_id, config)
            if fp is None:
                found.not_compared.append(film_id)
                continue
            loaded.append(fp)
        for fp in loaded:
            if index.n_shots == 0 or len(fp.vectors) == 0:
                continue
            for hit in index.best(fp.vectors):
                if hit is not None and hit[2] >= config.threshold:
                    per_film = found.films.setdefault(fp.film_id, {})
                    per_film[hit[0]] = per_film.get(hit[0], 0) + 1
                    found.shots += 1
        for fp in loaded:
            index.add(fp.film_id, fp.shots, fp.vectors)
        found.compared += len(loaded)
    return found
