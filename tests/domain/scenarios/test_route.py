"""Route deviation: metres from each fix to the vehicle's approved route, sustained for `for`."""

from __future__ import annotations

import math

import numpy as np

from cityops.domain.city import Zone
from cityops.domain.readings import ReadingBatch
from cityops.domain.scenarios.build import build
from cityops.domain.scenarios.primitives.route import RouteDeviationEvaluator
from cityops.domain.scenarios.spec import RouteDeviation, When, Where
from tests.domain.scenarios.city_kit import at, context, device, kinds_of, pack, set_state

US = 1_000_000
T0 = at(2025, 3, 4, 12, 0)
M_PER_DEG_LAT = math.radians(1.0) * 6_371_008.8


def line(zone_id: str, lat: float, vehicles: list[str] | None = None) -> Zone:
    """An east-west route along `lat` from 121.50 to 121.52 E."""
    meta = {"vehicles": vehicles} if vehicles is not None else {}
    return Zone(zone_id, "muck_route", f"Route {zone_id}",
                {"type": "LineString", "coordinates": [[121.50, lat], [121.52, lat]]}, meta)


def north_of(lat: float, metres: float) -> tuple[float, float]:
    return lat + metres / M_PER_DEG_LAT, 121.51


def fixes(*points: tuple[int, int, tuple[float, float]]) -> ReadingBatch:
    rows = []
    for dev, ts, (lat, lon) in points:
        rows += [(dev, 0, ts, lat), (dev, 1, ts, lon), (dev, 2, ts, 40.0)]
    d, c, t, v = zip(*rows, strict=True)
    return ReadingBatch(np.array(d, np.int32), np.array(c, np.int8), np.array(t, np.int64),
                        np.array(v))


def t(minutes: float) -> int:
    return T0 + int(minutes * 60 * US)


def setup(routes=None, devices=2, roles=None, **kw):
    ctx = context([device(i, "gps") for i in range(devices)])
    if roles:
        ctx.places.roles[:] = roles
    ctx.zones = routes if routes is not None else [line("a", 31.20, ["gps-000"]),
                                                   line("b", 31.30)]
    rule = RouteDeviation(id="off_route", **kw)
    return build(pack(rule, name="muck"), rule, ctx), ctx


def test_off_route_for_the_duration_raises_and_back_on_route_clears() -> None:
    ev, ctx = setup()
    assert isinstance(ev, RouteDeviationEvaluator)
    assert ev.on_batch(fixes((0, t(0), north_of(31.20, 100))), ctx) == []
    assert ev.on_batch(fixes((0, t(1), north_of(31.20, 300)),
                             (0, t(2), north_of(31.20, 350))), ctx) == []
    out = ev.on_batch(fixes((0, t(3), north_of(31.20, 400))), ctx)  # off exactly 2 min
    assert kinds_of(out) == [("gps-000", True)]
    s = out[0]
    assert s.rule == "muck.off_route" and s.ts_us == t(3)
    assert abs(s.value - 400) < 1.0
    assert (s.lat, s.lon) == north_of(31.20, 400)
    assert "400 m off route Route a for 2 min (limit 200 m)" in s.detail
    update = ev.on_batch(fixes((0, t(4), north_of(31.20, 500))), ctx)
    assert kinds_of(update) == [("gps-000", True)] and abs(update[0].value - 500) < 1.0
    back = ev.on_batch(fixes((0, t(5), north_of(31.20, 150))), ctx)
    assert kinds_of(back) == [("gps-000", False)] and "back on route Route a" in back[0].detail


def test_on_route_never_fires() -> None:
    ev, ctx = setup()
    out = ev.on_batch(fixes(*[(0, t(i), north_of(31.20, 190 - 40 * (i % 10)))
                              for i in range(30)]), ctx)
    assert out == []


def test_a_break_in_the_deviation_starts_the_count_again() -> None:
    ev, ctx = setup()
    out = ev.on_batch(fixes((0, t(0), north_of(31.20, 300)), (0, t(1.5), north_of(31.20, 300)),
                            (0, t(1.6), north_of(31.20, 50)), (0, t(2), north_of(31.20, 300)),
                            (0, t(3.9), north_of(31.20, 300))), ctx)
    assert out == []
    assert kinds_of(ev.on_batch(fixes((0, t(4), north_of(31.20, 300))), ctx)) == [
        ("gps-000", True)]


def test_deviating_and_returning_within_one_batch() -> None:
    ev, ctx = setup(for_="0s")
    out = ev.on_batch(fixes((0, t(0), north_of(31.20, 10)), (0, t(1), north_of(31.20, 900)),
                            (0, t(2), north_of(31.20, 10))), ctx)
    assert [(s.active, s.ts_us) for s in out] == [(True, t(1)), (False, t(2))]


def test_measured_against_its_own_route_not_the_nearest() -> None:
    ev, ctx = setup(for_="0s")
    # Device 0 is assigned route a (31.20) and drives along route b (31.30): off route.
    # Device 1 has no route: the nearest, b, is its route.
    out = ev.on_batch(fixes((0, t(0), north_of(31.30, 0)), (1, t(0), north_of(31.30, 0))), ctx)
    assert kinds_of(out) == [("gps-000", True)]
    assert abs(out[0].value - 0.1 * M_PER_DEG_LAT) < 20


def test_an_unassigned_vehicle_far_from_every_route_deviates() -> None:
    ev, ctx = setup(for_="0s")
    out = ev.on_batch(fixes((1, t(0), north_of(31.25, 0))), ctx)  # 5.5 km from both
    assert kinds_of(out) == [("gps-001", True)] and "Route" in out[0].detail


def test_a_vehicle_on_several_routes_may_use_any() -> None:
    routes = [line("a", 31.20, ["gps-000"]), line("b", 31.30, ["gps-000"])]
    ev, ctx = setup(routes=routes, for_="0s")
    assert ev.on_batch(fixes((0, t(0), north_of(31.30, 20)), (0, t(1), north_of(31.20, 20))),
                       ctx) == []
    assert kinds_of(ev.on_batch(fixes((0, t(2), north_of(31.25, 0))), ctx)) == [
        ("gps-000", True)]


def test_exactly_at_the_limit_is_on_route() -> None:
    ev, ctx = setup(for_="0s", max_distance_m=250.0)
    # 250 m north of the line, measured the evaluator's way, stays on route; 251 m does not.
    assert ev.on_batch(fixes((0, t(0), north_of(31.20, 249.99))), ctx) == []
    assert kinds_of(ev.on_batch(fixes((0, t(1), north_of(31.20, 251))), ctx)) == [
        ("gps-000", True)]


def test_late_fixes_change_nothing() -> None:
    ev, ctx = setup(for_="0s")
    assert kinds_of(ev.on_batch(fixes((0, t(5), north_of(31.20, 900))), ctx)) == [
        ("gps-000", True)]
    assert ev.on_batch(fixes((0, t(4), north_of(31.20, 0))), ctx) == []  # older: no clear
    assert kinds_of(ev.on_batch(fixes((0, t(6), north_of(31.20, 0))), ctx)) == [
        ("gps-000", False)]


def test_the_limit_and_duration_per_operating_state() -> None:
    ev, ctx = setup(states={"emergency": {"max_distance_m": 50.0, "for_": "0s"}})
    set_state(ctx, "emergency", [1])
    batch = fixes((0, t(0), north_of(31.30, 100)), (1, t(0), north_of(31.30, 100)))
    assert kinds_of(ev.on_batch(batch, ctx)) == [("gps-001", True)]


def test_when_limits_the_rule() -> None:
    ev, ctx = setup(for_="0s", when=When(hours="22:00-06:00"))
    assert ev.on_batch(fixes((0, t(0), north_of(31.20, 900))), ctx) == []
    night = at(2025, 3, 4, 22, 30)
    assert kinds_of(ev.on_batch(fixes((0, night, north_of(31.20, 900))), ctx)) == [
        ("gps-000", True)]


def test_where_picks_the_vehicles() -> None:
    ev, ctx = setup(for_="0s", where=Where(role="muck_truck"), roles=["staff", "muck_truck"])
    out = ev.on_batch(fixes((0, t(0), north_of(31.25, 0)), (1, t(0), north_of(31.25, 0))), ctx)
    assert kinds_of(out) == [("gps-001", True)]


def test_a_tracker_registered_later_gets_its_route() -> None:
    routes = [line("a", 31.20, ["gps-000", "gps-002"]), line("b", 31.30)]
    ev, ctx = setup(routes=routes, for_="0s")
    ctx.registry.add([device(2, "gps")])
    ctx.state = np.zeros(3, np.int8)
    out = ev.on_batch(fixes((2, t(0), north_of(31.30, 0))), ctx)  # on b, assigned a
    assert kinds_of(out) == [("gps-002", True)]


def test_no_routes_of_the_kind_raise_nothing() -> None:
    ev, ctx = setup(routes=[], for_="0s")
    assert ev.on_batch(fixes((0, t(0), north_of(31.25, 0))), ctx) == []
    assert ev.on_tick(ctx) == []
