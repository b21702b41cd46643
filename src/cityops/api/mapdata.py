"""GET /api/v1/areas.geojson: every area the key may see as one GeoJSON FeatureCollection.

The pages draw the city from its own polygons (no map tiles), and need all three levels at
once to drill down without a round trip per area; `/api/v1/areas/{code}` gives one polygon at
a time. Polygons are simplified to about 5-20 m (a wall screen cannot show finer), and each
feature carries a point inside it for its label, and its name in the pack's other languages
(`names`).

GET /api/v1/names: the rest of what a page names in the person's language: the city, and its
departments and case categories, each with `name` and `names` ({"zh-CN": ...}; empty where the
pack has no translation). The categories are the city's and those the scenario packs raise that
the city's table lacks, named as the pack names them (their cases are filed under those names).
None of it is scoped: a key sees every department's name as it sees the categories.
"""

from __future__ import annotations

import weakref
from typing import Any, Literal

import msgspec
import shapely

from cityops.api.areas import ANY_KEY, Level
from cityops.api.route import Call, Endpoint, Reply, Scope
from cityops.domain.access import can_see_area
from cityops.domain.geo import geometry_of, to_geojson_geometry

TOLERANCE_DEG = {"district": 2e-4, "town": 1e-4, "village": 5e-5}
_built: weakref.WeakKeyDictionary[Any, list[Feature]] = weakref.WeakKeyDictionary()


class Properties(msgspec.Struct):
    code: str
    name: str
    level: Level
    parent: str
    label: list[float]  # [lon, lat] of a point inside the area
    names: dict[str, str] = {}  # the name in other languages, by language tag


class Feature(msgspec.Struct):
    type: Literal["Feature"]
    id: str
    properties: Properties
    geometry: dict[str, Any]


class FeatureCollection(msgspec.Struct):
    type: Literal["FeatureCollection"]
    features: list[Feature]


class MapQuery(msgspec.Struct, forbid_unknown_fields=False):
    level: Level | None = None


def _features(node: Any) -> list[Feature]:
    cached = _built.get(node)
    if cached is not None:
        return cached
    out = []
    for area in node.pack.areas:
        shape = geometry_of(area)
        simple = shapely.simplify(shape, TOLERANCE_DEG.get(area.level.value, 5e-5),
                                  preserve_topology=True)
        label = shape.representative_point()
        out.append(Feature("Feature", area.code,
                           Properties(area.code, area.name, area.level.value, area.parent or "",
                                      [round(label.x, 5), round(label.y, 5)], dict(area.names)),
                           to_geojson_geometry(simple)))
    _built[node] = out
    return out


async def areas_geojson(call: Call[None, MapQuery]) -> Reply:
    who, level = call.principal, call.query.level
    features = [f for f in _features(call.node)
                if can_see_area(who, f.id) and (level is None or f.properties.level == level)]
    return Reply(FeatureCollection("FeatureCollection", features),
                 headers={"Cache-Control": "private, max-age=300"})


class Named(msgspec.Struct):
    code: str
    name: str
    names: dict[str, str]


class CityName(msgspec.Struct):
    name: str
    names: dict[str, str]


class Names(msgspec.Struct):
    city: CityName
    departments: list[Named]
    categories: list[Named]


def _categories(node: Any) -> list[Named]:
    out = {c.code: Named(c.code, c.name, dict(c.names)) for c in node.pack.categories}
    for scenario in node.detect.scenarios if node.detect is not None else ():
        c = scenario.category
        out.setdefault(c.code, Named(c.code, c.name, dict(c.names)))
    return list(out.values())


async def names(call: Call[None, Any]) -> Reply:
    pack = call.node.pack
    return Reply(Names(CityName(pack.info.name, dict(pack.info.names)),
                       [Named(d.code, d.name, dict(d.names)) for d in pack.departments],
                       _categories(call.node)),
                 headers={"Cache-Control": "private, max-age=300"})


ROUTES = [
    Endpoint("GET", "/api/v1/areas.geojson", areas_geojson,
             "Every area the key may see as one GeoJSON FeatureCollection, simplified",
             ANY_KEY, Scope.NONE, query=MapQuery, response=FeatureCollection),
    Endpoint("GET", "/api/v1/names", names,
             "The city's, its departments' and its case categories' names in every language "
             "the pack has", ANY_KEY, Scope.NONE, response=Names),
]
