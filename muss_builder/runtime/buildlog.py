"""The build log: ``OUT/logs/build-<UTC time>-<pid>.log``, written by the driver.

One line per event, as it happens: the lock, leftovers removed, records set aside, and per
film what its workers reported (status, reason, retries, warnings, and a failure's whole
traceback, indented), inline and on Ray alike. On an object store the log is written on this
machine and uploaded when the build ends. A log that cannot be written (a full disk) never
stops the build: the disk's own error does that, with its message.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import IO

from muss_builder.core.storage import Storage
from muss_builder.core.text import escape_path, utf8_text
from muss_builder.runtime.film_job import FilmResult


class BuildLog:
    def __init__(self, store: Storage) -> None:
        self.store = store
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        self.rel = f"logs/build-{stamp}-{os.getpid()}.log"
        if store.remote:
            folder = Path(tempfile.mkdtemp(prefix="muss-builder-log-"))
            self.path = folder / self.rel.rsplit("/", 1)[-1]
        else:
            self.path = Path(store.root) / self.rel
        self._fh: IO[str] | None = None

    def __enter__(self) -> BuildLog:
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "a", encoding="utf-8", buffering=1)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def line(self, text: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self._write(f"{stamp} {utf8_text(text)}\n")

    def film(self, result: FilmResult) -> None:
        """What the workers reported about one film."""
        status = result.status + (" (resumed)" if result.resumed else "")
        text = f"film {result.film_id or '-'} {status}: {escape_path(result.path)}"
        if result.reason:
            text += f": {result.reason}"
        if result.attempts > 1:
            text += f" (attempts {result.attempts})"
        self.line(text)
        for note in result.notes:
            self.line(f"  {note}")
        if result.traceback:
            self._write("".join(f"    {row}\n" for row in utf8_text(result.traceback).splitlines()))

    def _write(self, text: str) -> None:
        if self._fh is None:
            return
        try:
            self._fh.write(text)
        except OSError:  # a full disk: the build reports that itself
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None

    def close(self) -> None:
        if self._fh is None:
            return
        with contextlib.suppress(OSError):
            self._fh.close()
        self._fh = None
        if self.store.remote:
            with contextlib.suppress(OSError):
                self.store.put_file(self.path, self.rel)
