"""Base-map features from an OpenStreetMap extract (.osm.pbf): roads by class, rail, rivers
and water, parks, buildings and place names.

pyosmium streams the file, as `cityops.routing.osm` does for the street network, resolving
node locations on the way; areas (closed ways and multipolygon relations) are assembled by
osmium itself, so a lake made of many ways arrives as one polygon. Only objects with one of
the keys below are looked at: the rest of the file is decoded but never turned into Python.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import shapely

from cityops.maps.features import PLACE_MINZOOM, ROAD_MINZOOM, Feature, names
from cityops.maps.tiling import project


class OsmError(Exception):
    """The extract could not be read (missing, not a PBF, truncated)."""


KEYS = ("highway", "railway", "waterway", "natural", "landuse", "leisure", "building",
        "place", "water")

ROAD_CLASS = {
    "motorway": "motorway", "motorway_link": "motorway", "trunk": "trunk",
    "trunk_link": "trunk", "primary": "primary", "primary_link": "primary",
    "secondary": "secondary", "secondary_link": "secondary", "tertiary": "tertiary",
    "tertiary_link": "tertiary", "residential": "minor", "unclassified": "minor",
    "living_street": "minor", "road": "minor", "busway": "minor", "service": "service",
    "pedestrian": "path", "footway": "path", "path": "path", "cycleway": "path",
    "steps": "path", "track": "path",
}
RAIL = {"rail", "subway", "light_rail", "tram", "narrow_gauge", "monorail"}
WATERWAY_MINZOOM = {"river": 9, "canal": 10, "stream": 13, "drain": 14, "ditch": 14}
WATER_AREA = {("natural", "water"), ("waterway", "riverbank"), ("waterway", "dock"),
              ("landuse", "reservoir"), ("landuse", "basin")}
PARK_AREA = {("leisure", "park"), ("leisure", "garden"), ("leisure", "nature_reserve"),
             ("landuse", "grass"), ("landuse", "forest"), ("landuse", "meadow"),
             ("landuse", "recreation_ground"), ("landuse", "cemetery"), ("natural", "wood"),
             ("natural", "scrub")}


def _names(tags: Any) -> dict[str, str]:
    return names(tags.get("name"), en=tags.get("name:en"),
                 zh=tags.get("name:zh") or tags.get("name:zh-Hans"))


def _is(tags: Any, pairs: set[tuple[str, str]]) -> bool:
    return any(tags.get(k) == v for k, v in pairs)


def _line(way: Any) -> shapely.Geometry | None:
    # A clipped extract leaves the nodes beyond its edge without a location: keep the rest.
    coords = [(n.lon, n.lat) for n in way.nodes if n.location.valid()]
    return shapely.LineString(coords) if len(coords) >= 2 else None


def read_osm(path: str | os.PathLike[str], buildings: bool = True,
             progress: Callable[[int], None] | None = None) -> Iterator[Feature]:
    """The extract's features, projected. `progress(n)` is told every 10,000 objects."""
    try:
        import osmium
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise OsmError("reading OSM needs the 'routing' extra: pip install "
                       "'cityops[routing]'") from exc
    if not os.path.isfile(path):
        raise OsmError(f"{os.fspath(path)}: no such file")
    wkb = osmium.geom.WKBFactory()
    seen = 0
    try:
        processor = (osmium.FileProcessor(os.fspath(path))
                     .with_areas(osmium.filter.KeyFilter(*KEYS))
                     .with_filter(osmium.filter.KeyFilter(*KEYS)))
        for obj in processor:
            seen += 1
            if progress is not None and seen % 10_000 == 0:
                progress(seen)
            if obj.is_node():
                yield from _place(obj)
            elif obj.is_way():
                yield from _way(obj)
            elif obj.is_area():
                yield from _area(obj, wkb, buildings)
    except (RuntimeError, OSError) as error:
        # libosmium's own message says what is wrong with the file (bad header, truncated).
        raise OsmError(f"{os.fspath(path)} is not a readable OSM PBF extract: {error}") from None


def _place(node: Any) -> Iterator[Feature]:
    tags = node.tags
    kind = tags.get("place")
    if kind not in PLACE_MINZOOM or not tags.get("name") or not node.location.valid():
        return
    point = shapely.Point(node.location.lon, node.location.lat)
    yield Feature("places", project(point), PLACE_MINZOOM[kind],
                  {"class": kind, **_names(tags)})


def _way(way: Any) -> Iterator[Feature]:
    tags = way.tags
    highway = tags.get("highway")
    if highway in ROAD_CLASS:
        cls = ROAD_CLASS[highway]
    elif tags.get("railway") in RAIL and tags.get("service") is None:
        cls = "rail"
    else:
        cls = None
    if cls is not None:
        line = _line(way)
        if line is not None:
            props = {"class": cls, **_names(tags)}
            if tags.get("bridge") not in (None, "no"):
                props["bridge"] = 1
            if tags.get("tunnel") not in (None, "no"):
                props["tunnel"] = 1
            yield Feature("roads", project(line), ROAD_MINZOOM[cls], props)
        return
    waterway = tags.get("waterway")
    if waterway in WATERWAY_MINZOOM:
        line = _line(way)
        if line is not None:
            yield Feature("waterways", project(line), WATERWAY_MINZOOM[waterway],
                          {"class": waterway, **_names(tags)})


def _area(area: Any, wkb: Any, buildings: bool) -> Iterator[Feature]:
    tags = area.tags
    if _is(tags, WATER_AREA) or tags.get("water"):
        layer, minzoom, props = "water", 8, {}
    elif _is(tags, PARK_AREA):
        layer, minzoom, props = "parks", 11, {"class": tags.get("leisure")
                                              or tags.get("landuse") or tags.get("natural")}
    elif buildings and tags.get("building") not in (None, "no"):
        layer, minzoom, props = "buildings", 14, {}
    else:
        return
    try:
        shape = shapely.from_wkb(bytes.fromhex(wkb.create_multipolygon(area)))
    except RuntimeError:  # a broken multipolygon in the data: leave it out
        return
    if shape.is_empty:
        return
    if layer != "buildings":
        props.update(_names(tags))
    yield Feature(layer, project(shape), minzoom, props)
