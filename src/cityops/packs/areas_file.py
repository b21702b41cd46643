"""areas.geojson: the three-level areas of a city as an RFC 7946 FeatureCollection.

Each feature is one area; `properties` holds `code`, `name`, `level`, `parent` and, for areas
imported from elsewhere, `ref` (the identifier in the source data), and where the pack has
them, `names` (the name in other languages: {"zh-CN": "陆家嘴街道"}). Features are written in the
pack's order (the generators put the district first, then towns, then villages).
"""

from __future__ import annotations

import math
from typing import Any

from cityops.domain.city import CODE_LENGTH, Area, Level
from cityops.packs.codec import decode_json, encode_json
from cityops.packs.errors import PackError

NAME = "areas.geojson"
_GEOMETRY_TYPES = ("Polygon", "MultiPolygon")


def areas_to_geojson(areas: list[Area]) -> bytes:
    features = []
    for area in areas:
        properties: dict[str, Any] = {
            "code": area.code,
            "name": area.name,
            "level": str(area.level),
            "parent": area.parent,
        }
        if area.ref:
            properties["ref"] = area.ref
        if area.names:
            properties["names"] = dict(area.names)
        features.append(
            {
                "type": "Feature",
                "id": area.code,
                "properties": properties,
                "geometry": area.geometry,
            }
        )
    return encode_json({"type": "FeatureCollection", "features": features})


def areas_from_geojson(data: bytes) -> list[Area]:
    doc = decode_json(data, NAME)
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection":
        raise PackError(f"{NAME}: must be a GeoJSON FeatureCollection")
    features = doc.get("features")
    if not isinstance(features, list):
        raise PackError(f"{NAME}: 'features' must be a list")
    return [_area_of(index, feature) for index, feature in enumerate(features)]


def _area_of(index: int, feature: Any) -> Area:
    where = f"{NAME}: feature {index}"
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        raise PackError(f"{where}: must be a GeoJSON Feature (\"type\": \"Feature\")")
    properties = feature.get("properties")
    if not isinstance(properties, dict):
        raise PackError(f"{where}: 'properties' must be an object with code, name, level, parent")

    code = properties.get("code")
    if not isinstance(code, str) or not code.isdigit() or len(code) not in (6, 9, 12):
        raise PackError(
            f"{where}: property 'code' must be a string of 6, 9 or 12 digits, got {code!r}"
        )
    where = f"{where} ({code})"
    name = properties.get("name")
    if not isinstance(name, str) or not name.strip():
        raise PackError(f"{where}: property 'name' must be a non-empty string, got {name!r}")
    try:
        level = Level(properties.get("level"))
    except ValueError:
        raise PackError(
            f"{where}: property 'level' must be one of district, town, village, "
            f"got {properties.get('level')!r}"
        ) from None
    if len(code) != CODE_LENGTH[level]:
        raise PackError(
            f"{where}: property 'code' has {len(code)} digits but a {level} code has "
            f"{CODE_LENGTH[level]}"
        )
    parent = properties.get("parent")
    if parent is not None and not isinstance(parent, str):
        raise PackError(
            f"{where}: property 'parent' must be an area code string or null, got {parent!r}"
        )
    ref = properties.get("ref", "")
    if not isinstance(ref, str):
        raise PackError(f"{where}: property 'ref' must be a string, got {ref!r}")
    names = properties.get("names", {})
    if not isinstance(names, dict) or not all(
        isinstance(k, str) and k and isinstance(v, str) and v.strip() for k, v in names.items()
    ):
        raise PackError(f"{where}: property 'names' must map a language tag to a non-empty "
                        f"name, e.g. {{\"zh-CN\": \"...\"}}, got {names!r}")
    geometry = feature.get("geometry")
    check_polygonal(geometry, where)
    return Area(code=code, name=name, level=level, parent=parent, geometry=geometry, ref=ref,
                names=names)


def check_polygonal(geometry: Any, where: str) -> None:
    """Structure and coordinate ranges; whether the polygons are valid is checked later, with
    shapely, over all areas at once."""
    if not isinstance(geometry, dict) or geometry.get("type") not in _GEOMETRY_TYPES:
        kind = geometry.get("type") if isinstance(geometry, dict) else geometry
        raise PackError(f"{where}: 'geometry' must be a Polygon or MultiPolygon, got {kind!r}")
    coordinates = geometry.get("coordinates")
    polygons = [coordinates] if geometry["type"] == "Polygon" else coordinates
    if not isinstance(polygons, list) or not polygons:
        raise PackError(f"{where}: geometry 'coordinates' must be a non-empty list")
    for polygon in polygons:
        if not isinstance(polygon, list) or not polygon:
            raise PackError(f"{where}: geometry 'coordinates': a polygon must be a list of rings")
        for ring in polygon:
            _check_ring(ring, where)


def _check_ring(ring: Any, where: str) -> None:
    if not isinstance(ring, list) or len(ring) < 4:
        raise PackError(f"{where}: geometry 'coordinates': a ring needs at least 4 positions")
    check_positions(ring, where)
    if ring[0][:2] != ring[-1][:2]:
        raise PackError(f"{where}: geometry 'coordinates': a ring must end where it starts")


def check_positions(positions: list, where: str) -> None:
    """Every position is a finite [lon, lat] on Earth (also used for the lines of zones)."""
    for position in positions:
        if (
            not isinstance(position, list)
            or len(position) < 2
            or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in position[:2])
        ):
            raise PackError(
                f"{where}: geometry 'coordinates': position {position!r} is not [lon, lat]"
            )
        lon, lat = position[0], position[1]
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise PackError(
                f"{where}: geometry 'coordinates': position [{lon}, {lat}] is outside "
                f"lon -180..180, lat -90..90 (GeoJSON is [lon, lat])"
            )
