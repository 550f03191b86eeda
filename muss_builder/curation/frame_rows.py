"""An append-only table of one fixed-shape row per analysis frame.

The picture filters keep a few numbers per frame for a whole film (a two-hour film is ~170k
frames): rows go into fixed-size chunks, so appending never copies what is already stored and
memory grows by one chunk at a time; ``array`` joins them once, when the film is judged.
"""

from __future__ import annotations

import numpy as np


class FrameRows:
    """Rows of ``shape`` and ``dtype``, one per frame in order; unfilled slots hold ``fill``."""

    def __init__(
        self, shape: tuple[int, ...], dtype: type | np.dtype, fill: float = 0, chunk: int = 1024
    ) -> None:
        self.shape, self.dtype, self.fill, self.chunk = shape, np.dtype(dtype), fill, chunk
        self._chunks: list[np.ndarray] = []
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def append(self, row: np.ndarray | tuple[float, ...]) -> None:
        if self._count % self.chunk == 0:
            self._chunks.append(np.full((self.chunk, *self.shape), self.fill, self.dtype))
        self._chunks[-1][self._count % self.chunk] = row
        self._count += 1

    def array(self) -> np.ndarray:
        """``(len(self), *shape)``: every row, in order."""
        if not self._chunks:
            return np.zeros((0, *self.shape), self.dtype)
        return np.concatenate(self._chunks)[: self._count]
