"""GET /api/v1/evaluation?period=&group_by=department|area|category: the figures of SPEC
section 4 (closure, on-time closure, rework, dispatch and registration accuracy, mean step
times) for a period in the city's own time zone."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from cityops.api.access import principal
from cityops.api.errors import ApiError, json_response
from cityops.domain.access import Role
from cityops.domain.evaluation import evaluate
from cityops.domain.incidents.facts import facts_of

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
    except ValueError:
        raise ApiError(400, f"period {text!r} is not one of: {FORMS}") from None


async def get_evaluation(request: Request) -> Response:
    node = request.app.state.node
    who = await principal(request, READ)
    q = request.query_params
    group_by = q.get("group_by") or None
    if group_by is not None and group_by not in GROUP_BYS:
        raise ApiError(400, f"group_by {group_by!r} is not one of: {', '.join(GROUP_BYS)}")
    tz = ZoneInfo(node.pack.info.timezone)
    now = dt.datetime.fromtimestamp(node.clock(), tz)
    first, after = parse_period(q.get("period") or now.strftime("%Y-%m"), tz)
    start = dt.datetime.combine(first, dt.time(), tz).timestamp()
    end = dt.datetime.combine(after, dt.time(), tz).timestamp()
    cases = [facts_of(i) for i in await node.store.incidents_for_period(start, end)]
    if who.scope.area is not None:
        cases = [c for c in cases if (c.area or "").startswith(who.scope.area)]
    if who.scope.department is not None:
        cases = [c for c in cases if who.scope.department in c.departments]
    groups = [d.code for d in node.pack.departments] if group_by == "department" else []
    rows = evaluate(cases, start, end, group_by, groups=groups)
    if who.scope.department is not None and group_by == "department":
        rows = [r for r in rows if r.group == who.scope.department]
    return json_response({
        "period": {"from": first.isoformat(), "to": (after - dt.timedelta(days=1)).isoformat(),
                   "timezone": node.pack.info.timezone},
        "group_by": group_by,
        "cases": len(cases),
        "items": [msgspec.to_builtins(r) for r in rows],
    })
