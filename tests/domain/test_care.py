"""Coverage shares from walking times."""

from __future__ import annotations

import numpy as np
import pytest

from cityops.domain.care import LIMIT_S, covered, newly_covered, shares, split_residents


def test_a_point_is_covered_within_15_minutes_and_never_without_a_way() -> None:
    assert covered(np.array([0.0, 900.0, 900.5, np.inf, np.nan])).tolist() == [
        True, True, False, False, False]
    assert LIMIT_S == 900


def test_shares_weigh_points_by_their_residents() -> None:
    got = shares(["a", "b", "c"], np.array([0, 0, 0, 1]), np.array([30, 10, 0, 5]),
                 np.array([100.0, 1200.0, 10.0, np.inf]))
    assert [(s.area, s.residents_60, s.covered_60) for s in got] == [
        ("a", 40, 30), ("b", 5, 0), ("c", 0, 0)]
    assert got[0].share == pytest.approx(0.75)
    assert got[1].share == 0.0 and got[2].share is None


def test_shares_refuse_columns_of_different_lengths() -> None:
    with pytest.raises(ValueError):
        shares(["a"], np.array([0, 0]), np.array([1]), np.array([1.0, 2.0]))


def test_newly_covered_only_those_brought_inside() -> None:
    before = np.array([100.0, 1000.0, 1000.0, np.inf])
    after = np.array([100.0, 800.0, 1000.0, 600.0])
    assert newly_covered(before, after).tolist() == [False, True, False, True]


@pytest.mark.parametrize(("total", "parts"), [(10, 3), (0, 4), (7, 7), (100, 6)])
def test_residents_split_over_points_add_up(total, parts) -> None:
    split = split_residents(total, parts)
    assert split.sum() == total and len(split) == parts
    assert split.max() - split.min() <= 1
