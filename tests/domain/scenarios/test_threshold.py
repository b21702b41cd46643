"""Threshold: strict levels, hysteresis, minimum duration on reading time, late and skewed
readings, per-state levels, calendar and place filters, one signal per transition."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from cityops.domain.readings import ReadingBatch
from cityops.domain.scenarios.primitives.threshold import ThresholdEvaluator
from cityops.domain.scenarios.signals import MAX_EVIDENCE
from cityops.domain.scenarios.spec import Threshold, When, Where

from .city_kit import US, V3, at, batch, context, device, pack, series, set_state

T0 = at(2024, 5, 8, 23, 0)  # a Wednesday night in Shanghai
MIN = 60 * US


def make(rule: Threshold, devices=None, **kw):
    ctx = context(devices or [device(0), device(1)], **kw)
    return ThresholdEvaluator(pack(rule), rule, ctx), ctx


def changes(signals):
    return [(s.subject, s.active, s.value) for s in signals]


def test_above_is_strict_and_clearing_is_inclusive():
    ev, ctx = make(Threshold(id="loud", kind="noise", above=55))
    assert ev.on_batch(series(0, T0, 60, [55.0]), ctx) == []
    out = ev.on_batch(series(0, T0 + MIN, 60, [55.01]), ctx)
    assert changes(out) == [("noise-000", True, 55.01)]
    assert out[0].rule == "test.loud" and out[0].device == 0 and out[0].ts_us == T0 + MIN
    out = ev.on_batch(series(0, T0 + 2 * MIN, 60, [55.0]), ctx)  # at the level: cleared
    assert changes(out) == [("noise-000", False, 55.0)]


def test_hysteresis_keeps_an_episode_and_does_not_start_one():
    ev, ctx = make(Threshold(id="loud", kind="noise", above=55, clear_below=50))
    values = [60, 52, 56, 50.0, 52, 54, 56]
    got = [changes(ev.on_batch(series(0, T0 + i * MIN, 60, [v]), ctx)) for i, v in
           enumerate(values)]
    assert got == [[("noise-000", True, 60)], [], [("noise-000", True, 56)],
                   [("noise-000", False, 50.0)], [], [], [("noise-000", True, 56)]]


def test_below_with_its_own_clear_level():
    ev, ctx = make(Threshold(id="dim", kind="street_lamp", below=10, clear_above=15),
                   [device(0, "street_lamp")])
    got = [changes(ev.on_batch(series(0, T0 + i * MIN, 60, [v]), ctx)) for i, v in
           enumerate([10.0, 9.9, 12, 15.0])]
    assert [[a for _, a, _ in g] for g in got] == [[], [True], [], [False]]


def test_minimum_duration_on_reading_time_not_arrival():
    ev, ctx = make(Threshold(id="loud", kind="noise", above=55, **{"for_": "10m"}))
    # Ten minutes of readings arrive at once, long after: the reading times decide.
    ctx.now_us = T0 + 3600 * US
    out = ev.on_batch(series(0, T0, 60, [60] * 10), ctx)  # 0 .. 9 min: not yet
    assert out == []
    out = ev.on_batch(series(0, T0 + 10 * MIN, 60, [61]), ctx)
    assert changes(out) == [("noise-000", True, 61)] and out[0].ts_us == T0 + 10 * MIN
    assert "10 min" in out[0].detail and "dB(A)" in out[0].detail
    assert len(out[0].evidence) == MAX_EVIDENCE  # eleven readings held it, newest ten kept
    assert out[0].evidence[-1] == (0, 0, T0 + 10 * MIN, 61.0)


def test_a_break_restarts_the_minimum_duration():
    ev, ctx = make(Threshold(id="loud", kind="noise", above=55, clear_below=50,
                             **{"for_": "5m"}))
    values = [60, 60, 60, 53, 60, 60, 60, 60, 60, 60]  # 53 (between the levels) breaks it
    out = ev.on_batch(series(0, T0, 60, values), ctx)
    assert changes(out) == [("noise-000", True, 60)]
    assert out[0].ts_us == T0 + 9 * MIN  # five minutes after the reading at minute 4


def test_one_raise_then_at_most_one_update_per_batch():
    ev, ctx = make(Threshold(id="loud", kind="noise", above=55))
    out = ev.on_batch(series(0, T0, 60, [60, 61, 62, 63]), ctx)
    assert changes(out) == [("noise-000", True, 60), ("noise-000", True, 63)]
    out = ev.on_batch(series(0, T0 + 4 * MIN, 60, [64, 65, 66]), ctx)
    assert changes(out) == [("noise-000", True, 66)]
    assert [e[3] for e in out[0].evidence] == [60, 61, 62, 63, 64, 65, 66]
    # An update the same batch then clears is not sent: the clear is the news.
    out = ev.on_batch(series(0, T0 + 7 * MIN, 60, [70, 40, 70]), ctx)
    assert changes(out) == [("noise-000", False, 40), ("noise-000", True, 70)]
    assert out[1].evidence == [(0, 0, T0 + 9 * MIN, 70.0)]


def test_rows_out_of_order_within_a_batch_are_put_in_time_order():
    rule = Threshold(id="loud", kind="noise", above=55, **{"for_": "2m"})
    ev, ctx = make(rule)
    rows = series(0, T0, 60, [60, 60, 60, 40])
    shuffled = rows.take(np.array([3, 1, 0, 2]))
    out = ev.on_batch(shuffled, ctx)
    assert changes(out) == [("noise-000", True, 60), ("noise-000", False, 40)]
    assert [s.ts_us for s in out] == [T0 + 2 * MIN, T0 + 3 * MIN]


def test_late_readings_never_flip_state_backwards():
    ev, ctx = make(Threshold(id="loud", kind="noise", above=55, **{"for_": "2m"}))
    assert ev.on_batch(series(0, T0, 60, [60, 60, 60]), ctx)[0].active
    # A quiet reading from before the newest one arrives late: the episode stays.
    assert ev.on_batch(series(0, T0 + 30 * US, 60, [40]), ctx) == []
    # A late loud reading cannot start a pending episode in the past either.
    assert ev.on_batch(series(1, T0 + 5 * MIN, 60, [40]), ctx) == []
    assert ev.on_batch(series(1, T0, 60, [70]), ctx) == []
    assert ev.on_batch(series(1, T0 + 6 * MIN, 60, [70]), ctx) == []  # pending starts now
    # A redelivered reading (same time) is evaluated again and changes nothing.
    assert ev.on_batch(series(1, T0 + 6 * MIN, 60, [70]), ctx) == []
    assert ev.on_batch(series(1, T0 + 8 * MIN, 60, [70]), ctx)[0].active


def test_clock_skew_readings_slightly_ahead_count_far_ahead_are_ignored():
    ev, ctx = make(Threshold(id="loud", kind="noise", above=55))
    ctx.now_us = T0
    out = ev.on_batch(series(0, T0 + 90 * US, 60, [60]), ctx)  # a device clock 90 s fast
    assert changes(out) == [("noise-000", True, 60)] and out[0].ts_us == T0 + 90 * US
    # A reading a day ahead is not believed, and does not make honest ones look late.
    assert ev.on_batch(series(1, T0 + 86_400 * US, 60, [70]), ctx) == []
    assert changes(ev.on_batch(series(1, T0 + 10 * US, 60, [70]), ctx)) == [
        ("noise-001", True, 70)]


def test_levels_follow_each_devices_operating_state():
    rule = Threshold(id="loud", kind="noise", above=55, clear_below=50,
                     states={"special": {"above": 50, "clear_below": 45},
                             "emergency": {"for_": "5m"}})
    ev, ctx = make(rule, [device(0), device(1), device(2)])
    set_state(ctx, "special", [0])
    set_state(ctx, "emergency", [2])
    out = ev.on_batch(batch((0, 0, T0, 52), (1, 0, T0, 52), (2, 0, T0, 60)), ctx)
    assert changes(out) == [("noise-000", True, 52)]
    out = ev.on_batch(batch((0, 0, T0 + MIN, 47), (2, 0, T0 + 5 * MIN, 60)), ctx)
    assert changes(out) == [("noise-002", True, 60)]  # device 0 stays (47 > 45)


def test_night_only_rule_starts_at_night_and_clears_with_the_morning():
    rule = Threshold(id="night", kind="noise", above=55, when=When(hours="22:00-06:00"))
    ev, ctx = make(rule)
    assert ev.on_batch(series(0, at(2024, 5, 8, 12), 60, [70]), ctx) == []
    assert changes(ev.on_batch(series(0, at(2024, 5, 8, 23), 60, [60]), ctx)) == [
        ("noise-000", True, 60)]
    assert ev.on_batch(series(0, at(2024, 5, 9, 5, 59), 60, [70]), ctx)[0].active
    out = ev.on_batch(series(0, at(2024, 5, 9, 6, 0), 60, [70]), ctx)
    assert changes(out) == [("noise-000", False, 70)] and "outside" in out[0].detail


def test_where_filters_by_meta_area_and_role():
    devices = [device(0, zone="residential"), device(1, zone="industrial"),
               device(2, village=V3, zone="residential"), device(3, village="", zone="x")]
    meta = Threshold(id="r", kind="noise", above=55, where=Where(meta={"zone": "residential"}))
    ev, ctx = make(meta, devices)
    loud = batch(*[(d, 0, T0, 60) for d in range(4)])
    assert [s.subject for s in ev.on_batch(loud, ctx)] == ["noise-000", "noise-002"]
    either = Threshold(id="r", kind="noise", above=55,
                       where=Where(meta={"zone": ["residential", "industrial"]}))
    ev, ctx = make(either, devices)
    assert len(ev.on_batch(loud, ctx)) == 3
    town = Threshold(id="t", kind="noise", above=55, where=Where(areas=[V3[:9]]))
    ev, ctx = make(town, devices)
    assert [s.subject for s in ev.on_batch(loud, ctx)] == ["noise-002"]
    role = Threshold(id="fast", kind="gps", channel="speed", above=60,
                     where=Where(role="muck_truck"))
    ev, ctx = make(role, [device(0, "gps"), device(1, "gps")])
    ctx.places = dataclasses.replace(ctx.places, roles=np.array(["muck_truck", "staff"], object))
    out = ev.on_batch(batch((0, 2, T0, 80), (1, 2, T0, 80), (0, 0, T0, 80)), ctx)
    assert [(s.subject, s.evidence[0][1]) for s in out] == [("gps-000", 2)]


def test_devices_registered_later_are_read():
    ev, ctx = make(Threshold(id="loud", kind="noise", above=55))
    ctx.registry.add([device(7)])
    ctx.state = np.zeros(len(ctx.registry), np.int8)
    out = ev.on_batch(batch((2, 0, T0, 60)), ctx)  # places not rebuilt yet: still read
    assert changes(out) == [("noise-007", True, 60)]


def test_other_kinds_and_channels_are_not_read():
    ev, ctx = make(Threshold(id="wind", kind="wind", above=20),
                   [device(0, "wind"), device(1, "noise")])
    out = ev.on_batch(batch((0, 1, T0, 300), (1, 0, T0, 300), (0, 0, T0, 25)), ctx)
    assert changes(out) == [("wind-000", True, 25)]
    assert ev.on_batch(ReadingBatch.empty(), ctx) == [] and ev.on_tick(ctx) == []


@pytest.mark.parametrize("rule, message", [
    (Threshold(id="x", kind="noise"), "above"),
    (Threshold(id="x", kind="noise", above=55, clear_below=60), "clear_below"),
    (Threshold(id="x", kind="noise", below=5, clear_above=1), "clear_above"),
    (Threshold(id="x", kind="noise", above=55, **{"for_": "ten"}), "for_"),
    (Threshold(id="x", kind="noise", channel="volume", above=55), "volume"),
    (Threshold(id="x", kind="noize", above=55), "noize"),
    (Threshold(id="x", kind="noise", above=55, when=When(hours="25:00-06:00")), "25:00"),
])
def test_bad_rules_are_refused_with_what_is_wrong(rule, message):
    with pytest.raises(ValueError, match=message):
        make(rule)
