"""The output folder across builds: nothing a finished build wrote is lost, unreadable records
and killed runs' leftovers are dealt with, files follow the umask, any file name is stored."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from muss_builder.config import PipelineConfig
from muss_builder.core.text import path_bytes
from muss_builder.runtime.build import BuildStopped, Progress, build
from muss_builder.runtime.film_job import FilmWork
from muss_builder.runtime.stage_base import Stage
from muss_builder.runtime.stages import default_stages
from muss_builder.testing.synthetic_films import make_film


@pytest.fixture(scope="module")
def reels(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("reels")
    return [make_film(root / f"reel{i}.mp4", (30 + i, 26, 34), fps=24).path for i in range(3)]


def _rows(out: Path, name: str = "films.parquet") -> list[dict]:
    return pq.read_table(out / name).to_pylist()


def test_tables_keep_every_film_an_earlier_build_finished(tmp_path, reels, tiny_config) -> None:
    out = tmp_path / "out"
    first = build([str(reels[0])], out, tiny_config, executor="inline")
    build([str(reels[1])], out, tiny_config, executor="inline")  # a run that never saw reel0
    (out / "films.parquet").unlink()  # lost (or cut short by a crash)
    build([str(reels[1])], out, tiny_config, executor="inline")
    rows = {Path(r["path"]).name: r for r in _rows(out)}
    assert {name: r["status"] for name, r in rows.items()} == {"reel0.mp4": "ok", "reel1.mp4": "ok"}
    assert rows["reel0.mp4"]["film_id"] == first.results[0].film_id
    index_films = {r["film_id"] for r in _rows(out, "index.parquet")}
    assert index_films == {r["film_id"] for r in rows.values()}
    table = out / "films.parquet"
    table.write_bytes(table.read_bytes()[:100])  # cut short: unreadable
    notes: list[str] = []
    build(
        [str(reels[1])],
        out,
        tiny_config,
        executor="inline",
        progress=Progress(on_notice=notes.append),
    )
    assert (
        notes == [notes[0]]
        and "films.parquet unreadable, rebuilt from the film records" in notes[0]
    )
    assert sorted(Path(r["path"]).name for r in _rows(out)) == ["reel0.mp4", "reel1.mp4"]


def test_unreadable_records_are_set_aside_and_their_films_rebuilt(
    tmp_path, reels, tiny_config
) -> None:
    out = tmp_path / "out"
    films = [str(p) for p in reels[:2]]
    clean = build(films, out, tiny_config, executor="inline")
    ids = [r.film_id for r in clean.results]
    truncated = out / "films" / f"{ids[0]}.json"
    cut = truncated.read_bytes()[:300]
    truncated.write_bytes(cut)
    wrong = out / "films" / f"{ids[1]}.json"
    record = json.loads(wrong.read_text())
    record["samples"] = [{"key": 7}]  # not an index row
    wrong.write_text(json.dumps(record))
    notes: list[str] = []
    rerun = build(
        films, out, tiny_config, executor="inline", progress=Progress(on_notice=notes.append)
    )
    assert [(r.status, r.resumed) for r in rerun.results] == [("ok", False), ("ok", False)]
    kept = sorted(p.name for p in (out / "quarantine" / "films").iterdir())
    assert kept == sorted(f"{i}.json" for i in ids)
    set_aside = (out / "quarantine" / "films" / f"{ids[0]}.json").read_bytes()
    assert set_aside == cut  # kept as it was, for a look
    assert sum("set aside" in n for n in notes) == 2, notes
    assert any("not JSON" in n for n in notes) and any("wrong shape" in n for n in notes), notes
    assert _rows(out, "index.parquet") == _rows(clean.out, "index.parquet")
    log = "".join(p.read_text() for p in (out / "logs").glob("build-*.log"))
    assert f"films/{ids[0]}.json -> quarantine/films/{ids[0]}.json" in log


def test_leftovers_of_killed_runs_are_removed_by_the_next_build(tmp_path, reels, tiny_config):
    out = tmp_path / "out"
    build([str(reels[0])], out, tiny_config, executor="inline")
    leftovers = [
        out / "shards" / ".0123456789abcdef-00000.tar.partial-4242",
        out / "films" / ".0123456789abcdef.json.tmp-4242",
        out / ".films.parquet.k3j2h1.part",
        out / ".index.parquet.tmp-4242",
        # stray temporaries named without a dot: validate names them, so the build cleans them
        out / "shards" / "0123456789abcdef-00000.tar.tmp",
        out / "films" / "0123456789abcdef.json.part",
    ]
    for path in leftovers:
        path.write_bytes(b"half")
    mine = out / ".my-notes"  # a dot-file of the user's, not a temporary of ours
    mine.write_text("keep")
    notes: list[str] = []
    build(
        [str(reels[0])],
        out,
        tiny_config,
        executor="inline",
        progress=Progress(on_notice=notes.append),
    )
    assert not [p for p in leftovers if p.exists()]
    assert mine.read_text() == "keep"
    assert sum("leftover" in n for n in notes) == len(leftovers)


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_every_output_file_follows_the_umask(tmp_path, reels, tiny_config, umask) -> None:
    old = os.umask(umask)
    try:
        out = tmp_path / "out"
        build([str(reels[0])], out, tiny_config, executor="inline")
    finally:
        os.umask(old)
    found = {"file": 0, "dir": 0}
    for path in [out, *out.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        kind = "dir" if path.is_dir() else "file"
        expected = (0o777 if kind == "dir" else 0o666) & ~umask
        assert mode == expected, (str(path.relative_to(out)), oct(mode), oct(expected))
        found[kind] += 1
    # shards, record, both tables, stats and the log; shards/, films/, logs/ and OUT
    assert found["file"] >= 6 and found["dir"] >= 4


def test_a_file_name_that_is_not_utf8_is_stored_escaped(tmp_path, reels, tiny_config) -> None:
    folder = tmp_path / "films"
    folder.mkdir()
    raw = os.fsencode(folder) + b"/caf\xe9 \\ \xff.mp4"
    os.link(reels[0], raw)  # the same film under a name that is not UTF-8
    name = os.fsdecode(raw)
    out = tmp_path / "out"
    first = build([name, str(tmp_path / "missing\udce9.mp4")], out, tiny_config, executor="inline")
    assert [r.status for r in first.results] == ["ok", "failed"]
    rows = _rows(out)
    ok = next(r for r in rows if r["status"] == "ok")
    # a file given directly is named by its file name (never this machine's folders)
    assert path_bytes(ok["path"]) == raw.rsplit(b"/", 1)[-1]
    failed = next(r for r in rows if r["status"] == "failed")
    assert failed["path"] == "missing\\xe9.mp4"
    (source_file,) = {r["source_file"] for r in _rows(out, "index.parquet")}
    assert path_bytes(source_file) == raw.rsplit(b"/", 1)[-1]
    stats = json.loads((out / "stats.json").read_text())
    assert len(stats["failures"]) == 1
    record = json.loads(next((out / "films").glob("*.json")).read_text())
    assert path_bytes(record["probe"]["path"]) == raw.rsplit(b"/", 1)[-1]
    rerun = build([name], out, tiny_config, executor="inline")  # the folder still works
    assert [(r.status, r.resumed) for r in rerun.results] == [("ok", True)]


def test_tables_name_films_relative_to_the_inputs_given(tmp_path, reels, tiny_config) -> None:
    shelf = tmp_path / "shelf"
    (shelf / "season1").mkdir(parents=True)
    os.link(reels[0], shelf / "season1" / "a.mp4")
    os.link(reels[1], tmp_path / "b.mp4")
    out = tmp_path / "out"
    build([str(shelf), str(tmp_path / "b.mp4")], out, tiny_config, executor="inline")
    assert sorted(r["path"] for r in _rows(out)) == ["b.mp4", "season1/a.mp4"]
    public = [out / "films.parquet", out / "stats.json", out / "README.md", out / "pipeline.yaml"]
    public += list((out / "films").glob("*.json"))
    for path in public:
        assert str(tmp_path).encode() not in path.read_bytes(), path.name
    assert str(tmp_path) in next((out / "logs").glob("*.log")).read_text()  # the private log


class _Broken(Stage):
    """A stage with a bug, for the traceback tests."""

    name = "broken"

    def process(self, work: FilmWork, unit: object) -> FilmWork:
        return _deep_helper(work)


def _deep_helper(work: FilmWork) -> FilmWork:
    raise KeyError("a field the stage expected\nacross two lines")


def test_a_failure_keeps_its_traceback_in_the_table_and_the_log(
    tmp_path, reels, tiny_config: PipelineConfig
) -> None:
    out = tmp_path / "out"
    stages = [*default_stages()[:1], _Broken()]
    summary = build([str(reels[0])], out, tiny_config, executor="inline", stages=stages)
    (row,) = _rows(out)
    assert row["status"] == "failed" and "\n" not in row["reason"]
    assert "internal error in broken: KeyError" in row["reason"]
    assert "Traceback" in row["traceback"] and "_deep_helper" in row["traceback"]
    (log,) = (out / "logs").glob("build-*.log")
    assert log.name.endswith(f"-{os.getpid()}.log")
    text = log.read_text()
    assert f"film {summary.results[0].film_id} failed" in text and "_deep_helper" in text


class _FullDisk(Stage):
    """Writes where the disk is full: /dev/full answers every write with ENOSPC."""

    name = "full"

    def process(self, work: FilmWork, unit: object) -> FilmWork:
        with open("/dev/full", "wb") as fh:
            fh.write(b"x" * 4096)
            fh.flush()
        return work


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
def test_a_full_disk_stops_the_build_and_keeps_finished_films(tmp_path, reels, tiny_config):
    out = tmp_path / "out"
    build([str(reels[0])], out, tiny_config, executor="inline")
    before = {p.name: p.read_bytes() for p in (out / "shards").glob("*.tar")}
    stages = [*default_stages()[:1], _FullDisk()]
    with pytest.raises(BuildStopped, match="no space left on device"):
        build([str(p) for p in reels], out, tiny_config, executor="inline", stages=stages)
    assert {p.name: p.read_bytes() for p in (out / "shards").glob("*.tar")} == before
    rows = {Path(r["path"]).name: r["status"] for r in _rows(out)}
    assert rows["reel0.mp4"] == "ok" and "reel2.mp4" not in rows  # it stopped at reel1
