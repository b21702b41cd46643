"""The reports' routes:

    POST /api/v1/reports                {area, period} -> 201 the report, made and kept
    GET  /api/v1/reports                the reports of the key's area, newest first
    GET  /api/v1/reports/{id}           one report's metadata
    GET  /api/v1/reports/{id}.pdf       its PDF

A report shows a whole area's figures across departments, so it is for the centre's keys
(admin, operator, station); a department key is refused. An area-scoped key makes, lists and
reads only reports of areas inside its own.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import msgspec
from starlette.responses import Response

from cityops.api.errors import ApiError
from cityops.api.evaluation import FORMS, parse_period
from cityops.api.route import Call, Endpoint, Guard, Scope, errors_map
from cityops.domain.access import Role
from cityops.reports.model import FAILED, ReportDoc
from cityops.reports.service import ReportsBusy, month_before

ROLES = frozenset({Role.ADMIN, Role.OPERATOR, Role.STATION})

errors_map({ReportsBusy: 503})


class ReportRequest(msgspec.Struct, forbid_unknown_fields=True):
    # Default: the key's own area, or the city's district for an unscoped key.
    area: Annotated[str, msgspec.Meta(pattern=r"^\d{6}(\d{3}){0,2}$")] | None = None
    # Default: the month before this one, in the city's time zone.
    period: Annotated[str, msgspec.Meta(max_length=40, description=FORMS)] | None = None


class ListQuery(msgspec.Struct, forbid_unknown_fields=False):
    area: Annotated[str, msgspec.Meta(pattern=r"^\d{6}(\d{3}){0,2}$")] | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=200)] = 50


class ReportList(msgspec.Struct):
    items: list[ReportDoc]


def _reports(call: Call[Any, Any]) -> Any:
    return call.node.reports


async def _load(call: Call[Any, Any]) -> ReportDoc | None:
    rid = call.path["report_id"]
    if len(rid) > 64:
        return None
    found: ReportDoc | None = await _reports(call).get(rid)
    return found


def _sees(call: Call[Any, Any], doc: ReportDoc) -> bool:
    mine = call.principal.scope.area
    return mine is None or doc.area.startswith(mine)


GUARD = Guard("report", "report_id", _load, _sees)


async def make_report(call: Call[ReportRequest, Any]) -> ReportDoc:
    node, who, body = call.node, call.principal, call.body
    pack = node.pack
    mine = who.scope.area
    districts = [a.code for a in pack.areas if len(a.code) == 6]
    area = body.area or mine or (districts[0] if len(districts) == 1 else None)
    if area is None:
        raise ApiError(400, "area: name the area to report on (the city has several districts)")
    if mine is not None and not area.startswith(mine):
        raise ApiError(403, f"area {area!r} is outside the key's scope {mine!r}")
    if area not in {a.code for a in pack.areas}:
        raise ApiError(400, f"area {area!r} is not an area of the city")
    tz = ZoneInfo(pack.info.timezone)
    if body.period is None:
        today = dt.datetime.fromtimestamp(node.clock(), tz).date()
        period, first, after = month_before(today)
    else:
        period = body.period.strip()
        first, after = parse_period(period, tz)
        if (after - first).days > 366:
            raise ApiError(400, f"period {period!r} is longer than a year")
    doc: ReportDoc | None = await _reports(call).make(area, period, first, after, who.key_id)
    assert doc is not None  # only a scheduled report is ever skipped
    return doc


async def list_reports(call: Call[None, ListQuery]) -> ReportList:
    who, q = call.principal, call.query
    mine = who.scope.area
    area = q.area
    if mine is not None:
        if area is None or mine.startswith(area):
            area = mine
        elif not area.startswith(mine):
            return ReportList([])
    return ReportList(await _reports(call).recent(area, q.limit))


async def get_report(call: Call[None, Any]) -> ReportDoc:
    doc: ReportDoc = call.record
    return doc


async def get_report_pdf(call: Call[None, Any]) -> Response:
    doc: ReportDoc = call.record
    if doc.status == FAILED:
        raise ApiError(409, f"report {doc.id} failed: {doc.error}")
    pdf = await _reports(call).pdf(doc)
    if pdf is None:
        raise ApiError(404, f"report {doc.id}'s PDF is not on this node")
    name = f"cityops-{doc.area}-{doc.period.replace('..', '_')}.pdf"
    return Response(pdf, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{name}"'})


ROUTES = [
    Endpoint("POST", "/api/v1/reports", make_report,
             "Make a PDF report of an area for a period (default: the key's area, last month)",
             ROLES, Scope.CREATE, kind="report", body=ReportRequest, body_required=False,
             response=ReportDoc, status=201, errors=(403, 503)),
    Endpoint("GET", "/api/v1/reports", list_reports,
             "The reports kept of areas in the key's scope, newest first",
             ROLES, Scope.LIST, kind="report", query=ListQuery, response=ReportList),
    Endpoint("GET", "/api/v1/reports/{report_id}.pdf", get_report_pdf, "A report's PDF",
             ROLES, Scope.RECORD, guard=GUARD, media_type="application/pdf", errors=(409,)),
    Endpoint("GET", "/api/v1/reports/{report_id}", get_report, "A report's metadata",
             ROLES, Scope.RECORD, guard=GUARD, response=ReportDoc),
]
