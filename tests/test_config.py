"""Pipeline YAMLs are validated: the shipped ones load, mistakes are refused with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from muss_builder.config import load_pipeline
from muss_builder.resources import resource_dir


@pytest.mark.parametrize("name", ["default", "offline", "tiny", "standard"])
def test_shipped_pipelines_load(name: str) -> None:
    cfg = load_pipeline(name)
    assert cfg.name == name
    assert cfg.samples.min_shots <= cfg.samples.max_shots
    assert (resource_dir("pipelines") / f"{name}.yaml").is_file()


def test_unknown_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text("samples:\n  max_shot: 4\n")
    with pytest.raises(ValidationError, match="max_shot"):
        load_pipeline(path)


def test_inconsistent_ranges_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("samples:\n  min_shots: 5\n  max_shots: 3\n")
    with pytest.raises(ValidationError, match="min_shots must be <="):
        load_pipeline(path)


def test_fingerprint_ignores_runtime_but_not_output_settings() -> None:
    cfg = load_pipeline("default")
    assert (
        cfg.fingerprint()
        == cfg.model_copy(
            update={"runtime": cfg.runtime.model_copy(update={"max_retries": 9})}
        ).fingerprint()
    )
    assert cfg.fingerprint() != load_pipeline("tiny").fingerprint()
    # splitting a long film's detection is how it runs, not what it gives
    split = cfg.shots.model_copy(update={"range_seconds": 60.0, "range_overlap_seconds": 2.0})
    assert cfg.model_copy(update={"shots": split}).fingerprint() == cfg.fingerprint()
    other = cfg.shots.model_copy(update={"detector": "content"})
    assert cfg.model_copy(update={"shots": other}).fingerprint() != cfg.fingerprint()


def test_missing_pipeline_names_the_path() -> None:
    with pytest.raises(FileNotFoundError, match="nope"):
        load_pipeline("nope")


def test_min_shot_length_is_a_time() -> None:
    cfg = load_pipeline("default")
    # a quarter second: six frames at 24 fps, and one frame (nothing merges) at 1 fps
    assert cfg.shots.min_shot_frames_at(24) == 6
    assert cfg.shots.min_shot_frames_at(1) == 1
    assert cfg.shots.min_shot_frames_at(60) == 15


def test_old_min_shot_frames_key_is_converted_with_a_warning(tmp_path: Path) -> None:
    old = tmp_path / "old.yaml"
    old.write_text("shots:\n  min_shot_frames: 12\n")
    with pytest.warns(FutureWarning, match=r"min_shot_frames is deprecated.*0\.5"):
        cfg = load_pipeline(old)
    assert cfg.shots.min_shot_seconds == 0.5  # frames at 24 fps, the rate they were set for
    both = tmp_path / "both.yaml"
    both.write_text("shots:\n  min_shot_frames: 12\n  min_shot_seconds: 0.5\n")
    with pytest.raises(ValidationError, match="give only min_shot_seconds"):
        load_pipeline(both)
