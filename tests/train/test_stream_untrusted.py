"""The trainer's shard stream uses the checking reader: a hostile member is refused with its
name and reason (``raise_error``) or skipped alone (``skip_and_log``), and size caps apply."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from muss_builder.shards.reader import DEFAULT_LIMITS, ShardFormatError, ShardSample
from muss_builder.train.stream import ShardStream, skip_and_log

FILM = "0123456789abcdef"


class KeyStream(ShardStream):
    """The real stream machinery with a decode that only reads the key."""

    def decode(self, sample: ShardSample) -> str:
        return sample.key


def _shard(path: Path) -> Path:
    members = [
        (f"{FILM}_00000.json", b"{}"),
        (f"{FILM}_00000\x1b[2J.json", b"{}"),  # would clear a terminal that logs it raw
        (f"{FILM}_00001.json", b"{}"),
        (f"{FILM}_00001.mp4", b"m" * 2000),
    ]
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_hostile_member_raises_or_is_skipped_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    shard = _shard(tmp_path / f"{FILM}-00000.tar")
    with pytest.raises(ShardFormatError, match=r"control or format character U\+001B"):
        list(KeyStream([shard], shuffle_buffer=0))
    skipping = KeyStream([shard], shuffle_buffer=0, on_error=skip_and_log)
    assert list(skipping) == [f"{FILM}_00000", f"{FILM}_00001"]
    assert "\\x1b[2J" in caplog.text and "\x1b" not in caplog.text
    capped = KeyStream(
        [shard],
        shuffle_buffer=0,
        on_error=skip_and_log,
        limits=DEFAULT_LIMITS.with_caps(["mp4=1k"]),
    )
    assert list(capped) == [f"{FILM}_00000", f"{FILM}_00001"]  # the sample, without its mp4
    assert "2,000 bytes, over the 1,000-byte limit" in caplog.text
