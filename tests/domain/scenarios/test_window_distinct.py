"""Window counts of distinct devices (`distinct: device`): one device repeating itself is one,
late readings and ticks, several evaluations in one batch, memory bounded by the devices."""

from __future__ import annotations

import itertools

import msgspec
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cityops.domain.scenarios.primitives.window import WindowEvaluator
from cityops.domain.scenarios.spec import Window

from .city_kit import US, at, batch, context, device, pack

T0 = at(2024, 5, 8, 10)
MIN = 60 * US
OVER = 300  # seconds

CLUSTER = Window(id="cluster", kind="smoke", agg="count", per="cell", over="5m", value_above=10,
                 above=3, distinct="device")


def make(rule: Window = CLUSTER, n: int = 8, cells: int = 2):
    """n smoke detectors, the first n - n // cells in cellA, the rest in cellB (cells=1: all
    in cellA)."""
    split = n if cells == 1 else n - n // cells
    ctx = context([device(i, "smoke", cell="cellA" if i < split else "cellB") for i in range(n)])
    return WindowEvaluator(pack(rule), rule, ctx), ctx


def changes(signals):
    return [(s.subject, s.active, s.value) for s in signals]


def test_one_detector_repeating_itself_counts_once():
    ev, ctx = make()
    out = ev.on_batch(batch(*[(0, 0, T0 + i * 30 * US, 50) for i in range(8)]), ctx)
    assert out == []
    # Without distinct the same readings are a cluster.
    plain = msgspec.structs.replace(CLUSTER, distinct=None)
    ev2, ctx2 = make(plain)
    assert changes(ev2.on_batch(batch(*[(0, 0, T0 + i * 30 * US, 50) for i in range(8)]),
                                ctx2))[0][1:] == (True, 4)


def test_four_detectors_in_one_cell_are_a_cluster_with_each_one_in_the_evidence():
    ev, ctx = make()
    rows = [(0, 0, T0, 50), (0, 0, T0 + 20 * US, 60), (1, 0, T0 + MIN, 30), (1, 0, T0 + 90 * US, 5),
            (2, 0, T0 + 2 * MIN, 25), (4, 0, T0, 50), (5, 0, T0, 50), (6, 0, T0, 50)]
    assert ev.on_batch(batch(*rows), ctx) == []  # cellA: 3 detectors; cellB: 2 (6, 7 are B)
    out = ev.on_batch(batch((3, 0, T0 + 4 * MIN, 40), (3, 0, T0 + 4 * MIN + 10 * US, 45)), ctx)
    assert changes(out) == [("cell:cellA", True, 4), ("cell:cellA", True, 4)]
    assert out[0].detail.startswith("4 devices with readings above 10 in 5 min")
    # One row per detector: its newest alarm in the window.
    assert sorted((e[0], e[2]) for e in out[1].evidence) == [
        (0, T0 + 20 * US), (1, T0 + MIN), (2, T0 + 2 * MIN), (3, T0 + 4 * MIN + 10 * US)]


def test_a_detector_stays_in_the_window_by_its_newest_alarm_and_leaves_on_a_tick():
    ev, ctx = make()
    ev.on_batch(batch((0, 0, T0, 50), (1, 0, T0, 50), (2, 0, T0, 50)), ctx)
    out = ev.on_batch(batch((0, 0, T0 + 3 * MIN, 50), (3, 0, T0 + 3 * MIN, 50)), ctx)
    assert changes(out) == [("cell:cellA", True, 4)]
    ctx.now_us = T0 + 5 * MIN  # the alarms of 1 and 2 are exactly 5 min old: still inside
    assert ev.on_tick(ctx) == []
    ctx.now_us = T0 + 5 * MIN + 1  # 1 and 2 leave; 0 stays by its alarm at 3 min
    assert changes(ev.on_tick(ctx)) == [("cell:cellA", False, 2)]
    # 1 and 2 again, 4 alarms of detector 0: four detectors (0, 1, 2, 3) once more.
    out = ev.on_batch(batch(*[(0, 0, T0 + 5 * MIN + k * US, 50) for k in range(4)],
                            (1, 0, T0 + 5 * MIN + 9 * US, 50), (2, 0, T0 + 5 * MIN + 9 * US, 50)),
                      ctx)
    assert changes(out) == [("cell:cellA", True, 4)]


def test_a_late_alarm_of_a_new_detector_counts_where_its_time_falls():
    ev, ctx = make()
    assert ev.on_batch(batch((0, 0, T0, 50), (1, 0, T0 + 2 * MIN, 50), (2, 0, T0 + 4 * MIN, 50)),
                       ctx) == []
    assert ev.on_batch(batch((0, 0, T0 + 3 * MIN, 50)), ctx) == []  # 0 again: still three
    out = ev.on_batch(batch((3, 0, T0 - MIN - 1, 50)), ctx)  # late, outside [-1 min, 4 min]
    assert out == []
    out = ev.on_batch(batch((3, 0, T0 + MIN, 50)), ctx)  # late, inside
    assert changes(out) == [("cell:cellA", True, 4)] and out[0].ts_us == T0 + 4 * MIN


def test_evaluations_in_one_batch_each_see_their_own_window():
    # One batch over 10 minutes: at 4 min four detectors are in the window; at 6 min detector
    # 1 has left it, and detector 0 repeating itself does not make up for it.
    ev, ctx = make()
    rows = [(1, 0, T0, 50), (2, 0, T0 + MIN, 50), (3, 0, T0 + 2 * MIN, 50)]
    rows += [(0, 0, T0 + k * MIN, 50) for k in range(4, 10)] + [(0, 0, T0 + 9 * MIN + 30 * US, 5)]
    out = ev.on_batch(batch(*rows), ctx)
    assert [(s.active, s.value, (s.ts_us - T0) // US) for s in out] == [
        (True, 4, 240), (False, 3, 360)]
    assert not ev.active[0]


def test_distinct_needs_a_count():
    with pytest.raises(ValueError, match="distinct"):
        make(Window(id="w", kind="smoke", agg="max", per="cell", above=1, distinct="device"))


def test_memory_follows_the_devices_not_their_rate():
    """200 detectors of one cell each at 1 Hz for 10 minutes: a window holds 60,000 readings,
    yet the rule keeps each detector's newest reading (and one batch's), exactly."""
    rule = Window(id="busy", kind="smoke", agg="count", per="cell", over="5m", above=150,
                  distinct="device")
    ev, ctx = make(rule, n=200, cells=1)
    devices = np.arange(200)
    raised = []
    for s in range(600):
        rows = [(int(d), 0, T0 + s * US + int(d) * 1000, 1.0) for d in devices]
        raised += ev.on_batch(batch(*rows), ctx)
    assert changes(raised)[:1] == [("cell:cellA", True, 200)]
    assert ev.table.exact and ev.table.table is not None
    assert ev.table.table.capacity <= 512


@settings(max_examples=150, deadline=None)
@given(events=st.lists(st.tuples(st.integers(0, 5), st.integers(1, 120), st.booleans()),
                       min_size=1, max_size=60),
       cuts=st.lists(st.integers(1, 8), min_size=1, max_size=20),
       late=st.lists(st.integers(0, 400), min_size=60, max_size=60),
       above=st.integers(1, 4), min_count=st.integers(1, 3))
def test_matches_a_brute_force_count_of_devices(events, cuts, late, above, min_count):
    """Six detectors of one cell, readings in batches of any size, some of them late (a time
    up to 400 s before the newest already sent) and some under the alarm level. Every signal
    reports the devices a from-scratch count finds among everything sent with an alarm inside
    its window, and the verdict follows from that count."""
    rule = Window(id="w", kind="smoke", agg="count", per="cell", over=f"{OVER}s", value_above=10,
                  above=above, min_count=min_count, distinct="device")
    ev, ctx = make(rule, n=6, cells=1)
    rows, t = [], 0
    for k, (dev, gap, alarm) in enumerate(events):
        t += gap
        ts = t - late[k] if k % 3 == 2 else t  # every third row may come late
        rows.append((dev, 0, T0 + ts * US, 50.0 if alarm else 1.0))
    sent: list[tuple[int, int, float]] = []
    i = 0
    for size in itertools.cycle(cuts):
        if i >= len(rows):
            break
        chunk = rows[i:i + size]
        i += size
        sent += [(d, ts, v) for d, _, ts, v in chunk]
        for s in ev.on_batch(batch(*chunk), ctx):
            inside = {d for d, ts, v in sent if v > 10 and s.ts_us - OVER * US <= ts <= s.ts_us}
            assert s.value == len(inside)
            assert s.active == (len(inside) >= min_count and len(inside) > above)
            if s.active:
                assert sorted({e[0] for e in s.evidence}) == sorted(inside)
                assert len(s.evidence) == len(inside)
