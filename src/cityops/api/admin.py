"""Administration over HTTP, for the /admin page (and scripts):

    GET    /api/v1/keys                    the keys this admin key may manage
    POST   /api/v1/keys                    make a key; its secret is in this answer only
    DELETE /api/v1/keys/{key_id}           revoke a key
    POST   /api/v1/keys/{key_id}/rotate    a new key in its place; the old one stops now or
                                           after a grace period
    POST   /api/v1/devices/import          register devices from a CSV file (all or nothing)
    GET    /api/v1/cells                   grid cells with a named owner, in the key's scope
    GET    /api/v1/cells/at?lat=&lon=      the cell at a point, with its owner
    GET    /api/v1/cells/{cell}            one cell with its owner and outline
    PUT    /api/v1/cells/{cell}/owner      give a cell to a department, its station, or back
                                           to the pack's owner; new cases route by it

Keys follow cityops.keyadmin (the CLI's rules too): an admin key makes and changes only keys
within its own scope. A cell is changed only by a key whose area scope holds the cell's
village. Both are checked against what is stored (the key record, the cell's territory), and
refused with 403 and a sentence saying whose scope is whose. Every change is audited.
"""

from __future__ import annotations

import csv
import io
import time
from typing import Annotated, Any, Literal

import h3
import msgspec

from cityops import keyadmin
from cityops.api.devices import AreaCode, DeviceIn, Refused, Registration, device_to_register
from cityops.api.errors import ApiError
from cityops.api.route import Call, Endpoint, Guard, Reply, Scope, decode_json, errors_map
from cityops.cell_owners import BadCell, BadOwner
from cityops.domain.access import READ_DEVICES, REGISTER_DEVICES, Principal, Role
from cityops.domain.city import Device
from cityops.store.base import ApiKeyRecord, AuditEntry

errors_map({keyadmin.KeyRefused: 403, keyadmin.NoSuchKey: 404, keyadmin.KeyNotActive: 409,
            keyadmin.BrokerFailed: 503, BadCell: 400, BadOwner: 400})

ADMINS = frozenset({Role.ADMIN})
CELL_KEEPERS = frozenset({Role.ADMIN, Role.OPERATOR})
Reason = Annotated[str, msgspec.Meta(max_length=500)]

# -- keys -------------------------------------------------------------------------------------


class KeyView(msgspec.Struct):
    id: str
    role: str
    scope: str
    name: str
    created_at: float
    expires_at: float | None
    revoked: bool
    active: bool


class KeyPage(msgspec.Struct):
    items: list[KeyView]
    next: None = None


class KeyIn(msgspec.Struct, forbid_unknown_fields=True):
    role: Annotated[str, msgspec.Meta(min_length=1, max_length=32)]
    scope: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    name: Annotated[str, msgspec.Meta(max_length=200)] = ""
    expires: Annotated[str, msgspec.Meta(max_length=64, description="a duration from now "
                                         "(30d, 12h) or a time (2026-12-31T00:00Z)")] | None \
        = None
    reason: Reason = ""


class RotateIn(msgspec.Struct, forbid_unknown_fields=True):
    grace: Annotated[str, msgspec.Meta(max_length=32, description="how long the old key keeps "
                                       "working (1h); 0: it stops now")] = "0"
    expires: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    reason: Reason = ""


class RevokeIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason = ""


class KeyMade(msgspec.Struct, omit_defaults=True):
    key: KeyView
    secret: str  # shown here once; the store keeps only its hash
    mqtt_topics: list[str] | None = None  # a device key's broker topics, when it got a client
    replaces: str | None = None  # rotate: the old key's id ...
    old_until: float | None = None  # ... and until when it still works (None: revoked now)


def key_view(record: ApiKeyRecord, now: float) -> KeyView:
    return KeyView(record.id, record.role, record.scope, record.name, record.created_at,
                   record.expires_at, record.revoked, record.active_at(now))


def _broker(node: Any) -> keyadmin.Broker | None:
    admin_url = node.settings.mqtt_admin_url
    return keyadmin.Broker(admin_url, node.settings.mqtt_topic) if admin_url else None


def _expiry(text: str | None, now: float, field: str) -> float | None:
    if text is None:
        return None
    try:
        return keyadmin.parse_expiry(text, now, field)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None


async def list_keys(call: Call[None, Any]) -> KeyPage:
    now = time.time()
    return KeyPage([key_view(k, now) for k in await keyadmin.visible(call.node.store,
                                                                     call.principal)])


async def create_key(call: Call[KeyIn, Any]) -> KeyMade:
    body, now = call.body, time.time()
    expires_at = _expiry(body.expires, now, "expires")
    try:
        made = await keyadmin.create(
            call.node.store, role=body.role, scope=body.scope, name=body.name,
            expires_at=expires_at, actor=call.principal.key_id, by=call.principal,
            reason=body.reason, broker=_broker(call.node), now=now)
    except ValueError as exc:  # a role or scope that is not one
        raise ApiError(400, str(exc)) from None
    return KeyMade(key_view(made.record, now), made.secret, made.topics)


async def load_key(call: Call[Any, Any]) -> ApiKeyRecord | None:
    try:
        return await keyadmin.find(call.node.store, call.path["key_id"])
    except keyadmin.NoSuchKey:
        return None


def manages_key(call: Call[Any, Any], record: ApiKeyRecord) -> bool:
    if not keyadmin.may_manage(call.principal, record):
        # Said plainly rather than as a 404: key ids are random, and the person at the page
        # should learn why nothing happened.
        raise ApiError(403, f"key {record.id} (scope {record.scope}) lies outside this key's "
                            f"scope {call.principal.scope}")
    return True


KEY = Guard("api_key", "key_id", load_key, manages_key)


async def revoke_key(call: Call[RevokeIn, Any]) -> Reply:
    node, now = call.node, time.time()
    old = await keyadmin.revoke(node.store, call.record.id, actor=call.principal.key_id,
                                by=call.principal, reason=call.body.reason, now=now)
    node.keys.forget(old.id)
    note = await keyadmin.remove_from_broker(old.id, _broker(node))
    headers = {"Warning": f'199 cityops "{note}"'} if note else None
    gone = msgspec.structs.replace(old, revoked=True)
    return Reply(key_view(gone, now), headers=headers)


async def rotate_key(call: Call[RotateIn, Any]) -> KeyMade:
    node, body, now = call.node, call.body, time.time()
    try:
        grace_s = keyadmin.parse_duration(body.grace, "grace")
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None
    done = await keyadmin.rotate(node.store, call.record.id, actor=call.principal.key_id,
                                 grace_s=grace_s, expires_at=_expiry(body.expires, now,
                                                                     "expires"),
                                 by=call.principal, reason=body.reason,
                                 broker=_broker(node), now=now)
    node.keys.forget(done.old.id)
    if done.old_ends is None:
        await keyadmin.remove_from_broker(done.old.id, _broker(node))
    return KeyMade(key_view(done.made.record, now), done.made.secret, done.made.topics,
                   replaces=done.old.id, old_until=done.old_ends)


# -- devices from a CSV file ------------------------------------------------------------------

CSV_BODY = 4 << 20
MAX_ROWS = 5000
MAX_META = 50  # as a device's meta in POST /api/v1/devices
_COLUMNS = ("id", "kind", "lat", "lon")  # required; name and owner optional; others go to meta


class ImportOut(msgspec.Struct):
    registered: int
    new: int  # of them, not registered before
    ids: list[str]


def _rows(raw: bytes) -> list[dict[str, str]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ApiError(400, f"the file is not UTF-8 text (byte {exc.start})") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    missing = [c for c in _COLUMNS if c not in header]
    if missing:
        raise ApiError(400, f"line 1: the header lacks {', '.join(missing)} (it needs id, "
                            "kind, lat, lon; name, owner and any other columns are optional)")
    rows = []
    try:
        for row in reader:
            if len(rows) == MAX_ROWS:
                raise ApiError(413, f"more than {MAX_ROWS} devices in one file: split it")
            rows.append(row)
    except csv.Error as exc:
        raise ApiError(400, f"line {reader.line_num}: {exc}") from None
    if not rows:
        raise ApiError(400, "the file has a header but no devices")
    return rows


def _device(row: dict[str, str | None], line: int) -> Device:
    if None in row:
        raise ApiError(400, f"line {line}: more fields than the header names")
    values = {k: (v or "").strip() for k, v in row.items() if k is not None}
    device_id = values["id"]
    if not device_id or len(device_id) > 128 or any(c.isspace() for c in device_id):
        raise ApiError(400, f"line {line}: id {device_id!r} must be 1-128 characters without "
                            "spaces")
    try:
        lat, lon = float(values["lat"]), float(values["lon"])
    except ValueError:
        raise ApiError(400, f"line {line}: lat and lon must be numbers") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ApiError(400, f"line {line}: lat {lat}, lon {lon} is not a place on Earth")
    meta = {k: v for k, v in values.items() if k not in (*_COLUMNS, "name", "owner") and v}
    if len(meta) > MAX_META or any(len(v) > 500 for v in meta.values()):
        raise ApiError(400, f"line {line}: at most {MAX_META} extra columns of up to 500 "
                            "characters each")
    return Device(device_id, values["kind"], lat, lon, values.get("name", "")[:200],
                  values.get("owner") or None, meta=meta)


async def import_devices(call: Call[None, Any]) -> ImportOut:
    """Every row is checked (its fields, the kind, the place, the key's scope over the new
    place and over the device as stored) before anything is written."""
    node, who = call.node, call.principal
    raw = await call.raw_body()
    if call.request.headers.get("content-type", "").startswith("application/json"):
        # The same rows as JSON (what a script has at hand), checked the same way.
        body = decode_json(raw, Registration)
        rows = body if isinstance(body, list) else [body]
        devices = [(i + 1, Device(d.id, d.kind, d.lat, d.lon, d.name, d.owner, meta=d.meta))
                   for i, d in enumerate(rows)]
        where = "device"
    else:
        devices = [(i + 2, _device(row, i + 2)) for i, row in enumerate(_rows(raw))]
        where = "line"
    resolved = []
    ids: set[str] = set()
    for line, device in devices:
        if device.id in ids:
            raise ApiError(400, f"{where} {line}: device {device.id!r} is given twice")
        ids.add(device.id)
        try:
            resolved.append(device_to_register(node, who, device))
        except Refused as exc:
            raise ApiError(exc.status, f"{where} {line}: {exc.reason}") from None
    new = sum(1 for d in resolved if node.registry.get(d.id) is None)
    await node.register_devices(resolved)
    now = time.time()
    await node.store.append_audit([
        AuditEntry(actor=who.key_id, action="device.register", subject=f"device:{d.id}",
                   before=None, after=f"{d.kind} at {d.lat:.6f},{d.lon:.6f}",
                   reason="CSV import", at=now) for d in resolved])
    return ImportOut(len(resolved), new, [d.id for d in resolved])


# -- grid-cell owners -------------------------------------------------------------------------

CellId = Annotated[str, msgspec.Meta(min_length=1, max_length=20)]


class CellView(msgspec.Struct):
    cell: str
    owner: str  # a department code, or "station:<village>" for the territory's station
    source: Literal["override", "pack", "territory"]
    village: str
    boundary: list[tuple[float, float]]  # (lon, lat) corners, for a map


class CellPage(msgspec.Struct):
    items: list[CellView]
    next: str | None


class CellQuery(msgspec.Struct, forbid_unknown_fields=False):
    area: AreaCode | None = None
    owner: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=5000)] = 1000
    cursor: Annotated[int, msgspec.Meta(ge=0, le=2**62)] = 0


class PointQuery(msgspec.Struct, forbid_unknown_fields=False):
    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)]
    lon: Annotated[float, msgspec.Meta(ge=-180, le=180)]


class OwnerIn(msgspec.Struct, forbid_unknown_fields=True):
    owner: Annotated[str, msgspec.Meta(max_length=64, description="a department code; \"\" "
                                       "the cell's village station; null the city pack's "
                                       "owner")] | None
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


def cell_view(node: Any, cell: str) -> CellView:
    owners = node.cell_owners
    village = owners.territory(cell)
    owner, source = owners.owner(cell)
    corners = [(round(lon, 7), round(lat, 7)) for lat, lon in h3.cell_to_boundary(cell)]
    return CellView(cell, owner, source, village, corners)


def _in_scope(who: Principal, village: str) -> bool:
    scope = who.scope
    if scope.area is None and scope.department is None:
        return True
    return scope.area is not None and village.startswith(scope.area)


async def list_cells(call: Call[None, CellQuery]) -> CellPage:
    """Cells the pack or an administrator named an owner for (every other cell is its
    station's), in cell order, within the key's scope."""
    node, who, q = call.node, call.principal, call.query
    named = sorted(node.city.cell_owners)
    items: list[CellView] = []
    i = q.cursor
    while i < len(named):
        cell = named[i]
        i += 1
        view = cell_view(node, cell)
        # A department key sees the ground its department keeps; changing it stays an area's.
        theirs = who.scope.department is not None and view.owner == who.scope.department
        if not (_in_scope(who, view.village) or theirs):
            continue
        if q.area is not None and not view.village.startswith(q.area):
            continue
        if q.owner is not None and view.owner != q.owner:
            continue
        if len(items) == q.limit:
            return CellPage(items, str(i - 1))
        items.append(view)
    return CellPage(items, None)


async def cell_at(call: Call[None, PointQuery]) -> CellView:
    node, q = call.node, call.query
    return cell_view(node, node.city.cell_of(q.lat, q.lon))


async def get_cell(call: Call[None, Any]) -> CellView:
    return cell_view(call.node, call.path["cell"])


async def load_cell(call: Call[Any, Any]) -> str | None:
    cell = call.path["cell"]
    try:
        call.node.cell_owners.territory(cell)
    except BadCell:
        return None
    return cell


def keeps_cell(call: Call[Any, Any], cell: str) -> bool:
    village = call.node.cell_owners.territory(cell)
    who = call.principal
    if not _in_scope(who, village):
        raise ApiError(403, f"cell {cell} lies in village {village}, outside this key's scope "
                            f"{who.scope}")
    return True


CELL = Guard("cell", "cell", load_cell, keeps_cell)


async def put_owner(call: Call[OwnerIn, Any]) -> CellView:
    node, body = call.node, call.body
    await node.cell_owners.assign(node.store, call.record, body.owner,
                                  actor=call.principal.key_id, reason=body.reason)
    return cell_view(node, call.record)


ROUTES = [
    Endpoint("GET", "/api/v1/keys", list_keys, "API keys this admin key may manage",
             ADMINS, Scope.LIST, kind="api_key", response=KeyPage),
    Endpoint("POST", "/api/v1/keys", create_key,
             "Make an API key within this key's scope (audited); the secret is shown once",
             ADMINS, Scope.CREATE, kind="api_key", body=KeyIn, body_limit=8192,
             response=KeyMade, status=201, errors=(503,)),
    Endpoint("DELETE", "/api/v1/keys/{key_id}", revoke_key, "Revoke an API key (audited)",
             ADMINS, Scope.RECORD, guard=KEY, body=RevokeIn, body_required=False,
             body_limit=4096, response=KeyView),
    Endpoint("POST", "/api/v1/keys/{key_id}/rotate", rotate_key,
             "Replace an API key by a new one with its role, scope and name (audited)",
             ADMINS, Scope.RECORD, guard=KEY, body=RotateIn, body_required=False,
             body_limit=4096, response=KeyMade, status=201, errors=(409, 503)),
    Endpoint("POST", "/api/v1/devices/import", import_devices,
             "Register devices from a CSV file (id, kind, lat, lon, optional name and owner, "
             "any other column kept as meta) or a JSON array: all or nothing, audited",
             REGISTER_DEVICES, Scope.CREATE, kind="device", raw_body=True, body_limit=CSV_BODY,
             request_content={"text/csv": {"type": "string"},
                              "application/json": list[DeviceIn]},
             response=ImportOut, status=201,
             errors=(422,)),
    Endpoint("GET", "/api/v1/cells", list_cells,
             "Grid cells with a named owner (pack or administrator), in the key's scope",
             READ_DEVICES, Scope.LIST, kind="cell", query=CellQuery, response=CellPage),
    Endpoint("GET", "/api/v1/cells/at", cell_at, "The grid cell at a point, with its owner",
             READ_DEVICES, Scope.NONE, query=PointQuery, response=CellView),
    Endpoint("GET", "/api/v1/cells/{cell}", get_cell, "One grid cell with its owner",
             READ_DEVICES, Scope.NONE, response=CellView),
    Endpoint("PUT", "/api/v1/cells/{cell}/owner", put_owner,
             "Give a grid cell to a department, to its village station (\"\"), or back to the "
             "city pack's owner (null); new cases route by it (audited)",
             CELL_KEEPERS, Scope.RECORD, guard=CELL, body=OwnerIn, body_limit=4096,
             response=CellView),
]
