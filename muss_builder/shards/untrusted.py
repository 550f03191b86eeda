"""Helpers for data that came from a shard or an output folder someone else made.

``printable`` is what every name or value goes through before it reaches a terminal (an ESC
in a member name must not recolour the screen or forge an output line); ``load_json`` bounds
the size and the nesting depth of a document before Python's recursive parser sees it;
``parse_size`` reads the size limits users give on the command line.
"""

from __future__ import annotations

import json
import re
from typing import Any

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_BINARY_UNITS = {"k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
# a quote or a bracket; a string is then skipped whole (possessive: linear even when it is
# unterminated, which json.loads reports itself)
_JSON_TOKEN = re.compile(rb'["\[\]{}]')
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.DOTALL)


class UntrustedJSONError(ValueError):
    """A document that is not JSON, or JSON too deep to parse safely; the message says which."""


def _escape(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def printable(text: object, limit: int | None = None) -> str:
    """``text`` with every character a terminal could act on escaped as ``\\xNN``/``\\uNNNN``.

    That is control characters (ESC, BEL, newline...), format characters (bidi overrides),
    line separators and the lone surrogates that stand for undecodable bytes in file names:
    what ``str.isprintable`` calls non-printable. ``limit`` shortens long text (a 5,000
    character member name) and says how long it was.
    """
    text = str(text)
    shown = text if limit is None or len(text) <= limit else text[:limit]
    if not shown.isprintable():
        shown = "".join(ch if ch.isprintable() else _escape(ch) for ch in shown)
    if limit is not None and len(text) > limit:
        shown += f"... ({len(text)} characters)"
    return shown


def quoted(name: str, limit: int = 80) -> str:
    """A name in single quotes, escaped and shortened, for messages (``member 'a.mp4'``)."""
    return f"'{printable(name, limit)}'"


def json_depth_exceeds(data: bytes, max_depth: int) -> bool:
    """True if ``data`` nests arrays/objects deeper than ``max_depth`` (strings are skipped)."""
    depth, pos = 0, 0
    while (token := _JSON_TOKEN.search(data, pos)) is not None:
        char = token.group()
        if char == b'"':
            string = _JSON_STRING.match(data, token.start())
            if string is None:  # unterminated: everything after it is inside the string
                return False
            pos = string.end()
            continue
        depth += 1 if char in b"[{" else -1
        if depth > max_depth:
            return True
        pos = token.end()
    return False


def load_json(data: bytes, max_depth: int) -> Any:
    """Parse UTF-8 JSON bytes; UntrustedJSONError (never RecursionError) when it cannot be."""
    if json_depth_exceeds(data, max_depth):
        raise UntrustedJSONError(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        reason = f"invalid JSON: not UTF-8 ({exc.reason} at byte {exc.start})"
        raise UntrustedJSONError(reason) from exc
    except json.JSONDecodeError as exc:
        raise UntrustedJSONError(f"invalid JSON: {exc}") from exc


def parse_size(text: str) -> int:
    """Bytes of ``2GiB``, ``512MiB``, ``100MB``, ``64k`` or ``1000``; ValueError otherwise."""
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(f"not a size: {text!r} (examples: 2GiB, 512MiB, 100MB, 4096)")
    number, unit = float(match[1]), match[2].lower().rstrip("b")
    if unit.endswith("i"):
        scale = _BINARY_UNITS.get(unit[:-1])
        if scale is None:
            raise ValueError(f"not a size: {text!r} (examples: 2GiB, 512MiB, 100MB, 4096)")
    else:
        scale = _UNITS[unit]
    return int(number * scale)
