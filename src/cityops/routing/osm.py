"""Reading the drivable ways of an OSM PBF extract into flat arrays.

pyosmium (the `osmium` package) does the decoding: one small wheel around libosmium, where
pyrosm would pull in geopandas, pandas and pyproj only to hand back data frames we would turn
into arrays again. Locations are resolved by osmium while streaming, so a way arrives with the
coordinates of its nodes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cityops.routing.tags import is_drivable, oneway, speed_kmh


@dataclass(frozen=True, slots=True)
class WayRefs:
    """Every node reference of every kept way, in way order, plus per-way attributes.

    `way[i]` says which way reference i belongs to; consecutive references of the same way
    form a street segment. A node outside a clipped extract has NaN coordinates.
    """

    node: np.ndarray  # int64 OSM node id per reference
    lat: np.ndarray
    lon: np.ndarray
    way: np.ndarray  # int64 index into the per-way arrays
    way_id: np.ndarray  # int64 OSM way id per way
    speed_kmh: np.ndarray  # per way
    oneway: np.ndarray  # int8 per way: +1, -1 or 0 (see tags.oneway)


def read_drivable_ways(path: str | os.PathLike[str]) -> WayRefs:
    return read_ways(path, _driving)


def _driving(tags: dict[str, str]) -> tuple[float, int] | None:
    direction = oneway(tags)
    if direction is None or not is_drivable(tags):
        return None
    return speed_kmh(tags), direction


def read_ways(path: str | os.PathLike[str],
              rule: Callable[[dict[str, str]], tuple[float, int] | None],
              missing: str = "street routing") -> WayRefs:
    """The ways of an OSM PBF extract that `rule` keeps, as flat arrays: `rule(tags)` gives
    the way's speed (km/h) and direction (+1, -1 or 0 for both), or None to leave it out."""
    try:
        import osmium
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError(f"{missing} needs the 'routing' extra: "
                          "pip install 'cityops[routing]'") from exc

    nodes: list[int] = []
    lats: list[float] = []
    lons: list[float] = []
    way_of_ref: list[int] = []
    way_ids: list[int] = []
    speeds: list[float] = []
    directions: list[int] = []
    processor = (osmium.FileProcessor(os.fspath(path), osmium.osm.NODE | osmium.osm.WAY)
                 .with_locations()
                 .with_filter(osmium.filter.KeyFilter("highway")))
    for obj in processor:
        if not obj.is_way():
            continue
        kept = rule({t.k: t.v for t in obj.tags})
        if kept is None:
            continue
        w = len(way_ids)
        way_ids.append(obj.id)
        speeds.append(kept[0])
        directions.append(kept[1])
        for ref in obj.nodes:
            nodes.append(ref.ref)
            way_of_ref.append(w)
            ok = ref.location.valid()
            lats.append(ref.location.lat if ok else np.nan)
            lons.append(ref.location.lon if ok else np.nan)
    return WayRefs(node=np.asarray(nodes, dtype=np.int64), lat=np.asarray(lats, dtype=float),
                   lon=np.asarray(lons, dtype=float), way=np.asarray(way_of_ref, dtype=np.int64),
                   way_id=np.asarray(way_ids, dtype=np.int64),
                   speed_kmh=np.asarray(speeds, dtype=float),
                   oneway=np.asarray(directions, dtype=np.int8))
