"""Synthetic detections with known identities, for tests and benchmarks of the clustering."""

from __future__ import annotations

import numpy as np


def synthetic_detections(
    rng: np.random.Generator,
    n_people: int = 20,
    n_shots: int = 120,
    keyframes: int = 3,
    noise: float = 0.045,
    dim: int = 512,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(embeddings [N, dim], shots [N], frames [N], true person [N]).

    Each shot shows 1-3 people on ``keyframes`` keyframes; an embedding is the person's unit
    centre plus Gaussian noise (with the default noise, cosine to the centre is about 0.7 and
    between two people about 0, roughly what face-recognition embeddings give)."""
    centres = rng.normal(size=(n_people, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    shots, frames, people = [], [], []
    for shot in range(n_shots):
        present = rng.choice(n_people, size=int(rng.integers(1, 4)), replace=False)
        for k in range(keyframes):
            for person in present:
                shots.append(shot)
                frames.append(shot * keyframes + k)
                people.append(int(person))
    truth = np.array(people)
    embeddings = centres[truth] + rng.normal(scale=noise, size=(len(truth), dim))
    return embeddings.astype(np.float32), np.array(shots), np.array(frames), truth
