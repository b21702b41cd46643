"""zones.geojson: the named places scenario rules refer to, as an RFC 7946 FeatureCollection.

Each feature is one zone; `properties` holds `id`, `kind` (muck_forbidden, muck_route,
fire_lane ...), `name` and `meta` (e.g. `{"hours": "07:00-22:00"}`, `{"vehicles": [...]}`).
Zones are polygons, or lines for routes. Features are written in the pack's order.
"""

from __future__ import annotations

from typing import Any

from cityops.domain.city import Zone
from cityops.packs.areas_file import check_polygonal, check_positions
from cityops.packs.codec import decode_json, encode_json
from cityops.packs.errors import PackError

NAME = "zones.geojson"
POLYGONAL = ("Polygon", "MultiPolygon")
LINEAR = ("LineString", "MultiLineString")
PROPERTIES = ("id", "kind", "name", "meta")


def zones_to_geojson(zones: list[Zone]) -> bytes:
    features = [
        {
            "type": "Feature",
            "id": zone.id,
            "properties": {"id": zone.id, "kind": zone.kind, "name": zone.name,
                           "meta": zone.meta},
            "geometry": zone.geometry,
        }
        for zone in zones
    ]
    return encode_json({"type": "FeatureCollection", "features": features})


def zones_from_geojson(data: bytes) -> list[Zone]:
    doc = decode_json(data, NAME)
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise PackError(f"{NAME}: must be a GeoJSON FeatureCollection")
    features = doc.get("features")
    if not isinstance(features, list):
        raise PackError(f"{NAME}: 'features' must be a list")
    return [_zone_of(index, feature) for index, feature in enumerate(features)]


def _zone_of(index: int, feature: Any) -> Zone:
    where = f"{NAME}: feature {index}"
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise PackError(f"{where}: must be a GeoJSON Feature (\"type\": \"Feature\")")
    properties = feature.get("properties")
    if not isinstance(properties, dict):
        raise PackError(f"{where}: 'properties' must be an object with id, kind, name, meta")
    zone_id = properties.get("id")
    if not isinstance(zone_id, str) or not zone_id.strip():
        raise PackError(f"{where}: property 'id' must be a non-empty string, got {zone_id!r}")
    where = f"{where} ({zone_id})"
    unknown = sorted(str(key) for key in properties if key not in PROPERTIES)
    if unknown:
        # A misspelt "meta" would otherwise drop the zone's hours or vehicles without a word.
        raise PackError(
            f"{where}: unknown property '{unknown[0]}' (properties: {', '.join(PROPERTIES)})"
        )
    kind = properties.get("kind")
    if not isinstance(kind, str) or not kind:
        raise PackError(f"{where}: property 'kind' must be a string like muck_forbidden, "
                        f"got {kind!r}")
    name = properties.get("name", "")
    if not isinstance(name, str):
        raise PackError(f"{where}: property 'name' must be a string, got {name!r}")
    meta = properties.get("meta", {})
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise PackError(f"{where}: property 'meta' must be an object, got {meta!r}")
    geometry = feature.get("geometry")
    check_zone_geometry(geometry, where)
    return Zone(id=zone_id, kind=kind, name=name, geometry=geometry, meta=meta)


def check_zone_geometry(geometry: Any, where: str) -> None:
    kind = geometry.get("type") if isinstance(geometry, dict) else geometry
    if kind in POLYGONAL:
        check_polygonal(geometry, where)
        return
    if kind not in LINEAR:
        raise PackError(
            f"{where}: 'geometry' must be a Polygon, MultiPolygon, LineString or "
            f"MultiLineString, got {kind!r}"
        )
    coordinates = geometry.get("coordinates")
    lines = [coordinates] if kind == "LineString" else coordinates
    if not isinstance(lines, list) or not lines:
        raise PackError(f"{where}: geometry 'coordinates' must be a non-empty list")
    for line in lines:
        if not isinstance(line, list) or len(line) < 2:
            raise PackError(f"{where}: geometry 'coordinates': a line needs at least 2 positions")
        check_positions(line, where)
