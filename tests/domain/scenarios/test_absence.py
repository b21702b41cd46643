"""Absence: an active device is offline after N reporting periods of silence, counted from
the rule's start at the earliest; back when a reading arrives; the engine's last-seen times
count. Devices never heard (commissioning), in maintenance or decommissioned are never
offline (tests/domain/scenarios/test_absence_lifecycle.py)."""

from __future__ import annotations

import numpy as np
import pytest

from cityops.domain.scenarios.primitives.absence import AbsenceEvaluator
from cityops.domain.scenarios.spec import Absence, When, Where

from .city_kit import active as kit_active
from .city_kit import US, at, batch, context, device, pack, series, set_state

T0 = at(2024, 5, 8, 10)
S = US


def active(d, since_us=T0 - 86400 * S):
    """A device heard before (active since a day before T0)."""
    return kit_active(d, since_us)


def make(rule=None, devices=None, **kw):
    rule = rule or Absence(id="offline", kind="noise", periods=3)
    ctx = context([active(d) for d in devices or [device(0), device(1)]], **kw)
    return AbsenceEvaluator(pack(rule), rule, ctx), ctx


def tick(ev, ctx, t):
    ctx.now_us = t
    return [(s.subject, s.active) for s in ev.on_tick(ctx)]


def test_an_active_device_is_not_offline_until_periods_after_the_start():
    ev, ctx = make()
    assert tick(ev, ctx, T0) == []
    assert tick(ev, ctx, T0 + 179 * S) == []
    ctx.now_us = T0 + 180 * S  # 3 x 60 s, at least
    out = ev.on_tick(ctx)
    assert [(s.subject, s.active, s.ts_us) for s in out] == [
        ("noise-000", True, ctx.now_us), ("noise-001", True, ctx.now_us)]
    assert out[0].detail == "no reading since detection started 3 min ago (reports every 60 s)"
    assert tick(ev, ctx, T0 + 181 * S) == []  # raised once


def test_silence_after_the_last_reading_and_back_on_the_next():
    ev, ctx = make()
    tick(ev, ctx, T0)
    ctx.now_us = T0 + 100 * S
    assert ev.on_batch(batch((0, 0, T0 + 100 * S, 50), (1, 0, T0 + 100 * S, 50)), ctx) == []
    assert tick(ev, ctx, T0 + 279 * S) == []
    ctx.now_us = T0 + 280 * S
    out = ev.on_tick(ctx)
    assert [(s.subject, s.active, s.ts_us, s.value) for s in out] == [
        ("noise-000", True, T0 + 280 * S, 180.0), ("noise-001", True, T0 + 280 * S, 180.0)]
    assert out[0].detail == "no reading for 3 min (reports every 60 s)"
    ctx.now_us = T0 + 400 * S
    out = ev.on_batch(batch((1, 0, T0 + 390 * S, 51), (1, 0, T0 + 399 * S, 52)), ctx)
    assert [(s.subject, s.active, s.ts_us) for s in out] == [("noise-001", False, T0 + 399 * S)]
    assert tick(ev, ctx, T0 + 401 * S) == []


def test_the_engines_last_seen_times_count_and_can_clear():
    ev, ctx = make()
    tick(ev, ctx, T0)
    ctx.last_seen_us = np.array([T0 + 150 * S, np.iinfo(np.int64).min])
    assert tick(ev, ctx, T0 + 200 * S) == [("noise-001", True)]
    ctx.last_seen_us = np.array([T0 + 150 * S, T0 + 210 * S])
    assert tick(ev, ctx, T0 + 220 * S) == [("noise-001", False)]


def test_a_backlog_of_old_readings_counts_as_alive():
    ev, ctx = make()
    tick(ev, ctx, T0)
    assert tick(ev, ctx, T0 + 600 * S) == [("noise-000", True), ("noise-001", True)]
    ctx.now_us = T0 + 601 * S
    out = ev.on_batch(series(0, T0 - 3600 * S, 60, [50] * 5), ctx)
    assert [(s.subject, s.active) for s in out] == [("noise-000", False)]
    assert tick(ev, ctx, T0 + 700 * S) == []  # it arrived at 601 s: not silent yet


def test_each_kind_by_its_own_period_and_per_state_periods():
    rule = Absence(id="offline", periods=3, states={"emergency": {"periods": 1}})
    ev, ctx = make(rule, [device(0, "gps"), device(1, "noise"), device(2, "bin_fill"),
                          device(3, "noise")])
    set_state(ctx, "emergency", [3])
    tick(ev, ctx, T0)
    assert tick(ev, ctx, T0 + 30 * S) == [("gps-000", True)]
    assert tick(ev, ctx, T0 + 60 * S) == [("noise-003", True)]
    assert tick(ev, ctx, T0 + 180 * S) == [("noise-001", True)]
    assert tick(ev, ctx, T0 + 1800 * S) == [("bin_fill-002", True)]


def test_where_and_when():
    rule = Absence(id="offline", kind="noise", where=Where(meta={"watched": "yes"}),
                   when=When(hours="08:00-18:00"))
    ev, ctx = make(rule, [device(0, watched="yes"), device(1)])
    tick(ev, ctx, at(2024, 5, 8, 17))
    assert tick(ev, ctx, at(2024, 5, 8, 19)) == []  # silent, but outside the hours
    assert tick(ev, ctx, at(2024, 5, 9, 8)) == [("noise-000", True)]


def test_no_clock_no_decision_and_bad_periods():
    ev, ctx = make()
    assert ev.on_tick(ctx) == []
    with pytest.raises(ValueError, match="periods"):
        make(Absence(id="x", kind="noise", periods=0))
