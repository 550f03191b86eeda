"""Which shards a training run reads: the list (files, folders, globs, brace patterns,
manifests, ``s3://`` urls), the film each sample key belongs to (for held-out films), and
this process's rank.

A build's shard is named ``{film_id}-{n:05d}.tar`` and holds that film only; a packed shard
(``train-both-00000.tar``) mixes films; a sample key is ``{film_id}_{i:05d}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from muss_builder.core.naming import is_film_id
from muss_builder.core.storage import is_remote
from muss_builder.pack.shardlist import expand_shard_list


def check_film_ids(film_ids: Iterable[str]) -> list[str]:
    """Film ids sorted and de-duplicated; ValueError naming any that is not 16 hex digits."""
    ids = list(film_ids)
    bad = [f for f in ids if not is_film_id(f)]
    if bad:
        raise ValueError(
            f"film ids must be 16 lowercase hex digits (as in shard names): {bad[:5]!r}"
        )
    return sorted(set(ids))


def resolve_shards(
    shards: Sequence[str | Path] | str | Path,
    split: str | None = None,
    tracks: Sequence[str] = ("montage", "subject"),
) -> list[Path | str]:
    """The shards of a list as users write it (``pack.shardlist.expand_shard_list``): files,
    folders (a pack's manifest, a build's ``shards/``, or ``*.tar``), globs, brace patterns
    (``train-both-{00000..00127}.tar``), ``manifest.json`` and ``s3://`` urls; ``split`` picks
    one split of a manifest or packed folder. Local shards come back as Paths, remote ones as
    urls (read through ``shardlist.local_shard``); FileNotFoundError names every shard of the
    list that does not exist. With one track in ``tracks``, a packed folder or manifest gives
    only the shards whose samples serve it (pack.families): a subject-only run never opens
    montage-only shards; other specs give all their shards (the reader skips by the json)."""
    specs = [str(shards)] if isinstance(shards, str | Path) else [str(s) for s in shards]
    track = tracks[0] if len(set(tracks)) == 1 else None
    found = expand_shard_list(specs, split=split, track=track, strict_track=False)
    return [s if is_remote(s) else Path(s) for s in found]


def rank_and_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """Explicit values, else torch.distributed's when it is initialised, else (0, 1)."""
    if rank is None or world_size is None:
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            rank = dist.get_rank() if rank is None else rank
            world_size = dist.get_world_size() if world_size is None else world_size
    rank, world_size = rank or 0, world_size or 1
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in [0, {world_size})")
    return rank, world_size
