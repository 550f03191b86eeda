"""Precompute VAE latents and text embeddings into cached shards, and stream them back.

``cache_latents`` turns each input shard into one cached shard of the same name under
``OUT/shards/``: a WebDataset-style tar with one ``{key}.safetensors`` member per sample
(every LatentExample tensor, the shot ranges as an (S, 2) tensor, the key in the metadata).
Input samples are read in shard order with no shuffling and encoded one by one, the tar is
written under a hidden temporary name with fixed member headers and renamed when complete,
so the same inputs and models give byte-identical cached shards and a killed run resumes at
the first shard not yet written. ``cache.json`` records what the cache was made from.

``LatentShardDataset`` streams cached shards with the same rank/worker split, shuffle buffer,
resumable state, shape bucketing and ``exclude_film_ids`` as ``ShardClipDataset`` (see
``muss_builder.train.data``): a cache written before a film was held out can still be trained
on without it (cached shards keep the input shard names, so whole shards are dropped).
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from muss_builder.core.naming import film_of_shard
from muss_builder.core.storage import write_atomic
from muss_builder.pack.shardlist import shard_name
from muss_builder.shards.reader import ShardFormatError, ShardSample
from muss_builder.shards.writer import FIXED_MTIME
from muss_builder.train.data import DataConfig, ShardClipDataset
from muss_builder.train.encoders import TextEncoder, WanVAE
from muss_builder.train.latents import collate_latents, encode_example
from muss_builder.train.shard_list import resolve_shards
from muss_builder.train.stream import OnError, ShardStream, raise_error
from muss_builder.train.types import LatentBatch, LatentExample

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
MEMBER = "safetensors"
StorageDtype = Literal["float32", "bfloat16", "float16"]
_FLOAT_FIELDS = ("latents", "text_embeds", "ref_latents", "ref_boxes", "loss_weight")
_INT_FIELDS = ("text_segments", "ref_shots", "ref_latent_frames")


def example_bytes(example: LatentExample, dtype: StorageDtype = "bfloat16") -> bytes:
    """One LatentExample as safetensors bytes (floats in ``dtype``, integers as int64)."""
    from safetensors.torch import save

    store = getattr(torch, dtype)
    tensors = {name: getattr(example, name).detach().cpu().to(store) for name in _FLOAT_FIELDS}
    for name in _INT_FIELDS:
        tensors[name] = getattr(example, name).detach().cpu().long()
    tensors["shot_latent_frames"] = torch.tensor(example.shot_latent_frames, dtype=torch.long)
    tensors = {name: t.contiguous() for name, t in tensors.items()}
    # one metadata entry only: safetensors writes a map's entries in no fixed order
    return save(tensors, metadata={"key": example.key})


def example_from_bytes(data: bytes) -> LatentExample:
    """Inverse of ``example_bytes``; floats come back as float32."""
    from safetensors.torch import load

    tensors = load(data)
    missing = sorted({*_FLOAT_FIELDS, *_INT_FIELDS, "shot_latent_frames"} - tensors.keys())
    if missing:
        raise ValueError(f"cached example lacks {', '.join(missing)}")
    # safetensors' bytes API returns no metadata; the header is 8 bytes of length, then JSON
    header_len = int.from_bytes(data[:8], "little")
    metadata = json.loads(data[8 : 8 + header_len]).get("__metadata__", {})
    return LatentExample(
        key=metadata.get("key", ""),
        shot_latent_frames=[(int(a), int(b)) for a, b in tensors["shot_latent_frames"].tolist()],
        **{name: tensors[name].float() for name in _FLOAT_FIELDS},
        **{name: tensors[name] for name in _INT_FIELDS},
    )


class _AtomicTar:
    """A tar written under a hidden name and renamed into place when closed cleanly."""

    def __init__(self, final: Path) -> None:
        from webdataset import TarWriter

        self.final = final
        self.partial = final.with_name(f".{final.name}.partial-{os.getpid()}")
        self._fh = open(self.partial, "wb")  # noqa: SIM115 - closed in commit()/abort()
        self._tar = TarWriter(
            self._fh, user="", group="", mode=0o444, encoder=False, mtime=FIXED_MTIME
        )

    def write(self, key: str, members: dict[str, bytes]) -> None:
        self._tar.write({"__key__": key, **members})

    def commit(self) -> None:
        self._tar.close()  # the end-of-archive blocks
        if not self._fh.closed:
            self._fh.close()
        os.replace(self.partial, self.final)

    def abort(self) -> None:
        if not self._fh.closed:
            self._fh.close()
        self.partial.unlink(missing_ok=True)


@dataclass
class CacheSummary:
    """What one ``cache_latents`` call did."""

    out_dir: Path
    written: dict[str, int] = field(default_factory=dict)  # cached shard -> samples
    skipped_existing: list[str] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)

    @property
    def n_samples(self) -> int:
        return sum(self.written.values())


def _without_holdout(
    inputs: list[Path | str], data_cfg: DataConfig, out: Path, summary: CacheSummary
) -> list[Path | str]:
    """``inputs`` without the shards of held-out films, dropped before the rank split (never
    read, never cached); samples of those films in shards named otherwise are skipped by
    ShardClipDataset. Warns about such shards an earlier run already cached."""
    excluded = set(data_cfg.exclude_film_ids)
    kept = [s for s in inputs if film_of_shard(shard_name(s)) not in excluded]
    if len(kept) < len(inputs):
        summary.stats["skipped_holdout_shards"] += len(inputs) - len(kept)
        log.info("%d shards of excluded films not cached", len(inputs) - len(kept))
        names = [shard_name(s) for s in inputs if s not in kept]
        stale = [n for n in names if (out / "shards" / n).exists()]
        if stale:  # from an earlier run without the exclusion: training would read them
            log.warning(
                "%d cached shards of excluded films are already in %s (e.g. %s): delete them,"
                " or train with the same exclusion",
                len(stale),
                out / "shards",
                stale[0],
            )
    return kept


def cache_latents(
    shards: Sequence[str | Path] | str | Path,
    out_dir: str | Path,
    data_cfg: DataConfig,
    vae: WanVAE,
    text: TextEncoder,
    *,
    subject_loss_weight: float = 1.0,
    dtype: StorageDtype = "bfloat16",
    rank: int = 0,
    world_size: int = 1,
    overwrite: bool = False,
    on_error: OnError = raise_error,
) -> CacheSummary:
    """Encode the samples of ``shards`` (rank ``r`` takes ``shards[r::world_size]``) into
    ``out_dir/shards/{shard name}``, one cached shard per input shard.

    ``vae`` and ``text`` must be set up. A cached shard that exists is kept (resume) unless
    ``overwrite``. Samples the data config skips (``exclude_film_ids`` included: their shards
    are not cached at all) are counted in the summary's ``stats``.
    Writes ``out_dir/cache.json`` (rank 0 of 1) or ``out_dir/cache-rank{r}.json``.
    """
    inputs = resolve_shards(shards)
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in [0, {world_size})")
    out = Path(out_dir)
    (out / "shards").mkdir(parents=True, exist_ok=True)
    summary = CacheSummary(out)
    inputs = _without_holdout(inputs, data_cfg, out, summary)
    # the cache is a fixed function of its inputs: no shuffling, shard order as given
    ordered = data_cfg.model_copy(update={"shuffle_buffer": 0})
    for shard in inputs[rank::world_size]:
        final = out / "shards" / shard_name(shard)
        if final.exists() and not overwrite:
            summary.skipped_existing.append(final.name)
            continue
        samples = ShardClipDataset([shard], ordered, rank=0, world_size=1, on_error=on_error)
        writer = _AtomicTar(final)
        count = 0
        try:
            for clip in samples:
                example = encode_example(clip, vae, text, subject_loss_weight)
                writer.write(example.key, {MEMBER: example_bytes(example, dtype)})
                count += 1
        except BaseException:
            writer.abort()
            raise
        writer.commit()
        summary.written[final.name] = count
        summary.stats.update(samples.stats)
        log.info("cached %s: %d samples", final.name, count)
    manifest = {
        "format": CACHE_FORMAT,
        "data_config": data_cfg.model_dump(mode="json"),
        "vae": str(vae.path),
        "text_encoder": str(text.path),
        "subject_loss_weight": subject_loss_weight,
        "dtype": dtype,
        "rank": rank,
        "world_size": world_size,
        "written": summary.written,
        "skipped_existing": summary.skipped_existing,
        "stats": dict(summary.stats),
    }
    name = "cache.json" if world_size == 1 else f"cache-rank{rank}.json"
    write_atomic(out / name, json.dumps(manifest, indent=2, sort_keys=True).encode())
    return summary


class LatentShardDataset(ShardStream):
    """LatentExamples from cached shards (``batch_size``: same-shape LatentBatches).

    Takes ``ShardStream``'s arguments as they are: only decoding and batching differ."""

    def decode(self, sample: ShardSample) -> LatentExample:
        data = sample.members.get(MEMBER)
        if data is None:
            raise ShardFormatError(sample.shard, sample.member_name(MEMBER), "missing")
        try:
            example = example_from_bytes(data)
        except Exception as exc:  # safetensors raises its own error types
            raise ShardFormatError(
                sample.shard, sample.member_name(MEMBER), f"not a cached example: {exc}"
            ) from exc
        example.key = example.key or sample.key
        self.stats["samples"] += 1
        return example

    def shape_key(self, item: LatentExample) -> tuple[int, ...]:
        return tuple(item.latents.shape)

    def make_batch(self, items: list[LatentExample]) -> LatentBatch:
        return collate_latents(items)


def read_manifest(out_dir: str | Path) -> dict[str, Any]:
    """``cache.json`` of a cache folder (what the latents were made from)."""
    path = Path(out_dir) / "cache.json"
    if not path.is_file():
        raise FileNotFoundError(f"no cache.json in {out_dir}: not a latent cache folder")
    return json.loads(path.read_text())
