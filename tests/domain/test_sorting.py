"""Garbage-sorting accuracy, ranking, targets and trend on constructed inspections."""

from __future__ import annotations

import pytest

from cityops.domain.sorting import (
    Community,
    Inspection,
    InspectionError,
    check_inspection,
    rank,
    tally,
)

T1, T2 = "310115001", "310115002"
C = [Community(f"{T1}001", "North", T1), Community(f"{T1}002", "South", T1),
     Community(f"{T1}003", "East", T1), Community(f"{T1}004", "Quiet", T1),
     Community(f"{T2}001", "Far", T2)]


def insp(code: str, stream: str, checked: int, correct: int, at: float = 0.0) -> Inspection:
    return Inspection(code, stream, checked, correct, at)


def test_accuracy_weighs_each_item_not_each_inspection() -> None:
    t = tally([insp(C[0].code, "wet", 200, 196), insp(C[0].code, "wet", 2, 0)])[C[0].code]
    assert t.accuracy == pytest.approx(196 / 202)  # a mean of ratios would say 49 %
    assert t.inspections == 2


def test_accuracy_per_stream() -> None:
    t = tally([insp(C[0].code, "wet", 100, 90), insp(C[0].code, "hazardous", 10, 10),
               insp(C[0].code, "wet", 100, 100)])[C[0].code]
    assert t.by_stream() == {"wet": 0.95, "hazardous": 1.0}
    assert t.accuracy == pytest.approx(200 / 210)


def test_ranked_within_each_town_best_first_none_last() -> None:
    rows, _ = rank(C, [insp(C[0].code, "dry", 100, 91), insp(C[1].code, "dry", 100, 99),
                       insp(C[2].code, "dry", 100, 91), insp(C[4].code, "dry", 100, 80)], [])
    got = [(r.code[-3:], r.town, r.rank) for r in rows]
    # ties (001 and 003 at 91 %) go by code; the community never inspected comes last, rank 0
    assert got == [("002", T1, 1), ("001", T1, 2), ("003", T1, 3), ("004", T1, 0),
                   ("001", T2, 1)]


def test_targets_flag_below_90_and_mark_above_98() -> None:
    rows, towns = rank(C, [insp(C[0].code, "wet", 1000, 899), insp(C[1].code, "wet", 1000, 900),
                           insp(C[2].code, "wet", 1000, 981), insp(C[4].code, "wet", 1000, 980)],
                       [])
    by = {r.code: r for r in rows}
    assert by[C[0].code].below_target and not by[C[1].code].below_target
    assert by[C[2].code].best and not by[C[4].code].best  # above 98 %, not at it
    assert not by[C[3].code].below_target  # no inspection is not a failing one
    avg = {t.town: t for t in towns}
    assert avg[T1].accuracy == pytest.approx((899 + 900 + 981) / 3000)
    assert avg[T1].communities == 3 and not avg[T1].below_target
    assert avg[T2].accuracy == pytest.approx(0.98)


def test_a_town_below_its_90_percent_average() -> None:
    _, towns = rank(C, [insp(C[0].code, "wet", 100, 99), insp(C[1].code, "wet", 300, 240)], [])
    assert {t.town: t.below_target for t in towns} == {T1: True, T2: False}
    assert {t.town: t.accuracy for t in towns}[T2] is None


def test_trend_against_the_previous_period() -> None:
    rows, _ = rank(C, [insp(C[0].code, "wet", 100, 95), insp(C[1].code, "wet", 100, 90)],
                   [insp(C[0].code, "wet", 100, 90), insp(C[2].code, "wet", 100, 90)])
    by = {r.code: r for r in rows}
    assert by[C[0].code].trend == pytest.approx(0.05)
    assert by[C[0].code].previous == pytest.approx(0.90)
    assert by[C[1].code].trend is None  # nothing before to compare with
    assert by[C[2].code].trend is None and by[C[2].code].accuracy is None


@pytest.mark.parametrize(("bad", "field"), [
    (insp("x", "glass", 10, 5), "stream"), (insp("x", "wet", 0, 0), "checked"),
    (insp("x", "wet", 10, 11), "correct"), (insp("x", "wet", 10, -1), "correct"),
    (insp("x", "wet", 10**7, 1), "checked"),
])
def test_impossible_inspections_name_the_field(bad, field) -> None:
    with pytest.raises(InspectionError, match=f"^{field}:"):
        check_inspection(bad)
