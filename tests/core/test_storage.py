"""Storage against the local disk and a local S3-compatible server (moto in server mode).

Real s3fs and real HTTP requests, never AWS: the server runs in this process on 127.0.0.1 and
the client finds it through AWS_ENDPOINT_URL (or MUSS_STORAGE_OPTIONS).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from muss_builder.core.storage import (
    OPTIONS_ENV,
    Storage,
    expand_remote_inputs,
    is_remote,
    local_copy,
)
from muss_builder.runtime.inputs import VIDEO_EXTENSIONS

BINARY = bytes(range(256)) * 40 + b"\x00\r\n\xff"


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return Storage.open(str(tmp_path / "dataset"))
    return Storage.open(request.getfixturevalue("s3_prefix"))


def test_is_remote() -> None:
    assert is_remote("s3://b/k") and is_remote("gs://b") and is_remote("S3://b")
    assert not is_remote("/data/films") and not is_remote("file:///data") and not is_remote("a.mp4")


def test_open_normalises_root(tmp_path: Path, s3_prefix: str) -> None:
    local = Storage.open(f"file://{tmp_path}/")
    assert (local.root, local.remote) == (str(tmp_path), False)
    assert local.url("films/x.json") == f"{tmp_path}/films/x.json"
    remote = Storage.open(s3_prefix + "/")
    assert (remote.root, remote.remote) == (s3_prefix, True)
    assert remote.url("stats.json") == f"{s3_prefix}/stats.json"


def test_round_trip_binary(store: Storage) -> None:
    store.write_bytes("shards/a.tar", BINARY)
    assert store.read_bytes("shards/a.tar") == BINARY
    assert store.exists("shards/a.tar")
    assert store.size("shards/a.tar") == len(BINARY)


def test_write_bytes_overwrites(store: Storage) -> None:
    store.write_bytes("stats.json", b"first, and longer")
    store.write_bytes("stats.json", b"second")
    assert store.read_bytes("stats.json") == b"second"
    assert store.size("stats.json") == len(b"second")
    assert store.list("") == ["stats.json"]  # no temporaries left behind


def test_missing_file(store: Storage) -> None:
    assert not store.exists("films/nope.json")
    assert store.size("films/nope.json") is None
    with pytest.raises(FileNotFoundError, match=re.escape(store.url("films/nope.json"))):
        store.read_bytes("films/nope.json")


def test_list_with_suffix(store: Storage) -> None:
    for rel in ("shards/b.tar", "shards/a.tar", "shards/c.json", "shards/sub/d.tar", "x.tar"):
        store.write_bytes(rel, b"x")
    assert store.list("shards", ".tar") == ["shards/a.tar", "shards/b.tar"]
    assert store.list("shards") == ["shards/a.tar", "shards/b.tar", "shards/c.json"]
    assert store.list("", ".tar") == ["x.tar"]
    assert store.list("missing") == []
    assert store.size("shards/sub") is None  # a folder is not a file


def test_remove(store: Storage) -> None:
    store.write_bytes("films/a.json", b"{}")
    store.remove("films/a.json")
    assert not store.exists("films/a.json")
    assert store.list("films") == []
    store.remove("films/a.json")  # missing is fine


def test_put_file(store: Storage, tmp_path: Path) -> None:
    src = tmp_path / "shard.tar"
    src.write_bytes(BINARY * 3)
    store.put_file(src, "shards/shard-000.tar")
    assert store.read_bytes("shards/shard-000.tar") == BINARY * 3
    assert src.read_bytes() == BINARY * 3  # the source is kept
    store.put_file(src, "shards/shard-000.tar")  # again, over itself
    assert store.list("shards") == ["shards/shard-000.tar"]


def test_missing_bucket_names_the_url(s3_prefix: str) -> None:
    store = Storage.open("s3://no-such-bucket/dataset")
    assert not store.exists("stats.json")
    assert store.size("stats.json") is None
    with pytest.raises(
        FileNotFoundError, match=re.escape("s3://no-such-bucket/dataset/stats.json")
    ):
        store.read_bytes("stats.json")
    with pytest.raises(
        FileNotFoundError, match=re.escape("s3://no-such-bucket/dataset/stats.json")
    ):
        store.write_bytes("stats.json", b"{}")


def test_storage_options_env(s3_prefix: str, local_s3_server: str, monkeypatch) -> None:
    """Without AWS_ENDPOINT_URL, MUSS_STORAGE_OPTIONS alone finds the server."""
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    monkeypatch.setenv(OPTIONS_ENV, json.dumps({"endpoint_url": local_s3_server}))
    Storage.open(s3_prefix).write_bytes("a", b"flat")
    monkeypatch.setenv(
        OPTIONS_ENV, json.dumps({"s3": {"client_kwargs": {"endpoint_url": local_s3_server}}})
    )
    assert Storage.open(s3_prefix).read_bytes("a") == b"flat"


def test_expand_remote_inputs(s3_prefix: str) -> None:
    store = Storage.open(s3_prefix)
    for rel in (
        "films/b.mp4",
        "films/a.mkv",
        "films/notes.txt",
        "films/season1/ep2.MOV",
        "films/season1/ep1.mp4",
        "films/season1/meta.json",
        "films-extra/z.mp4",  # a sibling prefix, not under films/
    ):
        store.write_bytes(rel, b"v")
    assert expand_remote_inputs(f"{s3_prefix}/films", VIDEO_EXTENSIONS) == [
        f"{s3_prefix}/films/a.mkv",
        f"{s3_prefix}/films/b.mp4",
        f"{s3_prefix}/films/season1/ep1.mp4",
        f"{s3_prefix}/films/season1/ep2.MOV",
    ]
    assert expand_remote_inputs(f"{s3_prefix}/films/", VIDEO_EXTENSIONS)[0].endswith("/a.mkv")
    one = f"{s3_prefix}/films/b.mp4"
    assert expand_remote_inputs(one, VIDEO_EXTENSIONS) == [one]
    with pytest.raises(FileNotFoundError, match=re.escape(f"{s3_prefix}/nothing")):
        expand_remote_inputs(f"{s3_prefix}/nothing", VIDEO_EXTENSIONS)
    with pytest.raises(FileNotFoundError, match=re.escape("s3://no-such-bucket/films")):
        expand_remote_inputs("s3://no-such-bucket/films", VIDEO_EXTENSIONS)


def test_local_copy_downloads_once_and_again_after_a_change(s3_prefix: str, tmp_path) -> None:
    store = Storage.open(s3_prefix)
    store.write_bytes("films/movie.mp4", BINARY)
    url = store.url("films/movie.mp4")
    cache = tmp_path / "cache"

    first = local_copy(url, cache)
    assert first.read_bytes() == BINARY
    assert first.parent == cache and first.name.endswith("movie.mp4")
    stat = first.stat()
    again = local_copy(url, cache)
    assert again == first
    assert (again.stat().st_ino, again.stat().st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)

    changed = bytes(reversed(BINARY))  # same size, different content: only the etag differs
    store.write_bytes("films/movie.mp4", changed)
    fresh = local_copy(url, cache)
    assert fresh.read_bytes() == changed
    assert [p.name for p in cache.iterdir()] == [fresh.name]  # the stale copy and no .part


def test_local_copy_missing_object_names_the_url(s3_prefix: str, tmp_path: Path) -> None:
    url = f"{s3_prefix}/films/absent.mp4"
    with pytest.raises(FileNotFoundError, match=re.escape(url)):
        local_copy(url, tmp_path / "cache")
    with pytest.raises(FileNotFoundError, match=re.escape("s3://no-such-bucket/a.mp4")):
        local_copy("s3://no-such-bucket/a.mp4", tmp_path / "cache")
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_local_copy_keeps_local_paths(tmp_path: Path) -> None:
    film = tmp_path / "film.mp4"
    assert local_copy(str(film), tmp_path / "cache") == film
    assert local_copy(f"file://{film}", tmp_path / "cache") == film
    assert not (tmp_path / "cache").exists()


def test_sees_writes_by_another_client(store: Storage) -> None:
    """Workers write through their own clients: a listing must not be served from a cache."""
    store.write_bytes("shards/a.tar", b"a")
    assert store.list("shards") == ["shards/a.tar"]
    assert not store.exists("shards/b.tar")
    other = Storage.open(store.root)
    other.write_bytes("shards/b.tar", b"b")
    other.remove("shards/a.tar")
    assert store.list("shards") == ["shards/b.tar"]
    assert store.exists("shards/b.tar") and not store.exists("shards/a.tar")
    assert store.size("shards/b.tar") == 1
