"""Names of shards, samples, sample members and film records: every formatter's output
parses back to what made it, and names no build writes are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from muss_builder.core.naming import (
    REFS_MEMBER,
    SAMPLE_MEMBERS,
    OutputLayout,
    film_of_key,
    film_of_shard,
    film_record_path,
    is_film_id,
    is_leftover,
    parse_film_record_path,
    parse_sample_key,
    parse_shard_name,
    partial_shard_name,
    sample_key,
    shard_globs,
    shard_name,
)

FILM = "0123456789abcdef"


@pytest.mark.parametrize("n", [0, 1, 42, 99_999])
def test_format_then_parse_is_a_round_trip(n: int) -> None:
    assert shard_name(FILM, n) == f"{FILM}-{n:05d}.tar"
    assert parse_shard_name(shard_name(FILM, n)) == (FILM, n)
    assert film_of_shard(shard_name(FILM, n)) == FILM
    assert parse_sample_key(sample_key(FILM, n)) == (FILM, n)
    assert film_of_key(sample_key(FILM, n)) == FILM
    assert parse_film_record_path(film_record_path(FILM)) == FILM


def test_the_formats_are_the_documented_ones() -> None:
    assert shard_name(FILM, 3) == "0123456789abcdef-00003.tar"
    assert partial_shard_name(FILM, 3, 77) == ".0123456789abcdef-00003.tar.partial-77"
    assert sample_key(FILM, 12) == "0123456789abcdef_00012"
    # every sample has exactly these members (docs/layout.md)
    assert (REFS_MEMBER, SAMPLE_MEMBERS) == ("refs.jpg", ("json", "mp4", "refs.jpg"))
    assert film_record_path(FILM) == "films/0123456789abcdef.json"
    assert parse_film_record_path(f"{FILM}.json") == FILM  # a bare file name too


@pytest.mark.parametrize(
    "name",
    [
        f"{FILM}-0001.tar",  # four digits
        f"{FILM}-00001.tar.partial-1",
        f".{FILM}-00001.tar",
        f"{FILM}-00001.tgz",
        f"{FILM.upper()}-00001.tar",
        f"{FILM[:-1]}-00001.tar",  # 15 hex digits
        f"{FILM}_00001.tar",
        f"dir/{FILM}-00001.tar",  # a path, not a name
        "",
    ],
)
def test_malformed_shard_names_are_refused(name: str) -> None:
    assert parse_shard_name(name) is None and film_of_shard(name) is None


@pytest.mark.parametrize(
    "key",
    [f"{FILM}_1", f"{FILM}-00001", f"{FILM}_00001.json", f"x{FILM}_00001", f"{FILM}_", "k"],
)
def test_malformed_sample_keys_are_refused(key: str) -> None:
    assert parse_sample_key(key) is None and film_of_key(key) is None


def test_film_ids_and_record_paths() -> None:
    assert is_film_id(FILM)
    assert not any(is_film_id(x) for x in (FILM.upper(), FILM[:-1], FILM + "0", 12, None))
    assert parse_film_record_path("films/notahexname.json") is None
    assert parse_film_record_path(f"films/{FILM}.json.tmp-1") is None


def test_shard_globs_match_a_films_shards_only(tmp_path: Path) -> None:
    finished, partial = shard_globs(FILM)
    names = [shard_name(FILM, 0), partial_shard_name(FILM, 1, 5), shard_name("f" * 16, 0)]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in tmp_path.glob(finished)] == [names[0]]
    assert [p.name for p in tmp_path.glob(partial)] == [names[1]]


def test_output_layout_and_leftovers(tmp_path: Path) -> None:
    layout = OutputLayout(tmp_path)
    layout.make()
    assert layout.shards.is_dir() and layout.films.is_dir()
    assert layout.film_json(FILM) == tmp_path / film_record_path(FILM)
    assert is_leftover(partial_shard_name(FILM, 0, 9))
    assert is_leftover(f".{FILM}.json.tmp-12") and is_leftover("x.part")
    assert not is_leftover(shard_name(FILM, 0))
    assert is_leftover(".index.parquet.tmp-3", in_root=True)
    assert not is_leftover(".lock", in_root=True)
