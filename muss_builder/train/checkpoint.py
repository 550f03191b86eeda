"""Training checkpoints: write atomically, resume from the newest complete one, keep the last K.

Layout of ``OUT/checkpoints/step-{step:08d}/``::

    model.pt       full (unsharded) fp32 model state dict, CPU tensors, unwrapped names
    ema.pt         the EMA weights, same names (absent when EMA is off)
    optimizer.pt   full optimiser state keyed by parameter name (torch.distributed.checkpoint
                   ``get_optimizer_state_dict(full_state_dict=True)``)
    scheduler.pt   the LR scheduler's state dict
    ranks.pt       per rank: data position (the dataset's state_dict) and RNG states
                   (python, numpy, torch CPU, CUDA, the trainer's own generators)
    trainer.json   step, world size, the training config, last metrics, and ``extra`` (the
                   trainer stores the built model's ModelConfig and RopeConfig there)
    COMPLETE       written last; a folder without it is ignored (and cleaned up)

FSDP2 choice: full state dicts gathered to rank 0 (``cpu_offload``) and loaded back with
``broadcast_from_rank0``, rather than sharded DCP folders. A checkpoint is then one portable
set of plain ``torch.save`` files that ``train sample`` loads into an unwrapped model on any
device, whatever world size or parallelism wrote it; the cost is rank 0 holding the full
state in CPU memory while writing (about 16 bytes/parameter with AdamW: ~22 GB at 1.3B).
Per-rank state (data position, RNG) is gathered with ``all_gather_object`` so only rank 0
writes, and a resume must use the same world size (each rank's data position is its own).

Atomicity: files go into a hidden ``.step-XXXXXXXX.tmp`` folder that is renamed into place
after ``COMPLETE`` is written, so a crash never leaves a checkpoint that looks complete.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)

_NAME = re.compile(r"^step-(\d{8})$")
COMPLETE = "COMPLETE"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, incomplete or does not fit this run."""


@dataclass
class TrainState:
    """What resume restores besides the model/optimiser tensors."""

    step: int
    data_state: dict[str, Any] | None
    metrics: dict[str, float]


def _rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def _barrier() -> None:
    if _world() > 1:
        dist.barrier()


def checkpoint_root(out_dir: str | Path) -> Path:
    return Path(out_dir) / "checkpoints"


def step_dir(out_dir: str | Path, step: int) -> Path:
    return checkpoint_root(out_dir) / f"step-{step:08d}"


def list_checkpoints(out_dir: str | Path) -> list[Path]:
    """Complete checkpoints under ``out_dir/checkpoints``, oldest first."""
    root = checkpoint_root(out_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if _NAME.match(p.name) and (p / COMPLETE).is_file()]
    return sorted(found, key=lambda p: int(_NAME.match(p.name).group(1)))  # type: ignore[union-attr]


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    """The newest complete checkpoint, or None."""
    found = list_checkpoints(out_dir)
    return found[-1] if found else None


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder from itself, a ``checkpoints/`` folder or a run's output folder."""
    path = Path(path)
    if (path / COMPLETE).is_file():
        return path
    for candidate in (path, path.parent if path.name == "checkpoints" else None):
        if candidate is None:
            continue
        newest = latest_checkpoint(candidate)
        if newest is not None:
            return newest
    if path.is_dir() and _NAME.match(path.name):
        raise CheckpointError(f"{path}: checkpoint is incomplete (no {COMPLETE} marker)")
    raise CheckpointError(f"{path}: no complete checkpoint found (expected step-XXXXXXXX/)")


def rng_state() -> dict[str, Any]:
    """Every global RNG this process draws from."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _full_options() -> StateDictOptions:
    return StateDictOptions(full_state_dict=True, cpu_offload=True)


def _gather_full(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Full CPU copies of possibly sharded (DTensor) tensors; a collective under FSDP2."""
    from torch.distributed.tensor import DTensor

    out = {}
    for name, value in tensors.items():
        full = value.full_tensor() if isinstance(value, DTensor) else value
        out[name] = full.detach().to("cpu", copy=True)
    return out


def save_checkpoint(
    out_dir: str | Path,
    step: int,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    ema: dict[str, torch.Tensor] | None,
    data_state: dict[str, Any] | None,
    generators: dict[str, torch.Generator],
    config: dict[str, Any],
    metrics: dict[str, float] | None = None,
    keep_last: int | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write the checkpoint of ``step`` (call on every rank: gathering is collective)."""
    model_sd = get_model_state_dict(model, options=_full_options())
    optim_sd = get_optimizer_state_dict(model, optimizer, options=_full_options())
    ema_sd = _gather_full(ema) if ema is not None else None
    mine = {
        "data_state": data_state,
        "rng": rng_state(),
        "generators": {k: g.get_state() for k, g in generators.items()},
    }
    ranks: list[Any] = [None] * _world()
    if _world() > 1:
        dist.all_gather_object(ranks, mine)
    else:
        ranks = [mine]
    final = step_dir(out_dir, step)
    if _rank() == 0:
        tmp = final.parent / f".{final.name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        torch.save(model_sd, tmp / "model.pt")
        if ema_sd is not None:
            torch.save(ema_sd, tmp / "ema.pt")
        torch.save(optim_sd, tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        torch.save(ranks, tmp / "ranks.pt")
        doc = {
            "step": step,
            "world_size": _world(),
            "config": config,
            "metrics": metrics or {},
            **(extra or {}),
        }
        (tmp / "trainer.json").write_text(json.dumps(doc, indent=1, default=str) + "\n")
        _fsync_dir_files(tmp)
        (tmp / COMPLETE).write_text(f"{step}\n")
        if final.exists():  # a rerun of the same step replaces the old one
            shutil.rmtree(final)
        os.replace(tmp, final)
        if keep_last is not None:
            prune_checkpoints(out_dir, keep_last)
    _barrier()
    return final


def _fsync_dir_files(folder: Path) -> None:
    # rename is atomic, but without fsync a power cut can leave renamed-yet-empty files
    for path in folder.iterdir():
        with open(path, "rb") as fh:
            os.fsync(fh.fileno())


def prune_checkpoints(out_dir: str | Path, keep_last: int) -> list[Path]:
    """Delete all but the newest ``keep_last`` complete checkpoints and stale temp folders."""
    removed = []
    found = list_checkpoints(out_dir)
    for old in found[: max(0, len(found) - keep_last)]:
        shutil.rmtree(old, ignore_errors=True)
        removed.append(old)
    root = checkpoint_root(out_dir)
    for stale in root.glob(".step-*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    return removed


def load_checkpoint(
    path: str | Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    ema: dict[str, torch.Tensor] | None,
    generators: dict[str, torch.Generator],
) -> TrainState:
    """Restore everything ``save_checkpoint`` wrote into live objects (call on every rank)."""
    path = Path(path)
    if not (path / COMPLETE).is_file():
        raise CheckpointError(f"{path}: not a complete checkpoint")
    doc = json.loads((path / "trainer.json").read_text())
    if doc["world_size"] != _world():
        raise CheckpointError(
            f"{path}: written by {doc['world_size']} ranks, resuming with {_world()}: each "
            "rank's data position is its own, so resume with the same world size"
        )
    distributed = _world() > 1
    # under torchrun only rank 0 reads the big files; the others receive a broadcast
    reads = _rank() == 0 or not distributed
    opts = StateDictOptions(full_state_dict=True, broadcast_from_rank0=distributed)
    model_sd = torch.load(path / "model.pt", map_location="cpu") if reads else {}
    set_model_state_dict(model, model_sd, options=opts)
    optim_sd = torch.load(path / "optimizer.pt", map_location="cpu") if reads else {}
    set_optimizer_state_dict(model, optimizer, optim_sd, options=opts)
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", map_location="cpu"))
    if ema is not None:
        if not (path / "ema.pt").is_file():
            raise CheckpointError(f"{path}: EMA is on but the checkpoint has no ema.pt")
        load_ema(ema, torch.load(path / "ema.pt", map_location="cpu"))
    ranks = torch.load(path / "ranks.pt", map_location="cpu", weights_only=False)
    mine = ranks[_rank()]
    set_rng_state(mine["rng"])
    for name, gen in generators.items():
        gen.set_state(mine["generators"][name])
    return TrainState(step=int(doc["step"]), data_state=mine["data_state"], metrics=doc["metrics"])


def load_ema(ema: dict[str, torch.Tensor], full: dict[str, torch.Tensor]) -> None:
    """Copy full EMA tensors into live (possibly DTensor-sharded) EMA tensors."""
    from torch.distributed.tensor import DTensor, distribute_tensor

    missing = set(ema) - set(full)
    if missing:
        raise CheckpointError(f"EMA state lacks {sorted(missing)[:3]}...")
    for name, live in ema.items():
        src = full[name]
        if isinstance(live, DTensor):
            src = distribute_tensor(src.to(live.device), live.device_mesh, live.placements)
        live.copy_(src)


def load_weights_for_inference(path: str | Path, *, use_ema: bool = True) -> dict[str, Any]:
    """The weights (EMA by default) and trainer document of a checkpoint, for ``train sample``."""
    path = resolve_checkpoint(path)
    doc = json.loads((path / "trainer.json").read_text())
    name = "ema.pt" if use_ema and (path / "ema.pt").is_file() else "model.pt"
    weights = torch.load(path / name, map_location="cpu")
    return {"path": path, "weights": weights, "which": name.removesuffix(".pt"), "doc": doc}
