"""The camera registry and camera evidence:

    GET /api/v1/cameras                             the cameras the key may see, paged: stream
                                                    URLs, what they report now, newest snapshot
    GET /api/v1/cameras/{device_id}                 one camera
    GET /api/v1/cameras/{device_id}/snapshot        its newest snapshot (the image)
    GET /api/v1/camera-snapshots/{name}             one kept snapshot (the image)
    GET /api/v1/incidents/{incident_id}/camera-evidence
                                                    the camera evidence on a case

Cameras are scoped like devices (they are devices of kind `camera`). The Frigate mapping
(frigate.yaml) adds each camera's stream URLs and zones. Snapshots are served by this node from
what it fetched and stored (act/camera_evidence.py): the console never talks to the NVR, whose
address is on the city's camera network. A snapshot is shown to keys that may see its camera or
the case it is evidence on, as a case's evidence is to keys that may see the case.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import msgspec
from starlette.responses import Response

from cityops.act import camera_evidence as ce
from cityops.api import images
from cityops.api.devices import AreaCode, may_see, page_of_devices
from cityops.api.errors import ApiError
from cityops.api.incidents import INCIDENT, visible
from cityops.api.incidents import READ as CASE_READERS
from cityops.api.params import iso
from cityops.api.route import Call, Endpoint, Guard, NoQuery, Scope
from cityops.domain.access import READ_DEVICES
from cityops.domain.city import AreaCodes, Device
from cityops.domain.kinds import CAMERA_EVENTS
from cityops.history.state import NEVER

KIND = "camera"
IMAGE = {"type": "string", "format": "binary"}


class Zone(msgspec.Struct, omit_defaults=True):
    name: str  # Frigate's ("*": anywhere in the image)
    events: list[str]  # the CityOps camera events it maps
    device: str | None = None  # when the zone reports as a device of its own
    polygon: dict[str, Any] | None = None


class Frigate(msgspec.Struct):
    server: str
    camera: str
    zones: list[Zone]


class Now(msgspec.Struct, omit_defaults=True):
    """What the camera reported last: its event (`none` when nothing) and dwell."""

    ts: str
    event: str
    dwell_s: float | None = None


class SnapshotOut(msgspec.Struct, omit_defaults=True):
    url: str
    taken_at: str
    event: str
    incident: str | None = None  # the case it is evidence on, when the key may see the case


class CameraOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    name: str = ""
    lat: float
    lon: float
    areas: AreaCodes | None
    streams: dict[str, str] = {}
    frigate: Frigate | None = None
    last_event: Now | None = None
    last_snapshot: SnapshotOut | None = None


class CameraPage(msgspec.Struct):
    items: list[CameraOut]
    next: str | None


class CameraQuery(msgspec.Struct, forbid_unknown_fields=False):
    area: AreaCode | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=200)] = 50
    cursor: Annotated[int, msgspec.Meta(ge=0, le=2**62,
                                        description="`next` of the previous page")] = 0


class EvidenceOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    alert: str
    device: str
    event: str
    source: str
    source_event: str
    camera: str
    zone: str = ""
    label: str = ""
    seen_at: str
    clip_url: str = ""
    snapshot_url: str | None = None  # on this node, once fetched
    attempts: int = 0
    error: str = ""  # why the snapshot is not here (yet)


class EvidenceList(msgspec.Struct):
    items: list[EvidenceOut]


async def load_camera(call: Call[Any, Any]) -> Device | None:
    found: Device | None = call.node.registry.get(call.path["device_id"])
    return found if found is not None and found.kind == KIND else None


def sees_camera(call: Call[Any, Any], device: Device) -> bool:
    return may_see(call.node, call.principal, device)


CAMERA = Guard(KIND, "device_id", load_camera, sees_camera)


def _frigate(node: Any, device: Device) -> tuple[dict[str, str], Frigate | None]:
    mapping = node.frigate_map
    found = mapping.devices().get(device.id) if mapping is not None else None
    if found is None:
        return {}, None
    server, camera = found
    zones = [Zone(z.name, sorted({m.event for m in z.events}), z.device, z.polygon)
             for z in camera.zones if (z.device or camera.device) == device.id]
    return dict(camera.streams), Frigate(server.name, camera.name, zones)


def _now(node: Any, device: Device) -> Now | None:
    kind = node.registry.kind(device.kind)
    ts, value = node.history.state.latest(node.registry.index[device.id])
    event_ch, dwell_ch = kind.channel_index("event"), kind.channel_index("dwell")
    if ts[event_ch] == NEVER or math.isnan(value[event_ch]):
        return None
    code = int(value[event_ch])
    dwell = None
    if ts[dwell_ch] == ts[event_ch] and not math.isnan(value[dwell_ch]) and code:
        dwell = float(value[dwell_ch])
    return Now(iso(int(ts[event_ch])), CAMERA_EVENTS.get(code, f"event {code}"), dwell)


async def camera_out(call: Call[Any, Any], device: Device) -> CameraOut:
    node = call.node
    streams, frigate = _frigate(node, device)
    newest = await ce.Snapshots(node.store, node.clock).newest(device.id)
    snapshot = None
    if newest is not None:
        name, shot = newest
        snapshot = SnapshotOut(_url(node, name), iso(int(shot.taken_at * 1e6)), shot.event,
                               await _case_if_visible(call, shot.incident))
    return CameraOut(id=device.id, name=device.name, lat=device.lat, lon=device.lon,
                     areas=device.areas, streams=streams, frigate=frigate,
                     last_event=_now(node, device), last_snapshot=snapshot)


def _url(node: Any, name: str) -> str:
    return node.settings.public_base_url.rstrip("/") + ce.path_of(name)


async def _case_if_visible(call: Call[Any, Any], incident_id: str) -> str | None:
    if call.node.act is None:
        return None
    inc = await call.node.store.get_incident(incident_id)
    return incident_id if inc is not None and visible(call.request, call.principal, inc) \
        else None


async def list_cameras(call: Call[None, CameraQuery]) -> CameraPage:
    q = call.query
    found, resume = page_of_devices(call.node, call.principal, cursor=q.cursor, limit=q.limit,
                                    kind=KIND, area=q.area, keep=lambda d: True)
    return CameraPage([await camera_out(call, d) for d in found], resume)


async def get_camera(call: Call[None, NoQuery]) -> CameraOut:
    return await camera_out(call, call.record)


async def get_newest_snapshot(call: Call[None, NoQuery]) -> Response:
    node = call.node
    newest = await ce.Snapshots(node.store, node.clock).newest(call.record.id)
    path = ce.file_of(node.settings.data_dir, newest[0]) if newest is not None else None
    if path is None or not path.is_file():
        raise ApiError(404, f"camera {call.record.id!r} has no snapshot kept yet")
    return images.image_response(path)


class Kept(msgspec.Struct):
    name: str
    snapshot: ce.Snapshot


async def load_snapshot(call: Call[Any, Any]) -> Kept | None:
    node, name = call.node, call.path["name"]
    found = await ce.Snapshots(node.store, node.clock).get(name)
    return Kept(name, found[1]) if found is not None else None


async def sees_snapshot(call: Call[Any, Any], kept: Kept) -> bool:
    """Keys that may see its camera, or the case it is evidence on."""
    device = call.node.registry.get(kept.snapshot.device)
    if device is not None and may_see(call.node, call.principal, device):
        return True
    return await _case_if_visible(call, kept.snapshot.incident) is not None


SNAPSHOT = Guard("camera_snapshot", "name", load_snapshot, sees_snapshot)


async def get_snapshot(call: Call[None, NoQuery]) -> Response:
    path = ce.file_of(call.node.settings.data_dir, call.record.name)
    if not path.is_file():
        raise ApiError(404, f"no camera_snapshot {call.record.name!r}")
    return images.image_response(path)


async def case_evidence(call: Call[None, NoQuery]) -> EvidenceList:
    node = call.node
    found = await ce.EvidenceBook(node.store, node.clock).of_case(call.record.id)
    return EvidenceList([
        EvidenceOut(alert=e.alert, device=e.device, event=e.event, source=e.source,
                    source_event=e.source_event, camera=e.camera, zone=e.zone, label=e.label,
                    seen_at=iso(int(e.seen_at * 1e6)), clip_url=e.clip_url,
                    snapshot_url=_url(node, e.snapshot) if e.snapshot else None,
                    attempts=e.attempts, error=e.error)
        for e in found])


ROUTES = [
    Endpoint("GET", "/api/v1/cameras", list_cameras,
             "The cameras the key may see, paged: stream URLs, the Frigate camera and zones "
             "each maps, what it reports now and its newest snapshot", READ_DEVICES,
             Scope.LIST, query=CameraQuery, response=CameraPage, kind=KIND),
    Endpoint("GET", "/api/v1/cameras/{device_id}", get_camera, "One camera", READ_DEVICES,
             Scope.RECORD, guard=CAMERA, response=CameraOut),
    Endpoint("GET", "/api/v1/cameras/{device_id}/snapshot", get_newest_snapshot,
             "The camera's newest snapshot kept as evidence (JPEG)", READ_DEVICES,
             Scope.RECORD, guard=CAMERA, media_type="image/jpeg"),
    Endpoint("GET", "/api/v1/camera-snapshots/{name}", get_snapshot,
             "One kept camera snapshot (JPEG), for keys that may see its camera or its case",
             READ_DEVICES | CASE_READERS, Scope.RECORD, guard=SNAPSHOT,
             media_type="image/jpeg"),
    Endpoint("GET", "/api/v1/incidents/{incident_id}/camera-evidence", case_evidence,
             "The camera evidence on a case: the video analytics event behind each camera "
             "alert, its snapshot on this node and the clip's link on the NVR", CASE_READERS,
             Scope.RECORD, guard=INCIDENT, response=EvidenceList, errors=(503,)),
]
