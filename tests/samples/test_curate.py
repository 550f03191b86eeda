"""Curation verdicts: what drops a shot, and boxes that follow a crop that shrank."""

from __future__ import annotations

import numpy as np

from muss_builder.config import PipelineConfig
from muss_builder.curation.duplicates import FilmDuplicates
from muss_builder.samples.curate import KeyframeReports, cut_detections, decide
from muss_builder.samples.verdicts import FilmCuration, ShotVerdict
from muss_builder.subjects.stage import Detection, FilmSubjects

WHOLE = [0, 0, 640, 360]


def curation(flags: list[list[str]]) -> FilmCuration:
    shots = {i: ShotVerdict(crop=list(WHOLE), flags=f) for i, f in enumerate(flags)}
    return FilmCuration(crop=list(WHOLE), shots=shots)


def test_the_first_dropping_flag_in_config_order_names_the_reason() -> None:
    film = curation([["static", "black", "letterbox"], ["letterbox"], ["blurry"]])
    dups = FilmDuplicates(shot_matches={1: ("0123456789abcdef", 4, 0.97)})
    decide(film, KeyframeReports(), dups, PipelineConfig())
    assert film.shots[0].dropped_by == "black"  # black before static
    assert film.shots[1].dropped_by == "duplicate" and film.shots[1].flags == [
        "duplicate",
        "letterbox",
    ]
    assert film.shots[1].duplicate_of == ("0123456789abcdef", 4)
    assert film.funnel() == (3, 0, {"black": 1, "blurry": 1, "duplicate": 1})
    assert "consistency" in film.not_run  # the model filters are off by default


def test_flags_left_out_of_drop_are_recorded_only() -> None:
    film = curation([["static"], ["blurry"]])
    config = PipelineConfig.model_validate({"filters": {"drop": ["blurry"]}})
    dups = FilmDuplicates(film_duplicate_of="0123456789abcdef")  # ignored: duplicate kept
    decide(film, KeyframeReports(), dups, config)
    assert film.shots[0].dropped_by is None and film.shots[0].flags == ["static"]
    assert film.shots[1].dropped_by == "blurry"
    assert film.duplicate_of is None


def test_boxes_follow_a_crop_that_shrank_after_the_keyframes() -> None:
    def det(box: tuple[float, float, float, float]) -> Detection:
        return Detection("face", "face", 0, 5, box, (320, 180), 0.9, 40, 1.0, np.zeros(4))

    inside, under_the_band = det((100.0, 20.0, 140.0, 60.0)), det((100.0, 160.0, 140.0, 179.0))
    subjects = FilmSubjects(keyframes={0: [5]}, detections=[inside, under_the_band],
                            faces_pack=None, objects_backend=None)  # fmt: skip
    film = curation([[]])
    film.shots[0].crop = [0, 0, 640, 300]  # the subtitle band (rows 300..360) cut away
    cut_detections(subjects, film, {0: list(WHOLE)})
    assert subjects.detections == [inside]  # the box under the band is gone
    assert inside.image_size == (320, 150) and inside.box == (100.0, 20.0, 140.0, 60.0)
