"""Hugging Face ``datasets`` features of a sample, derived from ``schemas/sample.schema.json``.

Every sample has the same members and every JSON field one type (docs/layout.md), yet a reader
that infers a schema from the first few samples can still guess wrong: an empty list (a
montage-only sample's ``references``, a shot without subjects) says nothing about its items,
and Arrow types it ``list<null>``, which a later non-empty list cannot be cast to. So the
features are written down once, from the schema (the one source of truth for a sample's
shape), and passed to ``load_dataset(..., features=...)`` or put in a dataset card's
``dataset_info.features``: loading never has to guess.
"""

from __future__ import annotations

from typing import Any

from muss_builder.core.naming import REFS_MEMBER
from muss_builder.shards.schemas import json_schema

_SCALARS = {"string": "string", "integer": "int64", "number": "float64", "boolean": "bool"}


def _resolve(node: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    target: Any = schema
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return target


def _dtype(node: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A node of the JSON schema as a feature tree: a dtype name, {"list": item}, or a dict
    of fields (a struct)."""
    node = _resolve(node, schema)
    kind = node.get("type")
    if isinstance(kind, list):  # the 2.0 schema has no union type; refuse to guess
        raise ValueError(f"a field of more than one type: {kind}")
    if kind is None and ("enum" in node or "const" in node):
        values = node.get("enum", [node.get("const")])
        kind = "string" if all(isinstance(v, str) for v in values) else None
    if kind in _SCALARS:
        return _SCALARS[kind]
    if kind == "array":
        return {"list": _dtype(node["items"], schema)}
    if kind == "object":
        return {name: _dtype(sub, schema) for name, sub in node.get("properties", {}).items()}
    raise ValueError(f"no feature for schema node {node}")


def sample_json_dtypes() -> dict[str, Any]:
    """The sample json's feature tree (plain data: dtype names, lists, structs)."""
    schema = json_schema("sample")
    return _dtype(schema, schema)


def _to_feature(tree: Any) -> Any:
    from datasets import List, Value

    if isinstance(tree, str):
        return Value(tree)
    if set(tree) == {"list"}:
        return List(_to_feature(tree["list"]))
    return {name: _to_feature(sub) for name, sub in tree.items()}


def hf_features(decode_video: bool = True) -> Any:
    """``datasets.Features`` of a shard sample as the ``webdataset`` loader yields it: the key
    and shard url, the parsed json, the clip (``Video``; ``decode_video=False`` keeps its
    bytes, for machines without ``torchcodec``) and the reference strip (``Image``). Needs
    the ``datasets`` package (imported here, not by the pipeline)."""
    from datasets import Features, Image, Value, Video

    return Features(
        {
            "__key__": Value("string"),
            "__url__": Value("string"),
            "json": _to_feature(sample_json_dtypes()),
            "mp4": Video(decode=decode_video),
            REFS_MEMBER: Image(),
        }
    )
