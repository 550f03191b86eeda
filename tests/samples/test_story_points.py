"""Natural window edges: film and scene starts, and exchanges found from real pictures."""

from __future__ import annotations

import numpy as np

from muss_builder.config import ScenesConfig
from muss_builder.samples.story_points import exchanges, natural_points
from muss_builder.samples.windows import EXCHANGE_EDGE, FILM_EDGE, SCENE_EDGE
from muss_builder.scenes.looks import colour_histogram
from muss_builder.shots.segment import Shot
from muss_builder.testing.scene_film import place_canvas, render_shot


def _film(setups: list[tuple[int, str]], seed: int = 0) -> tuple[list[Shot], dict[int, object]]:
    """Shots of (place, set-up) and each shot's look, from rendered frames of the places."""
    rng = np.random.default_rng(seed)
    places: dict[int, np.ndarray] = {}
    shots, looks = [], {}
    for i, (place, setup) in enumerate(setups):
        if place not in places:
            places[place] = place_canvas(rng, (960, 540))
        frames = render_shot(places[place], setup, 3, (480, 270), rng)
        looks[i] = np.mean([colour_histogram(f) for f in frames], axis=0)
        shots.append(Shot(i, i * 48, (i + 1) * 48, i * 2.0, (i + 1) * 2.0, "cut"))
    return shots, looks


def test_an_exchange_is_found_after_an_establishing_shot_and_not_in_one_set_up() -> None:
    shots, looks = _film([(0, "E"), (0, "A"), (0, "B"), (0, "A"), (0, "B"), (0, "A")])
    assert exchanges(shots, looks, 0.1) == [(1, 5)]
    shots, looks = _film([(0, "A")] * 5, seed=1)  # one set-up over and over: no exchange
    assert exchanges(shots, looks, 0.1) == []
    shots, looks = _film([(0, "A"), (0, "B"), (0, "A")], seed=2)  # A-B-A: too short
    assert exchanges(shots, looks, 0.1) == []


def test_natural_points_name_the_film_scenes_and_exchanges() -> None:
    setups = [(0, "A"), (0, "B"), (1, "E"), (1, "A"), (1, "B"), (1, "A"), (1, "B"), (2, "A")]
    shots, looks = _film(setups, seed=3)
    scene_of = {i: place for i, (place, _) in enumerate(setups)}
    points = natural_points(shots, looks, scene_of, ScenesConfig())
    assert points[0] == FILM_EDGE and points[len(shots)] == FILM_EDGE
    assert points[2] == SCENE_EDGE and points[7] == SCENE_EDGE
    assert points[3] == EXCHANGE_EDGE  # the exchange after the establishing shot
    assert set(points) == {0, 2, 3, 7, 8}
