"""Find ffmpeg/ffprobe and run them with argument lists (never through a shell)."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Sequence
from functools import cache

# ffmpeg prefixes log lines with "[demuxer @ 0x55d1...]": the address is noise in a reason.
_LOG_PREFIX = re.compile(r"\[[^\]]* @ 0x[0-9a-f]+\]\s*")


class MediaError(RuntimeError):
    """A film could not be probed, decoded or encoded; the message is shown to users."""


@cache
def binary(name: str) -> str:
    """Absolute path of ``ffmpeg`` or ``ffprobe``; a clear error when missing."""
    path = shutil.which(name)
    if path is None:
        raise MediaError(
            f"{name} not found on PATH: install FFmpeg (e.g. `apt-get install ffmpeg`) "
            "or run `make ffmpeg`"
        )
    return path


def last_lines(text: str | bytes, n: int = 3) -> str:
    """The last non-empty lines of ffmpeg's stderr, the part that says what went wrong."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    lines = [_LOG_PREFIX.sub("", line).strip() for line in text.splitlines() if line.strip()]
    return " | ".join(lines[-n:]) if lines else "no message"


def run(args: Sequence[str], *, what: str, timeout: float | None = None) -> bytes:
    """Run an ffmpeg-family command; return stdout or raise MediaError naming ``what``."""
    try:
        proc = subprocess.run(list(args), capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise MediaError(f"{what}: timed out after {timeout:.0f}s") from exc
    if proc.returncode != 0:
        raise MediaError(f"{what}: {last_lines(proc.stderr)}")
    return proc.stdout
