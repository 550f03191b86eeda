"""Non-face subjects: a tiny randomly initialised DETR saved to and loaded from a local folder
(nothing is downloaded), and the stage end to end with the embedders (``test_embedders.py``;
the tiny DINOv2 and SigLIP folders come from ``conftest.py``)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from muss_builder.subjects.objects import (
    DETECTORS,
    ObjectStage,
    TransformersDetector,
    make_detector,
)


def inside(box: tuple[float, float, float, float], image: np.ndarray) -> bool:
    h, w = image.shape[:2]
    x0, y0, x1, y1 = box
    return 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h


def astronaut() -> np.ndarray:
    from skimage import data

    return cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)


def chelsea() -> np.ndarray:
    from skimage import data

    return cv2.cvtColor(data.chelsea(), cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="module")
def detr_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny DETR whose heads are set so every query says "person" with a box that runs
    past the right edge of the image (centre x 0.9, width 0.4): outputs are known."""
    import torch
    from transformers import DetrConfig, DetrForObjectDetection, DetrImageProcessor, ResNetConfig

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("detr")
    id2label = {0: "N/A", 1: "person", 2: "dog", 3: "chair"}
    backbone = ResNetConfig(
        embedding_size=8,
        hidden_sizes=[8, 16],
        depths=[1, 1],
        layer_type="basic",
        out_features=["stage2"],
    )
    config = DetrConfig(
        use_timm_backbone=False,
        backbone_config=backbone,
        use_pretrained_backbone=False,
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        num_queries=5,
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
    )
    model = DetrForObjectDetection(config)
    with torch.no_grad():
        model.class_labels_classifier.weight.zero_()
        model.class_labels_classifier.bias.zero_()
        model.class_labels_classifier.bias[1] = 10.0  # "person"
        last = model.bbox_predictor.layers[-1]
        last.weight.zero_()
        last.bias.copy_(torch.logit(torch.tensor([0.9, 0.5, 0.4, 0.5])))  # cx, cy, w, h
    model.save_pretrained(folder)
    DetrImageProcessor(size={"shortest_edge": 64, "longest_edge": 96}).save_pretrained(folder)
    return folder


# --- transformers detector -------------------------------------------------------------------


def test_transformers_detector_end_to_end(detr_dir: Path) -> None:
    cat, person = chelsea(), astronaut()  # 300x451 and 512x512
    det = TransformersDetector(str(detr_dir), min_score=0.3, device="cpu")
    batch = det.detect_batch([cat, person])
    assert len(batch) == 2
    for image, found in zip((cat, person), batch, strict=True):
        h, w = image.shape[:2]
        assert len(found) == 5  # one box per query, all "person"
        for d in found:
            assert d.label == "person" and d.score > 0.99
            assert inside(d.box, image)
            # the head puts x1 at 1.1 x width: clipped to the edge
            assert d.box[2] == pytest.approx(w)
            assert d.box[0] == pytest.approx(0.7 * w, rel=1e-3)
            assert d.box[1] == pytest.approx(0.25 * h, rel=1e-3)
    assert det.detect(cat) == batch[0]
    # the allow-list filters by the checkpoint's label names; None keeps everything
    assert TransformersDetector(str(detr_dir), labels=("dog",)).detect(cat) == []
    assert len(TransformersDetector(str(detr_dir), labels=None).detect(cat)) == 5


# --- the stage -------------------------------------------------------------------------------


def test_stage_with_dinov2_embeddings(detr_dir: Path, dinov2_dir: Path) -> None:
    stage = ObjectStage(detector_model=str(detr_dir), embedder_model=str(dinov2_dir), device="cpu")
    stage.setup()
    image = astronaut()
    subjects = stage.detect(image)
    assert len(subjects) == 5
    for s in subjects:
        assert s.label == "person" and inside(s.box, image)
        assert s.embedding.shape == (32,) and s.embedding.dtype == np.float32
        assert abs(float(np.linalg.norm(s.embedding)) - 1.0) < 1e-5
        assert s.sharpness > 0
        assert s.size == pytest.approx(min(s.box[2] - s.box[0], s.box[3] - s.box[1]))
    one = ObjectStage(detector_model=str(detr_dir), embedder_model=str(dinov2_dir), max_per_image=1)
    assert len(one.detect(image)) == 1
    assert ObjectStage(detector_model=str(detr_dir), min_size=400).detect(image) == []


def test_stage_with_transformers_detector(detr_dir: Path) -> None:
    stage = ObjectStage(detector="transformers", detector_model=str(detr_dir), device="cpu")
    image = chelsea()
    subjects = stage.detect(image)
    assert len(subjects) == 5
    for s in subjects:
        assert s.label == "person" and inside(s.box, image) and s.embedding.shape == (512,)


# --- errors ----------------------------------------------------------------------------------


def test_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="never downloads models"):
        ObjectStage(detector="transformers", detector_model=str(tmp_path / "detr")).setup()
    # a hub id that is not in the local cache: looked up there only, never fetched
    with pytest.raises(FileNotFoundError, match="never downloads models"):
        TransformersDetector("nobody-here/no-such-detr").setup()


def test_unknown_detector_lists_the_registry() -> None:
    assert set(DETECTORS) == {"transformers"}
    with pytest.raises(ValueError, match=r"\['transformers'\]"):
        ObjectStage(detector="yolo")
    with pytest.raises(ValueError, match="transformers"):
        make_detector("yolo")
    with pytest.raises(ValueError, match="needs a model"):
        make_detector("transformers")


def test_objects_get_film_ids_in_the_subject_stage(
    tmp_path: Path, detr_dir: Path, dinov2_dir: Path
) -> None:
    """The stage wired into a film: object boxes on keyframes, clustered into O ids apart
    from faces (the tiny DETR reports the same 'person' boxes on every frame)."""
    from muss_builder.config import PipelineConfig, SubjectsConfig
    from muss_builder.media.probe import probe_film
    from muss_builder.shots.segment import detect_shots
    from muss_builder.subjects.stage import find_subjects
    from muss_builder.testing.face_film import encode_stills

    film = tmp_path / "two.mp4"
    encode_stills(
        film, [cv2.resize(astronaut(), (320, 320)), cv2.resize(chelsea(), (320, 320))], 12
    )
    subjects = SubjectsConfig.model_validate(
        {
            "keyframes_per_shot": 2,
            "faces": {"enabled": False},
            "objects": {
                "enabled": True,
                "detector_model": str(detr_dir),
                "embedder_model": str(dinov2_dir),
                "min_score": 0.3,
                "min_size": 8,
                "max_per_image": 1,
            },
        }
    )
    config = PipelineConfig(subjects=subjects)
    probe = probe_film(str(film), film_id="1" * 16)
    detection = detect_shots(str(film), probe, config.shots, config.analysis)
    result = find_subjects(str(film), probe, detection, config.subjects)
    assert result.faces_pack is None and result.objects_backend == "transformers"
    assert len(result.detections) == 4  # 2 shots x 2 keyframes x 1 box
    assert all(d.kind == "object" and d.label == "person" for d in result.detections)
    assert all(d.subject and d.subject.startswith("O") for d in result.detections)
    assert result.summary()[0]["kind"] == "object"
