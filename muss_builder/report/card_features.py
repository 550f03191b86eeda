"""The dataset card's ``dataset_info.features``: the sample's Arrow types, so that Hugging Face
``datasets`` never has to guess them from the first few samples.

``datasets`` infers a WebDataset's schema from its first five samples: a list that is empty
there becomes a list of nulls and the first sample with an entry then fails to load, and a key
first seen in sample six is dropped. Declaring every column in the card avoids both. The types
come from the pydantic model of a sample (``samples.records.Sample``: the same model every
sample is validated by), plus the keys the build's own samples show for the few objects the
model leaves open (``additionalProperties``: e.g. a camera's per-second components): a key
the card does not declare is silently dropped by ``datasets``.

The YAML shape is the one ``datasets.Features._to_yaml_list`` writes: ``{name, dtype}`` for a
scalar, ``{name, struct: [...]}`` for an object, ``{name, list: <dtype>}`` or
``{name, list: [fields]}`` for a list (of scalars, of objects).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from muss_builder.samples.records import Sample

# members of every sample, in the order the card lists them (``__key__``/``__url__`` are the
# WebDataset loader's own columns)
MEMBER_FEATURES: dict[str, str] = {"mp4": "video", "refs.jpg": "image"}


def _resolve(node: dict, defs: dict) -> dict:
    while "$ref" in node:
        node = defs[node["$ref"].rsplit("/", 1)[-1]]
    return node


def _non_null(node: dict, defs: dict) -> dict:
    """The one non-null alternative of an ``anyOf`` (numbers: int|float is float)."""
    node = _resolve(node, defs)
    if "anyOf" not in node:
        return node
    options = [_resolve(o, defs) for o in node["anyOf"] if o.get("type") != "null"]
    types = {o.get("type") for o in options}
    if types <= {"integer", "number"} and types:
        return {"type": "number" if "number" in types else "integer"}
    return options[0] if options else {"type": "string"}


def _dtype(node: dict) -> str | None:
    kind = node.get("type")
    if kind is None and "const" in node:
        kind = "string" if isinstance(node["const"], str) else "number"
    return {"string": "string", "integer": "int64", "number": "float64", "boolean": "bool"}.get(
        kind or ""
    )


def _field(name: str, node: dict, defs: dict, seen: dict) -> dict:
    node = _non_null(node, defs)
    if node.get("type") == "array":
        item = _non_null(node.get("items", {"type": "string"}), defs)
        if item.get("type") == "object":
            return {"name": name, "list": _fields(item, defs, seen)}
        return {"name": name, "list": _dtype(item) or "string"}
    if node.get("type") == "object":
        return {"name": name, "struct": _fields(node, defs, seen)}
    return {"name": name, "dtype": _dtype(node) or "string"}


def _fields(node: dict, defs: dict, seen: dict) -> list[dict]:
    """Every property of an object node, with the extra keys samples showed for open ones."""
    props = dict(node.get("properties", {}))
    if node.get("additionalProperties", False) is not False:
        for key, value in sorted(seen.items()):
            if key not in props and isinstance(value, dict):
                # an object the model does not describe is open; a scalar keeps its type
                props[key] = value if "type" in value else {"type": "object", "properties": {}}
                if "type" not in value:
                    props[key]["additionalProperties"] = True
    return [_field(k, v, defs, seen.get(k, {}).get("children", {})) for k, v in props.items()]


def observed_keys(documents: Iterable[Any]) -> dict:
    """Nested key tree of JSON documents: ``{key: {"type": ..., "children": {...}}}``;
    list items are merged into their list's node (only open objects use it)."""
    tree: dict = {}

    def walk(value: Any, into: dict) -> None:
        if isinstance(value, dict):
            for key, child in value.items():
                entry = into.setdefault(key, {"children": {}})
                scalar = _scalar_schema(child)
                if scalar is not None:
                    entry.update(scalar)
                walk(child, entry["children"])
        elif isinstance(value, list):
            for item in value:
                walk(item, into)

    for doc in documents:
        walk(doc, tree)
    return tree


def _scalar_schema(value: Any) -> dict | None:
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    if isinstance(value, float):
        return {"type": "number"}
    if isinstance(value, str):
        return {"type": "string"}
    return None


def sample_features(samples: Iterable[dict] = ()) -> list[dict]:
    """``dataset_info.features`` of a sample: key, url, every member, the JSON's columns."""
    schema = Sample.model_json_schema()
    defs = schema.get("$defs", {})
    json_fields = _fields(schema, defs, observed_keys(samples))
    return [
        {"name": "__key__", "dtype": "string"},
        {"name": "__url__", "dtype": "string"},
        *({"name": name, "dtype": dtype} for name, dtype in MEMBER_FEATURES.items()),
        {"name": "json", "struct": json_fields},
    ]
