"""Model filters end to end on tiny random CLIP, SigLIP and DINOv2 checkpoints.

The checkpoints are built here from configs (random weights, a BPE tokenizer trained on a few
sentences), saved to tmp folders and loaded back through the same code a real checkpoint goes
through. Their scores mean nothing (a random CLIP does not judge beauty or read captions);
what is checked: the code runs on CPU, batches, gives the numbers a direct transformers +
torch computation gives, applies thresholds, shares one copy of a model between filters, and
fails clearly on a missing model or a head that does not fit.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from muss_builder.core.models import ModelNotFoundError, forget_loaded_models, no_nvidia_device
from muss_builder.curation.aesthetic import AestheticHeadError
from muss_builder.curation.model_filters import (
    FLAGS,
    MEASURES,
    ModelFilterCollector,
    ModelFiltersConfig,
    caption_alignment,
    filter_model,
    load_model_filters,
    misaligned,
    model_filter_plan,
)
from muss_builder.shots.segment import Shot
from muss_builder.subjects.keyframes import Keyframe
from tests.curation.test_model_filters_head import save_laion_head

PROJ = 16  # CLIP's projection size: the aesthetic head's input
SENTENCES = ["a dark night street", "a bright red car on a sunny road", "two people talk"]


def tiny_tokenizer(folder: Path) -> int:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<pad>", "<unk>", "</s>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(SENTENCES, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, pad_token="<pad>", unk_token="<unk>", eos_token="</s>"
    )
    tokenizer.save_pretrained(folder)
    return len(tokenizer)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from transformers import (
        BitImageProcessor,
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        Dinov2Config,
        Dinov2Model,
        SiglipConfig,
        SiglipImageProcessor,
        SiglipModel,
    )

    tiny = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1}
    tiny["num_attention_heads"] = 2
    folders = {k: tmp_path_factory.mktemp(k) for k in ("clip", "siglip", "dinov2")}
    torch.manual_seed(0)
    for name in ("clip", "siglip"):
        text = {**tiny, "vocab_size": tiny_tokenizer(folders[name]), "max_position_embeddings": 32}
        text |= {"pad_token_id": 0, "bos_token_id": 2, "eos_token_id": 2}
        vision = {**tiny, "image_size": 32, "patch_size": 8}
        if name == "clip":
            model = CLIPModel(
                CLIPConfig(text_config=text, vision_config=vision, projection_dim=PROJ)
            )
            images = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size=32)
        else:
            model = SiglipModel(SiglipConfig(text_config=text, vision_config=vision))
            images = SiglipImageProcessor(size={"height": 32, "width": 32})
        model.save_pretrained(folders[name])
        images.save_pretrained(folders[name])
    Dinov2Model(Dinov2Config(**tiny, image_size=28, patch_size=14)).save_pretrained(
        folders["dinov2"]
    )
    BitImageProcessor(
        size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28}
    ).save_pretrained(folders["dinov2"])
    head = tmp_path_factory.mktemp("head") / "laion.pth"
    save_laion_head(head, PROJ, seed=3)
    return {**folders, "head": head}


@pytest.fixture(autouse=True)
def fresh_models() -> None:
    forget_loaded_models()  # each test loads what it names (and sees its own batch size)


def keyframes() -> list[Keyframe]:
    """Shot 0: one picture three times (consistent); shot 1: a dark frame then a bright,
    textured one (a missed cut); shot 2: one keyframe. BGR, odd sizes as crops give."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (45, 80, 3), np.uint8)
    dark = np.full((45, 80, 3), 12, np.uint8)
    bright = np.clip(rng.normal(200, 40, (45, 80, 3)), 0, 255).astype(np.uint8)
    bright[:, :40, 2] = 255
    frames = [(0, base), (0, base), (0, base.copy()), (1, dark), (1, bright), (2, bright)]
    return [Keyframe(shot, 10 * i, img) for i, (shot, img) in enumerate(frames)]


def shots() -> list[Shot]:
    return [Shot(i, 10 * i, 10 * i + 10, i * 1.0, i + 1.0, "cut") for i in range(3)]


def config(models: dict[str, Path], **over: float) -> ModelFiltersConfig:
    clip = str(models["clip"])
    return ModelFiltersConfig.model_validate(
        {
            "aesthetic": {
                "enabled": True,
                "model": clip,
                "head": str(models["head"]),
                "threshold": over.get("threshold", 0.0),
                "batch_size": int(over.get("batch", 2)),
                "device": "cpu",
            },
            "consistency": {
                "enabled": True,
                "model": clip,
                "min_similarity": over.get("min_similarity", 0.5),
                "device": "cpu",
            },
            "alignment": {"enabled": True, "model": clip, "device": "cpu"},
        }
    )


def direct_embeddings(folder: Path, images_bgr: list[np.ndarray]) -> np.ndarray:
    """Unit image embeddings computed with transformers directly."""
    from transformers import AutoImageProcessor, AutoModel

    model = AutoModel.from_pretrained(folder, local_files_only=True).eval()
    processor = AutoImageProcessor.from_pretrained(folder, local_files_only=True)
    inputs = processor(images=[im[..., ::-1].copy() for im in images_bgr], return_tensors="pt")
    with torch.no_grad():
        if hasattr(model, "get_image_features"):
            out = model.get_image_features(pixel_values=inputs["pixel_values"])
            feats = out if torch.is_tensor(out) else out.pooler_output
        else:
            feats = model(pixel_values=inputs["pixel_values"]).last_hidden_state[:, 0]
    return torch.nn.functional.normalize(feats, dim=1).numpy()


def run_collector(cfg: ModelFiltersConfig) -> dict:
    collector = ModelFilterCollector(shots(), cfg)
    assert collector.wanted() == {}
    for kf in keyframes():
        collector.add(kf, is_keyframe=True)
        collector.add(Keyframe(kf.shot, kf.frame + 1, kf.image * 0), is_keyframe=False)  # ignored
    return collector.finish()


def expected_scores(models: dict[str, Path]) -> tuple[list[float], list[float]]:
    """(aesthetic, consistency) per shot, by transformers + the LAION torch module."""
    from tests.curation.test_model_filters_head import LaionMLP

    frames = keyframes()
    emb = direct_embeddings(models["clip"], [k.image for k in frames])
    mlp = LaionMLP(PROJ).eval()
    mlp.load_state_dict(torch.load(models["head"], weights_only=True))
    with torch.no_grad():
        per_frame = mlp(torch.from_numpy(emb))[:, 0].numpy()
    aesthetic, consistency = [], []
    for shot in range(3):
        rows = [i for i, k in enumerate(frames) if k.shot == shot]
        aesthetic.append(float(per_frame[rows].mean()))
        sims = [float(emb[a] @ emb[b]) for a in rows for b in rows if a < b]
        consistency.append(min(sims, default=1.0))
    return aesthetic, consistency


def test_contract_names() -> None:
    assert FLAGS == ("low_aesthetic", "inconsistent", "misaligned")
    assert MEASURES == {"aesthetic": "high", "consistency": "high", "alignment": "high"}


def test_collector_scores_equal_a_direct_computation_and_thresholds_apply(models) -> None:
    aesthetic, consistency = expected_scores(models)
    assert consistency[0] == pytest.approx(1.0, abs=1e-5) and consistency[2] == 1.0
    assert consistency[1] < 0.999  # the dark and the bright frame disagree, even at random
    # thresholds between the shots' own values: exactly the shots below are flagged
    low, middle = sorted(aesthetic)[:2]
    a_cut = (low + middle) / 2
    c_cut = (consistency[0] + consistency[1]) / 2
    result = run_collector(config(models, threshold=a_cut, min_similarity=c_cut))
    assert sorted(result) == [0, 1, 2]
    for shot in range(3):
        got = result[shot]
        assert got.quality["aesthetic"] == pytest.approx(aesthetic[shot], rel=1e-4, abs=1e-5)
        assert got.quality["consistency"] == pytest.approx(consistency[shot], abs=1e-5)
        expected_flags = []
        if consistency[shot] < c_cut:
            expected_flags.append("inconsistent")
        if aesthetic[shot] < a_cut:
            expected_flags.append("low_aesthetic")
        assert got.flags == expected_flags
    assert result[1].flags[0] == "inconsistent"
    assert sum("low_aesthetic" in r.flags for r in result.values()) == 1  # only the lowest


def test_batch_size_does_not_change_the_scores(models) -> None:
    one = run_collector(config(models, batch=1))
    forget_loaded_models()
    many = run_collector(config(models, batch=64))
    for shot in one:
        for measure, value in one[shot].quality.items():
            assert many[shot].quality[measure] == pytest.approx(value, abs=1e-5)


def test_filters_naming_one_checkpoint_share_one_loaded_copy(models) -> None:
    cfg = config(models)
    load_model_filters(cfg)
    assert filter_model(cfg.aesthetic) is filter_model(cfg.consistency)
    assert filter_model(cfg.consistency) is filter_model(cfg.alignment)


def test_consistency_alone_on_dinov2(models) -> None:
    cfg = ModelFiltersConfig.model_validate(
        {"consistency": {"enabled": True, "model": str(models["dinov2"]), "device": "cpu"}}
    )
    frames = keyframes()
    emb = direct_embeddings(models["dinov2"], [k.image for k in frames[3:5]])
    result = run_collector(cfg)
    assert set(result[1].quality) == {"consistency"}
    assert result[1].quality["consistency"] == pytest.approx(float(emb[0] @ emb[1]), abs=1e-5)
    # DINOv2 has no text tower: alignment is refused up front
    bad = ModelFiltersConfig.model_validate(
        {"alignment": {"enabled": True, "model": str(models["dinov2"]), "device": "cpu"}}
    )
    with pytest.raises(ValueError, match="no text tower"):
        load_model_filters(bad)


@pytest.mark.parametrize("kind", ["clip", "siglip"])
def test_caption_alignment_equals_a_direct_computation(models, kind: str) -> None:
    from transformers import AutoModel, AutoTokenizer

    cfg = ModelFiltersConfig.model_validate(
        {"alignment": {"enabled": True, "model": str(models[kind]), "device": "cpu"}}
    )
    frames = keyframes()
    # two different images in a shot (the mean is not their max); captions shorter than the
    # text tower's 32 positions and of different lengths (so SigLIP's padding matters)
    images = [[frames[0].image, frames[3].image], [frames[3].image], [frames[4].image]]
    captions = ["a dark night street", "a red car", "two people talk"]
    scores = caption_alignment(cfg, images, captions)
    folder = models[kind]
    model = AutoModel.from_pretrained(folder, local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    padding = "max_length" if kind == "siglip" else True
    tokens = tokenizer(
        captions, padding=padding, max_length=32, truncation=True, return_tensors="pt"
    )
    with torch.no_grad():
        out = model.get_text_features(input_ids=tokens["input_ids"],
                                      attention_mask=tokens["attention_mask"])  # fmt: skip
        text = torch.nn.functional.normalize(out if torch.is_tensor(out) else out.pooler_output)
    lengths = tokenizer(captions)["input_ids"]
    assert len({len(t) for t in lengths}) > 1 and max(map(len, lengths)) < 32
    for shot, (imgs, caption_row) in enumerate(zip(images, text.numpy(), strict=True)):
        emb = direct_embeddings(folder, imgs)
        assert scores[shot] == pytest.approx(float(np.mean(emb @ caption_row)), abs=1e-5)
    worst = min(scores)
    above = cfg.model_copy(deep=True)
    above.alignment.min_similarity = worst - 1e-3
    below = cfg.model_copy(deep=True)
    below.alignment.min_similarity = worst + 1e-3
    assert not misaligned(above, scores) and misaligned(below, scores)
    with pytest.raises(ValueError, match="2 shots of images but 3 captions"):
        caption_alignment(cfg, images[:2], captions)


def test_a_missing_model_says_where_it_looked(models, tmp_path: Path) -> None:
    absent = tmp_path / "no-clip"
    cfg = ModelFiltersConfig.model_validate(
        {"consistency": {"enabled": True, "model": str(absent), "device": "cpu"}}
    )
    where = re.escape(f"{absent} not found")
    with pytest.raises(ModelNotFoundError, match=where + ".*never downloads"):
        load_model_filters(cfg)
    hub = ModelFiltersConfig.model_validate(
        {"consistency": {"enabled": True, "model": "muss-tests/absent-clip", "device": "cpu"}}
    )
    with pytest.raises(ModelNotFoundError, match="local Hugging Face cache only"):
        load_model_filters(hub)


def test_a_head_for_another_embedding_size_is_refused(models, tmp_path: Path) -> None:
    save_laion_head(tmp_path / "l14.pth", 768)  # LAION's real input size; tiny CLIP gives 16
    cfg = config(models).model_copy(deep=True)
    cfg.aesthetic.head = str(tmp_path / "l14.pth")
    with pytest.raises(AestheticHeadError, match=r"takes 768-d embeddings but .* gives 16-d"):
        load_model_filters(cfg)
    cfg.aesthetic.head = str(tmp_path / "none.pth")
    with pytest.raises(ModelNotFoundError, match=r"none\.pth not found"):
        load_model_filters(cfg)


def test_config_refuses_an_aesthetic_filter_without_a_head_and_unknown_keys() -> None:
    with pytest.raises(ValidationError, match=r"needs aesthetic\.head"):
        ModelFiltersConfig.model_validate({"aesthetic": {"enabled": True}})
    with pytest.raises(ValidationError, match="extra"):
        ModelFiltersConfig.model_validate({"consistency": {"threshold": 0.5}})
    defaults = ModelFiltersConfig()
    assert not (defaults.aesthetic.enabled or defaults.consistency.enabled)
    assert not defaults.alignment.enabled


def test_the_plan_says_why_a_filter_does_not_run(models, tmp_path: Path) -> None:
    run, not_run = model_filter_plan(ModelFiltersConfig())  # the offline profile
    assert run == [] and set(not_run) == {"aesthetic", "consistency", "alignment"}
    assert all("offline profile cannot run it" in why for why in not_run.values())
    cfg = config(models)
    assert model_filter_plan(cfg) == (["aesthetic", "consistency", "alignment"], {})
    run, not_run = model_filter_plan(cfg, captions=False)
    assert run == ["aesthetic", "consistency"] and "no captions" in not_run["alignment"]
    gone = cfg.model_copy(deep=True)
    gone.consistency.model = "muss-tests/absent-clip"
    gone.aesthetic.head = str(tmp_path / "absent.pth")
    run, not_run = model_filter_plan(gone)
    assert run == ["alignment"]
    assert "neither a folder nor in the local Hugging Face cache" in not_run["consistency"]
    assert "absent.pth not found" in not_run["aesthetic"]
    if no_nvidia_device():
        cuda = cfg.model_copy(deep=True)
        cuda.alignment.device = "cuda"
        assert "CUDA is not available" in model_filter_plan(cuda)[1]["alignment"]


def test_siglip_with_a_linear_head_of_your_own(models, tmp_path: Path) -> None:
    """The README's second recipe: SigLIP embeddings and a plain linear probe."""
    torch.manual_seed(5)
    probe = torch.nn.Linear(32, 1)  # the tiny SigLIP's image embedding size
    torch.save(probe.state_dict(), tmp_path / "probe.pth")
    cfg = ModelFiltersConfig.model_validate(
        {
            "aesthetic": {
                "enabled": True,
                "model": str(models["siglip"]),
                "head": str(tmp_path / "probe.pth"),
                "threshold": 1e9,  # everything is below: every shot flagged
                "device": "cpu",
            }
        }
    )
    frames = keyframes()
    emb = direct_embeddings(models["siglip"], [k.image for k in frames])
    with torch.no_grad():
        per_frame = probe(torch.from_numpy(emb))[:, 0].numpy()
    result = run_collector(cfg)
    for shot in range(3):
        rows = [i for i, k in enumerate(frames) if k.shot == shot]
        assert result[shot].quality == {
            "aesthetic": pytest.approx(per_frame[rows].mean(), abs=1e-5)
        }
        assert result[shot].flags == ["low_aesthetic"]


def test_a_collector_with_every_filter_off_measures_nothing() -> None:
    collector = ModelFilterCollector(shots(), ModelFiltersConfig())
    for kf in keyframes():
        collector.add(kf, is_keyframe=True)
    result = collector.finish()
    assert sorted(result) == [0, 1, 2]
    assert all(r.quality == {} and r.flags == [] for r in result.values())


def test_caption_alignment_takes_the_captioners_jpeg_bytes(models) -> None:
    import cv2

    cfg = ModelFiltersConfig.model_validate(
        {"alignment": {"enabled": True, "model": str(models["clip"]), "device": "cpu"}}
    )
    frames = keyframes()
    jpegs = [cv2.imencode(".jpg", k.image)[1].tobytes() for k in frames[3:5]]
    decoded = [cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR) for b in jpegs]
    captions = ["a dark night street", "a red car"]
    from_bytes = caption_alignment(cfg, [[jpegs[0]], [jpegs[1]]], captions)
    from_arrays = caption_alignment(cfg, [[decoded[0]], [decoded[1]]], captions)
    assert from_bytes == pytest.approx(from_arrays, abs=1e-6)
    with pytest.raises(ValueError, match="not an image"):
        caption_alignment(cfg, [[b"junk"]], captions[:1])
