"""A walking street network, and walking times from many service points at once.

The routing module's `StreetNetwork` holds the graph; this module fills it with what a person
on foot may use: footways, paths, pedestrian streets, steps, residential and service streets
and the main roads' sides, never motorways or ways closed to pedestrians, every way in both
directions (one-way streets bind cars, not walkers), all at one walking speed.

WALK_SPEED_MPS is 1.3 m/s (4.7 km/h). The usual adult figure is 5 km/h (1.39 m/s); the
Highway Capacity Manual (TRB, 2010) designs crossings for 1.2 m/s, and 1.0 m/s where older
pedestrians are more than a fifth of those crossing. The circle is for residents of 60 and
over who still walk to a service point, so a little under the adult figure: 900 s at 1.3 m/s
is 1,170 m of street.

One Dijkstra answers the whole city: a virtual source joined to every service point's street
node by the walk from the point to that node, run with the 900 s limit, gives every node its
walk to the nearest service point (nodes farther than the limit are left infinite, which is
also what makes it cheap).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
from scipy.sparse import csr_matrix  # type: ignore[import-untyped]
from scipy.sparse.csgraph import dijkstra  # type: ignore[import-untyped]

from cityops.routing.network import MAX_SNAP_M, StreetNetwork
from cityops.routing.osm import WayRefs, read_ways

WALK_SPEED_MPS = 1.3
WALK_SPEED_KMH = WALK_SPEED_MPS * 3.6

WALKABLE = frozenset({
    "footway", "path", "pedestrian", "steps", "living_street", "residential", "service",
    "unclassified", "road", "tertiary", "tertiary_link", "secondary", "secondary_link",
    "primary", "primary_link", "trunk", "trunk_link", "track", "cycleway",
    "bridleway",
})
_CLOSED = frozenset({"no", "private", "use_sidepath", "discouraged"})
_OPEN = frozenset({"yes", "designated", "permissive", "official", "destination"})


def is_walkable(tags: Mapping[str, str]) -> bool:
    """Whether a person may walk along the way (motorways and their links never; a way closed
    by `access` is open again when `foot` says so)."""
    if tags.get("highway") not in WALKABLE or tags.get("area") == "yes" \
            or tags.get("indoor") == "yes" or _underground(tags):
        return False
    foot = tags.get("foot")
    if foot is not None:
        return foot not in _CLOSED
    if tags.get("access") in _CLOSED:
        return False
    # a trunk road without a sidewalk or a foot tag is an expressway in most cities
    return not (tags["highway"].startswith("trunk") and tags.get("sidewalk") in (None, "no",
                                                                              "none"))


def _underground(tags: Mapping[str, str]) -> bool:
    # Passages under a station or a shopping centre lie beneath the streets on the map: a
    # home snapped onto one would walk from the middle of a tunnel (Helsinki's goods tunnel
    # under Kluuvi is a service way at layer -4). Road tunnels stay.
    below = tags.get("level", "").startswith("-") or tags.get("layer", "").startswith("-")
    return below and tags["highway"] in ("footway", "path", "steps", "pedestrian", "service")


def read_walkable_ways(path: str | os.PathLike[str]) -> WayRefs:
    """The walkable ways of an OSM PBF extract, walked both ways at the walking speed."""
    return read_ways(path, lambda tags: (WALK_SPEED_KMH, 0) if is_walkable(tags) else None,
                     missing="a walking network from OSM")


def walk_ways(node: np.ndarray, lat: np.ndarray, lon: np.ndarray, way: np.ndarray,
              way_id: np.ndarray) -> WayRefs:
    """Ways walked both ways at the walking speed."""
    n = len(way_id)
    return WayRefs(node=node, lat=lat, lon=lon, way=way, way_id=way_id,
                   speed_kmh=np.full(n, WALK_SPEED_KMH), oneway=np.zeros(n, dtype=np.int8))


class WalkTimes:
    """Walks on one network from a set of service points to many population points."""

    def __init__(self, network: StreetNetwork) -> None:
        self.network = network
        coo = network.graph.tocoo()
        self._rows, self._cols, self._data = coo.row, coo.col, coo.data

    @classmethod
    def from_pbf(cls, path: str | os.PathLike[str]) -> WalkTimes:
        return cls(StreetNetwork.from_ways(read_walkable_ways(path)))

    def snap(self, lats: np.ndarray, lons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each point's street node and its walk to it in seconds (inf beyond MAX_SNAP_M:
        a point that far from any walkable way is off the network's map)."""
        node, metres = self.network.snap(lats, lons)
        seconds = metres / WALK_SPEED_MPS
        seconds[metres > MAX_SNAP_M] = np.inf
        return node, seconds

    def node_times(self, lats: np.ndarray, lons: np.ndarray, limit_s: float) -> np.ndarray:
        """Every node's walk to the nearest of the service points (inf beyond `limit_s`)."""
        n = self.network.node_count
        node, access = self.snap(np.atleast_1d(lats), np.atleast_1d(lons))
        ok = np.isfinite(access) & (access <= limit_s)
        if not ok.any():
            return np.full(n, np.inf)
        # The virtual source n reaches each service point's node by the point's own walk to
        # the street; a millisecond keeps a zero walk an edge (sparse matrices drop zeros).
        rows = np.concatenate((self._rows, np.full(int(ok.sum()), n)))
        cols = np.concatenate((self._cols, node[ok]))
        data = np.concatenate((self._data, np.maximum(access[ok], 1e-3)))
        # two service points on one node: the quicker walk stands (a sparse matrix would add)
        graph = _min_duplicates(rows, cols, data, n + 1)
        dist = dijkstra(graph, directed=True, indices=n, limit=limit_s)
        return np.asarray(dist[:n])

    def point_times(self, node_times: np.ndarray, lats: np.ndarray, lons: np.ndarray
                    ) -> np.ndarray:
        """Each population point's walk to the nearest service point, through its own node."""
        node, access = self.snap(np.atleast_1d(lats), np.atleast_1d(lons))
        return np.asarray(node_times[node] + access)


def _min_duplicates(rows: np.ndarray, cols: np.ndarray, data: np.ndarray, n: int) -> csr_matrix:
    order = np.lexsort((data, cols, rows))
    rows, cols, data = rows[order], cols[order], data[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    return csr_matrix((data[first], (rows[first], cols[first])), shape=(n, n))
