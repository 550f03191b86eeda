"""Inter-shot consistency: how alike the shots of one video are, semantically, per subject and
in their backgrounds.

All three are the same formula over different embeddings. Shot ``i`` has unit embeddings
``x_i1..x_ik`` (sampled frames, subject crops or background-only frames); its shot embedding is
``e_i = normalise(mean_k x_ik)``, and

    C = mean over pairs i < j of cos(e_i, e_j)

in [-1, 1] (pixel descriptors are non-negative, so [0, 1] there); higher is more consistent;
identical shots give exactly 1. It needs at least two shots (else ``None``). Subject
consistency takes, for each subject found in at least two shots, C over those shots, then the
mean over subjects.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def shot_embedding(embeddings: np.ndarray) -> np.ndarray:
    """The normalised mean of a shot's unit embeddings ([k, D] -> [D])."""
    embeddings = np.asarray(embeddings, np.float64)
    if embeddings.ndim != 2 or embeddings.shape[0] == 0:
        raise ValueError(f"a shot needs a [k >= 1, D] array of embeddings, got {embeddings.shape}")
    return unit(unit(embeddings).mean(axis=0))


def inter_shot_consistency(per_shot: Sequence[np.ndarray]) -> float | None:
    """Mean pairwise cosine of shot embeddings; ``per_shot[i]`` is shot i's [k, D] array.
    ``None`` with fewer than two shots."""
    if len(per_shot) < 2:
        return None
    shots = [shot_embedding(e) for e in per_shot]
    return float(np.mean([a @ b for a, b in itertools.combinations(shots, 2)]))


def subject_consistency(per_subject: Mapping[str, Sequence[np.ndarray]]) -> float | None:
    """Mean over subjects (seen in >= 2 shots) of their inter-shot consistency; ``None`` when
    no subject is seen in two shots. ``per_subject[s]``: one [k, D] array per shot s is in."""
    values = [inter_shot_consistency(shots) for shots in per_subject.values()]
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None
