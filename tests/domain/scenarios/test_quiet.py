"""Quiet ("nothing happened"): time without activity counted only inside `when`, raised on
ticks, cleared by activity, late activity, per-state durations; a meter never heard of (being
installed) or resting in maintenance is nobody going quiet."""

from __future__ import annotations

import numpy as np

from cityops.domain.scenarios.primitives.quiet import QuietEvaluator
from cityops.domain.scenarios.spec import Quiet, When

from .city_kit import US, active, at, batch, context, device, pack, set_state

H = 3600 * US
DAYTIME = When(hours="07:00-19:00")
ELDERLY = Quiet(id="no_water", kind="water_meter", active_above=0.5, when=DAYTIME,
                **{"for_": "12h"})


def make(rule=ELDERLY, n=2, heard=True):
    meters = [device(i, "water_meter") for i in range(n)]
    if heard:  # meters in use since well before the tests' days
        meters = [active(m, at(2024, 1, 1)) for m in meters]
    ctx = context(meters)
    return QuietEvaluator(pack(rule), rule, ctx), ctx


def tick(ev, ctx, t):
    ctx.now_us = t
    return [(s.subject, s.active) for s in ev.on_tick(ctx)]


def flow(ev, ctx, d, t, v):
    ctx.now_us = max(ctx.now_us, t)
    return [(s.subject, s.active, s.ts_us) for s in ev.on_batch(batch((d, 0, t, v)), ctx)]


def test_twelve_daytime_hours_span_a_night():
    ev, ctx = make()
    assert tick(ev, ctx, at(2024, 5, 6, 7)) == []  # Monday 07:00: the rule starts
    assert flow(ev, ctx, 0, at(2024, 5, 6, 15), 3.0) == []  # device 0 used water at 15:00
    assert flow(ev, ctx, 1, at(2024, 5, 6, 16), 0.5) == []  # 0.5 is not above 0.5
    assert tick(ev, ctx, at(2024, 5, 6, 18, 59)) == []
    assert tick(ev, ctx, at(2024, 5, 6, 19)) == [("water_meter-001", True)]  # 07-19 quiet
    # Device 0: 15-19 (4 h) and Tuesday 07-15 (8 h); the night does not count.
    assert tick(ev, ctx, at(2024, 5, 7, 14, 59)) == []
    ctx.now_us = at(2024, 5, 7, 15)
    out = ev.on_tick(ctx)
    assert [(s.subject, s.active, s.value) for s in out] == [("water_meter-000", True, 12 * 3600)]
    assert out[0].detail == ("nothing above 0.5 L/min for 12 h inside 07:00-19:00 "
                             "(last activity 24 h ago)")
    assert tick(ev, ctx, at(2024, 5, 7, 16)) == []  # raised once


def test_activity_clears_and_starts_the_count_again():
    ev, ctx = make(n=1)
    tick(ev, ctx, at(2024, 5, 6, 7))
    assert tick(ev, ctx, at(2024, 5, 6, 19)) == [("water_meter-000", True)]
    assert flow(ev, ctx, 0, at(2024, 5, 6, 20), 4.0) == [
        ("water_meter-000", False, at(2024, 5, 6, 20))]
    assert flow(ev, ctx, 0, at(2024, 5, 6, 21), 4.0) == []  # nothing left to clear
    assert tick(ev, ctx, at(2024, 5, 7, 18, 59)) == []
    assert tick(ev, ctx, at(2024, 5, 7, 19)) == [("water_meter-000", True)]


def test_late_activity_newer_than_the_known_one_clears():
    ev, ctx = make(n=1)
    tick(ev, ctx, at(2024, 5, 6, 7))
    flow(ev, ctx, 0, at(2024, 5, 6, 8), 2.0)
    assert tick(ev, ctx, at(2024, 5, 7, 8)) == [("water_meter-000", True)]
    # A reading from before the known activity changes nothing ...
    assert flow(ev, ctx, 0, at(2024, 5, 6, 7, 30), 2.0) == []
    # ... one from after it, even late, shows someone was there.
    assert flow(ev, ctx, 0, at(2024, 5, 6, 12), 2.0) == [
        ("water_meter-000", False, at(2024, 5, 6, 12))]
    assert tick(ev, ctx, at(2024, 5, 7, 8, 1)) == []  # 12:00-19:00 + 07:00-08:01 < 12 h


def test_without_when_and_per_state_duration():
    rule = Quiet(id="idle", kind="water_meter", states={"special": {"for_": "1h"}},
                 **{"for_": "6h"})
    ev, ctx = make(rule)
    set_state(ctx, "special", [1])
    t0 = at(2024, 5, 6, 0)
    tick(ev, ctx, t0)
    assert tick(ev, ctx, t0 + H) == [("water_meter-001", True)]
    assert tick(ev, ctx, t0 + 6 * H - 1) == []
    assert tick(ev, ctx, t0 + 6 * H) == [("water_meter-000", True)]


def test_a_reading_ahead_of_the_clock_is_not_quiet_time():
    ev, ctx = make(Quiet(id="idle", kind="water_meter", **{"for_": "1h"}), n=1)
    t0 = at(2024, 5, 6, 0)
    tick(ev, ctx, t0)
    flow(ev, ctx, 0, t0 + 120 * US, 1.0)
    ctx.now_us = t0
    assert tick(ev, ctx, t0 + 1) == []
    assert tick(ev, ctx, t0 + 120 * US + H) == [("water_meter-000", True)]


def test_a_meter_never_heard_or_in_maintenance_is_nobody_going_quiet():
    import msgspec

    from cityops.domain.lifecycle import Lifecycle

    ev, ctx = make(heard=False)
    assert tick(ev, ctx, at(2024, 5, 6, 7)) == []
    assert tick(ev, ctx, at(2024, 5, 8, 19)) == []  # two whole days: still being installed
    # Heard once (a reading of no flow): from then on it is watched.
    assert flow(ev, ctx, 0, at(2024, 5, 8, 20), 0.0) == []
    ctx.last_seen_us = np.full(2, np.iinfo(np.int64).min, np.int64)  # as the engine keeps it
    ctx.last_seen_us[0] = at(2024, 5, 8, 20)
    assert tick(ev, ctx, at(2024, 5, 9, 19)) == [("water_meter-000", True)]
    # A meter in maintenance is not watched, however long.
    ev, ctx = make()
    resting = msgspec.structs.replace(ctx.registry.devices[1],
                                      lifecycle=Lifecycle.MAINTENANCE)
    ctx.registry.add([resting])
    assert tick(ev, ctx, at(2024, 5, 6, 7)) == []
    assert tick(ev, ctx, at(2024, 5, 8, 19)) == [("water_meter-000", True)]
