"""How the command line looks and talks: help text, verbosity and colour.

- Help without typer's internal type labels (``<bool>``, ``<str>``, ``<list[str]>``): typer
  (0.2x) prints a parameter's Python annotation as its type column and offers no setting to
  turn that off, so ``plain_help`` replaces the two methods that make those labels. An option
  shows its ``metavar`` when it has one, else click's own name of its type (``TEXT``,
  ``INTEGER``, ``PATH``...); a flag and an argument show none (the argument's name is its
  label); the usage line shows ``MOVIES...`` and ``[NAME]`` as click does, not ``{movies}``.
- ``-v``/``-q``: the level of Python logging on stderr (WARNING by default; -v INFO, -vv DEBUG,
  -q ERROR only).
- Colour: rich honours ``NO_COLOR`` (https://no-color.org) in every console it creates, and
  typer's help and error panels are rich consoles too; nothing here forces colour on.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import click

_PATCHED = False


_LABELS = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "Path": "PATH", "bool": ""}


def _option_type(self: Any, ctx: click.Context) -> str | None:
    if self.metavar is not None:
        return str(self.metavar)
    if getattr(self, "is_flag", False) or getattr(self, "count", False):
        return None
    try:
        label = self.display_type(ctx).strip("<>")  # typer's label: <str>, <list[int]>...
    except Exception:
        return None
    # a list option is repeated (--x A --x B), one value each time: the element's label
    label = label.removeprefix("list[").removesuffix("]")
    return _LABELS.get(label, label.upper()) or None


def _argument_type(self: Any, ctx: click.Context) -> str | None:
    return None  # the argument's name (upper case, or its metavar) already says it


def _argument_name(self: Any) -> str:
    return str(self.metavar) if self.metavar is not None else str(self.name).upper()


def _argument_usage(self: Any) -> str:
    name = _argument_name(self)
    name = name if self.required else f"[{name}]"
    return f"{name}..." if self.nargs != 1 else name


def _argument_rich_name(self: Any) -> str:
    name = _argument_name(self)
    return f"{name}..." if self.metavar is None and self.nargs != 1 else name


def plain_help() -> None:
    """Make typer's help show plain labels (see the module docstring); idempotent. Each
    method is replaced only where this typer has it, so another typer version keeps its own
    help rather than breaking."""
    global _PATCHED
    if _PATCHED:
        return
    from typer import core

    replacements = [
        (getattr(core, "TyperOption", None), "display_type_rich", _option_type),
        (getattr(core, "TyperArgument", None), "display_type_rich", _argument_type),
        (getattr(core, "TyperArgument", None), "_usage_display_name", _argument_usage),
        (getattr(core, "TyperArgument", None), "_rich_display_name", _argument_rich_name),
    ]
    for cls, name, function in replacements:
        if cls is not None and hasattr(cls, name):
            setattr(cls, name, function)
    _PATCHED = True


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is at the time (a test runner swaps it)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


def set_verbosity(verbose: int, quiet: bool) -> int | None:
    """Python logging on stderr at the level ``-v``/``-q`` ask for; the level set, or None
    when neither was given (then Python's default stands: warnings and errors on stderr)."""
    if not verbose and not quiet:
        return None
    level = logging.ERROR if quiet else logging.DEBUG if verbose >= 2 else logging.INFO
    root = logging.getLogger()
    root.setLevel(level)
    if not any(isinstance(h, _StderrHandler) for h in root.handlers):
        handler = _StderrHandler()  # stderr: stdout is for results (--json)
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    return level
