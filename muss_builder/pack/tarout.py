"""Write one packed shard: members copied byte for byte, headers fixed, published whole.

Member data streams from the source shard into the tar a megabyte at a time (never a whole
sample in memory); headers carry the build writer's fixed mtime, mode and empty owner, so the
same samples in the same order give the same bytes. The shard is written under a hidden
temporary name (locally next to its final name; for an object store in a local staging
folder) and renamed or uploaded only when complete: a reader never sees half a shard.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tarfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from muss_builder.core.storage import Storage
from muss_builder.shards.reader import Member
from muss_builder.shards.writer import FIXED_MTIME, tar_member_bytes

_COPY_CHUNK = 1 << 20


@dataclass
class PackedShard:
    """A finished packed shard, as the manifest and the progress records list it."""

    name: str
    split: str
    family: str  # the tracks its samples serve (``families.FAMILIES``)
    n_samples: int
    size_bytes: int
    sha256: str
    keys: list[str]

    def to_dict(self) -> dict:
        return asdict(self)


class _HashingFile:
    """The temporary file, hashed as it is written (a finished shard needs no second read)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fh: IO[bytes] = open(path, "wb")  # noqa: SIM115 - closed in close()
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.fh.write(data)

    def tell(self) -> int:
        return self.size

    def close(self) -> None:
        if not self.fh.closed:
            self.fh.flush()
            os.fsync(self.fh.fileno())
            self.fh.close()


class _Slice:
    """``member.size`` bytes of the open source shard ``fh`` from the member's offset, as a
    file tarfile can copy from (one open file per source shard, not one per member)."""

    def __init__(self, member: Member, fh: IO[bytes]) -> None:
        self._fh = fh
        self._fh.seek(member.offset)
        self._left = member.size

    def read(self, n: int = -1) -> bytes:
        n = self._left if n < 0 else min(n, self._left)
        data = self._fh.read(n)
        self._left -= len(data)
        return data


def sample_bytes(members: list[Member]) -> int:
    """What a sample adds to a tar: each member's header block and padded data."""
    return sum(tar_member_bytes(m.size) for m in members)


class PackedShardWriter:
    """Write ``rel`` (e.g. ``train-both-00003.tar``) under ``store``'s root; ``finish``
    publishes."""

    def __init__(self, store: Storage, rel: str, split: str, family: str, staging: Path) -> None:
        self.store, self.rel, self.split, self.family = store, rel, split, family
        name = rel.rsplit("/", 1)[-1]
        folder = staging if store.remote else Path(store.url(rel)).parent
        folder.mkdir(parents=True, exist_ok=True)
        self._file = _HashingFile(folder / f".{name}.partial-{os.getpid()}")
        # closed by finish() or abort(). Mode "w", not the stream mode "w|": the stream
        # re-slices its buffer per 10 KiB record, which took a third of the packing time.
        self._tar = tarfile.open(  # noqa: SIM115
            fileobj=self._file, mode="w", copybufsize=_COPY_CHUNK
        )
        self.keys: list[str] = []

    def add(self, key: str, members: list[Member], source: IO[bytes] | None) -> None:
        """Copy one sample's members (in their source order) into the shard; ``source`` is
        the open shard file they are in (None when their bytes are in memory)."""
        for member in members:
            info = tarfile.TarInfo(member.name)
            info.size = member.size
            info.mtime = FIXED_MTIME
            info.mode = 0o444
            info.uname = info.gname = ""
            if member.data is not None:
                self._tar.addfile(info, _Bytes(member.data))
            elif source is not None:
                self._tar.addfile(info, _Slice(member, source))
            else:
                raise ValueError(f"{member.name}: neither its bytes nor its shard file given")
        self.keys.append(key)

    def finish(self) -> PackedShard:
        self._tar.close()  # the end-of-archive blocks
        self._file.close()
        tmp = self._file.path
        try:
            if self.store.remote:
                self.store.put_file(tmp, self.rel)
            else:
                os.replace(tmp, self.store.url(self.rel))
        finally:
            tmp.unlink(missing_ok=True)
        name = self.rel.rsplit("/", 1)[-1]
        digest = self._file.sha256.hexdigest()
        return PackedShard(
            name, self.split, self.family, len(self.keys), self._file.size, digest, self.keys
        )

    def abort(self) -> None:
        """Drop the shard being written: nothing partial stays."""
        # tarfile's stream would flush into the dropped file when collected: stop it first
        self._tar.closed = True  # tarfile would write the end blocks on close()
        with contextlib.suppress(OSError):
            self._file.fh.close()
        self._file.path.unlink(missing_ok=True)


class _Bytes:
    """Bytes already in memory, read like a file."""

    def __init__(self, data: bytes) -> None:
        self._data, self._pos = data, 0

    def read(self, n: int = -1) -> bytes:
        end = len(self._data) if n < 0 else self._pos + n
        chunk = self._data[self._pos : end]
        self._pos += len(chunk)
        return chunk
