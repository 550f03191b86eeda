"""A build with samples of all three shard families (docs/packing.md): the session's synthetic
films (montage only) merged with a film of real faces where people stay over several shots
(samples serving both tracks, and subject windows serving the subject track only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from muss_builder.config import PipelineConfig, ScenesConfig
from muss_builder.runtime.build import BuildSummary, build
from muss_builder.subsets.merge import merge_builds
from muss_builder.testing.face_film import Person, encode_stills, render_shot

# who is on screen in each shot (as tests/samples/test_subject_windows.py): people stay for
# two shots, so the build has subject windows, and are seen elsewhere too (references)
ORDER = [0, 0, 1, 0, 2, 1, 2, 0, 1, 1]


@pytest.fixture(scope="session")
def staying_faces(
    tmp_path_factory: pytest.TempPathFactory, tiny_config: PipelineConfig, people: list[Person]
) -> Path:
    """The build of the faces film (tiny pipeline, scenes not crossed); tests must not
    modify it."""
    root = tmp_path_factory.mktemp("staying-faces")
    rng = np.random.default_rng(7)
    encode_stills(root / "stay.mp4", [render_shot(people[p], rng) for p in ORDER], 24)
    config = tiny_config.model_copy(update={"scenes": ScenesConfig(cross_scene=False)})
    return Path(build([str(root / "stay.mp4")], root / "out", config, executor="inline").out)


@pytest.fixture(scope="module")
def three_families(
    built_dataset: BuildSummary, staying_faces: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The synthetic films' build and the faces film's, merged (hard links, no re-encoding)
    into a build of this module's own."""
    out = tmp_path_factory.mktemp("three-families") / "out"
    merge_builds([str(built_dataset.out), str(staying_faces)], str(out))
    return out
