"""Text alignment: a tiny random CLIP / SigLIP end to end, and the offline proxy's ranking.

The CLIP and SigLIP checkpoints are built here from a config (random weights, a BPE tokenizer
trained on a few sentences), saved to a tmp folder and loaded back through the same code a real
checkpoint goes through; their scores mean nothing, but every step runs. The proxy runs the
real facts captioner and the shipped all-MiniLM-L6-v2 weights.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from muss_builder.bench.metrics import MetricModels, load_bench_models, score_video
from muss_builder.train.script import Script, ScriptShot

W, H, N = 320, 180, 24
NIGHT = "A dark, static night shot with nobody in it."
DAY = "A bright daytime shot; the camera pans right across the scene."


def tiny_tokenizer(folder: Path) -> int:
    """A BPE tokenizer saved to ``folder``; returns its vocabulary size."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=200,
        special_tokens=["<pad>", "<unk>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator([NIGHT, DAY, "a man walks his dog"], trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, pad_token="<pad>", unk_token="<unk>", eos_token="</s>"
    )
    tokenizer.save_pretrained(folder)
    return len(tokenizer)


@pytest.fixture(scope="module", params=["clip", "siglip"])
def image_text_dir(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    import torch
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        SiglipConfig,
        SiglipImageProcessor,
        SiglipModel,
    )

    folder = tmp_path_factory.mktemp(request.param)
    vocab = tiny_tokenizer(folder)
    text = {
        "vocab_size": vocab,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "max_position_embeddings": 32,
    }
    vision = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "image_size": 32,
        "patch_size": 16,
    }
    torch.manual_seed(0)
    if request.param == "clip":
        model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16))
        images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size=32)
    else:
        model = SiglipModel(SiglipConfig(text_config=text, vision_config=vision))
        images = SiglipImageProcessor(size={"height": 32, "width": 32})
    model.save_pretrained(folder)
    images.save_pretrained(folder)
    return folder


def day_and_night() -> np.ndarray:
    """Shot 1: a dark blue, still night; shot 2: a bright, warm texture panning right."""
    rng = np.random.default_rng(0)
    night = np.full((N, H, W, 3), (10, 14, 40), np.uint8)
    night = night + rng.integers(0, 6, night.shape).astype(np.uint8)
    wide = rng.integers(0, 255, (H, W + N * 8, 3)).astype(np.uint8)
    wide = cv2.normalize(cv2.GaussianBlur(wide, (0, 0), 3), None, 120, 255, cv2.NORM_MINMAX)
    wide[..., 0] = np.clip(wide[..., 0].astype(int) + 40, 0, 255)  # RGB: a warm cast
    day = np.stack([wide[:, 8 * i : 8 * i + W] for i in range(N)])  # content moves left
    return np.concatenate([night, day])


def script(captions: tuple[str, str]) -> Script:
    shots = [ScriptShot(captions[0], N, "start"), ScriptShot(captions[1], N)]
    return Script("text", "day and night", shots, fps=24.0, width=W, height=H)


def test_a_tiny_image_text_model_scores_end_to_end(image_text_dir: Path, tmp_path: Path) -> None:
    models = load_bench_models(
        {"image_text": str(image_text_dir), "face_pack": None, "device": "cpu"}
    )
    assert "image-text cosine" in models.methods["text_alignment"]
    score = score_video(day_and_night(), script((NIGHT, DAY)), tmp_path, models)
    value = score.metrics["text_alignment"]
    assert value is not None and -1.0 <= value <= 1.0
    per_shot = [s.text_alignment for s in score.shots]
    assert all(v is not None and -1.0 <= v <= 1.0 for v in per_shot)
    assert all(s.description is None for s in score.shots)  # the proxy did not run
    # deterministic: the same model and video give the same score
    again = score_video(day_and_night(), script((NIGHT, DAY)), tmp_path, models)
    assert again.metrics["text_alignment"] == pytest.approx(value, abs=1e-6)


def test_a_model_folder_without_image_text_features_is_refused(tmp_path: Path) -> None:
    from transformers import BertConfig, BertModel, CLIPImageProcessor

    tiny_tokenizer(tmp_path)
    config = BertConfig(
        vocab_size=200,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )
    BertModel(config).save_pretrained(tmp_path)

    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size=32).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="get_image_features"):
        load_bench_models({"image_text": str(tmp_path), "face_pack": None, "device": "cpu"})
    with pytest.raises(FileNotFoundError, match="never downloads"):
        load_bench_models({"image_text": str(tmp_path / "absent"), "face_pack": None})


@pytest.fixture(scope="module")
def offline() -> MetricModels:
    return load_bench_models({"face_pack": None, "device": "cpu"})


def test_the_offline_proxy_ranks_the_matching_captions_first(
    offline: MetricModels, tmp_path: Path
) -> None:
    assert "proxy" in offline.methods["text_alignment"]
    frames = day_and_night()
    right = score_video(frames, script((NIGHT, DAY)), tmp_path, offline)
    swapped = score_video(frames, script((DAY, NIGHT)), tmp_path, offline)
    # what the facts captioner saw in the frames
    night, day = (s.description or "" for s in right.shots)
    assert "static" in night and "night" in night
    assert "pans right" in day and "by day" in day
    # each shot matches its own caption better than the other shot's, and so does the video
    for mine, other in zip(right.shots, swapped.shots, strict=True):
        assert mine.text_alignment is not None and other.text_alignment is not None
        assert mine.text_alignment > other.text_alignment
    good, bad = right.metrics["text_alignment"], swapped.metrics["text_alignment"]
    assert good is not None and bad is not None and good > bad + 0.05
    assert "proxy" in right.notes["text_alignment"]
