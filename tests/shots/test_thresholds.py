"""The default detector's fixed thresholds: each is documented, and each dataclass value is
the one the detector uses (changing it changes what is found)."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from muss_builder.config import AnalysisConfig, ShotsConfig
from muss_builder.media.probe import probe_film
from muss_builder.shots import thresholds
from muss_builder.shots.combined import MussDetector
from muss_builder.shots.segment import decode_into
from muss_builder.shots.thresholds import MUSS_THRESHOLDS, MussThresholds
from muss_builder.testing.synthetic_films import make_transition_film


def test_every_threshold_has_a_comment_saying_why() -> None:
    """Above each value: a comment, or values that share the comment above them."""
    source = Path(thresholds.__file__).read_text()
    lines = source.splitlines()
    field_lines = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef):
            field_lines |= {f.lineno for f in node.body if isinstance(f, ast.AnnAssign)}
    for lineno in sorted(field_lines):
        above = lineno - 1
        while above in field_lines:
            above -= 1
        assert lines[above - 1].strip().startswith("#"), lines[lineno - 1]
    fields = [f.name for f in dataclasses.fields(MussThresholds)]
    assert len(fields) == len(set(fields))


@pytest.fixture(scope="module")
def dissolve_film(tmp_path_factory):
    root = tmp_path_factory.mktemp("thresholds")
    return make_transition_film(
        root / "dissolve.mp4", [(60, "", 0), (60, "dissolve", 16), (60, "cut", 0)]
    )


def _kinds(path: Path, th: MussThresholds) -> list[str]:
    cfg, probe = ShotsConfig(), probe_film(path)
    detector = MussDetector(
        cfg.muss, cfg.transnetv2, cfg.min_shot_frames_at(probe.fps), probe.fps, th
    )
    decode_into(path, probe, AnalysisConfig(), [detector], [0.0])
    return [t.kind for t in detector.finish()]


def test_the_dataclass_values_are_the_ones_used(dissolve_film) -> None:
    assert _kinds(dissolve_film.path, MUSS_THRESHOLDS) == ["dissolve", "cut"]
    # no colour change across 2L frames is large enough: the dissolve is no candidate
    no_gradual = dataclasses.replace(MUSS_THRESHOLDS, gradual_floor=1.0)
    assert _kinds(dissolve_film.path, no_gradual) == ["cut"]
