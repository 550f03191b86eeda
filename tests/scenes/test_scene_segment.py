"""Scene segmentation: the overlapping-links rule on hand-made shots, then a real build of a
synthetic film with known scenes (places, A-B-A-B exchanges, fades and cuts between places)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from muss_builder.config import PipelineConfig, ScenesConfig
from muss_builder.runtime.build import build
from muss_builder.scenes.segment import break_f1, segment_scenes
from muss_builder.shots.segment import Shot
from muss_builder.testing.scene_film import make_scene_film


def shots_of(transitions: list[str], seconds: float = 2.0) -> list[Shot]:
    return [
        Shot(i, i * 48, (i + 1) * 48, i * seconds, (i + 1) * seconds, t)
        for i, t in enumerate(transitions)
    ]


def look(colour: int, spread: float = 0.0) -> np.ndarray:
    """A histogram with its mass in one bin (and ``spread`` of it in the next)."""
    h = np.zeros(162, np.float32)
    h[colour] = 1.0 - spread
    h[colour + 1] += spread
    return h


def test_an_exchange_links_across_its_own_cuts_and_a_new_place_breaks() -> None:
    # place 1: A B A B (A and B share nothing directly: the A-A and B-B links carry it)
    # place 2 after a cut: C D C
    looks = {
        0: look(0),
        1: look(10),
        2: look(0),
        3: look(10),
        4: look(50),
        5: look(60),
        6: look(50),
    }
    shots = shots_of(["start", "cut", "cut", "cut", "cut", "cut", "cut"])
    scenes, boundaries = segment_scenes(shots, looks)
    assert [(s.first_shot, s.last_shot) for s in scenes] == [(0, 3), (4, 6)]
    opened = scenes[1].boundary
    assert opened is not None and opened.is_break and opened.link == 0.0
    inside = boundaries[0]  # before shot 1: linked by shots 0 and 2
    assert not inside.is_break and inside.linked == (0, 2)


def test_a_fade_breaks_unless_the_same_set_up_continues() -> None:
    looks = {0: look(0), 1: look(0, 0.3), 2: look(0, 0.32)}
    shots = shots_of(["start", "fade_black", "fade_black"])
    scenes, boundaries = segment_scenes(shots, looks)
    assert boundaries[0].is_break  # link 0.7 < 0.9: a fade to another moment
    assert not boundaries[1].is_break  # 0.98: the same picture either side of the fade
    assert [(s.first_shot, s.last_shot) for s in scenes] == [(0, 0), (1, 2)]


def test_links_reach_only_so_far_and_a_shared_subject_helps_a_weak_one() -> None:
    cfg = ScenesConfig(link_shots=2, link_similarity=0.5, subject_bonus=0.2)
    looks = {0: look(0), 1: look(20), 2: look(40), 3: look(0, 0.6)}
    shots = shots_of(["start", "cut", "cut", "cut"])
    # shot 3 looks like shot 0 (0.4) but is 3 shots away: no link across 1|2 or 2|3
    scenes, _ = segment_scenes(shots, looks, None, cfg)
    assert len(scenes) == 4
    subjects = {1: frozenset({"S1"}), 2: frozenset({"S1"})}
    looks[2] = look(20, 0.65)  # 0.35 alike + the shared subject 0.2 = 0.55: linked
    scenes, boundaries = segment_scenes(shots, looks, subjects, cfg)
    assert not boundaries[1].is_break and boundaries[1].shared_subjects == ("S1",)


def test_break_f1() -> None:
    assert break_f1([3, 7], [3, 7])["f1"] == 1.0
    score = break_f1([3, 5], [3, 7])
    assert score["precision"] == 0.5 and score["recall"] == 0.5


@pytest.fixture(scope="module")
def scene_build(tmp_path_factory: pytest.TempPathFactory, tiny_config: PipelineConfig):
    root = tmp_path_factory.mktemp("scenes")
    film = make_scene_film(root / "places.mp4", n_places=6, seed=3)
    config = tiny_config.model_copy(update={"scenes": ScenesConfig(cross_scene=False)})
    summary = build([str(film.path)], root / "out", config, executor="inline")
    record = json.loads(next((Path(summary.out) / "films").glob("*.json")).read_text())
    record["_out"] = str(summary.out)  # for the report test (not a record field)
    return film, record


def _true_scene_at(film, frame: int) -> int:
    start = 0
    for scene, n in zip(film.scene_of_shot, film.shot_frames, strict=True):
        if frame < start + n:
            return scene
        start += n
    return film.scene_of_shot[-1]


def test_a_build_records_scenes_that_match_the_places(scene_build) -> None:
    film, record = scene_build
    shots = record["shots"]
    found = [
        next(i for i, s in enumerate(shots) if s["index"] == sc["first_shot"])
        for sc in record["scenes"][1:]
    ]
    true_first = [
        _true_scene_at(film, shots[i]["start_frame"] + 1)
        != _true_scene_at(film, shots[i - 1]["start_frame"] + 1)
        for i in found
    ]
    assert all(true_first)  # every scene found opens on a change of place
    assert len(record["scenes"]) == len(set(film.scene_of_shot))
    for scene in record["scenes"]:
        for shot in shots[scene["first_shot"] : scene["last_shot"] + 1]:
            assert shot["scene"] == scene["index"]
    opened = record["scenes"][1]["opened_by"]
    assert opened["is_break"] and opened["reason"]


def test_no_sample_crosses_a_change_of_place(scene_build) -> None:
    film, record = scene_build
    assert record["samples"], "the film must give samples for this test to mean anything"
    for sample in record["samples"]:
        first = _true_scene_at(film, sample["source_start_frame"] + 1)
        last = _true_scene_at(film, sample["source_end_frame"] - 2)
        assert first == last, sample["key"]


def test_the_report_shows_scenes_per_film(scene_build, tmp_path: Path) -> None:
    from muss_builder.report import write_report

    _film, record = scene_build
    report = write_report(Path(record["_out"]), tmp_path / "report", samples=0)
    (scenes,) = report.data.scenes.films
    assert scenes.scenes == len(record["scenes"])
    assert sum(scenes.shots_per_scene) == len(record["shots"])
    assert sum(scenes.samples_per_scene) == len({s["key"] for s in record["samples"]})
    page = report.page.read_text()
    assert "<h2>Scenes</h2>" in page and "breaks by transition" in page


def _samples(out: Path) -> list[dict]:
    from muss_builder.shards.reader import iter_samples, load_sample_json

    return [
        load_sample_json(s)
        for shard in sorted((out / "shards").glob("*.tar"))
        for s in iter_samples(shard, load={"json"})
    ]


def test_facts_name_each_shots_scene_and_captions_say_when_a_sample_crosses(
    tmp_path: Path, tiny_config: PipelineConfig
) -> None:
    film = make_scene_film(tmp_path / "three.mp4", n_places=3, seed=5)
    # tiny.yaml lets windows cross scenes: such a sample's captions must say so
    summary = build([str(film.path)], tmp_path / "out", tiny_config, executor="inline")
    samples = _samples(Path(summary.out))
    crossing = 0
    for sample in samples:
        scenes = [shot["facts"]["scene"] for shot in sample["shots"]]
        assert min(scenes) >= 0
        changes = [i + 1 for i in range(1, len(scenes)) if scenes[i] != scenes[i - 1]]
        if changes:
            crossing += 1
            assert f"The scene changes before shot {changes[0]}" in sample["global_caption"]
        else:
            assert "scene changes" not in sample["global_caption"]
    assert crossing >= 1, "a 3-place film cut into 2-4 shot windows crosses a scene somewhere"
