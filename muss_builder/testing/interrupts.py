"""A Ctrl-C that Python drops: for tests of the latch in ``core/interrupts.py``."""

from __future__ import annotations

import os
import signal


class SignalsInItsFinaliser:
    """Sends this process SIGINT from ``__del__``: the handler runs inside the finaliser, and
    the KeyboardInterrupt it raises there is printed as "Exception ignored" and dropped."""

    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        for _ in range(10_000):  # bytecode for the handler to run in, still inside __del__
            pass


def swallowed_ctrl_c() -> None:
    """Ctrl-C, raised inside a finaliser (as it was by chance in CI): without the latch the
    caller runs on as if nothing had happened."""
    SignalsInItsFinaliser()  # made and collected at once (reference counting)
