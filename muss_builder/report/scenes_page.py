"""The report's scenes section: scenes per film, shots per scene, samples per scene."""

from __future__ import annotations

import html
import statistics
from dataclasses import dataclass, field

from muss_builder.samples.film_record import FilmRecord


@dataclass
class FilmScenes:
    name: str
    scenes: int
    shots_per_scene: list[int]
    samples_per_scene: list[int]  # samples whose first shot is in the scene
    breaks_by_transition: dict[str, int]  # the transition that opened each scene after the first


@dataclass
class ScenesData:
    films: list[FilmScenes] = field(default_factory=list)


def _keys_of(shot: object) -> list[str]:
    """The samples holding a shot (records before overlapping windows name one)."""
    keys = getattr(shot, "sample_keys", None)
    if keys:
        return list(keys)
    key = getattr(shot, "sample_key", None)
    return [key] if key else []


def collect_scenes(records: list[FilmRecord]) -> ScenesData:
    """Per film with scenes in its record (films built with scenes on)."""
    data = ScenesData()
    for record in records:
        if not record.scenes:
            continue
        scene_of = {s.index: getattr(s, "scene", None) for s in record.shots}
        samples = [0] * len(record.scenes)
        for key in {row.key for row in record.samples}:
            first = min((s.index for s in record.shots if key in _keys_of(s)), default=None)
            scene = scene_of.get(first) if first is not None else None
            if scene is not None:
                samples[scene] += 1
        breaks: dict[str, int] = {}
        for scene in record.scenes[1:]:
            kind = scene.opened_by.transition if scene.opened_by else "start"
            breaks[kind] = breaks.get(kind, 0) + 1
        data.films.append(
            FilmScenes(
                name=record.probe.file_name or record.film_id,
                scenes=len(record.scenes),
                shots_per_scene=[s.last_shot - s.first_shot + 1 for s in record.scenes],
                samples_per_scene=samples,
                breaks_by_transition=breaks,
            )
        )
    return data


def scenes_section(data: ScenesData) -> str:
    if not data.films:
        return ""
    e = html.escape
    rows = []
    for f in data.films:
        shots = f.shots_per_scene
        opened = ", ".join(f"{n} {k}" for k, n in sorted(f.breaks_by_transition.items())) or "-"
        rows.append(
            f"<tr><td>{e(f.name)}</td><td>{f.scenes}</td><td>{statistics.median(shots):g}</td>"
            f"<td>{max(shots)}</td><td>{sum(n > 0 for n in f.samples_per_scene)}</td>"
            f"<td>{sum(f.samples_per_scene)}</td><td>{e(opened)}</td></tr>"
        )
    return "".join(
        [
            "<h2>Scenes</h2>",
            '<p class="note">Scenes found per film (docs/scenes.md): shots per scene, how many '
            "scenes gave samples (a sample counts for the scene of its first shot) and the "
            "transitions that opened scenes.</p>",
            "<table><tr><th>film</th><th>scenes</th><th>median shots per scene</th>"
            "<th>most shots</th><th>scenes with samples</th><th>samples</th>"
            "<th>breaks by transition</th></tr>",
            *rows,
            "</table>",
        ]
    )
