"""Where the synthetic Pudong's 40,000 sensors and 8,000 cameras stand.

Each kind goes where a city would put it: noise meters in residential communities, water-depth
gauges at road underpasses and low points, a sparse even network of rain gauges, anemometers
mostly on the coast, bin sensors and elderly households' water meters where people live,
manhole and lamp sensors along the main roads, cameras on the roads and at community gates.
Every one of them reaches the platform through a gateway of its village (`meta["gateway"]`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np
import shapely

from cityops.domain.city import Device
from cityops.domain.geo import CityMap
from cityops.domain.kinds import BUILTIN_KINDS
from cityops.packs.tiling import (
    KM_PER_DEG_LAT,
    KM_PER_DEG_LON_AT_31N,
    km2,
    points_along,
    points_in,
    spread_points,
)

if TYPE_CHECKING:
    from cityops.packs.pudong import Village

# Main roads, lon/lat, with their real names; the courses are approximate.
ROADS: dict[str, list[tuple[float, float]]] = {
    "Century Avenue": [(121.503, 31.239), (121.527, 31.230), (121.545, 31.222), (121.553, 31.213)],
    "Pudong Avenue": [(121.508, 31.243), (121.535, 31.252), (121.565, 31.268), (121.600, 31.290),
                      (121.640, 31.315)],
    "Yanggao Road": [(121.578, 31.335), (121.575, 31.290), (121.560, 31.250), (121.555, 31.215),
                     (121.540, 31.180), (121.520, 31.150)],
    "Zhangyang Road": [(121.512, 31.232), (121.560, 31.236), (121.610, 31.246), (121.660, 31.260)],
    "Longdong Avenue": [(121.556, 31.208), (121.620, 31.204), (121.700, 31.198), (121.790, 31.188)],
    "Huaxia Road": [(121.505, 31.140), (121.600, 31.146), (121.700, 31.158), (121.790, 31.160)],
    "Shenjiang Road": [(121.632, 31.332), (121.626, 31.250), (121.620, 31.180), (121.612, 31.100)],
    "S2 Hulu Expressway": [(121.600, 31.128), (121.680, 31.062), (121.780, 30.992),
                           (121.900, 30.912)],
    "Hunan Highway": [(121.560, 31.165), (121.575, 31.110), (121.660, 31.072), (121.760, 31.052)],
    "S1 Yingbin Expressway": [(121.556, 31.205), (121.660, 31.180), (121.805, 31.150)],
    "Chuannanfeng Road": [(121.705, 31.195), (121.722, 31.100), (121.750, 31.000),
                          (121.795, 30.925)],
}

SENSOR_COUNTS = {
    "noise": 5_000,
    "water_depth": 1_200,
    "rainfall": 300,
    "wind": 100,
    "bin_fill": 12_000,
    "water_meter": 7_000,
    "manhole_tilt": 6_000,
    "street_lamp": 5_000,
    "smoke": 3_000,
    "air_quality": 400,
}
CAMERAS = 8_000
MANHOLE_NETWORKS = {
    "water": "utilities_water", "gas": "utilities_gas", "power": "utilities_power",
    "drainage": "water_affairs",
}


@dataclass
class Batch:
    """Places for some devices of one kind, with who owns them and what else is known."""

    kind: str
    lonlat: np.ndarray
    owner: str | list[str]
    meta: dict[str, Any] | list[dict[str, Any]] = field(default_factory=dict)


class Sites:
    """Random places of the kinds the plan asks for."""

    def __init__(self, rng: np.random.Generator, district: shapely.Geometry,
                 coast: shapely.LineString, villages: list[Village]) -> None:
        self.rng = rng
        self.inner = district.buffer(-0.001)
        shapes = np.array([v.shape for v in villages], dtype=object)
        # Points keep a hair's breadth from village borders, so rounding the coordinates to
        # six decimals (0.1 m) never moves a device into another village.
        shrunk = shapely.buffer(shapes, -2e-6)
        self.shapes = np.where(shapely.is_empty(shrunk), shapes, shrunk)
        self.villages = villages
        self.roads: list[shapely.LineString] = []
        self.road_names: list[str] = []
        road_zone = district.buffer(-0.0005)
        for name, course in ROADS.items():
            clipped = shapely.intersection(shapely.LineString(course), road_zone)
            for part in shapely.get_parts(clipped):
                if part.geom_type == "LineString" and part.length > 0:
                    self.roads.append(part)
                    self.road_names.append(name)
        zone = coast.buffer(0.012)
        self.coast = [line for line in shapely.get_parts(
            shapely.intersection(district.buffer(-0.004).exterior, zone)) if line.length > 0]

    def in_villages(self, weights: np.ndarray, count: int) -> np.ndarray:
        counts = self.rng.multinomial(count, weights / weights.sum())
        return np.concatenate(
            [points_in(self.rng, self.shapes[i], int(counts[i])) for i in np.flatnonzero(counts)]
        )

    def on_roads(self, count: int) -> tuple[np.ndarray, list[str]]:
        lonlat, which = points_along(self.rng, self.roads, count)
        return lonlat, [self.road_names[i] for i in which.tolist()]

    def on_coast(self, count: int) -> np.ndarray:
        return points_along(self.rng, self.coast, count)[0]

    def spread(self, count: int) -> np.ndarray:
        return spread_points(self.rng, self.inner, count)


def place(
    rng: np.random.Generator,
    district: shapely.Geometry,
    coast: shapely.LineString,
    villages: list[Village],
    city: CityMap,
) -> tuple[list[Device], np.ndarray]:
    """Every sensor and camera, in kind order, ids numbered per kind; also the lon/lat of the
    cameras that watch a main road."""
    sites = Sites(rng, district, coast, villages)
    batches = _plan(rng, sites)
    road_cameras = np.concatenate(
        [b.lonlat for b in batches if b.kind == "camera" and isinstance(b.meta, list)]
    )
    return _devices(batches, city), road_cameras


def _plan(rng: np.random.Generator, sites: Sites) -> list[Batch]:
    villages = sites.villages
    community = np.array([v.community for v in villages])
    urban = np.array([v.urban_street for v in villages])
    people = np.where(community, np.where(urban, 3.0, 2.0), 0.6)
    # Lone elderly people are, if anything, commoner in the villages.
    elderly = np.where(community, 1.0, 1.3)
    residential = np.where(community, np.where(urban, 1.5, 1.0), 0.12)
    land = np.array([km2(v.shape) for v in villages])
    c = SENSOR_COUNTS

    def per_device(values: list[Any], key: str) -> list[dict[str, Any]]:
        return [{key: v} for v in values]

    underpasses, _ = sites.on_roads(c["water_depth"] * 55 // 100)
    road_manholes, _ = sites.on_roads(c["manhole_tilt"] // 2)
    networks = [list(MANHOLE_NETWORKS)[i] for i in rng.integers(0, 4, c["manhole_tilt"])]
    road_cameras, camera_roads = sites.on_roads(CAMERAS * 45 // 100)
    return [
        Batch("noise", sites.in_villages(residential, c["noise"]), "environment",
              {"setting": "residential"}),
        Batch("water_depth", underpasses, "water_affairs", {"site": "underpass"}),
        Batch("water_depth", sites.in_villages(land, c["water_depth"] - len(underpasses)),
              "water_affairs", {"site": "low_point"}),
        Batch("rainfall", sites.spread(c["rainfall"]), "water_affairs"),
        Batch("wind", sites.on_coast(c["wind"] // 2), "water_affairs", {"site": "coast"}),
        Batch("wind", sites.spread(c["wind"] - c["wind"] // 2), "water_affairs"),
        Batch("bin_fill", sites.in_villages(people, c["bin_fill"]), "sanitation"),
        Batch("water_meter", sites.in_villages(elderly, c["water_meter"]), "utilities_water",
              {"household": "elderly_living_alone"}),
        Batch("manhole_tilt", road_manholes,
              [MANHOLE_NETWORKS[n] for n in networks[: len(road_manholes)]],
              per_device(networks[: len(road_manholes)], "network")),
        Batch("manhole_tilt", sites.in_villages(people, c["manhole_tilt"] - len(road_manholes)),
              [MANHOLE_NETWORKS[n] for n in networks[len(road_manholes):]],
              per_device(networks[len(road_manholes):], "network")),
        Batch("street_lamp", sites.on_roads(c["street_lamp"] * 6 // 10)[0], "city_management"),
        Batch("street_lamp", sites.in_villages(land, c["street_lamp"] - c["street_lamp"] * 6 // 10),
              "city_management"),
        Batch("smoke", sites.in_villages(people, c["smoke"]), "fire", {"building": "residential"}),
        Batch("air_quality", sites.spread(c["air_quality"]), "environment"),
        Batch("camera", road_cameras, "transport", per_device(camera_roads, "road")),
        Batch("camera", sites.in_villages(people, CAMERAS - len(road_cameras)), "police",
              {"site": "community_gate"}),
    ]


def _devices(batches: list[Batch], city: CityMap) -> list[Device]:
    names = {v.code: v.name for v in city.areas_at("village")}
    devices: list[Device] = []
    for kind in list(SENSOR_COUNTS) + ["camera"]:
        rows = []
        for batch in (b for b in batches if b.kind == kind):
            lonlat = np.round(batch.lonlat, 6)
            where = city.village_indices(lonlat[:, 1], lonlat[:, 0])
            if (where < 0).any():
                raise RuntimeError(f"generated {kind} sensors fell outside the city")
            for i, (lon, lat) in enumerate(lonlat.tolist()):
                owner = batch.owner if isinstance(batch.owner, str) else batch.owner[i]
                meta = batch.meta if isinstance(batch.meta, dict) else batch.meta[i]
                rows.append((int(where[i]), -lat, lon, owner, meta))
        rows.sort(key=lambda r: r[:3])
        title = BUILTIN_KINDS[kind].title
        village_codes = city.villages
        for n, (village, neg_lat, lon, owner, meta) in enumerate(rows, start=1):
            place = names[village_codes[village]]
            devices.append(Device(
                id=f"{kind}-{n:06d}", kind=kind, lat=-neg_lat, lon=lon,
                name=f"{title}, {meta.get('road') or place}", owner=owner, meta=dict(meta),
            ))
    return devices


# A village's sensors reach the platform through one LoRaWAN / NB-IoT gateway, or two or three
# where there are many of them: a new one for every this many devices, at most three.
DEVICES_PER_GATEWAY = 60
MAX_GATEWAYS = 3
LLOYD_ROUNDS = 100  # k-means settles in a handful; this only bounds it


def gateways(devices: list[Device], city: CityMap) -> list[Device]:
    """`devices` with every fixed sensor and camera given its gateway in `meta["gateway"]`:
    `gw-<village code>-<n>`, the nearest of its village's gateway sites. Trackers (carried or
    on trucks, on the mobile network) and KPI series (not radios at all) have none.

    The sites follow from the devices alone (no random draw), so adding gateways left every
    other part of a seed's city as it was."""
    fixed = [i for i, d in enumerate(devices)
             if d.kind in BUILTIN_KINDS and not BUILTIN_KINDS[d.kind].mobile and d.kind != "kpi"]
    if not fixed:
        return list(devices)
    lat = np.array([devices[i].lat for i in fixed])
    lon = np.array([devices[i].lon for i in fixed])
    where = city.village_indices(lat, lon)
    if (where < 0).any():
        raise RuntimeError("a generated device fell outside the city")
    xy = np.column_stack([lon * KM_PER_DEG_LON_AT_31N, lat * KM_PER_DEG_LAT])
    codes = city.villages
    out = list(devices)
    for v in np.unique(where).tolist():
        members = np.flatnonzero(where == v)
        count = min(MAX_GATEWAYS, 1 + (len(members) - 1) // DEVICES_PER_GATEWAY)
        sites = _sites(xy[members], count)
        nearest = np.argmin(
            np.linalg.norm(xy[members][:, None, :] - sites[None, :, :], axis=2), axis=1)
        # Numbered north to south, then west to east, as the villages are.
        rank = np.empty(count, np.int64)
        rank[np.lexsort((sites[:, 0], -np.round(sites[:, 1], 3)))] = np.arange(1, count + 1)
        for m, s in zip(members.tolist(), nearest.tolist(), strict=True):
            device = devices[fixed[m]]
            out[fixed[m]] = msgspec.structs.replace(
                device, meta={**device.meta, "gateway": f"gw-{codes[v]}-{int(rank[s])}"})
    return out


def _sites(xy: np.ndarray, count: int) -> np.ndarray:
    """`count` gateway sites among the points `xy` (km): k-means from a farthest-point start,
    so each site serves the devices round it."""
    centre = xy.mean(axis=0)
    chosen = [int(np.argmin(np.linalg.norm(xy - centre, axis=1)))]
    while len(chosen) < count:
        gap = np.min(np.linalg.norm(xy[:, None, :] - xy[chosen][None, :, :], axis=2), axis=1)
        chosen.append(int(np.argmax(gap)))
    sites = xy[chosen].astype(np.float64)
    if count == 1:
        return centre[None, :]
    nearest = None
    for _ in range(LLOYD_ROUNDS):
        now = np.argmin(np.linalg.norm(xy[:, None, :] - sites[None, :, :], axis=2), axis=1)
        if nearest is not None and (now == nearest).all():
            break  # settled: each site is the middle of the devices nearest it
        nearest = now
        for s in range(count):
            mine = xy[nearest == s]
            if len(mine):
                sites[s] = mine.mean(axis=0)
    return sites
