"""Anomalies of the simulator through a live node, scored as the pipeline benchmark scores
them: every one detected, no alert nobody labelled."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import msgspec

from cityops.domain.city import Device, Vehicle, Zone
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


def flood_city():
    """Four places 8 km apart, each with two underpass gauges and a rain gauge within a
    kilometre of them: rain there is "near" those underpasses for the waterlogging composite
    (3 km), and far from the others."""
    city = grid.generate(devices={}, center=(31.2, 121.5), size_deg=0.3)
    devices = []
    for place in range(4):
        lat, lon = 31.08 + 0.06 * place, 121.38 + 0.06 * place
        devices.append(Device(f"rainfall-{place:06d}", "rainfall", lat, lon))
        for j in range(2):
            devices.append(Device(f"water_depth-{2 * place + j:06d}", "water_depth",
                                  lat + 0.004 * (j + 1), lon - 0.003, meta={"site": "underpass"}))
    return msgspec.structs.replace(city, devices=devices)


async def test_waterlogging_fires_only_where_it_was_injected(replay):
    """Deep water at an underpass rises fast too (a `rising` companion), and a rising episode
    stays open for half an hour after the water stops rising: heavy rain injected nearby in
    that time makes a waterlogging alert that no anomaly was labelled with, unless the plan
    keeps such anomalies apart."""
    rules = {"flood.deep_water", "flood.rising", "flood.heavy_rain", "flood.waterlogging"}
    async with replay(flood_city(), at(10), rules=rules, per_min=1.0, minutes=60,
                      rate_factor=2.0) as r:
        await r.run(60, step_s=5.0)
        verdict = r.score()
    assert verdict["false_alerts"] == 0, verdict
    assert verdict["detected"] == verdict["injected"], verdict
    assert {"flood.deep_water", "flood.heavy_rain", "flood.waterlogging"} <= set(
        verdict["injected_rules"]), verdict
