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
