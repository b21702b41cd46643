"""Devices:

    GET  /api/v1/devices              the devices the key may see, by kind, area and
                                      lifecycle state, paged
    POST /api/v1/devices              register one device (an object) or many (an array)
    GET  /api/v1/devices/{device_id}  one device with its areas, cell and latest reading

A scoped key registers a device only where its scope reaches, and re-registers one only if it
could see the device as stored: otherwise an operator of one town could take over another
town's device by sending its id with coordinates in its own town. A new device is
commissioning until its first reading; re-registering one keeps its lifecycle state (moves
are made with POST /api/v1/devices/lifecycle, api/lifecycle.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Annotated, Any

import msgspec

from cityops.api.errors import ApiError
from cityops.api.params import iso
from cityops.api.route import Call, Endpoint, Guard, Scope
from cityops.domain.access import READ_DEVICES, REGISTER_DEVICES, Principal, can_see_place
from cityops.domain.city import AreaCodes, Device
from cityops.domain.lifecycle import Lifecycle
from cityops.domain.registry import UnknownKind
from cityops.history.state import NEVER
from cityops.store.base import AuditEntry

AreaCode = Annotated[str, msgspec.Meta(pattern=r"^\d{6}(\d{3}){0,2}$",
                                       description="A 6, 9 or 12 digit area code")]
Kind = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


def may_see(node: Any, who: Principal, device: Device) -> bool:
    return can_see_place(who, device.areas, device.owner, node.department_areas)


async def load_device(call: Call[Any, Any]) -> Device | None:
    found: Device | None = call.node.registry.get(call.path["device_id"])
    return found


def sees_device(call: Call[Any, Any], device: Device) -> bool:
    return may_see(call.node, call.principal, device)


DEVICE = Guard("device", "device_id", load_device, sees_device)


class Latest(msgspec.Struct, omit_defaults=True):
    """The newest reading: `value` for a one-channel kind, `values` by channel otherwise."""

    ts: str
    value: float | None = None
    values: dict[str, float] | None = None


class DeviceOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    kind: str
    lat: float
    lon: float
    name: str = ""
    owner: str | None = None
    areas: AreaCodes | None
    cell: str | None
    meta: dict[str, Any] = {}
    lifecycle: Lifecycle
    lifecycle_at: str | None  # when it entered that state
    latest: Latest | None


class DevicePage(msgspec.Struct):
    items: list[DeviceOut]
    next: str | None


def latest_of(node: Any, device: Device) -> Latest | None:
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
        return Latest(iso(newest), value=next(iter(channels.values())))
    return Latest(iso(newest), values=channels)


def device_out(node: Any, device: Device) -> DeviceOut:
    return DeviceOut(id=device.id, kind=device.kind, lat=device.lat, lon=device.lon,
                     name=device.name, owner=device.owner, areas=device.areas, cell=device.cell,
                     meta=device.meta, lifecycle=device.lifecycle,
                     lifecycle_at=iso(int(device.lifecycle_at * 1e6)) if device.lifecycle_at
                     else None,
                     latest=latest_of(node, device))


class DeviceQuery(msgspec.Struct, forbid_unknown_fields=False):
    kind: Kind | None = None
    area: AreaCode | None = None
    lifecycle: Lifecycle | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100
    cursor: Annotated[int, msgspec.Meta(ge=0, le=2**62,
                                        description="`next` of the previous page")] = 0


async def list_devices(call: Call[None, DeviceQuery]) -> DevicePage:
    node, who, q = call.node, call.principal, call.query
    if q.kind is not None:
        try:
            node.registry.kind(q.kind)
        except UnknownKind as exc:
            raise ApiError(400, str(exc)) from None
    found, resume = page_of_devices(
        node, who, cursor=q.cursor, limit=q.limit, kind=q.kind, area=q.area,
        keep=lambda d: q.lifecycle is None or d.lifecycle is q.lifecycle)
    return DevicePage([device_out(node, d) for d in found], resume)


def page_of_devices(node: Any, who: Principal, *, cursor: int, limit: int, kind: str | None,
                    area: str | None, keep: Callable[[Device], bool]
                    ) -> tuple[list[Device], str | None]:
    """A page of the registry's devices the key may see, of `kind`, inside `area`, that
    `keep` keeps, in registry order from `cursor`; and the cursor of the next page, if any."""
    devices = node.registry.devices
    items: list[Device] = []
    i = cursor
    while i < len(devices):
        device = devices[i]
        i += 1
        if kind is not None and device.kind != kind:
            continue
        if area is not None and (device.areas is None or not device.areas.within(area)):
            continue
        if not keep(device) or not may_see(node, who, device):
            continue
        if len(items) == limit:  # one more exists: the next page starts at it
            return items, str(i - 1)
        items.append(device)
    return items, None


async def get_device(call: Call[None, Any]) -> DeviceOut:
    return device_out(call.node, call.record)


class DeviceIn(msgspec.Struct, forbid_unknown_fields=True):
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^\S+$",
                                    description="1-128 characters without spaces")]
    kind: Kind
    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)]
    lon: Annotated[float, msgspec.Meta(ge=-180, le=180)]
    name: Annotated[str, msgspec.Meta(max_length=200)] = ""
    owner: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    meta: Annotated[dict[str, Any], msgspec.Meta(max_length=50)] = {}


Registration = DeviceIn | Annotated[list[DeviceIn], msgspec.Meta(min_length=1, max_length=5000)]


class Refused(ValueError):
    """A device this key may not register, with the status the devices API answers."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def device_to_register(node: Any, who: Principal, device: Device) -> Device:
    """`device` as it would be registered by `who`: its kind known, its place resolved by the
    city (areas, cell), its lifecycle kept if it is registered already; Refused when the key
    may not: a scoped key registers only where its scope reaches, and re-registers only a
    device it could see as stored. Shared by POST /api/v1/devices and NGSI-LD (ngsild/feed.py)."""
    try:
        node.registry.kind(device.kind)
    except UnknownKind as exc:
        raise Refused(400, str(exc)) from None
    # A device registered again (moved, renamed) stays where it is in its life.
    held = node.registry.get(device.id)
    if held is not None:
        device = msgspec.structs.replace(device, lifecycle=held.lifecycle,
                                         lifecycle_at=held.lifecycle_at)
    else:
        device = msgspec.structs.replace(device, lifecycle_at=node.clock())
    try:
        resolved: Device = node.city.resolve_device(device)
    except ValueError as exc:
        raise Refused(422, str(exc)) from None
    if held is not None and not may_see(node, who, held):
        # Registered elsewhere: refused without saying where.
        raise Refused(403, f"device {device.id!r} is not this key's to register "
                           f"(scope {who.scope})")
    if not may_see(node, who, resolved):
        raise Refused(403, f"device {device.id!r} lies outside this key's scope {who.scope}")
    return resolved


async def post_devices(call: Call[Registration, Any]) -> list[DeviceOut] | DeviceOut:
    """Nothing of a batch is registered unless all of it may be: each device's new place and,
    for a device already registered, its place as stored must lie in the key's scope."""
    node, who, body = call.node, call.principal, call.body
    many = isinstance(body, list)
    wanted = body if isinstance(body, list) else [body]
    resolved = []
    for i, d in enumerate(wanted):
        device = Device(d.id, d.kind, d.lat, d.lon, d.name, d.owner, meta=d.meta)
        try:
            resolved.append(device_to_register(node, who, device))
        except Refused as exc:
            where = f"{f'device {i}' if many else 'device'}: " if exc.status == 400 else ""
            raise ApiError(exc.status, where + exc.reason) from None
    await node.register_devices(resolved)
    now = time.time()
    await node.store.append_audit([
        AuditEntry(actor=who.key_id, action="device.register", subject=f"device:{d.id}",
                   before=None, after=f"{d.kind} at {d.lat:.6f},{d.lon:.6f}", reason="",
                   at=now) for d in resolved])
    out = [device_out(node, d) for d in resolved]
    return out if many else out[0]


ROUTES = [
    Endpoint("GET", "/api/v1/devices", list_devices, "Devices the key may see",
             READ_DEVICES, Scope.LIST, kind="device", query=DeviceQuery, response=DevicePage),
    Endpoint("POST", "/api/v1/devices", post_devices,
             "Register a device (or an array of them); a registered one is moved or updated",
             REGISTER_DEVICES, Scope.CREATE, kind="device", body=Registration,
             response=DeviceOut | list[DeviceOut], status=201, errors=(422,)),
    Endpoint("GET", "/api/v1/devices/{device_id}", get_device,
             "One device with its areas, cell and latest reading",
             READ_DEVICES, Scope.RECORD, guard=DEVICE, response=DeviceOut),
]
