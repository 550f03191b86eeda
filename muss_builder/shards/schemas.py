"""Load the JSON Schemas and the Arrow table schemas from ``schemas/`` and validate against them."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import jsonschema
import pyarrow as pa

from muss_builder.resources import resource_dir

_ARROW_TYPES = {
    "string": pa.string(),
    "bool": pa.bool_(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
}


@cache
def json_schema(name: str) -> dict[str, Any]:
    """``name`` is ``sample`` or ``film``."""
    return json.loads((resource_dir("schemas") / f"{name}.schema.json").read_text())


@cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json_schema(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def schema_errors(name: str, document: Any) -> list[str]:
    """Every violation of schema ``name`` in ``document``, as 'path: message' lines."""
    errors = sorted(_validator(name).iter_errors(document), key=lambda e: list(e.absolute_path))
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors]


def _arrow_type(text: str) -> pa.DataType:
    if text.startswith("list<") and text.endswith(">"):
        return pa.list_(_arrow_type(text[5:-1]))
    return _ARROW_TYPES[text]


@cache
def table_schema(name: str) -> pa.Schema:
    """Arrow schema of ``index`` or ``films`` from ``schemas/tables.json``."""
    spec = json.loads((resource_dir("schemas") / "tables.json").read_text())
    return pa.schema(
        [pa.field(f["name"], _arrow_type(f["type"]), nullable=f["nullable"]) for f in spec[name]],
        metadata={"schema_version": spec["schema_version"]},
    )
