"""The ``filters:`` section: flag names, the fixed table columns, the drop list, the stage
setup that refuses a missing model, and the picture geometry the clips and keyframes use."""

from __future__ import annotations

import json
import typing

import pytest
from pydantic import ValidationError

from muss_builder.config import PipelineConfig
from muss_builder.curation import sharpness
from muss_builder.curation.catalog import FLAGS, MEASURES
from muss_builder.filters import DROPPING_FLAGS, INFORMATIONAL_FLAGS, DropFlag, FiltersConfig
from muss_builder.filters.keyframes import MIN_CONTRAST
from muss_builder.media.decode import PictureCut
from muss_builder.media.probe import FilmProbe
from muss_builder.resources import resource_dir
from muss_builder.runtime.build import build
from muss_builder.runtime.stage_base import StageSetupError
from muss_builder.samples.picture_plan import (
    even_box,
    keyframe_boxes,
    picture_cut,
    plan_picture,
)


def test_every_flag_a_module_sets_is_known_to_the_config() -> None:
    assert set(FLAGS) == set(DROPPING_FLAGS) | set(INFORMATIONAL_FLAGS)
    assert not set(DROPPING_FLAGS) & set(INFORMATIONAL_FLAGS)
    assert set(typing.get_args(DropFlag)) == set(DROPPING_FLAGS)
    assert MIN_CONTRAST == sharpness.MIN_CONTRAST  # copied when the config moved out


def test_the_tables_have_one_fixed_column_per_measure_and_dropping_flag() -> None:
    spec = json.loads((resource_dir("schemas") / "tables.json").read_text())
    index = [c["name"] for c in spec["index"]]
    quality = [n for n in index if n.startswith(("worst_", "mean_"))]
    assert quality == [f"{k}_{m}" for m in MEASURES for k in ("worst", "mean")]
    films = [c["name"] for c in spec["films"]]
    assert [n for n in films if n.startswith("dropped_")] == [
        f"dropped_{f}" for f in DROPPING_FLAGS
    ]
    assert {"shots_kept", "shots_dropped", "duplicate_of", "seconds_curate"} <= set(films)


def test_drop_is_one_set_in_one_order_and_typos_are_refused() -> None:
    config = PipelineConfig.model_validate({"filters": {"drop": ["static", "black", "static"]}})
    assert config.filters.drop == ("black", "static")
    assert PipelineConfig().filters.drop == DROPPING_FLAGS
    with pytest.raises(ValidationError):
        FiltersConfig.model_validate({"drop": ["letterbox"]})  # informational: never drops
    with pytest.raises(ValidationError):
        FiltersConfig.model_validate({"picture": {"enabeld": False}})
    with pytest.raises(ValidationError):
        FiltersConfig.model_validate({"picture": {"watermark": {"removal": "blur"}}})


@pytest.mark.parametrize(
    "filters, named",
    [
        ({"models": {"consistency": {"enabled": True, "model": "/nonexistent/clip"}}}, "clip"),
        ({"duplicates": {"embedder": "/nonexistent/dino"}}, "dino"),
    ],
)
def test_a_missing_model_stops_the_build_at_start(
    twelve_film, tiny_config: PipelineConfig, tmp_path, filters: dict, named: str
) -> None:
    config = PipelineConfig.model_validate(tiny_config.model_dump() | {"filters": filters})
    with pytest.raises(StageSetupError) as info:
        build([str(twelve_film.path)], tmp_path / "out", config, executor="inline")
    assert info.value.stage == "subjects" and named in str(info.value)
    assert not (tmp_path / "out" / "films").exists() or not any(
        (tmp_path / "out" / "films").iterdir()
    )


def probe(width: int = 640, height: int = 360, sar: str = "1:1") -> FilmProbe:
    return FilmProbe(
        path="f.mp4", file_name="f.mp4", size_bytes=1, film_id="0" * 16, container="mp4",
        duration_seconds=1.0, start_time_seconds=0.0, video_codec="h264", pix_fmt="yuv420p",
        coded_width=width, coded_height=height, rotation=0, sample_aspect_ratio=sar,
        width=width, height=height, fps=24.0, fps_fraction="24/1", variable_frame_rate=False,
        frame_count_estimate=24, has_audio=False, audio_codec=None,
    )  # fmt: skip


def test_crops_are_even_inside_and_the_whole_frame_stays_whole() -> None:
    assert even_box([0, 0, 641, 361], 641, 361) == [0, 0, 641, 361]
    assert even_box([1, 45, 640, 315], 640, 360) == [2, 46, 640, 314]
    box = even_box([3, 3, 8, 8], 640, 360)
    assert box == [4, 4, 8, 8] and all(v % 2 == 0 for v in box)


def test_picture_cut_delogo_and_keyframe_boxes() -> None:
    p = probe()
    cfg = FiltersConfig()
    whole = plan_picture([0, 0, 640, 360], [[0, 0, 640, 360]], None, p, cfg)
    assert picture_cut(whole, 0, p) is None  # nothing to cut: the clip is encoded as before
    assert PictureCut((640, 360), (0, 0, 640, 360)).filters("area") == []
    scope = [0, 46, 640, 314]
    plan = plan_picture(scope, [scope, [80, 0, 560, 360]], ([600, 40, 640, 80], 0.9), p, cfg)
    cut = picture_cut(plan, 0, p)
    assert cut is not None and cut.box == (0, 46, 640, 314) and cut.size == (640, 268)
    assert cut.logo == (600, 1, 639, 34)  # in the crop, a pixel clear of its edges
    assert cut.filters("area") == ["crop=640:268:0:46:exact=1", "delogo=x=600:y=1:w=39:h=33"]
    assert picture_cut(plan, 1, p).logo is None  # pillarboxed shot: the logo is in its bar
    crops, logos = keyframe_boxes(plan, p, 320)  # keyframes at 320x180: half size
    assert crops == {0: [0, 23, 320, 157], 1: [40, 0, 280, 180]}
    assert logos == {0: [300, 0, 320, 17], 1: None}
    crop_cfg = FiltersConfig.model_validate({"picture": {"watermark": {"removal": "crop"}}})
    banded = plan_picture(scope, [scope], ([600, 50, 640, 80], 0.9), p, crop_cfg)
    assert banded.crop == [0, 46, 600, 314] and banded.watermark["removal"] == "crop"
    assert picture_cut(banded, 0, p).logo is None  # the band holding the logo is cut away
    middle = plan_picture(scope, [scope], ([200, 100, 440, 260], 0.9), p, crop_cfg)
    assert middle.crop == scope and middle.watermark["removal"] == "delogo"  # too costly
