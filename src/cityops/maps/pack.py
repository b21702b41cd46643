"""Base-map features from the city pack itself: its areas with their names, label points for
towns and villages, and streets.

A pack carries no road or river geometry (docs/city-packs.md), so the streets drawn are the
ones the rest of CityOps already walks on for such a pack: the street grid of
`cityops.packs.care.street_grid` (streets every 150 m over the villages), which the 15-minute
care circle routes over. Arterials are added between neighbouring town centres (the edges of
their Delaunay triangulation that stay on land), so a whole-district view shows a road
network rather than a blank between towns. A real city brings its own roads with `--osm`.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import shapely
from scipy.spatial import Delaunay

from cityops.domain.city import Area, CityPack, Level
from cityops.maps.features import AREA_MINZOOM, PLACE_MINZOOM, ROAD_MINZOOM, Feature, names
from cityops.maps.tiling import project

log = logging.getLogger(__name__)


def area_names(area: Area) -> dict[str, str]:
    """The area's names; a pack that gives names in both languages (`name_en`, `name_zh`,
    or a `names` mapping by language) has both drawn, the page choosing."""
    extra: dict[str, Any] = dict(getattr(area, "names", None) or {})
    for lang in ("en", "zh"):
        value = getattr(area, f"name_{lang}", None)
        if value:
            extra[lang] = value
    zh = extra.get("zh") or extra.get("zh-CN") or extra.get("zh_CN")
    return names(area.name, en=extra.get("en"), zh=zh)


def pack_features(pack: CityPack, streets: bool = True) -> list[Feature]:
    out: list[Feature] = []
    shapes = {a.code: shapely.geometry.shape(a.geometry) for a in pack.areas}
    for area in pack.areas:
        props = {"level": area.level.value, "code": area.code, **area_names(area)}
        shape = shapes[area.code]
        out.append(Feature("areas", project(shape), AREA_MINZOOM[area.level.value], props))
        if area.level is not Level.DISTRICT:
            label = shapely.point_on_surface(shape)
            kind = area.level.value
            out.append(Feature("places", project(label), PLACE_MINZOOM[kind],
                               {"class": kind, "code": area.code, **area_names(area)}))
    if streets:
        out.extend(_street_grid(pack))
        out.extend(_arterials(pack, shapes))
    return out


def _street_grid(pack: CityPack) -> list[Feature]:
    from cityops.packs.care import street_grid

    try:
        ways = street_grid(pack)
    except ValueError as error:  # villages smaller than one block: no streets to draw
        log.info("no street grid for the base map: %s", error)
        return []
    return [Feature("roads", project(line), ROAD_MINZOOM["minor"], {"class": "minor"})
            for line in _runs(ways.node, ways.lon, ways.lat)]


def _runs(node: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> list[shapely.LineString]:
    """The grid's two-node segments joined into runs along each grid line: a segment
    continues the one before when it starts where that one ended and steps the same way
    through the grid's node numbering (one along a row, a row's length along a column).
    A street drawn as one line, not as 150 m pieces, makes tiles a tenth the size."""
    a, b = node[0::2], node[1::2]
    step = b - a
    order = np.lexsort((a, a % np.maximum(step, 1), step))
    a, b, step = a[order], b[order], step[order]
    xa, ya = lon[0::2][order], lat[0::2][order]
    xb, yb = lon[1::2][order], lat[1::2][order]
    breaks = np.ones(len(a), dtype=bool)
    breaks[1:] = (a[1:] != b[:-1]) | (step[1:] != step[:-1])
    starts = np.flatnonzero(breaks)
    ends = np.append(starts[1:], len(a))
    lines = []
    for s, e in zip(starts, ends, strict=True):
        xs = np.concatenate(([xa[s]], xb[s:e]))
        ys = np.concatenate(([ya[s]], yb[s:e]))
        lines.append(shapely.LineString(np.column_stack((xs, ys))))
    return lines


def _arterials(pack: CityPack, shapes: dict[str, shapely.Geometry]) -> list[Feature]:
    towns = [shapes[a.code] for a in pack.areas if a.level is Level.TOWN]
    if len(towns) < 3:
        return []
    land = shapely.union_all(list(towns))
    centres = np.array([[p.x, p.y] for p in shapely.point_on_surface(towns)])
    try:
        triangles = Delaunay(centres).simplices
    except Exception:  # noqa: BLE001 - centres in a line: no triangulation, no arterials
        return []
    edges = {tuple(sorted((int(a), int(b)))) for t in triangles
             for a, b in ((t[0], t[1]), (t[1], t[2]), (t[0], t[2]))}
    out = []
    for a, b in sorted(edges):
        line = shapely.LineString([centres[a], centres[b]])
        # An edge across the water of a concave coast is no road.
        if shapely.covers(land.buffer(1e-4), line):
            out.append(Feature("roads", project(line), ROAD_MINZOOM["primary"],
                               {"class": "primary"}))
    return out
