"""The typed sample record against the published schema and the bytes of real builds."""

from __future__ import annotations

import copy
import json
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from muss_builder.captions.records import (
    CaptionerInfo,
    CaptionIssue,
    FactSubject,
)
from muss_builder.samples.records import (
    ClipInfo,
    Reference,
    Sample,
    SampleCamera,
    SampleFacts,
    SampleLighting,
    SamplePipeline,
    SampleShot,
    ShotSubject,
    Source,
    Span,
    SubjectBox,
    validation_reason,
)
from muss_builder.shards.reader import iter_samples
from muss_builder.shards.schemas import json_schema, schema_errors

CAPTIONS_OFF = {"backend": "none", "model": "", "sources": [], "attempts": 0}
SHOT = ("properties", "shots", "items")
FACTS = (*SHOT, "properties", "facts")
# every part of the sample model and the schema node it mirrors
SAMPLE_PARTS: list[tuple[type[BaseModel], tuple[str, ...]]] = [
    (Sample, ()),
    (Source, ("properties", "source")),
    (Span, ("properties", "span")),
    (ClipInfo, ("properties", "clip")),
    (SampleShot, SHOT),
    (ShotSubject, (*SHOT, "properties", "subjects", "items")),
    (SubjectBox, (*SHOT, "properties", "subjects", "items", "properties", "boxes", "items")),
    (SampleFacts, FACTS),
    (SampleCamera, (*FACTS, "properties", "camera")),
    (SampleLighting, (*FACTS, "properties", "lighting")),
    (FactSubject, (*FACTS, "properties", "subjects", "items")),
    (Reference, ("properties", "references", "items")),
    (CaptionIssue, ("properties", "caption_issues", "items")),
    (CaptionerInfo, ("properties", "captioner")),
    (SamplePipeline, ("properties", "pipeline")),
]


def schema_node(schema: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    node = schema
    for part in path:
        node = node[part]
    return node


def literal_values(annotation: Any) -> set[Any]:
    """The values of the Literal types inside ``annotation`` (through Optional, Annotated)."""
    if typing.get_origin(annotation) is typing.Literal:
        return set(typing.get_args(annotation))
    found: set[Any] = set()
    for arg in typing.get_args(annotation):
        found |= literal_values(arg)
    return found


def check_part(model: type[BaseModel], node: dict[str, Any]) -> None:
    """Same required fields, same closedness, same enums; every schema property a field."""
    required = {name for name, f in model.model_fields.items() if f.is_required()}
    assert required == set(node.get("required", [])), model.__name__
    closed = node.get("additionalProperties") is False
    assert (model.model_config.get("extra") == "forbid") == closed, model.__name__
    properties = node.get("properties", {})
    assert set(properties) <= set(model.model_fields), model.__name__
    if closed:
        assert set(model.model_fields) == set(properties), model.__name__
    for name, spec in properties.items():
        enum = set(spec["enum"]) if "enum" in spec else {spec["const"]} if "const" in spec else None
        if enum is not None:
            assert literal_values(model.model_fields[name].annotation) == enum, (model, name)


@pytest.mark.parametrize("model, path", SAMPLE_PARTS, ids=[m.__name__ for m, _ in SAMPLE_PARTS])
def test_each_part_of_the_sample_model_mirrors_its_schema_node(
    model: type[BaseModel], path: tuple[str, ...]
) -> None:
    check_part(model, schema_node(json_schema("sample"), path))


def sample_members(*datasets: Any) -> list[bytes]:
    members = []
    for dataset in datasets:
        for shard in sorted(Path(dataset.out, "shards").glob("*.tar")):
            members += [s.members["json"] for s in iter_samples(shard, load=("json",))]
    return members


def test_real_samples_read_back_to_the_same_bytes(built_dataset, face_dataset) -> None:
    members = sample_members(built_dataset, face_dataset)
    records = [Sample.model_validate_json(data) for data in members]
    for data, record in zip(members, records, strict=True):
        assert record.to_json_bytes() == data
        assert schema_errors("sample", json.loads(data)) == []
    # the builds cover both tracks (montage-only samples and samples serving both), captions
    # and facts, references
    assert {tuple(r.tracks) for r in records} == {("montage",), ("montage", "subject")}
    assert any(r.references for r in records)
    assert all(s.caption for r in records for s in r.shots)
    assert all(r.captioner.backend == "facts" for r in records)


def mutations() -> list[tuple[str, Any, bool]]:
    """(what, change of a real sample, whether the schema accepts the result)."""

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
        (f"no {key}", drop(key), False) for key in json_schema("sample")["required"]
    ]
    cases += [
        ("no shot caption", drop("shots", 0, "caption"), False),
        ("no box clip frame", drop("shots", 0, "subjects", 0, "boxes", 0, "clip_frame"), False),
        ("extra root key", put(1, "extra"), False),
        ("extra shot key", put(1, "shots", 0, "extra"), False),
        ("extra clip key", put(1, "clip", "extra"), False),
        ("track not in enum", put(["other"], "tracks"), False),
        ("no track", put([], "tracks"), False),
        ("a string for tracks", put("montage", "tracks"), False),
        ("null focus subjects", put(None, "focus_subjects"), False),
        ("a focus subject string", put("S1", "focus_subjects"), False),
        ("transition not in enum", put("zoom", "shots", 0, "transition_in"), False),
        ("scale not in enum", put("huge", "shots", 0, "facts", "scale"), False),
        ("schema version", put("1.0", "schema_version"), False),
        ("codec", put("hevc", "clip", "codec"), False),
        ("bad key pattern", put("x_00000", "key"), False),
        ("bad subject id", put(["P1"], "subjects"), False),
        ("bool for an integer", put(True, "n_shots"), False),
        ("string for a number", put("1.5", "duration_seconds"), False),
        ("float for an integer", put(1.5, "n_shots"), False),
        ("null for a required object", put(None, "clip"), False),
        ("odd clip width", put(161, "clip", "width"), False),
        ("zero clip fps", put(0, "clip", "fps"), False),
        ("box of three", put([0.1, 0.2, 0.3], "shots", 0, "subjects", 0, "boxes", 0, "box"), False),
        (
            "box past the frame",
            put([0, 0, 1.5, 1], "shots", 0, "subjects", 0, "boxes", 0, "box"),
            False,
        ),
        ("no shots", put([], "shots"), False),
        ("one transition frame", put([3], "shots", 0, "transition_in_frames"), False),
        ("three transition frames", put([3, 4, 5], "shots", 0, "transition_in_frames"), False),
        # 2.0: no field is null in some samples and a value in others (docs/layout.md)
        ("null captioner", put(None, "captioner"), False),
        ("null captioner model", put(None, "captioner", "model"), False),
        ("null facts", put(None, "shots", 0, "facts"), False),
        ("null camera", put(None, "shots", 0, "facts", "camera"), False),
        ("null lighting", put(None, "shots", 0, "facts", "lighting"), False),
        ("null shot caption", put(None, "shots", 0, "caption"), False),
        ("null global caption", put(None, "global_caption"), False),
        ("null prompt", put(None, "prompt"), False),
        ("null cut frames", put(None, "shots", 0, "transition_in_frames"), False),
        ("null issue shot", put([{"shot": None, "issue": "x"}], "caption_issues"), False),
        ("no crop", drop("crop"), False),
        # what the schema lets through, the model takes too
        ("an integer fps", put(24, "clip", "fps"), True),
        ("captions off", put(CAPTIONS_OFF, "captioner"), True),
        ("empty captions", put("", "shots", 0, "caption"), True),
        ("global caption issue", put([{"shot": -1, "issue": "x"}], "caption_issues"), True),
        ("extra facts key", put("x", "shots", 0, "facts", "extra"), True),
        ("extra camera key", put(0.5, "shots", 0, "facts", "camera", "extra"), True),
        ("unknown camera", put("unknown", "shots", 0, "facts", "camera", "kind"), True),
        ("gradual transition frames", put([3, 7], "shots", 0, "transition_in_frames"), True),
        ("a cut", put([], "shots", 0, "transition_in_frames"), True),
        # references: a place in the refs.jpg strip, a number for every pose delta
        ("a member for a strip box", put("ref0.jpg", "references", 0, "strip_box"), False),
        ("a strip box of three", put([0, 0, 5], "references", 0, "strip_box"), False),
        ("null pose delta", put(None, "references", 0, "pose_delta"), False),
        ("an object's pose delta", put(-1.0, "references", 0, "pose_delta"), True),
        ("crop of three", put([0, 0, 10], "crop"), False),
        ("negative crop", put([0, -2, 10, 10], "crop"), False),
    ]
    return cases


@pytest.mark.parametrize("what, change, accepted", mutations(), ids=[c[0] for c in mutations()])
def test_the_model_accepts_exactly_what_the_schema_accepts(
    face_dataset, what: str, change: Any, accepted: bool
) -> None:
    base = next(
        json.loads(data)
        for data in sample_members(face_dataset)
        if json.loads(data)["shots"][0]["subjects"] and json.loads(data)["shots"][0]["facts"]
    )
    doc = copy.deepcopy(base)
    change(doc)
    assert (schema_errors("sample", doc) == []) == accepted, what
    data = json.dumps(doc, sort_keys=True).encode()
    if accepted:
        assert Sample.model_validate_json(data).to_json_bytes() == data
    else:
        with pytest.raises(ValidationError):
            Sample.model_validate_json(data)


def test_a_malformed_sample_is_refused_with_where_and_why(built_dataset) -> None:
    doc = json.loads(sample_members(built_dataset)[0])
    doc["shots"][0]["clip_end_frame"] = "late"
    del doc["span"]
    with pytest.raises(ValidationError) as info:
        Sample.model_validate(doc)
    reason = validation_reason(info.value)
    assert "span: Field required" in reason
    assert "shots/0/clip_end_frame: Input should be a valid integer" in reason
