"""Render a page in headless Chromium: a screenshot and the page's console messages.

Used by the report's browser test and to make the README's screenshot. Chromium's own
``--screenshot`` mode needs no driver library; with ``--enable-logging=stderr`` it
prints every console message (and uncaught script error) of the page as an
``INFO:CONSOLE`` line on stderr, which is how messages are collected here. The flags keep
the browser off the network (none is reachable on build machines) and out of any profile.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# [pid:tid:date/time:INFO:CONSOLE:12] "message", source: file:///x.html (12)
# (older builds write CONSOLE(12) instead of CONSOLE:12)
_CONSOLE = re.compile(r':CONSOLE[:(]\d+\)?\] "(?P<message>.*)", source: (?P<source>.*)$')
_QUIET_FLAGS = (
    "--headless",
    "--no-sandbox",  # containers run as root, where the sandbox refuses to start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
)


class BrowserError(RuntimeError):
    """Chromium is missing, failed, or wrote no screenshot; the message says which."""


@dataclass
class BrowserRun:
    """What one render produced."""

    screenshot: Path
    console: list[str]  # "message (source)" for every console message of the page
    stderr_tail: str


def find_chromium() -> str | None:
    """The path of a Chromium (or Chrome) binary on PATH, or None."""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def console_messages(stderr: str) -> list[str]:
    """The page's console messages in Chromium's stderr log."""
    found = []
    for line in stderr.splitlines():
        match = _CONSOLE.search(line)
        if match:
            found.append(f"{match['message']} ({match['source']})")
    return found


def render(
    page: Path,
    screenshot: Path,
    size: tuple[int, int] = (1280, 2000),
    chromium: str | None = None,
    timeout: float = 60.0,
) -> BrowserRun:
    """Load ``page`` (a local file) at ``size`` and save a PNG of the viewport."""
    binary = chromium or find_chromium()
    if binary is None:
        raise BrowserError("no chromium on PATH (scripts/ensure_chromium.sh installs it)")
    screenshot = screenshot.absolute()
    screenshot.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="muss-chromium-") as profile:
        args = [
            binary,
            *_QUIET_FLAGS,
            f"--user-data-dir={profile}",  # a fresh profile: nothing read from or left behind
            "--enable-logging=stderr",
            "--log-level=0",  # INFO and up: console messages are INFO lines
            f"--window-size={size[0]},{size[1]}",
            f"--screenshot={screenshot}",
            page.absolute().as_uri(),
        ]
        try:
            done = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise BrowserError(f"chromium did not finish within {timeout:.0f} s") from exc
    tail = "\n".join(done.stderr.splitlines()[-20:])
    if done.returncode != 0 or not screenshot.is_file():
        raise BrowserError(f"chromium exited {done.returncode} without a screenshot:\n{tail}")
    return BrowserRun(screenshot, console_messages(done.stderr), tail)
