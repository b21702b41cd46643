"""Composite rules: other rules' episodes together within a time and a distance."""

from __future__ import annotations

import math

import msgspec
import pytest

from cityops.domain.scenarios.build import build
from cityops.domain.scenarios.primitives.composite import CompositeEvaluator
from cityops.domain.scenarios.signals import Signal
from cityops.domain.scenarios.spec import Composite
from tests.domain.scenarios.city_kit import at, batch, context, device, kinds_of, pack, set_state

US = 1_000_000
T0 = at(2025, 7, 10, 16, 0)
M_PER_DEG_LAT = math.radians(1.0) * 6_371_008.8


def placed(i: int, kind: str, north_m: float):
    return msgspec.structs.replace(device(i, kind), lat=31.2 + north_m / M_PER_DEG_LAT,
                                   lon=121.5)


def setup(**kw):
    # rain gauges 0 (at 0 m) and 1 (at 1.5 km); underpass gauges 2 (500 m) and 3 (10 km)
    ctx = context([placed(0, "rainfall", 0), placed(1, "rainfall", 1500),
                   placed(2, "water_depth", 500), placed(3, "water_depth", 10_000)])
    rule = Composite(id="waterlogging", all_of=["heavy_rain", "rising_water"], **kw)
    return build(pack(rule, name="flood"), rule, ctx), ctx


def rain(dev: int, minutes: float, active: bool = True) -> Signal:
    return Signal("flood.heavy_rain", f"rainfall-{dev:03d}", active, T0 + int(minutes * 60 * US),
                  dev, evidence=[(dev, 0, T0 + int(minutes * 60 * US), 30.0)])


def water(dev: int, minutes: float, active: bool = True) -> Signal:
    return Signal("flood.rising_water", f"water_depth-{dev:03d}", active,
                  T0 + int(minutes * 60 * US), dev,
                  evidence=[(dev, 0, T0 + int(minutes * 60 * US), 25.0)])


def test_both_members_near_and_together_raise() -> None:
    ev, ctx = setup()
    assert isinstance(ev, CompositeEvaluator)
    assert ev.on_signals([rain(0, 0)], ctx) == []
    out = ev.on_signals([water(2, 5)], ctx)
    assert kinds_of(out) == [("rainfall-000+water_depth-002", True)]
    s = out[0]
    assert s.rule == "flood.waterlogging" and s.device == 2 and s.ts_us == T0 + 5 * 60 * US
    assert (s.lat, s.lon) == (ctx.places.lat[2], ctx.places.lon[2])
    assert {e[0] for e in s.evidence} == {0, 2}
    assert "heavy_rain at rainfall-000 and rising_water at water_depth-002" in s.detail
    assert "500 m apart" in s.detail


def test_one_member_alone_or_far_apart_does_not_raise() -> None:
    ev, ctx = setup()
    assert ev.on_signals([water(3, 0)], ctx) == []  # no rain
    assert ev.on_signals([rain(0, 1)], ctx) == []  # rain 10 km from that underpass
    assert ev.on_signals([rain(0, 2), water(3, 2)], ctx) == []  # updates: still 10 km


def test_a_member_confirmed_too_long_before_does_not_count() -> None:
    ev, ctx = setup(within="30m")
    ev.on_signals([rain(0, 0)], ctx)
    assert ev.on_signals([water(2, 31)], ctx) == []  # rain last confirmed 31 min earlier
    out = ev.on_signals([rain(0, 32)], ctx)  # rain confirmed again: together now
    assert kinds_of(out) == [("rainfall-000+water_depth-002", True)]


def test_exactly_within_is_within() -> None:
    ev, ctx = setup(within="30m")
    ev.on_signals([rain(0, 0)], ctx)
    assert kinds_of(ev.on_signals([water(2, 30)], ctx)) == [
        ("rainfall-000+water_depth-002", True)]


def test_clears_when_any_member_clears_and_pairs_again() -> None:
    ev, ctx = setup()
    ev.on_signals([rain(0, 0), rain(1, 0), water(2, 1)], ctx)
    assert list(ev.active) == ["rainfall-000+water_depth-002"]  # the nearer gauge
    out = ev.on_signals([rain(0, 10, active=False)], ctx)
    assert kinds_of(out) == [("rainfall-000+water_depth-002", False)]
    out = ev.on_signals([rain(1, 11)], ctx)  # the other gauge, 1 km away, still raining
    assert kinds_of(out) == [("rainfall-001+water_depth-002", True)]
    out = ev.on_signals([water(2, 12, active=False)], ctx)
    assert kinds_of(out) == [("rainfall-001+water_depth-002", False)]
    assert ev.on_signals([rain(1, 13)], ctx) == []


def test_one_composite_per_episode_of_the_last_member() -> None:
    ctx_devices = [placed(0, "rainfall", 0), placed(1, "water_depth", 300),
                   placed(2, "water_depth", -300)]
    ctx = context(ctx_devices)
    rule = Composite(id="waterlogging", all_of=["heavy_rain", "rising_water"])
    ev = build(pack(rule, name="flood"), rule, ctx)
    out = ev.on_signals([rain(0, 0), water(1, 1), water(2, 1)], ctx)
    assert sorted(kinds_of(out)) == [("rainfall-000+water_depth-001", True),
                                     ("rainfall-000+water_depth-002", True)]


def test_updates_of_a_member_update_the_composite() -> None:
    ev, ctx = setup()
    ev.on_signals([rain(0, 0), water(2, 1)], ctx)
    out = ev.on_signals([water(2, 6)], ctx)
    assert kinds_of(out) == [("rainfall-000+water_depth-002", True)]
    assert out[0].ts_us == T0 + 6 * 60 * US
    assert ev.on_signals([rain(3, 7)], ctx) == []  # not a member's subject in it


def test_a_movers_position_comes_with_its_signal() -> None:
    ev, ctx = setup(distance_m=1000.0)
    ev.on_signals([water(2, 0)], ctx)
    far = Signal("flood.heavy_rain", "rainfall-000", True, T0, 0, lat=31.3, lon=121.5)
    assert ev.on_signals([far], ctx) == []  # the signal's own place, 11 km off
    near = Signal("flood.heavy_rain", "rainfall-000", True, T0 + US, 0,
                  lat=ctx.places.lat[2], lon=ctx.places.lon[2])
    assert kinds_of(ev.on_signals([near], ctx)) == [("rainfall-000+water_depth-002", True)]


def test_members_of_other_packs_and_unrelated_signals() -> None:
    ctx = context([placed(0, "rainfall", 0), placed(1, "water_depth", 100)])
    rule = Composite(id="waterlogging", all_of=["weather.heavy_rain", "rising_water"])
    ev = build(pack(rule, name="flood"), rule, ctx)
    other = Signal("flood.heavy_rain", "rainfall-000", True, T0, 0)
    assert ev.on_signals([other, water(1, 0)], ctx) == []
    theirs = Signal("weather.heavy_rain", "rainfall-000", True, T0, 0)
    assert kinds_of(ev.on_signals([theirs], ctx)) == [("rainfall-000+water_depth-001", True)]


def test_distance_per_operating_state() -> None:
    ev, ctx = setup(distance_m=2000.0, states={"emergency": {"distance_m": 20_000.0}})
    ev.on_signals([rain(0, 0)], ctx)
    assert ev.on_signals([water(3, 1)], ctx) == []
    set_state(ctx, "emergency", [3])
    assert kinds_of(ev.on_signals([water(3, 2)], ctx)) == [
        ("rainfall-000+water_depth-003", True)]


def test_three_members_must_all_be_near_each_other() -> None:
    ctx = context([placed(0, "rainfall", 0), placed(1, "wind", 1800),
                   placed(2, "water_depth", 900)])
    rule = Composite(id="typhoon_flood", all_of=["rain", "wind", "water"], distance_m=1000.0)
    ev = build(pack(rule, name="t"), rule, ctx)
    signals = [Signal("t.rain", "r", True, T0, 0), Signal("t.wind", "w", True, T0, 1),
               Signal("t.water", "x", True, T0, 2)]
    assert ev.on_signals(signals, ctx) == []  # rain and wind 1.8 km apart
    ev2 = build(pack(rule, name="t"), rule, ctx)
    signals[1] = Signal("t.wind", "w", True, T0, 1, lat=ctx.places.lat[2] - 0.001,
                        lon=ctx.places.lon[2])
    assert kinds_of(ev2.on_signals(signals, ctx)) == [("r+w+x", True)]


def test_reads_no_readings_and_refuses_a_bad_list() -> None:
    ev, ctx = setup()
    assert ev.on_batch(batch((0, 0, T0, 40.0)), ctx) == [] and ev.on_tick(ctx) == []
    with pytest.raises(ValueError, match="at least two different rules"):
        rule = Composite(id="c", all_of=["a", "a"])
        build(pack(rule), rule, ctx)
