"""GET /api/v1/areas.geojson: every area the key may see as one GeoJSON FeatureCollection.

The pages draw the city from its own polygons (no map tiles), and need all three levels at
once to drill down without a round trip per area; `/api/v1/areas/{code}` gives one polygon at
a time. Polygons are simplified to about 5-20 m (a wall screen cannot show finer), and each
feature carries a point inside it for its label.
"""

from __future__ import annotations

import weakref

import shapely
from starlette.requests import Request
from starlette.responses import Response

from cityops.api.access import principal
from cityops.api.areas import ANY_KEY
from cityops.api.errors import ApiError, json_response
from cityops.domain.access import can_see_area
from cityops.domain.geo import geometry_of, to_geojson_geometry

TOLERANCE_DEG = {"district": 2e-4, "town": 1e-4, "village": 5e-5}
_built: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # node -> features


def _features(node) -> list[dict]:
    cached = _built.get(node)
    if cached is not None:
        return cached
    out = []
    for area in node.pack.areas:
        shape = geometry_of(area)
        simple = shapely.simplify(shape, TOLERANCE_DEG.get(area.level.value, 5e-5),
                                  preserve_topology=True)
        label = shape.representative_point()
        out.append({"type": "Feature", "id": area.code,
                    "properties": {"code": area.code, "name": area.name,
                                   "level": area.level.value, "parent": area.parent or "",
                                   "label": [round(label.x, 5), round(label.y, 5)]},
                    "geometry": to_geojson_geometry(simple)})
    _built[node] = out
    return out


async def areas_geojson(request: Request) -> Response:
    node = request.app.state.node
    who = await principal(request, ANY_KEY)
    level = request.query_params.get("level")
    if level is not None and level not in TOLERANCE_DEG:
        raise ApiError(400, f"level {level!r} is not one of district, town, village")
    features = [f for f in _features(node)
                if can_see_area(who, f["id"])
                and (level is None or f["properties"]["level"] == level)]
    return json_response({"type": "FeatureCollection", "features": features},
                         headers={"Cache-Control": "private, max-age=300"})
