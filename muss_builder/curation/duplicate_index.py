"""The FAISS index of shot fingerprints and the matching rules (see ``duplicates``).

Two flat inner-product indexes (exact; stored as float16 by FAISS's scalar quantiser, half the
memory of float32 at a similarity error < 1e-3): the whole-picture view of every registered
shot, and its crop views. A new shot's whole view is searched in both (a re-encode meets the
whole view, a pan-and-scan copy of an earlier shot meets one of its crops); its crop views
are searched in the whole views only (the new film is wider than an earlier pan-and-scan
copy). Crop against crop is never compared: it adds nothing the two cases miss and would
double the cost.

Only original shots are registered: a shot that matched is not, so a retried or later film
can never be taken for a copy of its own copy. Removing a film (a retry, a failure) takes its
rows out of the index (``remove_ids``). Past ``ivf_rows`` rows an index becomes an inverted
file (approximate: see ``_Rows``).
"""

from __future__ import annotations

import io
from array import array
from dataclasses import dataclass
from typing import Any

import numpy as np

from muss_builder.curation.duplicates import DuplicatesConfig, FilmDuplicates, ShotFingerprints
from muss_builder.filters.duplicates import config_key


def _flat(dim: int) -> Any:
    import faiss

    sq = faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT)
    return faiss.IndexIDMap2(sq)


class _Rows:
    """A FAISS index keyed by row ids, and per id the (film code, shot) it holds (8 bytes;
    ids are never reused, so a removed film's ids just stop being returned).

    Exact (flat, float16) while small; from ``ivf_rows`` rows on, an inverted file (8-bit
    codes, half of float16; ``4 sqrt(n)`` lists and the code ranges trained on a seeded
    sample of what is there, retrained at each 4x growth; ``ivf_nprobe`` lists searched):
    a flat scan of every row per query grows with the build (0.1 s a shot at 100k shots,
    docs/benchmarks.md) while a duplicate, at similarity >= 0.88, sits in or next to its
    original's list."""

    def __init__(self, dim: int, config: DuplicatesConfig) -> None:
        self.dim = dim
        self.config = config
        self.index = _flat(dim)
        self.ivf = False
        self.trained = 0  # live rows when the inverted file was last trained
        self.film = array("i")
        self.shot = array("i")

    def add(self, code: int, shots: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.arange(len(self.film), len(self.film) + len(shots), dtype=np.int64)
        self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), ids)
        self.film.extend([code] * len(shots))
        self.shot.extend(int(s) for s in shots)
        n = self.index.ntotal
        if (not self.ivf and n >= self.config.ivf_rows) or (self.ivf and n >= 4 * self.trained):
            self._retrain()

    def remove(self, code: int) -> None:
        import faiss

        if not len(self.film):
            return
        films = np.frombuffer(self.film, np.int32)  # a view: -1 marks removed rows below
        gone = np.nonzero(films == code)[0].astype(np.int64)
        if len(gone):
            self.index.remove_ids(faiss.IDSelectorBatch(gone))
            films[gone] = -1

    def _retrain(self, chunk: int = 100_000) -> None:
        """A new inverted file with ``4 sqrt(n)`` lists for the ``n`` rows there now, filled
        from the old index's own codes (decoded a chunk at a time: no float copy of all rows).
        Runs when the index first passes ``ivf_rows`` and again each time it has grown 4x,
        so a list keeps ~``sqrt(n) / 4`` rows and a query scans ~``8 sqrt(n)`` of them."""
        import faiss

        live = np.nonzero(np.frombuffer(self.film, np.int32) >= 0)[0].astype(np.int64)
        n = len(live)
        # capped: training k-means on 64 x nlist rows costs ~nlist^2; 8192 lists keep a query
        # at ~3k rows a list at 22M rows (3,000 films of crops)
        nlist = int(min(8192, max(64, 4 * np.sqrt(n))))
        ivf = faiss.IndexIVFScalarQuantizer(
            faiss.IndexFlatIP(self.dim),
            self.dim,
            nlist,
            faiss.ScalarQuantizer.QT_8bit,  # trained per dimension: 1 byte a value
            faiss.METRIC_INNER_PRODUCT,
        )
        old = self.index
        if self.ivf:  # an inverted file reconstructs by id through a hash table
            old.set_direct_map_type(faiss.DirectMap.Hashtable)
        # a seeded sample in id order: the same registry always trains the same lists
        sample = np.sort(np.random.default_rng(0).permutation(live)[: 64 * nlist])
        ivf.train(old.reconstruct_batch(sample))
        for start in range(0, n, chunk):
            ids = live[start : start + chunk]
            ivf.add_with_ids(old.reconstruct_batch(ids), ids)
        ivf.nprobe = self.config.ivf_nprobe
        self.index, self.ivf, self.trained = ivf, True, n


class FingerprintIndex:
    """All registered films' fingerprints, searchable; films keep their registration order.
    Holds only the FAISS codes (float16) and 8 bytes of metadata per row: a removed film is
    taken out of the index itself (``remove_ids``), so no second copy of the vectors is kept."""

    def __init__(self, config: DuplicatesConfig) -> None:
        self.config = config
        self.films: dict[str, int] = {}  # film -> code; insertion order = registration order
        self.names: dict[int, str] = {}
        self._next = 0
        self._whole: _Rows | None = None
        self._crops: _Rows | None = None

    @property
    def n_shots(self) -> int:
        return self._whole.index.ntotal if self._whole is not None else 0

    def add(self, film_id: str, shots: np.ndarray, vectors: np.ndarray) -> None:
        """Register ``vectors`` [S, V, D] of ``shots`` (originals only) under ``film_id``."""
        self.remove(film_id)
        code = self._next
        self._next += 1
        self.films[film_id] = code
        self.names[code] = film_id
        shots = np.asarray(shots, np.int64)
        if not len(shots):
            return
        _, v, d = vectors.shape
        if self._whole is None:
            self._whole, self._crops = _Rows(d, self.config), _Rows(d, self.config)
        self._whole.add(code, shots, vectors[:, 0])
        if v > 1:
            self._crops.add(code, np.repeat(shots, v - 1), vectors[:, 1:].reshape(-1, d))

    def remove(self, film_id: str) -> bool:
        code = self.films.pop(film_id, None)
        if code is None:
            return False
        self.names.pop(code)
        for rows in (self._whole, self._crops):
            if rows is not None:
                rows.remove(code)
        return True

    def best(self, vectors: np.ndarray) -> list[tuple[str, int, float] | None]:
        """Per query shot ([S, V, D]), its most similar registered shot (film, shot, sim)."""
        out: list[tuple[str, int, float] | None] = [None] * len(vectors)
        if self._whole is None or not len(vectors):
            return out
        s, v, d = vectors.shape
        k = self.config.neighbours
        whole = np.ascontiguousarray(vectors[:, 0])
        hits = [_search(self._whole, whole, k, 1)]
        if v > 1:
            hits.append(_search(self._crops, whole, k, 1))
            crops = np.ascontiguousarray(vectors[:, 1:].reshape(-1, d))
            hits.append(_search(self._whole, crops, k, v - 1))
        for i in range(s):
            cands = [h for part in hits for h in part[i]]
            if cands:
                # best similarity; a tie goes to the earlier registered film (lower code)
                code, shot, sim = max(cands, key=lambda c: (round(c[2], 4), -c[0], -c[1]))
                out[i] = (self.names[code], shot, sim)
        return out


def _search(
    rows: _Rows, queries: np.ndarray, k: int, per_shot: int
) -> list[list[tuple[int, int, float]]]:
    """(film code, shot, similarity) hits per query shot; ``per_shot`` consecutive query rows
    belong to one shot."""
    n_shots = len(queries) // per_shot
    if rows is None or rows.index.ntotal == 0:
        return [[] for _ in range(n_shots)]
    sims, idx = rows.index.search(queries, min(k, rows.index.ntotal))
    films, shots = rows.film, rows.shot
    out: list[list[tuple[int, int, float]]] = []
    for i in range(0, len(queries), per_shot):
        out.append(
            [
                (films[j], shots[j], float(sim))
                for r in range(i, i + per_shot)
                for j, sim in zip(idx[r], sims[r], strict=True)
                if j >= 0
            ]
        )
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
    own: list[tuple[int, float] | None] | None = None,
) -> tuple[FilmDuplicates, np.ndarray]:
    """Match one film against the index and its own earlier shots (``own``: ``own_matches``,
    computed by the caller outside any lock, or here). Returns the result and the mask of
    shots to register (valid originals; none for a whole-film duplicate).

    A shot's recorded similarity is its best one to its own film's earlier shots and to a
    shot of another film *only when that is a match* (at or above the threshold): another
    film's shot under the threshold is left out, since it depends on which films claimed
    first. So a film without duplicates records the same values whatever the claim order.
    The matches (and so the flags, ``duplicate_of`` and whole-film duplicates) are what they
    were with every candidate counted: one left out is under the threshold, no match."""
    config = index.config
    n = len(fp.shots)
    earlier = index.best(fp.vectors)
    own = own if own is not None else own_matches(fp.vectors, fp.valid)
    result = FilmDuplicates(shot_similarity=[0.0] * n)
    for i in range(n):
        if not fp.valid[i]:
            continue
        cands = []
        if earlier[i] is not None and earlier[i][2] >= config.threshold:
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


# ---------------------------------------------------------------------------------------------
# A registered film's fingerprints on disk (``curation/fingerprints/{film_id}.npz``)


@dataclass(frozen=True)
class FingerprintFile:
    film_id: str
    order: float  # claim stamp: registries reload films in this order
    shots: np.ndarray  # [S] the film's registered (original) shots
    vectors: np.ndarray  # [S, V, D] float32


def fingerprint_file_bytes(
    film_id: str, order: float, config: DuplicatesConfig, shots: np.ndarray, vectors: np.ndarray
) -> bytes:
    """A film's registered fingerprints as a compressed ``.npz`` (vectors as float16: half
    the file; the index holds them at that precision anyway)."""
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        film_id=np.array(film_id),
        order=np.array(order),
        config=np.array(config_key(config)),
        shots=shots,
        vectors=vectors.astype(np.float16),
    )
    return buf.getvalue()


def read_fingerprint_file(data: bytes, config: DuplicatesConfig) -> FingerprintFile | None:
    """The fingerprints in ``data``; None when they were made with other settings (another
    grid, embedder, views): those are not comparable with ``config``'s and never mixed in."""
    with np.load(io.BytesIO(data)) as doc:
        if str(doc["config"]) != config_key(config):
            return None
        return FingerprintFile(
            str(doc["film_id"]),
            float(doc["order"]),
            doc["shots"],
            doc["vectors"].astype(np.float32),
        )
