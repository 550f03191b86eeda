"""A build that reads its films from, and writes its dataset to, a local S3-compatible server.

The shards must be byte-identical to a build on the local disk, the tables must list the same
samples, and a rerun must resume every film from the records in the bucket.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from muss_builder.core.storage import Storage
from muss_builder.runtime.build import BuildSummary, Progress, build
from muss_builder.testing.synthetic_films import make_film


@pytest.fixture(scope="module")
def two_films(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("s3_films")
    return [
        make_film(root / f"reel{i}.mp4", (30 + i, 26, 34, 28, 40, 30), fps=24).path
        for i in range(2)
    ]


@pytest.fixture(scope="module")
def local_build(tmp_path_factory, two_films, tiny_config) -> BuildSummary:
    """``two_films`` built on the local disk (inline): what a build through S3 must equal.
    Tests must not modify it."""
    out = tmp_path_factory.mktemp("s3_local")
    return build([str(f) for f in two_films], out, tiny_config, executor="inline")


def _shards(store: Storage) -> dict[str, bytes]:
    return {rel.rsplit("/", 1)[-1]: store.read_bytes(rel) for rel in store.list("shards", ".tar")}


@pytest.mark.parametrize("executor", ["inline", pytest.param("ray", marks=pytest.mark.ray)])
def test_build_from_and_to_s3(s3_prefix, two_films, local_build, tiny_config, executor) -> None:
    inputs = Storage.open(f"{s3_prefix}/films")
    for film in two_films:
        inputs.put_file(film, f"shelf/{film.name}")
    inputs.write_bytes("shelf/notes.txt", b"not a film")  # ignored: not a video file
    out_url = f"{s3_prefix}/dataset"

    local = local_build
    remote = build([inputs.url("shelf")], out_url, tiny_config, executor=executor, num_cpus=2)

    assert [r.status for r in remote.results] == ["ok", "ok"]
    assert [r.path for r in remote.results] == [inputs.url(f"shelf/{f.name}") for f in two_films]
    out = Storage.open(out_url)
    local_store = Storage.open(str(local.out))
    assert _shards(out) == _shards(local_store) != {}
    for name in ("index.parquet", "films.parquet"):
        remote_rows = pq.read_table(io.BytesIO(out.read_bytes(name))).to_pylist()
        local_rows = pq.read_table(local.out / name).to_pylist()
        if name == "films.parquet":  # the film's own path differs, nothing else
            for row in (*remote_rows, *local_rows):
                row.pop("path")
                row.update({k: 0.0 for k in row if k.startswith("seconds_")})
        assert remote_rows == local_rows
    stats = json.loads(out.read_bytes("stats.json"))
    assert stats["films"]["ok"] == 2 and stats["samples_in_index"] == local.n_samples
    records = [json.loads(out.read_bytes(rel)) for rel in out.list("films", ".json")]
    # named relative to the prefix given, like a local folder's films
    assert {r["probe"]["path"] for r in records} == {f.name for f in two_films}
    assert {r.shown for r in remote.results} == {f.name for f in two_films}

    rerun = build([inputs.url("shelf")], out_url, tiny_config, executor="inline")
    assert [r.resumed for r in rerun.results] == [True, True]
    assert _shards(out) == _shards(local_store)


def test_missing_bucket_is_a_failed_row_not_a_crash(tmp_path, s3_prefix, tiny_config) -> None:
    summary = build(["s3://no-such-bucket/films"], tmp_path / "out", tiny_config)
    assert [r.status for r in summary.results] == ["failed"]
    assert "s3://no-such-bucket/films" in summary.results[0].reason


def test_one_build_per_prefix_by_a_lock_object(tmp_path, s3_prefix, tiny_config) -> None:
    """The lock object refuses a second build, is taken over from a dead process of this
    host, and is gone when the build ends."""
    import os
    import socket
    import subprocess
    import sys

    from muss_builder.runtime.lock import BuildLock, OutputError

    out_url = f"{s3_prefix}/dataset"
    missing = str(tmp_path / "missing.mp4")  # no film is needed to test the lock
    with BuildLock(Storage.open(out_url)), pytest.raises(OutputError) as refused:
        build([missing], out_url, tiny_config, executor="inline")
    assert f"another build is writing to {out_url} (pid {os.getpid()}" in str(refused.value)
    assert f"delete {out_url}/.lock" in str(refused.value)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True
    )
    holder = {"pid": int(gone.stdout), "host": socket.gethostname(), "token": "old"}
    Storage.open(out_url).write_bytes(".lock", json.dumps(holder).encode())
    notes: list[str] = []
    summary = build(
        [missing],
        out_url,
        tiny_config,
        executor="inline",
        progress=Progress(on_notice=notes.append),
    )
    assert summary.count("failed") == 1
    who = f"pid {holder['pid']} on {holder['host']}, started None"
    assert notes == [f"took over the lock of a build that is gone ({who})"]
    assert not Storage.open(out_url).exists(".lock")
    assert Storage.open(out_url).list("logs", ".log")  # the log was uploaded
