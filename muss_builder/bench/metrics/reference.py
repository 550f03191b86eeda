"""Reference consistency: does the generated subject look like its reference crop?

For every reference ``k`` (subject ``s``, target shot ``i``), the generated subject is found in
shot ``i``'s sampled frames (faces: the detected face most similar to the reference, if its
cosine passes the identity gate; objects: the script's box for that shot). Then

    reference_identity = mean_k cos(normalise(mean_f id(gen_kf)), id(ref_k))   (faces)
    reference_crop     = mean_k cos(normalise(mean_f emb(crop_kf)), emb(ref_k)) (all kinds)

``id`` is the face recogniser's 512-d embedding, ``emb`` the frame embedder on a crop (for a
face, the face box enlarged 1.6x, the head the reference crops show). Range [-1, 1], higher is
more faithful. A reference whose subject is not found counts in ``subject_found`` (found /
references), not in the means, so a generator that drops the subject is seen there.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from muss_builder.bench.metrics.acp import acp_var, copy_paste_index, pose_vector
from muss_builder.bench.metrics.consistency import shot_embedding, unit
from muss_builder.bench.metrics.locate import LoadedReference, SubjectInShot


def reference_similarity(generated: np.ndarray, reference: np.ndarray) -> float:
    """cos(normalised mean of the generated [k, D] embeddings, the reference [D])."""
    return float(shot_embedding(generated) @ unit(np.asarray(reference)))


def mean_or_none(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return float(np.mean(kept)) if kept else None


def score_references(
    refs: list[LoadedReference],
    located: list[dict[str, SubjectInShot]],
    shot_frames: list[list[int]],
    target_frames: np.ndarray | None,
    target_faces: dict[int, list[Any]],
    models: Any,
    metrics: dict[str, float | None],
    notes: dict[str, str],
) -> list[dict[str, Any]]:
    """Reference identity / crop similarity, ACP-Var and CP per reference, then the means.
    ``target_faces`` caches the faces detected per frame of ``target_frames`` (filled here)."""
    rows = []
    for r in refs:
        ref = r.ref
        seen = located[ref.shot].get(ref.subject) if shot_frames[ref.shot] else None
        row: dict[str, Any] = {"subject": ref.subject, "kind": ref.kind, "shot": ref.shot,
                               "image": ref.image, "found": bool(seen), "face_in_reference":
                               r.face is not None}  # fmt: skip
        if seen:
            crops = models.frame_embedder.embed([s.crop_bgr for s in seen.sightings])
            row["crop"] = reference_similarity(crops, r.crop_embedding)
        if seen and seen.kind == "face" and r.face is not None:
            ids = np.stack([s.face.embedding for s in seen.sightings])
            row["identity"] = reference_similarity(ids, r.face.embedding)
            expected = r.face.box[3] - r.face.box[1]  # the pasted reference's face height
            poses = np.stack([
                pose_vector(s.face.yaw, s.face.pitch, s.face.roll, s.face.box, expected)
                for s in seen.sightings
            ])  # fmt: skip
            ref_pose = pose_vector(r.face.yaw, r.face.pitch, r.face.roll, r.face.box)
            sims = [s.identity for s in seen.sightings]
            row["acp_var"] = acp_var(poses, ref_pose, sims, models.config.identity_gate)
            if target_frames is not None:
                row["copy_paste_index"] = _cp(
                    r, ids, target_frames, shot_frames[ref.shot], target_faces, models
                )
        rows.append(row)
    metrics["reference_identity"] = mean_or_none([r.get("identity") for r in rows])
    metrics["reference_crop"] = mean_or_none([r.get("crop") for r in rows])
    metrics["subject_found"] = float(np.mean([r["found"] for r in rows])) if rows else None
    metrics["acp_var"] = mean_or_none([r.get("acp_var") for r in rows])
    metrics["copy_paste_index"] = mean_or_none([r.get("copy_paste_index") for r in rows])
    _explain(rows, target_frames is not None, models.faces is not None, metrics, notes)
    return rows


def _explain(
    rows: list[dict[str, Any]],
    have_target: bool,
    have_faces: bool,
    metrics: dict[str, float | None],
    notes: dict[str, str],
) -> None:
    """A note for every reference metric left None, saying which condition failed."""
    if not rows:
        keys = ("reference_identity", "reference_crop", "subject_found", "acp_var")
        for key in (*keys, "copy_paste_index"):
            notes[key] = "the script has no references"
        return
    found = [r for r in rows if r["found"]]
    not_found = f"no referenced subject was found in its target shot (0 of {len(rows)})"
    if metrics["reference_crop"] is None:
        notes["reference_crop"] = not_found
    if metrics["reference_identity"] is None:
        if not found:
            notes["reference_identity"] = not_found
        elif not any(r["kind"] == "face" for r in found):
            notes["reference_identity"] = (
                "no found subject is a face reference (identity is for faces; see reference_crop)"
            )
        elif not have_faces:
            notes["reference_identity"] = "no face model configured (face_pack): faces unmeasured"
        else:
            notes["reference_identity"] = (
                "no face was detected in the reference image of a found face subject"
            )
    if metrics["acp_var"] is None:
        notes["acp_var"] = "no face reference whose subject was found (faces only; see docs)"
    if not have_target:
        notes["copy_paste_index"] = "needs the real target clip (target_frames)"
    elif metrics["copy_paste_index"] is None:
        notes["copy_paste_index"] = "no face found in both videos, or target ~ reference"


def _cp(
    r: LoadedReference,
    ids: np.ndarray,
    target_frames: np.ndarray,
    picked: list[int],
    cache: dict[int, list[Any]],
    models: Any,
) -> float | None:
    """CP of one face reference: the subject's identity in the generated and target shot."""
    anchor = r.face.embedding
    found = []
    for f in picked:
        if f >= target_frames.shape[0]:
            continue
        if f not in cache:
            cache[f] = models.faces.detect(cv2.cvtColor(target_frames[f], cv2.COLOR_RGB2BGR))
        if cache[f]:
            best = max(cache[f], key=lambda face: float(face.embedding @ anchor))
            if float(best.embedding @ anchor) >= models.config.identity_gate:
                found.append(best.embedding)
    if not found:
        return None
    return copy_paste_index(shot_embedding(ids), shot_embedding(np.stack(found)), anchor)
