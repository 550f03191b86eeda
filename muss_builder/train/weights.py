"""MultiShotDiT weights in diffusers' folder layout: ``config.json`` + safetensors (sharded
with an index above a size), so a diffusers ``WanTransformer3DModel`` checkpoint loads with
strict key matching and what we save loads in diffusers.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from muss_builder.train.presets import ModelConfig, RopeConfig

if TYPE_CHECKING:
    from muss_builder.train.model import MultiShotDiT

WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
INDEX_NAME = "diffusion_pytorch_model.safetensors.index.json"
ROPE_KEY = "_muss_rope"  # our RoPE settings in config.json; diffusers ignores "_" keys


def save_diffusers_folder(
    model: MultiShotDiT, path: str | Path, max_shard_bytes: int | None = None
) -> None:
    """Write ``config.json`` + safetensors exactly as diffusers lays out a transformer."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    config = model.config.to_diffusers_config()
    config[ROPE_KEY] = dataclasses.asdict(model.rope_config)
    (path / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for name, tensor in state.items():
        nbytes = tensor.numel() * tensor.element_size()
        if max_shard_bytes and shards[-1] and size + nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][name] = tensor
        size += nbytes
    if len(shards) == 1:
        save_file(shards[0], str(path / WEIGHTS_NAME), metadata={"format": "pt"})
        return
    weight_map = {}
    for i, shard in enumerate(shards, start=1):
        name = f"diffusion_pytorch_model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(path / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(shard, name))
    total = sum(t.numel() * t.element_size() for t in state.values())
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (path / INDEX_NAME).write_text(json.dumps(index, indent=2) + "\n")


def load_diffusers_folder(
    cls: type[MultiShotDiT],
    path: str | Path,
    rope: RopeConfig | None = None,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> MultiShotDiT:
    """Build ``cls`` from a diffusers folder's config.json and load its weights strictly."""
    folder = Path(path)
    if not (folder / "config.json").is_file() and (folder / "transformer/config.json").is_file():
        folder = folder / "transformer"
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"no config.json in {path}: not a diffusers model folder")
    raw = json.loads((folder / "config.json").read_text())
    config = ModelConfig.from_diffusers_config(raw)
    if rope is None:
        rope = RopeConfig(**raw[ROPE_KEY]) if ROPE_KEY in raw else RopeConfig()
    files = _weight_files(folder)
    with torch.device("meta"):
        model = cls(config, rope)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found: dict[str, tuple[int, ...]] = {}
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 (safe_open is not a dict)
                found[key] = tuple(handle.get_slice(key).get_shape())
    _raise_on_mismatch(folder, expected, found)
    state: dict[str, torch.Tensor] = {}
    for file in files:
        with safe_open(str(file), framework="pt", device="cpu") as handle:
            for key in handle.keys():  # noqa: SIM118
                state[key] = handle.get_tensor(key).to(device=device, dtype=dtype)
    model.load_state_dict(state, strict=True, assign=True)
    return model


def _weight_files(folder: Path) -> list[Path]:
    if (folder / WEIGHTS_NAME).is_file():
        return [folder / WEIGHTS_NAME]
    if (folder / INDEX_NAME).is_file():
        weight_map = json.loads((folder / INDEX_NAME).read_text())["weight_map"]
        files = [folder / name for name in sorted(set(weight_map.values()))]
        missing = [f.name for f in files if not f.is_file()]
        if missing:
            raise FileNotFoundError(f"{folder / INDEX_NAME} names missing shards: {missing}")
        return files
    raise FileNotFoundError(f"no {WEIGHTS_NAME} nor {INDEX_NAME} in {folder}")


def _raise_on_mismatch(
    folder: Path, expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]]
) -> None:
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
    if not (missing or unexpected or wrong):
        return

    def listed(keys: list[str]) -> str:
        return ", ".join(keys[:10]) + (f" ... ({len(keys)} in all)" if len(keys) > 10 else "")

    parts = []
    if missing:
        parts.append(f"missing keys: {listed(missing)}")
    if unexpected:
        parts.append(f"unexpected keys: {listed(unexpected)}")
    if wrong:
        shapes = [f"{k} {found[k]} (model {expected[k]})" for k in wrong]
        parts.append(f"shape mismatches: {listed(shapes)}")
    raise ValueError(
        f"checkpoint {folder} does not match MultiShotDiT (Wan2.1 T2V) built from its "
        f"config.json; " + "; ".join(parts)
    )
