"""The FAISS index of shot fingerprints and the matching rules (see ``duplicates``).

Two flat inner-product indexes (exact; stored as float16 by FAISS's scalar quantiser, half the
memory of float32 at a similarity error < 1e-3): the whole-picture view of every registered
shot, and its crop views. A new shot's whole view is searched in both (a re-encode meets the
whole view, a pan-and-scan copy of an earlier shot meets one of its crops); its crop views
are searched in the whole views only (the new film is wider than an earlier pan-and-scan
copy). Crop against crop is never compared: it adds nothing the two cases miss and would
double the cost.

Only original shots are registered: a shot that matched is not, so a retried or later film
can never be taken for a copy of its own copy. Removing a film (a retry, a failure) marks the
index stale; it is rebuilt from the kept vectors at the next search.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from muss_builder.curation.duplicates import DuplicatesConfig, FilmDuplicates, ShotFingerprints


@dataclass
class _Film:
    shots: np.ndarray  # int64 [S] registered (original, valid) shots
    vectors: np.ndarray  # float32 [S, V, D]


def _new_index(dim: int) -> Any:  # a faiss index
    import faiss

    return faiss.IndexScalarQuantizer(
        dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
    )


class FingerprintIndex:
    """All registered films' fingerprints, searchable; films keep their registration order."""

    def __init__(self, config: DuplicatesConfig) -> None:
        self.config = config
        self.films: dict[str, _Film] = {}  # insertion order = registration order
        self._whole = None
        self._crops = None
        self._whole_meta: list[tuple[str, int]] = []  # row -> (film, shot)
        self._crop_meta: list[tuple[str, int]] = []
        self._stale = True

    @property
    def n_shots(self) -> int:
        return sum(len(f.shots) for f in self.films.values())

    def add(self, film_id: str, shots: np.ndarray, vectors: np.ndarray) -> None:
        """Register ``vectors`` [S, V, D] of ``shots`` (originals only) under ``film_id``."""
        self.films[film_id] = _Film(np.asarray(shots, np.int64), np.asarray(vectors, np.float32))
        if not self._stale and len(shots):
            self._append(film_id, self.films[film_id])

    def remove(self, film_id: str) -> bool:
        if self.films.pop(film_id, None) is None:
            return False
        self._stale = True
        return True

    def _rebuild(self) -> None:
        self._whole = self._crops = None
        self._whole_meta, self._crop_meta = [], []
        for film_id, film in self.films.items():
            self._append(film_id, film)
        self._stale = False

    def _append(self, film_id: str, film: _Film) -> None:
        if not len(film.shots):
            return
        _, v, d = film.vectors.shape
        if self._whole is None:
            self._whole, self._crops = _new_index(d), _new_index(d)
        self._whole.add(np.ascontiguousarray(film.vectors[:, 0]))
        self._whole_meta += [(film_id, int(shot)) for shot in film.shots]
        if v > 1:
            self._crops.add(np.ascontiguousarray(film.vectors[:, 1:].reshape(-1, d)))
            self._crop_meta += [(film_id, int(shot)) for shot in film.shots for _ in range(v - 1)]

    def best(self, vectors: np.ndarray) -> list[tuple[str, int, float] | None]:
        """Per query shot ([S, V, D]), its most similar registered shot (film, shot, sim)."""
        if self._stale:
            self._rebuild()
        out: list[tuple[str, int, float] | None] = [None] * len(vectors)
        if self._whole is None or not len(vectors):
            return out
        s, v, d = vectors.shape
        k = self.config.neighbours
        whole = np.ascontiguousarray(vectors[:, 0])
        hits = [_search(self._whole, self._whole_meta, whole, k, 1)]
        if v > 1:
            hits.append(_search(self._crops, self._crop_meta, whole, k, 1))
            crops = np.ascontiguousarray(vectors[:, 1:].reshape(-1, d))
            hits.append(_search(self._whole, self._whole_meta, crops, k, v - 1))
        order = {film_id: i for i, film_id in enumerate(self.films)}
        for i in range(s):
            cands = [h for part in hits for h in part[i]]
            if cands:
                # best similarity; a tie goes to the earlier registered film, then lower shot
                out[i] = max(cands, key=lambda c: (round(c[2], 4), -order[c[0]], -c[1]))
        return out


def _search(
    index: Any, meta: list[tuple[str, int]], queries: np.ndarray, k: int, per_shot: int
) -> list[list[tuple[str, int, float]]]:
    """Hits per query shot; ``per_shot`` consecutive query rows belong to one shot."""
    if index is None or index.ntotal == 0:
        return [[] for _ in range(len(queries) // per_shot)]
    sims, idx = index.search(queries, min(k, index.ntotal))
    out: list[list[tuple[str, int, float]]] = []
    for i in range(0, len(queries), per_shot):
        rows = [
            (*meta[j], float(sim))
            for r in range(i, i + per_shot)
            for j, sim in zip(idx[r], sims[r], strict=True)
            if j >= 0
        ]
        out.append(rows)
    return out


def own_matches(vectors: np.ndarray, valid: np.ndarray) -> list[tuple[int, float] | None]:
    """Per shot, its most similar *earlier* shot of the same film (row index, similarity), with
    the same view rule as the index (whole vs all views, crop vs whole)."""
    s, v, _ = vectors.shape
    out: list[tuple[int, float] | None] = [None] * s
    if s < 2:
        return out
    whole = vectors[:, 0]
    sims = whole @ whole.T  # [query, earlier]
    for view in range(1, v):
        sims = np.maximum(sims, whole @ vectors[:, view].T)  # query whole vs earlier crop
        sims = np.maximum(sims, vectors[:, view] @ whole.T)  # query crop vs earlier whole
    ok = np.tril(np.ones((s, s), bool), k=-1) & valid[None, :] & valid[:, None]
    sims = np.where(ok, sims, -np.inf)
    for i in range(1, s):
        j = int(np.argmax(sims[i]))
        if np.isfinite(sims[i, j]):
            out[i] = (j, float(sims[i, j]))
    return out


def match_film(
    index: FingerprintIndex,
    film_id: str,
    fp: ShotFingerprints,
    shot_seconds: list[float],
) -> tuple[FilmDuplicates, np.ndarray]:
    """Match one film against the index and its own earlier shots. Returns the result and the
    mask of shots to register (valid originals; none for a whole-film duplicate)."""
    config = index.config
    n = len(fp.shots)
    earlier = index.best(fp.vectors)
    own = own_matches(fp.vectors, fp.valid)
    result = FilmDuplicates(shot_similarity=[0.0] * n)
    for i in range(n):
        if not fp.valid[i]:
            continue
        cands = []
        if earlier[i] is not None:
            cands.append(earlier[i])
        if own[i] is not None:
            cands.append((film_id, fp.shots[own[i][0]], own[i][1]))
        if not cands:
            continue
        best = max(cands, key=lambda c: c[2])  # earlier films first on a tie (stable max)
        result.shot_similarity[i] = round(max(0.0, best[2]), 4)
        if best[2] >= config.threshold:
            result.shot_matches[fp.shots[i]] = (best[0], int(best[1]), round(best[2], 4))
    result.film_duplicate_of = _whole_film(fp, result, shot_seconds, film_id, config.film_share)
    register = fp.valid.copy()
    for i, shot in enumerate(fp.shots):
        if shot in result.shot_matches:
            register[i] = False
    if result.film_duplicate_of is not None:
        register[:] = False
    return result, register


def _whole_film(
    fp: ShotFingerprints,
    result: FilmDuplicates,
    shot_seconds: list[float],
    film_id: str,
    share: float,
) -> str | None:
    """The earlier film whose copies cover >= ``share`` of this film's seconds (of shots with
    a picture: black holds and flat cards say nothing either way)."""
    total = sum(sec for sec, ok in zip(shot_seconds, fp.valid, strict=True) if ok)
    if total <= 0:
        return None
    per_film: dict[str, float] = {}
    for i, shot in enumerate(fp.shots):
        match = result.shot_matches.get(shot)
        if match is not None and match[0] != film_id:
            per_film[match[0]] = per_film.get(match[0], 0.0) + shot_seconds[i]
    if not per_film:
        return None
    best = max(per_film, key=lambda f: per_film[f])  # a tie: the one met first in shot order
    return best if per_film[best] >= share * total else None
