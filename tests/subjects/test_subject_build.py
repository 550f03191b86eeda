"""The subject stage in a real build, on a film of real faces from photos shipped in packages.

Ground truth: which shipped photo (and which face in it) each shot was cut from.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from muss_builder.config import PipelineConfig
from muss_builder.runtime.build import BuildSummary, build
from muss_builder.samples.ref_strip import STRIP_HEIGHT
from muss_builder.shards.reader import iter_samples
from muss_builder.shards.validate import validate_dataset
from muss_builder.testing.face_film import Person, encode_stills, make_face_film, render_shot


def film_record(summary: BuildSummary) -> dict:
    (path,) = (summary.out / "films").glob("*.json")
    return json.loads(path.read_text())


def samples_of(summary: BuildSummary) -> list[tuple[dict, dict[str, bytes]]]:
    found = []
    for shard in sorted((summary.out / "shards").glob("*.tar")):
        for sample in iter_samples(shard):
            found.append((json.loads(sample.members["json"]), sample.members))
    return found


@pytest.fixture(scope="module")
def face_build(
    tmp_path_factory: pytest.TempPathFactory, people: list[Person], tiny_config: PipelineConfig
) -> tuple[BuildSummary, list[str]]:
    root = tmp_path_factory.mktemp("faces")
    truth = make_face_film(root / "faces.mp4", people, shots_per_person=3, seed=1)
    summary = build([str(root / "faces.mp4")], root / "out", tiny_config, executor="inline")
    return summary, truth


def test_shipped_photos_give_a_dozen_people(people: list[Person]) -> None:
    assert len(people) >= 10
    assert len({p.name for p in people}) == len(people)


def test_same_person_shots_share_one_id_and_strangers_never_do(face_build) -> None:
    summary, truth = face_build
    record = film_record(summary)
    assert record["status"] == "ok" and len(record["shots"]) == len(truth)
    ids = [shot["subjects"] for shot in record["shots"]]
    assert all(len(s) == 1 for s in ids), ids  # one face per shot, each identified
    tp = fp = fn = 0
    for i, j in itertools.combinations(range(len(truth)), 2):
        same_truth, same_id = truth[i] == truth[j], ids[i] == ids[j]
        tp += same_truth and same_id
        fp += same_id and not same_truth
        fn += same_truth and not same_id
    precision, recall = tp / max(1, tp + fp), tp / max(1, tp + fn)
    assert precision >= 0.95 and recall >= 0.95, (precision, recall)
    by_id: dict[str, set[str]] = {}
    for person, shot_ids in zip(truth, ids, strict=True):
        by_id.setdefault(shot_ids[0], set()).add(person)
    assert all(len(names) == 1 for names in by_id.values()), by_id  # never two people in one id
    listed = {s["id"]: s for s in record["subjects"]}
    assert set(listed) == set(by_id)
    assert record["subject_stage"]["n_keyframes"] == 2 * len(truth)


def test_subject_track_references_come_from_other_shots(face_build) -> None:
    summary, _ = face_build
    assert validate_dataset(summary.out) == []
    samples = samples_of(summary)
    # one sample per window, every one serving both tracks: each has a recurring person
    assert samples and all(d["tracks"] == ["montage", "subject"] for d, _ in samples)
    subject = samples
    for doc, _ in samples:
        for shot in doc["shots"]:
            (entry,) = shot["subjects"]
            box = entry["boxes"][0]
            assert shot["clip_start_frame"] <= box["clip_frame"] < shot["clip_end_frame"]
            assert 0 <= box["box"][0] < box["box"][2] <= 1
    outside = []
    for doc, members in subject:
        sample_shots = {s["film_shot_index"] for s in doc["shots"]}
        assert doc["references"][0]["subject"] == doc["focus_subjects"][0]
        strip = cv2.imdecode(np.frombuffer(members["refs.jpg"], np.uint8), cv2.IMREAD_COLOR)
        assert strip.shape[1] == doc["references"][-1]["strip_box"][2]
        for ref in doc["references"]:
            assert ref["source_shot"] not in ref["target_shots"]
            # a fallback only where the film's other shots of the person are copies of a
            # target (same photo rescaled and relit: a sticker in all but name)
            outside.append(ref["source_shot"] not in sample_shots)
            assert outside[-1] != ref["fallback"]
            assert ref["identity_similarity"] >= 0.45
            x0, y0, x1, y1 = ref["strip_box"]
            crop = strip[y0:y1, x0:x1]  # every crop scaled to the strip's height
            assert crop.shape[0] == STRIP_HEIGHT and crop.shape[1] >= 48
    assert sum(outside) >= 0.8 * len(outside)


def test_a_rebuild_gives_the_same_ids_references_and_bytes(
    face_build, tmp_path: Path, tiny_config: PipelineConfig
) -> None:
    summary, _ = face_build
    film = next((summary.out.parent).glob("faces.mp4"))
    again = build([str(film)], tmp_path / "again", tiny_config, executor="inline")
    assert film_record(again)["shots"] == film_record(summary)["shots"]
    first = sorted((summary.out / "shards").glob("*.tar"))
    second = sorted((again.out / "shards").glob("*.tar"))
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    assert again.stats["samples_by_track"]["subject"] > 0
    assert again.stats["references_in_index"] > again.stats["samples_by_track"]["subject"]


def test_fallback_reference_when_the_only_other_appearance_is_in_the_sample(
    tmp_path: Path, people: list[Person], tiny_config: PipelineConfig
) -> None:
    """Shots A B A: A appears nowhere else in the film, so its reference for one A shot is cut
    from the other A shot of the same sample, and says so."""
    rng = np.random.default_rng(5)
    a, b = people[0], people[-1]
    encode_stills(tmp_path / "aba.mp4", [render_shot(p, rng) for p in (a, b, a)], 24)
    summary = build([str(tmp_path / "aba.mp4")], tmp_path / "out", tiny_config, executor="inline")
    assert validate_dataset(summary.out) == []
    subject = [d for d, _ in samples_of(summary) if "subject" in d["tracks"]]
    assert len(subject) == 1
    (doc,) = subject
    refs = doc["references"]
    assert refs and all(r["fallback"] for r in refs)
    assert {r["subject"] for r in refs} == set(doc["focus_subjects"]) == {doc["focus_subjects"][0]}
    for r in refs:
        assert r["source_shot"] in (0, 2) and r["target_shots"] == [2 - r["source_shot"]]


def test_validate_refuses_a_reference_cut_from_a_shot_it_serves(face_build, tmp_path: Path) -> None:
    """Tamper with a built subject sample: its first reference now claims to come from one of
    its target shots. ``validate`` names the sample, the member and the reason."""
    import io
    import shutil
    import tarfile

    summary, _ = face_build
    out = tmp_path / "copy"
    shutil.copytree(summary.out, out)
    (shard,) = sorted((out / "shards").glob("*.tar"))
    with tarfile.open(shard) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    tampered_key = None
    rewritten = []
    for info, data in members:
        if tampered_key is None and info.name.endswith(".json"):
            doc = json.loads(data)
            if "subject" in doc["tracks"]:
                ref = doc["references"][0]
                ref["source_shot"] = ref["target_shots"][0]
                tampered_key, data = doc["key"], json.dumps(doc).encode()
                info.size = len(data)
        rewritten.append((info, data))
    with tarfile.open(shard, "w") as tar:
        for info, data in rewritten:
            tar.addfile(info, io.BytesIO(data))
    problems = validate_dataset(out)
    assert any(
        tampered_key in p
        and "references[0] is cut from shot" in p
        and "one of the shots it serves" in p
        for p in problems
    ), problems


def test_report_shows_every_reference_pose_delta(face_build, tmp_path: Path) -> None:
    from muss_builder.report import write_report

    summary, _ = face_build
    report = write_report(summary.out, tmp_path, samples=1)
    face_refs = [
        ref
        for doc, _ in samples_of(summary)
        for ref in doc["references"]
        if ref["kind"] == "face" and ref["pose_delta"] >= 0  # -1: an object
    ]
    assert face_refs, "the face film gave no face references"
    assert sorted(report.data.pose_deltas) == sorted(r["pose_delta"] for r in face_refs)
    chart = next(c for c in report.charts if "pose" in c.file)
    assert (tmp_path / chart.file).is_file()
    assert f"n={len(face_refs)}," in chart.summary
