"""Which H3 cell each of a million moving objects is in, kept up to date at 1 Hz.

The big screen shows objects as hexagon bins when there are too many to draw one by one. H3's
Python binding answers one point per call (about 1 us), so asking it for every object every
second would cost a second per tick. Instead each object keeps the cell it was last found in,
the point where that was asked (its anchor) and its slack: the distance from the anchor to the
nearest edge of the cell. An object that has moved less than its slack from its anchor is
still in the same cell, which numpy answers for all objects at once; only the few that moved
further are asked of H3 again. Distances are taken in plain degrees (latitude, longitude) on
both sides, where a cell is the polygon of its H3 vertices: at resolution 9 (edges of about
200 m) that polygon and the true cell differ by millimetres, and `EDGE_MARGIN` covers that.

Cells are kept at `BASE_RES`; a coarser bin is the base cell's H3 parent, found once per base
cell, so the counts at any resolution are two `bincount`s away.
"""

from __future__ import annotations

from itertools import repeat
from typing import NamedTuple

import h3 as _h3
import numpy as np

h3 = _h3.api.basic_int  # cells as 64-bit integers: numpy holds them, strings it cannot

BASE_RES = 9
COARSEST_RES = 4
EDGE_MARGIN = 1e-6  # degrees (about 10 cm): what a straight edge may differ from H3's arc


class Moves(NamedTuple):
    """Objects that left their slack: their numbers and where they are now (degrees)."""

    who: np.ndarray
    lat: np.ndarray
    lon: np.ndarray


def lookup(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """The base cell (uint64) of each point, one H3 call apiece."""
    n = len(lat)
    return np.fromiter(map(h3.latlng_to_cell, lat.tolist(), lon.tolist(), repeat(BASE_RES, n)),
                       np.uint64, n)


class _Cells:
    """The cells of one resolution seen so far, each with a dense row number."""

    def __init__(self) -> None:
        self.row: dict[int, int] = {}
        self.ids: list[int] = []
        self._boundary: dict[int, np.ndarray] = {}
        self._centers = np.zeros((0, 2), np.float64)

    def add(self, cell: int) -> int:
        row = self.row.get(cell)
        if row is None:
            row = self.row[cell] = len(self.ids)
            self.ids.append(cell)
        return row

    def boundary(self, row: int) -> np.ndarray:
        """The cell's vertices as (lat, lon) rows; six, a pentagon's last one repeated."""
        got = self._boundary.get(row)
        if got is None:
            vertices = h3.cell_to_boundary(self.ids[row])
            got = np.array(list(vertices) + [vertices[-1]] * (6 - len(vertices)), np.float64)
            self._boundary[row] = got
        return got

    def centers(self, rows: np.ndarray) -> np.ndarray:
        """The cells' centres as (lat, lon) rows."""
        have = len(self._centers)
        if len(self.ids) > have:
            extra = [h3.cell_to_latlng(c) for c in self.ids[have:]]
            self._centers = np.concatenate([self._centers, np.array(extra, np.float64)])
        centres: np.ndarray = self._centers[rows]
        return centres


def _edges(vertices: np.ndarray) -> np.ndarray:
    """Each edge of convex cells (k, 6, 2) as (a, b, c) in (k, 6, 3): a*lat + b*lon - c is
    the distance of a point from the edge's line, positive inside the cell."""
    inside = vertices.mean(axis=1, keepdims=True)
    p = vertices
    d = np.roll(vertices, -1, axis=1) - p
    length = np.hypot(d[..., 0], d[..., 1])
    length[length == 0] = np.inf  # a pentagon's repeated vertex: an edge that never binds
    n = np.stack([d[..., 1], -d[..., 0]], axis=-1) / length[..., None]
    c = (n * p).sum(axis=-1)
    flip = ((n * inside).sum(axis=-1) - c) < 0
    n[flip] *= -1
    c[flip] *= -1
    return np.concatenate([n, c[..., None]], axis=-1)


class CellIndex:
    """The base cell of each of `n` objects, updated for the ones that moved."""

    def __init__(self, n: int) -> None:
        self.row = np.full(n, -1, np.int32)  # the object's base cell, -1 before its first fix
        self.anchor_lat = np.zeros(n, np.float64)
        self.anchor_lon = np.zeros(n, np.float64)
        self.slack2 = np.full(n, -1.0)  # the slack squared; negative: ask H3 at the next move
        self.base = _Cells()
        self._edges = np.zeros((0, 6, 3), np.float64)
        self._parents: dict[int, _Cells] = {r: _Cells() for r in range(COARSEST_RES, BASE_RES)}
        self._parent_row: dict[int, list[int]] = {r: [] for r in range(COARSEST_RES, BASE_RES)}
        self.asked = 0  # H3 look-ups made, for the figures

    def __len__(self) -> int:
        return len(self.row)

    def _add_base(self, cells: np.ndarray) -> np.ndarray:
        """Rows of distinct base cells, adding the new ones with their edges and parents."""
        rows = np.array([self.base.row.get(c, -1) for c in cells.tolist()], np.int32)
        new = [int(c) for c in cells[rows < 0]]
        if new:
            first = len(self.base.ids)
            rows[rows < 0] = [self.base.add(c) for c in new]
            need = len(self.base.ids)
            if need > len(self._edges):
                grown = np.zeros((max(need, 2 * len(self._edges)), 6, 3), np.float64)
                grown[: len(self._edges)] = self._edges
                self._edges = grown
            self._edges[first:need] = _edges(np.stack(
                [self.base.boundary(r) for r in range(first, need)]))
            for res, parents in self._parents.items():
                self._parent_row[res].extend(parents.add(h3.cell_to_parent(c, res)) for c in new)
        return rows

    def update(self, idx: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> int:
        """Objects `idx` are now at (lat, lon), in degrees. Answers how many changed cell."""
        far = self.beyond_slack(idx, lat, lon)
        return self.place(far, lookup(far.lat, far.lon)) if far is not None else 0

    def beyond_slack(self, idx: np.ndarray, lat: np.ndarray,
                     lon: np.ndarray) -> Moves | None:
        """Of objects `idx` now at (lat, lon), those that moved further than their slack and
        must be looked up again (None when none did). The look-up itself (`lookup`) holds
        nothing of the index, so a caller may run it elsewhere and then `place` the answer."""
        if not len(idx):
            return None
        if len(idx) == len(self.row):  # everyone moved (idx is then 0..n-1): no gathers
            dlat, dlon, slack2 = lat - self.anchor_lat, lon - self.anchor_lon, self.slack2
        else:
            dlat, dlon = lat - self.anchor_lat[idx], lon - self.anchor_lon[idx]
            slack2 = self.slack2[idx]
        dlat *= dlat
        dlon *= dlon
        dlat += dlon
        far = np.flatnonzero(dlat >= slack2)
        if not len(far):
            return None
        return Moves(idx[far], lat[far], lon[far])

    def place(self, moves: Moves, cells: np.ndarray) -> int:
        """Objects `moves` are in base cells `cells` (from `lookup`); answers how many
        changed cell."""
        who, la, lo = moves
        self.asked += len(cells)
        # Many objects share a cell: each distinct cell is looked up (or added) once.
        distinct, inverse = np.unique(cells, return_inverse=True)
        rows = self._add_base(distinct)[inverse]
        changed = int(np.count_nonzero(self.row[who] != rows))
        self.row[who] = rows
        self.anchor_lat[who] = la
        self.anchor_lon[who] = lo
        e = self._edges[rows]
        distance = e[:, :, 0] * la[:, None] + e[:, :, 1] * lo[:, None] - e[:, :, 2]
        self.slack2[who] = np.maximum(distance.min(axis=1) - EDGE_MARGIN, 0.0) ** 2
        return changed

    def forget(self, idx: np.ndarray) -> None:
        """Objects that lost their fix: counted in no cell until they have one again."""
        self.row[idx] = -1
        self.slack2[idx] = -1.0

    def cells(self, res: int) -> _Cells:
        return self.base if res == BASE_RES else self._parents[res]

    def counts(self, res: int, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(rows, counts) of the non-empty cells at `res` of the objects in `mask` (all when
        None); rows number `cells(res)`."""
        if not COARSEST_RES <= res <= BASE_RES:
            raise ValueError(f"resolution {res} outside {COARSEST_RES}..{BASE_RES}")
        rows = self.row if mask is None else self.row[mask]
        base = np.bincount(rows[rows >= 0], minlength=len(self.base.ids))
        if res == BASE_RES:
            counts = base
        else:
            parent = np.asarray(self._parent_row[res], np.int64)
            counts = np.bincount(parent, weights=base, minlength=len(self._parents[res].ids))
        keep = np.flatnonzero(counts)
        return keep, counts[keep].astype(np.int64)


def resolution_for_zoom(zoom: float) -> int:
    """The H3 resolution whose hexagons are 10-20 px across on a web map at `zoom`: one H3
    step shrinks an edge by sqrt(7), one zoom step doubles it."""
    res = round(7 + (zoom - 9) * np.log(2) / np.log(np.sqrt(7)))
    return int(min(BASE_RES, max(COARSEST_RES, res)))
