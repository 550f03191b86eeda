"""Read our WebDataset shards without trusting them.

A shard is a plain tar whose members are named ``{key}.{ext}`` and grouped by key. A tar can
name any path (``/etc/x``, ``../../x``), hold links or devices, or be cut short; Python's
``tarfile`` also treats a truncated or corrupt header after the first member as a normal end
of archive. So every member is checked before its bytes are handed out, and the archive must
end with the end-of-archive marker (two zero blocks) right after its last member.
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_BLOCK = 512
_END_MARKER = b"\0" * (2 * _BLOCK)


class ShardFormatError(ValueError):
    """A shard (or one of its members) is malformed or unsafe; the message says which and why."""

    def __init__(self, shard: str | Path, member: str | None, reason: str) -> None:
        self.shard = str(shard)
        self.member = member
        self.reason = reason
        super().__init__(f"{self.shard}: {self.detail}")

    def __reduce__(self) -> tuple[type, tuple[str, str | None, str]]:
        # the default would call cls(message): keep it picklable (Ray ships exceptions)
        return (type(self), (self.shard, self.member, self.reason))

    @property
    def detail(self) -> str:
        """The message without the shard path (for callers that print paths their own way)."""
        where = "before the first member" if self.member is None else f"member {self.member!r}"
        return f"{where}: {self.reason}"


@dataclass
class ShardSample:
    """One sample: its key and its members by extension (``json``, ``mp4``, ``ref0.jpg``)."""

    key: str
    members: dict[str, bytes]
    shard: str = field(default="", repr=False)  # for error messages

    def member_name(self, ext: str) -> str:
        return f"{self.key}.{ext}"


def split_member_name(shard: str | Path, name: str) -> tuple[str, str]:
    """``(key, ext)`` of a member name, or ShardFormatError if the name is unsafe or malformed."""
    drive = len(name) > 1 and name[0].isalpha() and name[1] == ":"  # C:... on Windows
    if name.startswith(("/", "\\")) or drive:
        raise ShardFormatError(shard, name, "absolute path")
    if ".." in name.replace("\\", "/").split("/"):
        raise ShardFormatError(shard, name, "path escapes the shard")
    if "/" in name or "\\" in name:
        raise ShardFormatError(shard, name, "member in a sub-folder (sample members are flat)")
    key, dot, ext = name.partition(".")
    if not key:
        raise ShardFormatError(shard, name, "empty sample key")
    if not dot or not ext:
        raise ShardFormatError(shard, name, "no extension (members are named KEY.EXT)")
    if "" in ext.split("."):
        raise ShardFormatError(shard, name, "empty extension part")
    return key, ext


def _check_member_type(shard: str | Path, member: tarfile.TarInfo) -> None:
    # Only plain files: a link or device could point outside wherever the shard is extracted.
    if member.isreg() and not member.issparse():
        return
    kinds = [
        ("symlink", member.issym()),
        ("hardlink", member.islnk()),
        ("directory", member.isdir()),
        ("device", member.isdev()),
        ("sparse file", member.issparse()),
    ]
    kind = next((name for name, hit in kinds if hit), f"tar type {member.type!r}")
    raise ShardFormatError(shard, member.name, f"not a regular file ({kind})")


def _iter_members(shard: Path) -> Iterator[tuple[str, str, bytes]]:
    """``(key, ext, data)`` for every member, in tar order, each checked before it is read."""
    last: str | None = None
    data_end = 0
    with open(shard, "rb") as fh:
        try:
            with tarfile.open(fileobj=fh, mode="r|") as tar:
                for member in tar:
                    _check_member_type(shard, member)
                    key, ext = split_member_name(shard, member.name)
                    reader = tar.extractfile(member)
                    assert reader is not None  # regular files always have a reader
                    data = reader.read()
                    if len(data) != member.size:
                        raise ShardFormatError(shard, member.name, "truncated member data")
                    last = member.name
                    data_end = member.offset_data + -(-member.size // _BLOCK) * _BLOCK
                    yield key, ext, data
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ShardFormatError(shard, last, _tar_reason(exc, last)) from exc
        # tarfile stops silently at a cut or corrupt header after the first member: only the
        # end-of-archive marker right after the last member proves nothing is missing.
        fh.seek(data_end)
        if fh.read(len(_END_MARKER)) != _END_MARKER:
            raise ShardFormatError(
                shard, last, "no end-of-archive marker after this member (truncated or corrupt tar)"
            )


def _tar_reason(exc: BaseException, last: str | None) -> str:
    after = "" if last is None else " after this (the last good) member"
    return f"unreadable or truncated tar{after}: {exc}"


def iter_samples(shard_path: str | Path) -> Iterator[ShardSample]:
    """Yield the samples of a shard in order; raise ShardFormatError on anything unsafe.

    Members of one sample must be contiguous (WebDataset groups consecutive members by key),
    so a key that comes back after another key is an error, not a second sample.
    """
    shard = Path(shard_path)
    done: set[str] = set()
    current: ShardSample | None = None
    for key, ext, data in _iter_members(shard):
        if current is not None and key != current.key:
            done.add(current.key)
            yield current
            current = None
        name = f"{key}.{ext}"
        if current is None:
            if key in done:
                raise ShardFormatError(
                    shard,
                    name,
                    f"key {key!r} reappears after other keys "
                    "(members of a sample must be contiguous)",
                )
            current = ShardSample(key=key, members={}, shard=str(shard))
        if ext in current.members:
            raise ShardFormatError(shard, name, "duplicate member in its sample")
        current.members[ext] = data
    if current is not None:
        yield current


def load_sample_json(sample: ShardSample) -> dict[str, Any]:
    """The sample's ``.json`` metadata as a dict; ShardFormatError if missing or not JSON."""
    name = sample.member_name("json")
    raw = sample.members.get("json")
    if raw is None:
        raise ShardFormatError(sample.shard, name, "missing (every sample has a .json member)")
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ShardFormatError(sample.shard, name, f"invalid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ShardFormatError(sample.shard, name, f"JSON is a {type(doc).__name__}, not an object")
    return doc


def _target(shard: Path, dest: Path, name: str) -> Path:
    target = (dest / name).resolve()
    # Names are already flat; this also catches a pre-existing symlink in dest named like one.
    if target.parent != dest:
        raise ShardFormatError(shard, name, f"would be written outside {dest}")
    return target


def _write_file(path: Path, data: bytes) -> None:
    # O_NOFOLLOW: never write through a symlink that appeared in dest after the check.
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)


def safe_extract(
    shard_path: str | Path, dest_dir: str | Path, keys: set[str] | None = None
) -> list[Path]:
    """Write the members of a shard (or of the samples ``keys``) as files into ``dest_dir``.

    The whole shard is read and checked first; if anything is wrong nothing is written.
    A key in ``keys`` that the shard lacks raises KeyError, also before writing.
    """
    shard = Path(shard_path)
    dest = Path(dest_dir).resolve()  # absolute and link-free, so a target's parent compares
    seen: set[str] = set()
    for sample in iter_samples(shard):  # pass 1: validate everything, keep nothing
        seen.add(sample.key)
        for ext in sample.members:
            _target(shard, dest, sample.member_name(ext))
    missing = sorted((keys or set()) - seen)
    if missing:
        raise KeyError(f"{shard}: no sample {', '.join(missing)}")
    dest.mkdir(parents=True, exist_ok=True)  # only now: a refused shard leaves no trace
    written: list[Path] = []
    for sample in iter_samples(shard):  # pass 2: write what pass 1 approved
        if keys is not None and sample.key not in keys:
            continue
        for ext, data in sample.members.items():
            target = _target(shard, dest, sample.member_name(ext))
            _write_file(target, data)
            written.append(target)
    return written
