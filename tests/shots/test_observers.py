"""Frame observers ride the shot decode: a single pass feeds one observer every frame once; a
ranged decode makes one observer per range, whose owned frames tile the film exactly (the
overlap margins are seen but not owned), and the shots stay those of a single pass."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from muss_builder.config import AnalysisConfig, ShotsConfig
from muss_builder.media.probe import probe_film
from muss_builder.shots.segment import detect_shots
from muss_builder.testing.synthetic_films import make_film


@dataclass
class Counter:
    """Records every frame index it is fed and which of them it owns (module level: pickles)."""

    first: int
    stop: int | None
    seen: list[int] = field(default_factory=list)
    shapes: set[tuple[int, ...]] = field(default_factory=set)

    def process_frame(self, index: int, frame: np.ndarray) -> None:
        self.seen.append(index)
        self.shapes.add(frame.shape)

    @property
    def owned(self) -> list[int]:
        return [i for i in self.seen if i >= self.first and (self.stop is None or i < self.stop)]


def test_single_pass_and_ranges_feed_each_frame_to_one_owner(tmp_path: Path) -> None:
    film = make_film(tmp_path / "f.mp4", [40, 50, 60, 50])  # 200 frames, 8.3 s
    probe = probe_film(film.path)
    analysis = AnalysisConfig()
    one = detect_shots(film.path, probe, ShotsConfig(), analysis, observe=Counter)
    assert len(one.observed) == 1 and one.observed[0].seen == list(range(200))
    assert one.observed[0].shapes == {(144, 256, 3)}
    ranged_cfg = ShotsConfig(range_seconds=2.0, range_overlap_seconds=1.0)
    split = detect_shots(film.path, probe, ranged_cfg, analysis, observe=Counter)
    assert len(split.observed) == 5  # 48-frame ranges
    owned = [i for c in split.observed for i in c.owned]
    assert owned == list(range(200))  # every frame owned once, in order
    assert any(len(c.seen) > len(c.owned) for c in split.observed)  # margins were fed
    for c in split.observed:  # each range sees consecutive frames
        assert c.seen == list(range(c.seen[0], c.seen[-1] + 1))
    assert [s.start_frame for s in split.shots] == [s.start_frame for s in one.shots]
