"""Bad input: each case is a clear row in films.parquet, the run goes on, nothing is lost."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from muss_builder.runtime.build import build
from muss_builder.testing.synthetic_films import make_audio_only, make_film


def make_bad_inputs(root: Path, good: Path) -> dict[str, tuple[Path, str, str]]:
    """name -> (path, expected status, words the reason must contain)."""
    root.mkdir(parents=True, exist_ok=True)
    cases: dict[str, tuple[Path, str, str]] = {}
    empty = root / "empty.mp4"
    empty.write_bytes(b"")
    cases["zero bytes"] = (empty, "failed", "empty file")
    noise = root / "noise.mp4"
    noise.write_bytes(bytes((i * 7919) % 251 for i in range(50_000)))
    cases["random bytes"] = (noise, "failed", "cannot probe")
    faststart = make_film(
        root / "fs.mp4", (48,) * 6, fps=24, extra_output_args=("-movflags", "+faststart")
    )
    data = faststart.path.read_bytes()
    truncated = root / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])
    faststart.path.unlink()
    cases["truncated mid-file"] = (truncated, "failed", "truncated or corrupt")
    no_index = root / "truncated_no_index.mp4"
    no_index.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    cases["truncated before its index"] = (no_index, "failed", "moov atom not found")
    audio = root / "audio_only.mp4"
    make_audio_only(audio)
    cases["audio only"] = (audio, "failed", "audio-only")
    folder = root / "folder.mp4"
    folder.mkdir()
    cases["directory as film"] = (folder, "failed", "is a directory")
    cases["missing path"] = (root / "missing.mp4", "failed", "file not found")
    short = make_film(root / "short.mp4", (30,), fps=24)
    cases["shorter than a sample"] = (short.path, "skipped", "no sample")
    odd = root / 'it\'s a "film" $(touch pwned) `id`.mp4'
    make_film(odd, (30, 30, 30), fps=24)
    cases["odd file name"] = (odd, "ok", "")
    return cases


def test_bad_inputs_fail_clearly_and_the_run_goes_on(tmp_path, twelve_film, tiny_config):
    out = tmp_path / "out"
    first = build([str(twelve_film.path)], out, tiny_config, executor="inline")
    good_shards = {p.name: p.read_bytes() for p in (out / "shards").glob("*.tar")}
    assert first.count("ok") == 1

    cases = make_bad_inputs(tmp_path / "bad", twelve_film.path)
    paths = [str(twelve_film.path)] + [str(p) for p, _, _ in cases.values()]
    paths.append(str(twelve_film.path))  # the same film twice
    summary = build(paths, out, tiny_config, executor="inline")

    rows = {Path(r["path"]).name: r for r in pq.read_table(out / "films.parquet").to_pylist()}
    for name, (path, status, words) in cases.items():
        row = rows[path.name]
        assert row["status"] == status, (name, row)
        assert words in (row["reason"] or ""), (name, row["reason"])
    assert not (tmp_path / "bad" / "pwned").exists()  # no shell ever saw the name
    twelve = [r for r in summary.results if r.path == str(twelve_film.path.absolute())]
    # passed twice (and built before): one row resumed, one duplicate, processed never again
    assert sorted((r.status, r.resumed) for r in twelve) == [("ok", True), ("skipped", False)]
    assert {
        p.name: p.read_bytes() for p in (out / "shards").glob(f"{twelve[0].film_id}*")
    } == good_shards
    assert summary.stats["films"]["failed"] == 7


def test_folder_input_expands_to_its_films(tmp_path, tiny_config):
    folder = tmp_path / "shelf"
    folder.mkdir()
    make_film(folder / "a.mp4", (30, 30, 30), fps=24)
    make_film(folder / "b b.mkv", (24, 36, 30), fps=24)
    (folder / "notes.txt").write_text("not a film")
    empty = tmp_path / "empty_shelf"
    empty.mkdir()
    summary = build([str(folder), str(empty)], tmp_path / "out", tiny_config, executor="inline")
    by_name = {Path(r.path).name: r for r in summary.results}
    assert by_name["a.mp4"].status == by_name["b b.mkv"].status == "ok"
    assert "no video files" in (by_name["empty_shelf"].reason or "")
