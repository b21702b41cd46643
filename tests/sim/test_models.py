"""Reading models: pure functions of (seed, device, time), inside their ranges, with the daily
shapes a city shows."""

from __future__ import annotations

import numpy as np
import pytest

from cityops.domain.city import ChannelSpec, Device, DeviceKind
from cityops.domain.kinds import BUILTIN_KINDS
from cityops.sim.models import SENSOR_MODELS, Generic, model_for
from cityops.sim.places import BBox
from cityops.sim.randomness import normal, stream_key, uniform
from cityops.sim.weather import Weather

T0 = 1_716_739_200.0  # 2024-05-26 16:00 UTC, midnight in Shanghai
BOX = BBox(31.0, 121.0, 31.2, 121.2)
LOCAL = 8 * 3600.0  # Asia/Shanghai


def devices(kind: str, n: int) -> list[Device]:
    return [Device(f"{kind}-{i:06d}", kind, 31.0 + 0.2 * (i % 7) / 7, 121.0 + 0.2 * (i % 11) / 11)
            for i in range(n)]


def model(kind: str, n: int = 50, seed: int = 1):
    return model_for(BUILTIN_KINDS[kind], devices(kind, n), seed, Weather(seed, BOX))


def grid(n_devices: int, start: float, hours: float, step_s: float):
    """Every device at every step: (member, t, local seconds)."""
    times = start + np.arange(0.0, hours * 3600.0, step_s)
    member = np.repeat(np.arange(n_devices), len(times))
    t = np.tile(times, n_devices)
    return member, t, t + LOCAL


def test_counter_based_draws_are_pure_and_spread():
    key = stream_key(3, "x")
    a = uniform(key, np.arange(100_000), 7)
    assert np.array_equal(a, uniform(key, np.arange(100_000), 7))
    assert not np.array_equal(a, uniform(stream_key(4, "x"), np.arange(100_000), 7))
    assert 0.0 <= a.min() and a.max() < 1.0
    assert abs(a.mean() - 0.5) < 0.01
    z = normal(key, np.arange(100_000))
    assert abs(z.mean()) < 0.02 and abs(z.std() - 1.0) < 0.02
    # Neighbouring counters are not correlated.
    assert abs(np.corrcoef(a[:-1], a[1:])[0, 1]) < 0.02


@pytest.mark.parametrize("kind", sorted(SENSOR_MODELS))
def test_values_are_the_same_however_the_times_are_split(kind):
    m1, m2 = model(kind), model(kind)
    member, t, local = grid(50, T0, 3, 97.0)
    whole = m1.values(member, t, local)
    halves = np.concatenate([
        m2.values(member[::2], t[::2], local[::2]),
        m2.values(member[1::2], t[1::2], local[1::2]),
    ])
    order = np.concatenate([np.arange(len(t))[::2], np.arange(len(t))[1::2]])
    assert np.array_equal(whole[order], halves)


@pytest.mark.parametrize("kind", sorted(SENSOR_MODELS))
def test_a_week_of_values_stays_inside_the_channel_ranges(kind):
    m = model(kind, n=40)
    member, t, local = grid(40, T0, 24 * 7, 600.0)
    values = m.values(member, t, local)
    spec = BUILTIN_KINDS[kind]
    assert values.shape == (len(t), len(spec.channels))
    assert np.isfinite(values).all()
    for c, channel in enumerate(spec.channels):
        assert values[:, c].min() >= channel.min, channel.name
        assert values[:, c].max() <= channel.max, channel.name


def test_a_different_seed_gives_a_different_city():
    member, t, local = grid(20, T0, 2, 60.0)
    a = model("noise", 20, seed=1).values(member, t, local)
    b = model("noise", 20, seed=2).values(member, t, local)
    assert not np.array_equal(a, b)


def hourly(values: np.ndarray, local: np.ndarray, stat=np.median) -> np.ndarray:
    hour = ((local % 86400) // 3600).astype(int)
    return np.array([stat(values[hour == h]) for h in range(24)])


def test_noise_is_quiet_at_night_and_busy_by_day_with_night_nuisances():
    m = model("noise", 200)
    member, t, local = grid(200, T0, 24 * 7, 300.0)
    level = m.values(member, t, local)[:, 0]
    by_hour = hourly(level, local)
    assert 40.0 <= by_hour[3] <= 50.0
    assert 55.0 <= by_hour[11] <= 70.0 and 55.0 <= by_hour[16] <= 70.0
    hour = (local % 86400) / 3600
    loud = level > 70.0
    night = (hour >= 22) | (hour < 5)
    assert loud[night].sum() > 20  # nuisance episodes happen ...
    assert loud[night].mean() > 5 * loud[~night].mean()  # ... and at night


def test_rain_raises_water_depth_at_the_gauges():
    weather = Weather(5, BOX)
    times = T0 + np.arange(0, 30 * 86400, 900.0)
    rain = weather.rain(times, np.full(len(times), 31.1), np.full(len(times), 121.1))
    assert (rain == 0).mean() > 0.5  # mostly dry
    assert rain.max() > 10.0  # but it pours now and then
    gauges = model("water_depth", 30, seed=5)
    member = np.repeat(np.arange(30), len(times))
    t = np.tile(times, 30)
    depth = gauges.values(member, t, t + LOCAL)[:, 0].reshape(30, len(times)).mean(axis=0)
    wettest = int(np.argmax(rain))
    dry = rain == 0
    dry_after_dry = dry & np.concatenate([[False] * 16, dry[:-16]])  # dry for the past 4 h
    assert depth[wettest + 2] > 3 * np.median(depth[dry_after_dry]) + 1.0
    # Rain gauges read the same storms.
    rain_gauges = model("rainfall", 10, seed=5)
    r = rain_gauges.values(np.zeros(len(times), dtype=int), times, times + LOCAL)[:, 0]
    assert np.corrcoef(r, rain)[0, 1] > 0.8


def test_bins_fill_through_the_day_and_are_emptied_at_dawn():
    m = model("bin_fill", 100)
    member, t, local = grid(100, T0, 48, 1800.0)
    fill = m.values(member, t, local)[:, 0]
    by_hour = hourly(fill, local)
    assert by_hour[9] < 40.0  # collected a few hours ago
    assert by_hour[3] > 60.0  # a day's litter
    assert fill.max() == 100.0  # some overflow before the round


def test_street_lamps_light_at_night_and_mostly_work():
    m = model("street_lamp", 300)
    member, t, local = grid(300, T0, 24, 1800.0)
    power = m.values(member, t, local)[:, 0]
    hour = (local % 86400) / 3600
    at_night = (hour >= 20) | (hour < 4)
    at_noon = (hour >= 10) & (hour < 15)
    assert (power[at_night] > 0).mean() > 0.98
    assert (power[at_noon] == 0).mean() > 0.98


def test_cameras_mostly_see_nothing_and_events_dwell():
    m = model("camera", 200)
    member, t, local = grid(200, T0, 24, 60.0)
    values = m.values(member, t, local)
    event, dwell = values[:, 0], values[:, 1]
    assert (event == 0).mean() > 0.9
    assert set(np.unique(event)) <= {0, 1, 2, 3, 4, 5, 6}
    assert len(np.unique(event)) >= 5
    assert (dwell[event == 0] == 0).all()
    assert dwell[event > 0].max() > 300.0  # long enough for "dwelling > 5 min" rules


def test_smoke_and_manholes_are_quiet_with_rare_alarms():
    smoke = model("smoke", 500)
    member, t, local = grid(500, T0, 24 * 3, 600.0)
    obscuration = smoke.values(member, t, local)[:, 0]
    assert np.median(obscuration) < 0.1
    assert 0 < (obscuration > 5).sum() < len(t) * 0.01
    tilt = model("manhole_tilt", 500).values(member, t, local)[:, 0]
    assert np.median(tilt) < 2.0
    assert 0 < (tilt > 10).sum() < len(t) * 0.01


def test_some_water_meters_go_silent_for_long_stretches():
    m = model("water_meter", 400)
    member, t, local = grid(400, T0, 24 * 4, 300.0)
    flow = m.values(member, t, local)[:, 0].reshape(400, -1)
    by_hour = hourly(flow.ravel(), local, np.mean)
    assert by_hour[8] > 3 * by_hour[3]  # morning taps, quiet nights
    daytime = ((local.reshape(400, -1)[0] % 86400) / 3600 > 7) & (
        (local.reshape(400, -1)[0] % 86400) / 3600 < 22
    )
    silent_days = (flow[:, daytime].reshape(400, 4, -1).max(axis=2) == 0).any(axis=1)
    assert 0 < silent_days.sum() < 400 * 0.2


def test_air_quality_peaks_with_the_traffic_and_ozone_with_the_sun():
    m = model("air_quality", 20)
    member, t, local = grid(20, T0, 24 * 5, 600.0)
    values = m.values(member, t, local)
    pm25, pm10, no2, o3 = values.T
    assert (pm10 >= pm25).mean() > 0.95
    assert hourly(no2, local)[8] > 1.3 * hourly(no2, local)[3]
    assert hourly(o3, local)[15] > 2 * hourly(o3, local)[3]


def test_wind_has_a_speed_and_a_direction():
    m = model("wind", 20)
    member, t, local = grid(20, T0, 48, 600.0)
    speed, direction = m.values(member, t, local).T
    assert 0.5 < np.median(speed) < 15.0
    assert direction.min() >= 0.0 and direction.max() < 360.0
    assert np.std(direction) > 20.0


def test_an_unknown_kind_gets_a_generic_model_inside_its_ranges():
    kind = DeviceKind("river_ph", "River pH", [ChannelSpec("ph", "pH", 0.0, 14.0),
                                               ChannelSpec("temp", "C", -5.0, 40.0)], 60)
    m = model_for(kind, devices("river_ph", 10), 1, Weather(1, BOX))
    assert isinstance(m, Generic)
    member, t, local = grid(10, T0, 24, 300.0)
    values = m.values(member, t, local)
    assert (values[:, 0] >= 0).all() and (values[:, 0] <= 14).all()
    assert (values[:, 1] >= -5).all() and (values[:, 1] <= 40).all()
