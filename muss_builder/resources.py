"""Locate the files that live at the repository root (schemas/, pipelines/).

In a source checkout (editable install) they are read from the repository; a wheel carries
copies under ``muss_builder/_data`` (see pyproject's force-include).
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """Return the folder ``schemas`` or ``pipelines``, from the checkout or the wheel."""
    for candidate in (_PACKAGE_DIR.parent / name, _PACKAGE_DIR / "_data" / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"muss-builder resource folder {name!r} not found near {_PACKAGE_DIR}")
