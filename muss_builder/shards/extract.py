"""Extract a shard's members as files, all or nothing.

Members are written into a new hidden folder next to the destination, and that folder is
renamed to the destination only when every member is written: a refused name, an oversized
member, a truncated tar or a full disk leaves nothing behind (not even the parent folders
this call created), and the destination never holds half a shard.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from pathlib import Path

from muss_builder.shards.reader import (
    DEFAULT_LIMITS,
    ReaderLimits,
    ShardFormatError,
    iter_samples,
    raise_problems,
)
from muss_builder.shards.untrusted import printable

# a fresh folder holds no link to follow; O_NOFOLLOW and O_EXCL make sure of it anyway
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)


class ExtractError(ValueError):
    """The destination cannot take the extraction (it exists and is not empty, ...)."""


def _check_destination(dest: Path) -> None:
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise ExtractError(f"{printable(dest)} exists and is not a folder")
    if dest.is_dir() and any(dest.iterdir()):
        raise ExtractError(
            f"{printable(dest)} exists and is not empty: extract into a new or empty folder"
        )


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing ancestors; return those created, outermost first."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    created: list[Path] = []
    try:
        for path in reversed(missing):
            path.mkdir()
            created.append(path)
    except OSError:
        _remove_empty(created)
        raise
    return created


def _remove_empty(folders: list[Path]) -> None:
    for folder in reversed(folders):  # innermost first; only if still empty
        with contextlib.suppress(OSError):
            folder.rmdir()


def _write_members(
    shard: Path, tmp: Path, keys: set[str] | None, limits: ReaderLimits
) -> list[str]:
    problems: list[ShardFormatError] = []
    seen: set[str] = set()
    names: list[str] = []
    # nothing loaded: each member is streamed from the shard into its file
    for sample in iter_samples(shard, limits, load=(), on_problem=problems.append):
        seen.add(sample.key)
        if problems or (keys is not None and sample.key not in keys):
            continue  # once something is wrong, only read on to report every problem
        for member in sample.entries.values():
            fd = os.open(tmp / member.name, _NEW_FILE, 0o666)
            with os.fdopen(fd, "wb") as out:
                member.copy_to(out)
            names.append(member.name)
    raise_problems(problems)
    missing = sorted((keys or set()) - seen)
    if missing:
        raise KeyError(f"{shard}: no sample {', '.join(missing)}")
    return names


def safe_extract(
    shard_path: str | Path,
    dest_dir: str | Path,
    keys: set[str] | None = None,
    limits: ReaderLimits = DEFAULT_LIMITS,
) -> list[Path]:
    """Write the members of a shard (or of the samples ``keys``) as files into ``dest_dir``,
    a folder that does not exist yet or is empty; return the files written.

    ShardFormatError (every problem of the shard), KeyError (a key the shard lacks),
    ExtractError or OSError (the destination) leave the file system as it was.
    """
    shard = Path(shard_path)
    dest = Path(dest_dir).absolute()
    _check_destination(dest)
    created = _make_parents(dest.parent)
    tmp = dest.parent / f".muss-extract-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        tmp.mkdir()  # the user's umask applies, as to any folder they create
        names = _write_members(shard, tmp, keys, limits)
        os.replace(tmp, dest)  # onto an empty folder or none: all files appear at once
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_empty(created)
        raise
    return [dest / name for name in names]
