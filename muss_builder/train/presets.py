"""Model sizes of the multi-shot DiT and the settings of its rotary position embedding.

``ModelConfig`` holds Wan's architecture hyper-parameters under readable names
(``dim``/``num_heads``) and converts to and from the ``config.json`` that diffusers writes for
``WanTransformer3DModel`` (``num_attention_heads``/``attention_head_dim``), so a Wan2.1
checkpoint folder maps onto it and what we save loads back in diffusers.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any, Literal

log = logging.getLogger(__name__)

QK_NORM_RMS = "rms_norm_across_heads"

# diffusers config keys that describe Wan's image-to-video branch: we build the text-to-video
# architecture only, so a checkpoint that uses them cannot load with strict key matching.
_I2V_KEYS = ("image_dim", "added_kv_proj_dim", "pos_embed_seq_len")


@dataclass(frozen=True)
class ModelConfig:
    """Wan DiT hyper-parameters; defaults are Wan2.1-T2V-1.3B."""

    in_channels: int = 16  # VAE latent channels
    out_channels: int = 16
    dim: int = 1536  # hidden size = num_heads * head_dim
    num_layers: int = 30
    num_heads: int = 12
    ffn_dim: int = 8960
    text_dim: int = 4096  # width of the text encoder's token embeddings (umT5-XXL: 4096)
    freq_dim: int = 256  # sinusoidal timestep embedding width
    patch_size: tuple[int, int, int] = (1, 2, 2)  # (t, h, w) latent cells per token
    eps: float = 1e-6
    cross_attn_norm: bool = True  # affine LayerNorm before cross-attention (norm2)
    qk_norm: str | None = QK_NORM_RMS  # RMSNorm over all heads on q and k; None = no norm
    rope_max_seq_len: int = 1024  # kept for config round trips; our RoPE has no table limit

    def __post_init__(self) -> None:
        positive = ("in_channels", "out_channels", "dim", "num_layers", "num_heads", "ffn_dim")
        for name in (*positive, "text_dim", "freq_dim"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ModelConfig.{name} must be positive, got {getattr(self, name)}")
        if self.dim % self.num_heads:
            raise ValueError(f"ModelConfig.dim={self.dim} is not divisible by num_heads")
        # Wan splits each head into t/h/w rotary bands of even width; h = w = 2*(head_dim//6)
        if self.head_dim % 2 or self.head_dim < 6:
            raise ValueError(f"head_dim={self.head_dim} must be even and >= 6 for 3D RoPE")
        if self.freq_dim % 2:
            raise ValueError(f"ModelConfig.freq_dim={self.freq_dim} must be even")
        if len(self.patch_size) != 3 or min(self.patch_size) < 1:
            raise ValueError(f"ModelConfig.patch_size must be 3 positive ints: {self.patch_size}")
        if self.qk_norm not in (QK_NORM_RMS, None):
            raise ValueError(f"ModelConfig.qk_norm must be {QK_NORM_RMS!r} or None: {self.qk_norm}")
        object.__setattr__(self, "patch_size", tuple(int(p) for p in self.patch_size))

    @property
    def head_dim(self) -> int:
        return self.dim // self.num_heads

    def to_diffusers_config(self) -> dict[str, Any]:
        """The ``config.json`` dict of the equivalent diffusers ``WanTransformer3DModel``."""
        return {
            "_class_name": "WanTransformer3DModel",
            "patch_size": list(self.patch_size),
            "num_attention_heads": self.num_heads,
            "attention_head_dim": self.head_dim,
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "text_dim": self.text_dim,
            "freq_dim": self.freq_dim,
            "ffn_dim": self.ffn_dim,
            "num_layers": self.num_layers,
            "cross_attn_norm": self.cross_attn_norm,
            "qk_norm": self.qk_norm,
            "eps": self.eps,
            "image_dim": None,
            "added_kv_proj_dim": None,
            "rope_max_seq_len": self.rope_max_seq_len,
            "pos_embed_seq_len": None,
        }

    @classmethod
    def from_diffusers_config(cls, config: dict[str, Any]) -> ModelConfig:
        """Map a diffusers ``WanTransformer3DModel`` config dict; refuse I2V checkpoints."""
        used = [k for k in _I2V_KEYS if config.get(k) is not None]
        if used:
            raise ValueError(
                f"checkpoint config sets {', '.join(f'{k}={config[k]}' for k in used)}: that is "
                "Wan's image-to-video variant; MultiShotDiT builds the text-to-video one"
            )
        # diffusers' own defaults for keys a config.json may omit
        defaults = {"num_attention_heads": 40, "attention_head_dim": 128, "in_channels": 16}
        merged = {**defaults, **config}
        known = set(cls().to_diffusers_config())  # the keys we write are the keys we read
        unknown = sorted(k for k in config if k not in known and not k.startswith("_"))
        if unknown:  # a newer diffusers may add keys; they cannot change our architecture
            log.warning("ignoring diffusers config keys MultiShotDiT does not use: %s", unknown)
        kwargs: dict[str, Any] = {
            "dim": merged["num_attention_heads"] * merged["attention_head_dim"],
            "num_heads": merged["num_attention_heads"],
            "in_channels": merged["in_channels"],
            # diffusers: out_channels = out_channels or in_channels
            "out_channels": merged.get("out_channels") or merged["in_channels"],
        }
        same_name = (
            "text_dim", "freq_dim", "ffn_dim", "num_layers", "cross_attn_norm", "eps", "qk_norm",
            "patch_size", "rope_max_seq_len",
        )  # fmt: skip
        kwargs.update({key: merged[key] for key in same_name if key in merged})
        # diffusers' class defaults for Wan 14B differ from ours (1.3B): fill the rest from them
        wan_defaults = {"text_dim": 4096, "freq_dim": 256, "ffn_dim": 13824, "num_layers": 40}
        for key, value in wan_defaults.items():
            kwargs.setdefault(key, value)
        return cls(**kwargs)


@dataclass(frozen=True)
class RopeConfig:
    """Multi-shot narrative RoPE: how far apart consecutive shots sit in time.

    ``position`` mode adds ``shot * phi`` to the temporal coordinate of every token of a shot
    (fractional positions); ``angle`` mode keeps integer positions and adds a constant
    ``shot * phi`` radians to every temporal rotation angle instead.
    """

    phi: float = 0.5
    mode: Literal["position", "angle"] = "position"
    theta: float = 10000.0

    def __post_init__(self) -> None:
        if self.mode not in ("position", "angle"):
            raise ValueError(f"RopeConfig.mode must be 'position' or 'angle', got {self.mode!r}")
        if self.theta <= 1:
            raise ValueError(f"RopeConfig.theta must be > 1, got {self.theta}")


PRESETS: dict[str, ModelConfig] = {
    # CPU tests: forward+backward on a few hundred tokens in well under a second
    "tiny": ModelConfig(
        in_channels=16,
        out_channels=16,
        dim=64,
        num_layers=2,
        num_heads=2,
        ffn_dim=128,
        text_dim=32,
        freq_dim=32,
    ),
    # from-scratch training at small scale (~100M parameters, see the project docs)
    "small": ModelConfig(dim=768, num_layers=10, num_heads=12, ffn_dim=3072),
    # Wan2.1-T2V-1.3B (diffusers: Wan-AI/Wan2.1-T2V-1.3B-Diffusers/transformer)
    "wan1.3b": ModelConfig(),
}


def get_preset(name: str, **overrides: Any) -> ModelConfig:
    """A preset by name with some fields replaced, e.g. ``get_preset("tiny", text_dim=384)``."""
    if name not in PRESETS:
        raise KeyError(f"unknown model preset {name!r}; known: {', '.join(PRESETS)}")
    fields = {f.name for f in dataclasses.fields(ModelConfig)}
    bad = sorted(set(overrides) - fields)
    if bad:
        raise TypeError(f"unknown ModelConfig field(s) {bad}; fields: {sorted(fields)}")
    return dataclasses.replace(PRESETS[name], **overrides)


__all__ = ["PRESETS", "ModelConfig", "RopeConfig", "get_preset"]
