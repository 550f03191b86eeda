"""One build per output folder: ``OUT/.lock``, held by the build's driver for the whole run.

Two builds writing one folder lose films (each removes the outputs of a film it starts, and the
last to write films.parquet wins), so the second build is refused with one clear line.

- Local folders: ``flock`` on ``OUT/.lock``. The kernel drops the lock when its process dies
  (also SIGKILL), so a killed build never blocks the next one; the JSON inside (pid, host,
  start time) names the holder in the refusal, and a rerun that finds a dead build's lock says
  that it took it over. Where the filesystem has no locks (``ENOLCK``), the JSON decides: a
  holder on this host whose pid is gone is stale, any other holder is live.
- Object stores: a lock object written only if absent (S3 ``If-None-Match: *``); a lock of a
  dead process on this host is taken over, one from another host is refused with the way to
  remove it. The driver deletes it when the build ends.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import time
import uuid
from dataclasses import dataclass, field

from muss_builder.core.storage import Storage

LOCK_NAME = ".lock"


class OutputError(Exception):
    """The output folder cannot take this build (locked, read-only, not a folder): the message
    is one line for the user."""


@dataclass
class _Holder:
    pid: int | None = None
    host: str | None = None
    started: str | None = None
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    @classmethod
    def parse(cls, data: bytes) -> _Holder | None:
        try:
            doc = json.loads(data)
            return cls(doc.get("pid"), doc.get("host"), doc.get("started"), doc.get("token", ""))
        except (ValueError, AttributeError):  # empty, or cut short by a crash while written
            return None

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host}, started {self.started}"

    def is_dead_here(self) -> bool:
        """True when the holder ran on this host and its process is gone."""
        if self.host != socket.gethostname() or not isinstance(self.pid, int):
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, another user's
            return False
        return False

    def to_bytes(self) -> bytes:
        return json.dumps(self.__dict__, indent=1).encode() + b"\n"


def _me() -> _Holder:
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return _Holder(os.getpid(), socket.gethostname(), started)


def _refusal(root: str, holder: _Holder | None) -> OutputError:
    who = holder.describe() if holder else "holder unknown"
    return OutputError(
        f"another build is writing to {root} ({who}); wait for it to end or use another --out"
    )


class BuildLock:
    """``with BuildLock(store) as lock:`` holds OUT/.lock; ``lock.note`` says when a dead
    build's lock was taken over."""

    def __init__(self, store: Storage) -> None:
        self.store = store
        self.note: str | None = None
        self._fd: int | None = None
        self._me = _me()

    def __enter__(self) -> BuildLock:
        if self.store.remote:
            self._acquire_object()
        else:
            self._acquire_file()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # ----------------------------------------------------------------- local folders

    def _acquire_file(self) -> None:
        path = os.path.join(self.store.root, LOCK_NAME)
        import fcntl

        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _Holder.parse(_read_fd(fd))
                os.close(fd)
                raise _refusal(self.store.root, holder) from None
            except OSError as exc:
                if exc.errno != errno.ENOLCK:
                    os.close(fd)
                    raise
                holder = _Holder.parse(_read_fd(fd))
                if holder is not None and not holder.is_dead_here():
                    os.close(fd)
                    raise _refusal(self.store.root, holder) from None
            # A build that ends unlinks the file it locked: make sure ours is the live one.
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        old = _Holder.parse(_read_fd(fd))
        if old is not None:
            self.note = f"took over the lock of a build that is gone ({old.describe()})"
        os.ftruncate(fd, 0)
        os.pwrite(fd, self._me.to_bytes(), 0)
        self._fd = fd

    # ----------------------------------------------------------------- object stores

    def _acquire_object(self) -> None:
        for _ in range(2):
            if self._create_object():
                return
            holder = _Holder.parse(_read_or_empty(self.store))
            if holder is None or not holder.is_dead_here():
                raise OutputError(
                    str(_refusal(self.store.root, holder)).rstrip()
                    + f" (if that build is gone, delete {self.store.url(LOCK_NAME)})"
                )
            self.note = f"took over the lock of a build that is gone ({holder.describe()})"
            self.store.remove(LOCK_NAME)
        raise _refusal(self.store.root, None)

    def _create_object(self) -> bool:
        """Write the lock object only if there is none; False when one exists."""
        data = self._me.to_bytes()
        fs, rel = self.store._fs, self.store._path(LOCK_NAME)
        assert fs is not None
        try:
            fs.pipe_file(rel, data, mode="create")  # atomic where the store supports it (S3)
        except FileExistsError:
            return False
        except (TypeError, NotImplementedError):  # a store without exclusive writes
            if fs.exists(rel):
                return False
            fs.pipe_file(rel, data)
        # Read back: with a store that cannot write exclusively, the last writer holds it.
        holder = _Holder.parse(_read_or_empty(self.store))
        return holder is not None and holder.token == self._me.token

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self.store.root, LOCK_NAME))
            os.close(self._fd)  # the flock goes with the descriptor
            self._fd = None
        elif self.store.remote:
            holder = _Holder.parse(_read_or_empty(self.store))
            if holder is not None and holder.token == self._me.token:
                with contextlib.suppress(OSError):
                    self.store.remove(LOCK_NAME)


def _read_fd(fd: int) -> bytes:
    return os.pread(fd, 1 << 16, 0)


def _read_or_empty(store: Storage) -> bytes:
    try:
        return store.read_bytes(LOCK_NAME)
    except FileNotFoundError:
        return b""
