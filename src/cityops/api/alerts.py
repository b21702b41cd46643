"""Alerts raised by detection: GET /api/v1/alerts, GET /api/v1/alerts/{alert_id} (with the
case it was filed into).

A key sees an alert raised where its scope reaches; a department key also every alert sent to
its department, wherever it was raised.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from cityops.api.export import Export
from cityops.api.incidents import visible
from cityops.api.params import cursor_for, cursor_of
from cityops.api.route import Call, Endpoint, Guard, Scope
from cityops.domain.access import READ_DEVICES, Principal, can_see_place
from cityops.domain.alerts import Alert


def may_see(node: Any, who: Principal, alert: Alert) -> bool:
    if who.scope.department is not None and who.scope.department in alert.departments:
        return True
    return can_see_place(who, alert.areas, None, node.department_areas)


async def load_alert(call: Call[Any, Any]) -> Alert | None:
    found: Alert | None = await call.node.store.get_alert(call.path["alert_id"])
    return found


def sees_alert(call: Call[Any, Any], alert: Alert) -> bool:
    return may_see(call.node, call.principal, alert)


ALERT = Guard("alert", "alert_id", load_alert, sees_alert)


class AlertQuery(msgspec.Struct, forbid_unknown_fields=False):
    scenario: Annotated[str, msgspec.Meta(max_length=64, description="Pack name")] | None = None
    area: Annotated[str, msgspec.Meta(pattern=r"^\d{6}(\d{3}){0,2}$",
                                      description="A 6, 9 or 12 digit area code")] | None = None
    active: bool | None = None
    silenced: Annotated[bool, msgspec.Meta(description="Held by a silence (`silenced_by`) or "
                                           "not")] | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100
    cursor: Annotated[str, msgspec.Meta(max_length=200,
                                        description="`next` of the previous page")] | None = None


class AlertPage(msgspec.Struct):
    items: list[Alert]
    next: str | None


async def list_alerts(call: Call[None, AlertQuery]) -> AlertPage:
    node, who, q = call.node, call.principal, call.query
    area = q.area
    scope_area = who.scope.area
    if scope_area is not None:
        if area is None or scope_area.startswith(area):
            area = scope_area  # a scoped key asking wider still sees only its own area
        elif not area.startswith(scope_area):
            return AlertPage([], None)
    limit = q.limit
    before = cursor_of(q.cursor)
    items: list[Alert] = []
    # A department key filters after the query, and so does `silenced` (not a column of the
    # stores' alerts: a silence is rare, so reading more rows a page is cheaper than a column
    # in three stores); page on until the page is full.
    fetch = limit + 1 if q.silenced is None else max(limit + 1, 500)
    while len(items) < limit + 1:
        page = await node.store.list_alerts(scenario=q.scenario, area=area, active=q.active,
                                            limit=fetch, before=before)
        items += [a for a in page if may_see(node, who, a)
                  and (q.silenced is None or (a.silenced_by is not None) == q.silenced)]
        if len(page) < fetch:
            break
        before = (page[-1].first_seen, page[-1].id)
    more = len(items) > limit
    items = items[:limit]
    return AlertPage(items, cursor_for(items[-1].first_seen, items[-1].id)
                     if more and items else None)


class AlertDetail(Alert, kw_only=True):
    # The case the alert was filed into (its own, its group's or one it merged into), when
    # the key may see that case; None while unfiled, or when it was held (silenced_by,
    # inhibited_by) and filed nowhere.
    incident_id: str | None = None


async def get_alert(call: Call[None, Any]) -> AlertDetail:
    alert: Alert = call.record
    found = None
    case_id = None
    if call.node.act is not None:  # a node without the act side cannot judge case scopes
        case_id = await call.node.store.incident_of_report(f"alert:{alert.id}")
    if case_id is not None:
        case = await call.node.store.get_incident(case_id)
        if case is not None and visible(call.request, call.principal, case):
            found = case_id
    fields = msgspec.structs.asdict(alert)
    return AlertDetail(**fields, incident_id=found)


ROUTES = [
    Endpoint("GET", "/api/v1/alerts", list_alerts, "Alerts, newest first", READ_DEVICES,
             Scope.LIST, kind="alert", query=AlertQuery, response=AlertPage,
             export=Export("alerts")),
    Endpoint("GET", "/api/v1/alerts/{alert_id}", get_alert, "One alert with its evidence",
             READ_DEVICES, Scope.RECORD, guard=ALERT, response=AlertDetail),
]
