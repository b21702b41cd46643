"""ReadingBatch helpers shared by the history reader and the NGSI-LD temporal API."""

from __future__ import annotations

import numpy as np

from cityops.domain.readings import ReadingBatch, series_ranks


def _rows(pairs: list[tuple[int, int]]) -> ReadingBatch:
    n = len(pairs)
    return ReadingBatch(np.array([d for d, _ in pairs], np.int32),
                        np.array([c for _, c in pairs], np.int16),
                        np.arange(n, dtype=np.int64), np.zeros(n))


def test_series_ranks_count_each_series_from_its_oldest_or_newest():
    # three series: (1, 0) of three readings, (1, 1) of one, (2, 0) of two
    rows = _rows([(1, 0), (1, 0), (1, 0), (1, 1), (2, 0), (2, 0)])
    first, sizes, rank = series_ranks(rows, newest=False)
    assert first.tolist() == [0, 3, 4] and sizes.tolist() == [3, 1, 2]
    assert rank.tolist() == [0, 1, 2, 0, 0, 1]
    _, _, rank = series_ranks(rows, newest=True)
    assert rank.tolist() == [2, 1, 0, 0, 1, 0]


def test_series_ranks_of_no_rows_are_empty():
    first, sizes, rank = series_ranks(ReadingBatch.empty(), newest=True)
    assert len(first) == len(sizes) == len(rank) == 0
