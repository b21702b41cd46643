"""Window aggregates: per device, cell and area; edges of the window; value filter, min_count;
late and out-of-order readings; clearing on ticks; refused readings as a source."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cityops.domain.scenarios.primitives.window import WindowEvaluator
from cityops.domain.scenarios.spec import Window

from .city_kit import US, V1, V2, V3, at, batch, context, device, pack, series, set_state

T0 = at(2024, 5, 8, 10)
MIN = 60 * US


def make(rule: Window, devices=None, **kw):
    ctx = context(devices or [device(i, "smoke", cell="cellA" if i < 3 else "cellB")
                              for i in range(5)], **kw)
    return WindowEvaluator(pack(rule), rule, ctx), ctx


def changes(signals):
    return [(s.subject, s.active, s.value) for s in signals]


SMOKE = Window(id="cluster", kind="smoke", agg="count", per="cell", over="5m", value_above=10,
               above=3)


def test_more_than_three_alarms_in_one_cell_within_five_minutes():
    ev, ctx = make(SMOKE)
    assert ev.source == "readings"
    # Three alarms in cell A and two in cell B: nothing yet (more than 3 is needed).
    out = ev.on_batch(batch((0, 0, T0, 20), (1, 0, T0 + MIN, 30), (2, 0, T0 + 2 * MIN, 25),
                            (3, 0, T0, 50), (4, 0, T0 + MIN, 50), (0, 0, T0 + MIN, 5)), ctx)
    assert out == []
    # A fourth in cell A exactly five minutes after the first: the first still counts.
    out = ev.on_batch(batch((1, 0, T0 + 5 * MIN, 40)), ctx)
    assert changes(out) == [("cell:cellA", True, 4)]
    assert out[0].ts_us == T0 + 5 * MIN and out[0].device == 1
    assert [e[2] for e in out[0].evidence] == [T0, T0 + MIN, T0 + 2 * MIN, T0 + 5 * MIN]
    assert out[0].detail.startswith("4 readings above 10 in 5 min")


def test_alarms_farther_apart_than_the_window_never_fire():
    ev, ctx = make(SMOKE)
    rows = [(i % 3, 0, T0 + i * (100 * US + 1), 50) for i in range(8)]  # 4 span > 5 min
    assert ev.on_batch(batch(*rows), ctx) == []


def test_the_episode_clears_on_a_tick_once_alarms_leave_the_window():
    ev, ctx = make(SMOKE)
    assert ev.on_batch(batch(*[(0, 0, T0 + i * MIN, 50) for i in range(4)]), ctx)[0].active
    ctx.now_us = T0 + 5 * MIN  # the first alarm is exactly 5 min old: still inside
    assert ev.on_tick(ctx) == []
    ctx.now_us = T0 + 5 * MIN + 1
    out = ev.on_tick(ctx)
    assert changes(out) == [("cell:cellA", False, 3)] and out[0].ts_us == ctx.now_us
    assert ev.on_tick(ctx) == []
    # The window never ends before the tick's time again: a late alarm from before it only
    # counts if it falls inside the window as it is now ...
    assert ev.on_batch(batch((1, 0, T0 - 10 * US, 50)), ctx) == []
    # ... where this one does: four alarms within the five minutes before now.
    out = ev.on_batch(batch((1, 0, T0 + 30 * US, 50)), ctx)
    assert changes(out) == [("cell:cellA", True, 4)] and out[0].ts_us == ctx.now_us


def test_one_update_per_group_and_batch_while_it_lasts():
    ev, ctx = make(SMOKE)
    out = ev.on_batch(batch(*[(0, 0, T0 + i * MIN, 50) for i in range(6)]), ctx)
    assert changes(out) == [("cell:cellA", True, 4), ("cell:cellA", True, 6)]
    out = ev.on_batch(batch((1, 0, T0 + 6 * MIN, 50), (2, 0, T0 + 6 * MIN + 10, 60)), ctx)
    assert changes(out) == [("cell:cellA", True, 6)]  # 1..6 min: six alarms


def test_a_late_alarm_counts_where_its_time_falls():
    ev, ctx = make(SMOKE)
    assert ev.on_batch(batch(*[(0, 0, T0 + i * MIN, 50) for i in (0, 2, 4)]), ctx) == []
    out = ev.on_batch(batch((1, 0, T0 + MIN, 50)), ctx)  # late, inside [-1 min, 4 min]
    assert changes(out) == [("cell:cellA", True, 4)]
    assert out[0].ts_us == T0 + 4 * MIN  # evaluated at the newest time, not its own


def test_rows_out_of_order_in_one_batch_give_the_sorted_result():
    rows = [(0, 0, T0 + i * 50 * US, 50) for i in range(10)]
    ev1, ctx1 = make(SMOKE)
    ev2, ctx2 = make(SMOKE)
    perm = np.random.default_rng(3).permutation(len(rows))
    assert changes(ev1.on_batch(batch(*rows), ctx1)) == changes(
        ev2.on_batch(batch(*[rows[i] for i in perm]), ctx2))


def test_stuck_value_per_device_with_min_count():
    rule = Window(id="stuck", kind="noise", agg="range", per="device", over="10m", below=0.01,
                  min_count=5)
    ev, ctx = make(rule, [device(0), device(1)])
    out = ev.on_batch(series(0, T0, 60, [48.2] * 4), ctx)
    assert out == []  # four readings decide nothing
    out = ev.on_batch(series(0, T0 + 4 * MIN, 60, [48.2]), ctx)
    assert changes(out) == [("noise-000", True, 0.0)]
    assert "range 0 dB(A) of 5 readings in 10 min" in out[0].detail
    out = ev.on_batch(series(0, T0 + 5 * MIN, 60, [48.3]), ctx)
    assert changes(out) == [("noise-000", False, pytest.approx(0.1))]
    # A device that goes silent: once fewer than min_count are left, the episode clears.
    ev.on_batch(series(1, T0, 60, [40.0] * 6), ctx)
    ctx.now_us = T0 + 14 * MIN + 1
    assert changes(ev.on_tick(ctx)) == [("noise-001", False, 0.0)]


def test_mean_per_village_town_and_district():
    devices = [device(0, "wind", village=V1), device(1, "wind", village=V2),
               device(2, "wind", village=V3), device(3, "wind", village="")]
    rows = batch((0, 0, T0, 30), (1, 0, T0, 20), (2, 0, T0, 10), (3, 0, T0, 90))
    for per, subjects in [("village", ["area:" + V1, "area:" + V2]),
                          ("town", ["area:" + V1[:9]]), ("district", ["area:310115"])]:
        rule = Window(id="gale", kind="wind", agg="mean", per=per, over="10m", above=19)
        ev, ctx = make(rule, devices)
        assert [s.subject for s in ev.on_batch(rows, ctx)] == subjects, per
    # The device without a place is in no group: 90 counts nowhere.
    rule = Window(id="gale", kind="wind", agg="max", per="district", over="10m", above=29)
    ev, ctx = make(rule, devices)
    assert changes(ev.on_batch(rows, ctx)) == [("area:310115", True, 30)]


@pytest.mark.parametrize("agg, expected", [("count", 3), ("sum", 60), ("mean", 20), ("max", 30),
                                           ("min", 10), ("range", 20)])
def test_each_aggregate(agg, expected):
    rule = Window(id="w", kind="wind", agg=agg, per="device", over="10m", below=-1e9,
                  above=-1e9)
    ev, ctx = make(rule, [device(0, "wind")])
    out = ev.on_batch(series(0, T0, 60, [10, 30, 20]), ctx)
    assert out[-1].value == pytest.approx(expected)


def test_levels_per_operating_state_follow_the_newest_device():
    rule = Window(id="cluster", kind="smoke", agg="count", per="cell", over="5m",
                  value_above=10, above=3, states={"emergency": {"above": 1}})
    ev, ctx = make(rule)
    set_state(ctx, "emergency", [3, 4])
    out = ev.on_batch(batch((0, 0, T0, 50), (1, 0, T0, 50), (3, 0, T0, 50), (4, 0, T0, 50)), ctx)
    assert changes(out) == [("cell:cellB", True, 2)]


def test_a_group_with_far_more_rows_than_expected_is_still_counted():
    rule = Window(id="w", kind="noise", agg="count", per="device", over="10m", above=100)
    ev, ctx = make(rule, [device(0)])
    out = ev.on_batch(series(0, T0, 1, [40.0] * 100), ctx)  # a noise meter at 1 Hz
    assert out == [] and ev.table.exact
    out = ev.on_batch(series(0, T0 + 100 * US, 1, [40.0] * 900), ctx)
    # Past 128 readings in a window the rule keeps panes of 10 s, and a window's ends are exact
    # to one pane: at 100 s the pane 100-109 s counts whole, at 999 s the pane 390-399 s does.
    assert changes(out) == [("noise-000", True, 110), ("noise-000", True, 610)]
    assert not ev.table.exact and out[0].evidence[-1] == (0, 0, T0 + 100 * US, 40.0)


def test_refused_readings_of_any_channel():
    rule = Window(id="storm", kind="air_quality", agg="count", per="device", over="10m",
                  above=2, source="rejections")
    ev, ctx = make(rule, [device(0, "air_quality"), device(1, "noise")])
    assert ev.source == "rejections"
    out = ev.on_batch(batch((0, 0, T0, -5), (0, 3, T0 + 1, 9e9), (0, 7, T0 + 2, float("nan")),
                            (1, 0, T0, -1)), ctx)
    assert changes(out) == [("air_quality-000", True, 3)]
    assert "refused readings" in out[0].detail and out[0].evidence[0][1] == 0


def test_devices_registered_later_join_their_group():
    ev, ctx = make(SMOKE)
    ctx.registry.add([device(9, "smoke", cell="cellB")])
    from cityops.domain.scenarios.context import Places

    ctx.places = Places.build(ctx.registry)
    ctx.state = np.zeros(len(ctx.registry), np.int8)
    out = ev.on_batch(batch(*[(d, 0, T0, 50) for d in (3, 4, 5, 5)]), ctx)
    assert changes(out) == [("cell:cellB", True, 4)]


def test_bad_rules():
    with pytest.raises(ValueError, match="above"):
        make(Window(id="w", kind="smoke"))
    with pytest.raises(ValueError, match="street"):
        make(Window(id="w", kind="smoke", per="street", above=1))


@settings(max_examples=120, deadline=None)
@given(gaps=st.lists(st.integers(1, 200), min_size=1, max_size=60),
       values=st.lists(st.floats(0, 100), min_size=60, max_size=60),
       cuts=st.lists(st.integers(1, 10), min_size=1, max_size=30),
       agg=st.sampled_from(["count", "sum", "mean", "max", "min", "range"]),
       level=st.floats(0, 100), below=st.booleans(), min_count=st.integers(1, 4))
def test_matches_a_brute_force_window(gaps, values, cuts, agg, level, below, min_count):
    """In-order readings (one per second or more apart) in batches of any size: the raises and
    clears are exactly those of recomputing every window from scratch."""
    over = 300
    limit = {"below": level} if below else {"above": level}
    rule = Window(id="w", kind="noise", agg=agg, per="device", over=f"{over}s",
                  min_count=min_count, **limit)
    ev, ctx = make(rule, [device(0)])
    times = np.cumsum(gaps)
    vals = values[: len(times)]
    got, i = [], 0
    # Batch sizes cycle through `cuts` until every reading is sent: the brute force below
    # looks at all of them (a fixed number of batches left readings unsent, a false failure).
    for size in itertools.cycle(cuts):
        if i >= len(times):
            break
        chunk = [(0, 0, T0 + int(t) * US, v) for t, v in zip(times[i:i + size], vals[i:i + size])]
        got += [(s.active, s.ts_us) for s in ev.on_batch(batch(*chunk), ctx)]
        i += size
    want, active = [], False
    for k, t in enumerate(times):
        inside = [v for t2, v in zip(times[: k + 1], vals) if t - over <= t2 <= t]
        a = {"count": len(inside), "sum": sum(inside), "mean": sum(inside) / len(inside),
             "max": max(inside), "min": min(inside), "range": max(inside) - min(inside)}[agg]
        holds = len(inside) >= min_count and (a < level if below else a > level)
        if holds != active:
            want.append((holds, T0 + int(t) * US))
            active = holds
    transitions, active = [], False
    for a, t in got:
        if a != active:
            transitions.append((a, t))
            active = a
    assert transitions == want


def test_a_long_replay_batch_at_one_hertz_in_panes():
    """Two hours of a 1 Hz meter in one batch: the panes are filled as the windows move, so
    every window sees its own five minutes (to a pane), not the end of the batch."""
    rule = Window(id="loud", kind="noise", agg="mean", per="device", over="5m", above=60,
                  min_count=10)
    ev, ctx = make(rule, [device(0)])
    values = [50.0] * 3600 + [70.0] * 600 + [50.0] * 3000
    out = ev.on_batch(series(0, T0, 1, values), ctx)
    assert not ev.table.exact
    assert [(s.active, (s.ts_us - T0) // US) for s in out][:1] == [
        (True, pytest.approx(3750, abs=10))]
    cleared = [(s.ts_us - T0) // US for s in out if not s.active]
    assert cleared == [pytest.approx(4350, abs=10)]
