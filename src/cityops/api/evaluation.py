"""GET /api/v1/evaluation?period=&group_by=department|area|category: the figures of SPEC
section 4 (closure, on-time closure, rework, dispatch and registration accuracy, mean step
times) for a period in the city's own time zone.

Roll-ups (issue 16): `level=village|town|district` gives one row per area at that level, the
cases rolled up by code prefix (domain/rollup.py), `area=CODE` narrows to one area, and
`compare=previous|last_year` (repeatable as `previous,last_year`) adds the same rows for the
period compared with and each row's changes."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import msgspec

from cityops.api.errors import ApiError
from cityops.api.export import Export
from cityops.api.route import Call, Endpoint, Scope
from cityops.domain.access import Role
from cityops.domain.city import Level
from cityops.domain.evaluation import Figures, WaitFigures, evaluate, wait_figures
from cityops.domain.incidents.facts import facts_of
from cityops.domain.rollup import Change

READ = frozenset({Role.ADMIN, Role.OPERATOR, Role.DEPARTMENT, Role.STATION})
GROUP_BYS = ("department", "area", "category")
FORMS = "YYYY, YYYY-MM, YYYY-MM-DD, YYYY-Www or YYYY-MM-DD..YYYY-MM-DD"


def parse_period(text: str, tz: ZoneInfo) -> tuple[dt.date, dt.date]:
    """[first day, day after the last) of a period written as a year, month, ISO week, day or
    an inclusive range of days."""
    text = text.strip()
    try:
        if ".." in text:
            a, b = text.split("..", 1)
            start, last = dt.date.fromisoformat(a), dt.date.fromisoformat(b)
            if last < start:
                raise ApiError(400, f"period {text!r} ends before it starts")
            return start, last + dt.timedelta(days=1)
        if re.fullmatch(r"\d{4}", text):
            y = int(text)
            return dt.date(y, 1, 1), dt.date(y + 1, 1, 1)
        if m := re.fullmatch(r"(\d{4})-W(\d{2})", text):
            start = dt.date.fromisocalendar(int(m[1]), int(m[2]), 1)
            return start, start + dt.timedelta(days=7)
        if m := re.fullmatch(r"(\d{4})-(\d{2})", text):
            y, mo = int(m[1]), int(m[2])
            start = dt.date(y, mo, 1)
            return start, dt.date(y + (mo == 12), mo % 12 + 1, 1)
        day = dt.date.fromisoformat(text)
        return day, day + dt.timedelta(days=1)
    except (ValueError, OverflowError):  # a date past 9999 overflows
        raise ApiError(400, f"period {text!r} is not one of: {FORMS}") from None


class EvaluationQuery(msgspec.Struct, forbid_unknown_fields=False):
    period: Annotated[str, msgspec.Meta(max_length=40, description=FORMS)] | None = None
    group_by: Literal["department", "area", "category"] | None = None
    level: Level | None = None  # roll the cases up to areas at this level (group_by area)
    area: Annotated[str, msgspec.Meta(pattern=r"^\d{6}(\d{3}){0,2}$")] | None = None
    compare: Annotated[str, msgspec.Meta(max_length=40, description=(
        "previous, last_year or both (comma-separated)"))] | None = None


class Period(msgspec.Struct):
    from_: str = msgspec.field(name="from")
    to: str
    timezone: str


class Compared(msgspec.Struct):
    compare: str  # previous | last_year
    period: Period
    cases: int
    items: list[Figures]
    changes: list[Change]  # per row of `items` above: this period's figure minus that one's


class Evaluation(msgspec.Struct, omit_defaults=True):
    period: Period
    group_by: str | None
    cases: int
    items: list[Figures]
    level: str | None = None
    area: str | None = None
    compared: list[Compared] = []
    queue: WaitFigures | None = None  # the service hall's numbers called in the period


async def queue_waits(call: Call[None, EvaluationQuery], start: float, end: float
                      ) -> WaitFigures | None:
    """The hall's waits for the key: a department its own counter, an unscoped key every
    counter; an area key none (the hall is no area's), nor a node without the serve side."""
    node, who = call.node, call.principal
    if getattr(node, "serve", None) is None or who.scope.area is not None:
        return None
    from cityops.serve.queue import hall_of

    hall = hall_of(node)
    counters = None if who.scope.department is None else [
        c for c in hall.counters if c == who.scope.department]
    return wait_figures(await hall.waits(start, end, counters))


async def get_evaluation(call: Call[None, EvaluationQuery]) -> Evaluation:
    if call.query.level is not None or call.query.area or call.query.compare:
        from cityops.api.rollups import evaluation_rollup

        return await evaluation_rollup(call)
    node, who, q = call.node, call.principal, call.query
    tz = ZoneInfo(node.pack.info.timezone)
    now = dt.datetime.fromtimestamp(node.clock(), tz)
    first, after = parse_period(q.period or now.strftime("%Y-%m"), tz)
    try:
        start = dt.datetime.combine(first, dt.time(), tz).timestamp()
        end = dt.datetime.combine(after, dt.time(), tz).timestamp()
    except (OverflowError, ValueError):  # the first or last day of the calendar
        raise ApiError(400, f"period {q.period!r} lies at the edge of the calendar") from None
    cases = [facts_of(i) for i in await node.store.incidents_for_period(start, end)]
    if who.scope.area is not None:
        cases = [c for c in cases if (c.area or "").startswith(who.scope.area)]
    if who.scope.department is not None:
        cases = [c for c in cases if who.scope.department in c.departments]
    groups = [d.code for d in node.pack.departments] if q.group_by == "department" else []
    rows = evaluate(cases, start, end, q.group_by, groups=groups, now=node.clock())
    if who.scope.department is not None and q.group_by == "department":
        rows = [r for r in rows if r.group == who.scope.department]
    return Evaluation(Period(first.isoformat(), (after - dt.timedelta(days=1)).isoformat(),
                             node.pack.info.timezone), q.group_by, len(cases), rows,
                      queue=await queue_waits(call, start, end))


ROUTES = [
    Endpoint("GET", "/api/v1/evaluation", get_evaluation,
             "Closure, on-time closure, rework, dispatch and registration accuracy and mean "
             "step times for a period, over the cases the key's scope covers; rolled up to a "
             "level and compared with earlier periods on request",
             READ, Scope.LIST, kind="area", query=EvaluationQuery, response=Evaluation,
             export=Export("evaluation")),
]
