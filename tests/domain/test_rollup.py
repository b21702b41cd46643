"""Roll-up maths: cases and KPI series added up by area-code prefix at each level, and the
periods a figure is compared with."""

from __future__ import annotations

import datetime as dt

import pytest

from cityops.domain.city import Level
from cityops.domain.evaluation import CaseFacts, evaluate
from cityops.domain.rollup import (
    CaseCount,
    SeriesTotal,
    changes,
    code_at,
    compared_period,
    count_cases,
    evaluate_rollup,
    rollup_kpis,
    top,
)

D, T1, T2 = "990001", "990001001", "990001002"
V11, V12, V21 = "990001001001", "990001001002", "990001002001"
DAY = 86400.0


def case(i: int, area: str | None, closed_late: bool = False, closed: bool = True) -> CaseFacts:
    reported = 10 * DAY + i
    deadline = reported + DAY
    return CaseFacts(id=f"c{i}", category="cat", area=area, reported=reported,
                     registered=reported + 1, dispatched=reported + 2,
                     closed=(reported + (2 * DAY if closed_late else 100)) if closed else None,
                     deadline=deadline)


CASES = [case(1, V11), case(2, V11, closed_late=True), case(3, V12, closed=False),
         case(4, V21), case(5, V21, closed_late=True), case(6, None), case(7, T2)]
PERIOD = (0.0, 40 * DAY)


def test_code_at_cuts_to_the_level_and_refuses_coarser_codes() -> None:
    assert code_at(V11, Level.TOWN) == T1 and code_at(V11, Level.DISTRICT) == D
    assert code_at(V11, Level.VILLAGE) == V11
    assert code_at(T2, Level.VILLAGE) is None and code_at(None, Level.TOWN) is None


@pytest.mark.parametrize("level", list(Level))
def test_every_level_adds_up_to_the_same_cases(level: Level) -> None:
    rows = evaluate_rollup(CASES, *PERIOD, level, now=PERIOD[1])
    city = evaluate([c for c in CASES if c.area and len(c.area) >= len(code_at(V11, level)
                                                                         or "")],
                    *PERIOD, now=PERIOD[1])[0]
    assert sum(r.due for r in rows) == city.due
    assert sum(r.closed for r in rows) == city.closed
    assert sum(r.closed_on_time for r in rows) == city.closed_on_time


def test_rows_per_level_are_exact() -> None:
    villages = {r.group: r for r in evaluate_rollup(CASES, *PERIOD, Level.VILLAGE,
                                                    now=PERIOD[1])}
    assert set(villages) == {V11, V12, V21}
    assert (villages[V11].due, villages[V11].closed, villages[V11].closed_on_time) == (2, 2, 1)
    assert villages[V12].closed == 0 and villages[V12].due == 1  # deadline passed, not closed
    towns = {r.group: r for r in evaluate_rollup(CASES, *PERIOD, Level.TOWN, now=PERIOD[1])}
    # Town 2 has its village's two cases and one filed at the town itself.
    assert (towns[T1].due, towns[T1].closed) == (3, 2)
    assert (towns[T2].due, towns[T2].closed, towns[T2].closed_on_time) == (3, 3, 2)
    assert towns[T1].on_time_closure_rate == pytest.approx(1 / 3)
    (district,) = evaluate_rollup(CASES, *PERIOD, Level.DISTRICT, now=PERIOD[1])
    assert district.group == D and district.due == 6  # the case with no area falls nowhere


def test_an_area_narrows_and_named_areas_get_empty_rows() -> None:
    rows = evaluate_rollup(CASES, *PERIOD, Level.VILLAGE, area=T1,
                           areas=[V11, V12, V21, "990001001003"], now=PERIOD[1])
    assert [r.group for r in rows] == [V11, V12, "990001001003"]
    assert rows[-1].due == 0 and rows[-1].closure_rate is None


@pytest.mark.parametrize(("first", "after", "compare", "want"), [
    ("2026-11-01", "2026-12-01", "previous", ("2026-10-01", "2026-11-01")),
    ("2026-01-01", "2026-02-01", "previous", ("2025-12-01", "2026-01-01")),
    ("2026-03-01", "2026-04-01", "previous", ("2026-02-01", "2026-03-01")),
    ("2026-01-01", "2027-01-01", "previous", ("2025-01-01", "2026-01-01")),
    ("2026-11-01", "2026-12-01", "last_year", ("2025-11-01", "2025-12-01")),
    ("2026-11-10", "2026-11-17", "previous", ("2026-11-03", "2026-11-10")),
    ("2024-02-29", "2024-03-01", "last_year", ("2023-02-28", "2023-03-01")),
    ("2026-11-23", "2026-11-24", "previous", ("2026-11-22", "2026-11-23")),
])
def test_compared_periods(first: str, after: str, compare: str, want: tuple[str, str]) -> None:
    got = compared_period(dt.date.fromisoformat(first), dt.date.fromisoformat(after),
                          compare)  # type: ignore[arg-type]
    assert (got[0].isoformat(), got[1].isoformat()) == want


def test_compared_period_refuses_nonsense() -> None:
    day = dt.date(2026, 1, 1)
    with pytest.raises(ValueError, match="empty"):
        compared_period(day, day, "previous")
    with pytest.raises(ValueError, match="compare"):
        compared_period(day, day + dt.timedelta(days=1), "tomorrow")  # type: ignore[arg-type]


def test_changes_are_this_period_minus_that_one() -> None:
    now = evaluate_rollup(CASES, *PERIOD, Level.TOWN, now=PERIOD[1])
    then = evaluate_rollup(CASES[:2], *PERIOD, Level.TOWN, now=PERIOD[1])
    by = {c.group: c.delta for c in changes(now, then, "previous")}
    assert by[T1]["due"] == 1 and by[T1]["closed"] == 0
    assert by[T1]["closure_rate"] == pytest.approx(2 / 3 - 1)
    # Town 2 had nothing then: counts change by all of them, a rate from nothing is None.
    assert by[T2]["due"] == 3 and by[T2]["closure_rate"] is None


def test_counts_by_category_and_status_roll_up() -> None:
    cases = [CaseCount(V11, "a", "closed"), CaseCount(V11, "b", "closed"),
             CaseCount(V12, "a", "dispatched"), CaseCount(V21, "a", "closed"),
             CaseCount(None, "a", "closed")]
    towns = count_cases(cases, Level.TOWN, areas=[T1, T2, V11])
    assert [(r.area, r.total) for r in towns] == [(T1, 3), (T2, 1)]
    assert towns[0].by_category == {"a": 2, "b": 1}
    assert towns[0].by_status == {"closed": 2, "dispatched": 1}
    (district,) = count_cases(cases, Level.DISTRICT)
    assert district.total == 4 and district.by_category == {"a": 3, "b": 1}
    assert [r.area for r in count_cases(cases, Level.VILLAGE, area=T1)] == [V11, V12]
    assert top({"x": 2, "y": 5, "a": 2, "z": 1}, 3) == [("y", 5), ("a", 2), ("x", 2)]


def test_kpis_add_only_the_finest_series_inside_an_area() -> None:
    series = [SeriesTotal("calls", D, 100.0, 10),  # the district's own total of its towns
              SeriesTotal("calls", T1, 60.0, 10), SeriesTotal("calls", T2, 40.0, 10),
              SeriesTotal("accuracy", V11, 180.0, 2), SeriesTotal("accuracy", V12, 80.0, 2)]
    district = {r.kpi: r for r in rollup_kpis(series, Level.DISTRICT, "sum")}
    assert district["calls"].value == 100.0 and district["calls"].series == 2  # not 200
    towns = {(r.area, r.kpi): r for r in rollup_kpis(series, Level.TOWN, "sum")}
    assert towns[(T1, "calls")].value == 60.0 and towns[(T2, "calls")].value == 40.0
    means = {(r.area, r.kpi): r for r in rollup_kpis(series, Level.TOWN, "mean")}
    assert means[(T1, "accuracy")].value == pytest.approx(65.0)  # 260 over 4 readings
    assert means[(T1, "calls")].value == pytest.approx(6.0)
    assert rollup_kpis(series, Level.VILLAGE, "sum", area=T2) == []  # no village series there
    empty = rollup_kpis([SeriesTotal("calls", T1, 0.0, 0)], Level.TOWN, "mean")
    assert empty[0].value is None and empty[0].readings == 0
