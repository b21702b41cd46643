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
"""

from __future__ import annotations

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from cityops.api.access import principal
from cityops.api.errors import ApiError, json_response
from cityops.api.paging import limit_of
from cityops.api.serve_util import (
    STAFF,
    body_of,
    cursor_for,
    cursor_of,
    in_area_scope,
    is_citizen,
    serve_of,
)
from cityops.domain.access import Principal, Role
from cityops.domain.cabinets import SIZES, Cabinet, Expired, Item, ItemStatus
from cityops.domain.citizens import mask_phone
from cityops.domain.incidents.workflow import Refused
from cityops.domain.privacy import mask_text
from cityops.serve.cabinets import Invalid, Locked, NotFound, WrongCode

USERS = STAFF | {Role.CITIZEN, Role.DEVICE}  # a device key: the cabinet's own terminal
_ID_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


class NewCabinet(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    id: str
    name: str
    centre: str
    compartments: int | list[str]
    area: str = ""
    address: str = ""


class DropOff(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    recipient_citizen: str = ""
    recipient_department: str = ""
    phone: str = ""
    description: str = ""
    size: str | None = None


class PickUp(msgspec.Struct, forbid_unknown_fields=True):
    code: str


class ReturnBody(msgspec.Struct, forbid_unknown_fields=True):
    note: str = ""


def cabinet_view(cabinet: Cabinet, who: Principal) -> dict:
    doc = {"id": cabinet.id, "name": cabinet.name, "centre": cabinet.centre,
           "area": cabinet.area, "address": cabinet.address,
           "compartments": len(cabinet.compartments), "free": len(cabinet.free()),
           "free_by_size": {size: len(cabinet.free(size))
                            for size in sorted({c.size for c in cabinet.compartments})}}
    if who.role in STAFF:
        doc["occupancy"] = [msgspec.to_builtins(c) for c in cabinet.compartments]
    return doc


def item_view(item: Item, who: Principal) -> dict:
    doc = msgspec.to_builtins(item)
    doc.pop("code_hash", None)
    if not is_citizen(who, item.recipient_citizen):
        doc["phone"] = mask_phone(item.phone) if item.phone else ""
        doc["description"] = mask_text(item.description)
        if "note" in doc:
            doc["note"] = mask_text(item.note)
    return doc


async def _cabinet(request: Request, who: Principal, cabinet_id: str) -> Cabinet:
    try:
        cabinet, _ = await serve_of(request).cabinets.get(cabinet_id)
    except NotFound:
        raise ApiError(404, f"no cabinet {cabinet_id!r}") from None
    if who.role in STAFF and not in_area_scope(who, cabinet.area):
        raise ApiError(404, f"no cabinet {cabinet_id!r}")
    return cabinet


async def post_cabinet(request: Request) -> Response:
    who = await principal(request, {Role.ADMIN})
    side = serve_of(request)
    body: NewCabinet = await body_of(request, NewCabinet)
    if not body.id or len(body.id) > 64 or not set(body.id) <= _ID_CHARS:
        raise ApiError(400, "a cabinet id is 1-64 letters, digits, '-', '_' or '.'")
    if body.area and (not body.area.isdigit() or len(body.area) not in (6, 9, 12)):
        raise ApiError(400, f"area {body.area!r} is not an area code")
    try:
        cabinet = await side.cabinets.create(body.id, body.name, body.centre, body.compartments,
                                             area=body.area, address=body.address)
    except Refused as error:
        status = 409 if "exists" in error.reason else 400
        raise ApiError(status, error.reason) from None
    return json_response(cabinet_view(cabinet, who), 201,
                         {"Location": f"/api/v1/cabinets/{cabinet.id}"})


async def list_cabinets(request: Request) -> Response:
    who = await principal(request, USERS)
    cabinets = await serve_of(request).cabinets.list()
    if who.role in STAFF:
        cabinets = [c for c in cabinets if in_area_scope(who, c.area)]
    return json_response({"items": [cabinet_view(c, who) for c in cabinets], "next": None})


async def get_cabinet(request: Request) -> Response:
    who = await principal(request, USERS)
    cabinet = await _cabinet(request, who, request.path_params["cabinet_id"])
    return json_response(cabinet_view(cabinet, who))


async def dropoff(request: Request) -> Response:
    who = await principal(request, USERS)
    side = serve_of(request)
    cabinet = await _cabinet(request, who, request.path_params["cabinet_id"])
    body: DropOff = await body_of(request, DropOff)
    node = request.app.state.node
    departments = {d.code for d in node.pack.departments}
    if body.recipient_department and body.recipient_department not in departments:
        raise ApiError(400, f"department {body.recipient_department!r} is not this city's")
    if body.phone and sum(ch.isdigit() for ch in body.phone) < 7:
        raise ApiError(400, "phone is not a phone number")
    if len(body.description) > 500:
        raise ApiError(400, "description is over 500 characters")
    if body.size is not None and body.size not in SIZES:
        raise ApiError(400, f"size {body.size!r} is not one of: {', '.join(SIZES)}")
    try:
        item, code = await side.cabinets.drop_off(
            cabinet.id, by=who.key_id, role=who.role.value, description=body.description,
            recipient_citizen=body.recipient_citizen,
            recipient_department=body.recipient_department, phone=body.phone, size=body.size)
    except Invalid as error:
        raise ApiError(400, str(error)) from None
    except NotFound as error:
        raise ApiError(404, str(error)) from None
    except Refused as error:
        raise ApiError(409, error.reason) from None
    doc = item_view(item, who)
    doc["code"] = code
    return json_response(doc, 201, {"Location": f"/api/v1/cabinet-items/{item.id}"})


async def pickup(request: Request) -> Response:
    who = await principal(request, USERS)
    side = serve_of(request)
    cabinet = await _cabinet(request, who, request.path_params["cabinet_id"])
    body: PickUp = await body_of(request, PickUp)
    try:
        picked = await side.cabinets.pick_up(cabinet.id, body.code, caller=who.key_id)
    except Locked as error:
        wait = str(max(1, round(error.retry_after)))
        raise ApiError(429, str(error), headers={"Retry-After": wait}) from None
    except WrongCode as error:
        raise ApiError(403, str(error), {"attempts_left": error.attempts_left}) from None
    except Invalid as error:
        raise ApiError(400, str(error)) from None
    except Expired as error:
        raise ApiError(410, error.reason) from None
    except Refused as error:
        raise ApiError(409, error.reason) from None
    return json_response({"opened": True, "cabinet": cabinet.id,
                          "compartment": picked.compartment, "item": picked.item.id})


def _staff_sees_item(who: Principal, item: Item, cabinets: dict[str, Cabinet]) -> bool:
    if who.scope.department is not None:
        return item.recipient_department == who.scope.department
    cabinet = cabinets.get(item.cabinet_id)
    return in_area_scope(who, cabinet.area if cabinet else "")


async def list_items(request: Request) -> Response:
    who = await principal(request, STAFF | {Role.CITIZEN})
    side = serve_of(request)
    q = request.query_params
    status = q.get("status") or None
    if status is not None and status not in {s.value for s in ItemStatus}:
        raise ApiError(400, f"status {status!r} is not one of: "
                            f"{', '.join(s.value for s in ItemStatus)}")
    if who.role is Role.CITIZEN:
        if not who.name:
            raise ApiError(403, "this citizen key names no citizen")
        owner = who.name
    else:
        owner = who.scope.department  # records of items for a department are owned by it
    items, more = await side.cabinets.list_items(
        owner=owner, status=status, cabinet=q.get("cabinet") or None, limit=limit_of(request),
        before=cursor_of(q.get("cursor")))
    if who.role is not Role.CITIZEN:
        cabinets = {c.id: c for c in await side.cabinets.list()}
        items = [i for i in items if _staff_sees_item(who, i, cabinets)]
    return json_response({"items": [item_view(i, who) for i in items],
                          "next": cursor_for(*more) if more else None})


async def _item(request: Request, who: Principal, item_id: str) -> Item:
    side = serve_of(request)
    try:
        item, _ = await side.cabinets.get_item(item_id)
    except NotFound:
        raise ApiError(404, f"no cabinet item {item_id!r}") from None
    if who.role is Role.CITIZEN:
        if not is_citizen(who, item.recipient_citizen):
            raise ApiError(404, f"no cabinet item {item_id!r}")
    else:
        cabinets = {c.id: c for c in await side.cabinets.list()}
        if not _staff_sees_item(who, item, cabinets):
            raise ApiError(404, f"no cabinet item {item_id!r}")
    return item


async def get_item(request: Request) -> Response:
    who = await principal(request, STAFF | {Role.CITIZEN})
    item = await _item(request, who, request.path_params["item_id"])
    return json_response(item_view(item, who))


async def return_item(request: Request) -> Response:
    who = await principal(request, STAFF)
    item = await _item(request, who, request.path_params["item_id"])
    body: ReturnBody = await body_of(request, ReturnBody, empty_ok=True)
    try:
        item = await serve_of(request).cabinets.return_item(item.id, by=who.name or who.key_id,
                                                            note=body.note)
    except NotFound as error:
        raise ApiError(404, str(error)) from None
    except Refused as error:
        raise ApiError(409, error.reason) from None
    return json_response(item_view(item, who))
