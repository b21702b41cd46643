"""Devices: list, one, register."""

from __future__ import annotations

import math

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from cityops.api.access import principal
from cityops.api.errors import ApiError, json_response
from cityops.api.paging import int_cursor, limit_of
from cityops.api.params import iso
from cityops.domain.access import READ_DEVICES, REGISTER_DEVICES, Principal, can_see_place
from cityops.domain.city import Device
from cityops.domain.registry import UnknownKind
from cityops.history.state import NEVER


def may_see(node, who: Principal, device: Device) -> bool:
    return can_see_place(who, device.areas, device.owner, node.department_areas)


def visible_device(request: Request, who: Principal) -> Device:
    """The device in the path, or 404 also when it exists outside the key's scope (a scoped
    key learns nothing about devices elsewhere)."""
    node = request.app.state.node
    device_id = request.path_params["device_id"]
    device = node.registry.get(device_id)
    if device is None or not may_see(node, who, device):
        raise ApiError(404, f"no device {device_id!r}")
    return device


def latest_of(node, device: Device) -> dict | None:
    index = node.registry.index[device.id]
    ts, value = node.history.state.latest(index)
    kind = node.registry.kind(device.kind)
    channels = {
        c.name: float(value[i])
        for i, c in enumerate(kind.channels)
        if ts[i] != NEVER and not math.isnan(value[i])
    }
    if not channels:
        return None
    newest = int(max(ts[i] for i in range(len(kind.channels)) if ts[i] != NEVER))
    if len(kind.channels) == 1:
        return {"ts": iso(newest), "value": next(iter(channels.values()))}
    return {"ts": iso(newest), "values": channels}


def device_json(node, device: Device, with_latest: bool = True) -> dict:
    body = msgspec.to_builtins(device)
    body.setdefault("areas", None)
    body.setdefault("cell", None)
    if with_latest:
        body["latest"] = latest_of(node, device)
    return body


async def list_devices(request: Request) -> Response:
    node = request.app.state.node
    who = await principal(request, READ_DEVICES)
    kind = request.query_params.get("kind")
    area = request.query_params.get("area")
    if kind is not None:
        try:
            node.registry.kind(kind)
        except UnknownKind as exc:
            raise ApiError(400, str(exc)) from None
    limit = limit_of(request)
    start = int_cursor(request)
    devices = node.registry.devices
    items = []
    resume = None
    i = start
    while i < len(devices):
        device = devices[i]
        i += 1
        if kind is not None and device.kind != kind:
            continue
        if area is not None and (device.areas is None or not device.areas.within(area)):
            continue
        if not may_see(node, who, device):
            continue
        if len(items) == limit:  # one more exists: the next page starts at it
            resume = i - 1
            break
        items.append(device_json(node, device))
    return json_response({"items": items, "next": None if resume is None else str(resume)})


async def get_device(request: Request) -> Response:
    node = request.app.state.node
    who = await principal(request, READ_DEVICES)
    return json_response(device_json(node, visible_device(request, who)))


class DeviceIn(msgspec.Struct, forbid_unknown_fields=True):
    id: str
    kind: str
    lat: float
    lon: float
    name: str = ""
    owner: str | None = None
    meta: dict = {}


_device_in = msgspec.json.Decoder(DeviceIn | list[DeviceIn])


async def post_devices(request: Request) -> Response:
    """Register one device (an object) or many (an array); areas and cell are resolved here."""
    node = request.app.state.node
    who = await principal(request, REGISTER_DEVICES)
    try:
        parsed = _device_in.decode(await request.body())
    except msgspec.MsgspecError as exc:
        raise ApiError(400, f"invalid device: {exc}") from None
    many = isinstance(parsed, list)
    wanted = parsed if many else [parsed]
    devices = []
    for i, d in enumerate(wanted):
        where = f"device {i}" if many else "device"
        if not d.id or len(d.id) > 128 or any(c.isspace() for c in d.id):
            raise ApiError(400, f"{where}: id must be 1-128 characters without spaces")
        try:
            node.registry.kind(d.kind)
        except UnknownKind as exc:
            raise ApiError(400, f"{where}: {exc}") from None
        if not (-90 <= d.lat <= 90 and -180 <= d.lon <= 180):
            raise ApiError(400, f"{where}: lat/lon ({d.lat}, {d.lon}) are not coordinates")
        devices.append(Device(d.id, d.kind, d.lat, d.lon, d.name, d.owner, meta=d.meta))
    try:
        resolved = [node.city.resolve_device(d) for d in devices]
    except ValueError as exc:
        raise ApiError(422, str(exc)) from None
    for device in resolved:
        if not may_see(node, who, device):
            raise ApiError(403, f"device {device.id!r} lies outside this key's scope {who.scope}")
    await node.register_devices(resolved)
    out = [device_json(node, d) for d in resolved]
    return json_response(out if many else out[0], status=201)
