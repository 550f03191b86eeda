"""Reference choice: from shots outside the sample, the same person, not a copy of a target."""

from __future__ import annotations

import cv2
import numpy as np

from muss_builder.config import ReferencesConfig
from muss_builder.samples.records import Reference, Sample, SampleShot, SampleWindow
from muss_builder.shards.validate_samples import reference_problems
from muss_builder.subjects.references import choose_references, focus_subject
from muss_builder.subjects.stage import Detection

RNG = np.random.default_rng(0)
PERSON = RNG.normal(size=512)
PARAMS = ReferencesConfig()


def unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v)).astype(np.float32)


def det(
    shot: int,
    *,
    embedding: np.ndarray | None = None,
    yaw: float = 0.0,
    size: float = 120.0,
    thumb: np.ndarray | None = None,
    edge: bool = False,
) -> Detection:
    emb = unit(PERSON + RNG.normal(scale=0.5, size=512)) if embedding is None else embedding
    return Detection(
        "face", "face", shot, shot * 100 + 5, (10, 10, 10 + size, 10 + size), (640, 360),
        0.8, size, 300.0, emb, (yaw, 0.0, 0.0), edge, b"\xff\xd8jpeg",
        RNG.integers(0, 255, size=(32, 32)).astype(np.uint8) if thumb is None else thumb,
        "S1",
    )  # fmt: skip


def test_references_come_from_shots_outside_the_sample() -> None:
    detections = [det(s) for s in (0, 3, 4, 5, 9)]
    refs = choose_references("S1", detections, sample_shots=[3, 4, 5], params=PARAMS)
    assert len(refs) == 2
    assert {r.detection.shot for r in refs} == {0, 9}
    for r in refs:
        assert not r.fallback and r.target_shots == [3, 4, 5]
        assert r.identity_similarity > 0.5


def test_fallback_only_when_the_film_shows_the_subject_nowhere_else() -> None:
    detections = [det(3), det(5)]
    refs = choose_references("S1", detections, sample_shots=[3, 4, 5], params=PARAMS)
    assert refs and all(r.fallback for r in refs)
    for r in refs:
        assert r.detection.shot not in r.target_shots  # never a reference for its own shot
        assert r.target_shots == [5] if r.detection.shot == 3 else [3]
    no_fallback = ReferencesConfig(allow_fallback=False)
    assert choose_references("S1", detections, [3, 4, 5], no_fallback) == []
    # seen in one shot of the sample and nowhere else: nothing to take a reference from
    assert choose_references("S1", [det(4)], [3, 4, 5], PARAMS) == []


def test_a_stranger_clustered_by_mistake_is_not_a_reference() -> None:
    stranger = det(8, embedding=unit(RNG.normal(size=512)))
    refs = choose_references("S1", [det(2), stranger], sample_shots=[2], params=PARAMS)
    assert refs == []


def test_a_near_duplicate_of_the_target_crop_is_refused() -> None:
    target_thumb = RNG.integers(0, 255, size=(32, 32)).astype(np.uint8)
    same_setup = det(7, thumb=np.clip(target_thumb.astype(int) + 3, 0, 255).astype(np.uint8))
    other_setup = det(9)
    refs = choose_references(
        "S1", [det(2, thumb=target_thumb), same_setup, other_setup], [2], PARAMS
    )
    assert [r.detection.shot for r in refs] == [9]
    assert refs[0].duplicate_correlation < PARAMS.near_duplicate_correlation


def test_score_prefers_a_different_pose_and_a_whole_face() -> None:
    target = det(2, yaw=0.0)
    candidates = [det(6, yaw=2.0), det(7, yaw=35.0), det(8, yaw=35.0, edge=True)]
    (best,) = choose_references("S1", [target, *candidates], [2], ReferencesConfig(per_subject=1))
    assert best.detection.shot == 7 and best.pose_delta is not None and best.pose_delta > 10


def test_focus_subject_is_the_one_in_most_shots() -> None:
    assert focus_subject({"S2": 1, "S10": 3, "S3": 3}) == "S3"
    assert focus_subject({}) is None


def sample_doc(refs: list[Reference], track: str = "subject") -> Sample:
    # only the fields the reference rules read: model_construct leaves the rest unset
    return Sample.model_construct(
        tracks=["montage", "subject"] if track == "subject" else ["montage"],
        focus_subjects=["S1"] if track == "subject" else [],
        subjects=["S1"],
        shots=[SampleShot.model_construct(film_shot_index=i) for i in (3, 4)],
        references=refs,
        window=SampleWindow.model_construct(kind="scene"),
    )


def ref(source: int, targets: list[int], fallback: bool = False, x: int = 0) -> Reference:
    return Reference.model_construct(
        strip_box=[x, 0, x + 10, 20],
        subject="S1",
        source_shot=source,
        target_shots=targets,
        fallback=fallback,
    )


def strip(width: int, height: int) -> dict[str, bytes]:
    image = np.full((height, width, 3), 128, np.uint8)
    return {"refs.jpg": cv2.imencode(".jpg", image)[1].tobytes()}


def test_validate_rejects_references_from_the_shots_they_serve() -> None:
    jpeg = strip(10, 20)
    assert reference_problems(sample_doc([ref(9, [3, 4])]), jpeg) == []
    assert reference_problems(sample_doc([ref(4, [3], fallback=True)]), jpeg) == []
    problems = reference_problems(sample_doc([ref(4, [3, 4], fallback=True)]), jpeg)
    assert any("one of the shots it serves" in p for p in problems)
    problems = reference_problems(sample_doc([ref(3, [4])]), jpeg)
    assert any("no fallback" in p for p in problems)
    assert reference_problems(sample_doc([], track="montage"), strip(8, 8)) == []
    assert any("no reference" in p for p in reference_problems(sample_doc([]), strip(8, 8)))


def test_validate_checks_the_strip_against_the_boxes() -> None:
    two = sample_doc([ref(9, [3]), ref(8, [4], x=10)])
    assert reference_problems(two, strip(20, 20)) == []
    assert any("30 wide" in p for p in reference_problems(two, strip(30, 20)))
    gap = sample_doc([ref(9, [3]), ref(8, [4], x=12)])
    assert any("does not follow" in p for p in reference_problems(gap, strip(22, 20)))
    # a montage-only sample carries the 8x8 placeholder, nothing else
    assert any(
        "placeholder" in p for p in reference_problems(sample_doc([], "montage"), jpeg_of(16))
    )
    assert any("not a JPEG" in p for p in reference_problems(two, {"refs.jpg": b"GIF89a"}))


def jpeg_of(side: int) -> dict[str, bytes]:
    return strip(side, side)


def test_validate_ties_a_subject_window_to_the_subject_track_only() -> None:
    jpeg = strip(10, 20)
    window = sample_doc([ref(9, [3, 4])])
    window.window = SampleWindow.model_construct(kind="subject")
    window.tracks = ["subject"]
    assert reference_problems(window, jpeg) == []
    window.tracks = ["montage", "subject"]  # a subject window is no story unit
    assert any("do not fit a 'subject' window" in p for p in reference_problems(window, jpeg))
    montage = sample_doc([ref(9, [3, 4])])
    montage.tracks = ["subject"]  # a montage window always serves the montage track
    assert any("do not fit a 'scene' window" in p for p in reference_problems(montage, jpeg))
