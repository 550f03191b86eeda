"""Training configuration: ``pipelines/train-*.yaml`` validated by pydantic.

Like the pipeline config, every field has a default and unknown keys are refused. Three
sections belong to other modules and are checked against them when the config loads:
``model.overrides`` (fields of ``presets.ModelConfig``), ``rope`` (``presets.RopeConfig``) and
``data`` (``data.DataConfig``), so a typo fails at load time, naming the key.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from muss_builder.resources import resource_dir

# encoders built on the fly (tiny, randomly initialised, saved under OUT/encoders/) for CPU
# tests and smoke runs: no weights to fetch, and `train sample` finds them via the checkpoint
TINY_RANDOM = "tiny-random"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSection(_Strict):
    preset: str = Field("tiny", description="tiny | small | wan1.3b (presets.PRESETS)")
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="ModelConfig fields replacing the preset's"
    )
    pretrained: str | None = Field(
        None,
        description="local diffusers Wan2.1-T2V folder (the pipeline folder or its "
        "transformer/); null = random init from the preset",
    )

    @model_validator(mode="after")
    def _known(self) -> ModelSection:
        from muss_builder.train.presets import get_preset

        try:
            get_preset(self.preset, **self.overrides)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"model: {exc}") from exc
        return self

    def build_config(self) -> Any:
        from muss_builder.train.presets import get_preset

        return get_preset(self.preset, **self.overrides)


class EncodersSection(_Strict):
    """Where the Wan VAE and the text encoder live (local folders; nothing is downloaded)."""

    vae: str = Field(TINY_RANDOM, description=f"Wan2.1 VAE folder, or {TINY_RANDOM}")
    text_encoder: str = Field(TINY_RANDOM, description=f"text encoder folder, or {TINY_RANDOM}")


class OptimSection(_Strict):
    lr: float = Field(1e-4, gt=0)
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = Field(0.01, ge=0)
    eps: float = Field(1e-8, gt=0)
    warmup_steps: int = Field(0, ge=0)
    total_steps: int = Field(1000, ge=1, description="length of the LR schedule and of the run")
    cosine: bool = Field(True, description="cosine decay after warmup; else constant")
    min_lr_ratio: float = Field(0.0, ge=0, le=1, description="cosine floor as a share of lr")
    grad_clip: float | None = Field(1.0, gt=0, description="max global grad norm; null = off")

    @model_validator(mode="after")
    def _betas(self) -> OptimSection:
        if not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"optim.betas must be in [0, 1): {self.betas}")
        return self


class FlowSection(_Strict):
    """Rectified-flow training choices (see ``flow.py``)."""

    timestep_mean: float = Field(0.0, description="logit-normal mean")
    timestep_std: float = Field(1.0, gt=0, description="logit-normal std")
    timestep_shift: float = Field(1.0, gt=0, description="SD3/Wan shift of training timesteps")
    caption_dropout: float = Field(0.1, ge=0, le=1, description="P(text -> null) for CFG")
    subject_box_weight: float = Field(
        1.0, ge=1, description="loss weight inside subject boxes (2 = MultiShotMaster's)"
    )


class SampleSection(_Strict):
    """Defaults of ``train sample`` (each can be overridden on the command line)."""

    steps: int = Field(30, ge=1)
    cfg_scale: float = Field(5.0, ge=0)
    shift: float = Field(3.0, gt=0, description="timestep shift of the sampling schedule")


class TrainConfig(_Strict):
    name: str = "train"
    model: ModelSection = ModelSection()
    rope: dict[str, Any] = Field(default_factory=dict, description="RopeConfig fields")
    data: dict[str, Any] = Field(default_factory=dict, description="DataConfig fields")
    encoders: EncodersSection = EncodersSection()
    optim: OptimSection = OptimSection()
    flow: FlowSection = FlowSection()
    sample: SampleSection = SampleSection()
    ema_decay: float = Field(0.999, ge=0, lt=1, description="0 = no EMA")
    batch_size: int = Field(1, ge=1, description="per rank")
    precision: Literal["bf16", "fp32"] = "bf16"
    activation_checkpointing: bool = False
    compile: bool = Field(False, description="torch.compile each DiT block")
    attention: Literal["auto", "flash", "efficient", "cudnn", "math", "flex"] = Field(
        "auto",
        description="SDPA backend, or flex: FlexAttention (train/flex.py) for the "
        "reference-masked self-attention (batches without references and the text "
        "cross-attention stay on SDPA); auto = flex for that on CUDA, else PyTorch's SDPA choice",
    )
    parallel: Literal["none", "ddp", "fsdp2"] = Field(
        "ddp", description="under torchrun (WORLD_SIZE > 1); a single process ignores it"
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    peak_tflops: float | None = Field(
        None, gt=0, description="bf16 dense peak per device for MFU; null = by device name"
    )
    checkpoint_every: int = Field(500, ge=1)
    keep_last: int = Field(3, ge=1)
    log_every: int = Field(10, ge=1)
    output_dir: str = "runs/train"
    seed: int = 0
    shards: list[str] = Field(
        default_factory=list,
        description="shards: files, folders, globs, brace patterns, manifests, s3:// urls",
    )
    latent_cache: str | None = Field(
        None, description="folder written by `train cache`: train on cached latents"
    )
    num_workers: int = Field(0, ge=0, description="DataLoader workers for on-the-fly encoding")

    @model_validator(mode="after")
    def _sections(self) -> TrainConfig:
        from muss_builder.train.presets import RopeConfig

        _check_fields("rope", RopeConfig, self.rope)
        if self.data:  # the data module pulls in the shard reader; only load it when needed
            from muss_builder.train.data import DataConfig

            _check_fields("data", DataConfig, self.data)
        return self

    def rope_config(self) -> Any:
        from muss_builder.train.presets import RopeConfig

        return RopeConfig(**self.rope)

    def data_config(self) -> Any:
        from muss_builder.train.data import DataConfig

        return _build("data", DataConfig, self.data)


def _build(section: str, cls: type, values: dict[str, Any]) -> Any:
    """Construct a dataclass or pydantic model from ``values``; errors name the section."""
    if isinstance(cls, type) and issubclass(cls, BaseModel):
        return cls.model_validate(values)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"{section}: unknown field(s) {unknown}; known: {sorted(names)}")
    return cls(**values)


def _check_fields(section: str, cls: type, values: dict[str, Any]) -> None:
    try:
        _build(section, cls, values)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{section}: {exc}") from exc


def load_train_config(
    name_or_path: str | Path, overrides: dict[str, Any] | None = None
) -> TrainConfig:
    """Load ``pipelines/train-{name}.yaml`` by name, or a YAML file by path.

    ``overrides`` is a nested mapping merged over the file (``{"optim": {"lr": 1e-3}}``).
    """
    path = Path(name_or_path)
    if not path.is_file() and path.suffix not in (".yaml", ".yml") and path.parent == Path("."):
        # only train-*.yaml: the other shipped YAMLs are pipeline configs
        path = resource_dir("pipelines") / f"train-{name_or_path}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"train config not found: {name_or_path}")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a train config must be a YAML mapping")
    return TrainConfig.model_validate(merge(data, overrides or {}))


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge: ``extra`` wins; nested mappings merge key by key."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out
