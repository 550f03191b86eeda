"""The typed film record against the published schema and the bytes of real builds."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from muss_builder.media.probe import FilmProbe
from muss_builder.samples.film_record import (
    Curation,
    DroppedSample,
    FilmDetection,
    FilmDuplicateOf,
    FilmRecord,
    FilmShot,
    FilmSubject,
    FilmTransition,
    IndexRow,
    Letterbox,
    ShardRecord,
    ShotDuplicateOf,
    Watermark,
)
from muss_builder.samples.records import validation_reason
from muss_builder.shards.schemas import json_schema, schema_errors

SHOT = ("properties", "shots", "items")
FILM_PARTS: list[tuple[type[BaseModel], tuple[str, ...]]] = [
    (FilmRecord, ()),
    (FilmShot, SHOT),
    (FilmDetection, (*SHOT, "properties", "detections", "items")),
    (FilmTransition, ("properties", "transitions", "items")),
    (Letterbox, ("properties", "letterbox")),
    (FilmSubject, ("properties", "subjects", "items")),
    (IndexRow, ("properties", "samples", "items")),
    (DroppedSample, ("properties", "dropped_samples", "items")),
    (ShardRecord, ("properties", "shards", "items")),
    (FilmDuplicateOf, ("properties", "duplicate_of")),
    (Watermark, ("properties", "watermark")),
    (Curation, ("properties", "curation")),
    (ShotDuplicateOf, (*SHOT, "properties", "duplicate_of")),
]


def schema_node(path: tuple[str, ...]) -> dict[str, Any]:
    node = json_schema("film")
    for part in path:
        node = node[part]
    return node


@pytest.mark.parametrize("model, path", FILM_PARTS, ids=[m.__name__ for m, _ in FILM_PARTS])
def test_each_part_of_the_film_model_mirrors_its_schema_node(
    model: type[BaseModel], path: tuple[str, ...]
) -> None:
    # the same checks as the sample's parts (required, closedness, enums, properties)
    from test_records import check_part

    check_part(model, schema_node(path))


def test_the_probe_is_typed_beyond_what_the_schema_requires() -> None:
    """The schema asks a probe for six fields; the record holds a whole FilmProbe (every
    record ever written has one), so the model requires those six and more."""
    required = {n for n, f in FilmProbe.model_fields.items() if f.is_required()}
    assert set(schema_node(("properties", "probe"))["required"]) <= required


def film_records(*datasets: Any) -> list[bytes]:
    return [
        path.read_bytes()
        for dataset in datasets
        for path in sorted(Path(dataset.out, "films").glob("*.json"))
    ]


def test_real_film_records_read_back_to_the_same_bytes(built_dataset, face_dataset) -> None:
    records = film_records(built_dataset, face_dataset)
    assert len(records) == 3
    for data in records:
        record = FilmRecord.model_validate_json(data)
        assert record.to_json_bytes() == data
        assert schema_errors("film", json.loads(data)) == []
    face = FilmRecord.model_validate_json(film_records(face_dataset)[0])
    assert face.subjects and any(shot.detections for shot in face.shots)


def mutations() -> list[tuple[str, Any, bool]]:
    def drop(*path: Any) -> Any:
        def change(doc: dict) -> None:
            node = doc
            for part in path[:-1]:
                node = node[part]
            del node[path[-1]]

        return change

    def put(value: Any, *path: Any) -> Any:
        def change(doc: dict) -> None:
            node = doc
            for part in path[:-1]:
                node = node[part]
            node[path[-1]] = value

        return change

    cases: list[tuple[str, Any, bool]] = [
        (f"no {key}", drop(key), False) for key in json_schema("film")["required"]
    ]
    cases += [
        ("extra root key", put(1, "extra"), False),
        ("failed status", put("failed", "status"), False),
        ("bad film id", put("abc", "film_id"), False),
        ("shot without sample_key", drop("shots", 0, "sample_key"), False),
        ("detection kind", put("car", "shots", 0, "detections", 0, "kind"), False),
        ("shard without sha256", drop("shards", 0, "sha256"), False),
        ("bad shard name", put("x.tar", "shards", 0, "name"), False),
        ("sample without shard", drop("samples", 0, "shard"), False),
        ("transition kind", put("jump", "transitions", 0, "kind"), False),
        ("determinism", put("maybe", "determinism"), False),
        ("null n_frames", put(None, "n_frames"), False),
        ("string timing", put("1", "timings", "probe"), False),
        ("excluded reason not text", put({"3": 1}, "excluded_shots"), False),
        # what the schema lets a record leave out or add, the model takes too, and writes back
        ("no n_frames", drop("n_frames"), True),
        ("no transitions", drop("transitions"), True),
        ("no timings", drop("timings"), True),
        ("no determinism", drop("determinism"), True),
        ("shot without detections", drop("shots", 0, "detections"), True),
        ("shot without n_frames", drop("shots", 0, "n_frames"), True),
        ("extra shot key", put(1, "shots", 0, "extra"), True),
        ("extra sample key", put(1, "samples", 0, "extra"), True),
        ("no letterbox", put(None, "letterbox"), True),
        ("any pipeline", put({"x": 1}, "pipeline"), True),
        # curation (issue 16)
        ("duplicate status", put("duplicate", "status"), True),
        ("film duplicate_of", put({"film_id": "0123456789abcdef"}, "duplicate_of"), True),
        ("duplicate_of without film", put({}, "duplicate_of"), False),
        (
            "duplicate_of extra key",
            put({"film_id": "0123456789abcdef", "x": 1}, "duplicate_of"),
            False,
        ),
        ("no crop", drop("crop"), True),
        ("crop of three", put([0, 0, 10], "crop"), False),
        ("negative crop", put([-2, 0, 10, 10], "crop"), False),
        ("fractional crop", put([0.5, 0, 10, 10], "crop"), False),
        (
            "a watermark",
            put({"box": [1, 2, 30, 40], "score": 0.5, "removal": "crop"}, "watermark"),
            True,
        ),
        (
            "watermark removal",
            put({"box": [1, 2, 3, 4], "score": 0.5, "removal": "blur"}, "watermark"),
            False,
        ),
        (
            "watermark score",
            put({"box": [1, 2, 3, 4], "score": 1.5, "removal": "none"}, "watermark"),
            False,
        ),
        ("curation without not_run", drop("curation", "not_run"), False),
        ("curation drop count", put({"black": -1}, "curation", "dropped"), False),
        ("no curation", drop("curation"), True),
        ("shot quality text", put({"luma": "dark"}, "shots", 0, "quality"), False),
        ("shot quality", put({"luma": 3, "motion": 0.5}, "shots", 0, "quality"), True),
        ("shot flags text", put("black", "shots", 0, "flags"), False),
        (
            "shot duplicate_of",
            put({"film_id": "0123456789abcdef", "shot": 3}, "shots", 0, "duplicate_of"),
            True,
        ),
        (
            "shot duplicate_of shot",
            put({"film_id": "0123456789abcdef", "shot": -1}, "shots", 0, "duplicate_of"),
            False,
        ),
        ("shot without quality", drop("shots", 0, "quality"), True),
        ("shot crop of five", put([0, 0, 1, 1, 1], "shots", 0, "crop"), False),
    ]
    return cases


@pytest.mark.parametrize("what, change, accepted", mutations(), ids=[c[0] for c in mutations()])
def test_the_model_accepts_exactly_what_the_schema_accepts(
    face_dataset, what: str, change: Any, accepted: bool
) -> None:
    doc = copy.deepcopy(json.loads(film_records(face_dataset)[0]))
    change(doc)
    assert (schema_errors("film", doc) == []) == accepted, what
    data = (json.dumps(doc, indent=2) + "\n").encode()
    if accepted:
        assert FilmRecord.model_validate_json(data).to_json_bytes() == data
    else:
        with pytest.raises(ValidationError):
            FilmRecord.model_validate_json(data)


def test_a_malformed_film_record_is_refused_with_where_and_why(built_dataset) -> None:
    doc = json.loads(film_records(built_dataset)[0])
    doc["shards"][0]["size_bytes"] = -1
    doc["status"] = "running"
    with pytest.raises(ValidationError) as info:
        FilmRecord.model_validate(doc)
    reason = validation_reason(info.value)
    assert "status: Input should be 'ok', 'skipped' or 'duplicate'" in reason
    assert "shards/0/size_bytes: Input should be greater than or equal to 1" in reason
