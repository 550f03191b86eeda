"""Generate a multi-shot video from a script with a trained checkpoint (``train sample``).

Script -> LatentBatch: the global caption and each shot's caption go through the text
encoder (segments 0 and shot + 1, as in training); each reference crop (a file beside the
script) is padded to a square, resized to the data config's ``ref_size`` and VAE-encoded, and
keeps its shot, box and target frame. Euler steps on the rectified flow with classifier-free
guidance (``flow.euler_sample``) give clean latents, which the VAE decodes shot by shot.

Shot lengths. Wan's causal VAE turns a shot of ``4k + 1`` frames into ``k + 1`` latent
frames, so a script shot of ``n`` frames is generated with ``g = 4 * ceil((n - 1) / 4) + 1``
frames (the next ``4k + 1 >= n``) and its last ``g - n`` (at most 3) frames are dropped. The
kept frames start at the shot's first frame, which its own latent frame 0 decodes alone, so
the cuts of the mp4 fall exactly at ``script.cut_frames`` and the mp4 has exactly
``script.n_frames`` frames.

Frame size. Latents need sides that are multiples of 16 pixels (VAE stride 8 x patch 2):
the video is generated at the script's size rounded to multiples of 16 and scaled to the
script's size (made even for H.264 4:2:0) when the two differ.

Outputs: ``OUT.mp4`` (H.264 yuv420p at ``script.fps``) and ``OUT.cuts.json`` next to it
(the mp4 path with its suffix replaced): requested cut frames, shot ranges, fps, frame count,
and what generated it.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from muss_builder.core.models import pick_device
from muss_builder.media.commands import H264Options, x264_threads
from muss_builder.media.decode import even
from muss_builder.media.h264 import write_h264
from muss_builder.train.checkpoint import load_weights_for_inference
from muss_builder.train.config import TrainConfig
from muss_builder.train.flow import euler_sample
from muss_builder.train.pixels import square_reference
from muss_builder.train.script import Script, load_script
from muss_builder.train.types import TEXT_GLOBAL, LatentBatch

SIZE_MULTIPLE = 16  # pixels per token side: VAE stride 8 x DiT patch 2


@dataclass
class GenerateResult:
    mp4: Path
    cuts_json: Path
    n_frames: int
    fps: float
    width: int
    height: int
    cut_frames: list[int]
    shot_ranges: list[tuple[int, int]]
    generated_shot_frames: list[int]  # 4k+1 frames generated per shot before trimming
    checkpoint: Path
    weights: str  # "ema" or "model"
    seconds: float
    latents: torch.Tensor = field(repr=False)  # (C, T_lat, H_lat, W_lat) sampled, CPU
    shot_latent_frames: list[tuple[int, int]] = field(default_factory=list)


def generated_length(n_frames: int) -> int:
    """The smallest ``4k + 1 >= n_frames``: what the causal VAE can give for a shot."""
    if n_frames < 1:
        raise ValueError(f"a shot needs at least 1 frame, got {n_frames}")
    return 4 * math.ceil((n_frames - 1) / 4) + 1


def generation_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) rounded to the nearest multiples of 16 (at least 16)."""
    return tuple(
        max(SIZE_MULTIPLE, round(v / SIZE_MULTIPLE) * SIZE_MULTIPLE) for v in (width, height)
    )  # type: ignore[return-value]


def load_reference(path: Path, size: int) -> torch.Tensor:
    """A crop padded to a square with mid grey (nothing cut or stretched, as in training),
    resized to ``size``: (3, size, size) in [-1, 1]."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"reference image {path} is missing or not an image")
    return square_reference(image, size)


def script_batch(
    script: Script,
    refs_dir: Path | None,
    vae: Any,
    text: Any,
    *,
    ref_size: int,
    size: tuple[int, int],
) -> tuple[LatentBatch, list[int], list[tuple[int, int]]]:
    """The conditioning of ``script`` as a one-sample LatentBatch (latents are zeros: only
    their shape is used), the generated length of each shot and its latent frame range."""
    from muss_builder.train.encoders import (
        VAE_SPATIAL_STRIDE,
        latent_frame_of,
        latent_frames,
    )

    generated = [generated_length(s.n_frames) for s in script.shots]
    ranges, at = [], 0
    for g in generated:
        ranges.append((at, at + latent_frames(g)))
        at += latent_frames(g)
    width, height = size
    h_lat, w_lat = height // VAE_SPATIAL_STRIDE, width // VAE_SPATIAL_STRIDE
    shot_index = torch.cat([torch.full((b - a,), i) for i, (a, b) in enumerate(ranges)])
    embeds = text.encode([script.global_caption, *[s.caption for s in script.shots]])
    segments = [torch.full((len(e),), TEXT_GLOBAL + i) for i, e in enumerate(embeds)]
    channels = vae.channels
    refs, ref_shots, ref_boxes, ref_frames = [], [], [], []
    if script.references and refs_dir is None:
        raise ValueError(f"script {script.key} has references but no folder to read them from")
    shot_starts = [start for start, _ in script.shot_ranges]
    for ref in script.references:
        image = load_reference(Path(refs_dir or ".") / ref.image, ref_size)  # type: ignore[arg-type]
        refs.append(vae.encode_image(image))
        ref_shots.append(ref.shot)
        ref_boxes.append(list(ref.box))
        local = ref.frame - shot_starts[ref.shot]
        ref_frames.append(ranges[ref.shot][0] + latent_frame_of(local))
    r = len(refs)
    ref_latents = (
        torch.stack(refs) if refs else torch.zeros(0, channels, 1, ref_size // 8, ref_size // 8)
    )
    batch = LatentBatch(
        keys=[script.key],
        latents=torch.zeros(1, channels, at, h_lat, w_lat),
        shot_index=shot_index[None].long(),
        n_shots=torch.tensor([len(script.shots)]),
        text_embeds=torch.cat(embeds)[None],
        text_segments=torch.cat(segments)[None].long(),
        ref_latents=ref_latents[None],
        ref_shots=torch.tensor(ref_shots, dtype=torch.long).reshape(1, r),
        ref_boxes=torch.tensor(ref_boxes, dtype=torch.float32).reshape(1, r, 4),
        ref_latent_frames=torch.tensor(ref_frames, dtype=torch.long).reshape(1, r),
        loss_weight=torch.ones(1, at, h_lat, w_lat),
    )
    return batch, generated, ranges


def trim_shots(video: torch.Tensor, generated: list[int], wanted: list[int]) -> torch.Tensor:
    """Keep the first ``wanted[i]`` of each shot's ``generated[i]`` frames: (T, 3, H, W)."""
    if video.shape[0] != sum(generated):
        raise ValueError(f"decoded {video.shape[0]} frames, expected {sum(generated)}")
    parts, at = [], 0
    for g, n in zip(generated, wanted, strict=True):
        parts.append(video[at : at + n])
        at += g
    return torch.cat(parts)


def to_uint8(video: torch.Tensor) -> np.ndarray:
    """(T, 3, H, W) in [-1, 1] -> (T, H, W, 3) uint8 RGB."""
    pixels = ((video.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).contiguous().numpy()


def write_mp4(
    frames: np.ndarray, path: Path, fps: float, size: tuple[int, int], crf: int = 18
) -> None:
    """Encode RGB frames (T, H, W, 3) as H.264 yuv420p at ``fps``, scaled to ``size``."""
    # ffmpeg's default thread count follows the CPUs, and x264's bytes follow the thread
    # count: pinned like the dataset's clips, the same video gives the same file anywhere
    options = H264Options(preset="medium", crf=crf, x264_params=x264_threads(2), bit_exact=True)
    write_h264(frames, path, fps, options, scale_to=size)


def _load_model(loaded: dict[str, Any], device: torch.device) -> Any:
    from muss_builder.train.model import MultiShotDiT
    from muss_builder.train.presets import ModelConfig, RopeConfig

    doc = loaded["doc"]
    # built on the meta device: the checkpoint replaces every tensor, so a random init
    # (seconds of CPU at 1.3B) would be thrown away
    with torch.device("meta"):
        model = MultiShotDiT(ModelConfig(**doc["model_config"]), RopeConfig(**doc["rope_config"]))
    model.load_state_dict(loaded["weights"], strict=True, assign=True)
    return model.to(device).eval().requires_grad_(False)


def generate(
    ckpt_dir: str | Path,
    script: Script | str | Path,
    out_mp4: str | Path,
    *,
    steps: int | None = None,
    cfg_scale: float | None = None,
    shift: float | None = None,
    seed: int = 0,
    device: str = "auto",
    use_ema: bool = True,
    refs_dir: str | Path | None = None,
) -> GenerateResult:
    """Generate ``script`` with the checkpoint at ``ckpt_dir`` (a step folder or a run folder:
    its newest complete checkpoint). A script path also sets ``refs_dir`` to its folder;
    ``steps``/``cfg_scale``/``shift`` default to the training config's ``sample`` section."""
    from muss_builder.train.feed import check_widths, load_encoders

    started = time.perf_counter()
    if not isinstance(script, Script):
        refs_dir = refs_dir or Path(script).parent
        script = load_script(script)
    script.check(script.key)
    loaded = load_weights_for_inference(ckpt_dir, use_ema=use_ema)
    cfg = TrainConfig.model_validate(loaded["doc"]["config"])
    steps = steps or cfg.sample.steps
    cfg_scale = cfg.sample.cfg_scale if cfg_scale is None else cfg_scale
    shift = shift or cfg.sample.shift
    dev = torch.device(pick_device(device))
    model = _load_model(loaded, dev)
    vae, text = load_encoders(cfg, dev)
    check_widths(model.config, vae.channels, text.dim)
    size = generation_size(script.width, script.height)
    batch, generated, ranges = script_batch(
        script, Path(refs_dir) if refs_dir else None, vae, text,
        ref_size=cfg.data_config().ref_size, size=size,
    )  # fmt: skip
    batch = batch.to(dev)
    noise = torch.randn(batch.latents.shape, generator=torch.Generator().manual_seed(seed))
    autocast = torch.autocast(
        dev.type, torch.bfloat16, enabled=cfg.precision == "bf16" and dev.type == "cuda"
    )
    with autocast:
        latents = euler_sample(
            model, noise.to(dev), batch,
            steps=steps, cfg_scale=cfg_scale, shift=shift,
        )  # fmt: skip
    latents = latents[0].float().cpu()
    video = trim_shots(
        vae.decode_shots(latents, ranges), generated, [s.n_frames for s in script.shots]
    )
    out_mp4 = Path(out_mp4)
    out_mp4.parent.mkdir(parents=True, exist_ok=True)
    out_size = (even(script.width), even(script.height))
    write_mp4(to_uint8(video), out_mp4, script.fps, out_size)
    result = GenerateResult(
        mp4=out_mp4,
        cuts_json=out_mp4.with_suffix(".cuts.json"),
        n_frames=script.n_frames,
        fps=script.fps,
        width=out_size[0],
        height=out_size[1],
        cut_frames=script.cut_frames,
        shot_ranges=script.shot_ranges,
        generated_shot_frames=generated,
        checkpoint=loaded["path"],
        weights=loaded["which"],
        seconds=time.perf_counter() - started,
        latents=latents,
        shot_latent_frames=ranges,
    )
    sampler = {"steps": steps, "cfg_scale": cfg_scale, "shift": shift, "seed": seed}
    _write_cuts_json(result, script.key, size, sampler)
    return result


def _write_cuts_json(
    result: GenerateResult, key: str, size: tuple[int, int], sampler: dict[str, float | int]
) -> None:
    """``{name}.cuts.json`` beside the mp4: where the cuts are and how it was generated (the
    benchmark's transition metric reads the cuts from it)."""
    doc = {
        "script_key": key,
        "mp4": result.mp4.name,
        "fps": result.fps,
        "n_frames": result.n_frames,
        "width": result.width,
        "height": result.height,
        "cut_frames": result.cut_frames,
        "shot_ranges": [list(r) for r in result.shot_ranges],
        "generated_shot_frames": result.generated_shot_frames,
        "generation_size": list(size),
        "checkpoint": str(result.checkpoint),
        "weights": result.weights,
        **sampler,
    }
    result.cuts_json.write_text(json.dumps(doc, indent=1) + "\n")
