"""Smart filing cabinets:

    POST /api/v1/cabinets                                  add a cabinet (admin)
    GET  /api/v1/cabinets                                  cabinets and their free compartments
    GET  /api/v1/cabinets/{id}                             one cabinet (staff: occupancy too)
    POST /api/v1/cabinets/{id}/dropoff                     drop materials off: 201 with the code
    POST /api/v1/cabinets/{id}/pickup {"code"}             open the compartment, once
    GET  /api/v1/cabinet-items?cabinet=&status=            staff: items (phones masked);
                                                           a citizen: items for them
    GET  /api/v1/cabinet-items/{id}
    POST /api/v1/cabinet-items/{id}/actions/return         staff take an item out

A pickup with a wrong (or used) code is 403 with the attempts left; the 5th wrong code from
one key at one cabinet, or the 30th from everyone within 15 minutes, is 429 with Retry-After
(15 minutes); a right code for an item held over 7 days is 410. The code is shown once, in
the drop-off's answer, and sent by SMS; only its hash is stored.

Who uses a cabinet: staff and the cabinet terminals' device keys whose scope covers its area
(a department key also any cabinet holding an item for it); a citizen the cabinets of the
town they are registered in, those with no area, and any holding an item for them. A
citizen's drop-offs are limited (`domain.cabinets.CITIZEN_HELD` waiting in one cabinet,
`CITIZEN_DAILY` a day: 409 and 429), and a citizen key names no phone: the code goes to the
recipient citizen's registered phone or to the department.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from cityops.api.errors import ApiError
from cityops.api.route import Call, Endpoint, Guard, NoQuery, Reply, Scope, errors_map
from cityops.api.serve_util import (
    STAFF,
    Code,
    Cursor,
    Limit,
    Note,
    covers,
    cursor_for,
    cursor_of,
    in_area_scope,
    is_citizen,
    serve_of,
)
from cityops.domain.access import Principal, Role
from cityops.domain.cabinets import Cabinet, DailyLimit, Expired, Item, ItemStatus
from cityops.domain.citizens import mask_phone
from cityops.domain.incidents.workflow import Refused
from cityops.domain.privacy import mask_text
from cityops.serve.cabinets import Invalid, Locked, NotFound, WrongCode

USERS = STAFF | {Role.CITIZEN, Role.DEVICE}  # a device key: the cabinet's own terminal
UNSET = msgspec.UNSET
Unset = msgspec.UnsetType
TOWN_DIGITS = 9  # district (6) + town (3): a cabinet serves the town it stands in

errors_map({NotFound: 404, Invalid: 400, Expired: 410, Refused: 409})

Size = Literal["small", "standard", "large"]


class NewCabinet(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    id: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9._-]{1,64}$")]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=100)]
    centre: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    compartments: (Annotated[int, msgspec.Meta(ge=1, le=500)]
                   | Annotated[list[Size], msgspec.Meta(min_length=1, max_length=500)])
    area: Annotated[str, msgspec.Meta(pattern=r"^(\d{6}|\d{9}|\d{12})?$")] = ""
    address: Annotated[str, msgspec.Meta(max_length=300)] = ""


class DropOff(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    recipient_citizen: Code = ""
    recipient_department: Code = ""
    phone: Annotated[str, msgspec.Meta(max_length=25)] = ""
    description: Annotated[str, msgspec.Meta(max_length=500)] = ""
    size: Size | None = None


class PickUp(msgspec.Struct, forbid_unknown_fields=True):
    code: Annotated[str, msgspec.Meta(max_length=20)]


class ReturnBody(msgspec.Struct, forbid_unknown_fields=True):
    note: Note = ""


class ItemList(msgspec.Struct):
    cabinet: Code | None = None
    status: ItemStatus | None = None
    cursor: Cursor | None = None
    limit: Limit = 100


class Slot(msgspec.Struct, omit_defaults=True):
    no: int
    size: str = "standard"
    item: str | None = None
    out_of_order: bool = False


class CabinetView(msgspec.Struct, kw_only=True):
    id: str
    name: str
    centre: str
    area: str
    address: str
    compartments: int
    free: int
    free_by_size: dict[str, int]
    occupancy: list[Slot] | Unset = UNSET  # staff only


class CabinetPage(msgspec.Struct):
    items: list[CabinetView]
    next: str | None


class ItemView(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An item; fields at their default are left out. Its phone, description and note are
    masked for anyone but the recipient citizen."""

    id: str
    cabinet_id: str
    compartment: int
    status: ItemStatus = ItemStatus.WAITING
    description: str = ""
    recipient_citizen: str = ""
    recipient_department: str = ""
    phone: str = ""
    dropped_by: str = ""
    dropped_by_role: str = ""
    dropped_at: float
    expires: float
    collected_at: float | None = None
    collected_by: str = ""
    flagged_at: float | None = None
    returned_at: float | None = None
    returned_by: str = ""
    note: str = ""
    code: str | Unset = UNSET  # the drop-off's answer only: the one time it is shown


class ItemPage(msgspec.Struct):
    items: list[ItemView]
    next: str | None


class Opened(msgspec.Struct):
    opened: bool
    cabinet: str
    compartment: int
    item: str


def cabinet_view(cabinet: Cabinet, who: Principal) -> CabinetView:
    view = CabinetView(
        id=cabinet.id, name=cabinet.name, centre=cabinet.centre, area=cabinet.area,
        address=cabinet.address, compartments=len(cabinet.compartments),
        free=len(cabinet.free()),
        free_by_size={size: len(cabinet.free(size))
                      for size in sorted({c.size for c in cabinet.compartments})})
    if who.role in STAFF:
        view.occupancy = [Slot(c.no, c.size, c.item, c.out_of_order)
                          for c in cabinet.compartments]
    return view


def item_view(item: Item, who: Principal) -> ItemView:
    doc = msgspec.to_builtins(item)
    doc.pop("code_hash", None)
    if not is_citizen(who, item.recipient_citizen):
        doc["phone"] = mask_phone(item.phone) if item.phone else ""
        doc["description"] = mask_text(item.description)
        if "note" in doc:
            doc["note"] = mask_text(item.note)
    return msgspec.convert(doc, ItemView)


# -- who uses which cabinet ---------------------------------------------------------------------

def serves_home(area: str, home: str) -> bool:
    """Whether a cabinet in `area` serves a citizen living in `home`: one standing in their
    town (or in the district or town containing it)."""
    if home.startswith(area):
        return True
    return len(area) >= TOWN_DIGITS and home[:TOWN_DIGITS] == area[:TOWN_DIGITS]


class _Reach:
    """What a key reaches besides its scope: the cabinets holding items for it (a citizen, a
    department) and a citizen's home; read once per call."""

    def __init__(self, call: Call[Any, Any]) -> None:
        self.call = call
        self.side = serve_of(call.request)
        self._holding: set[str] | None = None
        self._home: str | None = None

    async def holding(self, owner: str) -> set[str]:
        if self._holding is None:
            found: set[str] = set()
            for status in (ItemStatus.WAITING, ItemStatus.RETURN_DUE):
                items, _ = await self.side.cabinets.list_items(owner=owner, status=status,
                                                               limit=500)
                found.update(i.cabinet_id for i in items)
            self._holding = found
        return self._holding

    async def home(self, who: Principal) -> str:
        if self._home is None:
            citizen = await self.side.citizens.get(who.name) if who.name else None
            self._home = citizen.area if citizen is not None else ""
        return self._home

    async def uses(self, cabinet: Cabinet) -> bool:
        who = self.call.principal
        if who.role is Role.CITIZEN:
            if not cabinet.area:
                return True
            home = await self.home(who)
            if home and serves_home(cabinet.area, home):
                return True
            return bool(who.name) and cabinet.id in await self.holding(who.name)
        if who.role is Role.DEVICE:
            return in_area_scope(who, cabinet.area)
        if covers(self.call.node, who, cabinet.area):
            return True
        department = who.scope.department
        return department is not None and cabinet.id in await self.holding(department)


async def load_cabinet(call: Call[Any, Any]) -> Cabinet | None:
    try:
        cabinet, _ = await serve_of(call.request).cabinets.get(call.path["cabinet_id"])
    except NotFound:
        return None
    return cabinet


async def uses_cabinet(call: Call[Any, Any], cabinet: Cabinet) -> bool:
    return await _Reach(call).uses(cabinet)


CABINET = Guard("cabinet", "cabinet_id", load_cabinet, uses_cabinet)


def _staff_sees_item(call: Call[Any, Any], item: Item, cabinets: dict[str, Cabinet]) -> bool:
    who = call.principal
    if who.scope.department is not None:
        return item.recipient_department == who.scope.department
    cabinet = cabinets.get(item.cabinet_id)
    return covers(call.node, who, cabinet.area if cabinet else "")


async def load_item(call: Call[Any, Any]) -> Item | None:
    try:
        item, _ = await serve_of(call.request).cabinets.get_item(call.path["item_id"])
    except NotFound:
        return None
    return item


async def sees_item(call: Call[Any, Any], item: Item) -> bool:
    who = call.principal
    if who.role is Role.CITIZEN:
        return is_citizen(who, item.recipient_citizen)
    try:
        cabinet, _ = await serve_of(call.request).cabinets.get(item.cabinet_id)
    except NotFound:
        return _staff_sees_item(call, item, {})
    return _staff_sees_item(call, item, {cabinet.id: cabinet})


ITEM = Guard("cabinet_item", "item_id", load_item, sees_item)


# -- handlers -----------------------------------------------------------------------------------

async def post_cabinet(call: Call[NewCabinet, NoQuery]) -> Reply:
    who = call.principal
    body = call.body
    side = serve_of(call.request)
    if not in_area_scope(who, body.area):
        raise ApiError(403, f"this key's scope {who.scope} does not cover area "
                            f"{body.area or '(none)'}")
    try:
        held, _ = await side.cabinets.get(body.id)
    except NotFound:
        held = None
    if held is not None and not in_area_scope(who, held.area):
        raise ApiError(403, f"this key's scope {who.scope} does not cover cabinet {body.id!r}")
    try:
        cabinet = await side.cabinets.create(body.id, body.name, body.centre, body.compartments,
                                             area=body.area, address=body.address)
    except Refused as error:  # a cabinet the rules refuse to make is a bad request
        raise ApiError(409 if "exists" in error.reason else 400, error.reason) from None
    return Reply(cabinet_view(cabinet, who), 201, {"Location": f"/api/v1/cabinets/{cabinet.id}"})


async def list_cabinets(call: Call[None, NoQuery]) -> CabinetPage:
    who = call.principal
    reach = _Reach(call)
    cabinets = [c for c in await serve_of(call.request).cabinets.list() if await reach.uses(c)]
    return CabinetPage([cabinet_view(c, who) for c in cabinets], None)


async def get_cabinet(call: Call[None, NoQuery]) -> CabinetView:
    return cabinet_view(call.record, call.principal)


def _dropper(who: Principal) -> str:
    """Whose share of drop-offs a key's drop-off counts against: a citizen's (every key of
    theirs together); staff and the terminals drop off for others and are not counted."""
    if who.role is not Role.CITIZEN:
        return ""
    return who.name or f"key:{who.key_id}"


async def dropoff(call: Call[DropOff, NoQuery]) -> Reply:
    who, cabinet, body = call.principal, call.record, call.body
    departments = {d.code for d in call.node.pack.departments}
    if body.recipient_department and body.recipient_department not in departments:
        raise ApiError(400, f"department {body.recipient_department!r} is not this city's")
    if body.phone:
        if who.role is Role.CITIZEN:
            raise ApiError(400, "a citizen key cannot send a pickup code to a phone number: "
                                "name the recipient citizen (their registered phone gets it) "
                                "or department")
        if sum(ch.isdigit() for ch in body.phone) < 7:
            raise ApiError(400, "phone is not a phone number")
    try:
        item, code = await serve_of(call.request).cabinets.drop_off(
            cabinet.id, by=who.key_id, role=who.role.value, description=body.description,
            recipient_citizen=body.recipient_citizen,
            recipient_department=body.recipient_department, phone=body.phone, size=body.size,
            citizen=_dropper(who))
    except DailyLimit as error:
        wait = str(max(1, round(error.retry_after)))
        raise ApiError(429, str(error), headers={"Retry-After": wait}) from None
    view = item_view(item, who)
    view.code = code
    return Reply(view, 201, {"Location": f"/api/v1/cabinet-items/{item.id}"})


async def pickup(call: Call[PickUp, NoQuery]) -> Opened:
    cabinet = call.record
    try:
        picked = await serve_of(call.request).cabinets.pick_up(
            cabinet.id, call.body.code, caller=call.principal.key_id)
    except Locked as error:
        wait = str(max(1, round(error.retry_after)))
        raise ApiError(429, str(error), headers={"Retry-After": wait}) from None
    except WrongCode as error:
        raise ApiError(403, str(error), {"attempts_left": error.attempts_left}) from None
    return Opened(True, cabinet.id, picked.compartment, picked.item.id)


async def list_items(call: Call[None, ItemList]) -> ItemPage:
    who = call.principal
    q = call.query
    side = serve_of(call.request)
    if who.role is Role.CITIZEN:
        if not who.name:
            raise ApiError(403, "this citizen key names no citizen")
        owner: str | None = who.name
    else:
        owner = who.scope.department  # records of items for a department are owned by it
    items, more = await side.cabinets.list_items(
        owner=owner, status=q.status.value if q.status else None, cabinet=q.cabinet,
        limit=q.limit, before=cursor_of(q.cursor))
    if who.role is not Role.CITIZEN:
        cabinets = {c.id: c for c in await side.cabinets.list()}
        items = [i for i in items if _staff_sees_item(call, i, cabinets)]
    return ItemPage([item_view(i, who) for i in items], cursor_for(*more) if more else None)


async def get_item(call: Call[None, NoQuery]) -> ItemView:
    return item_view(call.record, call.principal)


async def return_item(call: Call[ReturnBody, NoQuery]) -> ItemView:
    who = call.principal
    item = await serve_of(call.request).cabinets.return_item(
        call.record.id, by=who.name or who.key_id, note=call.body.note)
    return item_view(item, who)


ROUTES = [
    Endpoint("POST", "/api/v1/cabinets", post_cabinet, "Add a cabinet", frozenset({Role.ADMIN}),
             Scope.CREATE, kind="cabinet", body=NewCabinet, response=CabinetView, status=201,
             errors=(409,)),
    Endpoint("GET", "/api/v1/cabinets", list_cabinets,
             "Cabinets the key may use, with their free compartments", USERS, Scope.LIST,
             kind="cabinet", response=CabinetPage),
    Endpoint("GET", "/api/v1/cabinets/{cabinet_id}", get_cabinet,
             "One cabinet (staff: which item fills each compartment)", USERS, Scope.RECORD,
             guard=CABINET, response=CabinetView),
    Endpoint("POST", "/api/v1/cabinets/{cabinet_id}/dropoff", dropoff,
             "Drop materials off: the answer carries the pickup code, once", USERS,
             Scope.RECORD, guard=CABINET, body=DropOff, response=ItemView, status=201,
             errors=(409,)),
    Endpoint("POST", "/api/v1/cabinets/{cabinet_id}/pickup", pickup,
             "Open the compartment of the item with this code, once", USERS, Scope.RECORD,
             guard=CABINET, body=PickUp, response=Opened, errors=(409, 410)),
    Endpoint("GET", "/api/v1/cabinet-items", list_items,
             "Items the key covers (a citizen: the items for them), newest first",
             STAFF | {Role.CITIZEN}, Scope.LIST, kind="cabinet_item", query=ItemList,
             response=ItemPage),
    Endpoint("GET", "/api/v1/cabinet-items/{item_id}", get_item, "One item",
             STAFF | {Role.CITIZEN}, Scope.RECORD, guard=ITEM, response=ItemView),
    Endpoint("POST", "/api/v1/cabinet-items/{item_id}/actions/return", return_item,
             "Take an item out to return it", STAFF, Scope.RECORD, guard=ITEM,
             body=ReturnBody, body_required=False, response=ItemView, errors=(409,)),
]
