"""A citizen's own Open311 reports, for the citizen portal:

    GET /api/v1/citizens/me/reports                          the caller's reports, newest first
    GET /api/v1/citizens/me/reports/{service_request_id}     the case one request joined

Open311 publishes requests without saying who made them; these calls, for citizen keys only,
add what the one who filed them needs to follow and rate them: the case each joined and its
status. The list is kept by the server (the request's record names its owner), so it follows
the citizen to any phone that signs in with any of their keys.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from cityops.api.errors import ApiError
from cityops.api.route import Call, Endpoint, NoQuery, Scope
from cityops.api.serve_util import Cursor, cursor_for, cursor_of
from cityops.domain.access import Role
from cityops.open311.routes import catalogue_of
from cityops.open311.service_requests import RequestDoc, Requests
from cityops.serve.reviews import FINISHED_INCIDENTS

CITIZEN = frozenset({Role.CITIZEN})


class Page(msgspec.Struct):
    # Each item reads its case and timeline: a page is kept to what a phone shows at once.
    limit: Annotated[int, msgspec.Meta(ge=1, le=100)] = 20
    cursor: Cursor | None = None


class MyReport(msgspec.Struct, kw_only=True):
    """The request as Open311 publishes it, and the case it joined."""

    service_request_id: str
    status: str
    status_notes: str
    service_name: str
    service_code: str
    description: str
    agency_responsible: str
    service_notice: str
    requested_datetime: str | None
    updated_datetime: str | None
    expected_datetime: str | None
    address: str
    address_id: str | None
    zipcode: str | None
    lat: float | None
    long: float | None
    media_url: str | None
    incident_id: str
    incident_status: str | None
    title: str
    finished: bool
    titles: dict[str, str] = {}  # the title in other languages (Incident.titles)


class MyReports(msgspec.Struct):
    items: list[MyReport]
    next: str | None


class ReportCase(msgspec.Struct):
    service_request_id: str
    incident_id: str
    incident_status: str
    title: str
    finished: bool
    titles: dict[str, str] = {}  # the title in other languages (Incident.titles)


async def list_reports(call: Call[None, Page]) -> MyReports:
    """A citizen key naming a citizen gets every request filed with any key of that citizen;
    a citizen key naming no one, the requests filed with that key."""
    node = call.node
    items, more = await Requests(node, catalogue_of(node)).of_owner(
        call.principal, call.query.limit, cursor_of(call.query.cursor))
    return MyReports(msgspec.convert(items, list[MyReport]),
                     cursor_for(*more) if more else None)


async def citizen_report(call: Call[None, Any]) -> ReportCase:
    """The case an Open311 request joined, so that the citizen page can rate it once it is
    finished. Open311 publishes no incident id; a citizen may rate any finished public problem,
    so naming the case of a request id (which the public request list shows anyway) gives away
    nothing else."""
    node = call.node
    rid = call.path["service_request_id"]
    rec = await Requests(node, catalogue_of(node)).get(rid)
    if rec is None:
        raise ApiError(404, f"no service request {rid}")
    doc = msgspec.json.decode(rec.doc, type=RequestDoc)
    inc = await node.store.get_incident(doc.incident_id)
    if inc is None:
        raise ApiError(404, f"no case for service request {rid}")
    return ReportCase(rid, inc.id, inc.status.value, inc.title,
                      inc.status in FINISHED_INCIDENTS, dict(inc.titles or {}))


ROUTES = [
    Endpoint("GET", "/api/v1/citizens/me/reports", list_reports,
             "The calling citizen's Open311 requests with their cases, newest first",
             CITIZEN, Scope.OWN, query=Page, response=MyReports),
    # Not scoped: any citizen may rate any finished public problem, and the request ids are
    # public already (see citizen_report).
    Endpoint("GET", "/api/v1/citizens/me/reports/{service_request_id}", citizen_report,
             "The case an Open311 request joined, and whether it is finished", CITIZEN,
             Scope.NONE, query=NoQuery, response=ReportCase, errors=(404,)),
]
