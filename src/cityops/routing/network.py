"""A drivable street graph with travel times on its edges.

Nodes are the OSM nodes of drivable ways; an edge joins consecutive nodes of a way in each
direction the way may be driven, weighted by length / speed. Points are snapped to the
nearest node (a KD-tree over unit-sphere vectors, so no map projection is needed), and one
Dijkstra run answers a whole batch: from one origin to many destinations on the graph, or from
many people to one target on the reversed graph.
"""

from __future__ import annotations

import os

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree

from cityops.domain.nearest import EARTH_RADIUS_M, haversine_m
from cityops.routing.osm import WayRefs, read_drivable_ways

# The leg between a position and the street it snapped to is walked: the dot is usually a
# person a few metres off the kerb, and walking is the slowest honest guess for the rest.
ACCESS_SPEED_MPS = 5 / 3.6

# Farther than this from any drivable street a point is taken to be outside the extract's
# coverage (or in a park, or on the water), where a walking leg would be a guess: unreachable.
MAX_SNAP_M = 500.0

# Two nodes at the same coordinates give a zero weight, and a stored zero in a sparse matrix is
# read as "no edge" by any operation that prunes zeros; a millisecond keeps the edge and
# changes no ranking.
_MIN_EDGE_S = 1e-3


def _unit_vectors(lat, lon) -> np.ndarray:
    phi, lam = np.radians(lat), np.radians(lon)
    return np.column_stack((np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)))


def _directed_segments(ways: WayRefs):
    """Each drivable direction of each segment between consecutive located nodes of a way, as
    (from ref, to ref, seconds, metres per second)."""
    same_way = ways.way[:-1] == ways.way[1:]
    located = np.isfinite(ways.lat) & np.isfinite(ways.lon)
    moves = ways.node[:-1] != ways.node[1:]  # a node repeated in a row is no segment
    a = np.flatnonzero(same_way & located[:-1] & located[1:] & moves)
    b = a + 1
    if len(a) == 0:
        raise ValueError("the extract holds no drivable street segment")
    length = haversine_m(ways.lat[a], ways.lon[a], ways.lat[b], ways.lon[b])
    speed = ways.speed_kmh[ways.way[a]] / 3.6
    direction = ways.oneway[ways.way[a]]
    fwd, back = direction >= 0, direction <= 0
    seconds = np.maximum(length / speed, _MIN_EDGE_S)
    def both(x, y):
        return np.concatenate((x[fwd], y[back]))

    return both(a, b), both(b, a), both(seconds, seconds), both(speed, speed)


class StreetNetwork:
    def __init__(self, node_ids: np.ndarray, lat: np.ndarray, lon: np.ndarray,
                 src: np.ndarray, dst: np.ndarray, seconds: np.ndarray,
                 max_speed_mps: float) -> None:
        n = len(node_ids)
        self.node_ids, self.lat, self.lon = node_ids, lat, lon
        self.max_speed_mps = max_speed_mps
        self.graph = csr_matrix((seconds, (src, dst)), shape=(n, n))
        self.reversed_graph = self.graph.T.tocsr()
        self._tree = cKDTree(_unit_vectors(lat, lon))

    @classmethod
    def from_pbf(cls, path: str | os.PathLike[str]) -> StreetNetwork:
        return cls.from_ways(read_drivable_ways(path))

    @classmethod
    def from_ways(cls, ways: WayRefs) -> StreetNetwork:
        """Builds the graph, keeping only its largest strongly connected part: a clipped extract
        leaves dead-end fragments at its edge, and a person snapped onto one would look
        unreachable, or a target there would trap every route."""
        src_ref, dst_ref, seconds, speed = _directed_segments(ways)
        node_ids, first_ref, inverse = np.unique(ways.node, return_index=True, return_inverse=True)
        src, dst = inverse[src_ref], inverse[dst_ref]
        # two ways may share a pair of consecutive nodes; a sparse matrix would add their times,
        # so only the quicker of them is kept
        order = np.lexsort((seconds, dst, src))
        src, dst, seconds, speed = src[order], dst[order], seconds[order], speed[order]
        first = np.ones(len(src), dtype=bool)
        first[1:] = (src[1:] != src[:-1]) | (dst[1:] != dst[:-1])
        src, dst, seconds, speed = src[first], dst[first], seconds[first], speed[first]

        n = len(node_ids)
        _, label = connected_components(csr_matrix((seconds, (src, dst)), shape=(n, n)),
                                        directed=True, connection="strong")
        keep = label == np.bincount(label).argmax()
        new_index = np.cumsum(keep) - 1
        kept = keep[src] & keep[dst]
        return cls(node_ids[keep], ways.lat[first_ref][keep], ways.lon[first_ref][keep],
                   new_index[src[kept]], new_index[dst[kept]], seconds[kept],
                   float(speed[kept].max()))

    @property
    def node_count(self) -> int:
        return len(self.node_ids)

    @property
    def edge_count(self) -> int:
        return self.graph.nnz

    def snap(self, lats, lons) -> tuple[np.ndarray, np.ndarray]:
        """The nearest graph node to each point and the great-circle distance to it."""
        chord, node = self._tree.query(_unit_vectors(np.atleast_1d(lats), np.atleast_1d(lons)))
        return node, 2 * EARTH_RADIUS_M * np.arcsin(np.minimum(chord / 2, 1.0))

    def node_of(self, osm_node_id: int) -> int:
        i = int(np.searchsorted(self.node_ids, osm_node_id))
        if i == len(self.node_ids) or self.node_ids[i] != osm_node_id:
            raise KeyError(osm_node_id)
        return i

    def travel_times(self, origin_lat: float, origin_lon: float,
                     dest_lats, dest_lons) -> np.ndarray:
        """Seconds from one origin to each destination; inf where there is no way."""
        return self._one_to_many(self.graph, origin_lat, origin_lon, dest_lats, dest_lons)

    def travel_times_to(self, target_lat: float, target_lon: float,
                        from_lats, from_lons) -> np.ndarray:
        """Seconds from each point to one target: what dispatch needs, since one-way streets
        make the trip there differ from the trip back."""
        return self._one_to_many(self.reversed_graph, target_lat, target_lon, from_lats, from_lons)

    def _one_to_many(self, graph, lat, lon, lats, lons) -> np.ndarray:
        (root,), (root_snap,) = self.snap(lat, lon)
        nodes, snaps = self.snap(lats, lons)
        if root_snap > MAX_SNAP_M:
            return np.full(len(nodes), np.inf)
        on_graph = dijkstra(graph, directed=True, indices=int(root))[nodes]
        total = on_graph + (snaps + root_snap) / ACCESS_SPEED_MPS
        total[snaps > MAX_SNAP_M] = np.inf
        return total
