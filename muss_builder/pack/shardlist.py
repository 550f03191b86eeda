"""Shard lists as users write them: files, folders, globs, brace patterns, manifests, urls.

``expand_shard_list`` turns each spec into shard locations (local paths or ``s3://...``
urls, as given) and checks that every one exists, naming the missing ones:

- ``train-both-{00000..00127}.tar`` (brace pattern, as webdataset writes them; nested ones
  too, as a pack's manifest writes them), local or remote;
- ``shards/*.tar`` (a glob; on an object store, in the last path part only);
- a packed folder (its ``manifest.json``), a build folder (its ``shards/``), or a folder of
  ``*.tar``;
- a ``manifest.json`` of a pack: its shards, optionally one split and one track (the shard
  families whose samples serve it: ``pack.families``);
- a single ``.tar`` file or object.
"""

from __future__ import annotations

import fnmatch
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from braceexpand import braceexpand

from muss_builder.core.naming import SHARDS_DIR
from muss_builder.core.storage import Storage, is_remote, local_copy
from muss_builder.pack.families import serving

MANIFEST = "manifest.json"
_GLOB = set("*?[")


def _split_url(spec: str) -> tuple[Storage, str]:
    """The folder of ``spec`` as a Storage and the last part of its path."""
    head, _, name = spec.rstrip("/").rpartition("/")
    if not head and not spec.startswith("/"):
        head = "."
    return Storage.open(head or "/"), name


def _from_manifest(
    folder: Storage, rel: str, split: str | None, track: str | None = None, strict: bool = True
) -> list[str]:
    manifest = json.loads(folder.read_bytes(rel))
    base = rel.rpartition("/")[0]
    shards = manifest.get("shards")
    if not isinstance(shards, list):
        raise ValueError(f"{folder.url(rel)}: not a pack manifest (no shard list)")
    names = [s["name"] for s in shards if split is None or s.get("split") == split]
    if split is not None and split not in manifest.get("splits", {}):
        known = ", ".join(manifest.get("splits", {}))
        raise ValueError(f"{folder.url(rel)}: no split {split!r} (it has {known})")
    if track is not None and all("family" in s for s in shards):
        chosen = {s["name"] for s in shards if s["family"] in serving(track)}
        names = [n for n in names if n in chosen]
    elif track is not None and strict:
        raise ValueError(
            f"{folder.url(rel)}: its shards have no families (packed before shards were "
            "cut by track): pack the build again to read one track by its shards"
        )
    return [folder.url(f"{base}/{n}" if base else n) for n in names]


def _from_folder(
    folder: Storage, split: str | None, track: str | None = None, strict: bool = True
) -> list[str]:
    if folder.exists(MANIFEST):
        return _from_manifest(folder, MANIFEST, split, track, strict)
    if track is not None and strict:
        raise ValueError(f"{folder.root}: no {MANIFEST}: a track is picked by a pack's manifest")
    tars = folder.list(SHARDS_DIR, ".tar") or folder.list("", ".tar")
    if not tars:
        raise FileNotFoundError(f"no manifest.json, shards/ or *.tar in {folder.root}")
    return [folder.url(rel) for rel in tars]


def _from_glob(spec: str) -> list[str]:
    folder, pattern = _split_url(spec)
    if any(ch in _GLOB for ch in spec[: len(spec) - len(pattern)]):
        raise ValueError(f"{spec}: a glob may only be in the last part of the path")
    found = [folder.url(rel) for rel in folder.list("", "") if fnmatch.fnmatchcase(rel, pattern)]
    if not found:
        raise FileNotFoundError(f"nothing matches {spec}")
    return found


def _expand_one(
    spec: str, split: str | None, track: str | None, strict: bool
) -> tuple[list[str], bool]:
    """The shards of one spec, and whether they still need an existence check."""
    is_brace = "{" in spec and ".." in spec
    size = None
    if not is_brace and not any(ch in _GLOB for ch in spec):
        folder, name = _split_url(spec)
        size = folder.size(name)
        if name == MANIFEST or (name.endswith(".json") and size is not None):
            return _from_manifest(folder, name, split, track, strict), True
        whole = Storage.open(spec)
        if size is None and (whole.remote or _is_dir(whole)):
            return _from_folder(whole, split, track, strict), False
    if track is not None and strict:
        raise ValueError(
            f"{spec}: a track is picked by a pack's manifest: give the packed folder or its "
            f"{MANIFEST} (or name the track's shards: {{split}}-{{family}}-*.tar)"
        )
    if is_brace:
        return list(braceexpand(spec)), True
    if any(ch in _GLOB for ch in spec):
        return _from_glob(spec), False
    return [spec], size is None  # a missing one is reported below


def _is_dir(store: Storage) -> bool:
    return os.path.isdir(store.root)


def _missing(shards: list[str]) -> list[str]:
    """The shards that do not exist: one listing per folder (not a request per shard)."""
    listed: dict[str, set[str]] = {}
    missing = []
    for shard in shards:
        folder, name = _split_url(shard)
        if folder.root not in listed:
            listed[folder.root] = set(folder.list("", ""))
        if name not in listed[folder.root]:
            missing.append(shard)
    return missing


def expand_shard_list(
    specs: str | Sequence[str],
    split: str | None = None,
    track: str | None = None,
    strict_track: bool = True,
) -> list[str]:
    """Every shard the specs name, in order, each once; FileNotFoundError naming missing ones.

    ``split`` picks one split of a pack when a spec is a manifest or a packed folder; ``track``
    (``montage`` or ``subject``) picks the shards whose samples serve it, and takes manifests
    and packed folders only (ValueError for other specs). With ``strict_track=False`` a spec
    whose shards carry no family (a build's per-film shards, a glob, a pack of the old layout)
    gives all its shards instead, for a reader that still picks samples by their json."""
    if isinstance(specs, str):
        specs = [specs]
    if track is not None:
        serving(track)  # ValueError for a track there is not
    found: list[str] = []
    to_check: list[str] = []
    for spec in specs:
        shards, check = _expand_one(str(spec), split, track, strict_track)
        found += shards
        if check:
            to_check += shards
    missing = _missing(to_check)
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise FileNotFoundError(f"{len(missing)} shard(s) of the list do not exist: {shown}")
    if not found:
        raise FileNotFoundError(f"no shards in {list(specs)}")
    return list(dict.fromkeys(found))


def shard_name(location: str | Path) -> str:
    """The file name of a shard given as a path or a url."""
    return str(location).rstrip("/").rsplit("/", 1)[-1]


@contextmanager
def local_shard(location: str | Path) -> Iterator[Path]:
    """A local path of the shard at ``location``: itself, or a temporary download (deleted
    when the block ends), so code that reads a local tar reads a remote one as well."""
    if not is_remote(str(location)):
        yield Path(location)
        return
    with tempfile.TemporaryDirectory(prefix="muss-shard-") as tmp:
        yield local_copy(str(location), Path(tmp))
