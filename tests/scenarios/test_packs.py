"""Each shipped pack driven through its real evaluators with readings that must fire it and
readings that must not: the thresholds in the manifests mean what the READMEs say."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import msgspec
import numpy as np
import pytest

from cityops.domain.calendar import LocalClock
from cityops.domain.city import Device, Staff, Vehicle, Zone
from cityops.domain.geo import CityMap
from cityops.domain.kinds import BUILTIN_KINDS
from cityops.domain.readings import ReadingBatch
from cityops.domain.registry import DeviceRegistry
from cityops.domain.scenarios.build import build
from cityops.domain.scenarios.context import STATE_CODES, Context, Places
from cityops.packs import grid
from cityops.scenarios.loader import STANDARD_DEPARTMENTS, load_scenarios

US = 1_000_000
TZ = ZoneInfo("Asia/Shanghai")
LAT, LON = 31.2, 121.5
DAY = (2025, 7, 15)  # a Tuesday, a working day


def at(hour: int, minute: int = 0, second: float = 0.0, day: int = 0) -> float:
    """Unix seconds of a local time on DAY (plus `day` days)."""
    base = dt.datetime(*DAY, hour, minute, tzinfo=TZ) + dt.timedelta(days=day, seconds=second)
    return base.timestamp()


@pytest.fixture(scope="module")
def packs():
    return {p.name: p for p in load_scenarios(kinds=BUILTIN_KINDS,
                                              departments=set(STANDARD_DEPARTMENTS))}


def _square(lon: float, lat: float, half: float) -> dict:
    ring = [[lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half],
            [lon - half, lat + half], [lon - half, lat - half]]
    return {"type": "Polygon", "coordinates": [ring]}


def _city():
    """One device of each sort a pack reads, placed where the tests need them."""
    pack = grid.generate(devices={}, center=(LAT, LON), size_deg=0.2)
    d = []

    def add(device_id, kind, dlat=0.0, dlon=0.0, **meta):
        d.append(Device(device_id, kind, LAT + dlat, LON + dlon, meta=meta))

    add("noise-res", "noise", setting="residential")
    add("noise-road", "noise", 0.001, setting="roadside")
    add("depth-under", "water_depth", -0.05, -0.05, site="underpass")
    add("depth-low", "water_depth", 0.05, 0.05, site="low_point")
    add("rain-near", "rainfall", -0.051, -0.05)  # about 110 m from the underpass
    add("rain-far", "rainfall", 0.05, -0.05)  # about 11 km away
    add("wind-1", "wind", 0.01)
    add("cam-lane", "camera", 0.02, site="fire_lane")
    add("cam-gate", "camera", 0.021, site="community_gate")
    add("truck-gps", "gps", -0.03)
    add("staff-gps", "gps", -0.031)
    add("bin-1", "bin_fill", 0.03)
    add("kpi-sorting", "kpi", 0.04, kpi="sorting_accuracy", level="village")
    add("kpi-110", "kpi", 0.041, kpi="calls_110", level="district")
    add("cover-1", "manhole_tilt", 0.06)
    add("lamp-1", "street_lamp", 0.07)
    for i in range(4):  # one building, four detectors: one grid cell
        add(f"smoke-{i}", "smoke", -0.02, 0.02 + i * 1e-5, building="residential")
    add("smoke-away", "smoke", 0.08, 0.08)
    add("meter-elderly", "water_meter", -0.06, household="elderly_living_alone")
    add("meter-family", "water_meter", -0.061, household="family")
    add("air-1", "air_quality", 0.09)
    zones = [
        Zone("forbidden-core", "muck_forbidden", "Core", _square(LON + 0.03, LAT + 0.03, 0.005)),
        Zone("forbidden-school", "muck_forbidden", "School", _square(LON - 0.03, LAT + 0.03,
                                                                     0.005),
             {"hours": "07:00-22:00"}),
        Zone("route-1", "muck_route", "Site to wharf",
             {"type": "LineString", "coordinates": [[LON - 0.08, LAT - 0.03],
                                                    [LON + 0.08, LAT - 0.03]]},
             {"vehicles": ["truck-gps"]}),
    ]
    vehicles = [Vehicle("truck-1", "T1", "muck_truck", "truck-gps")]
    staff = [Staff("s1", "Inspector", "city_management", "staff-gps", grid.DISTRICT)]
    return msgspec.structs.replace(pack, devices=d, zones=zones, vehicles=vehicles, staff=staff)


CITY = _city()


class Rig:
    """A pack's evaluators over the test city, fed rows of (device, channel, time, value)."""

    def __init__(self, pack, state: str = "daily") -> None:
        resolved, errors = CityMap.from_pack(CITY).resolve_devices(CITY.devices)
        assert not errors, errors
        self.registry = DeviceRegistry(CITY.kinds)
        self.registry.add(resolved)
        n = len(self.registry)
        self.ctx = Context(self.registry, Places.build(self.registry, CITY),
                           LocalClock(CITY.info.timezone, CITY.calendar),
                           state=np.full(n, STATE_CODES[state], np.int8),
                           zones=list(CITY.zones))
        self.evaluators = [build(pack, rule, self.ctx) for rule in pack.rules]
        self.last_seen = np.full(n, np.iinfo(np.int64).min, np.int64)
        self.signals = []

    def _rows(self, rows) -> ReadingBatch:
        d, c, t, v = [], [], [], []
        for device, channel, ts, value in rows:
            i = self.registry.index[device]
            kind = self.registry.kinds[self.registry.kind_of[i]]
            d.append(i), c.append(kind.channel_index(channel)), t.append(int(ts * US))
            v.append(value)
        return ReadingBatch(np.array(d, np.int32), np.array(c, np.int8), np.array(t, np.int64),
                            np.array(v, np.float64))

    def feed(self, rows, now: float | None = None, *, refused: bool = False) -> list:
        """Rows at once as one batch (the engine's clock at the newest row or `now`)."""
        if not rows:
            return []
        batch = self._rows(rows)
        self.ctx.now_us = int((now if now is not None else max(r[2] for r in rows)) * US)
        found = []
        if refused:
            batch.source = "rejections"
        else:
            np.maximum.at(self.last_seen, batch.device, batch.ts)
        for e in self.evaluators:
            source = getattr(e, "source", "readings")
            if hasattr(e, "on_signals") or (source == "rejections") != refused:
                continue
            found += e.on_batch(batch, self.ctx) or []
        found += self._composites(found)
        self.signals += found
        return found

    def tick(self, now: float) -> list:
        self.ctx.now_us = int(now * US)
        self.ctx.last_seen_us = self.last_seen
        found = []
        for e in self.evaluators:
            if not hasattr(e, "on_signals"):
                found += e.on_tick(self.ctx) or []
        found += self._composites(found)
        self.signals += found
        return found

    def _composites(self, found) -> list:
        out = []
        for e in self.evaluators:
            if hasattr(e, "on_signals"):
                out += e.on_signals(found, self.ctx) or []
        return out

    def series(self, device, channel, start: float, minutes: float, value, step_s=60.0):
        """One reading every `step_s` for `minutes`, fed one at a time, ticking along."""
        n = int(minutes * 60 / step_s) + 1
        for i in range(n):
            t = start + i * step_s
            v = value(i, t) if callable(value) else value
            self.feed([(device, channel, t, v)])
            self.tick(t)

    def raised(self, rule: str | None = None, subject: str | None = None) -> list:
        return [s for s in self.signals if s.active
                and (rule is None or s.rule == rule) and (subject is None or s.subject == subject)]

    def cleared(self, rule: str) -> list:
        return [s for s in self.signals if not s.active and s.rule == rule]


# -- noise ----------------------------------------------------------------------------------


def test_noise_at_night_above_55_for_10_minutes(packs):
    rig = Rig(packs["noise"])
    rig.series("noise-res", "laeq", at(23), 9, 62.0)
    assert not rig.raised()  # nine minutes is not ten
    rig.series("noise-res", "laeq", at(23, 10), 2, 62.0)
    assert {s.subject for s in rig.raised("noise.night_residential")} == {"noise-res"}


def test_noise_hysteresis_and_the_exact_limit(packs):
    rig = Rig(packs["noise"])
    rig.series("noise-res", "laeq", at(23), 15, 55.0)
    assert not rig.raised()  # exactly at the limit is not above it
    rig.series("noise-res", "laeq", at(23, 20), 12, 60.0)
    assert rig.raised("noise.night_residential")
    rig.series("noise-res", "laeq", at(23, 33), 5, 52.0)
    assert not rig.cleared("noise.night_residential")  # between 50 and 55: still on
    rig.series("noise-res", "laeq", at(23, 39), 0, 49.5)
    assert rig.cleared("noise.night_residential")


def test_noise_day_limit_and_roadside_meters(packs):
    rig = Rig(packs["noise"])
    rig.series("noise-res", "laeq", at(10), 40, 65.0)  # daytime: 65 is city life
    rig.series("noise-road", "laeq", at(23), 20, 70.0)  # not a residential meter
    assert not rig.raised()
    rig.series("noise-res", "laeq", at(14), 31, 74.0)
    assert {s.rule for s in rig.raised()} == {"noise.day_residential"}


def test_noise_special_state_is_stricter(packs):
    daily, special = Rig(packs["noise"]), Rig(packs["noise"], "special")
    for rig in (daily, special):
        rig.series("noise-res", "laeq", at(23), 12, 52.0)
    assert not daily.raised()
    assert special.raised("noise.night_residential")


# -- flood ----------------------------------------------------------------------------------


def test_flood_deep_water_and_its_emergency_level(packs):
    rig = Rig(packs["flood"])
    rig.series("depth-low", "depth", at(3), 5, 14.0)
    assert not rig.raised()
    rig.series("depth-low", "depth", at(3, 10), 3, 16.0)
    assert rig.raised("flood.deep_water", "depth-low")
    emergency = Rig(packs["flood"], "emergency")
    emergency.series("depth-low", "depth", at(3), 3, 12.0)
    assert emergency.raised("flood.deep_water")


def test_flood_rising_water_only_at_underpasses(packs):
    rig = Rig(packs["flood"])
    rising = lambda i, t: 2.0 + 0.8 * i  # noqa: E731  8 cm in 10 minutes, to 10 cm
    rig.series("depth-low", "depth", at(3), 10, rising)
    assert not rig.raised()
    rig.series("depth-under", "depth", at(3), 10, rising)
    assert {(s.rule, s.subject) for s in rig.raised()} == {("flood.rising", "depth-under")}
    slow = Rig(packs["flood"])
    slow.series("depth-under", "depth", at(3), 10, lambda i, t: 2.0 + 0.4 * i)  # 4 cm
    assert not slow.raised()


def test_flood_heavy_rain_and_waterlogging_nearby(packs):
    rig = Rig(packs["flood"])
    rig.series("rain-far", "intensity", at(3), 20, 30.0, step_s=300)
    assert not rig.raised()  # 30 mm/h: heavy shower, under the blue level
    rig.series("rain-far", "intensity", at(4), 11, 40.0, step_s=300)
    assert rig.raised("flood.heavy_rain", "rain-far")
    # Heavy rain far away and water rising at the underpass: no waterlogging.
    rig.series("depth-under", "depth", at(4), 10, lambda i, t: 2.0 + 0.8 * i)
    assert rig.raised("flood.rising") and not rig.raised("flood.waterlogging")
    near = Rig(packs["flood"])
    near.series("rain-near", "intensity", at(4), 11, 40.0, step_s=300)
    near.series("depth-under", "depth", at(4, 12), 10, lambda i, t: 2.0 + 0.8 * i)
    (s,) = near.raised("flood.waterlogging")[:1]
    assert s.subject == "rain-near+depth-under"


# -- typhoon --------------------------------------------------------------------------------


def test_typhoon_is_for_special_and_emergency_states_only(packs):
    assert packs["typhoon"].states == ["special", "emergency"]


def test_typhoon_gale_storm_and_torrential_rain(packs):
    rig = Rig(packs["typhoon"], "special")
    rig.series("wind-1", "speed", at(12), 5, 16.0)
    assert not rig.raised()  # force 7
    rig.series("wind-1", "speed", at(12, 10), 3, 18.5)
    assert {s.rule for s in rig.raised()} == {"typhoon.gale"}
    rig.series("wind-1", "speed", at(12, 20), 3, 26.0)
    assert rig.raised("typhoon.storm_force")
    rig.series("rain-far", "intensity", at(12), 11, 45.0, step_s=300)
    assert not rig.raised("typhoon.torrential_rain")
    rig.series("rain-far", "intensity", at(13), 11, 60.0, step_s=300)
    assert rig.raised("typhoon.torrential_rain")


# -- fire lane ------------------------------------------------------------------------------


def _sighting(rig, camera, start, seconds, code=1.0):
    for s in range(0, seconds + 1, 30):
        t = start + s
        rig.feed([(camera, "event", t, code), (camera, "dwell", t, float(s))])


def test_fire_lane_blocked_after_five_minutes(packs):
    rig = Rig(packs["fire_lane"])
    _sighting(rig, "cam-lane", at(20), 240)
    assert not rig.raised()  # four minutes: a delivery
    _sighting(rig, "cam-gate", at(21), 600)  # not a fire-lane camera
    _sighting(rig, "cam-lane", at(22), 600, code=5.0)  # illegal parking, not the lane
    assert not rig.raised()
    _sighting(rig, "cam-lane", at(23), 330)
    (s,) = rig.raised("fire_lane.blocked")[:1]
    assert s.subject == "cam-lane"


# -- muck -----------------------------------------------------------------------------------


def _drive(rig, device, start, points, speed, step_s=10.0):
    """Fixes along (lat, lon) points, one every step_s."""
    for i, (lat, lon) in enumerate(points):
        t = start + i * step_s
        rig.feed([(device, "lat", t, lat), (device, "lon", t, lon), (device, "speed", t, speed),
                  (device, "heading", t, 90.0)])
        rig.tick(t)


def test_muck_truck_in_a_forbidden_zone(packs):
    rig = Rig(packs["muck"])
    core = (LAT + 0.03, LON + 0.03)
    _drive(rig, "staff-gps", at(23), [core] * 10, 5.0)  # an inspector may walk there
    _drive(rig, "truck-gps", at(23), [(LAT + 0.03, LON + 0.04)] + [core] * 6, 8.0)
    (s,) = rig.raised("muck.forbidden_zone")[:1]
    assert s.subject == "truck-gps@forbidden-core"
    assert not rig.raised(subject="staff-gps")


def test_muck_school_zone_only_in_its_hours(packs):
    school = (LAT + 0.03, LON - 0.03)
    night = Rig(packs["muck"])
    _drive(night, "truck-gps", at(23), [school] * 10, 8.0)
    assert not night.raised("muck.forbidden_zone")
    evening = Rig(packs["muck"])
    _drive(evening, "truck-gps", at(21), [school] * 10, 8.0)
    assert evening.raised("muck.forbidden_zone", "truck-gps@forbidden-school")


def test_muck_off_route(packs):
    rig = Rig(packs["muck"])
    on_route = [(LAT - 0.03 + 0.0005, LON - 0.05 + 0.0005 * i) for i in range(30)]
    _drive(rig, "truck-gps", at(23), on_route, 30.0)  # ~55 m off the line: on the road
    assert not rig.raised("muck.off_route")
    away = [(LAT - 0.03 + 0.006, LON - 0.03 + 0.0005 * i) for i in range(25)]  # ~670 m
    _drive(rig, "truck-gps", at(23, 10), away, 30.0)
    assert rig.raised("muck.off_route", "truck-gps")


def test_muck_speeding_trucks_not_staff(packs):
    rig = Rig(packs["muck"])
    road = [(LAT - 0.03, LON - 0.05 + 0.001 * i) for i in range(10)]
    _drive(rig, "truck-gps", at(23), road, 45.0)
    _drive(rig, "staff-gps", at(23, 5), road, 70.0)
    assert not rig.raised("muck.speeding")
    _drive(rig, "truck-gps", at(23, 10), road, 62.0)
    assert rig.raised("muck.speeding", "truck-gps")


def test_muck_driving_by_day(packs):
    road = [(LAT - 0.03, LON - 0.05 + 0.001 * i) for i in range(25)]
    night = Rig(packs["muck"])
    _drive(night, "truck-gps", at(23), road, 30.0)
    assert not night.raised("muck.out_of_hours")
    day = Rig(packs["muck"])
    _drive(day, "truck-gps", at(10), road[:10], 30.0)  # 90 s: a short hop
    assert not day.raised("muck.out_of_hours")
    _drive(day, "truck-gps", at(11), road, 30.0)
    assert day.raised("muck.out_of_hours", "truck-gps")


# -- garbage --------------------------------------------------------------------------------


def test_garbage_full_bin_and_its_collection(packs):
    rig = Rig(packs["garbage"])
    rig.series("bin-1", "fill", at(16), 60, 88.0, step_s=600)
    assert not rig.raised()
    rig.series("bin-1", "fill", at(18), 10, 95.0, step_s=600)
    assert rig.raised("garbage.bin_full", "bin-1")
    rig.series("bin-1", "fill", at(19), 0, 50.0)
    assert not rig.cleared("garbage.bin_full")  # not collected yet
    rig.series("bin-1", "fill", at(5, day=1), 0, 4.0)
    assert rig.cleared("garbage.bin_full")


def test_garbage_sorting_accuracy_per_day(packs):
    rig = Rig(packs["garbage"])
    rig.feed([("kpi-sorting", "value", at(23, 59), 93.5)])
    rig.feed([("kpi-110", "value", at(23, 59), 80.0)])  # another series entirely
    assert not rig.raised()
    rig.feed([("kpi-sorting", "value", at(23, 59, day=1), 86.0)])
    assert rig.raised("garbage.sorting_accuracy", "kpi-sorting")
    rig.feed([("kpi-sorting", "value", at(23, 59, day=2), 91.0)])
    assert rig.cleared("garbage.sorting_accuracy")


# -- components -----------------------------------------------------------------------------


def test_components_manhole_cover_displaced(packs):
    rig = Rig(packs["components"])
    rig.series("cover-1", "tilt", at(9), 30, 8.0, step_s=300)
    assert not rig.raised()
    rig.feed([("cover-1", "tilt", at(10), 30.0)])
    assert rig.raised("components.manhole_displaced", "cover-1")  # at once
    rig.feed([("cover-1", "tilt", at(10, 5), 7.0)])
    assert not rig.cleared("components.manhole_displaced")
    rig.feed([("cover-1", "tilt", at(10, 10), 1.0)])
    assert rig.cleared("components.manhole_displaced")


def test_components_lamp_dark_at_night_not_by_day(packs):
    rig = Rig(packs["components"])
    rig.series("lamp-1", "power", at(12), 60, 0.0, step_s=300)  # off by day: as it should be
    assert not rig.raised()
    rig.series("lamp-1", "power", at(22), 5, 0.8, step_s=300)
    assert not rig.raised()  # five minutes: a controller rebooting
    rig.series("lamp-1", "power", at(23), 15, 0.8, step_s=300)
    assert rig.raised("components.lamp_out", "lamp-1")


# -- smoke ----------------------------------------------------------------------------------


def test_smoke_cluster_in_one_cell(packs):
    rig = Rig(packs["smoke"])
    t = at(2)
    rig.feed([("smoke-0", "obscuration", t, 12.0), ("smoke-1", "obscuration", t + 60, 9.0),
              ("smoke-2", "obscuration", t + 120, 15.0)])
    rig.feed([("smoke-3", "obscuration", t + 150, 3.0)])  # toast: under the alarm level
    rig.feed([("smoke-away", "obscuration", t + 160, 30.0)])  # another cell
    assert not rig.raised()
    rig.feed([("smoke-3", "obscuration", t + 200, 20.0)])
    (s,) = rig.raised("smoke.alarm_cluster")[:1]
    assert s.subject.startswith("cell:")
    cell = CityMap.from_pack(CITY).cell_of(LAT - 0.02, LON + 0.02)
    assert s.subject == f"cell:{cell}"


def test_one_detector_repeating_its_alarm_is_no_cluster(packs):
    """Issue 14: one detector in alarm sent four readings within 5 minutes and fire, police
    and ambulance were dispatched. The rule counts detectors, not readings."""
    rig = Rig(packs["smoke"])
    t = at(2)
    for k in range(5):
        rig.feed([("smoke-0", "obscuration", t + k * 60, 12.0 + k)])
        rig.tick(t + k * 60)
    rig.feed([("smoke-1", "obscuration", t + 290, 9.0), ("smoke-2", "obscuration", t + 295, 9.0)])
    assert not rig.raised()  # three detectors, however many readings
    rig.feed([("smoke-3", "obscuration", t + 299, 20.0)])
    (s,) = rig.raised("smoke.alarm_cluster")
    assert s.value == 4 and s.detail.startswith("4 devices with readings above 5 in 5 min")
    # The evidence is each detector's newest alarm, once.
    assert sorted(e[2] // US for e in s.evidence) == [int(t + 240), int(t + 290), int(t + 295),
                                                     int(t + 299)]


def test_smoke_alarms_spread_over_more_than_five_minutes_are_no_cluster(packs):
    rig = Rig(packs["smoke"])
    t = at(2)
    for i in range(4):
        rig.feed([(f"smoke-{i}", "obscuration", t + i * 120, 12.0)])
    assert not rig.raised()


# -- elderly --------------------------------------------------------------------------------


def _meter_day(rig, device, flow_at: dict[int, float]):
    """A day of five-minute readings from 00:00; flow at the given hours, else none."""
    for k in range(24 * 12 + 1):
        t = at(0) + k * 300
        rig.feed([(device, "flow", t, flow_at.get(int((t - at(0)) // 3600), 0.0))])
        rig.tick(t)


def test_elderly_silent_from_morning_raises_in_the_evening(packs):
    rig = Rig(packs["elderly"])
    _meter_day(rig, "meter-elderly", {6: 6.0})  # used water at 06:xx, then nothing
    (s,) = rig.raised("elderly.no_water", "meter-elderly")[:1]
    raised_at = dt.datetime.fromtimestamp(s.ts_us / US, TZ)
    assert 18 <= raised_at.hour <= 19  # twelve daytime hours after 07:00


def test_elderly_with_water_at_noon_or_not_elderly(packs):
    rig = Rig(packs["elderly"])
    _meter_day(rig, "meter-elderly", {6: 6.0, 12: 4.0, 18: 5.0})
    _meter_day(rig, "meter-family", {})
    assert not rig.raised()


def test_elderly_a_dripping_tap_is_not_someone_using_water(packs):
    rig = Rig(packs["elderly"])
    _meter_day(rig, "meter-elderly", {h: 0.3 for h in range(24)} | {6: 6.0})
    assert rig.raised("elderly.no_water")


# -- device health --------------------------------------------------------------------------


def test_device_health_offline_after_three_periods(packs):
    rig = Rig(packs["device_health"])
    rig.series("noise-res", "laeq", at(1), 10, 45.0)
    t = at(1, 10)
    rig.tick(t + 170)
    assert not rig.raised("device_health.offline_noise", "noise-res")
    rig.tick(t + 181)
    assert rig.raised("device_health.offline_noise", "noise-res")
    rig.feed([("noise-res", "laeq", t + 200, 44.0)])
    assert rig.cleared("device_health.offline_noise")


def test_device_health_stuck_noise_meter(packs):
    rig = Rig(packs["device_health"])
    rig.series("noise-road", "laeq", at(1), 40, lambda i, t: 45.0 + (i % 3) * 0.4)
    assert not rig.raised("device_health.stuck_noise")
    rig.series("noise-road", "laeq", at(2), 40, 47.3)
    assert rig.raised("device_health.stuck_noise", "noise-road")


def test_device_health_stuck_air_quality(packs):
    rig = Rig(packs["device_health"])
    rig.series("air-1", "pm25", at(1), 150, 18.0, step_s=300)
    assert rig.raised("device_health.stuck_air_quality", "air-1")


def test_device_health_out_of_range_storm(packs):
    rig = Rig(packs["device_health"])
    t = at(3)
    rig.feed([("depth-low", "depth", t + i * 60, 1500.0) for i in range(5)], refused=True)
    assert not rig.raised()  # five refused readings: a bad patch
    rig.feed([("depth-low", "depth", t + 330, 1500.0)], refused=True)
    assert rig.raised("device_health.out_of_range", "depth-low")


# -- vital signs ----------------------------------------------------------------------------


def test_vital_signs_110_calls_far_above_the_same_hour(packs):
    rig = Rig(packs["vital_signs"])
    rng = np.random.default_rng(1)
    for week in range(4):  # four weeks of Tuesdays at 20:00, around 60 calls
        rig.feed([("kpi-110", "value", at(20, day=7 * week - 28), float(rng.poisson(60)))])
    rig.feed([("kpi-110", "value", at(20), 66.0)])
    assert not rig.raised()  # within the usual
    rig.feed([("kpi-110", "value", at(20, day=7), 180.0)])
    assert rig.raised("vital_signs.calls_110", "kpi-110")


def test_vital_signs_decide_nothing_while_learning(packs):
    rig = Rig(packs["vital_signs"])
    rig.feed([("kpi-110", "value", at(20, day=-14), 60.0)])
    rig.feed([("kpi-110", "value", at(20, day=-7), 61.0)])
    rig.feed([("kpi-110", "value", at(20), 400.0)])
    assert not rig.raised()  # two weeks of history: still learning
