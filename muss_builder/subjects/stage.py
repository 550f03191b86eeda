"""The subject stage of one film: keyframes -> faces (+ objects) -> film-level subject ids.

Faces get ids ``S1, S2, ...`` and objects ``O1, O2, ...`` (numbered by first appearance, so a
rerun gives the same ids); detections that cluster with nothing form the unknown bucket and
keep ``subject = None``. Each detection big enough to be a reference keeps a JPEG crop and a
small grey thumbnail, which is all the reference chooser needs once the keyframes are gone.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

import cv2
import numpy as np

from muss_builder.config import SubjectsConfig
from muss_builder.core.models import loaded_model
from muss_builder.media.probe import FilmProbe
from muss_builder.shots.segment import ShotDetection
from muss_builder.subjects.identities import IdentityParams, cluster_identities
from muss_builder.subjects.keyframes import keyframe_frames, read_keyframes

if TYPE_CHECKING:
    from muss_builder.subjects.keyframes import Keyframe


class FrameCollector(Protocol):
    """What rides the keyframe decode (the captioner's pixels, curation's measures): the extra
    frames it wants per shot, then every decoded frame in film order (keyframes flagged)."""

    def wanted(self) -> dict[int, list[int]]: ...

    def add(self, keyframe: Keyframe, is_keyframe: bool) -> None: ...


THUMB_SIDE = 32  # grey thumbnail of the tight box, for the near-duplicate test


@dataclass
class Detection:
    kind: str  # "face" or "object"
    label: str  # "face", "person", "dog", ...
    shot: int
    frame: int
    box: tuple[float, float, float, float]  # x0, y0, x1, y1, keyframe pixels, inside the image
    image_size: tuple[int, int]  # keyframe width, height
    score: float
    size: float
    sharpness: float
    embedding: np.ndarray
    pose: tuple[float, float, float] | None = None  # yaw, pitch, roll (faces)
    touches_edge: bool = False  # the subject runs off the frame: a poor reference
    crop: bytes | None = None  # JPEG of the reference crop (None when too small)
    thumb: np.ndarray | None = None
    subject: str | None = None
    keypoints: np.ndarray | None = None  # [5, 2] keyframe pixels (faces)

    def normalised_box(self) -> list[float]:
        w, h = self.image_size
        x0, y0, x1, y1 = self.box
        return [round(x0 / w, 4), round(y0 / h, 4), round(x1 / w, 4), round(y1 / h, 4)]

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "frame": self.frame,
            "kind": self.kind,
            "label": self.label,
            "subject": self.subject,
            "box": self.normalised_box(),
            "score": round(self.score, 4),
            "size_px": round(self.size, 1),
            "sharpness": round(self.sharpness, 1),
            "touches_edge": self.touches_edge,
        }
        if self.keypoints is not None:
            w, h = self.image_size
            doc["keypoints"] = [
                [round(float(x) / w, 4), round(float(y) / h, 4)] for x, y in self.keypoints
            ]
        if self.pose is not None:
            doc["pose"] = {
                k: round(v, 1) for k, v in zip(("yaw", "pitch", "roll"), self.pose, strict=True)
            }
        return doc


@dataclass
class FilmSubjects:
    keyframes: dict[int, list[int]]  # film shot index -> source frames
    detections: list[Detection]
    faces_pack: str | None
    objects_backend: str | None
    n_small_faces: int = 0  # seen, but too small to identify
    seconds: dict[str, float] = field(default_factory=dict)
    _by_shot: dict[int, list[Detection]] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    _indexed: int = field(default=0, init=False, repr=False, compare=False)

    def by_subject(self) -> dict[str, list[Detection]]:
        groups: dict[str, list[Detection]] = {}
        for d in self.detections:
            if d.subject is not None:
                groups.setdefault(d.subject, []).append(d)
        return groups

    def in_shot(self, shot: int) -> list[Detection]:
        # Asked once or more per shot (film record, sample metadata, facts): an index by shot
        # keeps that linear in the detections, rebuilt only if the list has grown since.
        if self._by_shot is None or self._indexed != len(self.detections):
            self._by_shot = {}
            for d in self.detections:
                self._by_shot.setdefault(d.shot, []).append(d)
            self._indexed = len(self.detections)
        return self._by_shot.get(shot, [])

    def shot_subjects(self, shot: int) -> list[str]:
        return sorted({d.subject for d in self.in_shot(shot) if d.subject}, key=subject_order)

    def summary(self) -> list[dict[str, Any]]:
        rows = []
        for sid, dets in sorted(self.by_subject().items(), key=lambda kv: subject_order(kv[0])):
            rows.append(
                {
                    "id": sid,
                    "kind": dets[0].kind,
                    "label": dets[0].label,
                    "n_detections": len(dets),
                    "shots": sorted({d.shot for d in dets}),
                }
            )
        return rows

    def stage_record(self) -> dict[str, Any]:
        return {
            "faces_pack": self.faces_pack,
            "objects": self.objects_backend,
            "n_keyframes": sum(len(v) for v in self.keyframes.values()),
            "n_detections": len(self.detections),
            "n_unknown": sum(d.subject is None for d in self.detections),
            "n_small_faces": self.n_small_faces,
        }

    def timings(self) -> dict[str, float]:
        """Wall-clock seconds of the stage's parts, for the record's ``timings``: they vary
        from run to run, so they stay out of ``stage_record`` (which must not)."""
        return {f"subjects_{k}": round(v, 4) for k, v in self.seconds.items() if k != "total"}


def subject_order(sid: str) -> tuple[str, int]:
    return sid[0], int(sid[1:])


def _face_detector(config: SubjectsConfig) -> Any:
    """The face detector of ``config``, set up; one per worker process (``loaded_model``)."""
    from muss_builder.subjects.faces import FaceDetector

    f = config.faces

    def load() -> FaceDetector:
        detector = FaceDetector(f.pack, f.det_size, f.min_score, f.device, f.min_size)
        detector.setup()
        return detector

    return loaded_model(f"faces:{f.pack}:{f.det_size}:{f.min_score}:{f.device}:{f.min_size}", load)


def _object_stage(config: SubjectsConfig) -> Any:
    """The object stage of ``config``, set up; one per worker process (``loaded_model``)."""
    from muss_builder.subjects.objects import ObjectStage

    o = config.objects

    def load() -> ObjectStage:
        stage = ObjectStage(
            detector=o.detector,
            detector_model=o.detector_model,
            embedder_model=o.embedder_model,
            min_score=o.min_score,
            min_size=o.min_size,
            max_per_image=o.max_per_image,
            device=o.device,
        )
        stage.setup()
        return stage

    return loaded_model(f"objects:{o.model_dump_json()}", load)


def load_subject_models(config: SubjectsConfig) -> None:
    """Load the face and object models ``config`` enables, kept for this process's films:
    a model that cannot load raises here (a stage's setup), not on a film."""
    if config.faces.enabled:
        _face_detector(config)
    if config.objects.enabled:
        _object_stage(config)


def _clip_box(
    box: tuple[float, ...], width: int, height: int
) -> tuple[tuple[float, float, float, float], bool]:
    """The box inside the image, and whether the subject ran off the frame."""
    from muss_builder.subjects.objects import clip_box

    x0, y0, x1, y1 = (float(v) for v in box)
    touches = x0 <= 1 or y0 <= 1 or x1 >= width - 1 or y1 >= height - 1
    return clip_box(box, width, height), touches


def reference_crop(
    image: np.ndarray, box: tuple[float, float, float, float], margin: float, max_side: int
) -> bytes:
    """JPEG of the box scaled by ``margin`` about its centre (a face box grows to the head),
    clipped to the image and shrunk so the long side is at most ``max_side``."""
    h, w = image.shape[:2]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    half_w, half_h = (box[2] - box[0]) * margin / 2, (box[3] - box[1]) * margin / 2
    x0, x1 = max(0, round(cx - half_w)), min(w, round(cx + half_w))
    y0, y1 = max(0, round(cy - half_h)), min(h, round(cy + half_h))
    crop = image[y0:y1, x0:x1]
    scale = min(1.0, max_side / max(crop.shape[:2]))
    if scale < 1.0:
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 93])
    if not ok:
        raise ValueError("could not encode a reference crop")
    return buf.tobytes()


def thumbnail(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    x0, y0, x1, y1 = (round(v) for v in box)
    crop = image[y0 : max(y1, y0 + 1), x0 : max(x1, x0 + 1)]
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    return cv2.resize(grey, (THUMB_SIDE, THUMB_SIDE), interpolation=cv2.INTER_AREA)


def find_subjects(
    path: str,
    probe: FilmProbe,
    detection: ShotDetection,
    config: SubjectsConfig,
    collectors: Sequence[FrameCollector] = (),
    crops: Mapping[int, Sequence[int]] | None = None,
) -> FilmSubjects:
    """Detect and identify the subjects of every shot of one film. ``collectors`` (the
    captioner's, curation's) are fed every frame of the same decode, including extra frames
    they ask for. ``crops`` (shot -> box in keyframe pixels) cuts each shot's frames to its
    active picture first: models and collectors never see the bars, and every box is a
    fraction of the picture the clip shows."""
    started = time.perf_counter()
    chosen = keyframe_frames(detection.shots, config.keyframes_per_shot)
    wanted = {shot: list(frames) for shot, frames in chosen.items()}
    for collector in collectors:
        for shot, frames in collector.wanted().items():
            wanted[shot] = sorted(set(wanted.get(shot, [])) | set(frames))
    faces = _face_detector(config) if config.faces.enabled else None
    objects = _object_stage(config) if config.objects.enabled else None
    result = FilmSubjects(
        keyframes=chosen,
        detections=[],
        faces_pack=config.faces.pack if faces else None,
        objects_backend=config.objects.detector if objects else None,
    )
    model_seconds = 0.0
    for keyframe in read_keyframes(
        path, probe, detection.frame_pts, wanted, config.keyframe_max_side
    ):
        is_keyframe = keyframe.frame in chosen[keyframe.shot]
        box = crops.get(keyframe.shot) if crops else None
        if box is not None:
            x0, y0, x1, y1 = box
            keyframe = replace(keyframe, image=np.ascontiguousarray(keyframe.image[y0:y1, x0:x1]))
        for collector in collectors:
            collector.add(keyframe, is_keyframe)
        if not is_keyframe:
            continue
        image = keyframe.image
        h, w = image.shape[:2]
        t0 = time.perf_counter()
        found: list[Detection] = []
        small_before = faces.n_small if faces else 0
        for face in faces.detect(image) if faces else []:
            box, edge = _clip_box(face.box, w, h)
            found.append(
                Detection(
                    "face", "face", keyframe.shot, keyframe.frame, box, (w, h), face.score,
                    face.size, face.sharpness, face.embedding,
                    (face.yaw, face.pitch, face.roll), edge, keypoints=face.keypoints,
                )
            )  # fmt: skip
        for obj in objects.detect(image) if objects else []:
            box, edge = _clip_box(obj.box, w, h)
            found.append(
                Detection(
                    "object", obj.label, keyframe.shot, keyframe.frame, box, (w, h), obj.score,
                    obj.size, obj.sharpness, obj.embedding, None, edge,
                )
            )  # fmt: skip
        result.n_small_faces += (faces.n_small - small_before) if faces else 0
        model_seconds += time.perf_counter() - t0
        for d in found:
            margin = config.references.crop_margin if d.kind == "face" else 1.1
            if d.size >= config.references.min_size:
                d.crop = reference_crop(image, d.box, margin, config.references.crop_max_side)
            d.thumb = thumbnail(image, d.box)
        result.detections.extend(found)
    t0 = time.perf_counter()
    _assign_ids(result.detections, config)
    result.seconds = {
        "models": model_seconds,
        "clustering": time.perf_counter() - t0,
        "total": time.perf_counter() - started,
    }
    return result


def _assign_ids(detections: list[Detection], config: SubjectsConfig) -> None:
    """Cluster faces, and each object label apart, into film subject ids."""
    groups: dict[tuple[str, str], list[Detection]] = {}
    for d in detections:
        groups.setdefault((d.kind, d.label if d.kind == "object" else "face"), []).append(d)
    next_object = 1
    for (kind, _label), members in sorted(groups.items()):
        if kind == "face":
            params = IdentityParams(
                track_similarity=config.track_similarity,
                identity_similarity=config.identity_similarity,
                min_detections=config.min_detections,
                use_gpu=True,  # taken only when faiss-gpu sees a GPU
            )
        else:
            o = config.objects
            params = IdentityParams(
                track_similarity=o.track_similarity,
                identity_similarity=o.identity_similarity,
                min_detections=config.min_detections,
                use_gpu=True,
            )
        result = cluster_identities(
            np.stack([d.embedding for d in members]),
            np.array([d.shot for d in members]),
            np.array([d.frame for d in members]),
            params,
        )
        for d, label in zip(members, result.labels, strict=True):
            if label < 0:
                continue
            d.subject = f"S{label + 1}" if kind == "face" else f"O{next_object + label}"
        if kind == "object":
            next_object += result.n_identities
