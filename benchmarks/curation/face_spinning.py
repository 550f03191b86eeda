"""Why the face pack's onnxruntime threads do not spin: the face detector's time per keyframe
alone and beside the text detector's thread, with onnxruntime's idle spinning on and off.

    .venv/bin/python benchmarks/curation/face_spinning.py --runs 3

A build's keyframe pass runs the face detector (SCRFD of the offline pack, onnxruntime's
default intra-op threads: one per core) while the text detector (PP-OCRv4 DB, one thread, the
screen as a build runs it) works through the same keyframes on a thread of its own
(``filters.keyframes.text.own_thread``). Frames: every 13th frame of the demo footage's music
video (``tests/test.mp4``, 160x90), the film whose keyframes dominate the demo build. Per
setting and run: the face detector on ``--faces`` frames, alone and with the text thread
screening ``--texts`` frames beside it; medians over ``--runs``, settings interleaved run by run.
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time

import cv2
import numpy as np

from muss_builder.curation.text import TextDetector, detector_model_path
from muss_builder.media.demo_footage import demo_films
from muss_builder.subjects.faces import FaceDetector


def music_video_frames(step: int = 13) -> list[np.ndarray]:
    film = next(p for p in demo_films() if p.name == "test.mp4")
    capture, frames, index = cv2.VideoCapture(str(film)), [], 0
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        if index % step == 0:
            frames.append(frame)
        index += 1


def one_run(
    faces: FaceDetector, frames: list[np.ndarray], n_faces: int, n_texts: int, beside_text: bool
) -> tuple[float, float]:
    """(face seconds, text seconds) for one pass; text 0 when it did not run."""
    text = TextDetector(detector_model_path())
    text_seconds: list[float] = []

    def screen() -> None:
        started = time.perf_counter()
        for frame in frames[:n_texts]:
            text.detect(frame)
        text_seconds.append(time.perf_counter() - started)

    worker = threading.Thread(target=screen)
    started = time.perf_counter()
    if beside_text:
        worker.start()
    for frame in frames[:n_faces]:
        faces.detect(frame)
    face_seconds = time.perf_counter() - started
    if beside_text:
        worker.join()
    return face_seconds, text_seconds[0] if text_seconds else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--faces", type=int, default=150, help="frames the face detector sees")
    parser.add_argument("--texts", type=int, default=378, help="frames the text thread screens")
    args = parser.parse_args()
    frames = music_video_frames()
    detectors = {spin: FaceDetector(spin=spin) for spin in (True, False)}
    for detector in detectors.values():
        detector.setup()
        detector.detect(frames[0])  # warm-up
    results: dict[tuple[bool, bool], list[tuple[float, float]]] = {}
    for _ in range(args.runs):
        for spin, detector in detectors.items():
            for beside in (False, True):
                got = one_run(detector, frames, args.faces, args.texts, beside)
                results.setdefault((spin, beside), []).append(got)
    print(
        f"| spinning | text thread beside | face ms per frame ({args.faces} frames) | "
        f"text thread s ({args.texts} frames) |"
    )
    print("|---|---|---:|---:|")
    for (spin, beside), rows in results.items():
        face_ms = statistics.median(r[0] for r in rows) / args.faces * 1000
        text_s = statistics.median(r[1] for r in rows)
        print(
            f"| {'on' if spin else 'off'} | {'yes' if beside else 'no'} | {face_ms:.1f} | "
            + (f"{text_s:.2f} |" if beside else "- |")
        )


if __name__ == "__main__":
    main()
