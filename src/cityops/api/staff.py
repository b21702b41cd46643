"""Field staff and their work:

    GET /api/v1/staff                          people with their latest position and status
    PUT /api/v1/staff/{staff_id}/status        available, en_route, on_site, off_duty
    GET /api/v1/work-orders?mine=&department=&status=   live work orders (a field key: its own)
"""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from cityops.api.access import principal
from cityops.api.errors import ApiError, json_response
from cityops.api.incidents import READ, desk_of, scope_filter
from cityops.api.paging import limit_of
from cityops.api.params import body_of
from cityops.domain.access import Principal, Role
from cityops.domain.incidents.model import OrderStatus
from cityops.domain.nearest import StaffStatus
from cityops.store.base import IncidentFilter


class StatusBody(msgspec.Struct, forbid_unknown_fields=True):
    status: str


def _sees(who: Principal, person: dict) -> bool:
    if who.role is Role.FIELD:
        return person["id"] == who.name or (who.scope.area is not None
                                             and person["home_area"].startswith(who.scope.area))
    if who.scope.department is not None:
        return person["department"] == who.scope.department
    if who.scope.area is not None:
        return person["home_area"].startswith(who.scope.area)
    return True


async def list_staff(request: Request) -> Response:
    node = request.app.state.node
    who = await principal(request, READ)
    board = node.act.staff if node.act is not None else None
    if board is None:
        raise ApiError(503, "this node does not run the incident desk")
    located = {p["id"]: p for p in board.positions()}
    items = []
    for s in node.pack.staff:
        person = {"id": s.id, "name": s.name, "department": s.department,
                  "home_area": s.home_area, "skills": s.skills,
                  "status": board.status[s.id].value, "lat": None, "lon": None, "at": None}
        if s.id in located:
            person.update({k: located[s.id][k] for k in ("lat", "lon", "at")})
        if _sees(who, person):
            items.append(person)
    return json_response({"items": items, "next": None})


async def put_staff_status(request: Request) -> Response:
    node = request.app.state.node
    who = await principal(request, {Role.ADMIN, Role.OPERATOR, Role.DEPARTMENT, Role.FIELD})
    board = node.act.staff if node.act is not None else None
    staff_id = request.path_params["staff_id"]
    if board is None or staff_id not in board:
        raise ApiError(404, f"no field person {staff_id!r}")
    person = board.staff[staff_id]
    if who.role is Role.FIELD and who.name != staff_id:
        raise ApiError(403, "a field key sets only its own status")
    if who.scope.department is not None and who.scope.department != person.department:
        raise ApiError(404, f"no field person {staff_id!r}")
    body: StatusBody = await body_of(request, StatusBody)
    try:
        board.set_status(staff_id, body.status)
    except ValueError:
        known = ", ".join(s.value for s in StaffStatus)
        raise ApiError(400, f"status {body.status!r} is not one of: {known}") from None
    return json_response({"id": staff_id, "status": board.status[staff_id].value})


async def list_work_orders(request: Request) -> Response:
    """Live orders of open cases; a field key gets the orders assigned or offered to it."""
    node = request.app.state.node
    who = await principal(request, READ)
    desk_of(request)
    q = request.query_params
    mine = who.role is Role.FIELD or q.get("mine") in ("true", "1", "yes")
    department = q.get("department") or None
    if who.role is Role.FIELD:
        person = next((s for s in node.pack.staff if s.id == who.name), None)
        department = person.department if person is not None else department
        scope = {}
    else:
        scope = scope_filter(node, who)
    status = q.get("status")
    if status is not None and status not in {s.value for s in OrderStatus}:
        raise ApiError(400, f"status {status!r} is not a work-order status")
    limit = limit_of(request)
    cases = await node.store.list_incidents(
        IncidentFilter(open=True, department=department, **scope), limit=max(limit, 200))
    items = []
    for inc in cases:
        for o in inc.live_orders():
            if department and o.department != department:
                continue
            if status and o.status != status:
                continue
            if mine and not (o.assignee == who.name or (o.offer and o.offer.staff_id == who.name)):
                continue
            items.append({**msgspec.to_builtins(o), "incident": {
                "id": inc.id, "title": inc.title, "category": inc.category,
                "status": inc.status.value, "lat": inc.lat, "lon": inc.lon,
                "urgency": inc.urgency}})
    items.sort(key=lambda o: (o["finish_due"] or 0))
    return json_response({"items": items[:limit], "next": None})
