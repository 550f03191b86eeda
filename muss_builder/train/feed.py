"""What the training loop and the sampler read: encoders from the config, and a resumable
stream of LatentBatches (shards encoded on the fly, or latents cached by ``train cache``).

``tiny-random`` encoders are built once under ``OUT/encoders/`` (a tiny random Wan VAE and a
tiny random T5 whose width is the model's ``text_dim``); the config that is saved with each
checkpoint names the built folders, so ``train sample`` decodes with the very same VAE.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from muss_builder.train.config import TINY_RANDOM, EncodersSection, TrainConfig
from muss_builder.train.types import LatentBatch

log = logging.getLogger(__name__)


class DataError(RuntimeError):
    """The configured data cannot feed training (no shards, no usable samples, bad widths)."""


def resolve_encoders(cfg: TrainConfig, root: str | Path, *, main: bool = True) -> TrainConfig:
    """Build ``tiny-random`` encoders under ``root/encoders`` (on the main rank; others wait)
    and return the config with their absolute paths."""
    vae, text = cfg.encoders.vae, cfg.encoders.text_encoder
    folder = Path(root).resolve() / "encoders"
    if main and (vae == TINY_RANDOM or text == TINY_RANDOM):
        from muss_builder.train.encoders import make_tiny_text_encoder, make_tiny_vae

        if vae == TINY_RANDOM and not (folder / "vae" / "config.json").is_file():
            make_tiny_vae(folder / "vae")
        if text == TINY_RANDOM and not (folder / "text_encoder" / "config.json").is_file():
            dim = cfg.model.build_config().text_dim
            make_tiny_text_encoder(folder / "text_encoder", dim=dim)
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
    encoders = EncodersSection(
        vae=str(folder / "vae") if vae == TINY_RANDOM else vae,
        text_encoder=str(folder / "text_encoder") if text == TINY_RANDOM else text,
    )
    return cfg.model_copy(update={"encoders": encoders})


def use_cache_encoders(cfg: TrainConfig) -> TrainConfig:
    """With ``latent_cache``: take the encoders the cache was made with (``cache.json``), so
    the checkpoint's config names the VAE that ``train sample`` must decode with."""
    from muss_builder.train.cache import read_manifest

    if not cfg.latent_cache:
        return cfg
    rank0 = Path(cfg.latent_cache) / "cache-rank0.json"  # a cache written under torchrun
    try:
        manifest = json.loads(rank0.read_text()) if rank0.is_file() else None
        manifest = manifest or read_manifest(cfg.latent_cache)
    except FileNotFoundError as exc:
        raise DataError(f"latent_cache: {exc}") from exc
    made = EncodersSection(vae=manifest["vae"], text_encoder=manifest["text_encoder"])
    for what in ("vae", "text_encoder"):
        mine = getattr(cfg.encoders, what)
        if mine != TINY_RANDOM and Path(mine).resolve() != Path(getattr(made, what)).resolve():
            log.warning(
                "encoders.%s %s differs from the cache's %s: using the cache's",
                what,
                mine,
                getattr(made, what),
            )
    cached_weight = float(manifest.get("subject_loss_weight", 1.0))
    if cfg.flow.subject_box_weight > 1 and cached_weight == 1.0:
        log.warning(
            "flow.subject_box_weight=%s but the cache was written with subject_loss_weight 1:"
            " its latents carry no subject boxes, so the box weight has no effect",
            cfg.flow.subject_box_weight,
        )
    return cfg.model_copy(update={"encoders": made})


def load_encoders(cfg: TrainConfig, device: torch.device) -> tuple[Any, Any]:
    """(WanVAE, TextEncoder) set up on ``device`` (bf16 on CUDA, float32 on the CPU)."""
    from muss_builder.train.encoders import TextEncoder, WanVAE

    for what, path in (("vae", cfg.encoders.vae), ("text_encoder", cfg.encoders.text_encoder)):
        if path == TINY_RANDOM:
            raise DataError(f"encoders.{what} is {TINY_RANDOM}: resolve_encoders() first")
        if not Path(path).exists():
            raise DataError(f"encoders.{what}: no folder at {path}")
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    vae = WanVAE(cfg.encoders.vae, device=device, dtype=dtype).setup()
    text = TextEncoder(cfg.encoders.text_encoder, device=device, dtype=dtype).setup()
    return vae, text


def check_widths(model_config: Any, vae_channels: int | None, text_dim: int | None) -> None:
    """The DiT's input widths must equal what the encoders give; say which does not."""
    if vae_channels is not None and vae_channels != model_config.in_channels:
        raise DataError(
            f"the VAE gives {vae_channels} latent channels, the model takes "
            f"in_channels={model_config.in_channels}"
        )
    if text_dim is not None and text_dim != model_config.text_dim:
        raise DataError(
            f"the text encoder gives {text_dim}-wide embeddings, the model takes "
            f"text_dim={model_config.text_dim} (set model.overrides.text_dim)"
        )


class Feed:
    """An endless, resumable stream of LatentBatches for one rank.

    On-the-fly mode reads ``ShardClipDataset`` batches (same pixel shape, so same latent
    shape) and encodes them here; cache mode reads ``LatentShardDataset`` batches. Either
    way the dataset's ``state_dict()`` after a batch is handed out names the next batch.
    """

    def __init__(self, cfg: TrainConfig, rank: int, world: int, device: torch.device) -> None:
        self.cfg = cfg
        self.encoders: tuple[Any, Any] | None = None
        if cfg.latent_cache:
            from muss_builder.train.cache import LatentShardDataset

            data = cfg.data_config()
            self.stream = LatentShardDataset(
                cfg.latent_cache,
                seed=data.seed,
                shuffle_buffer=data.shuffle_buffer,
                rank=rank,
                world_size=world,
                batch_size=cfg.batch_size,
                drop_last=True,
                exclude_film_ids=data.exclude_film_ids,
            )
        else:
            from muss_builder.train.data import ShardClipDataset

            if not cfg.shards:
                raise DataError("no shards: pass --shards DIR_OR_GLOB or set shards: in the config")
            data = cfg.data_config()
            self.stream = ShardClipDataset(
                expand_shards(cfg.shards, data.tracks),
                data,
                rank=rank,
                world_size=world,
                batch_size=cfg.batch_size,
                drop_last=True,
            )
            self.encoders = load_encoders(cfg, device)
        from muss_builder.train.loader import ResumableLoader

        workers = 0 if cfg.latent_cache else cfg.num_workers
        self.loader = ResumableLoader(self.stream, num_workers=workers)

    def check_model(self, model: Any) -> None:
        if self.encoders is not None:
            vae, text = self.encoders
            check_widths(model.config, vae.channels, text.dim)

    def state_dict(self) -> dict[str, Any]:
        return self.loader.state_dict()

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if state is not None:
            self.loader.load_state_dict(state)

    def _encode(self, clips: list[Any]) -> LatentBatch:
        from muss_builder.train.latents import collate_latents, encode_example

        assert self.encoders is not None
        vae, text = self.encoders
        weight = self.cfg.flow.subject_box_weight
        return collate_latents([encode_example(c, vae, text, weight) for c in clips])

    def __iter__(self) -> Iterator[LatentBatch]:
        empty_passes = 0
        while True:  # epochs: the loader moves to the next one when a pass ends
            produced = 0
            for item in self.loader:
                produced += 1
                yield self._encode(item) if self.encoders is not None else item
            # a resume at the end of a pass legitimately finds that pass empty; two are not
            empty_passes = empty_passes + 1 if produced == 0 else 0
            if empty_passes == 2:
                raise DataError(
                    "the data yielded no batch in a whole pass: no usable samples (check "
                    "data: tracks/min_shots/buckets) or fewer than "
                    f"batch_size={self.cfg.batch_size} of one shape"
                )


TRAIN_SPLIT = "train"  # what a trainer reads of a packed folder or manifest


def expand_shards(
    patterns: list[str], tracks: Sequence[str] = ("montage", "subject")
) -> list[Path | str]:
    """The config's ``shards``: files, folders, globs, brace patterns, manifests and ``s3://``
    urls (``shard_list.resolve_shards``), local ones absolute, in name order. A packed folder
    or manifest gives its ``train`` split (name other shards by pattern: ``test-*.tar``), and
    with one track in ``tracks`` (the data config's) only the shards serving it."""
    from muss_builder.train.shard_list import resolve_shards

    try:
        found = resolve_shards(patterns, split=TRAIN_SPLIT, tracks=tracks)
    except (FileNotFoundError, ValueError) as exc:
        raise DataError(f"shards: {exc}") from exc
    local = [p.resolve() if isinstance(p, Path) else p for p in found]
    return sorted(dict.fromkeys(local), key=str)
