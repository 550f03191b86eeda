"""Real faces: identity accuracy on films cut from shipped photos, and the face stage's speed.

    .venv/bin/python benchmarks/faces.py --seeds 5 --runs 3

1. Identities. For each seed, a film of the dozen people in the photos that ship in installed
   packages (``muss_builder/testing/face_film.py``), each in 3 shots with a different zoom,
   mirror, lighting, tilt and place, in shuffled order. The subject stage of the default
   pipeline runs on it; shot pairs are scored against the truth: pairwise precision and
   recall of "same id" vs "same person", and how many ids hold more than one person. The
   cosine similarity between the mean embeddings of two shots is reported for same-person
   and stranger pairs: the margin the clustering thresholds sit in.
2. Throughput. Keyframes per second of the whole subject stage (decode, detection,
   recognition, crops, clustering) and of the models alone, on the face film (640x360, one
   face per keyframe) and on 1280x720 crowd frames (about 170 faces of 10-14 px) with a
   1280 px detector input. Median of ``--runs``.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
from pathlib import Path

import cv2
import numpy as np

from muss_builder.config import PipelineConfig, load_pipeline
from muss_builder.core.models import offline_face_pack_dir
from muss_builder.media.probe import probe_film
from muss_builder.shots.segment import detect_shots
from muss_builder.subjects.faces import FaceDetector
from muss_builder.subjects.stage import FilmSubjects, find_subjects
from muss_builder.testing.face_film import encode_stills, make_face_film, shipped_people


def run_stage(path: Path, config: PipelineConfig) -> FilmSubjects:
    probe = probe_film(str(path), film_id="0" * 16)
    detection = detect_shots(str(path), probe, config.shots, config.analysis)
    return find_subjects(str(path), probe, detection, config.subjects)


def score(result: FilmSubjects, truth: list[str]) -> dict[str, float]:
    ids = [tuple(result.shot_subjects(s)) for s in range(len(truth))]
    tp = fp = fn = 0
    same, strangers = [], []
    means = []
    for s in range(len(truth)):
        emb = [d.embedding for d in result.in_shot(s)]
        means.append(np.mean(emb, axis=0) / np.linalg.norm(np.mean(emb, axis=0)) if emb else None)
    for i, j in itertools.combinations(range(len(truth)), 2):
        same_truth, same_id = truth[i] == truth[j], bool(ids[i]) and ids[i] == ids[j]
        tp += same_truth and same_id
        fp += same_id and not same_truth
        fn += same_truth and not same_id
        if means[i] is not None and means[j] is not None:
            (same if same_truth else strangers).append(float(means[i] @ means[j]))
    people_per_id: dict[tuple, set[str]] = {}
    for shot_ids, person in zip(ids, truth, strict=True):
        people_per_id.setdefault(shot_ids, set()).add(person)
    return {
        "precision": tp / max(1, tp + fp),
        "recall": tp / max(1, tp + fn),
        "ids": len([k for k in people_per_id if k]),
        "mixed": sum(len(v) > 1 for k, v in people_per_id.items() if k),
        "unidentified": sum(not k for k in ids),
        "same_min": min(same),
        "same_median": statistics.median(same),
        "stranger_max": max(strangers),
    }


def crowd_frame(shift: int) -> np.ndarray:
    """The shipped team photo shrunk (faces 10-14 px) and tiled over 1280x720, shifted and
    relit per shot so that the shots cut."""
    players = cv2.imread(str(offline_face_pack_dir() / "players.jpg"))
    tile = cv2.resize(players, None, fx=0.3, fy=0.3, interpolation=cv2.INTER_AREA)
    rows, cols = -(-720 // tile.shape[0]) + 1, -(-1280 // tile.shape[1]) + 1
    frame = np.tile(tile, (rows, cols, 1))[shift : shift + 720, 2 * shift : 2 * shift + 1280]
    return cv2.convertScaleAbs(frame, alpha=0.7 + 0.1 * (shift % 4))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    config = load_pipeline("default")
    detector = FaceDetector()
    detector.setup()
    people = shipped_people(detector)
    workdir = Path(tempfile.mkdtemp(prefix="bench-faces-"))

    print(f"{len(people)} people from shipped photos: {', '.join(p.name for p in people)}\n")
    print(
        "| seed | shots | ids | ids with 2+ people | unidentified shots | pair precision | "
        "pair recall | same-person cos (min / median) | stranger cos (max) |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    face_film = workdir / "faces-0.mp4"
    for seed in range(args.seeds):
        film = workdir / f"faces-{seed}.mp4"
        truth = make_face_film(film, people, shots_per_person=3, seed=seed)
        r = score(run_stage(film, config), truth)
        print(
            f"| {seed} | {len(truth)} | {r['ids']} | {r['mixed']} | {r['unidentified']} | "
            f"{r['precision']:.3f} | {r['recall']:.3f} | {r['same_min']:.2f} / "
            f"{r['same_median']:.2f} | {r['stranger_max']:.2f} |"
        )

    crowd_film = workdir / "crowd.mp4"
    encode_stills(crowd_film, [crowd_frame(s) for s in (0, 60, 120, 180)], 24)
    crowd_config = config.model_copy(
        update={
            "subjects": config.subjects.model_copy(
                update={
                    "faces": config.subjects.faces.model_copy(update={"det_size": 1280}),
                }
            )
        }
    )
    print(f"\nface stage throughput, median of {args.runs} runs (keyframes per second)\n")
    print("| film | keyframes | faces embedded | faces too small | whole stage | models only |")
    print("|---|---|---|---|---|---|")
    for name, film, cfg in (
        ("face film, 640x360, det 640", face_film, config),
        ("crowd, 1280x720, det 1280", crowd_film, crowd_config),
    ):
        totals, models = [], []
        result = None
        for _ in range(args.runs):
            result = run_stage(film, cfg)
            totals.append(result.seconds["total"])
            models.append(result.seconds["models"])
        assert result is not None
        n = sum(len(v) for v in result.keyframes.values())
        print(
            f"| {name} | {n} | {len(result.detections)} | {result.n_small_faces} | "
            f"{n / statistics.median(totals):.1f} | {n / statistics.median(models):.1f} |"
        )


if __name__ == "__main__":
    main()
