"""The 15-minute elderly-care service circle over a node's city.

Where residents of 60+ live and where the service points stand come from the city's own care
file (`cityops serve --care FILE`, cityops.analytics.care_file) or else from the pack
(cityops.packs.care); the walking network from the OSM extract the node was given
(`settings.street_network`, `--street-network FILE`) or, without one, the pack's generated
street grid. A node builds its `CareModel` once, on first use, in a worker thread: the walking
graph, every home's street node, and one Dijkstra from all service points at once. Coverage and
gaps are then read from it; a what-if adds one Dijkstra from the proposed point alone (a home's
walk to the nearest station after is the shorter of its walk before and its walk to the new
one).
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cityops.analytics import care_file
from cityops.analytics.walk import WalkTimes
from cityops.domain.care import LIMIT_S, Share, covered, newly_covered, shares
from cityops.packs.care import CareData, CarePoint, care_data, street_grid
from cityops.routing.network import StreetNetwork


@dataclass(slots=True)
class CareCoverage:
    area: str  # the community's (village's) code
    name: str
    residents_60: int  # residents aged 60 and over
    covered_60: int  # of them, within 15 minutes' walk of a service point
    share: float | None  # covered_60 / residents_60; None with no resident of 60+
    town: str = ""
    care_points: int = 0  # service points standing inside the community


@dataclass(slots=True)
class WhatIfRow:
    area: str
    name: str
    residents_60: int
    covered_before: int
    covered_after: int
    share_before: float | None
    share_after: float | None
    newly_covered: int


@dataclass(slots=True)
class WhatIf:
    lat: float
    lon: float
    area: str | None  # the community the point stands in
    reachable: bool  # whether the point is on (near) the walking network at all
    newly_covered: int  # residents of 60+ the point brings within 15 minutes
    communities: list[WhatIfRow] = field(default_factory=list)


class CareModel:
    """One city's homes, service points and walking network, and each home's walk now."""

    def __init__(self, data: CareData, walk: WalkTimes, limit_s: float = LIMIT_S) -> None:
        self.data, self.walk, self.limit_s = data, walk, limit_s
        self.codes = [c.code for c in data.communities]
        self._index = {c: i for i, c in enumerate(self.codes)}
        self.times = self._times_from(data.points)
        self.shares: list[Share] = shares(self.codes, data.home_area, data.home_60, self.times,
                                          limit_s)
        self.points_in = np.bincount([self._index[p.area] for p in data.points
                                      if p.area in self._index],
                                     minlength=len(self.codes))

    def _times_from(self, points: list[CarePoint]) -> np.ndarray:
        d = self.data
        if not points or len(d.home_lat) == 0:
            return np.full(len(d.home_lat), np.inf)
        nodes = self.walk.node_times(np.array([p.lat for p in points]),
                                     np.array([p.lon for p in points]), self.limit_s)
        return self.walk.point_times(nodes, d.home_lat, d.home_lon)

    def coverage(self, within: str | None = None) -> list[CareCoverage]:
        out = []
        for c, s, n in zip(self.data.communities, self.shares, self.points_in, strict=True):
            if within is None or c.code.startswith(within):
                out.append(CareCoverage(c.code, c.name, s.residents_60, s.covered_60, s.share,
                                        c.town, int(n)))
        return out

    def gaps(self, within: str | None = None, limit: int = 50_000) -> dict[str, Any]:
        """The homes outside the circle as a GeoJSON FeatureCollection (a map layer): each
        with its community, its residents of 60+ and its walk to the nearest service point
        (null when it is beyond the limit or off the network)."""
        d = self.data
        out = ~covered(self.times, self.limit_s) & (d.home_60 > 0)
        features: list[dict[str, Any]] = []
        for i in np.flatnonzero(out):
            c = d.communities[int(d.home_area[i])]
            if within is not None and not c.code.startswith(within):
                continue
            if len(features) >= limit:
                break
            t = float(self.times[i])
            features.append({
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [round(float(d.home_lon[i]), 6),
                                                              round(float(d.home_lat[i]), 6)]},
                "properties": {"area": c.code, "name": c.name, "residents_60": int(d.home_60[i]),
                               "walk_s": round(t) if np.isfinite(t) else None},
            })
        return {"type": "FeatureCollection", "features": features}

    def what_if(self, lat: float, lon: float, area: str | None,
                within: str | None = None) -> WhatIf:
        """What one more service point at (lat, lon) would change, per community that gains."""
        d = self.data
        _, access = self.walk.snap(np.array([lat]), np.array([lon]))
        if not np.isfinite(access[0]):
            return WhatIf(lat, lon, area, False, 0)
        new = self._times_from([CarePoint("proposed", "proposed", lat, lon, area or "")])
        after = np.minimum(self.times, new)
        gained = newly_covered(self.times, after, self.limit_s)
        after_shares = shares(self.codes, d.home_area, d.home_60, after, self.limit_s)
        gain = np.bincount(d.home_area, weights=d.home_60 * gained, minlength=len(self.codes))
        rows = []
        for i, (c, b, a) in enumerate(zip(d.communities, self.shares, after_shares,
                                          strict=True)):
            if within is not None and not c.code.startswith(within):
                continue
            if gain[i] > 0 or c.code == area:
                rows.append(WhatIfRow(c.code, c.name, b.residents_60, b.covered_60,
                                      a.covered_60, b.share, a.share, int(round(gain[i]))))
        return WhatIf(lat, lon, area, True, sum(r.newly_covered for r in rows), rows)


def walk_network(node: Any) -> WalkTimes:
    """The OSM extract the node was given, else the pack's street grid."""
    osm = getattr(node.settings, "street_network", None)
    if osm is not None:
        return WalkTimes.from_pbf(osm)
    return WalkTimes(StreetNetwork.from_ways(street_grid(node.pack)))


def build_model(node: Any) -> CareModel:
    """The city's own care file when the node was given one, else the pack's figures."""
    own = getattr(node.settings, "care_file", None)
    data = care_file.load(own, node.city) if own is not None else care_data(node.pack)
    return CareModel(data, walk_network(node))


_models: weakref.WeakKeyDictionary[Any, asyncio.Future[CareModel]] = \
    weakref.WeakKeyDictionary()


async def model_of(node: Any) -> CareModel:
    """The node's model, built once (callers arriving meanwhile wait for the same build)."""
    made = _models.get(node)
    if made is None or (made.done() and made.exception() is not None):
        made = _models[node] = asyncio.ensure_future(asyncio.to_thread(build_model, node))
    return await asyncio.shield(made)


async def care_coverage(node, *, area: str | None = None) -> list[CareCoverage]:
    """Per community inside `area` (any level; None: the city)."""
    return (await model_of(node)).coverage(area)
