"""Settings of the model filters (``curation/model_filters.py``): aesthetics, consistency,
alignment.

Moved here from the curation module (which imports it back): ``config/`` composes these
models, and a model inside ``muss_builder/curation`` would tie ``config`` and ``curation``
in an import loop (see ``muss_builder/filters/__init__.py``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

CONFIG_PATH = "filters.models"  # where the pipeline YAML holds this section (for messages)

DEFAULT_MODEL = "openai/clip-vit-large-patch14"  # the embedding LAION's aesthetic MLP expects

Device = Literal["auto", "cpu", "cuda"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AestheticConfig(_Strict):
    """A head the user supplies over image embeddings; no head ships (see ``aesthetic.py``)."""

    enabled: bool = False
    model: str = Field(DEFAULT_MODEL, description="CLIP/SigLIP folder or cached hub id")
    head: str | None = Field(None, description="local .pth/.safetensors head file (required)")
    # LAION's MLP has no activation between its layers; a head you trained with ReLUs needs it
    head_activation: Literal["none", "relu"] = "none"
    # LAION trained on L2-normalised CLIP embeddings; false feeds the raw projection
    normalize: bool = True
    # LAION's 1-10 rating scale: 4.5 is the floor of LAION-Aesthetics V2's broadest subset
    # (4.5+) and what Open-Sora's data pipeline filtered at; a head of your own has its own
    # scale, so set this from its scores on footage you have judged
    threshold: float = Field(4.5, description="shots scoring below are flagged low_aesthetic")
    batch_size: int = Field(16, ge=1, description="keyframes per forward pass")
    device: Device = "auto"

    @model_validator(mode="after")
    def _head_when_on(self) -> AestheticConfig:
        if self.enabled and not self.head:
            raise ValueError(
                "aesthetic.enabled needs aesthetic.head: a local head file (e.g. LAION's "
                "sac+logos+ava1-l14-linearMSE.pth for openai/clip-vit-large-patch14); "
                "muss-builder ships none"
            )
        return self


class ConsistencyConfig(_Strict):
    """Keyframes of one shot should show one scene."""

    enabled: bool = False
    model: str = Field(DEFAULT_MODEL, description="CLIP/SigLIP/DINOv2 folder or cached hub id")
    # CLIP ViT-L/14 image cosines: frames of one continuous shot mostly sit above ~0.85,
    # unrelated scenes around 0.4-0.7; 0.75 leaves room for a pan or a light change. NOT
    # calibrated here (no real weights on the build machine): check it on your footage
    min_similarity: float = Field(0.75, ge=-1, le=1, description="below: flag inconsistent")
    batch_size: int = Field(16, ge=1)
    device: Device = "auto"


class AlignmentConfig(_Strict):
    """Captions should describe their keyframes (runs after captioning, per sample)."""

    enabled: bool = False
    model: str = Field(DEFAULT_MODEL, description="CLIP/SigLIP folder or cached hub id")
    # raw CLIP cosine: matching pairs sit around 0.25-0.35, unrelated ones around 0.1; 0.15
    # catches a caption about another shot. SigLIP's cosines run lower: recalibrate for it
    min_similarity: float = Field(0.15, ge=-1, le=1, description="worst shot below: misaligned")
    batch_size: int = Field(16, ge=1)
    device: Device = "auto"


class ModelFiltersConfig(_Strict):
    aesthetic: AestheticConfig = AestheticConfig()
    consistency: ConsistencyConfig = ConsistencyConfig()
    alignment: AlignmentConfig = AlignmentConfig()


Section = AestheticConfig | ConsistencyConfig | AlignmentConfig
