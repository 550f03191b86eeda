"""Per-film WebDataset shard writer: size-capped, atomic, byte-reproducible.

Each shard is written under a hidden temporary name and renamed into place only when it is
complete, so a reader never sees half a shard. Member headers carry a fixed mtime, owner and
mode, and members are written in sorted order, so the same samples give identical bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from muss_builder.core.naming import partial_shard_name, shard_name

if TYPE_CHECKING:  # webdataset imports torch: a second's start-up every CLI call would pay
    from webdataset import TarWriter


FIXED_MTIME = 946684800  # 2000-01-01T00:00:00Z: any constant works; this one reads as a date
_BLOCK = 512


def tar_member_bytes(size: int) -> int:
    """Bytes one member takes in a tar: header block plus data rounded up to blocks."""
    return _BLOCK + (size + _BLOCK - 1) // _BLOCK * _BLOCK


class _HashingFile:
    """File wrapper that hashes what is written, so a finished shard needs no second read."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh = open(path, "wb")  # noqa: SIM115 - closed in close()
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        return self._fh.write(data)

    def flush(self) -> None:
        self._fh.flush()

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()

    @property
    def closed(self) -> bool:
        return self._fh.closed


@dataclass
class ShardInfo:
    name: str
    n_samples: int
    size_bytes: int
    sha256: str
    keys: list[str]

    def to_dict(self) -> dict:
        return asdict(self)


class FilmShardWriter:
    """Write the samples of one film into ``{film_id}-{n:05d}.tar`` files under ``shard_dir``."""

    def __init__(self, shard_dir: str | Path, film_id: str, max_bytes: int) -> None:
        self.shard_dir = Path(shard_dir)
        self.film_id = film_id
        self.max_bytes = max_bytes
        self.shards: list[ShardInfo] = []
        self._n = 0
        self._fh: _HashingFile | None = None
        self._tar: TarWriter | None = None
        self._bytes = 0
        self._keys: list[str] = []
        self.shard_dir.mkdir(parents=True, exist_ok=True)

    def write(self, key: str, members: dict[str, bytes]) -> str:
        """Add one sample (``members``: extension -> bytes); return the shard it went to."""
        size = sum(tar_member_bytes(len(v)) for v in members.values())
        if self._tar is not None and self._keys and self._bytes + size > self.max_bytes:
            self._finish_shard()
        if self._tar is None:
            from webdataset import TarWriter

            self._fh = _HashingFile(
                self.shard_dir / partial_shard_name(self.film_id, self._n, os.getpid())
            )
            self._tar = TarWriter(
                self._fh, user="", group="", mode=0o444, encoder=False, mtime=FIXED_MTIME
            )
        self._tar.write({"__key__": key, **members})
        self._bytes += size
        self._keys.append(key)
        return shard_name(self.film_id, self._n)

    def _finish_shard(self) -> None:
        assert self._tar is not None and self._fh is not None
        self._tar.close()  # writes the end-of-archive blocks
        self._fh.close()
        final = self.shard_dir / shard_name(self.film_id, self._n)
        digest = self._fh.sha256.hexdigest()
        os.replace(self._fh.path, final)
        self.shards.append(
            ShardInfo(final.name, len(self._keys), final.stat().st_size, digest, list(self._keys))
        )
        self._n += 1
        self._tar, self._fh, self._bytes, self._keys = None, None, 0, []

    def close(self) -> list[ShardInfo]:
        if self._tar is not None:
            self._finish_shard()
        return self.shards

    def abort(self) -> None:
        """Drop the shard being written (on error): nothing partial stays visible. Nothing
        more is written to it (the error may be a full disk), and no error of closing it
        replaces the one that made us drop it."""
        if self._tar is not None:
            # tarfile's stream would write its buffer on garbage collection, into a file
            # being dropped, and print that error as "Exception ignored"
            stream = getattr(self._tar.tarstream, "fileobj", None)
            if stream is not None and hasattr(stream, "closed"):
                stream.closed = True
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh._fh.close()  # no flush + fsync: the file is dropped
            self._fh.path.unlink(missing_ok=True)
        self._tar, self._fh = None, None
