"""Camera events: event and dwell rows paired by camera and time, dwell at least the limit,
cleared by no event or another, late reports ignored, per-state dwell, filters."""

from __future__ import annotations

import pytest

from cityops.domain.scenarios.primitives.camera import CameraEventEvaluator
from cityops.domain.scenarios.spec import CameraEvent, When, Where

from .city_kit import US, at, batch, context, device, pack, set_state

T0 = at(2024, 5, 8, 10)
S = US
EVENT, DWELL = 0, 1
FIRE_LANE = CameraEvent(id="fire_lane", event="vehicle_in_fire_lane", dwell="5m")


def make(rule=FIRE_LANE, devices=None):
    ctx = context(devices or [device(0, "camera"), device(1, "camera"), device(2, "noise")])
    return CameraEventEvaluator(pack(rule), rule, ctx), ctx


def report(d, t, code, dwell=None):
    rows = [(d, EVENT, t, code)]
    if dwell is not None:
        rows.append((d, DWELL, t, dwell))
    return rows


def send(ev, ctx, *reports):
    rows = [r for rep in reports for r in rep]
    return [(s.subject, s.active, s.value) for s in ev.on_batch(batch(*rows), ctx)]


def test_dwell_at_least_the_limit_raises_then_updates_then_clears():
    ev, ctx = make()
    assert send(ev, ctx, report(0, T0, 1, 299)) == []
    out = ev.on_batch(batch(*report(0, T0 + 60 * S, 1, 300)), ctx)
    assert [(s.subject, s.active, s.value, s.ts_us) for s in out] == [
        ("camera-000", True, 300, T0 + 60 * S)]
    assert out[0].evidence == [(0, EVENT, T0 + 60 * S, 1.0), (0, DWELL, T0 + 60 * S, 300.0)]
    assert out[0].detail == "vehicle_in_fire_lane for 5 min (limit: 5 min)"
    assert send(ev, ctx, report(0, T0 + 120 * S, 1, 360)) == [("camera-000", True, 360)]
    assert send(ev, ctx, report(0, T0 + 150 * S, 1, 20)) == []  # same event, shorter: goes on
    assert send(ev, ctx, report(0, T0 + 180 * S, 0, 0)) == [("camera-000", False, 0)]
    assert send(ev, ctx, report(0, T0 + 240 * S, 0, 0)) == []


def test_another_event_clears_it():
    ev, ctx = make()
    assert send(ev, ctx, report(1, T0, 1, 400)) == [("camera-001", True, 400)]
    out = ev.on_batch(batch(*report(1, T0 + 60 * S, 5, 10)), ctx)
    assert [(s.active, s.detail) for s in out] == [(False, "now reporting illegal_parking")]


def test_rows_are_paired_whatever_their_order_in_the_batch():
    ev, ctx = make()
    rows = [(1, DWELL, T0, 10), (0, DWELL, T0, 600), (1, EVENT, T0, 1), (0, EVENT, T0, 1),
            (2, 0, T0, 1), (0, DWELL, T0 + S, 5)]
    assert send(ev, ctx, rows) == [("camera-000", True, 600)]


def test_an_event_without_its_dwell_row_has_dwell_zero():
    ev, ctx = make(CameraEvent(id="stall", event="repair_stall_on_carriageway"))
    assert send(ev, ctx, report(0, T0, 2)) == [("camera-000", True, 0)]
    ev, ctx = make()
    assert send(ev, ctx, report(0, T0, 1)) == []


def test_late_reports_do_not_clear():
    ev, ctx = make()
    send(ev, ctx, report(0, T0, 1, 400))
    assert send(ev, ctx, report(0, T0 - 60 * S, 0, 0)) == []
    assert send(ev, ctx, report(0, T0 + 60 * S, 0, 0)) == [("camera-000", False, 0)]


def test_where_when_and_per_state_dwell():
    rule = CameraEvent(id="fire_lane", event="vehicle_in_fire_lane", dwell="5m",
                       where=Where(meta={"watch": "fire_lane"}), when=When(hours="08:00-20:00"),
                       states={"emergency": {"dwell": "1m"}})
    ev, ctx = make(rule, [device(0, "camera", watch="fire_lane"), device(1, "camera"),
                          device(2, "camera", watch="fire_lane")])
    set_state(ctx, "emergency", [2])
    out = send(ev, ctx, report(0, T0, 1, 120), report(1, T0, 1, 900), report(2, T0, 1, 120))
    assert out == [("camera-002", True, 120)]
    evening = at(2024, 5, 8, 20)
    assert send(ev, ctx, report(2, evening, 1, 3000)) == [("camera-002", False, 3000)]
    assert send(ev, ctx, report(0, evening, 1, 3000)) == []


def test_unknown_event_names_the_known_ones():
    with pytest.raises(ValueError, match="vehicle_in_fire_lane"):
        make(CameraEvent(id="x", event="dragon_sighting"))
    with pytest.raises(ValueError, match="none"):
        make(CameraEvent(id="x", event="none"))
