"""A multi-shot script: what a generator is asked for, and what the benchmark scores against.

The same JSON serves ``muss-builder train sample --script`` (generate a video from it) and the
benchmark suite (``suite.json`` holds a list of them, reference crops beside it under
``refs/``). Boxes are normalised ``(x1, y1, x2, y2)``; frames index the generated video.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCRIPT_VERSION = "1.0"
Box = tuple[float, float, float, float]


class ScriptError(ValueError):
    """A script file is malformed; the message names the file and the field."""


@dataclass
class ScriptReference:
    """A reference crop for a subject and where the subject should appear."""

    image: str  # path of the crop, relative to the script file's folder
    subject: str  # film subject id the crop shows
    kind: str  # "face" or "object"
    shot: int  # the shot (index into Script.shots) this reference serves
    box: Box  # where the subject should be in the target frame
    frame: int  # target frame index in the generated video


@dataclass
class ScriptShot:
    """One shot: its caption and its length in frames of the generated video."""

    caption: str
    n_frames: int
    transition_in: str = "cut"  # "start" for the first shot
    # ground truth, when the script was drawn from a real clip: film subject id -> boxes seen
    # in this shot as (frame in the video, box); empty for a hand-written script
    subjects: dict[str, list[tuple[int, Box]]] = field(default_factory=dict)


@dataclass
class Script:
    key: str
    global_caption: str
    shots: list[ScriptShot]
    fps: float = 24.0
    width: int = 832
    height: int = 480
    references: list[ScriptReference] = field(default_factory=list)
    source: dict[str, Any] = field(default_factory=dict)  # film_id, sample key, clip span

    @property
    def n_frames(self) -> int:
        return sum(s.n_frames for s in self.shots)

    @property
    def cut_frames(self) -> list[int]:
        """First frame of every shot after the first: the requested transitions."""
        cuts, at = [], 0
        for shot in self.shots[:-1]:
            at += shot.n_frames
            cuts.append(at)
        return cuts

    @property
    def shot_ranges(self) -> list[tuple[int, int]]:
        """``[start, end)`` of every shot in frames of the video."""
        ranges, at = [], 0
        for shot in self.shots:
            ranges.append((at, at + shot.n_frames))
            at += shot.n_frames
        return ranges

    def to_dict(self) -> dict[str, Any]:
        return {"script_version": SCRIPT_VERSION, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "script") -> Script:
        try:
            shots = [
                ScriptShot(
                    caption=str(s["caption"]),
                    n_frames=int(s["n_frames"]),
                    transition_in=str(s.get("transition_in", "cut")),
                    subjects={
                        str(k): [(int(f), _box(b)) for f, b in v]
                        for k, v in (s.get("subjects") or {}).items()
                    },
                )
                for s in data["shots"]
            ]
            refs = [
                ScriptReference(
                    image=str(r["image"]),
                    subject=str(r["subject"]),
                    kind=str(r.get("kind", "face")),
                    shot=int(r["shot"]),
                    box=_box(r["box"]),
                    frame=int(r["frame"]),
                )
                for r in data.get("references", [])
            ]
            script = cls(
                key=str(data["key"]),
                global_caption=str(data.get("global_caption") or ""),
                shots=shots,
                fps=float(data.get("fps", 24.0)),
                width=int(data.get("width", 832)),
                height=int(data.get("height", 480)),
                references=refs,
                source=dict(data.get("source") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ScriptError(f"{where}: malformed script ({type(exc).__name__}: {exc})") from exc
        script.check(where)
        return script

    def check(self, where: str = "script") -> None:
        if not self.shots:
            raise ScriptError(f"{where}: no shots")
        for i, shot in enumerate(self.shots):
            if shot.n_frames < 1:
                raise ScriptError(f"{where}: shot {i} has n_frames {shot.n_frames} (< 1)")
        for k, ref in enumerate(self.references):
            if not 0 <= ref.shot < len(self.shots):
                raise ScriptError(f"{where}: reference {k} serves shot {ref.shot}, not a shot")
            start, end = self.shot_ranges[ref.shot]
            if not start <= ref.frame < end:
                raise ScriptError(f"{where}: reference {k} frame {ref.frame} outside its shot")


def _box(value: Any) -> Box:
    x1, y1, x2, y2 = (float(v) for v in value)
    if not (0 <= x1 < x2 <= 1 and 0 <= y1 < y2 <= 1):
        raise ValueError(f"box {value} is not a normalised (x1, y1, x2, y2)")
    return (x1, y1, x2, y2)


def load_script(path: str | Path) -> Script:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ScriptError(f"{path}: cannot read ({exc})") from exc
    return Script.from_dict(data, where=str(path))


def save_script(script: Script, path: str | Path) -> None:
    Path(path).write_text(json.dumps(script.to_dict(), indent=2) + "\n")
