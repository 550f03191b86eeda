"""TransNetV2 alone, on every frame: the neural baseline (and the GPU path)."""

from __future__ import annotations

import numpy as np

from muss_builder.config import TransNetConfig
from muss_builder.shots.features import THUMB_SIZE
from muss_builder.shots.transitions import Transition, cut
from muss_builder.shots.transnet import Predictions, TransNetRunner


class TransNetDetector:
    """Frames whose probability passes ``threshold`` are transition frames (the package's rule).

    TransNetV2 marks the *last* frame of the old shot for a hard cut, so a run of one or two
    hot frames ending at ``e`` is a cut at ``e + 1``; a longer run is a gradual transition.
    """

    name = "transnetv2"

    def __init__(self, cfg: TransNetConfig, min_gradual_frames: int) -> None:
        self.cfg = cfg
        self.min_gradual_frames = min_gradual_frames
        self.runner = TransNetRunner(cfg.device, cfg.batch_windows)
        self._thumbs: list[np.ndarray] = []
        self._first: int | None = None
        self.prediction: Predictions | None = None  # kept for the statistics file

    def process_frame(self, index: int, frame: np.ndarray) -> None:
        import cv2

        if self._first is None:
            self._first = index
        thumb = cv2.resize(frame, THUMB_SIZE, interpolation=cv2.INTER_AREA)
        self._thumbs.append(cv2.cvtColor(thumb, cv2.COLOR_BGR2RGB))

    def finish(self) -> list[Transition]:
        if self._first is None:
            return []
        pred = self.prediction = self.runner.predict_all(np.stack(self._thumbs), self._first)
        hot = pred.single >= self.cfg.threshold
        found: list[Transition] = []
        i = 0
        while i < len(hot):
            if not hot[i]:
                i += 1
                continue
            j = i
            while j + 1 < len(hot) and hot[j + 1]:
                j += 1
            peak = round(float(pred.single[i : j + 1].max()), 4)
            start, end = self._first + i, self._first + j
            if j - i + 1 >= self.min_gradual_frames:
                found.append(Transition(start, end, "gradual", peak))
            elif end + 1 < self._first + len(hot):
                found.append(cut(end + 1, peak))
            i = j + 1
        return found
