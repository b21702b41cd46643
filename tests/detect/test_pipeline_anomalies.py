"""Anomalies of the simulator through a live node, scored as the pipeline benchmark scores
them: every one detected, no alert nobody labelled."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import msgspec

from cityops.domain.city import Vehicle, Zone
from cityops.packs import grid

TZ = ZoneInfo("Asia/Shanghai")
METRE_LAT = 1 / 111_195


def at(hour: int) -> float:
    return dt.datetime(2025, 7, 15, hour, 0, tzinfo=TZ).timestamp()


def hairpin_city():
    """Two muck trucks on routes that go out along one street and come back along a parallel
    one 500 m away: a truck turning off one leg towards the other is never 300 m off."""
    city = grid.generate(devices={"gps": 2}, center=(31.2, 121.5), size_deg=0.2)
    zones, vehicles = [], []
    for i, truck in enumerate(city.devices):
        lat = 31.16 + 0.05 * i
        out = [[121.44, lat], [121.53, lat]]
        back = [[121.53, lat + 500 * METRE_LAT], [121.44, lat + 500 * METRE_LAT]]
        zones.append(Zone(f"route-{i}", "muck_route", f"Hairpin {i}",
                          {"type": "LineString", "coordinates": out + back},
                          {"vehicles": [truck.id]}))
        vehicles.append(Vehicle(f"truck-{i}", f"T{i}", "muck_truck", truck.id))
    return msgspec.structs.replace(city, zones=zones, vehicles=vehicles)


async def test_trucks_off_a_hairpin_route_are_detected(replay):
    async with replay(hairpin_city(), at(23), rules={"muck.off_route"}, per_min=0.5,
                      minutes=40, rate_factor=2.0) as r:
        await r.run(40, step_s=5.0)
        verdict = r.score()
    assert verdict["detected"] == verdict["injected"], verdict
    assert verdict["injected"] >= 3
    assert verdict["false_alerts"] == 0, verdict
