"""Field staff and their work:

    GET /api/v1/staff                          people with their latest position and status
    PUT /api/v1/staff/{staff_id}/status        available, en_route, on_site, off_duty
    GET /api/v1/work-orders?mine=&department=&status=   live work orders (a field key: its own)

People are the roster's active ones (cityops.roster: the pack with the administrators'
changes; api/roster.py changes it). A person is seen, and their status set, only by keys
whose scope covers them as the city's roster holds them: an area key the people whose home lies in its area, a department key its
department's people, a field key itself (and, to read, the people of its area). Anyone else is
told there is no such person.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from typing import Annotated, Any

import msgspec

from cityops.api.errors import ApiError
from cityops.api import export
from cityops.api.export import Export
from cityops.api.incidents import READ, Code, Limit, desk_of, scope_filter
from cityops.api.route import Call, Endpoint, Guard, NoQuery, Scope
from cityops.domain.access import Principal, Role
from cityops.domain.city import Staff
from cityops.domain.incidents.model import Incident, OrderStatus, WorkOrder
from cityops.domain.nearest import StaffStatus
from cityops.domain.privacy import mask_text
from cityops.store.base import IncidentFilter

SET_STATUS = frozenset({Role.ADMIN, Role.OPERATOR, Role.DEPARTMENT, Role.FIELD})


class StatusBody(msgspec.Struct, forbid_unknown_fields=True):
    status: StaffStatus


class StatusOut(msgspec.Struct):
    id: str
    status: StaffStatus


class Person(msgspec.Struct):
    id: str
    name: str
    department: str
    home_area: str
    skills: list[str]
    status: StaffStatus
    lat: float | None
    lon: float | None
    at: float | None


class StaffPage(msgspec.Struct):
    items: list[Person]
    next: None = None


class WorkOrderQuery(msgspec.Struct):
    mine: Annotated[bool, msgspec.Meta(description="true: assigned or offered to me")] | None \
        = None
    department: Code | None = None
    status: OrderStatus | None = None
    limit: Limit = 100


class CaseBrief(msgspec.Struct):
    id: str
    title: str
    category: str
    status: str
    lat: float | None
    lon: float | None
    urgency: str
    titles: dict[str, str] = {}  # the title in other languages (Incident.titles)


class WorkOrderItem(WorkOrder, kw_only=True):
    incident: CaseBrief


class WorkOrderPage(msgspec.Struct):
    items: list[WorkOrderItem]
    next: None = None


def board_of(call: Call[Any, Any]) -> Any:
    act = call.node.act
    if act is None:
        raise ApiError(503, "this node does not run the incident desk")
    return act.staff


def sees(who: Principal, person: Staff) -> bool:
    if who.role is Role.FIELD:
        return person.id == who.name or (who.scope.area is not None
                                         and person.home_area.startswith(who.scope.area))
    if who.scope.department is not None:
        return person.department == who.scope.department
    if who.scope.area is not None:
        return person.home_area.startswith(who.scope.area)
    return True


def person_view(board: Any, person: Staff, where: dict[str, Any] | None) -> Person:
    return Person(person.id, person.name, person.department, person.home_area,
                  list(person.skills), board.status[person.id],
                  where["lat"] if where else None, where["lon"] if where else None,
                  where["at"] if where else None)


async def load_person(call: Call[Any, Any]) -> Staff | None:
    return call.node.roster.person(call.path["staff_id"]) if call.node.act else None


def sees_person(call: Call[Any, Any], person: Staff) -> bool:
    return sees(call.principal, person)


PERSON = Guard("staff", "staff_id", load_person, sees_person)


async def list_staff(call: Call[None, NoQuery]) -> StaffPage:
    board = board_of(call)
    who = call.principal
    located = {p["id"]: p for p in board.positions()}
    return StaffPage([person_view(board, s, located.get(s.id))
                      for s in call.node.roster.current() if sees(who, s)])


async def put_staff_status(call: Call[StatusBody, NoQuery]) -> StatusOut:
    who = call.principal
    person: Staff = call.record
    if who.role is Role.FIELD and who.name != person.id:
        raise ApiError(403, "a field key sets only its own status")
    board = board_of(call)
    board.set_status(person.id, call.body.status.value)
    return StatusOut(person.id, board.status[person.id])


def _orders(call: Call[None, WorkOrderQuery]
            ) -> tuple[IncidentFilter, Callable[[Sequence[Incident]], list[WorkOrderItem]]]:
    """The cases a key's work orders are looked for in, and which of their orders it gets."""
    node = call.node
    who = call.principal
    desk_of(call.request)
    q = call.query
    mine = who.role is Role.FIELD or bool(q.mine)
    department = q.department or None
    if who.role is Role.FIELD:
        person = node.roster.person(who.name)
        department = person.department if person is not None else department
        scope = {}
    else:
        scope = scope_filter(node, who)

    def orders_of(cases: Sequence[Incident]) -> list[WorkOrderItem]:
        items = []
        for inc in cases:
            brief = CaseBrief(inc.id, mask_text(inc.title), inc.category, inc.status.value,
                              inc.lat, inc.lon, inc.urgency, dict(inc.titles or {}))
            for o in inc.live_orders():
                if department and o.department != department:
                    continue
                if q.status and o.status != q.status:
                    continue
                if mine and not (o.assignee == who.name
                                 or (o.offer and o.offer.staff_id == who.name)):
                    continue
                items.append(WorkOrderItem(**msgspec.structs.asdict(o), incident=brief))
        return items

    return IncidentFilter(open=True, department=department, **scope), orders_of


async def list_work_orders(call: Call[None, WorkOrderQuery]) -> WorkOrderPage:
    """Live orders of open cases; a field key gets the orders assigned or offered to it."""
    f, orders_of = _orders(call)
    q = call.query
    cases = await call.node.store.list_incidents(f, limit=max(q.limit, 200))
    items = orders_of(cases)
    items.sort(key=lambda o: o.finish_due or 0)
    return WorkOrderPage(items[:q.limit])


async def work_order_pages(call: Call[None, WorkOrderQuery]
                           ) -> AsyncIterator[list[WorkOrderItem]]:
    """Every live order the key gets, for an export: the open cases a page at a time by the
    store's cursor (newest report first), each case's orders together; the JSON list sorts
    one page by due time instead, which a list read in pages cannot."""
    f, orders_of = _orders(call)
    before = None
    size = export.PAGE  # cases a page (the module's, read now: tests make it small)
    while True:
        cases = await call.node.store.list_incidents(f, limit=size, before=before)
        yield orders_of(cases)
        if len(cases) < size:
            return
        before = (cases[-1].reported_at, cases[-1].id)


ROUTES = [
    Endpoint("GET", "/api/v1/staff", list_staff,
             "Field staff the key may see, with their latest position and status", READ,
             Scope.LIST, kind="staff", response=StaffPage, errors=(503,)),
    Endpoint("PUT", "/api/v1/staff/{staff_id}/status", put_staff_status,
             "Set a field person's status (a field key: its own)", SET_STATUS, Scope.RECORD,
             guard=PERSON, body=StatusBody, response=StatusOut, errors=(503,)),
    Endpoint("GET", "/api/v1/work-orders", list_work_orders,
             "Live work orders the key may see (a field key: its own), soonest due first",
             READ, Scope.LIST, kind="work_order", query=WorkOrderQuery, response=WorkOrderPage,
             errors=(503,), export=Export("work-orders", pages=work_order_pages)),
]
