"""Fixtures shared by the runtime tests: the six 640x360 films that the cluster-fault and the
kill/resume tests build, and the clean (uninterrupted) runs of them that those tests make."""

from __future__ import annotations

import pytest

from muss_builder.runtime.build import BuildSummary
from muss_builder.testing.synthetic_films import make_film


@pytest.fixture(scope="session")
def six_reels(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Six films of ~280 frames at 640x360 (eight shots, hard cuts, 24 fps): a few seconds
    each on a 1-CPU node."""
    root = tmp_path_factory.mktemp("six_reels")
    return [
        str(
            make_film(
                root / f"film{i}.mp4",
                (44 + i, 30, 36, 28 + i, 40, 30, 33, 40),
                fps=24,
                width=640,
                height=360,
            ).path
        )
        for i in range(6)
    ]


@pytest.fixture(scope="session")
def six_reels_clean_runs() -> list[BuildSummary]:
    """Clean runs of ``six_reels`` (the tiny pipeline, inline, uninterrupted), kept by the
    test that made one so that a later test compares with it instead of building it again.
    Tests must not modify them.

    The cluster-fault test always builds its own, inside the test once its cluster is up (the
    build it then faults starts on nodes that have been up that long, as it always has); the
    kill/resume tests, which run after it, take that one."""
    return []
