"""The shared pieces every shard reader uses: escaping, bounded JSON, size caps, lazy members,
all-or-nothing extraction."""

from __future__ import annotations

import io
import json
import pickle
import tarfile
import time
from pathlib import Path

import pytest

from muss_builder.shards.extract import safe_extract
from muss_builder.shards.reader import (
    DEFAULT_LIMITS,
    ReaderLimits,
    ShardFormatError,
    ShardProblems,
    iter_samples,
    load_sample_json,
)
from muss_builder.shards.untrusted import (
    UntrustedJSONError,
    load_json,
    parse_size,
    printable,
)

KEY = "0123456789abcdef_00000"


def _tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_printable_escapes_what_a_terminal_would_act_on() -> None:
    assert printable("plain name [/x] ü 字.json") == "plain name [/x] ü 字.json"
    assert printable("a\x1b[31mb\x07c\nd\re\tf") == "a\\x1b[31mb\\x07c\\nd\\re\\tf"
    assert printable("rtl\u202eexe\u2028x\x85") == "rtl\\u202eexe\\u2028x\\x85"
    assert printable("bad\udcffbyte") == "bad\\udcffbyte"  # an undecodable byte of a file name
    assert printable("x" * 50, limit=10) == "x" * 10 + "... (50 characters)"
    assert printable(printable("\x1b")) == "\\x1b"  # escaping twice changes nothing


def test_load_json_bounds_depth_before_parsing() -> None:
    assert load_json(b'{"a": [[1], {"b": "[[[[[[[["}]}', max_depth=3) == {
        "a": [[1], {"b": "[[[[[[[["}]
    }
    with pytest.raises(UntrustedJSONError, match="deeper than 3 levels"):
        load_json(b'{"a": [[[1]]]}', max_depth=3)
    with pytest.raises(UntrustedJSONError, match="deeper than 64 levels"):
        load_json(b"[" * 1_000_000, max_depth=64)  # no RecursionError, at any depth
    # escaped quotes stay inside their string; an unterminated one is json's to report
    assert load_json(b'["\\"[[[[", "\\\\"]', max_depth=1) == ['"[[[[', "\\"]
    with pytest.raises(UntrustedJSONError, match="invalid JSON: Unterminated string"):
        load_json(b'["abc' + b"[" * 1000, max_depth=2)
    with pytest.raises(UntrustedJSONError, match="not UTF-8"):
        load_json(b'"\xff"', max_depth=2)


def test_depth_scan_is_linear_on_hostile_strings() -> None:
    # quotes and backslashes that a backtracking scanner would take quadratic time over
    started = time.perf_counter()
    for data in (b'"\\"' * 300_000, b'["' + b"\\\\" * 1_000_000, b'"a' * 300_000):
        with pytest.raises(UntrustedJSONError):
            load_json(data, max_depth=8)
    assert time.perf_counter() - started < 5


def test_sizes_and_caps() -> None:
    assert parse_size("2GiB") == 2 * 2**30
    assert parse_size("512 MiB") == 512 * 2**20
    assert parse_size("100MB") == 100 * 10**6
    assert parse_size("64k") == 64_000
    assert parse_size("4096") == 4096
    for bad in ("", "lots", "1XB", "5ib"):
        with pytest.raises(ValueError, match="not a size"):
            parse_size(bad)
    limits = DEFAULT_LIMITS.with_caps(["mp4=4GiB", ".json=1k", "*=1MiB"])
    assert (limits.cap("mp4"), limits.cap("json"), limits.cap("ref0.jpg")) == (
        4 * 2**30,
        1000,
        DEFAULT_LIMITS.cap("jpg"),
    )
    assert limits.cap("safetensors") == 2**20
    assert DEFAULT_LIMITS.cap("mp4") == 2 * 2**30  # the defaults are untouched
    with pytest.raises(ValueError, match="EXT=SIZE"):
        DEFAULT_LIMITS.with_caps(["mp4"])


def test_members_stay_on_disk_until_read(tmp_path: Path) -> None:
    shard = _tar(tmp_path / "s.tar", [(f"{KEY}.json", b'{"a": 1}'), (f"{KEY}.mp4", b"v" * 3000)])
    (sample,) = iter_samples(shard, load=("json",))
    assert sample.members == {"json": b'{"a": 1}'}  # only what was asked for is in memory
    mp4 = sample.entries["mp4"]
    assert (mp4.size, mp4.data) == (3000, None)
    assert mp4.read() == b"v" * 3000 and mp4.head(2) == b"vv"
    out = io.BytesIO()
    mp4.copy_to(out)
    assert out.getvalue() == b"v" * 3000
    assert load_sample_json(sample) == {"a": 1}
    (everything,) = iter_samples(shard)  # the default loads every member, as before
    assert everything.members["mp4"] == b"v" * 3000


def test_too_many_members_in_one_sample(tmp_path: Path) -> None:
    members = [(f"{KEY}.ref{i}.jpg", b"\xff\xd8") for i in range(5)]
    shard = _tar(tmp_path / "s.tar", members)
    limits = ReaderLimits(members_per_sample=3)
    with pytest.raises(ShardFormatError, match="more than 3 members in one sample"):
        list(iter_samples(shard, limits))
    problems: list[ShardFormatError] = []
    (sample,) = iter_samples(shard, limits, on_problem=problems.append)
    assert len(sample.entries) == 3 and [p.member for p in problems] == [
        f"{KEY}.ref3.jpg",
        f"{KEY}.ref4.jpg",
    ]


def test_chained_extended_headers_are_refused(tmp_path: Path) -> None:
    # nine pax headers in a row before one member: tarfile would follow them recursively
    info = tarfile.TarInfo("x")
    pax = info._create_pax_generic_header({"comment": "c"}, tarfile.XHDTYPE, "utf-8")
    member = tarfile.TarInfo(f"{KEY}.json")
    member.size = 2
    data = pax * 9 + member.tobuf(tarfile.GNU_FORMAT) + b"{}".ljust(512, b"\0") + b"\0" * 1024
    shard = tmp_path / "s.tar"
    shard.write_bytes(data)
    with pytest.raises(ShardFormatError, match="more than 8 chained extended headers"):
        list(iter_samples(shard))


def test_problems_pickle_and_list_every_member(tmp_path: Path) -> None:
    error = ShardProblems(
        [ShardFormatError("s.tar", "a\x1b.json", "bad"), ShardFormatError("s.tar", "b", "worse")]
    )
    again = pickle.loads(pickle.dumps(error))  # Ray ships exceptions between processes
    assert str(again) == str(error) == "s.tar: member 'a\\x1b.json': bad\ns.tar: member 'b': worse"
    assert again.member == "a\x1b.json" and len(again.problems) == 2


def test_extraction_that_fails_midway_leaves_nothing(tmp_path: Path) -> None:
    good = [(f"{KEY}.json", json.dumps({"k": 1}).encode()), (f"{KEY}.mp4", b"m" * 5000)]
    shard = _tar(tmp_path / "s.tar", [*good, ("k2.json", b"{}"), ("k2.mp4", b"x" * 4000)])
    with tarfile.open(shard) as tar:
        cut = tar.getmember("k2.mp4").offset_data + 100
    shard.write_bytes(shard.read_bytes()[:cut])  # k2.mp4 cut short: found after k1 is written
    dest = tmp_path / "a" / "b" / "dest"
    with pytest.raises(ShardFormatError, match=r"'k2\.mp4': truncated member data"):
        safe_extract(shard, dest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.tar"]  # not a/ or a/b/ either
    whole = _tar(tmp_path / "w.tar", good)
    written = safe_extract(whole, dest)
    assert sorted(p.name for p in written) == [f"{KEY}.json", f"{KEY}.mp4"]
    assert (dest / f"{KEY}.mp4").read_bytes() == b"m" * 5000
    assert sorted(p.name for p in dest.parent.iterdir()) == ["dest"]  # no temporary folder
