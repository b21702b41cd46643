"""Roll-ups: the evaluation figures, incident counts and KPI series of the finest areas added up
to any level of the city (village, town, district), and the periods a figure is compared with.

Pure. Area codes are hierarchical (6-digit district, +3 town, +3 village: domain/city.py), so a
case or a series belongs to every area whose code is a prefix of its own; rolling up is cutting
each code to the level's length and grouping by what is left. A case with no area, or an area
coarser than the level asked (a district-wide KPI series asked for by town), falls in no row.

Evaluation rows roll up exactly: every figure of `Figures` is a count or a mean recomputed from
the cases themselves, never an average of averages, so a town's row is the row its cases would
make on their own.

KPI series are kept by the packs at several levels at once (Pudong's hourly KPIs for the district
and for every town), the coarser one being the total of the finer ones. Adding them all would
count each call twice; so, inside each area of the level asked, only the finest series present
are used.

Comparisons: a calendar month (or run of whole months) is compared with the months just before
it, and with the same months a year earlier; any other period with the same number of days just
before it, and the same dates a year earlier (29 February becomes the 28th).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from typing import Literal

import msgspec

from cityops.domain.city import CODE_LENGTH, Level
from cityops.domain.evaluation import CaseFacts, Figures, evaluate

Compare = Literal["previous", "last_year"]
Aggregate = Literal["sum", "mean"]
COMPARES: tuple[Compare, ...] = ("previous", "last_year")

# The figures a comparison reports a change of: the counts and rates a reader looks at first.
CHANGED = ("due", "closed", "closed_on_time", "closure_rate", "on_time_closure_rate",
           "registered", "rework_rate", "dispatch_accuracy")


def code_at(code: str | None, level: Level) -> str | None:
    """The area at `level` that `code` lies in (its prefix), or None when `code` is coarser."""
    length = CODE_LENGTH[level]
    if code is None or len(code) < length:
        return None
    return code[:length]


def inside(code: str | None, area: str | None) -> bool:
    """Whether `code` lies in `area` (None: the whole city)."""
    return area is None or (code is not None and code.startswith(area))


# -- periods ----------------------------------------------------------------------------------


def _add_months(day: dt.date, months: int) -> dt.date:
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return dt.date(year, month + 1, 1)


def _whole_months(first: dt.date, after: dt.date) -> int:
    """How many calendar months [first, after) is, or 0 when it is not whole months."""
    if first.day != 1 or after.day != 1:
        return 0
    return (after.year - first.year) * 12 + after.month - first.month


def _year_before(day: dt.date) -> dt.date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def compared_period(first: dt.date, after: dt.date, compare: Compare) -> tuple[dt.date, dt.date]:
    """The period [first, after) is compared with: the one just before it of the same length,
    or the same dates a year earlier."""
    if after <= first:
        raise ValueError(f"period [{first}, {after}) is empty")
    if compare == "last_year":
        return _year_before(first), _year_before(after)
    if compare != "previous":
        raise ValueError(f"compare {compare!r} is not one of {', '.join(COMPARES)}")
    months = _whole_months(first, after)
    if months:
        return _add_months(first, -months), first
    return first - (after - first), first


# -- evaluation rolled up ---------------------------------------------------------------------


def rollup_cases(cases: Iterable[CaseFacts], level: Level,
                 area: str | None = None) -> list[CaseFacts]:
    """The cases inside `area` with their area cut to `level`; cases with no area at that level
    are dropped."""
    out = []
    for case in cases:
        if not inside(case.area, area):
            continue
        at = code_at(case.area, level)
        if at is not None:
            out.append(msgspec.structs.replace(case, area=at) if at != case.area else case)
    return out


def evaluate_rollup(cases: Iterable[CaseFacts], period_start: float, period_end: float,
                    level: Level, *, area: str | None = None, areas: Iterable[str] = (),
                    now: float | None = None) -> list[Figures]:
    """One evaluation row per area at `level` inside `area`. `areas` names the areas that get a
    row even with no case (every town of the district, say)."""
    wanted = [a for a in areas if len(a) == CODE_LENGTH[level] and inside(a, area)]
    return evaluate(rollup_cases(cases, level, area), period_start, period_end, "area",
                    groups=wanted, now=now)


class Change(msgspec.Struct, frozen=True, kw_only=True):
    """How one group's figures moved against a compared period: this period's value minus that
    one's, per figure of CHANGED (None where either side has no value)."""

    group: str | None
    compare: str
    delta: dict[str, float | None]


def changes(now_rows: Sequence[Figures], then_rows: Sequence[Figures],
            compare: str) -> list[Change]:
    """Row by row (matched by group), what changed; a group missing on one side counts as a
    group with nothing in it there."""
    then = {r.group: r for r in then_rows}
    out = []
    for row in now_rows:
        old = then.get(row.group)
        delta: dict[str, float | None] = {}
        for name in CHANGED:
            a = getattr(row, name)
            b = getattr(old, name) if old is not None else (0 if isinstance(a, int) else None)
            delta[name] = None if a is None or b is None else a - b
        out.append(Change(group=row.group, compare=compare, delta=delta))
    return out


# -- incident counts rolled up ----------------------------------------------------------------


class CaseCount(msgspec.Struct, frozen=True):
    """One case as counted: its area (finest code), category and status."""

    area: str | None
    category: str
    status: str


class AreaCounts(msgspec.Struct, frozen=True, kw_only=True):
    area: str
    total: int
    by_category: dict[str, int]
    by_status: dict[str, int]


def count_cases(cases: Iterable[CaseCount], level: Level, *, area: str | None = None,
                areas: Iterable[str] = ()) -> list[AreaCounts]:
    """Cases per area at `level` inside `area`, by category and by status, ordered by area;
    the keys of each count are sorted, so equal inputs give equal answers."""
    tallies: dict[str, tuple[dict[str, int], dict[str, int]]] = {
        a: ({}, {}) for a in areas if len(a) == CODE_LENGTH[level] and inside(a, area)}
    for case in cases:
        at = code_at(case.area, level) if inside(case.area, area) else None
        if at is None:
            continue
        cats, states = tallies.setdefault(at, ({}, {}))
        cats[case.category] = cats.get(case.category, 0) + 1
        states[case.status] = states.get(case.status, 0) + 1
    return [AreaCounts(area=a, total=sum(tallies[a][0].values()),
                       by_category=dict(sorted(tallies[a][0].items())),
                       by_status=dict(sorted(tallies[a][1].items())))
            for a in sorted(tallies)]


def top(counts: dict[str, int], n: int) -> list[tuple[str, int]]:
    """The `n` largest counts, largest first, ties by name."""
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


# -- KPI series rolled up ---------------------------------------------------------------------


class SeriesTotal(msgspec.Struct, frozen=True):
    """What one KPI series (a `kpi` device) read in a period: its KPI, the area it is kept for,
    the sum of its values and how many there were."""

    kpi: str
    area: str
    total: float
    count: int


class KpiRow(msgspec.Struct, frozen=True, kw_only=True):
    area: str
    kpi: str
    value: float | None  # the sum, or the mean of every reading; None with no reading
    readings: int
    series: int  # how many series were added (the finest ones inside the area)


def rollup_kpis(series: Iterable[SeriesTotal], level: Level, aggregate: Aggregate, *,
                area: str | None = None) -> list[KpiRow]:
    """Per area at `level` inside `area` and per KPI, the sum (or mean) of the finest series
    kept inside it; ordered by area, then KPI."""
    if aggregate not in ("sum", "mean"):
        raise ValueError(f"aggregate {aggregate!r} is not sum or mean")
    groups: dict[tuple[str, str], list[SeriesTotal]] = {}
    for s in series:
        if not math.isfinite(s.total) or s.count < 0:
            raise ValueError(f"series {s.kpi}/{s.area}: total {s.total}, count {s.count}")
        at = code_at(s.area, level) if inside(s.area, area) else None
        if at is not None:
            groups.setdefault((at, s.kpi), []).append(s)
    rows = []
    for (at, kpi), found in sorted(groups.items()):
        finest = max(len(s.area) for s in found)
        used = [s for s in found if len(s.area) == finest]
        total, count = sum(s.total for s in used), sum(s.count for s in used)
        value = total if aggregate == "sum" else (total / count if count else None)
        rows.append(KpiRow(area=at, kpi=kpi, value=value if count else None, readings=count,
                           series=len(used)))
    return rows
