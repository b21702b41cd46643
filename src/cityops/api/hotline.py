"""12345 hotline orders:

    POST /api/v1/hotline/orders                          take a call (operator, admin)
    GET  /api/v1/hotline/orders?status=&overdue=&department=&type=&cursor=&limit=
                                                         staff: the orders their key covers;
                                                         a citizen: their own orders
    GET  /api/v1/hotline/orders/{number}                 one order with its timeline
    POST /api/v1/hotline/orders/{number}/actions/{action}

Who sees an order: staff whose scope covers its area (an area key) or its department (a
department key), with the caller's phone masked; the citizen whose account the order is
under, whole; and anyone holding a citizen key who gives the order number and the last 4
digits of the caller's phone (`?phone_last4=`), for callers without an account: they see the
citizen's view with the phone masked. Wrong last-4 digits count against the key like wrong
cabinet codes (5 per order, then 15 minutes' wait).
"""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from cityops.api.access import principal
from cityops.api.errors import ApiError, json_response
from cityops.api.incidents import actor_of
from cityops.api.paging import limit_of
from cityops.api.serve_util import (
    CENTRE,
    STAFF,
    body_of,
    cursor_for,
    cursor_of,
    flag,
    is_citizen,
    serve_of,
)
from cityops.domain import hotline as rules
from cityops.domain.access import Principal, Role
from cityops.domain.cabinets import CALLER_MAX_WRONG, Guard, after_failure, retry_after
from cityops.domain.citizens import mask_phone
from cityops.domain.hotline import HotlineOrder, NotAllowed, OrderType, Refused
from cityops.domain.incidents.model import OPEN as OPEN_INCIDENTS
from cityops.domain.incidents.workflow import OutOfScope
from cityops.domain.privacy import mask_text
from cityops.serve.hotline import Invalid, NotFound
from cityops.store.base import DuplicateKey, Record, StaleVersion

LOOKUP_GUARD = "hotline_lookup_guard"


class NewOrder(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    type: OrderType
    title: str
    content: str = ""
    caller_name: str = ""
    phone: str = ""
    citizen_id: str = ""
    area: str = ""
    address: str = ""
    lat: float | None = None
    lon: float | None = None
    department: str = ""


class IncidentSpec(msgspec.Struct, forbid_unknown_fields=True):
    category: str
    lat: float | None = None
    lon: float | None = None


class OrderAction(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    department: str | None = None
    note: str | None = None
    reason: str | None = None
    answer: str | None = None
    satisfied: bool | None = None
    incident: IncidentSpec | None = None


STAFF_TEXT = ("title", "content", "answer", "address", "extension_reason", "reason")


def staff_view(order: HotlineOrder, now: float) -> dict:
    """Everything, with the phone masked and phone-like numbers in the text masked."""
    doc = msgspec.to_builtins(order)
    doc["phone"] = mask_phone(order.phone) if order.phone else ""
    for name in STAFF_TEXT:
        doc[name] = mask_text(doc[name])
    for move in doc["timeline"]:
        if "note" in move:
            move["note"] = mask_text(move["note"])
    doc["overdue"] = rules.is_overdue(order, now)
    doc["overdue_steps"] = rules.overdue_steps(order, now)
    doc["satisfied"] = order.satisfied
    return doc


def citizen_view(order: HotlineOrder, now: float, *, whole: bool) -> dict:
    """What the caller sees: their order and its progress, not who at which key did what."""
    return {
        "number": order.number, "type": order.type.value, "title": order.title,
        "content": order.content, "status": order.status.value, "created": order.created,
        "phone": order.phone if whole else mask_phone(order.phone),
        "caller_name": order.caller_name, "department": order.department,
        "limit": order.limit, "answer_due": order.answer_due, "answer": order.answer,
        "answered_at": order.answered_at, "warning": order.warning,
        "satisfied": order.satisfied, "incident_id": order.incident_id,
        "overdue": rules.is_overdue(order, now),
        "timeline": [{"at": m.at, "action": m.action, "status": m.after}
                     for m in order.timeline if m.action != "overdue"],
    }


def _staff_sees(who: Principal, order: HotlineOrder) -> bool:
    return rules.visible_to(order, who.role, who.scope.area, who.scope.department)


async def post_order(request: Request) -> Response:
    node = request.app.state.node
    who = await principal(request, CENTRE)
    side = serve_of(request)
    body: NewOrder = await body_of(request, NewOrder)
    if body.lat is not None and body.lon is not None \
            and not (-90 <= body.lat <= 90 and -180 <= body.lon <= 180):
        raise ApiError(400, f"lat/lon ({body.lat}, {body.lon}) are not a place on Earth")
    try:
        order = await side.hotline.create(actor_of(who), **{
            **msgspec.structs.asdict(body), "type": body.type.value})
    except Invalid as error:
        raise ApiError(400, str(error)) from None
    except Refused as error:
        raise ApiError(400, error.reason) from None
    except NotAllowed as error:
        raise ApiError(403, str(error)) from None
    return json_response(staff_view(order, node.clock()), 201,
                         {"Location": f"/api/v1/hotline/orders/{order.number}"})


async def list_orders(request: Request) -> Response:
    node = request.app.state.node
    who = await principal(request, STAFF | {Role.CITIZEN})
    side = serve_of(request)
    q = request.query_params
    status = q.get("status") or None
    if status is not None and status not in {s.value for s in rules.Status}:
        raise ApiError(400, f"status {status!r} is not one of: "
                            f"{', '.join(s.value for s in rules.Status)}")
    kind = q.get("type") or None
    if kind is not None and kind not in {t.value for t in OrderType}:
        raise ApiError(400, f"type {kind!r} is not one of: "
                            f"{', '.join(t.value for t in OrderType)}")
    overdue = flag(q.get("overdue"), "overdue")
    department = q.get("department") or None
    now = node.clock()
    citizen = who.name if who.role is Role.CITIZEN else None
    if who.role is Role.CITIZEN and not citizen:
        raise ApiError(403, "a citizen key without a citizen name has no orders")

    def keep(order: HotlineOrder) -> bool:
        if citizen is None and not _staff_sees(who, order):
            return False
        if kind is not None and order.type.value != kind:
            return False
        if department is not None and order.department != department:
            return False
        return overdue is None or rules.is_overdue(order, now) == overdue

    orders, more = await side.hotline.list(status=status, citizen=citizen, keep=keep,
                                           limit=limit_of(request),
                                           before=cursor_of(q.get("cursor")))
    items = [citizen_view(o, now, whole=True) if citizen else staff_view(o, now)
             for o in orders]
    return json_response({"items": items, "next": cursor_for(*more) if more else None})


async def _check_last4(request: Request, who: Principal, order: HotlineOrder | None,
                       number: str, last4: str) -> bool:
    """Whether the last-4 digits match, counting misses per key and order number."""
    store = request.app.state.node.store
    now = request.app.state.node.clock()
    guard_id = f"{number}|{who.key_id}"
    rec = await store.get_record(LOOKUP_GUARD, guard_id)
    guard = Guard() if rec is None else msgspec.json.decode(rec.doc, type=Guard)
    wait = retry_after(guard, now)
    if wait > 0:
        raise ApiError(429, f"too many wrong tries for this order; try again in "
                            f"{max(1, round(wait))} s",
                       headers={"Retry-After": str(max(1, round(wait)))})
    digits = "".join(ch for ch in order.phone if ch.isdigit()) if order else ""
    if order is not None and len(digits) >= 4 and last4 == digits[-4:]:
        return True
    changed = after_failure(guard, now, CALLER_MAX_WRONG)
    new = Record(kind=LOOKUP_GUARD, id=guard_id, doc=msgspec.json.encode(changed),
                 created=rec.created if rec else now, updated=now)
    try:
        await store.put_record(new, expect_version=rec.version if rec else None)
    except (StaleVersion, DuplicateKey):
        pass  # a concurrent miss was counted; this one may go uncounted
    return False


async def get_order(request: Request) -> Response:
    node = request.app.state.node
    who = await principal(request, STAFF | {Role.CITIZEN})
    side = serve_of(request)
    number = request.path_params["number"]
    try:
        order: HotlineOrder | None = await side.hotline.get(number)
    except NotFound:
        order = None
    now = node.clock()
    if who.role is Role.CITIZEN:
        if order is not None and order.citizen_id and is_citizen(who, order.citizen_id):
            return json_response(citizen_view(order, now, whole=True))
        last4 = request.query_params.get("phone_last4")
        if last4 is not None:
            if len(last4) != 4 or not last4.isdigit():
                raise ApiError(400, "phone_last4 is the last 4 digits of the caller's phone")
            if await _check_last4(request, who, order, number, last4):
                return json_response(citizen_view(order, now, whole=False))
        raise ApiError(404, f"no hotline order {number!r} for this key (give phone_last4, or "
                            "use the key of the citizen who called)")
    if order is None or not _staff_sees(who, order):
        raise ApiError(404, f"no hotline order {number!r}")
    return json_response(staff_view(order, now))


async def order_action(request: Request) -> Response:
    node = request.app.state.node
    who = await principal(request, STAFF)
    side = serve_of(request)
    number, action = request.path_params["number"], request.path_params["action"]
    if action not in rules.ACTIONS:
        raise ApiError(404, f"no action {action!r}: one of {', '.join(rules.ACTIONS)}")
    body: OrderAction = await body_of(request, OrderAction, empty_ok=True)
    try:
        order = await side.hotline.get(number)
    except NotFound:
        raise ApiError(404, f"no hotline order {number!r}") from None
    if not _staff_sees(who, order):
        raise ApiError(404, f"no hotline order {number!r}")
    args = {k: v for k, v in msgspec.structs.asdict(body).items() if v is not None}
    if body.incident is not None:
        args["incident"] = msgspec.structs.asdict(body.incident)
    try:
        order = await side.hotline.act(number, action, actor_of(who), **args)
    except NotFound as error:
        raise ApiError(404, str(error)) from None
    except Invalid as error:
        raise ApiError(400, str(error)) from None
    except (NotAllowed, OutOfScope) as error:
        raise ApiError(403, str(error)) from None
    except Refused as error:
        raise ApiError(409, error.reason) from None
    doc = staff_view(order, node.clock())
    if order.incident_id and node.act is not None:
        inc = await node.store.get_incident(order.incident_id)
        doc["incident_open"] = inc is not None and inc.status in OPEN_INCIDENTS
    return json_response(doc)
