"""What goes into the tiles: features by layer, each with the first zoom it is drawn at.

The layers and their `class` values are the contract between the builder and the style
(`cityops.maps.style`): the pack and an OSM extract both write into the same layers, so one
style draws a synthetic city and a real one alike.

- `areas`: the pack's districts, towns and villages (polygons; `level`, `code`, names)
- `places`: label points of towns, villages, suburbs (`class`, names)
- `roads`: lines with `class` motorway, trunk, primary, secondary, tertiary, minor, service,
  path, rail (names where the data has them)
- `water`: lakes, docks, riverbanks (polygons); `waterways`: rivers, canals, streams (lines)
- `parks`: parks, woods, grass (polygons); `buildings`: footprints, at the top zoom only
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import shapely

LAYERS = ("areas", "water", "parks", "waterways", "roads", "buildings", "places")

# The first zoom at which a road of each class is drawn: a whole city at 9 shows its
# arterials, a neighbourhood at 13 every street.
ROAD_MINZOOM = {"motorway": 8, "trunk": 8, "primary": 9, "secondary": 10, "tertiary": 11,
                "rail": 11, "minor": 12, "service": 13, "path": 14}
PLACE_MINZOOM = {"city": 8, "district": 8, "town": 9, "suburb": 11, "village": 11,
                 "quarter": 12, "neighbourhood": 13, "hamlet": 13}
AREA_MINZOOM = {"district": 8, "town": 8, "village": 11}


@dataclass(slots=True)
class Feature:
    layer: str
    geometry: shapely.Geometry  # Web Mercator metres
    minzoom: int
    properties: dict[str, Any] = field(default_factory=dict)


def names(name: str | None, **others: str | None) -> dict[str, str]:
    """A feature's name properties, the empty ones left out (MVT has no null): `name` as the
    data gives it, `name_en`, `name_zh` where known; the style picks one by language."""
    out = {"name": name} if name else {}
    out.update({f"name_{lang}": value for lang, value in others.items() if value})
    return out


def bounds_of(features: Iterable[Feature]) -> tuple[float, float, float, float] | None:
    geoms = [f.geometry for f in features]
    if not geoms:
        return None
    box = shapely.total_bounds(geoms)
    return float(box[0]), float(box[1]), float(box[2]), float(box[3])
