"""Time of film-level identity clustering on synthetic 512-d embeddings (CPU).

    .venv/bin/python benchmarks/identities.py --runs 3

A "feature film" here is 2,000 shots x 3 keyframes x 1-3 faces (about 12k detections) and a
large one 50k detections; identities are known, so pairwise precision/recall are reported too.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from muss_builder.subjects.identities import cluster_identities
from muss_builder.subjects.synthetic import synthetic_detections


def pairwise(labels: np.ndarray, truth: np.ndarray, sample: int = 200_000) -> tuple[float, float]:
    """Pairwise precision/recall estimated on random detection pairs (seeded)."""
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, len(labels), size=(2, sample))
    pred = (labels[i] == labels[j]) & (labels[i] >= 0) & (i != j)
    true = (truth[i] == truth[j]) & (i != j)
    return float((pred & true).sum() / max(1, pred.sum())), float(
        (pred & true).sum() / max(1, true.sum())
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    cases = {"2,000 shots, 60 people": (60, 2000, 3), "50k detections, 400 people": (400, 8300, 3)}
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


if __name__ == "__main__":
    main()
