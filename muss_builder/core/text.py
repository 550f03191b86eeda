"""File names that are not valid UTF-8, stored losslessly in tables, records and stats.

On Linux a file name is bytes; Python hands an undecodable byte to us as a lone surrogate
(``b"caf\\xe9.mp4"`` -> ``"caf\\udce9.mp4"``), which Arrow, JSON readers and terminals refuse.
Outputs therefore hold ``escape_path(path)``: the name's bytes decoded as UTF-8, a backslash
doubled and every byte that is not UTF-8 written ``\\xNN`` (``"caf\\\\xe9.mp4"``).
``path_bytes`` turns it back into the exact bytes (``os.fsdecode`` of them opens the file).
A valid UTF-8 name without a backslash is stored unchanged.
"""

from __future__ import annotations

import os
import re

_TOKEN = re.compile(r"(\\\\|\\x[0-9a-fA-F]{2})")


def _raw_bytes(text: str) -> bytes:
    """The bytes the OS sees for ``text``, also for a stray surrogate not from a file name."""
    try:
        return os.fsencode(text)
    except UnicodeEncodeError:  # a surrogate outside surrogateescape's range
        return text.encode("utf-8", "surrogatepass")


def escape_path(path: str) -> str:
    """A valid-UTF-8 string that names ``path`` exactly (``path_bytes`` reverses it)."""
    return _raw_bytes(path).replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace")


def path_bytes(escaped: str) -> bytes:
    """The file name bytes of an ``escape_path`` string."""
    out = bytearray()
    for token in _TOKEN.split(escaped):
        if token == "\\\\":
            out += b"\\"
        elif _TOKEN.fullmatch(token):
            out.append(int(token[2:], 16))
        else:
            out += token.encode("utf-8")
    return bytes(out)


def unescape_path(escaped: str) -> str:
    """The path as Python names it (``open`` and ``os`` functions accept it)."""
    return os.fsdecode(path_bytes(escaped))


def utf8_text(text: str) -> str:
    """Free text (a reason, a traceback) that may quote a file name: valid UTF-8, not
    reversible (backslashes are kept as they are)."""
    return _raw_bytes(text).decode("utf-8", "backslashreplace")
