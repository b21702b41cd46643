"""The service catalogue and its forms:

    GET /api/v1/services?q=&department=&channel=   search items and bundles
    GET /api/v1/services/{code}                    one item
    GET /api/v1/services/{code}/form               its form (for a citizen: filled in, with
                                                   materials attached or asked and why)
    GET /api/v1/bundles/{code}                     one "one thing" bundle
    GET /api/v1/bundles/{code}/form                its merged form, each field asked once

Every key but a device's may read the catalogue: it is what the city offers.
"""

from __future__ import annotations

from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from cityops.api.access import principal
from cityops.api.errors import ApiError, json_response
from cityops.domain.access import Principal, Role
from cityops.domain.onestop.catalogue import CHANNELS, Bundle, Catalogue, ServiceItem, search
from cityops.serve.onestop import OneStop, onestop_of
from cityops.serve.onestop.desk import NotFound

READ = frozenset(set(Role) - {Role.DEVICE})


def onestop(request: Request) -> OneStop:
    return onestop_of(request.app.state.node)


def item_json(item: ServiceItem, cat: Catalogue, names: dict[str, str]) -> dict[str, Any]:
    doc = msgspec.to_builtins(item)
    doc["kind"] = "item"
    doc["channels"] = list(item.channels)
    doc["department_name"] = names.get(item.department, "")
    for m in doc.get("materials", []):
        if m.get("licence"):
            m["licence_name"] = cat.licence_name(m["licence"])
    if item.issues is not None:
        doc["issues"]["name"] = cat.licence_name(item.issues.type)
    return doc


def bundle_json(b: Bundle, cat: Catalogue, names: dict[str, str]) -> dict[str, Any]:
    doc = msgspec.to_builtins(b)
    doc["kind"] = "bundle"
    members = cat.bundle_items(b)
    doc["items"] = [{"code": i.code, "name": i.name, "name_zh": i.name_zh,
                     "department": i.department, "department_name": names.get(i.department, ""),
                     "time_limit": i.time_limit} for i in members]
    doc["departments"] = sorted({i.department for i in members})
    doc["channels"] = [c for c in CHANNELS if all(c in i.channels for i in members)]
    return doc


async def list_services(request: Request) -> Response:
    await principal(request, READ)
    side = onestop(request)
    q = request.query_params
    channel = q.get("channel") or None
    if channel is not None and channel not in CHANNELS:
        raise ApiError(400, f"channel {channel!r} is not one of: {', '.join(CHANNELS)}")
    department = q.get("department") or None
    hits = search(side.catalogue, q.get("q", ""), side.department_names,
                  department=department, channel=channel)
    cat, names = side.catalogue, side.department_names
    items = []
    for h in hits:
        if h.kind == "item":
            doc = item_json(cat.item(h.code), cat, names)
        else:
            doc = bundle_json(cat.bundle(h.code), cat, names)
        doc["score"] = h.score
        items.append(doc)
    return json_response({"items": items, "next": None})


def _item(side: OneStop, code: str) -> ServiceItem:
    item = side.catalogue.item(code)
    if item is None:
        raise ApiError(404, f"no service item {code!r} (GET /api/v1/services lists them)")
    return item


def _bundle(side: OneStop, code: str) -> Bundle:
    b = side.catalogue.bundle(code)
    if b is None:
        raise ApiError(404, f"no bundle {code!r} (GET /api/v1/services lists them)")
    return b


async def get_service(request: Request) -> Response:
    await principal(request, READ)
    side = onestop(request)
    item = _item(side, request.path_params["code"])
    return json_response(item_json(item, side.catalogue, side.department_names))


async def get_bundle(request: Request) -> Response:
    await principal(request, READ)
    side = onestop(request)
    b = _bundle(side, request.path_params["code"])
    return json_response(bundle_json(b, side.catalogue, side.department_names))


def _citizen_of(who: Principal) -> str | None:
    return who.name if who.role is Role.CITIZEN and who.name else None


async def service_form(request: Request) -> Response:
    who = await principal(request, READ)
    side = onestop(request)
    item = _item(side, request.path_params["code"])
    form = await side.desk.form([item], _citizen_of(who))
    return json_response({"service": item.code, "bundle": None, "title": item.name, **form})


async def bundle_form(request: Request) -> Response:
    who = await principal(request, READ)
    side = onestop(request)
    b = _bundle(side, request.path_params["code"])
    try:
        form = await side.desk.form(side.catalogue.bundle_items(b), _citizen_of(who))
    except NotFound as error:
        raise ApiError(404, str(error)) from None
    return json_response({"service": None, "bundle": b.code, "title": b.name, **form})
