"""``KEY=VALUE`` overrides of a config, as the trainer's ``--set`` and the benchmarks take them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import yaml


def dotted_overrides(pairs: Iterable[str]) -> dict[str, Any]:
    """``["optim.lr=1e-3", "data.fps=8"]`` -> ``{"optim": {"lr": 0.001}, "data": {"fps": 8}}``;
    values are parsed as YAML (``null``, numbers, booleans, lists). A pair without ``=`` or
    with an empty key raises ``ValueError`` naming it."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{pair!r}: expected KEY=VALUE (e.g. optim.lr=1e-4)")
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(raw)
    return out
