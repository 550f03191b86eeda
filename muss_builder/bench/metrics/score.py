"""``score_video``: every metric of one generated video against the Script it was asked for.

The formulas live beside each metric (``alignment``, ``consistency``, ``transitions``,
``reference``, ``acp``, ``narrative``) and in docs/bench-metrics.md; this module samples the
frames, runs each model once per frame and hands the metrics their arrays.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from muss_builder.bench.metrics import locate as loc
from muss_builder.bench.metrics.alignment import describe_shot, text_alignment
from muss_builder.bench.metrics.consistency import inter_shot_consistency, subject_consistency
from muss_builder.bench.metrics.models import MetricModels
from muss_builder.bench.metrics.narrative import narrative_coherence
from muss_builder.bench.metrics.reference import mean_or_none, score_references
from muss_builder.bench.metrics.transitions import detect_cuts, match_cuts
from muss_builder.train.script import Script

METRIC_KEYS: tuple[str, ...] = (
    "text_alignment",
    "consistency_semantic",
    "consistency_subject",
    "consistency_background",
    "transition_deviation",
    "shot_cut_accuracy",
    "missed_cuts",
    "extra_cuts",
    "reference_identity",
    "reference_crop",
    "subject_found",
    "acp_var",
    "copy_paste_index",
    "narrative_coherence",
    "narrative_scene",
    "narrative_subject",
    "narrative_action",
    "narrative_spatial",
)


@dataclass
class ShotScore:
    index: int
    start: int
    end: int  # exclusive, clipped to the video
    frames: list[int]  # the sampled frames
    text_alignment: float | None = None
    description: str | None = None  # the offline proxy's facts caption of the generated shot
    subjects: dict[str, int] = field(default_factory=dict)  # subject -> frames it was seen in
    faces: int = 0  # most faces in one sampled frame


@dataclass
class VideoScore:
    key: str
    metrics: dict[str, float | None]
    notes: dict[str, str]  # metric -> why it is None (or a caveat)
    methods: dict[str, str]  # metric family -> which model or proxy computed it
    shots: list[ShotScore]
    detected_cuts: list[int]
    references: list[dict[str, Any]]
    judge_answers: list[dict[str, Any]]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def sample_frames(start: int, end: int, k: int) -> list[int]:
    """``k`` evenly spaced frames of ``[start, end)``, away from the 2 frames at each edge
    (where a late or early cut would show the neighbouring shot) when the shot allows."""
    margin = min(2, max(0, (end - start - 1) // 4))
    a, b = start + margin, end - margin
    picks = {a + int((j + 0.5) * (b - a) / k) for j in range(k)}
    return sorted(min(p, end - 1) for p in picks)


def _check(frames: np.ndarray) -> None:
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
        raise ValueError("frames must be a uint8 numpy array (T, H, W, 3) RGB")
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise ValueError(f"frames must be (T >= 1, H, W, 3) RGB, got shape {frames.shape}")


def score_video(
    frames: np.ndarray,
    script: Script,
    script_dir: Path,
    models: MetricModels,
    *,
    target_frames: np.ndarray | None = None,
) -> VideoScore:
    """All metrics of ``frames`` (T, H, W, 3 RGB uint8) against ``script``. ``target_frames``:
    the real clip the script was drawn from (same timing), for the copy-paste index."""
    started = time.perf_counter()
    _check(frames)
    models.setup()
    cfg = models.config
    metrics: dict[str, float | None] = dict.fromkeys(METRIC_KEYS)
    notes: dict[str, str] = {}
    n_video = frames.shape[0]
    if n_video != script.n_frames:
        notes["frames"] = f"the video has {n_video} frames, the script asks for {script.n_frames}"
    shots: list[ShotScore] = []
    for i, (s, e) in enumerate(script.shot_ranges):
        e = min(e, n_video)
        picked = sample_frames(s, e, cfg.frames_per_shot) if e > s else []
        shots.append(ShotScore(i, s, e, picked))
    wanted = sorted({f for shot in shots for f in shot.frames})
    bgr = {f: cv2.cvtColor(frames[f], cv2.COLOR_RGB2BGR) for f in wanted}
    faces = {f: models.faces.detect(bgr[f]) for f in wanted} if models.faces else {}
    refs = loc.load_references(script, script_dir, models, frames)
    anchors = loc.identity_anchors(refs)
    present = [{f: bgr[f] for f in shot.frames} for shot in shots]
    located = [
        loc.locate(script, i, present[i], faces, anchors, cfg.identity_gate)
        for i in range(len(shots))
    ]
    for shot, found in zip(shots, located, strict=True):
        shot.subjects = {s: len(v.sightings) for s, v in found.items()}
        shot.faces = max((len(faces.get(f, [])) for f in shot.frames), default=0)
    lost = [shot.index for shot in shots if not shot.frames]
    if lost:
        notes["shots"] = f"shots {lost} lie past the end of the video: not scored"

    _text_alignment(frames, script, shots, faces, located, models, metrics, notes)
    _consistency(shots, bgr, faces, located, script, models, metrics, notes)

    transitions = detect_cuts(frames, script.fps, cfg.shot_detector)
    detected = [t.boundary for t in transitions]
    match = match_cuts(script.cut_frames, detected, cfg.cut_tolerance_frames)
    metrics["transition_deviation"] = match.deviation
    metrics["shot_cut_accuracy"] = match.accuracy
    metrics["missed_cuts"] = float(match.missed)
    metrics["extra_cuts"] = float(match.extra)
    if match.deviation is None:
        notes["transition_deviation"] = (
            "no requested cut (single shot)" if not script.cut_frames
            else f"no detected cut within {cfg.cut_tolerance_frames} frames of a requested one"
        )  # fmt: skip

    shot_frames = [shot.frames for shot in shots]
    # the real baseline is scored against itself: its faces are already detected
    target_faces = dict(faces) if target_frames is frames else {}
    ref_rows = score_references(
        refs, located, shot_frames, target_frames, target_faces, models, metrics, notes
    )

    middles = [frames[shot.frames[len(shot.frames) // 2]] for shot in shots if shot.frames]
    captions = [script.shots[shot.index].caption for shot in shots if shot.frames]
    judged = narrative_coherence(models.judge, middles, captions, _judge_tokens(models))
    metrics.update(judged.metrics)
    notes.update(judged.notes)
    if judged.note:
        notes["narrative_coherence"] = judged.note
    return VideoScore(
        script.key, metrics, notes, dict(models.methods), shots, detected, ref_rows,
        judged.answers, time.perf_counter() - started,
    )  # fmt: skip


def _judge_tokens(models: MetricModels) -> int:
    return models.config.judge.max_new_tokens if models.config.judge else 8


def _text_alignment(
    frames: np.ndarray,
    script: Script,
    shots: list[ShotScore],
    faces: dict[int, list[Any]],
    located: list[dict[str, loc.SubjectInShot]],
    models: MetricModels,
    metrics: dict[str, float | None],
    notes: dict[str, str],
) -> None:
    height, width = frames.shape[1:3]
    scored = [shot for shot in shots if shot.frames]
    if not scored:
        notes["text_alignment"] = "no shot of the script lies inside the video"
        return
    if models.image_text is None and models.text_embedder is None:
        notes["text_alignment"] = "no text model configured (image_text, text_embedder)"
        return
    captions = [script.shots[shot.index].caption for shot in scored]
    if models.image_text is not None:
        texts = models.image_text.embed_texts(captions)
        for shot, text in zip(scored, texts, strict=True):
            images = models.image_text.embed_images([frames[f] for f in shot.frames])
            shot.text_alignment = text_alignment(images, text)
    else:
        for shot in scored:
            seen = [face for f in shot.frames for face in faces.get(f, [])]
            boxes = [(b[0] / width, b[1] / height, b[2] / width, b[3] / height)
                     for b in (face.box for face in seen)]  # fmt: skip
            named = [s for s, v in located[shot.index].items() if v.kind == "face"]
            times = [f / script.fps for f in shot.frames]
            shot.description = describe_shot(
                [frames[f] for f in shot.frames], times, boxes, named, shot.faces,
                script.shots[shot.index].transition_in,
            )  # fmt: skip
        described = models.text_embedder.embed([s.description for s in scored])
        wanted = models.text_embedder.embed(captions)
        for shot, a, b in zip(scored, described, wanted, strict=True):
            shot.text_alignment = float(a @ b)
        notes["text_alignment"] = "offline proxy (facts caption vs caption): not CLIP-comparable"
    metrics["text_alignment"] = mean_or_none([s.text_alignment for s in scored])


def _consistency(
    shots: list[ShotScore],
    bgr: dict[int, np.ndarray],
    faces: dict[int, list[Any]],
    located: list[dict[str, loc.SubjectInShot]],
    script: Script,
    models: MetricModels,
    metrics: dict[str, float | None],
    notes: dict[str, str],
) -> None:
    scored = [shot for shot in shots if shot.frames]
    embed = models.frame_embedder.embed
    metrics["consistency_semantic"] = inter_shot_consistency(
        [embed([bgr[f] for f in shot.frames]) for shot in scored]
    )
    backgrounds = []
    for shot in scored:
        masked = []
        for f in shot.frames:
            boxes = [_grow(face.box, 2.0) for face in faces.get(f, [])]
            h, w = bgr[f].shape[:2]
            for subject in script.shots[shot.index].subjects:
                box = loc.script_box(script, shot.index, subject, f)
                if box is not None:
                    boxes.append((box[0] * w, box[1] * h, box[2] * w, box[3] * h))
            masked.append(loc.mask_subjects(bgr[f], boxes))
        backgrounds.append(embed(masked))
    metrics["consistency_background"] = inter_shot_consistency(backgrounds)
    per_subject: dict[str, list[np.ndarray]] = {}
    for shot in scored:
        for subject, seen in located[shot.index].items():
            if seen.kind == "face":
                vectors = np.stack([s.face.embedding for s in seen.sightings])
            else:
                vectors = embed([s.crop_bgr for s in seen.sightings])
            per_subject.setdefault(subject, []).append(vectors)
    metrics["consistency_subject"] = subject_consistency(per_subject)
    if len(scored) < 2:
        for key in ("consistency_semantic", "consistency_background", "consistency_subject"):
            notes[key] = "needs at least two shots"
    elif metrics["consistency_subject"] is None:
        notes["consistency_subject"] = "no script subject was found in two shots"


def _grow(box: tuple[float, float, float, float], factor: float) -> tuple[float, ...]:
    x0, y0, x1, y1 = box
    cx, cy, hw, hh = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * factor / 2, (y1 - y0) * factor / 2
    return (cx - hw, cy - hh, cx + hw, cy + hh * 1.5)  # and the shoulders below
