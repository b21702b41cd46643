"""Alerts raised by detection: GET /api/v1/alerts, GET /api/v1/alerts/{id}."""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from cityops.api.access import principal
from cityops.api.errors import ApiError, json_response
from cityops.api.paging import limit_of
from cityops.api.params import cursor_for, cursor_of, flag
from cityops.domain.access import READ_DEVICES, Principal, can_see_place
from cityops.domain.alerts import Alert


def may_see(node, who: Principal, alert: Alert) -> bool:
    if who.scope.department is not None and who.scope.department in alert.departments:
        return True
    return can_see_place(who, alert.areas, None, node.department_areas)


async def list_alerts(request: Request) -> Response:
    node = request.app.state.node
    who = await principal(request, READ_DEVICES)
    q = request.query_params
    area = q.get("area")
    if area is not None and (not area.isdigit() or len(area) not in (6, 9, 12)):
        raise ApiError(400, f"area {area!r} is not a 6, 9 or 12 digit area code")
    scope_area = who.scope.area
    if scope_area is not None:
        if area is None or scope_area.startswith(area):
            area = scope_area  # a scoped key asking wider still sees only its own area
        elif not area.startswith(scope_area):
            return json_response({"items": [], "next": None})
    limit = limit_of(request)
    before = cursor_of(q.get("cursor"))
    active = flag(q.get("active"), "active")
    items: list[Alert] = []
    # A department key filters after the query; page on until the page is full.
    while len(items) < limit + 1:
        page = await node.store.list_alerts(scenario=q.get("scenario"), area=area,
                                            active=active, limit=limit + 1, before=before)
        items += [a for a in page if may_see(node, who, a)]
        if len(page) < limit + 1:
            break
        before = (page[-1].first_seen, page[-1].id)
    more = len(items) > limit
    items = items[:limit]
    next_cursor = cursor_for(items[-1].first_seen, items[-1].id) if more and items else None
    return json_response({"items": [msgspec.to_builtins(a) for a in items], "next": next_cursor})


async def get_alert(request: Request) -> Response:
    node = request.app.state.node
    who = await principal(request, READ_DEVICES)
    alert = await node.store.get_alert(request.path_params["alert_id"])
    if alert is None or not may_see(node, who, alert):
        raise ApiError(404, f"no alert {request.path_params['alert_id']!r}")
    return json_response(msgspec.to_builtins(alert))
