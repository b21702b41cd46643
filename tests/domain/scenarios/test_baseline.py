"""Baseline anomalies on KPI series: the same hour of the week, robust z-score or EWMA."""

from __future__ import annotations

from cityops.domain.scenarios.build import build
from cityops.domain.scenarios.primitives.baseline import BaselineEvaluator
from cityops.domain.scenarios.spec import Baseline, When
from tests.domain.scenarios.city_kit import at, batch, context, device, kinds_of, pack, set_state

WEEK_DAYS = 7


def tuesday(week: int, hour: int = 18, minute: int = 0, tz: str = "Asia/Shanghai") -> int:
    """Tuesday 4 March 2025 plus `week` weeks, local time."""
    return at(2025, 3, 4 + WEEK_DAYS * week, hour, minute, tz=tz) if week < 4 else \
        at(2025, 4, 1 + WEEK_DAYS * (week - 4), hour, minute, tz=tz)


def setup(devices=2, tz="Asia/Shanghai", **kw):
    ctx = context([device(i, "kpi") for i in range(devices)], tz=tz)
    rule = Baseline(id="calls_110", **kw)
    return build(pack(rule, name="vital_signs"), rule, ctx), ctx


def feed(ev, ctx, dev: int, values: list[float], hour: int = 18, first_week: int = 0,
         tz: str = "Asia/Shanghai"):
    out = []
    for w, v in enumerate(values):
        out += ev.on_batch(batch((dev, 0, tuesday(first_week + w, hour, tz=tz), v)), ctx)
    return out


def test_far_above_the_same_hours_median_raises() -> None:
    ev, ctx = setup()
    assert isinstance(ev, BaselineEvaluator)
    assert feed(ev, ctx, 0, [80, 85, 90, 82]) == []
    out = ev.on_batch(batch((0, 0, tuesday(4), 140.0)), ctx)
    assert kinds_of(out) == [("kpi-000", True)]
    s = out[0]
    assert s.rule == "vital_signs.calls_110" and s.value == 140.0 and s.ts_us == tuesday(4)
    assert s.evidence == [(0, 0, tuesday(4), 140.0)]
    # median 83.5, MAD 2.5 x 1.4826 = 3.7 floored at sqrt(83.5) = 9.1: z = 6.2
    assert "140 is far above the usual 83.5 for Tuesday 18:00 (z = 6.2)" in s.detail


def test_within_the_usual_spread_does_not_fire() -> None:
    ev, ctx = setup()
    assert feed(ev, ctx, 0, [80, 85, 90, 82, 95, 70, 100]) == []


def test_the_value_is_compared_before_it_joins_its_baseline() -> None:
    ev, ctx = setup(weeks=4)
    feed(ev, ctx, 0, [80, 85, 90, 82])
    assert kinds_of(ev.on_batch(batch((0, 0, tuesday(4), 140.0)), ctx)) == [("kpi-000", True)]
    # Next week: the baseline is 85, 90, 82, 140 (median 87.5), so 85 is usual and clears.
    out = ev.on_batch(batch((0, 0, tuesday(5), 85.0)), ctx)
    assert kinds_of(out) == [("kpi-000", False)] and "back to usual" in out[0].detail
    assert ev.snapshot()[0]["baseline"] == 87.5


def test_a_new_slot_is_learning_and_decides_nothing() -> None:
    ev, ctx = setup(min_history=3)
    assert feed(ev, ctx, 0, [80, 85, 5000]) == []
    snap = ev.snapshot()[0]
    assert snap["status"] == "learning" and snap["history"] == 2
    assert kinds_of(feed(ev, ctx, 0, [5000], first_week=3)) == [("kpi-000", True)]


def test_a_flat_history_does_not_explode() -> None:
    ev, ctx = setup()
    feed(ev, ctx, 0, [10, 10, 10, 10])
    # MAD 0; the spread is floored at sqrt(10): 13 is z 0.95, 30 is z 6.3.
    assert ev.on_batch(batch((0, 0, tuesday(4), 13.0)), ctx) == []
    assert round(ev.snapshot()[0]["z"], 2) == 0.95
    assert kinds_of(ev.on_batch(batch((0, 0, tuesday(5), 30.0)), ctx)) == [("kpi-000", True)]


def test_exactly_at_z_above_does_not_fire() -> None:
    ev, ctx = setup(z_above=3.0)
    feed(ev, ctx, 0, [16, 16, 16, 16])  # sd floored at sqrt(16) = 4
    assert ev.on_batch(batch((0, 0, tuesday(4), 28.0)), ctx) == []  # z exactly 3
    assert kinds_of(ev.on_batch(batch((0, 0, tuesday(5), 29.0)), ctx)) == [("kpi-000", True)]


def test_small_counts_are_not_anomalous() -> None:
    ev, ctx = setup(min_value=20.0)
    feed(ev, ctx, 0, [1, 2, 1, 1])
    assert ev.on_batch(batch((0, 0, tuesday(4), 12.0)), ctx) == []
    assert ev.snapshot()[0]["status"] == "normal"


def test_far_below_with_z_below() -> None:
    ev, ctx = setup(z_below=3.0, min_value=20.0)
    feed(ev, ctx, 0, [100, 104, 98, 101])
    out = ev.on_batch(batch((0, 0, tuesday(4), 40.0)), ctx)
    assert kinds_of(out) == [("kpi-000", True)] and "far below" in out[0].detail
    assert ev.snapshot()[0]["status"] == "low"
    ev2, ctx2 = setup(min_value=20.0)  # without z_below, low values are fine
    feed(ev2, ctx2, 0, [100, 104, 98, 101, 40])
    assert ev2.snapshot()[0]["status"] == "normal"


def test_each_hour_of_the_week_has_its_own_baseline() -> None:
    ev, ctx = setup()
    for week, (small_hours, evening_rush) in enumerate([(20, 300), (22, 310), (19, 305),
                                                        (21, 290)]):
        feed(ev, ctx, 0, [small_hours], hour=4, first_week=week)
        feed(ev, ctx, 0, [evening_rush], hour=18, first_week=week)
    out = []
    for hour, value in ((4, 300.0), (18, 300.0)):
        out += ev.on_batch(batch((0, 0, tuesday(4, hour), value)), ctx)
    assert [(s.active, s.ts_us) for s in out] == [(True, tuesday(4, 4)), (False, tuesday(4, 18))]


def test_a_running_count_replaces_its_hours_value() -> None:
    ev, ctx = setup()
    feed(ev, ctx, 0, [80, 85, 90, 82])
    early = ev.on_batch(batch((0, 0, tuesday(4, 18, 10), 30.0)), ctx)
    assert early == []  # 30 is low, but lows need z_below
    later = ev.on_batch(batch((0, 0, tuesday(4, 18, 50), 150.0)), ctx)
    assert kinds_of(later) == [("kpi-000", True)]
    assert ev.snapshot()[0]["history"] == 4  # compared with the four weeks before, not 30
    feed(ev, ctx, 0, [85], first_week=5)
    assert ev.snapshot()[0]["baseline"] == 87.5  # 85, 90, 82, 150: the hour kept its last value


def test_a_late_reading_is_ignored() -> None:
    ev, ctx = setup()
    feed(ev, ctx, 0, [80, 85, 90, 82, 84])
    assert ev.on_batch(batch((0, 0, tuesday(3, 18, 30), 999.0)), ctx) == []
    assert ev.snapshot()[0]["value"] == 84.0


def test_a_replay_of_weeks_in_one_batch_matches_one_by_one() -> None:
    values = [80, 85, 90, 82, 140, 85, 86, 300, 84]
    ev, ctx = setup()
    one_by_one = [(s.active, s.ts_us) for s in feed(ev, ctx, 0, values)]
    ev2, ctx2 = setup()
    rows = [(0, 0, tuesday(w), float(v)) for w, v in enumerate(values)]
    together = [(s.active, s.ts_us) for s in ev2.on_batch(batch(*reversed(rows)), ctx2)]
    assert together == one_by_one == [(True, tuesday(4)), (False, tuesday(5)),
                                      (True, tuesday(7)), (False, tuesday(8))]


def test_ewma_mean_and_variance() -> None:
    ev, ctx = setup(method="ewma", alpha=0.3)
    feed(ev, ctx, 0, [100, 100, 100, 100])
    assert ev.on_batch(batch((0, 0, tuesday(4), 110.0)), ctx) == []  # sd floored at 10: z 1
    snap = ev.snapshot()[0]
    assert snap["baseline"] == 100.0 and snap["z"] == 1.0 and snap["method"] == "ewma"
    out = ev.on_batch(batch((0, 0, tuesday(5), 170.0)), ctx)  # mean 103, var 21: z 6.7
    assert kinds_of(out) == [("kpi-000", True)]
    assert ev.snapshot()[0]["baseline"] == 103.0


def test_thresholds_per_operating_state() -> None:
    ev, ctx = setup(z_above=6.0, states={"special": {"z_above": 2.0}})
    set_state(ctx, "special", [1])
    for dev in (0, 1):
        feed(ev, ctx, dev, [100, 100, 100, 100])
    out = ev.on_batch(batch((0, 0, tuesday(4), 140.0), (1, 0, tuesday(4), 140.0)), ctx)
    assert kinds_of(out) == [("kpi-001", True)]


def test_hour_of_the_week_in_local_time_across_summer_time() -> None:
    # Dublin moves to summer time on 30 March 2025: Tuesday 18:00 local stays one slot.
    ev, ctx = setup(tz="Europe/Dublin")
    feed(ev, ctx, 0, [80, 85, 90, 82], tz="Europe/Dublin")
    weeks = [ev.snapshot()[0]["history"]]
    ev.on_batch(batch((0, 0, tuesday(4, tz="Europe/Dublin"), 84.0)), ctx)
    assert weeks == [3] and ev.snapshot()[0]["history"] == 4


def test_when_limits_the_rule() -> None:
    ev, ctx = setup(when=When(hours="08:00-20:00"))
    feed(ev, ctx, 0, [10, 10, 10, 10], hour=22)
    assert ev.on_batch(batch((0, 0, tuesday(4, 22), 500.0)), ctx) == []
    assert ev.snapshot()[0]["status"] == "high"  # the vital sign still shows it


def test_snapshot_per_series() -> None:
    ev, ctx = setup()
    feed(ev, ctx, 0, [80, 85, 90, 82, 140])
    feed(ev, ctx, 1, [5])
    snap = ev.snapshot()
    assert [s["device_id"] for s in snap] == ["kpi-000", "kpi-001"]
    assert snap[0] | {"z": None} == {"device_id": "kpi-000", "ts": tuesday(4) / 1e6,
                                     "value": 140.0, "baseline": 83.5, "z": None,
                                     "status": "high", "history": 4, "method": "robust_z"}
    assert snap[1]["status"] == "learning" and snap[1]["baseline"] is None
    assert snap[1]["z"] is None


def test_other_kinds_are_not_read() -> None:
    ctx = context([device(0, "kpi"), device(1, "noise")])
    rule = Baseline(id="calls_110")
    ev = build(pack(rule), rule, ctx)
    for w in range(6):
        ev.on_batch(batch((1, 0, tuesday(w), 50.0 if w < 5 else 120.0)), ctx)
    assert ev.snapshot() == [] and ev.on_tick(ctx) == []
