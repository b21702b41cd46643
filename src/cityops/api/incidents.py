"""Incidents and work orders:

    GET  /api/v1/incidents?status=&category=&area=&department=&overdue=&open=&cursor=&limit=
    POST /api/v1/incidents                              report a case (operator, inspector)
    GET  /api/v1/incidents/{id}                         with work orders, reports, timeline
    POST /api/v1/incidents/{id}/actions/{action}        register, cancel, dispatch, verify ...
    POST /api/v1/incidents/{id}/split                   a wrongly merged report to its own case
    GET  /api/v1/incidents/{id}/cap                     OASIS CAP 1.2 public warning
    GET  /api/v1/incidents/{id}/joint                   what joint dispatch saved on it
    POST /api/v1/work-orders/{id}/actions/{action}      accept, return, finish ...
    POST /api/v1/work-orders/{id}/assign                propose the nearest available person
    GET  /api/v1/categories                             the city's case categories
    GET  /api/v1/act/stats                              desk counters (unscoped keys)

Refusals say why: 409 for a move the case's state does not allow, 403 for a role that may
never make it, 404 for what the key's scope does not cover (it must not learn it exists).
A report is filed where it was made, which must lie in the key's scope, and joins only a case
the key may see. Evidence photos are named by the id their upload answered (see
`cityops.api.photos`), and only photos the caller may see.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from cityops.act import evidence
from cityops.act.cap import to_cap_xml
from cityops.act.desk import NotFound
from cityops.act.warning import warning_of
from cityops.api.errors import ApiError
from cityops.api.export import Export
from cityops.api.params import cursor_for, cursor_of
from cityops.api.route import Call, Endpoint, Guard, NoQuery, Reply, Scope, errors_map
from cityops.api.serve_util import actor_of
from cityops.domain.access import READ_OPERATIONS, Principal, Role, can_see_place
from cityops.domain.incidents import joint
from cityops.domain.incidents.categories import Category
from cityops.domain.incidents.model import Event, Incident, Report, Status, WorkOrder
from cityops.domain.incidents.workflow import CENTRE, NotAllowed, OutOfScope, Refused, Rules
from cityops.domain.privacy import mask_data, mask_text
from cityops.store.base import IncidentFilter
from cityops.store.incident_rows import late_at

__all__ = ["READ", "REPORT", "ACT", "actor_of", "desk_of", "scope_filter", "visible",
           "ORDER", "ORDER_CASE", "Found", "ROUTES", "is_overdue"]

READ = frozenset({Role.ADMIN, Role.OPERATOR, Role.DEPARTMENT, Role.STATION, Role.FIELD})
REPORT = frozenset({Role.ADMIN, Role.OPERATOR, Role.FIELD})
ACT = frozenset({Role.ADMIN, Role.OPERATOR, Role.DEPARTMENT, Role.STATION, Role.FIELD})

errors_map({NotFound: 404, OutOfScope: 404, NotAllowed: 403, Refused: 409})

# A title is one line: a control character or line separator in it would forge log lines.
ONE_LINE = r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]*$"
Title = Annotated[str, msgspec.Meta(max_length=200, pattern=ONE_LINE)]
Text = Annotated[str, msgspec.Meta(max_length=4000)]  # descriptions, notes, reasons
Code = Annotated[str, msgspec.Meta(max_length=64)]  # departments, staff and order ids
CategoryCode = Annotated[str, msgspec.Meta(max_length=200)]
Key = Annotated[str, msgspec.Meta(max_length=200)]
Lat = Annotated[float, msgspec.Meta(ge=-90, le=90)]
Lon = Annotated[float, msgspec.Meta(ge=-180, le=180)]
PhotoId = Annotated[str, msgspec.Meta(
    pattern=evidence.PATTERN, description="The id a work-order photo upload answered")]
Photos = Annotated[list[PhotoId], msgspec.Meta(max_length=evidence.MAX_PER_ORDER)]
Codes = Annotated[list[Code], msgspec.Meta(max_length=50)]
Limit = Annotated[int, msgspec.Meta(ge=1, le=1000)]
Source = Literal["sensor", "video", "inspector", "citizen", "hotline", "open311", "operator",
                 "higher_level"]

INCIDENT_ACTIONS = ("register", "cancel", "dispatch", "redispatch", "verify", "rework",
                    "close", "reopen")
ORDER_ACTIONS = ("accept", "return", "request_park", "approve_park", "deny_park", "resume",
                 "progress", "finish", "escalate", "assign", "acknowledge")


class NewIncident(msgspec.Struct, forbid_unknown_fields=True):
    category: CategoryCode
    lat: Lat
    lon: Lon
    title: Title = ""
    description: Text = ""
    source: Source = "inspector"
    key: Key | None = None  # the client's idempotency key: a retry files nothing twice
    photos: Photos = []
    # What the report is about, when the reporter can tell: a report naming the same device
    # or component as an open case of a related category joins it.
    device: Code | None = None
    component: Code | None = None


class ActionBody(msgspec.Struct, forbid_unknown_fields=True):
    reason: Text = ""
    note: Text = ""
    departments: Codes | None = None
    category: CategoryCode | None = None
    title: Title | None = None
    orders: Codes | None = None
    photos: Photos | None = None
    progress: Literal["en_route", "on_site"] | None = None
    staff_id: Code | None = None


class IncidentQuery(msgspec.Struct):
    status: Annotated[str, msgspec.Meta(max_length=200,
                                        description="Comma-separated statuses")] | None = None
    category: CategoryCode | None = None
    area: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{1,12}$",
                                      description="An area code or a prefix of one")] | None = None
    department: Code | None = None
    overdue: Annotated[bool, msgspec.Meta(
        description="true: open cases past a deadline")] | None = None
    open: bool | None = None
    cursor: Annotated[str, msgspec.Meta(max_length=200)] | None = None
    limit: Limit = 100


class IncidentOut(Incident, kw_only=True):
    """A case as the API shows it: phone and ID numbers in its text masked, with what follows
    from its orders and deadlines."""

    departments: list[str]  # of its live orders
    parked: bool
    overdue: bool


class IncidentPage(msgspec.Struct):
    items: list[IncidentOut]
    next: str | None


class IncidentFiled(IncidentOut, kw_only=True):
    merged: bool  # joined an open case nearby
    repeated: bool  # this report was filed before (a retry): nothing changed


class IncidentDetail(IncidentOut, kw_only=True):
    reports_filed: list[Report]
    timeline: list[Event]
    alerts: list[str]  # ids of the alerts filed into it (a group's, or merged ones)


class SplitBody(msgspec.Struct, forbid_unknown_fields=True):
    report: Key  # the key of a report filed in the case (see reports_filed)
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]


class SplitDone(msgspec.Struct):
    incident: IncidentOut  # the case the report left
    split: IncidentOut  # the report's own case


class Categories(msgspec.Struct):
    items: list[Category]


class ActStats(msgspec.Struct):
    """The desk's counters and the dispatch latency (alert published -> every work order
    created and its notification handed to the notifier)."""

    reports: int = 0
    merged: int = 0
    repeated: int = 0
    created: int = 0
    moves: int = 0
    retries: int = 0
    escalations: int = 0
    notices: int = 0
    notify_refused: int = 0
    held_by_storm_guard: int = 0  # reports held in storm cases (act/storm.py)
    storms_started: int = 0
    grouped: int = 0  # alerts filed into their group's case
    related: int = 0  # reports merged into a case of a related category
    split: int = 0
    alerts: int = 0
    filed: int = 0
    failed: int = 0
    silenced: int = 0  # alerts a silence held: filed nowhere
    inhibited: int = 0  # alerts another explained (an area outage): filed nowhere
    dispatch_latency_p50_ms: float | None = None
    dispatch_latency_p99_ms: float | None = None
    dispatch_wait_p99_ms: float | None = None
    latency_samples: int = 0
    # (ms, category, when, ms waiting to be picked up) of the slowest few filings
    dispatch_slowest: list[tuple[float, str, float, float]] = []
    notifier: dict[str, Any] = {}
    loop_lag_p99_ms: float | None = None
    loop_lag_max_ms: float | None = None


# -- shared with the other act-side modules --------------------------------------------------


def desk_of(request: Request) -> Any:
    act = request.app.state.node.act
    if act is None:
        raise ApiError(503, "this node does not run the incident desk (settings.act is off)")
    return act.desk


def visible(request: Request, who: Principal, inc: Incident) -> bool:
    rules: Rules = request.app.state.node.act.rules
    try:
        rules.check_scope(inc, actor_of(who))
    except OutOfScope:
        return False
    return True


def scope_filter(node: Any, who: Principal) -> dict[str, Any]:
    """What a scoped key's list is narrowed to: its area, or its department's cases and the
    areas that department serves."""
    if who.scope.area is not None:
        return {"scope_areas": (who.scope.area,)}
    if who.scope.department is not None:
        served = tuple(node.department_areas.get(who.scope.department, []))
        return {"scope_areas": served, "scope_departments": (who.scope.department,)}
    return {}


def is_overdue(inc: Incident, now: float) -> bool:
    """An open case past any of its deadlines: its close limit, a live order's accept or
    finish limit, or the centre's dispatch limit. The store's `overdue_at` filter tests the
    same moment (`late_at`), so `?overdue=true` lists exactly the cases shown overdue."""
    due = late_at(inc)
    return due is not None and due <= now


def _view(kind: type, inc: Incident, now: float, **more: Any) -> Any:
    fields = msgspec.structs.asdict(inc)
    fields.update(title=mask_text(inc.title), description=mask_text(inc.description))
    return kind(**fields, departments=inc.departments, parked=inc.parked,
                overdue=is_overdue(inc, now), **more)


def incident_out(inc: Incident, now: float) -> IncidentOut:
    out: IncidentOut = _view(IncidentOut, inc, now)
    return out


def report_out(report: Report) -> Report:
    """A report as operators see it: a caller's phone number (an Open311 request's contact)
    masked, since only the citizen's own key may see it whole; so are phone and ID numbers
    written into its text or anywhere in its data."""
    return msgspec.structs.replace(report, text=mask_text(report.text),
                                   data=mask_data(report.data))


# -- guards ---------------------------------------------------------------------------------


async def load_incident(call: Call[Any, Any]) -> Incident | None:
    try:
        found: Incident = await desk_of(call.request).get(call.path["incident_id"])
    except NotFound:
        return None
    return found


def sees_incident(call: Call[Any, Any], inc: Incident) -> bool:
    return visible(call.request, call.principal, inc)


INCIDENT = Guard("incident", "incident_id", load_incident, sees_incident)


@dataclass(frozen=True)
class Found:
    incident: Incident
    order: WorkOrder


async def load_order(call: Call[Any, Any]) -> Found | None:
    order_id = call.path["order_id"]
    if not evidence.ORDER.match(order_id):
        return None
    try:
        inc = await desk_of(call.request).get(order_id.rsplit("-", 1)[0])
    except NotFound:
        return None
    order = next((o for o in inc.orders if o.id == order_id), None)
    return Found(inc, order) if order is not None else None


def sees_order(call: Call[Any, Any], found: Found) -> bool:
    """Whether the key speaks for the order: the centre for orders of cases in its area, a
    unit for its own (as the workflow decides when it acts on one)."""
    who = call.principal
    if who.role in CENTRE:
        return can_see_place(who, found.incident.areas)
    rules: Rules = call.node.act.rules
    return rules.covers(found.order, actor_of(who))


def sees_order_case(call: Call[Any, Any], found: Found) -> bool:
    return visible(call.request, call.principal, found.incident)


ORDER = Guard("work_order", "order_id", load_order, sees_order)
ORDER_CASE = Guard("work_order", "order_id", load_order, sees_order_case)  # read by the case


# -- evidence -------------------------------------------------------------------------------


async def evidence_paths(call: Call[Any, Any], names: list[str]) -> list[str]:
    """The photos a report or a move cites, as their paths on this node: each one kept here
    and either uploaded by the caller or of an order of a case the caller may see; 404 naming
    the first that is not (the same for one that does not exist)."""
    node = call.node
    who = call.principal
    photos = evidence.EvidencePhotos(node.store, node.clock)
    paths = []
    for name in dict.fromkeys(names):
        found = await photos.get(name)
        if found is None or not await _may_cite(call, who, *found):
            raise ApiError(404, f"no photo {name!r}: cite the id a work-order photo upload "
                                "answered")
        paths.append(evidence.path_of(found[1].order, name))
    return paths


async def _may_cite(call: Call[Any, Any], who: Principal, owner: str,
                    photo: evidence.OrderPhoto) -> bool:
    if owner == evidence.uploader(who):
        return True
    inc = await call.node.store.get_incident(photo.order.rsplit("-", 1)[0])
    return inc is not None and visible(call.request, who, inc)


async def _args(call: Call[ActionBody, Any]) -> dict[str, Any]:
    args = {k: v for k, v in msgspec.structs.asdict(call.body).items() if v is not None}
    if "photos" in args:
        args["photos"] = await evidence_paths(call, args["photos"])
    return args


# -- handlers -------------------------------------------------------------------------------


def _status_list(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return ()
    names = tuple(s.strip() for s in raw.split(",") if s.strip())
    known = {s.value for s in Status}
    for name in names:
        if name not in known:
            raise ApiError(400, f"status {name!r} is not one of: {', '.join(sorted(known))}")
    return names


async def list_incidents(call: Call[None, IncidentQuery]) -> IncidentPage:
    node = call.node
    desk_of(call.request)
    q = call.query
    f = IncidentFilter(
        status=_status_list(q.status),
        category=q.category or None,
        area=q.area,
        department=q.department or None,
        overdue_at=node.clock() if q.overdue else None,
        open=q.open,
        **scope_filter(node, call.principal),
    )
    page = await node.store.list_incidents(f, limit=q.limit + 1, before=cursor_of(q.cursor))
    more = len(page) > q.limit
    page = page[:q.limit]
    now = node.clock()
    next_cursor = cursor_for(page[-1].reported_at, page[-1].id) if more and page else None
    return IncidentPage([incident_out(i, now) for i in page], next_cursor)


async def post_incident(call: Call[NewIncident, NoQuery]) -> Reply:
    node = call.node
    who = call.principal
    desk = desk_of(call.request)
    body = call.body
    if body.category not in desk.rules.categories:
        raise ApiError(400, f"category {body.category!r} is not in this city's category table "
                            "(GET /api/v1/categories lists them)")
    areas = node.city.resolve(body.lat, body.lon)
    if areas is None:
        raise ApiError(400, f"({body.lat}, {body.lon}) lies outside {node.pack.info.name}")
    if not can_see_place(who, areas):
        # Checked before anything is filed: a report merged into a case elsewhere would
        # change a case this key may not even see.
        raise ApiError(403, f"({body.lat}, {body.lon}) lies outside the scope of this key "
                            f"({who.scope})")
    photos = await evidence_paths(call, body.photos)
    key = f"{who.key_id}:{body.key}" if body.key else f"{who.key_id}:{uuid.uuid4().hex}"
    data: dict[str, Any] = {"photos": photos} if photos else {}
    if body.device:
        data["device"] = body.device
    if body.component:
        data["component"] = body.component
    report = Report(key=key, source=body.source, at=node.clock(), text=body.description,
                    lat=body.lat, lon=body.lon, reporter=who.name or who.key_id, data=data)
    # A person's report waits for the centre's check (register or cancel); only alerts of
    # packs that say so are registered and dispatched without one.
    result = await desk.async_report(report, body.category, actor=actor_of(who),
                                     title=body.title, description=body.description,
                                     auto_register=False, areas=areas)
    doc = _view(IncidentFiled, result.incident, node.clock(), merged=result.merged,
                repeated=result.repeated)
    status = 201 if not (result.merged or result.repeated) else 200
    return Reply(doc, status, {"Location": f"/api/v1/incidents/{result.incident.id}"})


async def get_incident(call: Call[None, NoQuery]) -> IncidentDetail:
    node = call.node
    inc: Incident = call.record
    reports = [report_out(r) for r in await node.store.incident_reports(inc.id)]
    events = list(await node.store.incident_events(inc.id))
    alerts = [r.key.split(":", 1)[1] for r in reports if r.key.startswith("alert:")]
    out: IncidentDetail = _view(IncidentDetail, inc, node.clock(), reports_filed=reports,
                                timeline=events, alerts=alerts)
    return out


class JointQuery(msgspec.Struct, forbid_unknown_fields=True):
    relay_s: Annotated[float, msgspec.Meta(ge=0, le=7200)] = joint.RELAY_S
    order: Annotated[str, msgspec.Meta(max_length=400)] = ""  # departments, comma-separated


async def joint_dispatch(call: Call[None, JointQuery]) -> joint.Comparison:
    """Joint dispatch against one department after another, from the case's own timeline."""
    inc: Incident = call.record
    events = await call.node.store.incident_events(inc.id)
    order = [d.strip() for d in call.query.order.split(",") if d.strip()]
    return joint.compare(inc, events, call.query.relay_s, order)


async def split_incident(call: Call[SplitBody, NoQuery]) -> SplitDone:
    desk = desk_of(call.request)
    kept, new = await desk.async_split(call.record.id, call.body.report,
                                       actor_of(call.principal), call.body.reason)
    now = call.node.clock()
    return SplitDone(incident_out(kept, now), incident_out(new, now))


async def incident_action(call: Call[ActionBody, NoQuery]) -> IncidentOut:
    desk = desk_of(call.request)
    inc = await desk.async_act(call.record.id, call.path["action"],
                               actor_of(call.principal), **await _args(call))
    return incident_out(inc, call.node.clock())


async def order_action(call: Call[ActionBody, NoQuery]) -> IncidentOut:
    desk = desk_of(call.request)
    inc = await desk.async_act_on_order(call.record.order.id, call.path["action"],
                                        actor_of(call.principal), **await _args(call))
    return incident_out(inc, call.node.clock())


async def assign_order(call: Call[ActionBody, NoQuery]) -> IncidentOut:
    desk = desk_of(call.request)
    inc = await desk.async_act_on_order(call.record.order.id, "assign",
                                        actor_of(call.principal), staff_id=call.body.staff_id)
    return incident_out(inc, call.node.clock())


async def incident_cap(call: Call[None, NoQuery]) -> Response:
    node = call.node
    inc: Incident = call.record
    rules: Rules = node.act.rules
    category = rules.category(inc)
    if not category.cap_category and not category.urgent:
        raise ApiError(409, f"category {category.code} is not an emergency: no public warning "
                            "is issued for it")
    sender = "cityops." + "".join(ch for ch in node.pack.info.name.lower() if ch.isalnum())
    warning = warning_of(inc, category, node.city, sender=sender,
                         timezone=node.pack.info.timezone, now=node.clock())
    return Response(to_cap_xml(warning), 200, media_type="application/cap+xml")


async def list_categories(call: Call[None, NoQuery]) -> Categories:
    return Categories(list(desk_of(call.request).rules.categories))


async def act_stats(call: Call[None, NoQuery]) -> ActStats:
    desk_of(call.request)
    node = call.node
    stats: ActStats = msgspec.convert({**node.act.summary(), **node.loop_lag.summary()},
                                      ActStats)
    return stats


MOVES = (409, 503)

ROUTES = [
    Endpoint("GET", "/api/v1/incidents", list_incidents,
             "Incidents the key may see, newest report first", READ, Scope.LIST,
             kind="incident", query=IncidentQuery, response=IncidentPage, errors=(503,),
             export=Export("incidents")),
    Endpoint("POST", "/api/v1/incidents", post_incident,
             "Report an incident (merged into a nearby open one the key may see, if any)",
             REPORT, Scope.CREATE, kind="incident", body=NewIncident, response=IncidentFiled,
             status=201, also_ok=(200,), errors=(404, 409, 503)),
    Endpoint("GET", "/api/v1/incidents/{incident_id}", get_incident,
             "An incident with its work orders, reports and timeline", READ, Scope.RECORD,
             guard=INCIDENT, response=IncidentDetail, errors=(503,)),
    Endpoint("GET", "/api/v1/incidents/{incident_id}/joint", joint_dispatch,
             "What joint dispatch saved: discovery to done as it happened, against the same "
             "units called one after another (`relay_s` after the one before arrived)", READ,
             Scope.RECORD, guard=INCIDENT, query=JointQuery, response=joint.Comparison,
             errors=(503,)),
    Endpoint("POST", "/api/v1/incidents/{incident_id}/actions/{action}", incident_action,
             "Move an incident on (" + ", ".join(INCIDENT_ACTIONS) + "); refused with 409 "
             "and the reason", ACT, Scope.RECORD, guard=INCIDENT, body=ActionBody,
             body_required=False, response=IncidentOut, errors=MOVES,
             examples={"action": "register"}),
    Endpoint("POST", "/api/v1/incidents/{incident_id}/split", split_incident,
             "Take a wrongly merged report out of the case into a case of its own (both "
             "timelines say who and why)", CENTRE, Scope.RECORD, guard=INCIDENT,
             body=SplitBody, response=SplitDone, errors=MOVES),
    Endpoint("GET", "/api/v1/incidents/{incident_id}/cap", incident_cap,
             "The incident as an OASIS CAP 1.2 public warning (emergencies)", READ,
             Scope.RECORD, guard=INCIDENT, media_type="application/cap+xml", errors=MOVES),
    Endpoint("POST", "/api/v1/work-orders/{order_id}/actions/{action}", order_action,
             "Move a work order on (" + ", ".join(ORDER_ACTIONS) + "); refused with 409 and "
             "the reason", ACT, Scope.RECORD, guard=ORDER, body=ActionBody,
             body_required=False, response=IncidentOut, errors=MOVES,
             examples={"action": "accept"}),
    Endpoint("POST", "/api/v1/work-orders/{order_id}/assign", assign_order,
             "Propose the nearest available qualified person (or the one named)", ACT,
             Scope.RECORD, guard=ORDER, body=ActionBody, body_required=False,
             response=IncidentOut, errors=MOVES),
    Endpoint("GET", "/api/v1/categories", list_categories, "The city's case categories",
             READ | {Role.CITIZEN}, Scope.NONE, response=Categories, errors=(503,)),
    Endpoint("GET", "/api/v1/act/stats", act_stats,
             "Incident desk counters and dispatch latency p50/p99", READ_OPERATIONS,
             Scope.CITY, response=ActStats, errors=(503,)),
]
