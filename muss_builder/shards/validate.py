"""``validate_dataset``: check an output folder against the contract (see DESIGN "Output layout").

Every problem is collected rather than stopping at the first, so one run tells a user all
that is wrong. Messages start with the file (relative to the dataset folder), then the sample
key or member, then the reason.
"""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from muss_builder.media.tools import MediaError, binary, run
from muss_builder.runtime.layout import OutputLayout
from muss_builder.shards.reader import ShardFormatError, ShardSample, iter_samples, load_sample_json
from muss_builder.shards.schemas import schema_errors, table_schema

_SHARD_NAME = re.compile(r"^(?P<film_id>[0-9a-f]{16})-\d{5}\.tar$")
_REF = re.compile(r"^ref\d+\.jpg$")


@dataclass
class ValidationReport:
    root: Path
    problems: list[str] = field(default_factory=list)
    n_shards: int = 0
    samples: set[tuple[str, str]] = field(default_factory=set)  # (key, shard) found in shards
    shard_keys: dict[str, list[str]] = field(default_factory=dict)  # readable shard -> keys
    bad_shards: set[str] = field(default_factory=set)

    @property
    def n_samples(self) -> int:
        return len(self.samples)

    def add(self, where: str, reason: str) -> None:
        self.problems.append(f"{where}: {reason}")


# ---------------------------------------------------------------------------- samples


def _check_members(report: ValidationReport, where: str, sample: ShardSample) -> None:
    for ext in ("json", "mp4"):
        if ext not in sample.members:
            report.add(where, f"no .{ext} member")
    for ext in sorted(sample.members):
        if ext not in ("json", "mp4") and not _REF.match(ext):
            report.add(where, f"unexpected member .{ext} (allowed: .json, .mp4, .ref{{k}}.jpg)")


def _boundary_problems(doc: dict[str, Any]) -> list[str]:
    """Shot boundaries must tile the clip and the source span exactly, in order."""
    shots, clip, span = doc["shots"], doc["clip"], doc["span"]
    problems: list[str] = []
    if doc["n_shots"] != len(shots):
        problems.append(f"n_shots is {doc['n_shots']} but {len(shots)} shots are listed")
    if shots[0]["clip_start_frame"] != 0:
        problems.append(f"shot 0 starts at clip frame {shots[0]['clip_start_frame']}, not 0")
    if shots[-1]["clip_end_frame"] != clip["n_frames"]:
        problems.append(
            f"last shot ends at clip frame {shots[-1]['clip_end_frame']}, "
            f"but clip.n_frames is {clip['n_frames']}"
        )
    if shots[0]["source_start_frame"] != span["start_frame"]:
        problems.append(
            f"shot 0 starts at source frame {shots[0]['source_start_frame']}, "
            f"span starts at {span['start_frame']}"
        )
    if shots[-1]["source_end_frame"] != span["end_frame"]:
        problems.append(
            f"last shot ends at source frame {shots[-1]['source_end_frame']}, "
            f"span ends at {span['end_frame']}"
        )
    if span["end_frame"] > doc["source"]["n_frames"]:
        problems.append(
            f"span ends at source frame {span['end_frame']}, past the source's "
            f"{doc['source']['n_frames']} frames"
        )
    for i, shot in enumerate(shots):
        for unit in ("clip", "source"):
            start, end = shot[f"{unit}_start_frame"], shot[f"{unit}_end_frame"]
            if end <= start:
                problems.append(f"shot {i} is empty in {unit} frames [{start}, {end})")
        if i == 0:
            continue
        prev = shots[i - 1]
        for unit in ("clip", "source"):
            if shot[f"{unit}_start_frame"] != prev[f"{unit}_end_frame"]:
                problems.append(
                    f"shot {i} starts at {unit} frame {shot[f'{unit}_start_frame']} "
                    f"but shot {i - 1} ends at {prev[f'{unit}_end_frame']}"
                )
    return problems


def _reference_problems(doc: dict[str, Any], members: dict[str, bytes]) -> list[str]:
    """A reference must come from a shot other than the ones it is a reference for, and from
    outside the sample unless it says it is a fallback; its crop must be in the tar."""
    problems: list[str] = []
    refs = doc["references"]
    sample_shots = {s["film_shot_index"] for s in doc["shots"]}
    if doc["track"] == "montage" and (refs or doc["focus_subject"] is not None):
        problems.append("a montage sample has references or a focus subject")
    if doc["track"] == "subject":
        if not refs:
            problems.append("a subject-track sample has no reference")
        if doc["focus_subject"] not in doc["subjects"]:
            problems.append(f"focus subject {doc['focus_subject']} is not among its subjects")
    listed = {ref["member"] for ref in refs}
    for name in sorted(m for m in members if _REF.match(m) and m not in listed):
        problems.append(f"member .{name} is not described in references")
    for ref in refs:
        name, source = ref["member"], ref["source_shot"]
        if source in ref["target_shots"]:
            problems.append(f"{name} is cut from shot {source}, one of the shots it serves")
        if not set(ref["target_shots"]) <= sample_shots:
            problems.append(f"{name} serves shots {ref['target_shots']} outside the sample")
        if source in sample_shots and not ref["fallback"]:
            problems.append(f"{name} comes from shot {source} of this sample but is no fallback")
        if source not in sample_shots and ref["fallback"]:
            problems.append(f"{name} is flagged fallback but comes from outside the sample")
        if ref["subject"] not in doc["subjects"]:
            problems.append(f"{name} shows subject {ref['subject']}, absent from the sample")
        data = members.get(name)
        if data is None:
            problems.append(f"{name} is listed but not in the tar")
        elif not data.startswith(b"\xff\xd8"):
            problems.append(f"{name} is not a JPEG")
    return problems


def probe_clip(mp4: bytes, workdir: Path) -> dict[str, Any]:
    """Codec, size and exact frame count (packets counted by reading) of an mp4 in memory."""
    path = workdir / "clip.mp4"
    path.write_bytes(mp4)
    out = run(
        [
            binary("ffprobe"),
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-count_packets",
            "-show_entries",
            "stream=codec_name,width,height,nb_read_packets",
            "-of",
            "json",
            str(path),
        ],
        what="ffprobe of the sample's mp4",
        timeout=300,
    )
    streams = json.loads(out).get("streams") or []
    if not streams:
        raise MediaError("the mp4 has no video stream")
    stream = streams[0]
    return {
        "codec": stream.get("codec_name"),
        "width": stream.get("width"),
        "height": stream.get("height"),
        "n_frames": int(stream.get("nb_read_packets", 0)),
    }


def _check_clip(
    report: ValidationReport, where: str, mp4: bytes, clip: dict[str, Any], workdir: Path
) -> None:
    try:
        facts = probe_clip(mp4, workdir)
    except (MediaError, ValueError) as exc:
        report.add(f"{where}.mp4", f"unreadable: {exc}")
        return
    if facts["n_frames"] != clip["n_frames"]:
        report.add(
            f"{where}.mp4",
            f"has {facts['n_frames']} frames, the json says clip.n_frames = {clip['n_frames']}",
        )
    if (facts["width"], facts["height"]) != (clip["width"], clip["height"]):
        report.add(
            f"{where}.mp4",
            f"is {facts['width']}x{facts['height']}, "
            f"the json says {clip['width']}x{clip['height']}",
        )
    if facts["codec"] != clip["codec"]:
        report.add(f"{where}.mp4", f"codec is {facts['codec']}, the json says {clip['codec']}")


def _check_sample(
    report: ValidationReport, rel: str, film_id: str | None, sample: ShardSample, workdir: Path
) -> None:
    where = f"{rel}: sample {sample.key}"
    _check_members(report, where, sample)
    if film_id is not None and not sample.key.startswith(f"{film_id}_"):
        report.add(where, f"key does not start with the shard's film id {film_id}")
    if "json" not in sample.members:
        return
    try:
        doc = load_sample_json(sample)
    except ShardFormatError as exc:
        report.add(rel, exc.detail)
        return
    errors = schema_errors("sample", doc)
    for error in errors:
        report.add(f"{where}.json", f"schema: {error}")
    if doc.get("key") != sample.key:
        report.add(f"{where}.json", f"key is {doc.get('key')!r}, the tar key is {sample.key!r}")
    if film_id is not None and doc.get("film_id") != film_id:
        report.add(
            f"{where}.json", f"film_id is {doc.get('film_id')!r}, the shard's film is {film_id}"
        )
    if errors:  # the checks below index into the document: only safe on a valid one
        return
    for problem in _boundary_problems(doc) + _reference_problems(doc, sample.members):
        report.add(f"{where}.json", problem)
    if "mp4" in sample.members:
        _check_clip(report, where, sample.members["mp4"], doc["clip"], workdir)


# ---------------------------------------------------------------------------- shards


def _check_shard(report: ValidationReport, path: Path, workdir: Path) -> None:
    rel = f"shards/{path.name}"
    match = _SHARD_NAME.match(path.name)
    film_id = match["film_id"] if match else None
    if match is None:
        report.add(rel, "name is not {film_id}-{n:05d}.tar")
    keys: list[str] = []
    try:
        for sample in iter_samples(path):
            keys.append(sample.key)
            report.samples.add((sample.key, path.name))
            _check_sample(report, rel, film_id, sample, workdir)
    except ShardFormatError as exc:
        report.add(rel, exc.detail)
        report.bad_shards.add(path.name)
        return
    if not keys:
        report.add(rel, "holds no sample")
    report.shard_keys[path.name] = keys


def _check_leftovers(report: ValidationReport, layout: OutputLayout) -> None:
    """Temporary files of an interrupted writer: a finished build leaves none."""
    for path in sorted(layout.shards.glob("*.partial*")):
        report.add(
            f"shards/{path.name}",
            "leftover partial shard (an interrupted writer; rerun the build or delete it)",
        )
    for folder, prefix in ((layout.root, ""), (layout.films, "films/")):
        if folder.is_dir():
            for path in sorted(folder.glob(".*.tmp*")):
                report.add(f"{prefix}{path.name}", "leftover temporary file")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------------------- films


def _check_film_shard(
    report: ValidationReport, layout: OutputLayout, rel: str, entry: dict[str, Any]
) -> None:
    name = entry["name"]
    path = layout.shards / name
    if not path.is_file():
        report.add(rel, f"lists shard {name}, which does not exist")
        return
    size = path.stat().st_size
    if size != entry["size_bytes"]:
        report.add(rel, f"lists shard {name} with {entry['size_bytes']} bytes; it has {size}")
    elif _sha256(path) != entry["sha256"]:
        report.add(
            rel, f"lists shard {name} with sha256 {entry['sha256'][:12]}...; its content differs"
        )
    found = report.shard_keys.get(name)
    if found is not None and found != list(entry["keys"]):
        report.add(rel, f"lists keys {entry['keys']} in shard {name}; it holds {found}")


def _check_films(report: ValidationReport, layout: OutputLayout) -> set[str]:
    """Check every film record; return the shard names they list."""
    listed: set[str] = set()
    for path in sorted(layout.films.glob("*.json")) if layout.films.is_dir() else []:
        rel = f"films/{path.name}"
        try:
            doc = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            report.add(rel, f"unreadable: {exc}")
            continue
        errors = schema_errors("film", doc)
        for error in errors:
            report.add(rel, f"schema: {error}")
        if errors:
            continue
        if doc["film_id"] != path.stem:
            report.add(rel, f"film_id is {doc['film_id']}, the file name says {path.stem}")
        for entry in doc["shards"]:
            listed.add(entry["name"])
            _check_film_shard(report, layout, rel, entry)
    return listed


# ---------------------------------------------------------------------------- tables


def _schema_problems(table: pa.Schema, expected: pa.Schema) -> list[str]:
    problems = []
    names = set(table.names)
    for f in expected:
        if f.name not in names:
            problems.append(f"column {f.name} is missing")
        elif table.field(f.name).type != f.type:
            problems.append(f"column {f.name} is {table.field(f.name).type}, expected {f.type}")
    problems += [f"unexpected column {n}" for n in table.names if n not in expected.names]
    return problems


def _read_table(report: ValidationReport, path: Path, name: str) -> pa.Table | None:
    rel = path.name
    if not path.is_file():
        report.add(rel, "missing")
        return None
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        report.add(rel, f"unreadable: {exc}")
        return None
    problems = _schema_problems(table.schema, table_schema(name))
    for problem in problems:
        report.add(rel, problem)
    return None if problems else table


def _check_index(report: ValidationReport, layout: OutputLayout) -> None:
    table = _read_table(report, layout.index, "index")
    if table is None:
        return
    pairs = list(
        zip(table.column("key").to_pylist(), table.column("shard").to_pylist(), strict=True)
    )
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            report.add("index.parquet", f"key {key} appears more than once")
        seen.add(key)
    indexed = set(pairs)
    for key, shard in sorted(report.samples - indexed):
        report.add("index.parquet", f"key {key} (in shards/{shard}) is missing from the index")
    for key, shard in sorted(indexed - report.samples):
        if shard in report.bad_shards:
            continue  # already reported as an unreadable shard
        missing = not (layout.shards / shard).is_file()
        report.add(
            "index.parquet",
            f"key {key} points to shards/{shard}, which "
            + ("does not exist" if missing else "does not hold it"),
        )


# ---------------------------------------------------------------------------- entry points


def check_dataset(out_dir: str | Path) -> ValidationReport:
    """Validate the dataset folder ``out_dir``; the report lists every problem found."""
    layout = OutputLayout(Path(out_dir))
    report = ValidationReport(root=layout.root)
    if not layout.root.is_dir():
        report.add(str(layout.root), "not a folder")
        return report
    if not layout.shards.is_dir():
        report.add("shards", "missing folder")
    if not layout.films.is_dir():
        report.add("films", "missing folder")
    shards = sorted(layout.shards.glob("*.tar")) if layout.shards.is_dir() else []
    report.n_shards = len(shards)
    with tempfile.TemporaryDirectory(prefix="muss-validate-") as tmp:
        for shard in shards:
            _check_shard(report, shard, Path(tmp))
    listed = _check_films(report, layout)
    for shard in shards:
        if shard.name not in listed:
            report.add(
                f"shards/{shard.name}",
                "not listed by any films/*.json (a film that did not finish?)",
            )
    _check_leftovers(report, layout)
    _check_index(report, layout)
    _read_table(report, layout.films_table, "films")
    return report


def validate_dataset(out_dir: str | Path) -> list[str]:
    """Every problem of the dataset folder ``out_dir``; an empty list means it is valid."""
    return check_dataset(out_dir).problems
