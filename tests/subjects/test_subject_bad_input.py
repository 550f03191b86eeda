"""Bad input for the subject stage: no faces, a crowd of tiny faces, near-black frames, a face
cut by the frame edge. None may crash the film, and each must give a sensible record."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from muss_builder.config import PipelineConfig
from muss_builder.core.models import offline_face_pack_dir
from muss_builder.media.probe import probe_film
from muss_builder.runtime.build import BuildSummary
from muss_builder.shots.segment import detect_shots
from muss_builder.subjects.stage import FilmSubjects, find_subjects
from muss_builder.testing.face_film import Person, encode_stills, render_shot


def subjects_of(path: Path, config: PipelineConfig) -> FilmSubjects:
    probe = probe_film(str(path), film_id="0" * 16)
    detection = detect_shots(str(path), probe, config.shots, config.analysis)
    return find_subjects(str(path), probe, detection, config.subjects)


def test_films_without_faces_have_no_subjects_and_no_subject_track(
    built_dataset: BuildSummary,
) -> None:
    import json

    for path in (built_dataset.out / "films").glob("*.json"):
        record = json.loads(path.read_text())
        assert record["status"] == "ok"
        assert record["subjects"] == [] and record["subject_stage"]["n_detections"] == 0
        assert all(shot["keyframes"] for shot in record["shots"])
        assert all(s["track"] == "montage" and s["n_refs"] == 0 for s in record["samples"])


def crowd() -> np.ndarray:
    """About 170 faces 10-14 px high: the 22 players of a shipped photo, shrunk and tiled
    over a 1280x720 frame."""
    players = cv2.imread(str(offline_face_pack_dir() / "players.jpg"))
    tile = cv2.resize(players, None, fx=0.3, fy=0.3, interpolation=cv2.INTER_AREA)
    rows = -(-720 // tile.shape[0])
    cols = -(-1280 // tile.shape[1])
    return np.tile(tile, (rows, cols, 1))[:720, :1280].copy()


def test_a_crowd_of_tiny_faces_is_counted_but_gets_no_identities(
    tmp_path: Path, people: list[Person], tiny_config: PipelineConfig
) -> None:
    # a detector that sees faces this small: full-size keyframes, 1280 px detector input
    subjects = tiny_config.subjects.model_copy(
        update={
            "keyframe_max_side": 1280,
            "faces": tiny_config.subjects.faces.model_copy(update={"det_size": 1280}),
        }
    )
    config = tiny_config.model_copy(update={"subjects": subjects})
    rng = np.random.default_rng(0)
    close_up = cv2.resize(render_shot(people[0], rng), (1280, 720))
    film = tmp_path / "crowd.mp4"
    encode_stills(film, [crowd(), close_up, crowd()], 24)
    result = subjects_of(film, config)
    assert len(result.keyframes) == 3
    # every keyframe of the two crowd shots sees over a hundred faces, all too small to embed
    assert result.n_small_faces >= 4 * 100
    assert {d.shot for d in result.detections} == {1}  # only the close-up is embedded
    assert len(result.by_subject()) == 1


def test_near_black_frames_do_not_invent_or_merge_people(
    tmp_path: Path, people: list[Person], tiny_config: PipelineConfig
) -> None:
    rng = np.random.default_rng(1)
    a, b = people[0], people[3]
    stills = [render_shot(a, rng), render_shot(b, rng), render_shot(a, rng)]
    dark = (render_shot(a, rng).astype(np.float32) * 0.04).astype(np.uint8)  # 0..10 grey levels
    black = np.zeros_like(dark)
    film = tmp_path / "dark.mp4"
    encode_stills(film, [*stills, dark, black], 24)
    result = subjects_of(film, tiny_config)
    ids = [set(result.shot_subjects(s)) for s in range(5)]
    assert ids[0] == ids[2] and len(ids[0]) == 1 and ids[1] and ids[1] != ids[0]
    assert ids[3] <= ids[0]  # the darkened A is A or nobody, never B or someone new
    assert ids[4] == set() and result.in_shot(4) == []


def test_a_face_cut_by_the_frame_edge_is_kept_inside_and_marked(
    tmp_path: Path, people: list[Person], tiny_config: PipelineConfig
) -> None:
    rng = np.random.default_rng(2)
    person = people[0]
    whole = render_shot(person, rng)
    # the same person with the right part of the face past the left frame edge
    crop = cv2.resize(person.image, None, fx=1.2, fy=1.2)
    face_x0 = int(person.face[0] * 1.2)
    face_w = int((person.face[2] - person.face[0]) * 1.2)
    cut = np.full_like(whole, 128)
    shown = crop[:, face_x0 + face_w * 2 // 5 :][:360, :640]
    cut[: shown.shape[0], : shown.shape[1]] = shown
    film = tmp_path / "edge.mp4"
    encode_stills(film, [whole, cut, render_shot(person, rng)], 24)
    result = subjects_of(film, tiny_config)
    edge = result.in_shot(1)
    for d in edge:
        x0, y0, x1, y1 = d.normalised_box()
        assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
    assert any(d.touches_edge for d in edge), [d.box for d in edge]
    assert not any(d.touches_edge for d in result.in_shot(0))
