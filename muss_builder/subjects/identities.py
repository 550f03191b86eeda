"""Film-level identities: cluster face (or object) embeddings into subject ids.

1. Tracks. Inside one shot, detections on different keyframes whose embeddings have cosine
   similarity >= ``track_similarity`` join one track, most similar pairs first. Two detections
   of one frame never join: faces seen together are different people.
2. Identities. Tracks are linked across the film through a k-nearest-neighbour graph built
   with FAISS (inner product on L2-normalised embeddings: exact ``IndexFlatIP`` up to
   ``exact_limit`` tracks, an inverted-file index above; HNSW was measured and lost: on
   embeddings that form tight clusters, one per person, its greedy graph search found only
   74% of the true 10 nearest neighbours at 1M, IVF 100%: docs/benchmarks.md), then merged
   greedily from the most similar link down,
   while the two groups' mean embeddings stay >= ``identity_similarity`` (centroid linkage,
   which does not chain through one ambiguous face the way single linkage does) and the
   groups never share a frame.
3. Ids. Groups with fewer than ``min_detections`` detections form the "unknown" bucket
   (label -1); the rest are numbered by first appearance (shot, frame, input order), so the
   same detections always get the same ids whatever order they arrive in.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class IdentityParams:
    # Calibrated on synthetic embeddings (same person ~0.5 pairwise, strangers ~0 +- 0.05);
    # the face stage should recalibrate them on its model pack's real embeddings.
    track_similarity: float = 0.4
    identity_similarity: float = 0.35
    neighbours: int = 10
    min_detections: int = 2
    # tracks; exact search costs n^2: 30k tracks take seconds, 300k would take many minutes
    exact_limit: int = 30_000
    ivf_nprobe: int = 16  # inverted lists searched per query above exact_limit
    use_gpu: bool = False


@dataclass
class IdentityResult:
    labels: np.ndarray  # int64 [N]: identity per detection, -1 = unknown
    n_identities: int
    n_tracks: int


class _Groups:
    """Union-find whose groups carry an embedding sum and the frames they occupy."""

    def __init__(self, vectors: np.ndarray, frames: list[set[int]]) -> None:
        self.parent = list(range(len(vectors)))
        self.sums = vectors.astype(np.float64).copy()
        self.frames = frames
        self.sizes = [1] * len(vectors)

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def try_merge(self, a: int, b: int, threshold: float) -> bool:
        ra, rb = self.find(a), self.find(b)
        if ra == rb or not self.frames[ra].isdisjoint(self.frames[rb]):
            return False
        ca, cb = self.sums[ra], self.sums[rb]
        similarity = float(ca @ cb) / (float(np.linalg.norm(ca) * np.linalg.norm(cb)) or 1.0)
        if similarity < threshold:
            return False
        if len(self.frames[ra]) < len(self.frames[rb]):
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.sums[ra] += self.sums[rb]
        self.frames[ra] |= self.frames[rb]
        self.sizes[ra] += self.sizes[rb]
        return True


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def _knn(vectors: np.ndarray, k: int, params: IdentityParams) -> tuple[np.ndarray, np.ndarray]:
    """(similarities, indices) of each vector's k nearest neighbours, itself excluded."""
    import faiss

    d = vectors.shape[1]
    if len(vectors) <= params.exact_limit:
        index = faiss.IndexFlatIP(d)
    else:
        # ~4 sqrt(n) lists; trained on a seeded sample so reruns build the same index
        nlist = int(min(16384, max(64, 4 * np.sqrt(len(vectors)))))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
        rows = np.random.default_rng(0).permutation(len(vectors))[: 64 * nlist]
        index.train(vectors[np.sort(rows)])
        index.nprobe = params.ivf_nprobe
    if params.use_gpu and hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus():
        index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
    index.add(vectors)
    sims, idx = index.search(vectors, min(k + 1, len(vectors)))
    return sims[:, 1:], idx[:, 1:]


def _tracks(
    vectors: np.ndarray, shots: np.ndarray, frames: np.ndarray, params: IdentityParams
) -> np.ndarray:
    """Track id per detection: within-shot grouping, most similar pairs first."""
    track = np.arange(len(vectors))
    for shot in np.unique(shots):
        members = np.nonzero(shots == shot)[0]
        if len(members) < 2:
            continue
        groups = _Groups(vectors[members], [{int(frames[m])} for m in members])
        sims = vectors[members] @ vectors[members].T
        pairs = np.argwhere(np.triu(sims >= params.track_similarity, k=1))
        order = np.argsort(-sims[pairs[:, 0], pairs[:, 1]], kind="stable")
        for a, b in pairs[order]:
            groups.try_merge(int(a), int(b), params.track_similarity)
        track[members] = members[[groups.find(i) for i in range(len(members))]]
    return track


def cluster_identities(
    embeddings: np.ndarray,
    shots: np.ndarray,
    frames: np.ndarray,
    params: IdentityParams | None = None,
) -> IdentityResult:
    """Identity labels for N detections (``embeddings`` [N, D], ``shots`` and ``frames`` [N]:
    the shot and the film keyframe each detection was found on)."""
    params = params or IdentityParams()
    n = len(embeddings)
    if n == 0:
        return IdentityResult(np.zeros(0, np.int64), 0, 0)
    # Work in a canonical order (shot, frame, then the embedding's own bytes) so that greedy
    # ties, union-find and numbering never depend on the order detections arrived in.
    vectors = _normalise(embeddings)
    content = np.array([zlib.crc32(row.tobytes()) for row in vectors])
    canon = np.lexsort((content, np.asarray(frames), np.asarray(shots)))
    vectors = vectors[canon]
    shots, frames = np.asarray(shots)[canon], np.asarray(frames)[canon]
    track = _tracks(vectors, shots, frames, params)
    track_ids, track_of = np.unique(track, return_inverse=True)
    sums = np.zeros((len(track_ids), vectors.shape[1]), np.float32)
    np.add.at(sums, track_of, vectors)
    track_frames: list[set[int]] = [set() for _ in track_ids]
    for t, f in zip(track_of, frames, strict=True):
        track_frames[t].add(int(f))
    groups = _Groups(sums, track_frames)
    if len(track_ids) > 1:
        sims, idx = _knn(_normalise(sums), params.neighbours, params)
        rows = np.repeat(np.arange(len(track_ids)), idx.shape[1])
        cols, values = idx.ravel(), sims.ravel()
        keep = (cols >= 0) & (values >= params.identity_similarity) & (rows < cols)
        order = np.argsort(-values[keep], kind="stable")
        for a, b in zip(rows[keep][order], cols[keep][order], strict=True):
            groups.try_merge(int(a), int(b), params.identity_similarity)
    root = np.array([groups.find(t) for t in range(len(track_ids))])[track_of]
    labels = np.empty(n, np.int64)
    labels[canon] = _number(root, shots, frames, params.min_detections)
    return IdentityResult(labels, int(labels.max()) + 1, len(track_ids))


def _number(
    root: np.ndarray, shots: np.ndarray, frames: np.ndarray, min_detections: int
) -> np.ndarray:
    """Labels 0..K-1 by first appearance; groups smaller than ``min_detections`` get -1."""
    labels = np.full(len(root), -1, np.int64)
    counts = dict(zip(*np.unique(root, return_counts=True), strict=True))
    order = np.lexsort((np.arange(len(root)), frames, shots))
    next_id: dict[int, int] = {}
    for i in order:
        r = int(root[i])
        if counts[r] < min_detections:
            continue
        if r not in next_id:
            next_id[r] = len(next_id)
        labels[i] = next_id[r]
    return labels
