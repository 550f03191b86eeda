"""Film-level identity clustering on synthetic embeddings with known identities."""

from __future__ import annotations

import itertools

import numpy as np

from muss_builder.subjects.identities import IdentityParams, cluster_identities
from muss_builder.testing.synthetic_detections import synthetic_detections


def synthetic_film(rng: np.random.Generator, n_people: int = 20, n_shots: int = 120):
    return synthetic_detections(rng, n_people=n_people, n_shots=n_shots)


def pair_scores(labels: np.ndarray, truth: np.ndarray, shots: np.ndarray) -> tuple[float, float]:
    """Pairwise precision and recall over pairs of detections in different shots."""
    tp = fp = fn = 0
    for i, j in itertools.combinations(range(len(labels)), 2):
        if shots[i] == shots[j]:
            continue
        same_pred = labels[i] >= 0 and labels[i] == labels[j]
        same_true = truth[i] == truth[j]
        tp += same_pred and same_true
        fp += same_pred and not same_true
        fn += same_true and not same_pred
    return tp / max(1, tp + fp), tp / max(1, tp + fn)


def test_identities_are_recovered_across_shots() -> None:
    embeddings, shots, frames, truth = synthetic_film(np.random.default_rng(0))
    result = cluster_identities(embeddings, shots, frames)
    precision, recall = pair_scores(result.labels, truth, shots)
    assert precision >= 0.99 and recall >= 0.95
    assert result.n_identities == 20
    # faces seen together in one frame never share an id
    for frame in np.unique(frames):
        ids = result.labels[(frames == frame) & (result.labels >= 0)]
        assert len(ids) == len(set(ids.tolist()))


def test_the_inverted_file_graph_gives_the_exact_graphs_ids() -> None:
    """Above ``exact_limit`` tracks the k-NN graph comes from an IVF index: on clustered
    embeddings it finds the same neighbours, so the same ids, and reruns agree."""
    embeddings, shots, frames, _ = synthetic_film(np.random.default_rng(4), 30, 300)
    exact = cluster_identities(embeddings, shots, frames)
    approx = IdentityParams(exact_limit=100)
    ivf = cluster_identities(embeddings, shots, frames, approx)
    assert exact.n_tracks > 100  # so the IVF path really ran
    assert np.array_equal(ivf.labels, exact.labels)
    assert np.array_equal(cluster_identities(embeddings, shots, frames, approx).labels, ivf.labels)


def test_look_alikes_in_one_frame_stay_apart() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(size=512)
    twin = base + rng.normal(scale=0.3, size=512)  # cosine ~0.95 to base
    embeddings = np.stack([base, twin, base, twin])
    result = cluster_identities(
        embeddings,
        shots=np.array([0, 0, 1, 1]),
        frames=np.array([0, 0, 5, 5]),
        params=IdentityParams(min_detections=1),
    )
    assert result.labels[0] != result.labels[1]
    assert result.labels[2] != result.labels[3]


def test_singletons_are_unknown_and_ids_do_not_depend_on_input_order() -> None:
    embeddings, shots, frames, _ = synthetic_film(np.random.default_rng(2), n_people=6, n_shots=30)
    lone = np.random.default_rng(3).normal(size=(1, 512))
    embeddings = np.vstack([embeddings, lone])
    shots = np.append(shots, 999)
    frames = np.append(frames, 9999)
    first = cluster_identities(embeddings, shots, frames)
    assert first.labels[-1] == -1
    order = np.random.default_rng(4).permutation(len(shots))
    second = cluster_identities(embeddings[order], shots[order], frames[order])
    assert np.array_equal(second.labels, first.labels[order])


def test_empty_and_single_detection() -> None:
    assert cluster_identities(np.zeros((0, 512)), [], []).n_identities == 0
    one = cluster_identities(np.ones((1, 512)), [0], [0])
    assert one.labels.tolist() == [-1] and one.n_tracks == 1
