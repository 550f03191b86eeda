"""Ctrl-C that stops a build even when the interrupt lands in a finaliser.

Python raises ``KeyboardInterrupt`` in whatever frame is running when it handles SIGINT. When
that frame is a finaliser (``subprocess.Popen.__del__``, a generator closed by the garbage
collector; a build makes and drops hundreds of ffmpeg processes), the exception is printed as
"Exception ignored" and dropped, and the build runs on to its end: seen once in CI, a SIGINT
sent as the first of three films finished gave exit 0 with all three built. While
``latched_interrupts`` is active the request is also remembered, and the long loops raise it
again at their next step (``stop_if_interrupted``): the build's runners at every stage call or
film, ``pack`` at every sample.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

_requested = False


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    global _requested
    _requested = True
    raise KeyboardInterrupt


@contextmanager
def latched_interrupts() -> Iterator[None]:
    """Remember Ctrl-C for ``stop_if_interrupted`` while the block runs. Only in the main
    thread, and only over Python's own handler: a handler someone else installed is left
    alone."""
    global _requested
    owned = (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    )
    if not owned:
        yield
        return
    _requested = False
    signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        _requested = False


def stop_if_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` when Ctrl-C came during ``latched_interrupts``, even if the
    first one was swallowed."""
    if _requested:
        raise KeyboardInterrupt
