"""A citizen's own Open311 reports, for the citizen portal:

    GET /api/v1/citizens/me/reports                          the caller's reports, newest first
    GET /api/v1/citizens/me/reports/{service_request_id}     the case one request joined

Open311 publishes requests without saying who made them; these calls, for citizen keys only,
add what the one who filed them needs to follow and rate them: the case each joined and its
status. The list is kept by the server (the request's record names its owner), so it follows
the citizen to any phone that signs in with any of their keys.
"""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from cityops.api.access import principal
from cityops.api.errors import ApiError, json_response
from cityops.api.paging import limit_of
from cityops.api.params import cursor_for, cursor_of
from cityops.domain.access import Role
from cityops.open311.routes import catalogue_of
from cityops.open311.service_requests import RequestDoc, Requests
from cityops.serve.reviews import FINISHED_INCIDENTS

# Each item reads its case and timeline: a page is kept to what a phone shows at once.
DEFAULT_LIMIT = 20
MAX_LIMIT = 100


async def list_reports(request: Request) -> Response:
    """A citizen key naming a citizen gets every request filed with any key of that citizen;
    a citizen key naming no one, the requests filed with that key."""
    who = await principal(request, {Role.CITIZEN})
    node = request.app.state.node
    items, more = await Requests(node, catalogue_of(node)).of_owner(
        who, limit_of(request, DEFAULT_LIMIT, MAX_LIMIT),
        cursor_of(request.query_params.get("cursor")))
    return json_response({"items": items, "next": cursor_for(*more) if more else None})


async def citizen_report(request: Request) -> Response:
    """The case an Open311 request joined, so that the citizen page can rate it once it is
    finished. Open311 publishes no incident id; a citizen may rate any finished public problem,
    so naming the case of a request id (which the public request list shows anyway) gives away
    nothing else."""
    await principal(request, {Role.CITIZEN})
    node = request.app.state.node
    rid = request.path_params["service_request_id"]
    rec = await Requests(node, catalogue_of(node)).get(rid)
    if rec is None:
        raise ApiError(404, f"no service request {rid}")
    doc = msgspec.json.decode(rec.doc, type=RequestDoc)
    inc = await node.store.get_incident(doc.incident_id)
    if inc is None:
        raise ApiError(404, f"no case for service request {rid}")
    return json_response({"service_request_id": rid, "incident_id": inc.id,
                          "incident_status": inc.status.value, "title": inc.title,
                          "finished": inc.status in FINISHED_INCIDENTS})
