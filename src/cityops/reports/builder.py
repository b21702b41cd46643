"""Gathers what one report shows, for an area and a period: the reads (store, history, the
community analytics) happen here, the sums in domain/evaluation.py and domain/rollup.py, and
the result is plain data the renderer lays out without touching the node again.

Cases are the ones the evaluation counts for the period (reported before its end, open at its
start or changed since), narrowed to the area by code prefix; "reported" counts only those
reported in the period. Vital signs are the KPI series kept for exactly this area, read as
daily totals (hourly counts) or daily means (a daily percentage), so the line has one point a
day whatever the series' rate.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import numpy as np

from cityops.analytics.care import CareCoverage, care_coverage
from cityops.analytics.sorting import CommunityAccuracy, sorting_ranking
from cityops.domain.city import LEVELS, level_of_code
from cityops.domain.evaluation import Figures, evaluate
from cityops.domain.incidents.facts import facts_of
from cityops.domain.rollup import compared_period, evaluate_rollup, top

TOP_CATEGORIES = 10
MAX_VITAL_LINES = 6  # KPI lines in the chart; the rest are left out (a pack's KPIs are 5)
MAX_PER_SERIES = 24 * 62 + 1  # an hourly series over a whole two-month period


@dataclass
class VitalLine:
    kpi: str
    title: str
    daily: list[float | None]  # one value per day of the period; None: no reading that day
    total: float
    readings: int
    mean: bool  # the daily value is a mean (a percentage), not a total


@dataclass
class ReportData:
    area: str
    area_name: str
    level: str
    city: str
    period: str
    first: dt.date
    after: dt.date
    timezone: str
    made_at: float
    cases: int  # cases the evaluation counted
    reported: int  # of them, reported in the period
    totals: Figures
    previous: Figures  # the period just before, for the summary's comparison
    last_year: Figures
    by_status: dict[str, int]
    categories: list[tuple[str, int]]  # (category name, cases reported), largest first
    departments: list[Figures]  # evaluation per department (group: its name)
    subareas: list[Figures]  # evaluation per area one level down (group: its name)
    vital: list[VitalLine] = field(default_factory=list)
    sorting: list[CommunityAccuracy] = field(default_factory=list)
    care: list[CareCoverage] = field(default_factory=list)

    @property
    def days(self) -> list[dt.date]:
        n = (self.after - self.first).days
        return [self.first + dt.timedelta(days=i) for i in range(n)]


def _bounds(first: dt.date, after: dt.date, tz: ZoneInfo) -> tuple[float, float]:
    return (dt.datetime.combine(first, dt.time(), tz).timestamp(),
            dt.datetime.combine(after, dt.time(), tz).timestamp())


async def _cases_in(node: Any, area: str, start: float, end: float) -> list[Any]:
    found = await node.store.incidents_for_period(start, end)
    return [i for i in found if i.areas is not None and i.areas.within(area)]


async def _city_row(node: Any, area: str, first: dt.date, after: dt.date,
                    tz: ZoneInfo) -> Figures:
    start, end = _bounds(first, after, tz)
    facts = [facts_of(i) for i in await _cases_in(node, area, start, end)]
    return evaluate(facts, start, end, now=node.clock())[0]


def _vital_lines(node: Any, area: str, first: dt.date, after: dt.date,
                 tz: ZoneInfo) -> list[VitalLine]:
    """Blocking (a history read): the area's own KPI series, one point a day."""
    registry = node.registry
    series = [(i, d) for i, d in enumerate(registry.devices)
              if d.kind == "kpi" and d.meta.get("area") == area][:MAX_VITAL_LINES]
    if not series:
        return []
    start, end = _bounds(first, after, tz)
    rows = node.reader.series([i for i, _ in series], int(start * 1e6), int(end * 1e6),
                              MAX_PER_SERIES)
    days = (after - first).days
    # Day boundaries in the city's time: a DST change makes one day 23 or 25 hours.
    edges = np.array([_bounds(first + dt.timedelta(days=k), first, tz)[0] * 1e6
                      for k in range(days + 1)])
    out = []
    for index, device in series:
        mine = rows.device == index
        ts, values = rows.ts[mine], rows.value[mine].astype(float)
        day = np.searchsorted(edges, ts, side="right") - 1
        mean = "accuracy" in str(device.meta.get("kpi", "")) or "%" in device.name
        daily: list[float | None] = []
        for k in range(days):
            picked = values[day == k]
            daily.append(None if not len(picked) else
                         float(picked.mean() if mean else picked.sum()))
        title = device.name.split(",")[0] if device.name else str(device.meta.get("kpi"))
        out.append(VitalLine(str(device.meta.get("kpi") or device.id), title, daily,
                             float(values.sum()), len(values), mean))
    return out


async def gather(node: Any, area: str, period: str, first: dt.date,
                 after: dt.date) -> ReportData:
    """Everything one report shows. `area` must be one of the pack's areas."""
    pack = node.pack
    tz = ZoneInfo(pack.info.timezone)
    names = {a.code: a.name for a in pack.areas}
    level = level_of_code(area)
    start, end = _bounds(first, after, tz)
    incidents = await _cases_in(node, area, start, end)
    facts = [facts_of(i) for i in incidents]
    now = node.clock()
    totals = evaluate(facts, start, end, now=now)[0]
    reported = [i for i in incidents if start <= i.reported_at < end]
    by_status: dict[str, int] = {}
    by_category: dict[str, int] = {}
    category_names = {c.code: c.name for c in pack.categories}
    for inc in reported:
        by_status[inc.status.value] = by_status.get(inc.status.value, 0) + 1
        name = category_names.get(inc.category, inc.category)
        by_category[name] = by_category.get(name, 0) + 1
    department_names = {d.code: d.name for d in pack.departments}
    departments = [r for r in evaluate(facts, start, end, "department",
                                       groups=list(department_names), now=now)
                   if r.group is not None]
    departments = [_named(r, department_names) for r in departments]
    subareas: list[Figures] = []
    finer = LEVELS.index(level) + 1
    if finer < len(LEVELS):
        down = LEVELS[finer]
        codes = [a.code for a in pack.areas if a.level is down and a.code.startswith(area)]
        subareas = [_named(r, names) for r in evaluate_rollup(
            facts, start, end, down, area=area, areas=codes, now=now)]
    previous = await _city_row(node, area, *compared_period(first, after, "previous"), tz)
    last_year = await _city_row(node, area, *compared_period(first, after, "last_year"), tz)
    vital = await asyncio.to_thread(_vital_lines, node, area, first, after, tz)
    sorting = list(await sorting_ranking(node, start=start, end=end, area=area))
    care = list(await care_coverage(node, area=area))
    return ReportData(
        area=area, area_name=names.get(area, area), level=level.value, city=pack.info.name,
        period=period, first=first, after=after, timezone=pack.info.timezone,
        made_at=now, cases=len(facts),
        reported=len(reported), totals=totals, previous=previous, last_year=last_year,
        by_status=dict(sorted(by_status.items())), categories=top(by_category, TOP_CATEGORIES),
        departments=departments, subareas=subareas, vital=vital, sorting=sorting, care=care)


def _named(row: Figures, names: dict[str, str]) -> Figures:
    return msgspec.structs.replace(row, group=names.get(row.group or "", row.group))
