"""Read input films from, and write the dataset to, local paths or fsspec object stores; atomic
writes of local files (``write_atomic``).

Remote roots (``s3://bucket/prefix``, ``gs://...``) go through fsspec; local paths and
``file://`` urls go through the OS so writes keep their tmp + fsync + rename atomicity.

Credentials and endpoints come from the environment, as the store's own client reads them
(for S3: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION`` and
``AWS_ENDPOINT_URL`` for an S3-compatible server). ``MUSS_STORAGE_OPTIONS`` may hold JSON
fsspec storage options, either flat (``{"endpoint_url": "http://host:9000"}``, passed to every
remote filesystem) or per protocol (``{"s3": {...}, "gs": {...}}``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fsspec
from fsspec import AbstractFileSystem

OPTIONS_ENV = "MUSS_STORAGE_OPTIONS"


def is_remote(url: str) -> bool:
    """True for ``scheme://`` urls other than ``file://``."""
    scheme, sep, _ = url.partition("://")
    return bool(sep) and scheme.lower() != "file"


def _local_path(url: str) -> str:
    return url[len("file://") :] if url.lower().startswith("file://") else url


def _filesystem(url: str) -> tuple[AbstractFileSystem, str]:
    """The filesystem for a remote ``url`` and the url's path without its scheme."""
    protocol = url.partition("://")[0].lower()
    options: dict[str, Any] = json.loads(os.environ.get(OPTIONS_ENV) or "{}")
    if isinstance(options.get(protocol), dict):
        options = options[protocol]
    # Other processes (Ray workers) write to the same prefixes: a cached listing would hide
    # their objects, so listings are always asked for afresh unless the user says otherwise.
    options.setdefault("use_listings_cache", False)
    # fsspec caches instances by their options, not by the environment: a fresh instance makes
    # a changed AWS_ENDPOINT_URL or credential take effect instead of reusing a stale client.
    options.setdefault("skip_instance_cache", True)
    return fsspec.core.url_to_fs(url, **options)


@contextlib.contextmanager
def _naming(url: str) -> Iterator[None]:
    """Re-raise store errors with the url in the message (s3fs says only "bucket/key")."""
    try:
        yield
    except OSError as exc:
        if url in str(exc):
            raise
        kind = type(exc) if type(exc) in (FileNotFoundError, PermissionError) else OSError
        raise kind(f"{str(exc) or kind.__name__}: {url}") from exc


def _replace_atomically(path: Path, fill: Callable[[str], None]) -> None:
    """``fill(tmp)`` writes a temporary sibling of ``path``, which is fsynced and renamed over
    it: readers (and a run after a crash) see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        # mkstemp makes 0600 files; the output is for its readers, as the umask allows
        os.fchmod(fd, 0o666 & ~current_umask())
    finally:
        os.close(fd)
    try:
        fill(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows (threads may be
    creating files meanwhile); else set and restored at once."""
    with contextlib.suppress(OSError, ValueError, StopIteration):
        with open("/proc/self/status") as fh:
            line = next(row for row in fh if row.startswith("Umask:"))
        return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class Storage:
    """A dataset root on the local disk or any fsspec filesystem; paths are relative to it."""

    def __init__(self, root: str, fs: AbstractFileSystem | None, fs_root: str) -> None:
        self.root = root  # as given, without a trailing slash; local roots lose ``file://``
        self.remote = fs is not None
        self._fs = fs
        self._fs_root = fs_root  # the root as the filesystem names it (no scheme)

    @classmethod
    def open(cls, root: str) -> Storage:
        """A local path, ``file://`` url or remote url; nothing is created or checked yet."""
        if not is_remote(root):
            local = _local_path(root)
            local = local.rstrip("/") or "/"
            return cls(local, None, local)
        fs, path = _filesystem(root)
        return cls(root.rstrip("/"), fs, path.rstrip("/"))

    def url(self, rel: str) -> str:
        return f"{self.root}/{rel}" if rel else self.root

    def _path(self, rel: str) -> str:
        return f"{self._fs_root}/{rel}" if rel else self._fs_root

    def exists(self, rel: str) -> bool:
        if self._fs is None:
            return os.path.exists(self._path(rel))
        with _naming(self.url(rel)):
            return self._fs.exists(self._path(rel))

    def size(self, rel: str) -> int | None:
        """Size in bytes of a file, None when there is none (a missing object or a folder)."""
        if self._fs is None:
            path = Path(self._path(rel))
            return path.stat().st_size if path.is_file() else None
        with _naming(self.url(rel)):
            try:
                info = self._fs.info(self._path(rel))
            except FileNotFoundError:
                return None
        return int(info["size"]) if info.get("type") == "file" else None

    def read_bytes(self, rel: str) -> bytes:
        with _naming(self.url(rel)):
            if self._fs is None:
                return Path(self._path(rel)).read_bytes()
            return self._fs.cat_file(self._path(rel))

    def write_bytes(self, rel: str, data: bytes) -> None:
        """Readers see the old content or the new, never a part: locally by rename, on an
        object store because an object appears only once its PUT (or multipart) completes."""
        with _naming(self.url(rel)):
            if self._fs is None:
                _replace_atomically(Path(self._path(rel)), lambda tmp: Path(tmp).write_bytes(data))
            else:
                self._fs.pipe_file(self._path(rel), data)

    def put_file(self, local: Path, rel: str) -> None:
        """Upload ``local`` (kept in place), or copy it atomically under a local root."""
        with _naming(self.url(rel)):
            if self._fs is None:
                _replace_atomically(Path(self._path(rel)), lambda tmp: shutil.copyfile(local, tmp))
            else:
                self._fs.put_file(str(local), self._path(rel))

    def list(self, rel_dir: str, suffix: str = "") -> list[str]:
        """Paths (relative to the root, e.g. ``shards/a.tar``) of the files directly under
        ``rel_dir`` whose names end with ``suffix``, sorted; [] for a missing folder."""
        base = self._path(rel_dir)
        if self._fs is None:
            if not os.path.isdir(base):
                return []
            # Dot names are write_bytes/put_file temporaries still being written.
            names = [e.name for e in os.scandir(base) if e.is_file() and not e.name.startswith(".")]
        else:
            try:
                entries = self._fs.ls(base, detail=True)
            except FileNotFoundError:
                return []
            names = [e["name"].rsplit("/", 1)[-1] for e in entries if e.get("type") == "file"]
        prefix = f"{rel_dir.rstrip('/')}/" if rel_dir else ""
        return sorted(prefix + n for n in names if n.endswith(suffix))

    def remove(self, rel: str) -> None:
        """Delete one file; a missing one is not an error."""
        with _naming(self.url(rel)), contextlib.suppress(FileNotFoundError):
            if self._fs is None:
                os.unlink(self._path(rel))
            else:
                self._fs.rm_file(self._path(rel))


def expand_remote_inputs(url: str, extensions: tuple[str, ...]) -> list[str]:
    """A single object url -> [url]; a "folder" prefix -> the sorted urls of the files under it
    (recursively) whose extension is in ``extensions`` (lower case, with the dot)."""
    fs, path = _filesystem(url)
    scheme = url.partition("://")[0]
    with _naming(url):
        if fs.isfile(path):
            return [url]
        found = fs.find(path.rstrip("/"))
    if not found:
        # An object store has no empty folders: nothing under the prefix means it is wrong.
        raise FileNotFoundError(f"no such object or prefix: {url}")
    videos = (p for p in found if os.path.splitext(p)[1].lower() in extensions)
    return sorted(f"{scheme}://{p}" for p in videos)


def film_cache_dir() -> Path:
    """Where this node keeps its copies of remote films (``MUSS_CACHE_DIR`` to move it)."""
    root = os.environ.get("MUSS_CACHE_DIR") or Path(tempfile.gettempdir()) / "muss-builder-cache"
    return Path(root) / "films"


def local_copy(url: str, cache_dir: Path) -> Path:
    """A local file with the content of ``url``: a local path as it is, a remote film
    downloaded once into ``cache_dir``.

    The cached name hashes the url with the object's size and etag (or mtime), so a changed
    object is fetched again; an older copy of the same url is then deleted, as films are large.
    The download goes to a temporary name and is renamed only when complete, so a crash never
    leaves a partial file under a name a later run would trust.
    """
    if not is_remote(url):
        return Path(_local_path(url))
    fs, path = _filesystem(url)
    with _naming(url):
        info = fs.info(path)
        if info.get("type") != "file":
            raise FileNotFoundError(f"not a file: {url}")
    version = next(
        (info[k] for k in ("ETag", "etag", "generation", "LastModified", "mtime") if k in info), ""
    )
    url_key = hashlib.sha256(url.encode()).hexdigest()[:16]
    version_key = hashlib.sha256(f"{info['size']}|{version}".encode()).hexdigest()[:12]
    # The original name (and its extension) is kept: decoders guess the container from it.
    final = cache_dir / f"{url_key}-{version_key}-{path.rsplit('/', 1)[-1]}"
    if final.is_file() and final.stat().st_size == info["size"]:
        return final

    def download(tmp: str) -> None:
        with _naming(url):
            fs.get_file(path, tmp)
        if os.path.getsize(tmp) != info["size"]:
            raise OSError(f"download incomplete ({os.path.getsize(tmp)} bytes): {url}")

    _replace_atomically(final, download)
    for stale in cache_dir.glob(f"{url_key}-*"):
        if stale != final:
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
    return final


def file_sha256(path: Path) -> str:
    """sha256 of a local file, read a megabyte at a time (shards are up to gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary sibling and rename: readers see the old file or the new one."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def json_bytes(document: Any) -> bytes:
    """The bytes of a JSON document as every record and stats file of a build is written."""
    return (json.dumps(document, indent=2, sort_keys=False) + "\n").encode()
