"""frigate.yaml: how the city's Frigate NVRs map onto its cameras (optional).

Frigate (the open-source NVR) names its cameras and the zones drawn on their images; CityOps
knows camera devices and camera event codes. This file ties the two together:

    servers:
      - name: nvr-lujiazui            # how cameras refer to it; default "frigate"
        url: http://10.20.0.5:5000    # Frigate's HTTP API (snapshots, clips)
        topic_prefix: frigate         # Frigate's mqtt.topic_prefix
    cameras:
      - name: gate_3                  # the camera's name in Frigate's config
        server: nvr-lujiazui          # may be left out when there is one server
        device: cam-000123            # the CityOps camera device
        streams: {main: rtsp://10.20.0.9:554/main, web: https://video.city/hls/gate_3.m3u8}
        zones:
          - name: fire_lane_gate_3    # the zone's name in Frigate ("*": anywhere in the image)
            device: cam-000123-lane   # optional: the device this zone reports as
            polygon: {type: Polygon, coordinates: [...]}   # optional: the zone on the map
            events:
              - {labels: [car, truck, bus, motorcycle], event: vehicle_in_fire_lane}
          - name: square
            events:
              - {labels: [person], min_count: 30, event: crowd_gathering}

A zone's `events` say which tracked objects in it mean which CityOps camera event
(domain/kinds.CAMERA_EVENTS): by label, optionally by sub-label (Frigate's recognised name or
plate, or a custom model's refinement) and least score; `min_count` makes it a count (that many
objects of those labels in the zone at once). A zone may give its own `device`: a CityOps
camera reports one event at a time, so a Frigate camera that watches a fire lane and a square
is best two CityOps devices, one per zone, each with its own rules and case.

Everything is checked when the file is read; an error names the file, the entry and the field.
"""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path
from typing import Annotated, Any

import msgspec
import shapely.geometry
import shapely.validation

from cityops.domain.kinds import CAMERA_EVENTS
from cityops.packs.areas_file import check_polygonal
from cityops.packs.codec import convert, load_yaml
from cityops.packs.errors import PackError

NAME = "frigate.yaml"
ANYWHERE = "*"  # a zone name: anywhere in the camera's image
EVENTS = {name: code for code, name in CAMERA_EVENTS.items() if code}
MAX_CAMERAS = 20_000  # Pudong shares more than 8,000 videos; room for a city's NVRs
# Frigate's names: camera and zone names are YAML keys made of these (its config refuses others).
FRIGATE_NAME = r"^[A-Za-z0-9_-]{1,64}$"
DEVICE_ID = r"^\S{1,128}$"
STREAM_SCHEMES = ("rtsp", "rtsps", "http", "https", "rtmp", "webrtc", "srt")

Name = Annotated[str, msgspec.Meta(pattern=FRIGATE_NAME)]
DeviceId = Annotated[str, msgspec.Meta(pattern=DEVICE_ID)]
Label = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class EventMap(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    """Objects of these labels in the zone mean `event`."""

    labels: Annotated[list[Label], msgspec.Meta(min_length=1, max_length=32)]
    event: str
    sub_labels: Annotated[list[Label], msgspec.Meta(max_length=32)] = []
    min_score: Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] = 0.0
    min_count: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 1

    @property
    def code(self) -> int:
        return EVENTS[self.event]

    def takes(self, label: str, sub_label: str | None, score: float) -> bool:
        """Whether one tracked object is of this mapping (its count is the caller's)."""
        if label not in self.labels or score < self.min_score:
            return False
        return not self.sub_labels or sub_label in self.sub_labels


class ZoneMap(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    name: Annotated[str, msgspec.Meta(pattern=FRIGATE_NAME + "|^\\*$")]
    events: Annotated[list[EventMap], msgspec.Meta(min_length=1, max_length=16)]
    device: DeviceId | None = None  # default: the camera's
    polygon: dict[str, Any] | None = None  # GeoJSON (lon, lat), on the city's map


class CameraMap(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    name: Name
    device: DeviceId
    zones: Annotated[list[ZoneMap], msgspec.Meta(min_length=1, max_length=64)]
    server: Name | None = None
    streams: Annotated[dict[Annotated[str, msgspec.Meta(pattern=FRIGATE_NAME)], str],
                       msgspec.Meta(max_length=8)] = {}

    def devices(self) -> list[str]:
        """The CityOps devices this camera reports as: its own and its zones' own."""
        out = [self.device]
        for zone in self.zones:
            if zone.device is not None and zone.device not in out:
                out.append(zone.device)
        return out


class ServerMap(msgspec.Struct, forbid_unknown_fields=True, frozen=True, omit_defaults=True):
    url: str
    name: Name = "frigate"
    topic_prefix: Annotated[str, msgspec.Meta(pattern=r"^[^#+\s]{1,128}$")] = "frigate"

    @property
    def events_topic(self) -> str:
        return f"{self.topic_prefix.strip('/')}/events"


class FrigateFile(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    servers: Annotated[list[ServerMap], msgspec.Meta(min_length=1, max_length=256)]
    cameras: Annotated[list[CameraMap], msgspec.Meta(max_length=MAX_CAMERAS)] = []


class FrigateMap:
    """The checked file, looked up the way the intake needs it: by server and camera name."""

    def __init__(self, doc: FrigateFile) -> None:
        self.doc = doc
        self.servers: dict[str, ServerMap] = {s.name: s for s in doc.servers}
        self.cameras: dict[tuple[str, str], CameraMap] = {}
        only = doc.servers[0].name if len(doc.servers) == 1 else None
        for camera in doc.cameras:
            server = camera.server or only
            assert server is not None  # checked in `_check`
            self.cameras[(server, camera.name)] = camera
        # Two servers may share a topic prefix (one broker each): a message is then tried
        # against each of them by camera name.
        self.by_topic: dict[str, list[str]] = {}
        for s in doc.servers:
            self.by_topic.setdefault(s.events_topic, []).append(s.name)
        self._devices = self._map_devices()

    def camera(self, topic: str, name: str) -> tuple[ServerMap, CameraMap] | None:
        for server in self.by_topic.get(topic, ()):
            found = self.cameras.get((server, name))
            if found is not None:
                return self.servers[server], found
        return None

    def devices(self) -> dict[str, tuple[ServerMap, CameraMap]]:
        """Every mapped CityOps device with the Frigate camera it reports for."""
        return self._devices

    def _map_devices(self) -> dict[str, tuple[ServerMap, CameraMap]]:
        out: dict[str, tuple[ServerMap, CameraMap]] = {}
        for (server, _), camera in self.cameras.items():
            for device in camera.devices():
                out.setdefault(device, (self.servers[server], camera))
        return out

    @property
    def topics(self) -> list[str]:
        return sorted(self.by_topic)


def frigate_from_yaml(data: bytes, name: str = NAME) -> FrigateMap:
    doc = load_yaml(data, name)
    if not isinstance(doc, dict):
        raise PackError(f"{name}: must be a mapping with 'servers' and 'cameras'")
    parsed = convert(doc, FrigateFile, name)
    _check(parsed, name)
    return FrigateMap(parsed)


def load_frigate(path: str | Path) -> FrigateMap:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PackError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    return frigate_from_yaml(data, str(path))


def _check(doc: FrigateFile, name: str) -> None:
    servers: set[str] = set()
    for i, server in enumerate(doc.servers):
        where = f"{name}: servers[{i}]"
        _add_once(servers, server.name, "server", where)
        _check_url(server.url, ("http", "https"), f"{where}.url")
    seen: dict[tuple[str, str], int] = {}
    for i, camera in enumerate(doc.cameras):
        where = f"{name}: cameras[{i}] ({camera.name})"
        server = camera.server
        if server is None:
            if len(doc.servers) > 1:
                raise PackError(f"{where}.server: name the camera's server; there are "
                                f"{len(doc.servers)} ({', '.join(sorted(servers))})")
            server = doc.servers[0].name
        elif server not in servers:
            raise PackError(f"{where}.server: no server {server!r} (servers: "
                            f"{', '.join(sorted(servers))})")
        if (server, camera.name) in seen:
            raise PackError(f"{where}.name: camera {camera.name!r} of server {server!r} is "
                            f"already cameras[{seen[(server, camera.name)]}]")
        seen[(server, camera.name)] = i
        for stream, url in camera.streams.items():
            _check_url(url, STREAM_SCHEMES, f"{where}.streams.{stream}")
        zones: set[str] = set()
        for j, zone in enumerate(camera.zones):
            zwhere = f"{where}.zones[{j}] ({zone.name})"
            _add_once(zones, zone.name, "zone", zwhere)
            if zone.polygon is not None:
                check_polygonal(zone.polygon, f"{zwhere}.polygon")
                polygon = shapely.geometry.shape(zone.polygon)
                if not polygon.is_valid:
                    raise PackError(f"{zwhere}.polygon: not a valid polygon "
                                    f"({shapely.validation.explain_validity(polygon)})")
            for k, mapping in enumerate(zone.events):
                if mapping.event not in EVENTS:
                    raise PackError(f"{zwhere}.events[{k}].event: unknown camera event "
                                    f"{mapping.event!r} (known: {', '.join(EVENTS)})")


def _add_once(names: set[str], name: str, what: str, where: str) -> None:
    if name in names:
        raise PackError(f"{where}.name: {what} {name!r} is listed twice")
    names.add(name)


def _check_url(url: str, schemes: tuple[str, ...], where: str) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() not in schemes or not parts.hostname:
        raise PackError(f"{where}: {url!r} is not a URL starting with "
                        f"{' or '.join(s + '://' for s in schemes[:4])}... and a host")
    if re.search(r"\s", url):
        raise PackError(f"{where}: {url!r} contains white space")


def check_devices(mapping: FrigateMap, kinds: dict[str, str], meta: dict[str, dict[str, Any]],
                  name: str = NAME) -> tuple[list[str], list[str]]:
    """Errors and warnings of the mapping against the registry: `kinds` is each registered
    device's kind, `meta` its meta. A mapped device that is not a camera is an error (its
    readings would all be refused); one not registered yet is a warning (registered later
    through the API, its events are taken from then on, dead letters until then). A fire-lane
    mapping to a device the fire_lane pack does not read (no meta `site: fire_lane`) is a
    warning: its events would raise nothing."""
    errors: list[str] = []
    warnings: list[str] = []
    for camera in mapping.doc.cameras:
        for device in camera.devices():
            kind = kinds.get(device)
            where = f"{name}: camera {camera.name!r}: device {device!r}"
            if kind is None:
                warnings.append(f"{where} is not registered; its events are dead letters "
                                f"until it is")
            elif kind != "camera":
                errors.append(f"{where} is a {kind}, not a camera")
        for zone in camera.zones:
            device = zone.device or camera.device
            fire_lane = any(m.event == "vehicle_in_fire_lane" for m in zone.events)
            if fire_lane and device in kinds and meta.get(device, {}).get("site") != "fire_lane":
                warnings.append(f"{name}: camera {camera.name!r} zone {zone.name!r}: device "
                                f"{device!r} has no meta site: fire_lane, so the fire_lane "
                                f"pack does not read it")
    return errors, warnings
