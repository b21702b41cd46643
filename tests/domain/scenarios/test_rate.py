"""Rate of change: rises and falls within a window, strict limits, clearing after quiet time,
late readings as history only, per-state parameters, calendar filter."""

from __future__ import annotations

import pytest

from cityops.domain.scenarios.primitives.rate import RateOfChangeEvaluator
from cityops.domain.scenarios.spec import RateOfChange, When

from .city_kit import US, at, batch, context, device, pack, series, set_state

T0 = at(2024, 7, 20, 14)
MIN = 60 * US

RISING = RateOfChange(id="rising", kind="water_depth", rise=5, within="10m", clear_after="30m")


def make(rule=RISING, n=2, **kw):
    ctx = context([device(i, "water_depth") for i in range(n)], **kw)
    return RateOfChangeEvaluator(pack(rule), rule, ctx), ctx


def changes(signals):
    return [(s.subject, s.active, pytest.approx(s.value)) for s in signals]


def test_a_rise_of_more_than_five_within_ten_minutes():
    ev, ctx = make()
    assert ev.on_batch(series(0, T0, 60, [40, 41, 43, 45.0]), ctx) == []  # exactly 5: no
    out = ev.on_batch(series(0, T0 + 4 * MIN, 60, [45.5]), ctx)
    assert changes(out) == [("water_depth-000", True, 5.5)]
    assert out[0].detail == "rose 5.5 cm within 10 min to 45.5 cm (limit: 5 cm)"
    assert [e[3] for e in out[0].evidence] == [40, 41, 43, 45, 45.5]


def test_the_window_includes_a_reading_exactly_within_old():
    ev, ctx = make()
    out = ev.on_batch(batch((0, 0, T0, 40), (0, 0, T0 + 10 * MIN, 46),
                            (1, 0, T0, 40), (1, 0, T0 + 10 * MIN + 1, 46)), ctx)
    assert changes(out) == [("water_depth-000", True, 6)]


def test_a_fall_rule_reports_a_negative_change():
    rule = RateOfChange(id="drop", kind="water_depth", fall=10, within="5m")
    ev, ctx = make(rule)
    out = ev.on_batch(series(0, T0, 60, [80, 85, 74.9]), ctx)
    assert changes(out) == [("water_depth-000", True, -10.1)]
    assert out[0].detail.startswith("fell 10.1 cm")


def test_updates_while_it_keeps_rising_then_clears_after_quiet_time():
    ev, ctx = make()
    out = ev.on_batch(series(0, T0, 60, [40, 46, 52]), ctx)
    assert changes(out) == [("water_depth-000", True, 6), ("water_depth-000", True, 12)]
    steady = ev.on_batch(series(0, T0 + 3 * MIN, 60, [52] * 29), ctx)  # to minute 31
    # 52 at minutes 3 .. 11 still rises > 5 against 40 or 46 inside the window; the update
    # is the newest of them (minute 11: 6 above minute 1's 46).
    assert changes(steady) == [("water_depth-000", True, 6)]
    assert steady[0].ts_us == T0 + 11 * MIN
    out = ev.on_batch(series(0, T0 + 41 * MIN, 60, [52]), ctx)
    assert changes(out) == [("water_depth-000", False, 0)]
    assert out[0].ts_us == T0 + 41 * MIN and "30 min" in out[0].detail


def test_a_tick_clears_a_device_that_stopped_reporting():
    ev, ctx = make()
    assert ev.on_batch(series(0, T0, 60, [40, 46]), ctx)[0].active
    ctx.now_us = T0 + MIN + 30 * MIN - 1
    assert ev.on_tick(ctx) == []
    ctx.now_us += 1
    out = ev.on_tick(ctx)
    assert [(s.subject, s.active, s.ts_us) for s in out] == [
        ("water_depth-000", False, ctx.now_us)]
    assert ev.on_tick(ctx) == []


def test_late_readings_are_history_not_evaluated():
    ev, ctx = make()
    assert ev.on_batch(series(0, T0 + 5 * MIN, 60, [50]), ctx) == []
    # A late reading: much lower, but it is older than the newest one, so it does not fire ...
    assert ev.on_batch(series(0, T0 + 2 * MIN, 60, [30]), ctx) == []
    # ... yet the next reading compares against it.
    out = ev.on_batch(series(0, T0 + 6 * MIN, 60, [36]), ctx)
    assert changes(out) == [("water_depth-000", True, 6)]


def test_per_state_rise_and_window():
    rule = RateOfChange(id="rising", kind="water_depth", rise=5, within="10m",
                        states={"emergency": {"rise": 2, "within": "2m"}})
    ev, ctx = make(rule)
    set_state(ctx, "emergency", [1])
    rows = batch((0, 0, T0, 40), (0, 0, T0 + 5 * MIN, 43), (1, 0, T0, 40),
                 (1, 0, T0 + 3 * MIN, 43), (1, 0, T0 + 4 * MIN, 45.5))
    out = ev.on_batch(rows, ctx)
    assert changes(out) == [("water_depth-001", True, 2.5)]


def test_only_inside_when():
    rule = RateOfChange(id="rising", kind="water_depth", rise=5, within="10m",
                        when=When(months=[6, 7, 8, 9]))
    ev, ctx = make(rule)
    winter = at(2024, 1, 20, 14)
    assert ev.on_batch(series(0, winter, 60, [40, 50]), ctx) == []
    assert ev.on_batch(series(1, T0, 60, [40, 50]), ctx)[0].active


def test_a_rate_rule_needs_rise_or_fall():
    with pytest.raises(ValueError, match="rise"):
        make(RateOfChange(id="x", kind="water_depth"))


def test_a_gauge_at_one_hertz_is_watched_in_panes():
    ev, ctx = make(n=1)
    depth = [40.0] * 1200 + [40.0 + i * 0.01 for i in range(1, 601)]  # +6 cm over 10 min
    out = ev.on_batch(series(0, T0, 1, depth), ctx)
    assert not ev.table.exact
    raised = [s for s in out if s.active]
    assert (raised[0].ts_us - T0) // US == pytest.approx(1700, abs=15)  # 5 cm after 500 s
    assert raised[0].evidence[-1][2] == raised[0].ts_us
