"""Reference crops for the subject track, chosen so a model cannot paste them as stickers.

For one subject of a sample, the *targets* are its detections in the sample's shots. A
candidate reference is any detection of the same subject with a crop, and it must:

- come from a shot outside the sample; only when the film has none does a shot of the sample
  serve, and then the reference is flagged ``fallback`` and is a reference only for the
  *other* shots of the sample (never for the shot it was cut from);
- be the same person: cosine similarity to the mean embedding of the targets at least
  ``min_identity_similarity`` (the film clustering can be wrong; this is a second check);
- not be a near-duplicate of a target crop: a shot-reverse-shot film returns to the same set-up,
  and a crop from that later shot is a copy of the target in all but name. Duplicates are
  caught by the normalised correlation of small grey thumbnails.

Among the rest, the score favours identity, quality (size, sharpness, detection score, not
cut by the frame edge) and a pose different from the targets'. References come from distinct
shots so that ``per_subject`` references show the subject in different set-ups.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from muss_builder.config import ReferencesConfig
from muss_builder.subjects.stage import Detection, subject_order


@dataclass
class Reference:
    subject: str
    detection: Detection
    target_shots: list[int]  # film shot indices it is a reference for
    identity_similarity: float
    pose_delta: float | None  # degrees, mean |d yaw| + |d pitch| to the nearest target
    duplicate_correlation: float
    quality: float
    fallback: bool

    def provenance(self) -> dict[str, Any]:
        d = self.detection
        return {
            "subject": self.subject,
            "kind": d.kind,
            "label": d.label,
            "source_shot": d.shot,
            "source_frame": d.frame,
            "box": d.normalised_box(),
            "target_shots": self.target_shots,
            "identity_similarity": round(self.identity_similarity, 4),
            "pose_delta": None if self.pose_delta is None else round(self.pose_delta, 2),
            "duplicate_correlation": round(self.duplicate_correlation, 4),
            "quality": round(self.quality, 4),
            "fallback": self.fallback,
        }


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    x = a.astype(np.float64).ravel() - a.mean()
    y = b.astype(np.float64).ravel() - b.mean()
    denom = float(np.linalg.norm(x) * np.linalg.norm(y))
    return float(x @ y) / denom if denom > 1e-9 else 1.0  # two flat crops are alike


def quality(d: Detection) -> float:
    """0..1: size saturates at 160 px, sharpness at a Laplacian variance of 400."""
    q = 0.4 * min(d.size / 160.0, 1.0) + 0.3 * min(d.sharpness / 400.0, 1.0) + 0.3 * d.score
    return q * (0.5 if d.touches_edge else 1.0)


def _pose_delta(candidate: Detection, targets: list[Detection]) -> float | None:
    if candidate.pose is None:
        return None
    deltas = [
        (abs(candidate.pose[0] - t.pose[0]) + abs(candidate.pose[1] - t.pose[1])) / 2
        for t in targets
        if t.pose is not None
    ]
    return min(deltas) if deltas else None


def _evaluate(
    subject: str, candidate: Detection, targets: list[Detection], params: ReferencesConfig
) -> Reference | None:
    centre = _unit(np.mean([t.embedding for t in targets], axis=0))
    identity = float(candidate.embedding @ centre)
    if identity < params.min_identity_similarity:
        return None
    duplicate = max(
        (_correlation(candidate.thumb, t.thumb) for t in targets if t.thumb is not None),
        default=0.0,
    )
    if duplicate >= params.near_duplicate_correlation:
        return None
    return Reference(
        subject,
        candidate,
        sorted({t.shot for t in targets}),
        identity,
        _pose_delta(candidate, targets),
        duplicate,
        quality(candidate),
        fallback=False,
    )


def _score(ref: Reference) -> float:
    pose_bonus = 0.0 if ref.pose_delta is None else min(ref.pose_delta / 30.0, 1.0)
    return ref.identity_similarity + ref.quality + 0.5 * pose_bonus


def choose_references(
    subject: str,
    detections: list[Detection],
    sample_shots: list[int],
    params: ReferencesConfig,
) -> list[Reference]:
    """Up to ``per_subject`` references of one subject for a sample of ``sample_shots``."""
    inside = set(sample_shots)
    targets = [d for d in detections if d.shot in inside]
    if not targets:
        return []
    candidates = [d for d in detections if d.crop is not None and d.shot not in inside]
    refs = [r for d in candidates if (r := _evaluate(subject, d, targets, params))]
    if not refs and params.allow_fallback:
        for d in detections:
            if d.crop is None or d.shot not in inside:
                continue
            others = [t for t in targets if t.shot != d.shot]
            ref = _evaluate(subject, d, others, params) if others else None
            if ref is not None:
                ref.fallback = True
                refs.append(ref)
    refs.sort(key=lambda r: (-_score(r), r.detection.shot, r.detection.frame))
    chosen: list[Reference] = []
    for ref in refs:
        if all(ref.detection.shot != c.detection.shot for c in chosen):
            chosen.append(ref)
        if len(chosen) == params.per_subject:
            break
    return chosen


def focus_subject(present: dict[str, int]) -> str | None:
    """The main subject a sample's subject view centres on: in the most shots, then the first id."""
    if not present:
        return None
    return min(present, key=lambda s: (-present[s], subject_order(s)))
