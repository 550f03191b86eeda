"""One preflight check's outcome."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Check:
    """``ok`` False means the build would fail or not do what the config asks; ``fix`` says
    what to do about it."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def to_dict(self) -> dict[str, str | bool]:
        return asdict(self)
