"""The training loop: rectified flow on shard latents, single process or under ``torchrun``.

One step: draw noise and logit-normal ``t``, build ``x_t``, drop captions (CFG), predict the
velocity under bf16 autocast, weighted MSE against ``noise - x0``, clip, AdamW, LR schedule,
EMA. Randomness the step draws comes from the trainer's own generators (seeded per rank and
saved in checkpoints), so a resumed run repeats an uninterrupted one step for step.

Parallelism (``WORLD_SIZE > 1`` from torchrun): ``ddp`` replicates the model; ``fsdp2`` shards
every DiT block and the root with ``fully_shard`` (bf16 parameters, fp32 gradient reduction).
The process group is NCCL on CUDA and gloo on CPU.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from muss_builder.core.models import pick_device
from muss_builder.train import flow
from muss_builder.train.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from muss_builder.train.config import TrainConfig
from muss_builder.train.feed import Feed, resolve_encoders, use_cache_encoders
from muss_builder.train.optim import EMA, build_optimizer, clip_gradients, lr_factor
from muss_builder.train.types import LatentBatch

log = logging.getLogger(__name__)

# dense bf16 tensor-core peak per device, TFLOP/s (vendor datasheets, no sparsity); matched
# by substring of torch.cuda.get_device_name, most specific first
PEAK_BF16_TFLOPS: tuple[tuple[str, float], ...] = (
    ("GB200", 2500.0), ("B200", 2250.0), ("H200", 989.4), ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0), ("H100", 989.4), ("H800", 989.4), ("H20", 148.0), ("A100", 312.0),
    ("A800", 312.0), ("L40S", 362.1), ("L40", 181.0), ("L4", 121.0), ("A10G", 70.0),
    ("A10", 125.0), ("RTX 4090", 165.2), ("RTX 6000 Ada", 364.2), ("A6000", 154.8),
)  # fmt: skip


def peak_bf16_tflops(device: torch.device, override: float | None = None) -> float | None:
    """The device's dense bf16 peak in TFLOP/s: ``override``, else the table; None on CPU."""
    if override is not None:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, tflops in PEAK_BF16_TFLOPS:
        if key in name:
            return tflops
    return None


@dataclass
class FitResult:
    output_dir: Path
    start_step: int  # 0, or the step a resume continued from
    final_step: int
    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)  # mean over ranks, one per step run
    grad_norms: list[float] = field(default_factory=list)
    lrs: list[float] = field(default_factory=list)
    checkpoint: Path | None = None  # the last checkpoint written
    seconds: float = 0.0
    mfu: float | None = None  # of the last logging window


@dataclass
class _Dist:
    rank: int
    world: int
    local_rank: int
    device: torch.device
    started_group: bool

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(cfg: TrainConfig) -> _Dist:
    """Read torchrun's env, pick the device, start the process group when needed."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = pick_device(cfg.device, "training") == "cuda"  # cuda without a GPU raises here
    device = torch.device(f"cuda:{local_rank}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    started = False
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo", device_id=device if cuda else None)
        started = True
    return _Dist(rank, world, local_rank, device, started)


def build_model(cfg: TrainConfig) -> nn.Module:
    """The DiT from the preset (random init, seeded) or from a local Wan checkpoint."""
    from muss_builder.train.model import MultiShotDiT

    rope = cfg.rope_config()
    if cfg.model.pretrained:
        model = MultiShotDiT.from_pretrained(cfg.model.pretrained, rope=rope)
        wanted = cfg.model.build_config()
        if model.config != wanted:
            log.warning(
                "model.pretrained %s differs from preset %s%s; the checkpoint's shape wins",
                cfg.model.pretrained,
                cfg.model.preset,
                f" + {cfg.model.overrides}" if cfg.model.overrides else "",
            )
        return model
    torch.manual_seed(cfg.seed)  # every rank builds the same initial weights
    return MultiShotDiT(cfg.model.build_config(), rope)


def wrap_model(model: nn.Module, cfg: TrainConfig, env: _Dist) -> nn.Module:
    """Checkpointing, compile and DDP/FSDP2 around ``model`` (kept unwrapped for names)."""
    model.gradient_checkpointing = cfg.activation_checkpointing
    model.attention = cfg.attention  # flex or not is decided per batch (flex.use_flex)
    if cfg.compile:
        # Module.compile() compiles in place: state-dict names stay those of the plain model
        for block in model.blocks:
            block.compile()
        model.validate_inputs = False
    if env.world == 1:
        return model
    if cfg.parallel == "none":
        raise ValueError(f"parallel: none with WORLD_SIZE={env.world}: use ddp or fsdp2")
    if cfg.parallel == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        ids = [env.local_rank] if env.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    policy = MixedPrecisionPolicy(
        param_dtype=torch.bfloat16 if cfg.precision == "bf16" else torch.float32,
        reduce_dtype=torch.float32,
    )
    for block in model.blocks:
        fully_shard(block, mp_policy=policy)
    fully_shard(model, mp_policy=policy)
    return model


def _sdpa_context(cfg: TrainConfig) -> contextlib.AbstractContextManager:
    if cfg.attention in ("auto", "flex"):  # flex: the model's own choice, SDPA picks the rest
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backend = {
        "flash": SDPBackend.FLASH_ATTENTION,
        "efficient": SDPBackend.EFFICIENT_ATTENTION,
        "cudnn": SDPBackend.CUDNN_ATTENTION,
        "math": SDPBackend.MATH,
    }[cfg.attention]
    # masked attention (per-shot text, references) cannot use flash: fall back to the
    # memory-efficient kernel, then math, rather than fail
    return sdpa_kernel(
        list(dict.fromkeys([backend, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]))
    )


def _autocast(cfg: TrainConfig, device: torch.device) -> contextlib.AbstractContextManager:
    if cfg.precision != "bf16":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def train_step(
    model: nn.Module,
    batch: LatentBatch,
    cfg: TrainConfig,
    gen: torch.Generator,
    device: torch.device,
) -> torch.Tensor:
    """Forward + backward of one batch (already on ``device``); returns the detached loss."""
    x0 = batch.latents.float()
    bsz = x0.shape[0]
    noise = torch.randn(x0.shape, generator=gen, dtype=torch.float32).to(device)
    f = cfg.flow
    t = flow.sample_timesteps(
        bsz,
        mean=f.timestep_mean,
        std=f.timestep_std,
        shift=f.timestep_shift,
        generator=gen,
        device=device,
    )
    x_t = flow.noisy_latents(x0, noise, t)
    cond, _ = flow.drop_captions(batch, f.caption_dropout, gen)
    with _autocast(cfg, device), _sdpa_context(cfg):
        pred = model(x_t, t, cond)
    weight = flow.box_loss_weight(batch, f.subject_box_weight)
    loss = flow.flow_loss(pred, noise - x0, weight)
    loss.backward()
    return loss.detach()


def _all_mean(value: torch.Tensor, env: _Dist) -> float:
    if env.world > 1:
        value = value.clone()
        dist.all_reduce(value, op=dist.ReduceOp.SUM)
        value /= env.world
    return float(value)


def fit(cfg: TrainConfig, *, resume: bool = False, until_step: int | None = None) -> FitResult:
    """Train per ``cfg``; ``resume`` continues from the newest complete checkpoint in
    ``cfg.output_dir``; ``until_step`` stops early (with a checkpoint) at that step."""
    env = setup_distributed(cfg)
    try:
        result = _fit(cfg, env, resume, until_step)
        if env.started_group:
            # every rank is past its last collective before any rank tears its group down
            dist.barrier()
        return result
    finally:
        if env.started_group:
            dist.destroy_process_group()


@dataclass
class _Run:
    """What a checkpoint holds, for saving it and resuming from it."""

    out: Path
    raw: nn.Module  # the unwrapped model: its state dict has the diffusers names
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    ema: EMA | None
    feed: Feed
    generators: dict[str, torch.Generator]
    cfg: TrainConfig

    def resume(self, env: _Dist) -> int:
        """Load the newest complete checkpoint in ``out``; the step to continue from."""
        found = latest_checkpoint(self.out)
        if found is None:
            if env.main:
                log.info("no checkpoint in %s: starting from step 0", self.out)
            return 0
        state = load_checkpoint(
            found,
            model=self.raw,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            ema=self.ema.shadow if self.ema else None,
            generators=self.generators,
        )
        self.feed.load_state_dict(state.data_state)
        if env.main:
            log.info("resumed from %s (step %d)", found, state.step)
        return state.step

    def save(self, step: int, result: FitResult) -> Path:
        return save_checkpoint(
            self.out,
            step,
            model=self.raw,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            ema=self.ema.shadow if self.ema else None,
            data_state=self.feed.state_dict(),
            generators=self.generators,
            config=self.cfg.model_dump(mode="json"),
            metrics={"loss": result.losses[-1], "grad_norm": result.grad_norms[-1]},
            keep_last=self.cfg.keep_last,
            extra={
                "model_config": dataclasses.asdict(self.raw.config),
                "rope_config": dataclasses.asdict(self.raw.rope_config),
            },
        )


def _fit(cfg: TrainConfig, env: _Dist, resume: bool, until_step: int | None) -> FitResult:
    out = Path(cfg.output_dir)
    if env.main:
        out.mkdir(parents=True, exist_ok=True)
    # tiny-random encoders are built under out/; the saved config names the built folders
    cached = cfg.latent_cache is not None
    cfg = use_cache_encoders(cfg) if cached else resolve_encoders(cfg, out, main=env.main)
    feed = Feed(cfg, env.rank, env.world, env.device)
    raw = build_model(cfg).to(env.device)
    feed.check_model(raw)
    model = wrap_model(raw, cfg, env)
    fused = env.device.type == "cuda" and cfg.parallel != "fsdp2"
    optimizer = build_optimizer(raw, cfg, fused)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg))
    ema = EMA(raw, cfg.ema_decay) if cfg.ema_decay > 0 else None
    gen = torch.Generator().manual_seed(cfg.seed * 100_003 + env.rank)
    generators = {"train": gen}
    run = _Run(out, raw, optimizer, scheduler, ema, feed, generators, cfg)
    step = run.resume(env) if resume else 0
    writer = _summary_writer(out) if env.main else None
    peak = peak_bf16_tflops(env.device, cfg.peak_tflops)
    last = min(cfg.optim.total_steps, until_step or cfg.optim.total_steps)
    result = FitResult(output_dir=out, start_step=step, final_step=step)
    started = window_start = time.perf_counter()
    window_flops, window_tokens, window_samples = 0, 0, 0
    batches: Iterator[LatentBatch] = iter(feed)
    model.train()
    while step < last:
        batch = next(batches).to(env.device)
        optimizer.zero_grad(set_to_none=True)
        loss = train_step(model, batch, cfg, gen, env.device)
        if env.device.type == "cuda":
            raw.validate_inputs = False  # checked on the first batch; checks sync the host
        grad_norm = clip_gradients(model, cfg.optim.grad_clip)
        lr = scheduler.get_last_lr()[0]  # the rate this step uses
        optimizer.step()
        scheduler.step()
        if ema is not None:
            ema.update(step)
        step += 1
        window_flops += 3 * raw.flops_for_batch(batch)  # forward + 2x for the backward
        samples = batch.latents.shape[0] * env.world
        window_tokens += samples * math.prod(raw.token_grid(batch.latents))
        window_samples += samples
        result.steps.append(step)
        result.losses.append(_all_mean(loss, env))
        result.grad_norms.append(float(grad_norm))
        result.lrs.append(lr)
        if step % cfg.log_every == 0 or step == last:
            if env.device.type == "cuda":
                torch.cuda.synchronize(env.device)
            seconds = time.perf_counter() - window_start
            result.mfu = window_flops / seconds / (peak * 1e12) if peak else None
            if writer is not None:
                _log_scalars(writer, result, step, seconds, window_tokens, window_samples)
            window_start = time.perf_counter()
            window_flops = window_tokens = window_samples = 0
        if step % cfg.checkpoint_every == 0 or step == last:
            result.checkpoint = run.save(step, result)
    if writer is not None:
        writer.close()
    result.final_step = step
    result.seconds = time.perf_counter() - started
    return result


def _summary_writer(out: Path) -> Any:
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(out / "tensorboard"))


def _log_scalars(
    writer: Any, result: FitResult, step: int, seconds: float, tokens: int, samples: int
) -> None:
    writer.add_scalar("train/loss", result.losses[-1], step)
    writer.add_scalar("train/grad_norm", result.grad_norms[-1], step)
    writer.add_scalar("train/lr", result.lrs[-1], step)
    writer.add_scalar("perf/samples_per_s", samples / seconds, step)
    writer.add_scalar("perf/tokens_per_s", tokens / seconds, step)
    if result.mfu is not None:
        writer.add_scalar("perf/mfu", result.mfu, step)
    log.info(
        "step %d loss %.4f grad %.3f lr %.2e %.1f tokens/s%s",
        step,
        result.losses[-1],
        result.grad_norms[-1],
        result.lrs[-1],
        tokens / seconds,
        f" MFU {result.mfu:.1%}" if result.mfu is not None else "",
    )
