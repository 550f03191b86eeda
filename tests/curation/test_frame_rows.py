"""muss_builder.curation.frame_rows: rows kept across chunk boundaries, in order."""

from __future__ import annotations

import pickle

import numpy as np

from muss_builder.curation.frame_rows import FrameRows


def test_rows_come_back_in_order_across_chunks() -> None:
    rows = FrameRows((2, 3), np.uint8, fill=0, chunk=4)
    assert rows.array().shape == (0, 2, 3) and len(rows) == 0
    for i in range(10):  # two whole chunks and half of a third
        rows.append(np.full((2, 3), i, np.uint8))
    got = rows.array()
    assert got.shape == (10, 2, 3) and got.dtype == np.uint8 and len(rows) == 10
    assert got[:, 0, 0].tolist() == list(range(10))
    assert pickle.loads(pickle.dumps(rows)).array().tolist() == got.tolist()  # ranges travel


def test_a_tuple_row_and_the_fill_of_a_float_table() -> None:
    rows = FrameRows((3,), np.float32, fill=np.nan, chunk=8)
    rows.append((0.5, np.nan, 1.0))
    got = rows.array()
    assert got.shape == (1, 3) and got[0, 0] == 0.5 and np.isnan(got[0, 1])
