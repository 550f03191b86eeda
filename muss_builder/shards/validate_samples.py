"""Validate's checks of shards and their samples (the folder-level checks are in validate.py).

A shard is read once, with only its ``.json`` members loaded: clips are probed in place
inside the shard (ffmpeg's ``subfile`` protocol) and the ``refs.jpg`` strip is checked by its
first bytes (its size, from the JPEG frame header), so validating never holds a clip in memory.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from muss_builder.core.naming import REFS_MEMBER, SAMPLE_MEMBERS, film_of_shard
from muss_builder.media.commands import count_packets
from muss_builder.media.tools import MediaError, run
from muss_builder.samples.records import ClipInfo, Sample, validation_reason
from muss_builder.samples.ref_strip import PLACEHOLDER_SIDE, jpeg_size
from muss_builder.shards.reader import (
    DEFAULT_LIMITS,
    Member,
    ReaderLimits,
    ShardFormatError,
    ShardSample,
    iter_samples,
    load_sample_json,
)
from muss_builder.shards.schemas import schema_errors
from muss_builder.shards.untrusted import printable

_MAX_PROBLEM_CHARS = 500
_MAX_SCHEMA_ERRORS = 10  # per document: a hostile one could have a million


@dataclass
class ValidationReport:
    root: Path
    problems: list[str] = field(default_factory=list)
    n_shards: int = 0
    samples: set[tuple[str, str]] = field(default_factory=set)  # (key, shard) found in shards
    shard_keys: dict[str, list[str]] = field(default_factory=dict)  # readable shard -> keys
    bad_shards: set[str] = field(default_factory=set)
    tracks: dict[str, list[str]] = field(default_factory=dict)  # key -> tracks its json serves
    limits: ReaderLimits = DEFAULT_LIMITS

    @property
    def n_samples(self) -> int:
        return len(self.samples)

    def add(self, where: str, reason: str) -> None:
        # escaped and bounded here, once for every caller: names and values come from files
        # anyone could have made (an ESC in a name, a 16 MB string in a json)
        self.problems.append(printable(f"{where}: {reason}", _MAX_PROBLEM_CHARS))


def _check_members(report: ValidationReport, where: str, sample: ShardSample) -> None:
    # every sample has exactly these members (docs/layout.md): readers infer one schema
    for ext in SAMPLE_MEMBERS:
        if ext not in sample.entries:
            report.add(where, f"no .{ext} member")
    allowed = ", ".join(f".{m}" for m in SAMPLE_MEMBERS)
    for ext in sorted(sample.entries):
        if ext not in SAMPLE_MEMBERS:
            report.add(where, f"unexpected member .{ext} (allowed: {allowed})")


def _boundary_problems(sample: Sample) -> list[str]:
    """Shot boundaries must tile the clip and the source span exactly, in order."""
    shots, clip, span = sample.shots, sample.clip, sample.span
    problems: list[str] = []
    if sample.n_shots != len(shots):
        problems.append(f"n_shots is {sample.n_shots} but {len(shots)} shots are listed")
    if shots[0].clip_start_frame != 0:
        problems.append(f"shot 0 starts at clip frame {shots[0].clip_start_frame}, not 0")
    if shots[-1].clip_end_frame != clip.n_frames:
        problems.append(
            f"last shot ends at clip frame {shots[-1].clip_end_frame}, "
            f"but clip.n_frames is {clip.n_frames}"
        )
    if shots[0].source_start_frame != span.start_frame:
        problems.append(
            f"shot 0 starts at source frame {shots[0].source_start_frame}, "
            f"span starts at {span.start_frame}"
        )
    if shots[-1].source_end_frame != span.end_frame:
        problems.append(
            f"last shot ends at source frame {shots[-1].source_end_frame}, "
            f"span ends at {span.end_frame}"
        )
    if span.end_frame > sample.source.n_frames:
        problems.append(
            f"span ends at source frame {span.end_frame}, past the source's "
            f"{sample.source.n_frames} frames"
        )
    frames = [
        {
            "clip": (s.clip_start_frame, s.clip_end_frame),
            "source": (s.source_start_frame, s.source_end_frame),
        }
        for s in shots
    ]
    for i, shot in enumerate(frames):
        for unit, (start, end) in shot.items():
            if end <= start:
                problems.append(f"shot {i} is empty in {unit} frames [{start}, {end})")
        if i == 0:
            continue
        for unit, (start, _) in shot.items():
            prev_end = frames[i - 1][unit][1]
            if start != prev_end:
                problems.append(
                    f"shot {i} starts at {unit} frame {start} but shot {i - 1} ends at {prev_end}"
                )
    return problems


def _head(member: bytes | Member, n: int) -> bytes:
    return member[:n] if isinstance(member, bytes) else member.head(n)


_STRIP_HEAD = 65536  # bytes read for the strip's frame header (a JPEG's first ~600 here)


def _strip_problems(sample: Sample, strip: bytes | Member | None) -> list[str]:
    """The strip must be a JPEG whose boxes tile it left to right, full height (the
    placeholder's 8x8 when the sample has no reference)."""
    if strip is None:
        return []  # said by the member check
    size = jpeg_size(_head(strip, _STRIP_HEAD))
    if size is None:
        return [f"{REFS_MEMBER} is not a JPEG (or its size is not in its first bytes)"]
    width, height = size
    boxes = [ref.strip_box for ref in sample.references]
    if not boxes:
        if size != (PLACEHOLDER_SIDE, PLACEHOLDER_SIDE):
            return [f"{REFS_MEMBER} is {width}x{height} with no reference: not the placeholder"]
        return []
    problems: list[str] = []
    x = 0
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        if (x0, y0, y1) != (x, 0, height) or x1 <= x0:
            problems.append(
                f"references[{k}].strip_box {[x0, y0, x1, y1]} does not follow the previous "
                f"one at x {x}, full height {height}"
            )
        x = x1
    if x != width:
        problems.append(f"the strip boxes end at x {x}; {REFS_MEMBER} is {width} wide")
    return problems


def reference_problems(sample: Sample, members: Mapping[str, bytes | Member]) -> list[str]:
    """Tracks, focus and references must agree; a reference must come from a shot other than
    the ones it is a reference for, and from outside the sample unless it says it is a
    fallback; the strip must hold every crop where its box says."""
    problems: list[str] = []
    refs = sample.references
    sample_shots = {s.film_shot_index for s in sample.shots}
    subject = "subject" in sample.tracks
    if sample.tracks not in (["montage"], ["montage", "subject"], ["subject"]):
        problems.append(
            f"tracks are {sample.tracks}, not ['montage'], ['montage', 'subject'] or ['subject']"
        )
    if (sample.tracks == ["subject"]) != (sample.window.kind == "subject"):
        problems.append(f"tracks {sample.tracks} do not fit a {sample.window.kind!r} window")
    if not subject and (refs or sample.focus_subjects):
        problems.append("a montage-only sample has references or focus subjects")
    if subject:
        if not refs:
            problems.append("a sample serving the subject track has no reference")
        if not sample.focus_subjects:
            problems.append("a sample serving the subject track has no focus subject")
    for sid in sample.focus_subjects:
        if sid not in sample.subjects:
            problems.append(f"focus subject {sid} is not among its subjects")
    for k, ref in enumerate(refs):
        name, source = f"references[{k}]", ref.source_shot
        if source in ref.target_shots:
            problems.append(f"{name} is cut from shot {source}, one of the shots it serves")
        if not set(ref.target_shots) <= sample_shots:
            problems.append(f"{name} serves shots {ref.target_shots} outside the sample")
        if source in sample_shots and not ref.fallback:
            problems.append(f"{name} comes from shot {source} of this sample but is no fallback")
        if source not in sample_shots and ref.fallback:
            problems.append(f"{name} is flagged fallback but comes from outside the sample")
        if ref.subject not in sample.subjects:
            problems.append(f"{name} shows subject {ref.subject}, absent from the sample")
        if ref.subject not in sample.focus_subjects:
            problems.append(f"{name} shows subject {ref.subject}, not a focus subject")
    return problems + _strip_problems(sample, members.get(REFS_MEMBER))


def probe_clip(mp4: Member) -> dict[str, Any]:
    """Codec, size and exact frame count (packets counted by reading) of a sample's mp4,
    read where it lies in the shard: nothing is copied or held in memory."""
    if mp4.size == 0:
        raise MediaError("the mp4 is empty")
    if mp4.data is not None and mp4.offset < 0:  # built in memory (tests): no shard to point at
        raise MediaError("the mp4 is not in a shard file")
    # subfile reads bytes [start, end) of the shard; "file:" keeps any path a plain path
    start, end = mp4.offset, mp4.offset + mp4.size
    url = f"subfile,,start,{start},end,{end},,:file:{Path(mp4.shard).absolute()}"
    out = run(
        count_packets(url),
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


def _check_clip(report: ValidationReport, where: str, mp4: Member, clip: ClipInfo) -> None:
    try:
        facts = probe_clip(mp4)
    except (MediaError, ValueError) as exc:
        report.add(f"{where}.mp4", f"unreadable: {exc}")
        return
    if facts["n_frames"] != clip.n_frames:
        report.add(
            f"{where}.mp4",
            f"has {facts['n_frames']} frames, the json says clip.n_frames = {clip.n_frames}",
        )
    if (facts["width"], facts["height"]) != (clip.width, clip.height):
        report.add(
            f"{where}.mp4",
            f"is {facts['width']}x{facts['height']}, the json says {clip.width}x{clip.height}",
        )
    if facts["codec"] != clip.codec:
        report.add(f"{where}.mp4", f"codec is {facts['codec']}, the json says {clip.codec}")


def _check_sample(
    report: ValidationReport, rel: str, film_id: str | None, sample: ShardSample
) -> None:
    where = f"{rel}: sample {sample.key}"
    _check_members(report, where, sample)
    if film_id is not None and not sample.key.startswith(f"{film_id}_"):
        report.add(where, f"key does not start with the shard's film id {film_id}")
    if "json" not in sample.entries:
        return
    try:
        doc = load_sample_json(sample, report.limits)
    except ShardFormatError as exc:
        report.add(rel, exc.detail)
        return
    errors = schema_errors("sample", doc)
    for error in errors[:_MAX_SCHEMA_ERRORS]:
        report.add(f"{where}.json", f"schema: {error}")
    if len(errors) > _MAX_SCHEMA_ERRORS:
        report.add(f"{where}.json", f"schema: {len(errors) - _MAX_SCHEMA_ERRORS} more errors")
    if doc.get("key") != sample.key:
        report.add(f"{where}.json", f"key is {doc.get('key')!r}, the tar key is {sample.key!r}")
    if film_id is not None and doc.get("film_id") != film_id:
        report.add(
            f"{where}.json", f"film_id is {doc.get('film_id')!r}, the shard's film is {film_id}"
        )
    if errors:  # the checks below read the typed record: only a valid document makes one
        return
    try:
        record = Sample.model_validate(doc)
    except ValidationError as exc:  # the schema and the model agree (tests): never expected
        report.add(f"{where}.json", f"record: {validation_reason(exc)}")
        return
    report.tracks[sample.key] = list(record.tracks)
    for problem in _boundary_problems(record) + reference_problems(record, sample.entries):
        report.add(f"{where}.json", problem)
    if "mp4" in sample.entries:
        _check_clip(report, where, sample.entries["mp4"], record.clip)


def check_shard(
    report: ValidationReport, path: Path, rel: str | None = None, per_film: bool = True
) -> None:
    """Every problem of one shard and its samples, into ``report``. A build's shard
    (``per_film``) is named and keyed by its film; a packed shard mixes films. ``rel`` is
    how messages name it (default ``shards/{name}``)."""
    rel = rel or f"shards/{path.name}"
    name = rel.rsplit("/", 1)[-1]  # a downloaded copy's file name may differ
    film_id = film_of_shard(name) if per_film else None
    if per_film and film_id is None:
        report.add(rel, "name is not {film_id}-{n:05d}.tar")
    keys: list[str] = []
    try:
        # a refused member is reported and skipped: one run lists every problem of the shard
        member_problem = lambda exc: report.add(rel, exc.detail)  # noqa: E731
        for sample in iter_samples(path, report.limits, ("json",), member_problem):
            keys.append(sample.key)
            report.samples.add((sample.key, name))
            _check_sample(report, rel, film_id, sample)
    except ShardFormatError as exc:
        report.add(rel, exc.detail)
        report.bad_shards.add(name)
        return
    if not keys:
        report.add(rel, "holds no sample")
    report.shard_keys[name] = keys
