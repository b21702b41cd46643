"""How simulated field work moves and lasts: speeds by department and distance, the path a
person takes to a site, and how long a job of a category takes. Pure; every draw comes from a
generator seeded by (seed, what it is for), so one run's travel and work times are those of
any other run with that seed.

Speeds are urban ones, not top speeds: a grid inspector on an e-bike averages 4-5 m/s between
junctions, a patrol car or fire engine with lights on about 12 m/s, a works van about 9 m/s;
a trip of a few hundred metres is walked at 1.3 m/s.

Paths follow the street network when the city has one (`cityops.routing`, built from an
OpenStreetMap extract); otherwise they turn one corner, east-west then north-south, as on a
street grid: about 1.27 times the straight line on average, the detour factor of real trips.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

from cityops.sim.places import distance_m

WALK_MPS = 1.3
EBIKE_MPS = 4.5
VAN_MPS = 9.0
EMERGENCY_MPS = 12.0
ON_FOOT_BELOW_M = 400.0  # a trip this short is walked, bike left where it stands

# How each department's people get about.
TRAVEL_MPS: dict[str, float] = {
    "police": EMERGENCY_MPS, "fire": EMERGENCY_MPS, "ambulance": EMERGENCY_MPS,
    "transport": VAN_MPS, "water_affairs": VAN_MPS, "utilities_power": VAN_MPS,
    "utilities_gas": VAN_MPS, "utilities_water": VAN_MPS,
}
EMERGENCY_SERVICES = frozenset({"police", "fire", "ambulance"})

# Minutes of work on site, (shortest, longest), by category code prefix (the longest prefix
# that matches wins). What a unit typically spends, well inside the category's limit: a
# stall moved on in a quarter of an hour, a manhole cover re-seated in half an hour, a blocked
# gully cleared in about an hour.
WORK_MIN: dict[str, tuple[float, float]] = {
    "": (20, 45),
    "component.public_facility": (25, 60),
    "component.public_facility.manhole_cover": (15, 35),
    "component.iot_device": (20, 45),
    "event.environment.noise_nuisance": (10, 25),
    "event.sanitation": (15, 40),
    "event.construction": (30, 75),
    "event.greening": (30, 90),
    "event.street_order": (10, 30),
    "event.drainage": (30, 70),
    "event.social_services": (20, 40),
    "event.emergency": (20, 45),
}
INSPECT_MIN = (3.0, 8.0)  # an inspector's look at the finished work, on site
REACT_S = {"urgent": (30.0, 90.0), "high": (60.0, 180.0), "": (90.0, 300.0)}


def rng_for(seed: int, *what: object) -> np.random.Generator:
    """A generator for one purpose: the same (seed, what) draws the same numbers."""
    digest = hashlib.blake2b("|".join(map(str, what)).encode(), digest_size=8).digest()
    return np.random.default_rng([seed & 0xFFFFFFFF, int.from_bytes(digest, "little")])


def uniform(rng: np.random.Generator, span: tuple[float, float]) -> float:
    return float(span[0] + (span[1] - span[0]) * rng.random())


def speed_mps(department: str, metres: float) -> float:
    """Emergency services drive whatever the distance; others walk a short trip."""
    if department in EMERGENCY_SERVICES:
        return EMERGENCY_MPS
    if metres < ON_FOOT_BELOW_M:
        return WALK_MPS
    return TRAVEL_MPS.get(department, EBIKE_MPS)


def work_s(seed: int, category: str, department: str, order_id: str,
           table: dict[str, tuple[float, float]] | None = None) -> float:
    table = table or WORK_MIN
    prefix = max((p for p in table if category.startswith(p)), key=len)
    return 60.0 * uniform(rng_for(seed, "work", order_id, department), table[prefix])


def react_s(seed: int, urgency: str, what: str) -> float:
    """A unit's time to take up a job: the dispatcher reads it, a person picks it up."""
    span = REACT_S.get(urgency, REACT_S[""])
    return uniform(rng_for(seed, "react", what), span)


@dataclass(frozen=True, slots=True)
class Path:
    """A polyline with the distance along it at each vertex."""

    lat: np.ndarray
    lon: np.ndarray
    along: np.ndarray  # metres from the start to each vertex

    @property
    def metres(self) -> float:
        return float(self.along[-1])

    def at(self, metres: float) -> tuple[float, float]:
        """The point `metres` along the path (clamped to its ends)."""
        d = min(max(metres, 0.0), self.metres)
        return (float(np.interp(d, self.along, self.lat)), float(np.interp(d, self.along,
                                                                           self.lon)))

    def heading_at(self, metres: float) -> float:
        k = int(np.searchsorted(self.along, min(max(metres, 0.0), self.metres), side="right"))
        k = min(max(k, 1), len(self.along) - 1)
        dy = self.lat[k] - self.lat[k - 1]
        dx = (self.lon[k] - self.lon[k - 1]) * math.cos(math.radians(float(self.lat[k])))
        return math.degrees(math.atan2(dx, dy)) % 360.0 if (dx or dy) else 0.0


def polyline(points: list[tuple[float, float]]) -> Path:
    lat = np.array([p[0] for p in points], dtype=np.float64)
    lon = np.array([p[1] for p in points], dtype=np.float64)
    steps = [distance_m(lat[k], lon[k], lat[k + 1], lon[k + 1]) for k in range(len(lat) - 1)]
    return Path(lat, lon, np.concatenate(([0.0], np.cumsum(steps))))


def street_path(start: tuple[float, float], end: tuple[float, float], network=None) -> Path:
    """The way from `start` to `end`: on the network's streets when there is one that
    reaches both, else one corner as on a grid of streets."""
    if network is not None:
        found = network_path(network, start, end)
        if found is not None:
            return found
    corner = (start[0], end[1])
    return polyline([start, corner, end])


def network_path(network, start: tuple[float, float], end: tuple[float, float]) -> Path | None:
    """The quickest way on a `cityops.routing.StreetNetwork`, walking on and off it; None
    when either end is farther from any street than the network snaps."""
    from scipy.sparse.csgraph import dijkstra

    from cityops.routing.network import MAX_SNAP_M

    nodes, snaps = network.snap([start[0], end[0]], [start[1], end[1]])
    if float(snaps.max()) > MAX_SNAP_M:
        return None
    source, target = int(nodes[0]), int(nodes[1])
    times, previous = dijkstra(network.graph, directed=True, indices=source,
                               return_predecessors=True)
    if not np.isfinite(times[target]):
        return None
    chain = [target]
    while chain[-1] != source:
        chain.append(int(previous[chain[-1]]))
    chain.reverse()
    points = [start, *((float(network.lat[n]), float(network.lon[n])) for n in chain), end]
    return polyline(points)
