"""Shard families: a packed split's shards are cut by the tracks their samples serve.

A sample serves the montage track, the subject track or both (its json's ``tracks``,
docs/layout.md). The packer writes each sample once, into the shards of its family:

    {split}-montage-{n:05d}.tar   samples serving the montage track only
    {split}-both-{n:05d}.tar      samples serving both tracks
    {split}-subject-{n:05d}.tar   samples serving the subject track only (subject windows)

so a track is a set of whole shards (montage: ``montage`` and ``both``; subject: ``both`` and
``subject``) that a reader names by file (the dataset card's per-track configs, a brace
pattern, ``expand_shard_list(..., track=...)``) while no clip is stored twice. A family with
no samples in a split gets no shards there.
"""

from __future__ import annotations

from collections.abc import Iterable

TRACKS = ("montage", "subject")
# family -> the tracks its samples serve, in the order families are written and listed
FAMILIES: dict[str, tuple[str, ...]] = {
    "montage": ("montage",),
    "both": ("montage", "subject"),
    "subject": ("subject",),
}
# one letter per family: a film's samples as a short string (``SourceFilm.families``)
CODES = {"montage": "m", "both": "b", "subject": "s"}
BY_CODE = {code: family for family, code in CODES.items()}


def family_of(tracks: Iterable[str]) -> str:
    """The family of a sample serving ``tracks``; ValueError for a set no family holds."""
    served = set(tracks)
    for family, its_tracks in FAMILIES.items():
        if served == set(its_tracks):
            return family
    raise ValueError(f"no shard family holds samples serving {sorted(served)}")


def serving(track: str) -> tuple[str, ...]:
    """The families whose samples serve ``track``."""
    if track not in TRACKS:
        raise ValueError(f"no track {track!r} (tracks: {', '.join(TRACKS)})")
    return tuple(f for f, tracks in FAMILIES.items() if track in tracks)


def shard_rel(split: str, family: str, n: int) -> str:
    """The name of a packed shard, e.g. ``train-both-00003.tar``."""
    return f"{split}-{family}-{n:05d}.tar"


def brace_pattern(split: str, counts: dict[str, int]) -> str | None:
    """One brace pattern for the shards of ``split`` in the families of ``counts`` (family ->
    shard count): ``train-both-{00000..00003}.tar``, or nested when several families have
    shards (``train-{montage-{00000..00009},both-{00000..00003}}.tar``, which webdataset and
    ``braceexpand`` expand); None when there are none."""
    parts = [f"{f}-{{00000..{counts[f] - 1:05d}}}" for f in FAMILIES if counts.get(f, 0) > 0]
    if not parts:
        return None
    if len(parts) == 1:
        return f"{split}-{parts[0]}.tar"
    return f"{split}-{{{','.join(parts)}}}.tar"


def _totals(shards: list[dict]) -> dict:
    return {
        "n_shards": len(shards),
        "n_samples": sum(s["n_samples"] for s in shards),
        "size_bytes": sum(s["size_bytes"] for s in shards),
    }


def split_summary(split: str, shards: list[dict], n_films: int) -> dict:
    """A manifest's entry of one split from its shard entries (each with ``family``): totals,
    the films with samples in it, a brace pattern over all its shards, and the same per
    family and per track."""
    counts = {f: sum(1 for s in shards if s["family"] == f) for f in FAMILIES}
    families = {}
    for family in FAMILIES:
        mine = [s for s in shards if s["family"] == family]
        families[family] = _totals(mine) | {"pattern": brace_pattern(split, {family: len(mine)})}
    tracks = {}
    for track in TRACKS:
        mine = [s for s in shards if s["family"] in serving(track)]
        pattern = brace_pattern(split, {f: counts[f] for f in serving(track)})
        tracks[track] = _totals(mine) | {"pattern": pattern}
    totals = _totals(shards)
    return {
        "n_shards": totals["n_shards"],
        "n_samples": totals["n_samples"],
        "n_films": n_films,
        "size_bytes": totals["size_bytes"],
        "pattern": brace_pattern(split, counts),
        "families": families,
        "tracks": tracks,
    }
