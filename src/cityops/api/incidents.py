"""Incidents and work orders:

    GET  /api/v1/incidents?status=&category=&area=&department=&overdue=&open=&cursor=&limit=
    POST /api/v1/incidents                              report a case (operator, inspector)
    GET  /api/v1/incidents/{id}                         with work orders, reports, timeline
    POST /api/v1/incidents/{id}/actions/{action}        register, cancel, dispatch, verify ...
    GET  /api/v1/incidents/{id}/cap                     OASIS CAP 1.2 public warning
    POST /api/v1/work-orders/{id}/actions/{action}      accept, return, finish ...
    POST /api/v1/work-orders/{id}/assign                propose the nearest available person

Refusals say why: 409 for a move the case's state does not allow, 403 for a role that may
never make it, 404 for what the key's scope does not cover (it must not learn it exists).
"""

from __future__ import annotations

import uuid

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from cityops.act.cap import to_cap_xml
from cityops.act.desk import NotFound
from cityops.act.warning import warning_of
from cityops.api.access import principal
from cityops.api.errors import ApiError, json_response
from cityops.api.paging import limit_of
from cityops.api.params import body_of, cursor_for, cursor_of, flag
from cityops.domain.access import Principal, Role
from cityops.domain.incidents.model import Incident, Report, Status
from cityops.domain.incidents.workflow import (
    Actor,
    NotAllowed,
    OutOfScope,
    Refused,
    Rules,
)
from cityops.domain.privacy import mask_data, mask_text
from cityops.store.base import IncidentFilter

READ = frozenset({Role.ADMIN, Role.OPERATOR, Role.DEPARTMENT, Role.STATION, Role.FIELD})
REPORT = frozenset({Role.ADMIN, Role.OPERATOR, Role.FIELD})
ACT = frozenset({Role.ADMIN, Role.OPERATOR, Role.DEPARTMENT, Role.STATION, Role.FIELD})


class NewIncident(msgspec.Struct, forbid_unknown_fields=True):
    category: str
    lat: float
    lon: float
    title: str = ""
    description: str = ""
    source: str = "inspector"
    key: str | None = None  # the client's idempotency key: a retry files nothing twice
    photos: list[str] = []


class ActionBody(msgspec.Struct, forbid_unknown_fields=True):
    reason: str = ""
    note: str = ""
    departments: list[str] | None = None
    category: str | None = None
    title: str | None = None
    orders: list[str] | None = None
    photos: list[str] | None = None
    progress: str | None = None
    staff_id: str | None = None


SOURCES = ("sensor", "video", "inspector", "citizen", "hotline", "open311", "operator",
           "higher_level")


def desk_of(request: Request):
    act = request.app.state.node.act
    if act is None:
        raise ApiError(503, "this node does not run the incident desk (settings.act is off)")
    return act.desk


def actor_of(who: Principal) -> Actor:
    return Actor(who.key_id, who.role, who.scope, who.name)


def visible(request: Request, who: Principal, inc: Incident) -> bool:
    rules: Rules = request.app.state.node.act.rules
    try:
        rules._check_scope(inc, actor_of(who))
    except OutOfScope:
        return False
    return True


def scope_filter(node, who: Principal) -> dict:
    """What a scoped key's list is narrowed to: its area, or its department's cases and the
    areas that department serves."""
    if who.scope.area is not None:
        return {"scope_areas": (who.scope.area,)}
    if who.scope.department is not None:
        served = tuple(node.department_areas.get(who.scope.department, []))
        return {"scope_areas": served, "scope_departments": (who.scope.department,)}
    return {}


def _status_list(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return ()
    names = tuple(s.strip() for s in raw.split(",") if s.strip())
    known = {s.value for s in Status}
    for name in names:
        if name not in known:
            raise ApiError(400, f"status {name!r} is not one of: {', '.join(sorted(known))}")
    return names


def incident_json(inc: Incident, now: float) -> dict:
    doc = msgspec.to_builtins(inc)
    doc["title"], doc["description"] = mask_text(inc.title), mask_text(inc.description)
    doc["departments"] = inc.departments
    doc["parked"] = inc.parked
    late = [d for d in (inc.close_due,) if d is not None]
    doc["overdue"] = inc.is_open and bool(late) and min(late) <= now
    return doc


async def list_incidents(request: Request) -> Response:
    node = request.app.state.node
    who = await principal(request, READ)
    desk_of(request)
    q = request.query_params
    area = q.get("area")
    if area is not None and (not area.isdigit() or not 1 <= len(area) <= 12):
        raise ApiError(400, f"area {area!r} is not an area code (6, 9 or 12 digits, or a prefix)")
    overdue = flag(q.get("overdue"), "overdue")
    f = IncidentFilter(
        status=_status_list(q.get("status")),
        category=q.get("category") or None,
        area=area,
        department=q.get("department") or None,
        overdue_at=node.clock() if overdue else None,
        open=flag(q.get("open"), "open"),
        **scope_filter(node, who),
    )
    limit = limit_of(request)
    page = await node.store.list_incidents(f, limit=limit + 1, before=cursor_of(q.get("cursor")))
    more = len(page) > limit
    page = page[:limit]
    now = node.clock()
    next_cursor = cursor_for(page[-1].reported_at, page[-1].id) if more and page else None
    return json_response({"items": [incident_json(i, now) for i in page], "next": next_cursor})


async def post_incident(request: Request) -> Response:
    node = request.app.state.node
    who = await principal(request, REPORT)
    desk = desk_of(request)
    body: NewIncident = await body_of(request, NewIncident)
    if not (-90 <= body.lat <= 90 and -180 <= body.lon <= 180):
        raise ApiError(400, f"lat/lon ({body.lat}, {body.lon}) are not a place on Earth")
    if body.source not in SOURCES:
        raise ApiError(400, f"source {body.source!r} is not one of: {', '.join(SOURCES)}")
    if body.category not in desk.rules.categories:
        raise ApiError(400, f"category {body.category!r} is not in this city's category table "
                            "(GET /api/v1/categories lists them)")
    if node.city.resolve(body.lat, body.lon) is None:
        raise ApiError(400, f"({body.lat}, {body.lon}) lies outside {node.pack.info.name}")
    key = f"{who.key_id}:{body.key}" if body.key else f"{who.key_id}:{uuid.uuid4().hex}"
    report = Report(key=key, source=body.source, at=node.clock(), text=body.description,
                    lat=body.lat, lon=body.lon, reporter=who.name or who.key_id,
                    data={"photos": body.photos} if body.photos else {})
    try:
        # A person's report waits for the centre's check (register or cancel); only alerts
        # of packs that say so are registered and dispatched without one.
        result = await desk.async_report(report, body.category, actor=actor_of(who),
                                         title=body.title, description=body.description,
                                         auto_register=False)
    except OutOfScope as error:
        raise ApiError(403, str(error)) from None
    except NotAllowed as error:
        raise ApiError(403, str(error)) from None
    doc = incident_json(result.incident, node.clock())
    doc["merged"] = result.merged
    doc["repeated"] = result.repeated
    status = 201 if not (result.merged or result.repeated) else 200
    return json_response(doc, status, {"Location": f"/api/v1/incidents/{result.incident.id}"})


async def _visible_incident(request: Request, who: Principal, incident_id: str) -> Incident:
    desk = desk_of(request)
    try:
        inc = await desk.get(incident_id)
    except NotFound:
        raise ApiError(404, f"no incident {incident_id!r}") from None
    if not visible(request, who, inc):
        raise ApiError(404, f"no incident {incident_id!r}")
    return inc


def report_json(report: Report) -> dict:
    """A report as operators see it: a caller's phone number (an Open311 request's contact)
    masked, since only the citizen's own key may see it whole; so are phone and ID numbers
    written into its text or anywhere in its data."""
    doc = msgspec.to_builtins(report)
    if "text" in doc:
        doc["text"] = mask_text(doc["text"])
    if "data" in doc:
        doc["data"] = mask_data(doc["data"])
    return doc


async def get_incident(request: Request) -> Response:
    node = request.app.state.node
    who = await principal(request, READ)
    inc = await _visible_incident(request, who, request.path_params["incident_id"])
    doc = incident_json(inc, node.clock())
    doc["reports_filed"] = [report_json(r) for r in await node.store.incident_reports(inc.id)]
    doc["timeline"] = [msgspec.to_builtins(e) for e in await node.store.incident_events(inc.id)]
    return json_response(doc)


async def _run_move(request: Request, move) -> Response:
    node = request.app.state.node
    try:
        inc = await move()
    except NotFound as error:
        raise ApiError(404, str(error)) from None
    except OutOfScope as error:
        raise ApiError(404, str(error)) from None
    except NotAllowed as error:
        raise ApiError(403, str(error)) from None
    except Refused as error:
        raise ApiError(409, error.reason) from None
    return json_response(incident_json(inc, node.clock()))


def _args(body: ActionBody) -> dict:
    return {k: v for k, v in msgspec.structs.asdict(body).items() if v is not None}


async def incident_action(request: Request) -> Response:
    who = await principal(request, ACT)
    desk = desk_of(request)
    body: ActionBody = await body_of(request, ActionBody, empty_ok=True)
    incident_id, action = request.path_params["incident_id"], request.path_params["action"]
    return await _run_move(request, lambda: desk.async_act(incident_id, action, actor_of(who),
                                                           **_args(body)))


async def order_action(request: Request) -> Response:
    who = await principal(request, ACT)
    desk = desk_of(request)
    body: ActionBody = await body_of(request, ActionBody, empty_ok=True)
    order_id, action = request.path_params["order_id"], request.path_params["action"]
    return await _run_move(request, lambda: desk.async_act_on_order(
        order_id, action, actor_of(who), **_args(body)))


async def assign_order(request: Request) -> Response:
    who = await principal(request, ACT)
    desk = desk_of(request)
    body: ActionBody = await body_of(request, ActionBody, empty_ok=True)
    order_id = request.path_params["order_id"]
    return await _run_move(request, lambda: desk.async_act_on_order(
        order_id, "assign", actor_of(who), staff_id=body.staff_id))


async def incident_cap(request: Request) -> Response:
    node = request.app.state.node
    who = await principal(request, READ)
    inc = await _visible_incident(request, who, request.path_params["incident_id"])
    rules: Rules = node.act.rules
    category = rules.category(inc)
    if not category.cap_category and not category.urgent:
        raise ApiError(409, f"category {category.code} is not an emergency: no public warning "
                            "is issued for it")
    sender = "cityops." + "".join(ch for ch in node.pack.info.name.lower() if ch.isalnum())
    warning = warning_of(inc, category, node.city, sender=sender,
                         timezone=node.pack.info.timezone, now=node.clock())
    return Response(to_cap_xml(warning), 200, media_type="application/cap+xml")


async def list_categories(request: Request) -> Response:
    await principal(request, READ | {Role.CITIZEN})
    desk = desk_of(request)
    return json_response({"items": [msgspec.to_builtins(c) for c in desk.rules.categories]})


async def act_stats(request: Request) -> Response:
    """The desk's counters and the dispatch latency (alert published -> every work order
    created and its notification handed to the notifier)."""
    from cityops.domain.access import READ_OPERATIONS

    await principal(request, READ_OPERATIONS)
    desk_of(request)
    node = request.app.state.node
    return json_response({**node.act.summary(), **node.loop_lag.summary()})
