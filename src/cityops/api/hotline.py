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

An area-scoped operator takes calls about places in its area only: the order's area, however
it was found (given, from lat/lon, or the caller's registered residence), must lie in the
key's scope, or the order would be filed where the key could never see it again.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from cityops.api.errors import ApiError
from cityops.api.export import Export
from cityops.api.route import Call, Endpoint, Guard, NoQuery, Reply, Scope, errors_map
from cityops.api.serve_util import (
    CENTRE,
    STAFF,
    Code,
    Cursor,
    Limit,
    Note,
    actor_of,
    covers,
    cursor_for,
    cursor_of,
    is_citizen,
    serve_of,
)
from cityops.domain import hotline as rules
from cityops.domain.access import Principal, Role
from cityops.domain.cabinets import CALLER_MAX_WRONG, after_failure, retry_after
from cityops.domain.cabinets import Guard as WrongTries
from cityops.domain.citizens import mask_phone
from cityops.domain.hotline import HotlineOrder, NotAllowed, OrderType, Refused
from cityops.domain.incidents.model import OPEN as OPEN_INCIDENTS
from cityops.domain.incidents.workflow import OutOfScope
from cityops.domain.privacy import mask_text
from cityops.serve.hotline import Invalid, NotFound
from cityops.store.base import DuplicateKey, Record, StaleVersion

LOOKUP_GUARD = "hotline_lookup_guard"
UNSET = msgspec.UNSET
Unset = msgspec.UnsetType

errors_map({NotFound: 404, Invalid: 400, Refused: 409, NotAllowed: 403, OutOfScope: 404})

Lat = Annotated[float, msgspec.Meta(ge=-90, le=90)]
Lon = Annotated[float, msgspec.Meta(ge=-180, le=180)]


class NewOrder(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    type: OrderType
    title: Annotated[str, msgspec.Meta(max_length=200)]
    content: Annotated[str, msgspec.Meta(max_length=5000)] = ""
    caller_name: Annotated[str, msgspec.Meta(max_length=100)] = ""
    phone: Annotated[str, msgspec.Meta(max_length=25)] = ""
    citizen_id: Code = ""
    area: Annotated[str, msgspec.Meta(max_length=12, pattern=r"^\d*$")] = ""
    address: Annotated[str, msgspec.Meta(max_length=300)] = ""
    lat: Lat | None = None
    lon: Lon | None = None
    department: Code = ""


class IncidentSpec(msgspec.Struct, forbid_unknown_fields=True):
    category: Annotated[str, msgspec.Meta(max_length=100)]
    lat: Lat | None = None
    lon: Lon | None = None


class OrderAction(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    department: Code | None = None
    note: Note | None = None
    reason: Note | None = None
    answer: Note | None = None
    satisfied: bool | None = None
    incident: IncidentSpec | None = None


class OrderList(msgspec.Struct):
    status: rules.Status | None = None
    type: OrderType | None = None
    overdue: bool | None = None
    department: Code | None = None
    cursor: Cursor | None = None
    limit: Limit = 100


class Lookup(msgspec.Struct):
    phone_last4: Annotated[str, msgspec.Meta(
        pattern=r"^[0-9]{4}$",
        description="The last 4 digits of the caller's phone (citizen keys, for an order "
                    "not under the key's own account)")] | None = None


class Step(msgspec.Struct, kw_only=True):
    """A line of the timeline: staff see who made each move; the citizen only what happened."""

    at: float
    action: str
    before: str | Unset = UNSET
    after: str | Unset = UNSET
    status: str | Unset = UNSET  # the citizen's view: the order's status after the move
    actor: str | Unset = UNSET
    actor_name: str | Unset = UNSET
    role: str | Unset = UNSET
    note: str | Unset = UNSET
    detail: dict[str, Any] | Unset = UNSET


class OrderView(msgspec.Struct, kw_only=True):
    """An order as staff see it (every field, phones masked) or as its caller does (the
    fields not marked staff-only)."""

    number: str
    type: OrderType
    title: str
    content: str
    caller_name: str
    phone: str
    department: str
    status: rules.Status
    created: float
    limit: str
    answer_due: float | None
    answered_at: float | None
    answer: str
    warning: bool
    satisfied: bool | None
    incident_id: str
    overdue: bool
    timeline: list[Step]
    # staff only:
    citizen_id: str | Unset = UNSET
    area: str | Unset = UNSET
    address: str | Unset = UNSET
    lat: float | None | Unset = UNSET
    lon: float | None | Unset = UNSET
    contact_due: float | None | Unset = UNSET
    revisit_due: float | None | Unset = UNSET
    contacted_at: float | None | Unset = UNSET
    closed_at: float | None | Unset = UNSET
    complex: bool | Unset = UNSET
    extension_requested: bool | Unset = UNSET
    extension_reason: str | Unset = UNSET
    reopened: int | Unset = UNSET
    satisfaction: list[bool] | Unset = UNSET
    late: list[str] | Unset = UNSET
    reason: str | Unset = UNSET
    overdue_steps: list[str] | Unset = UNSET
    incident_open: bool | Unset = UNSET  # after an action, when the order has a case


class OrderPage(msgspec.Struct):
    items: list[OrderView]
    next: str | None


STAFF_TEXT = ("title", "content", "answer", "address", "extension_reason", "reason")


def staff_view(order: HotlineOrder, now: float) -> OrderView:
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
    return msgspec.convert(doc, OrderView)


def citizen_view(order: HotlineOrder, now: float, *, whole: bool) -> OrderView:
    """What the caller sees: their order and its progress, not who at which key did what."""
    return OrderView(
        number=order.number, type=order.type, title=order.title, content=order.content,
        status=order.status, created=order.created,
        phone=order.phone if whole else mask_phone(order.phone),
        caller_name=order.caller_name, department=order.department, limit=order.limit,
        answer_due=order.answer_due, answer=order.answer, answered_at=order.answered_at,
        warning=order.warning, satisfied=order.satisfied, incident_id=order.incident_id,
        overdue=rules.is_overdue(order, now),
        timeline=[Step(at=m.at, action=m.action, status=m.after)
                  for m in order.timeline if m.action != "overdue"])


def _staff_sees(who: Principal, order: HotlineOrder) -> bool:
    return rules.visible_to(order, who.role, who.scope.area, who.scope.department)


async def _check_last4(call: Call[Any, Any], who: Principal, order: HotlineOrder,
                       last4: str) -> bool:
    """Whether the last-4 digits match, counting misses per key and order number."""
    node = call.node
    store, now = node.store, node.clock()
    guard_id = f"{order.number}|{who.key_id}"
    rec = await store.get_record(LOOKUP_GUARD, guard_id)
    tries = WrongTries() if rec is None else msgspec.json.decode(rec.doc, type=WrongTries)
    wait = retry_after(tries, now)
    if wait > 0:
        raise ApiError(429, f"too many wrong tries for this order; try again in "
                            f"{max(1, round(wait))} s",
                       headers={"Retry-After": str(max(1, round(wait)))})
    digits = "".join(ch for ch in order.phone if ch.isdigit())
    if len(digits) >= 4 and last4 == digits[-4:]:
        return True
    changed = after_failure(tries, now, CALLER_MAX_WRONG)
    new = Record(kind=LOOKUP_GUARD, id=guard_id, doc=msgspec.json.encode(changed),
                 created=rec.created if rec else now, updated=now)
    try:
        await store.put_record(new, expect_version=rec.version if rec else None)
    except (StaleVersion, DuplicateKey):
        pass  # a concurrent miss was counted; this one may go uncounted
    return False


async def load_order(call: Call[Any, Any]) -> HotlineOrder | None:
    try:
        return await serve_of(call.request).hotline.get(call.path["number"])
    except NotFound:
        return None


async def sees_order(call: Call[Any, Any], order: HotlineOrder) -> bool:
    who = call.principal
    if who.role is not Role.CITIZEN:
        return _staff_sees(who, order)
    if order.citizen_id and is_citizen(who, order.citizen_id):
        return True
    last4 = getattr(call.query, "phone_last4", None)
    return last4 is not None and await _check_last4(call, who, order, last4)


ORDER = Guard("hotline_order", "number", load_order, sees_order)


async def post_order(call: Call[NewOrder, NoQuery]) -> Reply:
    who = call.principal
    body = call.body
    try:
        order = await serve_of(call.request).hotline.create(
            actor_of(who), within=lambda area: covers(call.node, who, area),
            **{**msgspec.structs.asdict(body), "type": body.type.value})
    except Refused as error:  # what was sent is no order: a bad request, not a state
        raise ApiError(400, error.reason) from None
    return Reply(staff_view(order, call.node.clock()), 201,
                 {"Location": f"/api/v1/hotline/orders/{order.number}"})


async def list_orders(call: Call[None, OrderList]) -> OrderPage:
    who = call.principal
    q = call.query
    now = call.node.clock()
    citizen = who.name if who.role is Role.CITIZEN else None
    if who.role is Role.CITIZEN and not citizen:
        raise ApiError(403, "a citizen key without a citizen name has no orders")

    def keep(order: HotlineOrder) -> bool:
        if citizen is None and not _staff_sees(who, order):
            return False
        if q.type is not None and order.type is not q.type:
            return False
        if q.department is not None and order.department != q.department:
            return False
        return q.overdue is None or rules.is_overdue(order, now) == q.overdue

    orders, more = await serve_of(call.request).hotline.list(
        status=q.status.value if q.status else None, citizen=citizen, keep=keep,
        limit=q.limit, before=cursor_of(q.cursor))
    items = [citizen_view(o, now, whole=True) if citizen else staff_view(o, now)
             for o in orders]
    return OrderPage(items, cursor_for(*more) if more else None)


async def get_order(call: Call[None, Lookup]) -> OrderView:
    who, order = call.principal, call.record
    now = call.node.clock()
    if who.role is Role.CITIZEN:
        return citizen_view(order, now, whole=is_citizen(who, order.citizen_id))
    return staff_view(order, now)


async def order_action(call: Call[OrderAction, NoQuery]) -> OrderView:
    node = call.node
    action = call.path["action"]
    if action not in rules.ACTIONS:
        raise ApiError(404, f"no action {action!r}: one of {', '.join(rules.ACTIONS)}")
    body = call.body
    args: dict[str, Any] = {k: v for k, v in msgspec.structs.asdict(body).items()
                            if v is not None}
    if body.incident is not None:
        args["incident"] = msgspec.structs.asdict(body.incident)
    order = await serve_of(call.request).hotline.act(call.record.number, action,
                                                     actor_of(call.principal), **args)
    view = staff_view(order, node.clock())
    if order.incident_id and node.act is not None:
        inc = await node.store.get_incident(order.incident_id)
        view.incident_open = inc is not None and inc.status in OPEN_INCIDENTS
    return view


ROUTES = [
    Endpoint("POST", "/api/v1/hotline/orders", post_order, "Take a 12345 call as an order",
             CENTRE, Scope.CREATE, kind="hotline_order", body=NewOrder, response=OrderView,
             status=201),
    Endpoint("GET", "/api/v1/hotline/orders", list_orders,
             "Orders the key covers (a citizen: their own), newest first", STAFF | {Role.CITIZEN},
             Scope.LIST, kind="hotline_order", query=OrderList, response=OrderPage,
             export=Export("hotline-orders")),
    Endpoint("GET", "/api/v1/hotline/orders/{number}", get_order,
             "One order with its timeline (a citizen key: its own, or by phone_last4)",
             STAFF | {Role.CITIZEN}, Scope.RECORD, guard=ORDER, query=Lookup,
             response=OrderView),
    Endpoint("POST", "/api/v1/hotline/orders/{number}/actions/{action}", order_action,
             "Move an order on: " + ", ".join(rules.ACTIONS), STAFF, Scope.RECORD,
             guard=ORDER, body=OrderAction, body_required=False, response=OrderView,
             errors=(409,), examples={"action": "contact"}),
]
