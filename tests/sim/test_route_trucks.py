import numpy as np
import pytest
import shapely

from cityops.packs.pudong import generate
from cityops.sim.simulator import Simulator

T0 = 1_795_000_000.0  # a moment in November 2026


@pytest.fixture(scope="module")
def pudong():
    return generate(1)


def test_muck_trucks_drive_their_approved_route_at_night_and_park_by_day(pudong):
    sim = Simulator(pudong, seed=1, start_ts=T0)
    movers = next(g.model for g in sim.groups if g.kind.mobile)
    routes = {}
    for zone in pudong.zones:
        if zone.kind == "muck_route":
            line = shapely.geometry.shape(zone.geometry)
            for device_id in zone.meta["vehicles"]:
                routes[device_id] = line
    trucks = [m for m, d in enumerate(movers.devices) if d.id in routes]
    assert trucks
    members = np.array(trucks)
    channels = [c.name for c in movers.kind.channels]
    lat_i, lon_i, speed_i = (channels.index(c) for c in ("lat", "lon", "speed"))
    offset = 8 * 3600.0  # Shanghai
    for step in range(0, 2 * 86400, 120):
        t = np.full(len(members), T0 + step)
        values = movers.values(members, t, t + offset)
        hour = ((T0 + step + offset) % 86400) / 3600
        for row, m in enumerate(trucks):
            line = routes[movers.devices[m].id]
            point = shapely.Point(values[row, lon_i], values[row, lat_i])
            # Degrees: 0.0005 is about 50 m at Shanghai's latitude.
            assert line.distance(point) < 0.0005, (movers.devices[m].id, step)
            if 6.5 <= hour < 19.5:
                assert values[row, speed_i] == 0.0, (movers.devices[m].id, hour)
            assert values[row, speed_i] <= 50.0


# -- off-route anomalies: the truck must really be off its route, long enough ---------------

T1 = 1_795_400_000.0


def _off_route_raised(city, track) -> bool:
    """Feeds the track's fixes (one every 10 s) to the real off-route rule."""
    from cityops.domain.calendar import LocalClock
    from cityops.domain.geo import CityMap
    from cityops.domain.readings import ReadingBatch
    from cityops.domain.registry import DeviceRegistry
    from cityops.domain.scenarios.context import Context, Places
    from cityops.domain.scenarios.primitives.route import RouteDeviationEvaluator

    scenarios = _scenarios(city)
    pack = next(p for p in scenarios if p.name == "muck")
    rule = next(r for r in pack.rules if r.id == "off_route")
    resolved, _ = CityMap.from_pack(city).resolve_devices(city.devices)
    registry = DeviceRegistry(city.kinds)
    registry.add(resolved)
    ctx = Context(registry, Places.build(registry, city),
                  LocalClock(city.info.timezone, city.calendar), now_us=int(T1 * 1e6),
                  zones=list(city.zones))
    evaluator = RouteDeviationEvaluator(pack, rule, ctx)
    dt = np.arange(0.0, track.duration, 10.0)
    ctx.now_us = int((T1 + track.duration) * 1e6)
    values = track.shape.values(dt, track.fallback)
    lat, lon = values[track.shape.lat_channel], values[track.shape.lon_channel]
    device = registry.index[track.device]
    n = dt.shape[0]
    ts = np.round((T1 + dt) * 1e6).astype(np.int64)
    batch = ReadingBatch(np.full(2 * n, device, np.int32),
                         np.r_[np.zeros(n, np.int8), np.ones(n, np.int8)],
                         np.r_[ts, ts], np.r_[lat, lon])
    return any(s.active for s in evaluator.on_batch(batch, ctx))


_SCENARIOS = {}


def _scenarios(city):
    from cityops.scenarios.loader import load_scenarios

    key = id(city)
    if key not in _SCENARIOS:
        _SCENARIOS[key] = load_scenarios(kinds=city.kinds)
    return _SCENARIOS[key]


def _off_route_tracks(city, tries: int):
    from cityops.sim.anomalies import AnomalyPlan

    plan = AnomalyPlan(city, _scenarios(city), 1, T1, 0.0, rules={"muck.off_route"})
    maker = plan.makers["muck.off_route"]
    for device in maker.candidates:
        for number in range(tries):
            rng = np.random.default_rng([number, 99])
            for track in maker.tracks(device, T1, number, rng):
                track.fallback = np.array([device.lat, device.lon, 0.0, 0.0])
                yield track


def test_every_off_route_anomaly_of_pudong_sets_the_rule_off(pudong):
    """The maker's path must stay beyond the limit from every part of the truck's routes for
    longer than the rule's `for`, not just end far away (routes bend back on themselves)."""
    trucks = {z.meta["vehicles"][0] for z in pudong.zones if z.kind == "muck_route"}
    # One truck per route: routes, not trucks, are what makes a path fit or not.
    city = _one_truck_per_route(pudong, trucks)
    tracks = list(_off_route_tracks(city, tries=12))
    assert len(tracks) > 300
    missed = [(t.device, t.duration) for t in tracks if not _off_route_raised(city, t)]
    assert missed == []


def test_an_off_route_anomaly_on_a_hairpin_route_stays_clear_of_both_legs():
    """A route out and back along two parallel streets 500 m apart: turning off one leg
    towards the other would never be more than 300 m off the route."""
    import msgspec

    from cityops.domain.city import Vehicle, Zone
    from cityops.packs import grid

    city = grid.generate(devices={"gps": 1}, center=(31.2, 121.5), size_deg=0.2)
    truck = city.devices[0]
    d_lat = 500 / 111_195  # 500 m
    out = [[121.46, 31.2], [121.52, 31.2]]
    back = [[121.52, 31.2 + d_lat], [121.46, 31.2 + d_lat]]
    route = Zone("route-hairpin", "muck_route", "Hairpin",
                 {"type": "LineString", "coordinates": out + back},
                 {"vehicles": [truck.id]})
    city = msgspec.structs.replace(city, zones=[route],
                                   vehicles=[Vehicle("truck-1", "T1", "muck_truck", truck.id)])
    tracks = list(_off_route_tracks(city, tries=40))
    assert len(tracks) >= 30
    assert all(_off_route_raised(city, t) for t in tracks)


def _one_truck_per_route(city, trucks: set[str]):
    import msgspec

    return msgspec.structs.replace(
        city, devices=[d for d in city.devices if d.id in trucks],
        vehicles=[v for v in city.vehicles if v.device_id in trucks],
        staff=[], zones=[z for z in city.zones if z.kind == "muck_route"])
