"""Roll-ups through the API (issue 16 item 4): evaluation, incident counts and KPIs per area at
one level of the city, for a period, compared on request with the period before and the same
period a year earlier.

    GET /api/v1/evaluation?level=&area=&compare=   (the evaluation route's roll-up form)
    GET /api/v1/rollups/incidents?period=&level=&area=&compare=
    GET /api/v1/rollups/kpis?period=&level=&area=&aggregate=sum|mean&compare=

The maths is in domain/rollup.py; here are the store and history reads and the key's scope:
an area-scoped key's roll-up covers only cases and series inside its area (an `area` outside
it is 403), a department key's only the cases its department works on (KPIs: those its
department owns).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import msgspec
import numpy as np

from cityops.api.access import area_in_scope
from cityops.api.errors import ApiError
from cityops.api.evaluation import (
    FORMS,
    READ,
    Compared,
    Evaluation,
    EvaluationQuery,
    Period,
    parse_period,
)
from cityops.api.route import Call, Endpoint, Scope
from cityops.domain.access import Principal
from cityops.domain.city import Level
from cityops.domain.evaluation import CaseFacts, evaluate
from cityops.domain.incidents.facts import facts_of
from cityops.domain.rollup import (
    COMPARES,
    AreaCounts,
    Compare,
    KpiRow,
    SeriesTotal,
    changes,
    compared_period,
    count_cases,
    evaluate_rollup,
    rollup_kpis,
)
from cityops.domain.rollup import CaseCount as Counted

AreaCode = Annotated[str, msgspec.Meta(pattern=r"^\d{6}(\d{3}){0,2}$",
                                       description="a district, town or village code")]
CompareText = Annotated[str, msgspec.Meta(max_length=40, description=(
    "previous, last_year or both (comma-separated)"))]
PeriodText = Annotated[str, msgspec.Meta(max_length=40, description=FORMS)]


class Span(msgspec.Struct, frozen=True):
    """A period as days [first, after) and as epoch seconds [start, end)."""

    first: dt.date
    after: dt.date
    start: float
    end: float
    tz: str

    def view(self) -> Period:
        return Period(self.first.isoformat(), (self.after - dt.timedelta(days=1)).isoformat(),
                      self.tz)


def span_of(first: dt.date, after: dt.date, tz_name: str, text: str = "") -> Span:
    tz = ZoneInfo(tz_name)
    try:
        start = dt.datetime.combine(first, dt.time(), tz).timestamp()
        end = dt.datetime.combine(after, dt.time(), tz).timestamp()
    except (OverflowError, ValueError):  # the first or last day of the calendar
        raise ApiError(400, f"period {text!r} lies at the edge of the calendar") from None
    return Span(first, after, start, end, tz_name)


def period_span(node: Any, text: str | None) -> Span:
    """The period a query names (default: the month in progress), in the city's time zone."""
    tz_name: str = node.pack.info.timezone
    now = dt.datetime.fromtimestamp(node.clock(), ZoneInfo(tz_name))
    first, after = parse_period(text or now.strftime("%Y-%m"), ZoneInfo(tz_name))
    return span_of(first, after, tz_name, text or "")


def compares_of(text: str | None) -> list[Compare]:
    if not text:
        return []
    out: list[Compare] = []
    for part in text.split(","):
        name = part.strip()
        if name not in COMPARES:
            raise ApiError(400, f"compare {name!r} is not one of: {', '.join(COMPARES)}")
        if name not in out:
            out.append(name)
    return out


def compared_span(span: Span, compare: Compare) -> Span:
    try:
        first, after = compared_period(span.first, span.after, compare)
    except (ValueError, OverflowError):
        raise ApiError(400, f"no period before {span.first} to compare with") from None
    return span_of(first, after, span.tz, str(first))


async def scoped_cases(node: Any, who: Principal, span: Span) -> list:
    """The cases of the period the key's scope covers (incidents, as stored)."""
    found = await node.store.incidents_for_period(span.start, span.end)
    if who.scope.area is not None:
        found = [i for i in found if i.areas is not None and i.areas.within(who.scope.area)]
    if who.scope.department is not None:
        dept = who.scope.department
        found = [i for i in found if dept in {o.department for o in i.orders}]
    return found


def area_codes(node: Any, who: Principal, level: Level) -> list[str]:
    """The areas at `level` that get a row even with no case: every one, or for a department
    key those of its service areas (it learns nothing of the others)."""
    codes = [a.code for a in node.pack.areas if a.level is level]
    if who.scope.department is not None:
        served = node.department_areas.get(who.scope.department, [])
        codes = [c for c in codes if any(c.startswith(s) or s.startswith(c) for s in served)]
    return codes


# -- evaluation rolled up ---------------------------------------------------------------------


async def _figures(call: Call[None, EvaluationQuery], span: Span, level: Level | None,
                   area: str | None) -> tuple[int, list]:
    node, who, q = call.node, call.principal, call.query
    cases: list[CaseFacts] = [facts_of(i) for i in await scoped_cases(node, who, span)]
    if area is not None:
        cases = [c for c in cases if (c.area or "").startswith(area)]
    if level is not None:
        rows = evaluate_rollup(cases, span.start, span.end, level, area=area,
                               areas=area_codes(node, who, level), now=node.clock())
    else:
        groups = [d.code for d in node.pack.departments] if q.group_by == "department" else []
        rows = evaluate(cases, span.start, span.end, q.group_by, groups=groups,
                        now=node.clock())
        if who.scope.department is not None and q.group_by == "department":
            rows = [r for r in rows if r.group == who.scope.department]
    return len(cases), rows


async def evaluation_rollup(call: Call[None, EvaluationQuery]) -> Evaluation:
    q, who = call.query, call.principal
    if q.level is not None and q.group_by not in (None, "area"):
        raise ApiError(400, f"level groups by area; it does not go with group_by={q.group_by}")
    wanted = compares_of(q.compare)
    area = area_in_scope(who, q.area)
    span = period_span(call.node, q.period)
    level = q.level
    cases, rows = await _figures(call, span, level, area)
    compared = []
    for compare in wanted:
        other = compared_span(span, compare)
        n, then = await _figures(call, other, level, area)
        compared.append(Compared(compare, other.view(), n, then, changes(rows, then, compare)))
    return Evaluation(span.view(), "area" if level is not None else q.group_by, cases, rows,
                      level=level.value if level is not None else None, area=area,
                      compared=compared)


# -- incident counts --------------------------------------------------------------------------


class RollupQuery(msgspec.Struct, forbid_unknown_fields=False):
    period: PeriodText | None = None
    level: Level = Level.TOWN
    area: AreaCode | None = None
    compare: CompareText | None = None


class IncidentCounts(msgspec.Struct):
    compare: str | None  # None: the period asked for
    period: Period
    items: list[AreaCounts]


class IncidentRollup(msgspec.Struct):
    level: str
    area: str | None
    periods: list[IncidentCounts]  # the period asked for first, then each compared one


async def incident_counts(node: Any, who: Principal, span: Span, level: Level,
                          area: str | None) -> list[AreaCounts]:
    """Cases reported in the period, per area at `level`, by category and status (now)."""
    found = [i for i in await scoped_cases(node, who, span)
             if span.start <= i.reported_at < span.end]
    cases = [Counted(i.areas.village if i.areas else None, i.category, i.status.value)
             for i in found]
    return count_cases(cases, level, area=area, areas=area_codes(node, who, level))


async def get_incident_rollup(call: Call[None, RollupQuery]) -> IncidentRollup:
    node, who, q = call.node, call.principal, call.query
    area = area_in_scope(who, q.area)
    span = period_span(node, q.period)
    periods = [IncidentCounts(None, span.view(),
                              await incident_counts(node, who, span, q.level, area))]
    for compare in compares_of(q.compare):
        other = compared_span(span, compare)
        periods.append(IncidentCounts(compare, other.view(),
                                      await incident_counts(node, who, other, q.level, area)))
    return IncidentRollup(q.level.value, area, periods)


# -- KPIs -------------------------------------------------------------------------------------


class KpiQuery(RollupQuery, forbid_unknown_fields=False):
    aggregate: Literal["sum", "mean"] = "sum"


class KpiPeriod(msgspec.Struct):
    compare: str | None
    period: Period
    items: list[KpiRow]


class KpiRollup(msgspec.Struct):
    level: str
    area: str | None
    aggregate: str
    periods: list[KpiPeriod]


MAX_PER_SERIES = 24 * 400  # an hourly series over a year and a month: more is not read


def kpi_devices(node: Any, who: Principal, area: str | None) -> list[tuple[int, str, str]]:
    """(registry index, kpi, area code) of the KPI series the key may read inside `area`."""
    registry = node.registry
    out = []
    for i, device in enumerate(registry.devices):
        if device.kind != "kpi":
            continue
        code = str(device.meta.get("area") or (device.areas and device.areas.district) or "")
        if not code or (area is not None and not code.startswith(area)):
            continue
        if who.scope.area is not None and not code.startswith(who.scope.area):
            continue
        if who.scope.department is not None and device.owner != who.scope.department:
            continue
        out.append((i, str(device.meta.get("kpi") or device.id), code))
    return out


def series_totals(reader: Any, devices: list[tuple[int, str, str]], start: float,
                  end: float) -> list[SeriesTotal]:
    """Each series' sum and count of readings in [start, end) (blocking: a history read)."""
    if not devices:
        return []
    rows = reader.series([d[0] for d in devices], int(start * 1e6), int(end * 1e6),
                         MAX_PER_SERIES)
    out = []
    for index, kpi, code in devices:
        mine = rows.value[rows.device == index]
        out.append(SeriesTotal(kpi, code, float(np.sum(mine)) if len(mine) else 0.0,
                               len(mine)))
    return out


async def kpi_rows(node: Any, who: Principal, span: Span, level: Level, area: str | None,
                   aggregate: Literal["sum", "mean"]) -> list[KpiRow]:
    devices = kpi_devices(node, who, area)
    totals = await asyncio.to_thread(series_totals, node.reader,
                                     devices, span.start, span.end)
    return rollup_kpis(totals, level, aggregate, area=area)


async def get_kpi_rollup(call: Call[None, KpiQuery]) -> KpiRollup:
    node, who, q = call.node, call.principal, call.query
    area = area_in_scope(who, q.area)
    span = period_span(node, q.period)
    periods = [KpiPeriod(None, span.view(),
                         await kpi_rows(node, who, span, q.level, area, q.aggregate))]
    for compare in compares_of(q.compare):
        other = compared_span(span, compare)
        periods.append(KpiPeriod(compare, other.view(),
                                 await kpi_rows(node, who, other, q.level, area, q.aggregate)))
    return KpiRollup(q.level.value, area, q.aggregate, periods)


ROUTES = [
    Endpoint("GET", "/api/v1/rollups/incidents", get_incident_rollup,
             "Cases reported in a period per area at a level (village, town, district), by "
             "category and status, over the cases the key's scope covers; compared with the "
             "period before or a year before on request",
             READ, Scope.LIST, kind="area", query=RollupQuery, response=IncidentRollup),
    Endpoint("GET", "/api/v1/rollups/kpis", get_kpi_rollup,
             "The KPI series' sum or mean in a period per area at a level, the finest series "
             "inside each area added up; compared with earlier periods on request",
             READ, Scope.LIST, kind="area", query=KpiQuery, response=KpiRollup),
]
