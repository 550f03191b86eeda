"""Reading shards: a round trip through the writer, and every kind of unsafe tar refused."""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from muss_builder.shards.extract import ExtractError, safe_extract
from muss_builder.shards.reader import (
    ShardFormatError,
    ShardSample,
    iter_samples,
    load_sample_json,
)
from muss_builder.shards.writer import FilmShardWriter

FILM = "0123456789abcdef"


def _samples(n: int) -> dict[str, dict[str, bytes]]:
    return {
        f"{FILM}_{i:05d}": {
            "json": json.dumps({"key": f"{FILM}_{i:05d}", "i": i}).encode(),
            "mp4": bytes([i]) * (700 + i),  # not a real clip: the reader never decodes
            "ref0.jpg": b"\xff\xd8fake" * (i + 1),
        }
        for i in range(n)
    }


def _entry(
    name: str, data: bytes = b"{}", kind: bytes = tarfile.REGTYPE, link: str = ""
) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data


def _write_tar(path: Path, entries: list[tuple[tarfile.TarInfo, bytes]]) -> Path:
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


def _good_entries() -> list[tuple[tarfile.TarInfo, bytes]]:
    return [_entry("a.json"), _entry("a.mp4", b"x" * 600), _entry("b.json")]


# (tar entries, the member the error must name, words of the reason)
MALICIOUS: dict[str, tuple[list[tuple[tarfile.TarInfo, bytes]], str, str]] = {
    "absolute": ([_entry("/tmp/evil.json")], "/tmp/evil.json", "absolute path"),
    "dotdot": ([_entry("a.json"), _entry("../x.json")], "../x.json", "escapes"),
    "dotdot_inside": ([_entry("x/../y.json")], "x/../y.json", "escapes"),
    "subfolder": ([_entry("d/a.json")], "d/a.json", "sub-folder"),
    "symlink": (
        [_entry("a.json"), _entry("a.mp4", kind=tarfile.SYMTYPE, link="/etc/passwd")],
        "a.mp4",
        "symlink",
    ),
    "hardlink": (
        [_entry("a.json"), _entry("a.mp4", kind=tarfile.LNKTYPE, link="a.json")],
        "a.mp4",
        "hardlink",
    ),
    "directory": ([_entry("a", kind=tarfile.DIRTYPE)], "a", "directory"),
    "device": ([_entry("a.json", kind=tarfile.CHRTYPE)], "a.json", "device"),
    "no_extension": ([_entry("a.json"), _entry("b")], "b", "no extension"),
    "empty_key": ([_entry(".json")], ".json", "empty sample key"),
    "non_contiguous": (
        [_entry("a.json"), _entry("b.json"), _entry("a.mp4")],
        "a.mp4",
        "contiguous",
    ),
    "duplicate": ([_entry("a.json"), _entry("a.json")], "a.json", "duplicate"),
}


def _truncate(cut: Callable[[int], int]) -> Callable[[Path], Path]:
    def make(path: Path) -> Path:
        data = _write_tar(path, _good_entries()).read_bytes()
        path.write_bytes(data[: cut(len(data))])
        return path

    return make


# _good_entries() lays out as: a.json header @0, data @512; a.mp4 header @1024, data @1536
# (2 blocks); b.json header @2560, data @3072; end-of-archive marker @3584 (two zero blocks).
# Cuts inside member data (the member itself is named: its header says more bytes than the
# file holds), inside the header after a member (which tarfile itself takes for the end of the
# archive), right before the marker and in its middle.
TRUNCATED: dict[str, tuple[Callable[[Path], Path], str]] = {
    "in_data": (_truncate(lambda n: 1536 + 100), "a.mp4"),
    "in_header": (_truncate(lambda n: 2560 + 100), "a.mp4"),
    "no_end_marker": (_truncate(lambda n: 3584), "b.json"),
    "half_end_marker": (_truncate(lambda n: 3584 + 512), "b.json"),
}


@pytest.fixture
def shard_dir(tmp_path: Path) -> Path:
    return tmp_path / "shards"


def test_round_trip_through_the_writer(shard_dir: Path) -> None:
    written = _samples(5)
    writer = FilmShardWriter(shard_dir, FILM, max_bytes=4000)  # small cap: several shards
    for key, members in written.items():
        writer.write(key, members)
    infos = writer.close()
    assert len(infos) > 1
    read: dict[str, dict[str, bytes]] = {}
    for info in infos:
        samples = list(iter_samples(shard_dir / info.name))
        assert [s.key for s in samples] == info.keys
        read.update({s.key: s.members for s in samples})
    assert read == written
    first = next(iter_samples(shard_dir / infos[0].name))
    assert load_sample_json(first) == {"key": f"{FILM}_00000", "i": 0}


def test_load_sample_json_refuses_missing_and_invalid(tmp_path: Path) -> None:
    shard = str(tmp_path / "s.tar")
    with pytest.raises(ShardFormatError, match=r"member 'k\.json': missing"):
        load_sample_json(ShardSample("k", {"mp4": b""}, shard))
    with pytest.raises(ShardFormatError, match=r"member 'k\.json': invalid JSON"):
        load_sample_json(ShardSample("k", {"json": b"{nope"}, shard))
    with pytest.raises(ShardFormatError, match="not an object"):
        load_sample_json(ShardSample("k", {"json": b"[1, 2]"}, shard))


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_malicious_tar_is_refused(tmp_path: Path, case: str) -> None:
    entries, member, reason = MALICIOUS[case]
    shard = _write_tar(tmp_path / "bad.tar", entries)
    with pytest.raises(ShardFormatError) as caught:
        list(iter_samples(shard))
    message = str(caught.value)
    assert message.startswith(f"{shard}: member {member!r}: ")
    assert reason in message
    assert caught.value.member == member


@pytest.mark.parametrize("case", sorted(MALICIOUS))
def test_safe_extract_refuses_malicious_tar_and_writes_nothing(tmp_path: Path, case: str) -> None:
    entries, member, _ = MALICIOUS[case]
    shard = _write_tar(tmp_path / "bad.tar", entries)
    dest = tmp_path / "out"
    with pytest.raises(ShardFormatError, match=re.escape(repr(member))):
        safe_extract(shard, dest)
    assert not dest.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.tar"]


@pytest.mark.parametrize("case", sorted(TRUNCATED))
def test_truncated_tar_is_refused_naming_the_member(tmp_path: Path, case: str) -> None:
    make, last_good = TRUNCATED[case]
    shard = make(tmp_path / "cut.tar")
    with pytest.raises(ShardFormatError, match=re.escape(f"member {last_good!r}")) as caught:
        list(iter_samples(shard))
    assert "truncated" in str(caught.value)
    dest = tmp_path / "out"
    with pytest.raises(ShardFormatError):
        safe_extract(shard, dest)
    assert not dest.exists()


def test_not_a_tar_is_refused(tmp_path: Path) -> None:
    shard = tmp_path / "junk.tar"
    shard.write_bytes(b"this is not a tar" * 100)
    with pytest.raises(ShardFormatError, match="before the first member"):
        list(iter_samples(shard))


def test_safe_extract_writes_members_and_filters_keys(shard_dir: Path, tmp_path: Path) -> None:
    written = _samples(3)
    writer = FilmShardWriter(shard_dir, FILM, max_bytes=10**9)
    for key, members in written.items():
        writer.write(key, members)
    (info,) = writer.close()
    shard = shard_dir / info.name

    paths = safe_extract(shard, tmp_path / "all")
    assert sorted(p.name for p in paths) == sorted(
        f"{key}.{ext}" for key, members in written.items() for ext in members
    )
    for path in paths:
        key, _, ext = path.name.partition(".")
        assert path.read_bytes() == written[key][ext]

    one = f"{FILM}_00001"
    paths = safe_extract(shard, tmp_path / "one", keys={one})
    assert sorted(p.name for p in paths) == [f"{one}.json", f"{one}.mp4", f"{one}.ref0.jpg"]
    with pytest.raises(KeyError, match="no sample"):
        safe_extract(shard, tmp_path / "none", keys={f"{FILM}_00009"})
    assert not (tmp_path / "none").exists()


def test_safe_extract_refuses_a_folder_that_is_not_empty(shard_dir: Path, tmp_path: Path) -> None:
    # e.g. one holding a symlink named like a member: nothing is written through it (or at all)
    writer = FilmShardWriter(shard_dir, FILM, max_bytes=10**9)
    key = f"{FILM}_00000"
    writer.write(key, _samples(1)[key])
    (info,) = writer.close()
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / f"{key}.json").symlink_to(outside)
    with pytest.raises(ExtractError, match="exists and is not empty"):
        safe_extract(shard_dir / info.name, dest)
    assert outside.read_text() == "keep me"
    assert sorted(p.name for p in dest.iterdir()) == [f"{key}.json"]
    link = tmp_path / "link"
    link.symlink_to(outside)
    with pytest.raises(ExtractError, match="not a folder"):
        safe_extract(shard_dir / info.name, link)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert len(safe_extract(shard_dir / info.name, empty)) == 3  # an empty folder is fine
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "dest",
        "empty",
        "link",
        "outside.txt",
        "shards",
    ]
