"""Untrusted shards stay harmless: hostile tars built here with ``tarfile`` go through the real
``inspect`` and ``validate`` commands (and, for memory, through a real subprocess)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from muss_builder.cli.main import app
from muss_builder.runtime.build import BuildSummary
from muss_builder.shards.reader import iter_samples

runner = CliRunner()
FILM = "0123456789abcdef"
KEY = f"{FILM}_00000"


def _tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    # GNU format takes any name length; surrogateescape writes undecodable bytes as they are
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT, errors="surrogateescape") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _pax_tar(path: Path, members: list[tuple[str, bytes]]) -> Path:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.pax_headers = {"path": name}  # a NUL survives only in a pax record
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _sparse_tar(
    path: Path, members: list[tuple[str, bytes | int]], kind: bytes = tarfile.REGTYPE
) -> Path:
    """A tar whose ``int`` members are that many zero bytes left as a hole (512 MB of member
    takes a few KB of disk); the last member is of type ``kind``."""
    with open(path, "wb") as fh:
        for n, (name, data) in enumerate(members):
            info = tarfile.TarInfo(name)
            info.size = data if isinstance(data, int) else len(data)
            info.type = kind if n == len(members) - 1 else tarfile.REGTYPE
            fh.write(info.tobuf(format=tarfile.GNU_FORMAT))
            padded = -(-info.size // 512) * 512
            if isinstance(data, int):
                fh.seek(padded, io.SEEK_CUR)
            else:
                fh.write(data + b"\0" * (padded - len(data)))
        fh.write(b"\0" * 1024)  # the end-of-archive marker
    return path


def _dataset_with(tmp_path: Path, shard: Path) -> Path:
    """A folder that validate reads: the shard under shards/, nothing else."""
    (tmp_path / "out" / "shards").mkdir(parents=True)
    (tmp_path / "out" / "films").mkdir()
    shard.rename(tmp_path / "out" / "shards" / shard.name)
    return tmp_path / "out"


def _good(key: str = KEY) -> list[tuple[str, bytes]]:
    return [(f"{key}.json", json.dumps({"key": key}).encode()), (f"{key}.mp4", b"m" * 700)]


# names that would recolour the terminal, ring its bell, or print a line of their own
NASTY = {
    "esc": f"{KEY[:-1]}\x1b[2J\x1b[31m.json",
    "bel": f"{KEY}\x07.json",
    "newline": f"{KEY}.json\nok: {FILM} (1 shards, 1 samples)",
    "bidi": f"{KEY}\u202e.json",
}


@pytest.mark.parametrize("case", sorted(NASTY))
def test_control_characters_in_names_never_reach_the_terminal(tmp_path: Path, case: str) -> None:
    shard = _tar(tmp_path / f"{FILM}-00000.tar", [*_good(), (NASTY[case], b"{}")])
    result = runner.invoke(app, ["inspect", str(shard)])
    assert result.exit_code == 2
    assert "control or format character" in result.stderr
    result_validate = runner.invoke(app, ["validate", str(_dataset_with(tmp_path, shard))])
    assert result_validate.exit_code == 1
    for output in (result.output, result_validate.output):
        assert not any(ch in output for ch in "\x1b\x07\u202e")
        assert not any(line.startswith("ok:") for line in output.splitlines())
    assert "control or format character" in result_validate.stdout


def test_a_shard_file_name_with_escapes_is_printed_escaped(tmp_path: Path) -> None:
    shard = _tar(tmp_path / "evil\x1b[31m.tar", _good())
    result = runner.invoke(app, ["validate", str(_dataset_with(tmp_path, shard))])
    assert result.exit_code == 1
    assert "shards/evil\\x1b[31m.tar: name is not" in result.stdout
    assert "\x1b" not in result.output


def test_long_names_are_refused_and_extract_writes_nothing(tmp_path: Path) -> None:
    # today: 2 files written, then a traceback (file name too long)
    long300, long5000 = f"{KEY}.{'x' * 300}", f"{KEY}.{'y' * 5000}"
    shard = _tar(tmp_path / "s.tar", [*_good(), (long300, b"a"), (long5000, b"b")])
    dest = tmp_path / "new" / "dest"
    result = runner.invoke(app, ["inspect", str(shard), "--extract", str(dest)])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.stderr.splitlines()
    assert len(lines) == 2  # every problem, each on its own line
    assert "(323 characters)" in lines[0] and "name of 323 bytes (at most 255)" in lines[0]
    assert "(5023 characters)" in lines[1] and all(len(line) < 300 for line in lines)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.tar"]  # not even new/


def test_non_utf8_nul_and_huge_extended_headers_are_refused(tmp_path: Path) -> None:
    bad_bytes = _tar(tmp_path / "a.tar", [*_good(), (f"{KEY}.\udcff.json", b"{}")])
    nul = _pax_tar(tmp_path / "b.tar", [*_good(), (f"{KEY}.a\0b.json", b"{}")])
    # a GNU long-name header declaring 200 MB: tarfile would read it whole into memory
    header = _sparse_tar(
        tmp_path / "c.tar", [*_good(), ("././@LongLink", 200 * 2**20)], tarfile.GNUTYPE_LONGNAME
    )
    expected = {
        bad_bytes: "not valid UTF-8",
        nul: "NUL character",
        header: "extended header of 209,715,200 bytes",
    }
    for shard, reason in expected.items():
        result = runner.invoke(app, ["inspect", str(shard)])
        assert result.exit_code == 2, (shard.name, result.output)
        assert reason.replace(",", "") in result.stderr.replace(",", ""), result.stderr


def test_member_size_caps_default_and_configured(tmp_path: Path) -> None:
    shard = _sparse_tar(tmp_path / "s.tar", [(f"{KEY}.json", 20 * 2**20), (f"{KEY}.mp4", b"m")])
    result = runner.invoke(app, ["inspect", str(shard)])
    assert result.exit_code == 2
    assert f"member '{KEY}.json': 20,971,520 bytes, over the 16,777,216-byte limit" in result.stderr
    small = _tar(tmp_path / "t.tar", _good())
    assert runner.invoke(app, ["inspect", str(small)]).exit_code == 0
    capped = runner.invoke(app, ["inspect", str(small), "--max-member-size", "mp4=512"])
    assert capped.exit_code == 2
    assert "700 bytes, over the 512-byte limit" in capped.stderr
    wrong = runner.invoke(app, ["inspect", str(small), "--max-member-size", "mp4"])
    assert wrong.exit_code == 2 and "EXT=SIZE" in wrong.output


def test_deeply_nested_json_is_a_clear_problem(tmp_path: Path) -> None:
    # today: RecursionError, no report
    deep = b"[" * 100_000 + b"]" * 100_000
    shard = _tar(tmp_path / f"{FILM}-00000.tar", [(f"{KEY}.json", deep), (f"{KEY}.mp4", b"m")])
    result = runner.invoke(app, ["inspect", str(shard)])
    assert result.exit_code == 2
    assert f"member '{KEY}.json': JSON nested deeper than 64 levels" in result.stderr
    validated = runner.invoke(app, ["validate", str(_dataset_with(tmp_path, shard))])
    assert validated.exit_code == 1, validated.output
    assert f"shards/{FILM}-00000.tar: member '{KEY}.json': JSON nested deeper" in validated.stdout


def test_rich_markup_in_a_json_value_is_printed_as_text(tmp_path: Path) -> None:
    # today: rich.errors.MarkupError on "[/x]"
    doc = {"key": KEY, "tracks": ["[/x]"], "subjects": ["[bold]S1", ":smile:"], "n_shots": 1}
    shard = _tar(tmp_path / "s.tar", [(f"{KEY}.json", json.dumps(doc).encode())])
    result = runner.invoke(app, ["inspect", str(shard)])
    assert result.exit_code == 0, result.output
    (line,) = [ln for ln in result.stdout.splitlines() if ln.startswith(KEY)]
    assert "[/x]" in line and "[bold]S1, :smile:" in line


def _peak_rss_mib(args: list[str]) -> tuple[int, float, str]:
    """Run ``muss-builder ARGS`` in a fresh child; its exit code and peak RSS (its own and its
    children's, e.g. ffprobe) from RUSAGE_CHILDREN of a wrapper that ran nothing else."""
    probe = (
        "import json, resource, subprocess, sys\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "print(json.dumps([p.returncode, kb, p.stdout[-4000:] + p.stderr[-2000:]]))\n"
    )
    cli = [sys.executable, "-m", "muss_builder.cli.main", *args]
    out = subprocess.run([sys.executable, "-c", probe, *cli], capture_output=True, text=True)
    rc, kb, text = json.loads(out.stdout)
    return rc, kb / 1024, text


def test_a_512_mb_member_keeps_inspect_and_validate_flat(
    built_dataset: BuildSummary, tmp_path: Path
) -> None:
    # today both commands hold the member in memory (1.2 GB peak); the clip and the JSON are
    # a real sample's, so validate also probes the clip (in place, with ffprobe)
    source = sorted((built_dataset.out / "shards").glob("*.tar"))[0]
    sample = next(iter_samples(source))
    key, doc = sample.key, sample.members["json"]
    small = _sparse_tar(tmp_path / "small.tar", [(f"{key}.json", doc), (f"{key}.mp4", 4096)])
    big = _sparse_tar(tmp_path / source.name, [(f"{key}.json", doc), (f"{key}.mp4", 512 * 2**20)])
    assert big.stat().st_blocks * 512 < 2**20  # sparse: the test costs no disk
    rc, baseline, text = _peak_rss_mib(["inspect", str(small)])
    assert rc == 0, text
    rc, inspect_peak, text = _peak_rss_mib(["inspect", str(big)])
    assert rc == 0 and "1 samples" in text, text
    rc, validate_peak, text = _peak_rss_mib(["validate", str(_dataset_with(tmp_path, big))])
    assert rc == 1 and f"sample {key}.mp4: unreadable" in text, text
    assert inspect_peak < baseline + 100, (baseline, inspect_peak)
    assert validate_peak < baseline + 100, (baseline, validate_peak)
