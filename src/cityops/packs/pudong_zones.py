"""The synthetic Pudong's zones: where muck trucks may not go, the routes they must keep to, and
the fire lanes some cameras watch.

Drawn from a generator of their own (seeded from the city's seed), so adding zones leaves every
other part of the generated city as it was.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import msgspec
import numpy as np
import shapely
import shapely.affinity

from cityops.domain.city import Device, Zone
from cityops.domain.geo import to_geojson_geometry
from cityops.packs.pudong_sensors import ROADS
from cityops.packs.tiling import KM_PER_DEG_LAT, KM_PER_DEG_LON_AT_31N, disk

if TYPE_CHECKING:
    from cityops.packs.pudong import Village

# Where spoil goes: the Laogang disposal base on the east coast, and a spoil wharf on the
# Yangtze at Gaoqiao for the north. Trucks take the nearer.
DISPOSAL_SITES = [("Laogang disposal base", 121.860, 31.050),
                  ("Gaoqiao spoil wharf", 121.580, 31.350)]
# Muck trucks are banned from the urban core by day; schools and hospitals get the same.
DAYTIME_BAN = "07:00-22:00"
SCHOOLS = 5
HOSPITALS = 3
FIRE_LANES = 24
LANE_LENGTH_M = 40.0
LANE_WIDTH_M = 6.0
PRECISION_DEG = 1e-6  # 0.1 m: as the devices' coordinates are written


def zones(
    seed: int, district: shapely.Geometry, villages: list[Village], devices: list[Device]
) -> tuple[list[Zone], list[Device]]:
    """The zones, and `devices` with the cameras that watch a fire lane marked as such."""
    rng = np.random.default_rng([seed, 310115, 2])
    devices = list(devices)
    lanes = _fire_lanes(rng, devices)
    return _forbidden(rng, district, villages) + _routes(district, devices) + lanes, devices


def _forbidden(rng: np.random.Generator, district: shapely.Geometry,
               villages: list[Village]) -> list[Zone]:
    found = [
        _zone("forbidden-lujiazui", "muck_forbidden", "Lujiazui core",
              disk(121.507, 31.238, 1.2) & district, {}),
        _zone("forbidden-zhangjiang", "muck_forbidden", "Zhangjiang Science City centre",
              disk(121.600, 31.200, 0.8) & district, {"hours": DAYTIME_BAN}),
    ]
    # Schools and hospitals stand in communities: a few hundred metres round each is closed
    # to muck trucks by day.
    communities = [v for v in villages if v.community]
    picks = rng.choice(len(communities), size=SCHOOLS + HOSPITALS, replace=False)
    for n, i in enumerate(picks.tolist()):
        village = communities[i]
        site, number = ("school", n + 1) if n < SCHOOLS else ("hospital", n - SCHOOLS + 1)
        centre = village.shape.representative_point()
        area = disk(centre.x, centre.y, float(rng.uniform(0.25, 0.4))) & district
        found.append(_zone(f"forbidden-{site}-{number}", "muck_forbidden",
                           f"{village.name.rsplit(' ', 1)[0]} {site.title()}", area,
                           {"hours": DAYTIME_BAN, "site": site}))
    return found


def _routes(district: shapely.Geometry, devices: list[Device]) -> list[Zone]:
    """One approved route per construction site: out to the nearest main road, across to the
    main-road point nearest the disposal site (a straight leg: the synthetic city has no road
    graph), then in. Each lists the trackers of its trucks."""
    sites: dict[str, list[Device]] = {}
    for device in devices:
        site = device.meta.get("site", "") if device.kind == "gps" else ""
        if site.startswith("site-"):
            sites.setdefault(site, []).append(device)
    roads = shapely.intersection(
        shapely.MultiLineString([shapely.LineString(c) for c in ROADS.values()]), district)
    routes = []
    for site, trucks in sorted(sites.items()):
        start = shapely.Point(np.median([[t.lon, t.lat] for t in trucks], axis=0))
        name, lon, lat = min(DISPOSAL_SITES,
                             key=lambda d: shapely.distance(start, shapely.Point(d[1], d[2])))
        end = shapely.Point(lon, lat)
        on_road = shapely.line_interpolate_point(roads, shapely.line_locate_point(roads, start))
        off_road = shapely.line_interpolate_point(roads, shapely.line_locate_point(roads, end))
        line = shapely.LineString([start, on_road, off_road, end])
        title = f"Construction site {site[5:]} to the {name}"
        routes.append(_zone(f"route-{site}", "muck_route", title, line,
                            {"site": site, "disposal": name,
                             "vehicles": sorted(t.id for t in trucks)}))
    return routes


def _fire_lanes(rng: np.random.Generator, devices: list[Device]) -> list[Zone]:
    """Community-gate cameras turned to watch the fire lane beside them (replacing `devices`'
    entries in place): a lane 40 m by 6 m running from the camera's foot."""
    gates = [i for i, d in enumerate(devices)
             if d.kind == "camera" and d.meta.get("site") == "community_gate"]
    lanes = []
    for n, i in enumerate(sorted(rng.choice(gates, size=FIRE_LANES, replace=False).tolist())):
        camera = devices[i]
        devices[i] = msgspec.structs.replace(camera, meta={**camera.meta, "site": "fire_lane"})
        angle = float(rng.uniform(0.0, math.pi))
        lane = shapely.box(0.0, -LANE_WIDTH_M / 2, LANE_LENGTH_M, LANE_WIDTH_M / 2)
        lane = shapely.affinity.rotate(lane, angle, origin=(0, 0), use_radians=True)
        lane = shapely.affinity.affine_transform(lane, [
            1 / (1000 * KM_PER_DEG_LON_AT_31N), 0, 0, 1 / (1000 * KM_PER_DEG_LAT),
            camera.lon, camera.lat])
        place = camera.name.split(", ", 1)[-1]
        lanes.append(_zone(f"fire-lane-{n + 1:02d}", "fire_lane", f"Fire lane, {place}", lane,
                           {"camera": camera.id}))
    return lanes


def _zone(zone_id: str, kind: str, name: str, geometry: shapely.Geometry,
          meta: dict) -> Zone:
    rounded = shapely.set_precision(geometry, PRECISION_DEG)
    return Zone(zone_id, kind, name, to_geojson_geometry(rounded), meta)
