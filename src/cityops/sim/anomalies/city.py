"""The city as the anomaly plan needs it: which devices a rule reads (the same selection the
evaluators make: kind, channel, `where`), their cells and areas, the zones and routes movers are
held to, and distances in metres."""

from __future__ import annotations

import math
from functools import cached_property
from typing import Any

import h3
import numpy as np
import shapely
from shapely.geometry import shape

from cityops.domain.calendar import LocalClock
from cityops.domain.city import AreaCodes, CityPack, Device, DeviceKind, Zone
from cityops.domain.kinds import BUILTIN_KINDS
from cityops.domain.scenarios import spec

EARTH_RADIUS_M = 6_371_008.8


def meta_matches(meta: dict[str, Any], wanted: dict[str, str | list[str]]) -> bool:
    """Device meta against a rule's `where.meta` (values compared as text)."""
    for key, allowed in wanted.items():
        if key not in meta:
            return False
        value = str(meta[key])
        if (value != allowed) if isinstance(allowed, str) else (value not in allowed):
            return False
    return True


class CityView:
    def __init__(self, pack: CityPack, kinds: dict[str, DeviceKind] | None = None) -> None:
        self.pack = pack
        self.kinds = {**BUILTIN_KINDS, **pack.kinds, **(kinds or {})}
        self.devices = [d for d in pack.devices if d.kind in self.kinds]
        self.by_id = {d.id: d for d in self.devices}
        self.by_kind: dict[str, list[Device]] = {}
        for device in self.devices:
            self.by_kind.setdefault(device.kind, []).append(device)
        self.roles: dict[str, str] = {s.device_id: "staff" for s in pack.staff}
        self.roles.update((v.device_id, v.role) for v in pack.vehicles)
        self.clock = LocalClock(pack.info.timezone, pack.calendar)
        lat0, lon0 = pack.info.center
        self._lat0, self._lon0 = lat0, lon0
        self._kx = math.radians(1.0) * EARTH_RADIUS_M * math.cos(math.radians(lat0))
        self._ky = math.radians(1.0) * EARTH_RADIUS_M

    # -- selection -----------------------------------------------------------------------

    def selected(self, rule: spec.Rule, *, default_kind: str | None = None) -> list[Device]:
        """Devices a rule reads, in pack order."""
        kind = rule.kind or default_kind
        pool = self.by_kind.get(kind, []) if kind else self.devices
        channel = rule.channel
        out = []
        for device in pool:
            if channel is not None and channel not in self.channel_names(device.kind):
                continue
            if rule.where is not None and not self.where_holds(rule.where, device):
                continue
            out.append(device)
        return out

    def where_holds(self, where: spec.Where, device: Device) -> bool:
        if where.role is not None and self.roles.get(device.id) != where.role:
            return False
        if where.meta and not meta_matches(device.meta, where.meta):
            return False
        if where.areas:
            codes = self.areas_of(device)
            if codes is None or not any(codes.village.startswith(a) for a in where.areas):
                return False
        return True

    def channel_names(self, kind: str) -> list[str]:
        return [c.name for c in self.kinds[kind].channels]

    def channel_index(self, kind: str, channel: str | None) -> int:
        return 0 if channel is None else self.channel_names(kind).index(channel)

    # -- places --------------------------------------------------------------------------

    def cell(self, device: Device) -> str:
        return device.cell or h3.latlng_to_cell(device.lat, device.lon,
                                                self.pack.info.h3_resolution)

    def areas_of(self, device: Device) -> AreaCodes | None:
        if device.areas is not None:
            return device.areas
        return self._resolved.get(device.id)

    @cached_property
    def _resolved(self) -> dict[str, AreaCodes | None]:
        # Pack devices are resolved to areas when a node registers them; rules asking for
        # areas before that need the same answer, so resolve them all once.
        from cityops.domain.geo import CityMap

        city = CityMap.from_pack(self.pack)
        devices = self.devices
        places = city.resolve_many([d.lat for d in devices], [d.lon for d in devices])
        return {d.id: p for d, p in zip(devices, places, strict=True)}

    def group_key(self, device: Device, per: str) -> str | None:
        """The subject of a window aggregate `per` cell / village / town / district."""
        if per == "device":
            return device.id
        if per == "cell":
            return f"cell:{self.cell(device)}"
        codes = self.areas_of(device)
        if codes is None:
            return None
        return f"area:{getattr(codes, per)}"

    # -- zones and routes ----------------------------------------------------------------

    def zones(self, kind: str) -> list[Zone]:
        return [z for z in self.pack.zones if z.kind == kind]

    def geometry(self, zone: Zone) -> shapely.Geometry:
        return self._geometries.setdefault(zone.id, shape(zone.geometry))

    @cached_property
    def _geometries(self) -> dict[str, shapely.Geometry]:
        return {}

    def routes_of(self, device_id: str, kind: str) -> list[Zone]:
        """The routes a vehicle is held to: those listing it, else every route of the kind."""
        routes = self.zones(kind)
        mine = [r for r in routes if device_id in (r.meta.get("vehicles") or [])]
        return mine or routes

    # -- metres --------------------------------------------------------------------------

    def to_xy(self, lat, lon) -> tuple[np.ndarray, np.ndarray]:
        return ((np.asarray(lon) - self._lon0) * self._kx,
                (np.asarray(lat) - self._lat0) * self._ky)

    def to_latlon(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        return (np.asarray(y) / self._ky + self._lat0, np.asarray(x) / self._kx + self._lon0)

    def distance_m(self, a: Device, b: Device) -> float:
        ax, ay = self.to_xy(a.lat, a.lon)
        bx, by = self.to_xy(b.lat, b.lon)
        return float(np.hypot(ax - bx, ay - by))

    def line_xy(self, zone: Zone) -> shapely.LineString:
        """A route as one line in metres (the longest part of a MultiLineString)."""
        geometry = self.geometry(zone)
        parts = list(geometry.geoms) if hasattr(geometry, "geoms") else [geometry]
        line = max(parts, key=lambda g: g.length)
        lon, lat = np.asarray(line.coords)[:, 0], np.asarray(line.coords)[:, 1]
        x, y = self.to_xy(lat, lon)
        return shapely.LineString(np.column_stack([x, y]))

    def route_xy(self, zone: Zone) -> shapely.Geometry:
        """A route as the rule measures it, every part of it, in metres."""
        return shapely.transform(self.geometry(zone), lambda c: np.column_stack(
            self.to_xy(c[:, 1], c[:, 0])))

    def polygon_xy(self, zone: Zone) -> shapely.Geometry:
        geometry = self.geometry(zone)
        return shapely.transform(geometry, lambda c: np.column_stack(
            self.to_xy(c[:, 1], c[:, 0])))
