"""``muss-builder inspect`` and ``muss-builder validate`` through the real typer app."""

from __future__ import annotations

import json
import shutil
import tarfile
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from muss_builder.cli.main import app
from muss_builder.runtime.build import BuildSummary
from muss_builder.shards.reader import iter_samples

runner = CliRunner()


@pytest.fixture(scope="module")
def shard(built_dataset: BuildSummary) -> Path:
    return sorted((built_dataset.out / "shards").glob("*.tar"))[0]


@pytest.fixture(scope="module")
def keys(shard: Path) -> list[str]:
    return [s.key for s in iter_samples(shard)]


def test_inspect_prints_the_summary(shard: Path, keys: list[str]) -> None:
    result = runner.invoke(app, ["inspect", str(shard)])
    assert result.exit_code == 0, result.output
    assert f"shard {shard}" in result.stdout
    for key in keys:
        assert key in result.stdout
    assert f"{len(keys)} samples" in result.stdout
    assert "window" in result.stdout and "scene" in result.stdout  # each sample's window kind


def test_inspect_sample_prints_its_metadata(shard: Path, keys: list[str]) -> None:
    result = runner.invoke(app, ["inspect", str(shard), "--sample", keys[-1]])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["key"] == keys[-1]
    assert doc["n_shots"] == len(doc["shots"])


def test_inspect_unknown_sample_exits_1(shard: Path) -> None:
    result = runner.invoke(app, ["inspect", str(shard), "--sample", "nope"])
    assert result.exit_code == 1
    assert "no sample nope" in result.stderr


def test_inspect_extract_writes_files(shard: Path, keys: list[str], tmp_path: Path) -> None:
    dest = tmp_path / "extracted"
    result = runner.invoke(app, ["inspect", str(shard), "--extract", str(dest)])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in dest.iterdir())
    assert names == sorted(f"{k}.{ext}" for k in keys for ext in ("json", "mp4", "refs.jpg"))
    assert f"{len(names)} files written to {dest}" in result.stdout


def test_inspect_contact_sheet(shard: Path, tmp_path: Path) -> None:
    png = tmp_path / "sheet.png"
    result = runner.invoke(app, ["inspect", str(shard), "--contact-sheet", str(png)])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(png)
    with Image.open(png) as image:
        assert image.format == "PNG"
        assert image.width > 0 and image.height > 0


def test_inspect_refuses_an_unsafe_shard_with_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w") as tar:
        link = tarfile.TarInfo("k.json")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    dest = tmp_path / "dest"
    for extra in ([], ["--extract", str(dest)]):
        result = runner.invoke(app, ["inspect", str(bad), *extra])
        assert result.exit_code == 2
        assert result.stderr.startswith(f"error: {bad}: member 'k.json': not a regular file")
    assert not dest.exists()


def test_validate_ok(built_dataset: BuildSummary) -> None:
    result = runner.invoke(app, ["validate", str(built_dataset.out)])
    assert result.exit_code == 0, result.output
    n_shards = len(list((built_dataset.out / "shards").glob("*.tar")))
    assert result.stdout.strip() == (
        f"ok: {built_dataset.out} ({n_shards} shards, {built_dataset.n_samples} samples)"
    )


def test_validate_reports_problems_and_exits_1(built_dataset: BuildSummary, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(built_dataset.out, tmp_path / "dataset"))
    (copy / "index.parquet").unlink()
    (copy / "shards" / ".x.tar.partial-1").write_bytes(b"")
    result = runner.invoke(app, ["validate", str(copy)])
    assert result.exit_code == 1
    lines = result.stdout.strip().splitlines()
    assert lines == [
        "shards/.x.tar.partial-1: leftover partial shard (an interrupted writer; "
        "rerun the build or delete it)",
        "index.parquet: missing",
        "2 problems",
    ]
