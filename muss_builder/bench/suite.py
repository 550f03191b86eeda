"""The benchmark suite: multi-shot scripts drawn from held-out films of a built dataset.

Held-out films (the rule, so anyone can recompute it from ``film_id`` alone):

    score(film_id) = int(blake2b(f"muss-bench-holdout:{seed}:{film_id}", 8 bytes)) / 2**64
    held out  <=>  score(film_id) < holdout_fraction

A film's membership depends only on its own id and the seed, never on which other films the
dataset holds, so a grown dataset keeps the same held-out films. Only when the threshold holds
out fewer than ``min_films`` films (a tiny dataset) are the lowest-scoring films taken instead;
``suite.json`` records which rule applied. ``suite.json`` -> ``holdout.film_ids`` lists the
held-out films: a trainer excludes every sample whose ``film_id`` (index.parquet column, or the
sample json) is in that list (``held_out_film_ids(suite_dir)``).

Scripts: one per clip (a sample serves the montage and, with references, the subject track:
index.parquet has a row per track; the subject view is preferred because it carries
references), chosen in a seeded order.
Shot lengths are the sample's clip frames, captions its shot captions and global caption,
``ScriptShot.subjects`` the ground-truth boxes (clip frames) of every subject per shot. Each
reference (at most ``refs_per_target`` per subject and target shot) is cut from the sample's
``refs.jpg`` strip into ``refs/{key}_ref{k}.jpg`` (``k``: its place in the json's
``references``); its ``box`` is the subject's box on a target-shot keyframe grown by
the crop margin the pipeline cut the crop with (faces 1.6x: the crop shows the head, not just
the face box), so the crop scaled into ``box`` covers the subject, and ``frame`` is that
keyframe. The real clip is copied to ``real/{key}.mp4``: the suite carries its own real
baseline.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
from pydantic import ValidationError

from muss_builder.core.naming import REFS_MEMBER
from muss_builder.samples.records import Sample, validation_reason
from muss_builder.samples.ref_strip import JPEG_QUALITY, StripError, reference_crops
from muss_builder.train.script import Box, Script, ScriptReference, ScriptShot

SUITE_VERSION = "1.0"
SUITE_FILE = "suite.json"
FACE_CROP_MARGIN = 1.6  # SubjectsConfig.references.crop_margin default (faces)
OBJECT_CROP_MARGIN = 1.1  # the object margin of muss_builder/subjects/stage.py


class SuiteError(ValueError):
    """A dataset or suite folder cannot serve the benchmark; the message says why."""


@dataclass
class Suite:
    """A loaded suite: its folder, metadata and scripts (in ``suite.json`` order)."""

    root: Path
    meta: dict[str, Any]
    scripts: list[Script] = field(default_factory=list)

    def real_video(self, key: str) -> Path:
        return self.root / "real" / f"{key}.mp4"

    @property
    def held_out(self) -> list[str]:
        return list(self.meta["holdout"]["film_ids"])


def holdout_score(film_id: str, seed: int = 0) -> float:
    """The film's place in [0, 1) under the hold-out hash (see the module docstring)."""
    digest = hashlib.blake2b(f"muss-bench-holdout:{seed}:{film_id}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big") / 2**64


def choose_held_out(
    film_ids: list[str], fraction: float, seed: int = 0, min_films: int = 1
) -> tuple[list[str], str]:
    """``(held-out film ids sorted, rule applied)``: the threshold rule, topped up to
    ``min_films`` with the lowest-scoring films when it holds out too few."""
    if not 0 < fraction <= 1:
        raise SuiteError(f"holdout_fraction must be in (0, 1], got {fraction}")
    films = sorted(set(film_ids))
    if not films:
        raise SuiteError("the dataset has no films")
    held = [f for f in films if holdout_score(f, seed) < fraction]
    rule = f"blake2b score < {fraction}"
    if len(held) < min(min_films, len(films)):
        ranked = sorted(films, key=lambda f: (holdout_score(f, seed), f))
        held = ranked[: min(min_films, len(films))]
        rule = f"{rule} held out {sum(holdout_score(f, seed) < fraction for f in films)}; "
        rule += f"topped up to the {len(held)} lowest-scoring film(s)"
    return sorted(held), rule


def _index_rows(dataset: str, shards: Sequence[str] | None) -> list[dict[str, Any]]:
    """The index rows of ``dataset`` (a build or packed folder, local or ``s3://``), only
    those in the shards of the ``shards`` list when one is given."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from muss_builder.core.storage import Storage
    from muss_builder.pack.shardlist import expand_shard_list, shard_name

    store = Storage.open(dataset)
    if not store.exists("index.parquet"):
        raise SuiteError(f"{dataset}: no index.parquet (is this a built or packed dataset?)")
    columns = ["key", "film_id", "shard", "track", "source_start_frame", "source_end_frame"]
    table = pq.read_table(pa.BufferReader(store.read_bytes("index.parquet")), columns=columns)
    rows = table.to_pylist()
    if shards:
        try:
            names = {shard_name(s) for s in expand_shard_list(list(shards))}
        except (FileNotFoundError, ValueError) as exc:
            raise SuiteError(str(exc)) from exc
        rows = [r for r in rows if shard_name(r["shard"]) in names]
    return rows


def _samples(dataset: str, shards: list[str]) -> Iterator[tuple[Sample, dict[str, bytes]]]:
    from muss_builder.core.storage import Storage
    from muss_builder.pack.shardlist import local_shard, shard_name
    from muss_builder.shards.reader import iter_samples, load_sample_json

    store = Storage.open(dataset)
    for shard in shards:
        rel = shard if store.size(shard) is not None else f"shards/{shard_name(shard)}"
        if store.size(rel) is None:
            raise SuiteError(f"{dataset}: shard {shard} listed in index.parquet is missing")
        with local_shard(store.url(rel)) as path:
            for sample in iter_samples(path):
                try:
                    record = Sample.model_validate(load_sample_json(sample))
                except ValidationError as exc:
                    why = f"not a sample record ({validation_reason(exc)})"
                    raise SuiteError(f"{shard}: {sample.member_name('json')}: {why}") from exc
                yield record, sample.members


def _grow(box: list[float], margin: float) -> Box:
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    hw, hh = (box[2] - box[0]) * margin / 2, (box[3] - box[1]) * margin / 2
    grown = (max(0.0, cx - hw), max(0.0, cy - hh), min(1.0, cx + hw), min(1.0, cy + hh))
    return tuple(round(v, 5) for v in grown)  # type: ignore[return-value]


def _reference_jpegs(record: Sample, members: dict[str, bytes]) -> list[bytes]:
    """Each reference crop of a sample as JPEG bytes, cut from its ``refs.jpg`` strip."""
    if not record.references:
        return []
    data = members.get(REFS_MEMBER)
    if data is None:
        raise SuiteError(f"sample {record.key}: member {REFS_MEMBER} missing")
    try:
        crops = reference_crops(data, [ref.strip_box for ref in record.references])
    except StripError as exc:
        raise SuiteError(f"sample {record.key}: {REFS_MEMBER}: {exc}") from exc
    out = []
    for crop in crops:
        ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise SuiteError(f"sample {record.key}: a reference crop does not encode")
        out.append(buf.tobytes())
    return out


def script_from_sample(
    record: Sample,
    members: dict[str, bytes],
    refs_dir: Path,
    refs_per_target: int = 1,
    track: str = "subject",
) -> Script:
    """The script of one sample's ``track`` view (the montage view has no references);
    writes its reference crops into ``refs_dir``."""
    if track not in record.tracks:
        raise SuiteError(f"sample {record.key} serves {record.tracks}, not the {track} track")
    key = record.key
    shots = []
    film_to_local = {}
    for i, shot in enumerate(record.shots):
        film_to_local[shot.film_shot_index] = i
        subjects: dict[str, list[tuple[int, Box]]] = {}
        for entry in shot.subjects:
            boxes = subjects.setdefault(entry.id, [])
            boxes += [(b.clip_frame, tuple(b.box)) for b in entry.boxes]
        shots.append(
            ScriptShot(
                caption=shot.caption,
                n_frames=shot.clip_end_frame - shot.clip_start_frame,
                transition_in=shot.transition_in,
                subjects=subjects,
            )
        )
    references: list[ScriptReference] = []
    ref_sources: list[dict[str, Any]] = []
    taken: dict[tuple[str, int], int] = {}
    used = record.references if track == "subject" else []
    jpegs = _reference_jpegs(record, members) if used else []
    for n, ref in enumerate(used):
        for film_shot in ref.target_shots:
            local = film_to_local.get(film_shot)
            if local is None or ref.source_shot == film_shot:
                continue  # never a crop from the shot it serves (validate refuses those too)
            if taken.get((ref.subject, local), 0) >= refs_per_target:
                continue
            seen = shots[local].subjects.get(ref.subject)
            if not seen:
                continue  # no box of the subject in that shot: nowhere to put it
            frame, box = seen[len(seen) // 2]
            margin = FACE_CROP_MARGIN if ref.kind == "face" else OBJECT_CROP_MARGIN
            image = f"refs/{key}_ref{n}.jpg"
            (refs_dir / Path(image).name).write_bytes(jpegs[n])
            taken[(ref.subject, local)] = taken.get((ref.subject, local), 0) + 1
            grown = _grow(box, margin)
            references.append(ScriptReference(image, ref.subject, ref.kind, local, grown, frame))
            ref_sources.append(
                {"reference": n, "source_shot": ref.source_shot,
                 "fallback": ref.fallback, "film_target_shot": film_shot}
            )  # fmt: skip
    clip = record.clip
    script = Script(
        key=key,
        global_caption=record.global_caption,
        shots=shots,
        fps=float(clip.fps),
        width=clip.width,
        height=clip.height,
        references=references,
        source={
            "film_id": record.film_id,
            "sample": key,
            "track": track,
            # in the key order of the sample's json (written with sorted keys), as ever
            "span": dict(sorted(record.span.model_dump(mode="json").items())),
            "film_shots": [s.film_shot_index for s in record.shots],
            "references": ref_sources,
        },
    )
    script.check(f"sample {key}")
    return script


def make_suite(
    dataset_dir: str | Path,
    out_dir: str | Path,
    *,
    n_scripts: int = 50,
    holdout_fraction: float = 0.1,
    seed: int = 0,
    tracks: tuple[str, ...] = ("subject", "montage"),
    min_films: int = 1,
    refs_per_target: int = 1,
    shards: Sequence[str] | None = None,
) -> Suite:
    """Draw up to ``n_scripts`` scripts from the held-out films of ``dataset_dir`` into
    ``out_dir`` (``suite.json``, ``refs/``, ``real/``). ``tracks`` are the tracks to use, in
    order of preference. ``dataset_dir`` is a build or packed folder (a subset too), local or
    ``s3://``; ``shards`` (files, globs, brace patterns, manifests, urls) limits the draw to
    the samples in those shards."""
    dataset, out = str(dataset_dir), Path(out_dir)
    if n_scripts < 1:
        raise SuiteError(f"n_scripts must be at least 1, got {n_scripts}")
    bad = set(tracks) - {"subject", "montage"}
    if bad or not tracks:
        raise SuiteError(f"tracks must be among subject, montage; got {', '.join(tracks) or '-'}")
    if (out / SUITE_FILE).exists():
        raise SuiteError(f"{out} already holds a suite; choose an empty folder")
    rows = _index_rows(dataset, shards)
    held, rule = choose_held_out([r["film_id"] for r in rows], holdout_fraction, seed, min_films)
    # chosen from the index alone, so only the chosen samples are ever read: one per clip (a
    # film span; the preferred track wins), in a seeded order, preferred track first
    by_clip: dict[tuple[str, int, int], dict[str, Any]] = {}
    for row in rows:
        if row["film_id"] not in held or row["track"] not in tracks:
            continue
        clip = (row["film_id"], row["source_start_frame"], row["source_end_frame"])
        old = by_clip.get(clip)
        if old is None or tracks.index(row["track"]) < tracks.index(old["track"]):
            by_clip[clip] = row
    if not by_clip:
        raise SuiteError(
            f"{dataset}: the held-out films ({', '.join(held)}) have no {'/'.join(tracks)} samples"
        )
    picked = sorted(by_clip.values(), key=lambda r: r["key"])
    random.Random(seed).shuffle(picked)
    picked.sort(key=lambda r: tracks.index(r["track"]))  # stable: preferred track first
    order = {r["key"]: i for i, r in enumerate(picked[:n_scripts])}
    view = {r["key"]: r["track"] for r in picked[:n_scripts]}
    chosen: list[tuple[Sample, dict[str, bytes]]] = [
        (record, members)
        for record, members in _samples(dataset, sorted({r["shard"] for r in picked[:n_scripts]}))
        if record.key in order
    ]
    if len(chosen) != len(order):
        missing = sorted(set(order) - {record.key for record, _ in chosen})
        raise SuiteError(f"{dataset}: samples in index.parquet but not in their shards: "
                         f"{', '.join(missing[:5])}")  # fmt: skip
    chosen.sort(key=lambda dm: order[dm[0].key])
    (out / "refs").mkdir(parents=True, exist_ok=True)
    (out / "real").mkdir(exist_ok=True)
    scripts = []
    for record, data in chosen:  # the view each row chose: the subject one has references
        script = script_from_sample(record, data, out / "refs", refs_per_target, view[record.key])
        (out / "real" / f"{script.key}.mp4").write_bytes(data["mp4"])
        scripts.append(script)
    meta = {
        "suite_version": SUITE_VERSION,
        "dataset": dataset if "://" in dataset else str(Path(dataset).resolve()),
        "seed": seed,
        "tracks": list(tracks),
        "holdout": {
            "rule": rule,
            "fraction": holdout_fraction,
            "salt": f"muss-bench-holdout:{seed}:",
            "film_ids": held,
            "n_films_in_dataset": len({r["film_id"] for r in rows}),
        },
        "n_scripts": len(scripts),
    }
    doc = {**meta, "scripts": [s.to_dict() for s in scripts]}
    (out / SUITE_FILE).write_text(json.dumps(doc, indent=1) + "\n")
    return Suite(out, meta, scripts)


def load_suite(suite_dir: str | Path) -> Suite:
    """Read ``suite_dir/suite.json``; SuiteError naming the file when it is not a suite."""
    root = Path(suite_dir)
    path = root / SUITE_FILE
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SuiteError(f"{path}: cannot read a suite ({exc})") from exc
    if not isinstance(doc, dict) or "scripts" not in doc or "holdout" not in doc:
        raise SuiteError(f"{path}: not a suite (needs 'scripts' and 'holdout')")
    scripts = [
        Script.from_dict(s, where=f"{path} script {i}") for i, s in enumerate(doc["scripts"])
    ]
    keys = [s.key for s in scripts]
    if len(set(keys)) != len(keys):
        raise SuiteError(f"{path}: duplicate script keys")
    meta = {k: v for k, v in doc.items() if k != "scripts"}
    return Suite(root, meta, scripts)


def held_out_film_ids(suite_dir: str | Path) -> set[str]:
    """The films a trainer must leave out so the suite stays unseen."""
    return set(load_suite(suite_dir).held_out)
