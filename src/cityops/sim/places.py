"""Where things are in a city pack, as the simulator needs it: a bounding box, area centroids,
points inside areas, and the local clock."""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass

import msgspec
import numpy as np

from cityops.domain.city import Area, CityPack, Level

EARTH_RADIUS_M = 6_371_000.0


class BBox(msgspec.Struct, frozen=True):
    south: float
    west: float
    north: float
    east: float

    def contains(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        return (lat >= self.south) & (lat <= self.north) & (lon >= self.west) & (lon <= self.east)


def _rings(geometry: dict) -> Iterable[list]:
    """Outer rings of a Polygon or MultiPolygon (holes do not move a centroid much)."""
    kind = geometry.get("type")
    coords = geometry.get("coordinates") or []
    if kind == "Polygon" and coords:
        yield coords[0]
    elif kind == "MultiPolygon":
        for polygon in coords:
            if polygon:
                yield polygon[0]


def ring_array(area: Area) -> np.ndarray:
    """The largest outer ring of an area as an (n, 2) array of (lon, lat)."""
    best = np.empty((0, 2))
    for ring in _rings(area.geometry):
        points = np.asarray(ring, dtype=np.float64)[:, :2]
        if len(points) > len(best):
            best = points
    return best


def centroid(ring: np.ndarray) -> tuple[float, float]:
    """(lat, lon) of the area-weighted centroid of a ring; the vertex mean if it is degenerate."""
    x, y = ring[:, 0], ring[:, 1]
    x1, y1 = np.roll(x, -1), np.roll(y, -1)
    cross = x * y1 - x1 * y
    area2 = cross.sum()
    if abs(area2) < 1e-18:
        return float(y.mean()), float(x.mean())
    cx = ((x + x1) * cross).sum() / (3.0 * area2)
    cy = ((y + y1) * cross).sum() / (3.0 * area2)
    return float(cy), float(cx)


def city_bbox(pack: CityPack) -> BBox:
    """The bounding box of all area polygons, or of the devices when the pack has no areas."""
    lats: list[np.ndarray] = []
    lons: list[np.ndarray] = []
    for area in pack.areas:
        for ring in _rings(area.geometry):
            points = np.asarray(ring, dtype=np.float64)[:, :2]
            lons.append(points[:, 0])
            lats.append(points[:, 1])
    if not lats:
        lats = [np.array([d.lat for d in pack.devices])]
        lons = [np.array([d.lon for d in pack.devices])]
    lat = np.concatenate(lats) if lats else np.array([])
    lon = np.concatenate(lons) if lons else np.array([])
    if lat.size == 0:
        c_lat, c_lon = pack.info.center
        return BBox(c_lat - 0.05, c_lon - 0.05, c_lat + 0.05, c_lon + 0.05)
    return BBox(float(lat.min()), float(lon.min()), float(lat.max()), float(lon.max()))


@dataclass(frozen=True, slots=True)
class Place:
    code: str
    lat: float
    lon: float
    ring: np.ndarray  # (n, 2) lon, lat


def finest_places(pack: CityPack) -> list[Place]:
    """Areas at the finest level present (villages, else towns, else the district)."""
    by_level: dict[Level, list[Area]] = {}
    for area in pack.areas:
        by_level.setdefault(area.level, []).append(area)
    for level in (Level.VILLAGE, Level.TOWN, Level.DISTRICT):
        places = []
        for area in by_level.get(level, []):
            ring = ring_array(area)
            if len(ring) >= 3:
                lat, lon = centroid(ring)
                places.append(Place(area.code, lat, lon, ring))
        if places:
            return places
    return []


def point_in_place(place: Place, u1: float, u2: float, u3: float) -> tuple[float, float]:
    """A point in the triangle fan between the centroid and one boundary edge, drawn from three
    uniforms: inside any area that is star-shaped about its centroid, as city blocks are."""
    edges = len(place.ring) - 1
    i = min(int(u1 * edges), edges - 1)
    a, b = place.ring[i], place.ring[i + 1]
    edge_lon = a[0] + u3 * (b[0] - a[0])
    edge_lat = a[1] + u3 * (b[1] - a[1])
    r = 0.9 * np.sqrt(u2)  # sqrt: uniform over the triangle's area, not bunched at the centre
    return place.lat + r * (edge_lat - place.lat), place.lon + r * (edge_lon - place.lon)


def distance_m(lat0: float, lon0: float, lat1: float, lon1: float) -> float:
    p0, p1 = math.radians(lat0), math.radians(lat1)
    dp, dl = p1 - p0, math.radians(lon1 - lon0)
    a = math.sin(dp / 2) ** 2 + math.cos(p0) * math.cos(p1) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def bearing_deg(lat0: float, lon0: float, lat1: float, lon1: float) -> float:
    p0, p1 = math.radians(lat0), math.radians(lat1)
    dl = math.radians(lon1 - lon0)
    y = math.sin(dl) * math.cos(p1)
    x = math.cos(p0) * math.sin(p1) - math.sin(p0) * math.cos(p1) * math.cos(dl)
    return math.degrees(math.atan2(y, x)) % 360.0


class LocalClock:
    """Local time of day in the city's zone. The offset is looked up once per batch, which is
    exact except across a DST change inside one batch (a fraction of a second)."""

    def __init__(self, timezone: str, center_lon: float) -> None:
        try:
            self._zone: dt.tzinfo | None = zoneinfo.ZoneInfo(timezone) if timezone else None
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            self._zone = None
        # Without a known zone, solar time from the longitude is the honest guess.
        self._fallback = round(center_lon / 15.0) * 3600.0

    def offset_s(self, ts: float) -> float:
        if self._zone is None:
            return self._fallback
        offset = dt.datetime.fromtimestamp(ts, self._zone).utcoffset()
        return offset.total_seconds() if offset is not None else self._fallback
