"""Could the text screen cost less on the demo footage? Four probes, on the films' own keyframes.

    .venv/bin/python benchmarks/curation/text_screen_probes.py   # ~2 min on 2 cores

For each demo film (its shots detected and its keyframes decoded as the subject stage does,
three per shot, not cropped to the active picture):

1. the default detector over every keyframe: keyframes, screen side, how many the screen
   passed, CPU seconds of ``detect`` and of the screen alone;
2. how many consecutive keyframes of one shot are nearly the same picture (every 8x8 block's
   mean grey difference under ``--same-below`` levels): what reusing a result could save;
3. how many keyframes a time rule would screen (one for a shot under 0.8 s, two under 1.2 s,
   else three: a subtitle stays on screen at least ~5/6 s);

and once, 4., the screen's onnxruntime session on one input of ``--side`` under several
session settings (median of 60 calls).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from muss_builder.config import load_pipeline
from muss_builder.curation.keyframe_quality import load_text_detector
from muss_builder.curation.text import detector_model_path
from muss_builder.media.demo_footage import demo_films
from muss_builder.media.probe import probe_film
from muss_builder.shots.segment import detect_shots
from muss_builder.subjects.keyframes import keyframe_frames, read_keyframes


def max_block_difference(a: np.ndarray, b: np.ndarray, block: int = 8) -> float:
    d = np.abs(a.astype(np.float32) - b.astype(np.float32))
    h, w = (d.shape[0] // block) * block, (d.shape[1] // block) * block
    return float(d[:h, :w].reshape(h // block, block, w // block, block).mean(axis=(1, 3)).max())


def film_probes(path: Path, same_below: float) -> str:
    cfg = load_pipeline("default")
    detector = load_text_detector(cfg.filters.keyframes)
    assert detector is not None
    probe = probe_film(path)
    detection = detect_shots(str(path), probe, cfg.shots, cfg.analysis)
    chosen = keyframe_frames(detection.shots, cfg.subjects.keyframes_per_shot)
    frames = read_keyframes(
        str(path), probe, detection.frame_pts, chosen, cfg.subjects.keyframe_max_side
    )
    keyframes = [(k.shot, k.image) for k in frames]
    h, w = keyframes[0][1].shape[:2]
    side = detector.screen_side(h, w)
    passed_before = detector.screened_out
    t0 = time.process_time()
    for _, image in keyframes:
        detector.detect(image)
    detect_cpu = time.process_time() - t0
    screened_out = detector.screened_out - passed_before
    t0 = time.process_time()
    for _, image in keyframes:
        if side is not None:
            detector._probability(image, side)
    screen_cpu = time.process_time() - t0
    same = pairs = 0
    for (shot_a, a), (shot_b, b) in itertools.pairwise(keyframes):
        if shot_a == shot_b:
            pairs += 1
            grey = (cv2.cvtColor(x, cv2.COLOR_BGR2GRAY) for x in (a, b))
            same += max_block_difference(*grey) < same_below
    lengths = [(s.end_frame - s.start_frame) / probe.fps for s in detection.shots]
    by_time = sum(1 if n <= 0.8 else 2 if n <= 1.2 else 3 for n in lengths)
    return (
        f"| {path.name} | {w}x{h} | {len(keyframes)} | {side} | "
        f"{len(keyframes) - screened_out} | {detect_cpu:.2f} | {screen_cpu:.2f} | "
        f"{same} of {pairs} | {by_time} of {3 * len(lengths)} |"
    )


def session_settings(side: int) -> None:
    import onnxruntime as ort

    h = round(side * 9 / 16 / 32) * 32
    x = np.random.default_rng(0).random((1, 3, h, side), dtype=np.float32) * 2 - 1

    def options(**settings: object) -> ort.SessionOptions:
        o = ort.SessionOptions()
        o.intra_op_num_threads, o.inter_op_num_threads, o.log_severity_level = 1, 1, 3
        for key, value in settings.items():
            if key == "spinning":
                o.add_session_config_entry("session.intra_op.allow_spinning", str(value))
            elif key == "batch":
                o.add_free_dimension_override_by_name("p2o.DynamicDimension.0", int(value))
            else:
                setattr(o, key, value)
        return o

    variants = {
        "default": options(),
        "batch dimension pinned to 1": options(batch=1),
        "ORT_ENABLE_EXTENDED": options(
            graph_optimization_level=ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        ),
        "no spinning": options(spinning=0),
        "2 threads": options(intra_op_num_threads=2),
    }
    print(f"\n| session ({side}x{h} input) | ms per call (median of 60) |\n|---|---:|")
    for name, opts in variants.items():
        session = ort.InferenceSession(
            str(detector_model_path()), opts, providers=["CPUExecutionProvider"]
        )
        feed = {session.get_inputs()[0].name: x}
        for _ in range(5):
            session.run(None, feed)
        times = []
        for _ in range(60):
            t0 = time.perf_counter()
            session.run(None, feed)
            times.append(1000 * (time.perf_counter() - t0))
        print(f"| {name} | {statistics.median(times):.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--same-below", type=float, default=8.0)
    parser.add_argument("--side", type=int, default=320)
    args = parser.parse_args()
    print(
        "| film | keyframe | keyframes | screen side | passed the screen | detect CPU s "
        "| screen CPU s | nearly the same pairs | keyframes by the time rule |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---|---|")
    for path in demo_films():
        print(film_probes(path, args.same_below), flush=True)
    session_settings(args.side)


if __name__ == "__main__":
    main()
