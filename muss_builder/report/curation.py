"""The report's curation section: the funnel (shots in -> kept, by reason), the distribution
of every quality measure over all shots, and a contact sheet of examples per drop reason.

Everything comes from the film records (every shot, kept or dropped, with its ``quality``,
``flags`` and ``excluded_reason``) and from the thumbnails the build keeps of dropped shots
(``curation/examples/``, see ``curation/examples.py``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from muss_builder.curation.examples import EXAMPLES_DIR, parse_example_name
from muss_builder.samples.film_record import FilmRecord
from muss_builder.samples.windows import NO_WINDOW, SHORT_EDGE, TOO_LONG

# reasons of the window planner: a shot fit to train on that no window could hold
PLANNING_REASONS = (TOO_LONG, SHORT_EDGE, NO_WINDOW)
FILM_DUPLICATE = "film_duplicate"  # every shot of a film that repeats an earlier one


@dataclass
class Example:
    film_id: str
    shot: int
    path: Path


@dataclass
class CurationData:
    shots_in: int = 0
    in_samples: int = 0
    dropped: Counter[str] = field(default_factory=Counter)  # by a filter, by reason
    left_out: Counter[str] = field(default_factory=Counter)  # kept but in no window, by reason
    quality: dict[str, list[float]] = field(default_factory=dict)  # measure -> every shot's value
    examples: dict[str, list[Example]] = field(default_factory=dict)  # reason -> thumbnails

    @property
    def kept(self) -> int:
        return self.shots_in - sum(self.dropped.values())


def _shot_field(shot: Any, name: str) -> Any:
    value = getattr(shot, name, None)
    if value is None and shot.model_extra:  # a record written before the field was typed
        value = shot.model_extra.get(name)
    return value


def collect_curation(records: list[FilmRecord], root: Path) -> CurationData:
    data = CurationData()
    for record in records:
        duplicate_film = record.status == "duplicate"
        for shot in record.shots:
            data.shots_in += 1
            reason = FILM_DUPLICATE if duplicate_film else shot.excluded_reason
            if shot.sample_key is not None:
                data.in_samples += 1
            elif reason in PLANNING_REASONS:
                data.left_out[reason] += 1
            elif reason is not None:
                data.dropped[reason] += 1
            for measure, value in (_shot_field(shot, "quality") or {}).items():
                if isinstance(value, int | float) and value == value:  # not NaN
                    data.quality.setdefault(measure, []).append(float(value))
    data.examples = _examples(root / EXAMPLES_DIR, {r.film_id for r in records})
    return data


def _examples(folder: Path, films: set[str]) -> dict[str, list[Example]]:
    found: dict[str, list[Example]] = {}
    if not folder.is_dir():
        return found
    for film_dir in sorted(p for p in folder.iterdir() if p.is_dir() and p.name in films):
        for path in sorted(film_dir.iterdir()):
            parsed = parse_example_name(path.name)
            if parsed is not None and path.is_file():
                shot, reason = parsed
                found.setdefault(reason, []).append(Example(film_dir.name, shot, path))
    return found


def funnel_rows(data: CurationData) -> list[tuple[str, str, int]]:
    """(step, reason, shots): shots in, each drop reason, each planning reason, in samples."""
    rows = [("in", "shots detected", data.shots_in)]
    rows += [("dropped", reason, n) for reason, n in data.dropped.most_common()]
    rows.append(("kept", "fit to train on", data.kept))
    rows += [("left out", reason, n) for reason, n in data.left_out.most_common()]
    rows.append(("in samples", "in a sample", data.in_samples))
    return rows
