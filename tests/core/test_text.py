"""File names kept losslessly in text: escaped names give the exact bytes back."""

from __future__ import annotations

import os

from muss_builder.core.text import escape_path, path_bytes, unescape_path, utf8_text


def test_escaped_names_give_back_the_exact_bytes() -> None:
    for raw in (b"caf\xe9.mp4", b"a\\xe9b.mp4", b"\\\\x\xff\\", "été.mp4".encode(), b"plain"):
        name = os.fsdecode(raw)
        escaped = escape_path(name)
        escaped.encode("utf-8")  # valid UTF-8, whatever the name
        assert path_bytes(escaped) == raw and unescape_path(escaped) == name
    assert escape_path("été.mp4") == "été.mp4"  # a valid name is stored as it is


def test_free_text_is_valid_utf8() -> None:
    quoted = "cannot open " + os.fsdecode(b"caf\xe9.mp4")
    assert utf8_text(quoted) == "cannot open caf\\xe9.mp4"
    assert utf8_text("a\\b") == "a\\b"  # backslashes are kept as they are
