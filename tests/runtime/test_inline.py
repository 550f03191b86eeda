"""The inline driver: each stage set up once before the first film, so a model that cannot
load stops the build there with one message naming the stage and the model."""

from __future__ import annotations

from pathlib import Path

import pytest

from muss_builder.config import PipelineConfig
from muss_builder.runtime.build import Progress, build
from muss_builder.runtime.film_job import FilmResult
from muss_builder.runtime.stage_base import StageSetupError
from muss_builder.testing.synthetic_films import make_film


@pytest.fixture(scope="module")
def reels(tmp_path_factory) -> list[str]:
    root = tmp_path_factory.mktemp("inline_reels")
    return [str(make_film(root / f"reel{i}.mp4", (30 + i, 26, 34), fps=24).path) for i in range(2)]


def with_bad_model(config: PipelineConfig, which: str, where: Path) -> PipelineConfig:
    """``config`` naming a model folder that does not exist for one model stage."""
    data = config.model_dump()
    if which == "faces":
        data["subjects"]["faces"]["pack"] = str(where)
    elif which == "objects":
        data["subjects"]["objects"] |= {"enabled": True, "detector_model": str(where)}
    else:
        data["captions"] |= {"backend": "transformers", "model": str(where)}
    return PipelineConfig.model_validate(data)


@pytest.mark.parametrize(
    ("which", "stage"), [("faces", "subjects"), ("objects", "subjects"), ("captions", "captions")]
)
def test_a_model_that_cannot_load_stops_the_build_before_any_film(
    tmp_path, reels, tiny_config, which, stage
) -> None:
    missing = tmp_path / f"no-such-{which}-model"
    config = with_bad_model(tiny_config, which, missing)
    films: list[FilmResult] = []
    progress = Progress(on_film=lambda result, _: films.append(result))
    out = tmp_path / "out"
    with pytest.raises(StageSetupError) as stopped:
        build(reels, out, config, executor="inline", progress=progress)
    message = str(stopped.value)
    assert message.startswith(f"stage {stage} cannot start: ModelNotFoundError: "), message
    assert str(missing) in message and "\n" not in message
    assert films == []  # not one failure per film
    assert not (out / "films.parquet").exists() and not list((out / "films").glob("*.json"))
    (log,) = (out / "logs").glob("build-*.log")
    assert f"build stopped: {message}" in log.read_text()
