"""Device lifecycles (commissioning -> active -> maintenance -> decommissioned):

    GET  /api/v1/devices/never-reported   commissioning devices not heard within their window
    POST /api/v1/devices/lifecycle        move devices, by list of ids or by area and/or kind

A move is all or nothing: every device it names is checked first (it exists, the key's scope
covers it as stored, the move is allowed from its state), and one refusal changes nothing.
Each device moved is audited with the key, the state before and after, and the reason.
These fixed paths are listed before `/api/v1/devices/{device_id}` (api/table.py).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from cityops import lifecycle
from cityops.api.devices import AreaCode, Kind, may_see, page_of_devices
from cityops.api.errors import ApiError
from cityops.api.params import iso
from cityops.api.route import Call, Endpoint, Scope, errors_map
from cityops.api.serve_util import covers
from cityops.domain.access import READ_DEVICES, REGISTER_DEVICES
from cityops.domain.city import AreaCodes, Device
from cityops.domain.lifecycle import Lifecycle, RefusedMove
from cityops.domain.registry import UnknownKind

errors_map({RefusedMove: 409})

DeviceId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class LifecycleIn(msgspec.Struct, forbid_unknown_fields=True):
    to: Lifecycle
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]
    devices: Annotated[list[DeviceId], msgspec.Meta(min_length=1, max_length=10_000)] | None \
        = None
    area: AreaCode | None = None
    kind: Kind | None = None


class LifecycleOut(msgspec.Struct):
    to: Lifecycle
    selected: int  # devices the change named (within the key's scope)
    changed: int  # of them, moved now (the others were already there)
    before: dict[str, int]  # the selected devices per state, before and after
    after: dict[str, int]


def _unknown_kind(node: Any, kind: str) -> None:
    try:
        node.registry.kind(kind)
    except UnknownKind as exc:
        raise ApiError(400, f"kind: {exc}") from None


def _selection(call: Call[LifecycleIn, Any]) -> list[Device]:
    node, who, body = call.node, call.principal, call.body
    if body.devices is None and body.area is None and body.kind is None:
        raise ApiError(400, "devices, area or kind: name the devices to change (a list of "
                            "ids, or an area and/or a kind)")
    if body.devices is not None and (body.area is not None or body.kind is not None):
        raise ApiError(400, "devices: give a list of ids, or an area and/or a kind, not both")
    if body.kind is not None:
        _unknown_kind(node, body.kind)
    if body.area is not None:
        if body.area not in node.city:
            raise ApiError(400, f"area: no area {body.area!r}")
        if not covers(node, who, body.area):
            raise ApiError(403, f"area: {body.area} lies outside this key's scope {who.scope}")
    devices = node.registry.devices
    if body.devices is not None:
        try:
            chosen = lifecycle.select(devices, ids=body.devices)
        except lifecycle.UnknownSelector as exc:
            raise ApiError(404, str(exc)) from None
        for device in chosen:
            if not may_see(node, who, device):
                # Said as for a device that does not exist: a key learns nothing of others'.
                field = f"devices[{body.devices.index(device.id)}]"
                raise ApiError(404, f"{field}: no device {device.id!r}")
        return chosen
    chosen = lifecycle.select(devices, area=body.area, kind=body.kind)
    # By kind alone, a scoped key changes the devices of that kind in its scope.
    return [d for d in chosen if may_see(node, who, d)]


async def post_lifecycle(call: Call[LifecycleIn, Any]) -> LifecycleOut:
    chosen = _selection(call)
    before = lifecycle.counts(chosen)
    moves = await lifecycle.move(call.node, chosen, call.body.to,
                                 actor=call.principal.key_id, reason=call.body.reason)
    registry = call.node.registry
    after = lifecycle.counts([registry.devices[registry.index[d.id]] for d in chosen])
    return LifecycleOut(call.body.to, len(chosen), len(moves), before, after)


class WaitingQuery(msgspec.Struct, forbid_unknown_fields=False):
    kind: Kind | None = None
    area: AreaCode | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100
    cursor: Annotated[int, msgspec.Meta(ge=0, le=2**62,
                                        description="`next` of the previous page")] = 0


class Waiting(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    kind: str
    name: str = ""
    owner: str | None = None
    areas: AreaCodes | None
    lat: float
    lon: float
    commissioning_since: str
    waiting_s: float  # since it was registered (or commissioned again)


class WaitingPage(msgspec.Struct):
    items: list[Waiting]
    next: str | None
    window_s: float  # the commissioning window: devices waiting longer are listed


async def never_reported(call: Call[None, WaitingQuery]) -> WaitingPage:
    """In registry order, so that `cursor` pages like the device list's."""
    node, who, q = call.node, call.principal, call.query
    if q.kind is not None:
        _unknown_kind(node, q.kind)
    now = node.clock()
    window = node.settings.commissioning_window_s
    found, resume = page_of_devices(
        node, who, cursor=q.cursor, limit=q.limit, kind=q.kind, area=q.area,
        keep=lambda d: bool(lifecycle.waiting([d], now, window)))
    items = [Waiting(id=d.id, kind=d.kind, name=d.name, owner=d.owner, areas=d.areas,
                     lat=d.lat, lon=d.lon, commissioning_since=iso(int(d.lifecycle_at * 1e6)),
                     waiting_s=round(now - d.lifecycle_at, 3)) for d in found]
    return WaitingPage(items, resume, window)


ROUTES = [
    Endpoint("GET", "/api/v1/devices/never-reported", never_reported,
             "Commissioning devices not heard within their commissioning window",
             READ_DEVICES, Scope.LIST, kind="device", query=WaitingQuery,
             response=WaitingPage),
    Endpoint("POST", "/api/v1/devices/lifecycle", post_lifecycle,
             "Move devices (by ids, or by area and/or kind) to a lifecycle state (audited; "
             "all or nothing)", REGISTER_DEVICES, Scope.CREATE, kind="device_lifecycle",
             body=LifecycleIn, response=LifecycleOut, errors=(404, 409)),
]
