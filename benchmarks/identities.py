"""Time of film-level identity clustering on synthetic 512-d embeddings (CPU).

    .venv/bin/python benchmarks/identities.py --runs 3
    .venv/bin/python benchmarks/identities.py --runs 1 --million --faiss-graph

A "feature film" here is 2,000 shots x 3 keyframes x 1-3 faces (about 12k detections) and a
large one 50k detections; identities are known, so pairwise precision/recall are reported too.
``--million`` adds a 1M-detection clustering (its track graph comes from the approximate
index); ``--faiss-graph`` times the k-NN graph alone on 1M embeddings: exact, HNSW and IVF,
with recall@10 against exact search on 1,000 sampled queries.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from muss_builder.subjects.identities import cluster_identities
from muss_builder.testing.synthetic_detections import synthetic_detections


def _pairs_within(groups: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` uniformly drawn pairs (i, j), i != j, of items sharing a group (group >= 0)."""
    keep = np.nonzero(groups >= 0)[0]
    order = keep[np.argsort(groups[keep], kind="stable")]
    _, starts, counts = np.unique(groups[order], return_index=True, return_counts=True)
    weight = counts * (counts - 1.0)  # ordered pairs per group
    group = rng.choice(len(counts), size=n, p=weight / weight.sum())
    i = rng.integers(0, counts[group])
    j = (i + rng.integers(1, counts[group])) % counts[group]  # any other member
    return np.stack([order[starts[group] + i], order[starts[group] + j]])


def pairwise(labels: np.ndarray, truth: np.ndarray, sample: int = 200_000) -> tuple[float, float]:
    """Pairwise precision (of pairs sharing an id, the share that is one person) and recall
    (of one person's pairs, the share sharing an id), each on ``sample`` uniformly drawn
    pairs of its own population, so thousands of people do not leave recall on a handful."""
    rng = np.random.default_rng(0)
    i, j = _pairs_within(labels, rng, sample)
    precision = float(np.mean(truth[i] == truth[j]))
    i, j = _pairs_within(truth, rng, sample)
    recall = float(np.mean((labels[i] == labels[j]) & (labels[i] >= 0)))
    return precision, recall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--million", action="store_true", help="add a 1M clustering (minutes)")
    parser.add_argument(
        "--faiss-graph", action="store_true", help="the k-NN graph alone on 1M (tens of minutes)"
    )
    args = parser.parse_args()
    cases = {"2,000 shots, 60 people": (60, 2000, 3), "50k detections, 400 people": (400, 8300, 3)}
    if args.million:
        cases["1M detections, 5,000 people"] = (5000, 166_000, 3)
    print(
        f"| case | detections | tracks | identities | seconds (median of {args.runs}) | "
        "pair precision | pair recall |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, (people, shots, keyframes) in cases.items():
        emb, shot, frame, truth = synthetic_detections(
            np.random.default_rng(1), people, shots, keyframes
        )
        times, result = [], None
        for _ in range(args.runs):
            started = time.perf_counter()
            result = cluster_identities(emb, shot, frame)
            times.append(time.perf_counter() - started)
        precision, recall = pairwise(result.labels, truth)
        print(
            f"| {name} | {len(emb):,} | {result.n_tracks:,} | {result.n_identities} | "
            f"{statistics.median(times):.2f} | {precision:.3f} | {recall:.3f} |"
        )
    if args.faiss_graph:
        faiss_graphs(args.runs)


def faiss_graphs(runs: int, n: int = 1_000_000, k: int = 10, queries: int = 1000) -> None:
    """The k-NN graph alone on ``n`` embeddings: build + search seconds and recall@k."""
    import faiss

    emb, _, _, _ = synthetic_detections(np.random.default_rng(2), 5000, n // 6, 3)
    emb = emb[:n] / np.linalg.norm(emb[:n], axis=1, keepdims=True)
    d = emb.shape[1]
    sample = np.random.default_rng(3).choice(len(emb), queries, replace=False)
    exact = faiss.IndexFlatIP(d)
    exact.add(emb)
    started = time.perf_counter()
    _, truth = exact.search(emb[sample], k)
    flat_seconds = (time.perf_counter() - started) * len(emb) / queries
    threads = faiss.omp_get_max_threads()
    print(f"\nFAISS k-NN graph (k={k}) on {len(emb):,} x {d} embeddings, {threads} threads")
    print("| index | build s | search all s | recall@10 |")
    print("|---|---|---|---|")
    print(
        f"| exact (IndexFlatIP) | 0 | {flat_seconds:.0f} (extrapolated from {queries:,}) | 1.000 |"
    )

    def hnsw():
        index = faiss.IndexHNSWFlat(d, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = 64
        return index

    def ivf():
        quantiser = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFFlat(quantiser, d, 4096, faiss.METRIC_INNER_PRODUCT)
        index.train(emb[np.random.default_rng(4).choice(len(emb), 200_000, replace=False)])
        index.nprobe = 16
        return index

    for name, make in (("HNSW32, efSearch 64", hnsw), ("IVF4096,Flat, nprobe 16", ivf)):
        builds, searches = [], []
        for _ in range(runs):
            started = time.perf_counter()
            index = make()
            index.add(emb)
            builds.append(time.perf_counter() - started)
            started = time.perf_counter()
            _, found = index.search(emb, k)
            searches.append(time.perf_counter() - started)
        recall = np.mean([len(set(found[q]) & set(truth[i])) / k for i, q in enumerate(sample)])
        print(
            f"| {name} | {statistics.median(builds):.0f} | {statistics.median(searches):.0f} | "
            f"{recall:.3f} |"
        )


if __name__ == "__main__":
    main()
