"""Which shards a training run reads: the list (files, a folder or a build's ``shards/``),
the film each shard or sample key belongs to (for held-out films), and this process's rank.

A shard is named ``{film_id}-{n:05d}.tar`` and holds that film only; a sample key is
``{film_id}_{i:05d}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import torch

from muss_builder.core.naming import is_film_id


def check_film_ids(film_ids: Iterable[str]) -> list[str]:
    """Film ids sorted and de-duplicated; ValueError naming any that is not 16 hex digits."""
    ids = list(film_ids)
    bad = [f for f in ids if not is_film_id(f)]
    if bad:
        raise ValueError(
            f"film ids must be 16 lowercase hex digits (as in shard names): {bad[:5]!r}"
        )
    return sorted(set(ids))


def resolve_shards(shards: Sequence[str | Path] | str | Path) -> list[Path]:
    """Shard paths from a list, or every ``*.tar`` of a folder (or its ``shards/``), sorted."""
    if isinstance(shards, str | Path):
        root = Path(shards)
        if root.is_file():
            return [root]
        if (root / "shards").is_dir():
            root = root / "shards"
        if not root.is_dir():
            raise FileNotFoundError(f"no shard file or folder at {root}")
        found = sorted(p for p in root.glob("*.tar") if not p.name.startswith("."))
        if not found:
            raise FileNotFoundError(f"no *.tar shards in {root}")
        return found
    paths = [Path(s) for s in shards]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"shards not found: {', '.join(missing[:5])}")
    return paths


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
