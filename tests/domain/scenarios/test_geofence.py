"""Geofence enter / exit / dwell / inside for movers, on GPS fixes assembled from lat+lon rows."""

from __future__ import annotations

import numpy as np
import shapely

from cityops.domain.city import Zone
from cityops.domain.geo import to_geojson_geometry
from cityops.domain.readings import ReadingBatch
from cityops.domain.scenarios.build import build
from cityops.domain.scenarios.primitives.geofence import GeofenceEvaluator
from cityops.domain.scenarios.spec import Geofence, When, Where
from tests.domain.scenarios.city_kit import at, context, device, kinds_of, pack, set_state

US = 1_000_000
T0 = at(2025, 3, 4, 12, 0)  # a Tuesday noon in Shanghai
# A square zone 121.50..121.51 E, 31.20..31.21 N; fixes inside, outside and on its border.
IN, OUT, EDGE, CORNER = (31.205, 121.505), (31.25, 121.55), (31.205, 121.51), (31.21, 121.50)


def square(zone_id: str = "z1", kind: str = "muck_forbidden", **meta) -> Zone:
    box = shapely.box(121.50, 31.20, 121.51, 31.21)
    return Zone(zone_id, kind, f"Zone {zone_id}", to_geojson_geometry(box), meta)


def fixes(*points: tuple[int, int, tuple[float, float]]) -> ReadingBatch:
    """(device, ts, (lat, lon)) as the two rows a tracker sends per fix, lon row first."""
    rows = []
    for dev, ts, (lat, lon) in points:
        rows += [(dev, 1, ts, lon), (dev, 0, ts, lat)]
    d, c, t, v = zip(*rows, strict=True)
    return ReadingBatch(np.array(d, np.int32), np.array(c, np.int8), np.array(t, np.int64),
                        np.array(v))


def setup(on="inside", zones=None, devices=2, roles=None, **kw):
    ctx = context([device(i, "gps") for i in range(devices)])
    ctx.zones = zones if zones is not None else [square()]
    if roles:
        ctx.places.roles[:] = roles
    rule = Geofence(id="forbidden", zones="muck_forbidden", on=on, **kw)
    return build(pack(rule), rule, ctx), ctx


def t(minutes: float) -> int:
    return T0 + int(minutes * 60 * US)


def test_inside_raises_on_the_first_fix_inside_and_clears_on_leaving() -> None:
    ev, ctx = setup("inside")
    assert isinstance(ev, GeofenceEvaluator)
    assert ev.on_batch(fixes((0, t(0), OUT), (1, t(0), OUT)), ctx) == []
    raised = ev.on_batch(fixes((0, t(1), IN)), ctx)
    assert kinds_of(raised) == [("gps-000@z1", True)]
    s = raised[0]
    assert (s.rule, s.device, s.ts_us, s.lat, s.lon) == ("test.forbidden", 0, t(1), *IN)
    assert s.evidence == [(0, 0, t(1), IN[0]), (0, 1, t(1), IN[1])]
    assert "inside Zone z1 (muck_forbidden)" in s.detail
    update = ev.on_batch(fixes((0, t(2), IN)), ctx)
    assert kinds_of(update) == [("gps-000@z1", True)] and update[0].value == 60.0
    cleared = ev.on_batch(fixes((0, t(3), OUT)), ctx)
    assert kinds_of(cleared) == [("gps-000@z1", False)]
    assert ev.on_batch(fixes((0, t(4), OUT)), ctx) == []


def test_a_device_never_inside_raises_nothing() -> None:
    ev, ctx = setup("inside")
    ring = [(31.199, 121.505), (31.211, 121.505), (31.205, 121.4999), (31.205, 121.5101)]
    assert ev.on_batch(fixes(*[(0, t(i), p) for i, p in enumerate(ring)]), ctx) == []


def test_exactly_on_the_border_or_a_corner_is_inside() -> None:
    ev, ctx = setup("inside")
    assert kinds_of(ev.on_batch(fixes((0, t(0), EDGE), (1, t(0), CORNER)), ctx)) == [
        ("gps-000@z1", True), ("gps-001@z1", True)]


def test_enter_needs_a_crossing_seen() -> None:
    ev, ctx = setup("enter")
    assert ev.on_batch(fixes((0, t(0), IN)), ctx) == []  # first seen inside: did not enter
    assert ev.on_batch(fixes((0, t(1), IN)), ctx) == []
    assert ev.on_batch(fixes((0, t(2), OUT)), ctx) == []
    assert kinds_of(ev.on_batch(fixes((0, t(3), IN)), ctx)) == [("gps-000@z1", True)]
    assert kinds_of(ev.on_batch(fixes((0, t(4), OUT)), ctx)) == [("gps-000@z1", False)]


def test_entering_and_leaving_within_one_batch() -> None:
    ev, ctx = setup("enter")
    out = ev.on_batch(fixes((0, t(0), OUT), (0, t(1), IN), (0, t(2), IN), (0, t(3), OUT),
                            (0, t(4), IN)), ctx)
    assert [(s.active, s.ts_us) for s in out] == [(True, t(1)), (False, t(3)), (True, t(4))]


def test_rows_in_any_order_within_a_batch() -> None:
    ev, ctx = setup("enter")
    batch = fixes((0, t(0), OUT), (0, t(1), IN), (0, t(2), OUT))
    shuffled = batch.take(np.random.default_rng(1).permutation(len(batch)))
    out = ev.on_batch(shuffled, ctx)
    assert [(s.active, s.ts_us) for s in out] == [(True, t(1)), (False, t(2))]


def test_exit_raises_on_leaving_and_clears_on_return() -> None:
    ev, ctx = setup("exit")
    assert ev.on_batch(fixes((0, t(0), OUT)), ctx) == []  # never inside: never left
    assert ev.on_batch(fixes((0, t(1), IN)), ctx) == []
    left = ev.on_batch(fixes((0, t(2), OUT)), ctx)
    assert kinds_of(left) == [("gps-000@z1", True)] and "left Zone z1" in left[0].detail
    assert kinds_of(ev.on_batch(fixes((0, t(3), OUT)), ctx)) == [("gps-000@z1", True)]  # update
    assert kinds_of(ev.on_batch(fixes((0, t(4), IN)), ctx)) == [("gps-000@z1", False)]


def test_dwell_raises_once_inside_long_enough_and_a_break_starts_again() -> None:
    ev, ctx = setup("dwell", dwell="5m")
    assert ev.on_batch(fixes((0, t(0), IN), (0, t(4.9), IN)), ctx) == []
    assert ev.on_batch(fixes((0, t(5.5), OUT)), ctx) == []
    assert ev.on_batch(fixes((0, t(6), IN), (0, t(10), IN)), ctx) == []
    out = ev.on_batch(fixes((0, t(11), IN)), ctx)  # exactly 5 min since t(6)
    assert kinds_of(out) == [("gps-000@z1", True)] and out[0].value == 300.0
    assert "for 5 min" in out[0].detail
    assert kinds_of(ev.on_batch(fixes((0, t(12), OUT)), ctx)) == [("gps-000@z1", False)]


def test_dwell_per_operating_state() -> None:
    ev, ctx = setup("dwell", dwell="10m", states={"special": {"dwell": "1m"}})
    set_state(ctx, "special", [1])
    out = ev.on_batch(fixes((0, t(0), IN), (1, t(0), IN), (0, t(2), IN), (1, t(2), IN)), ctx)
    assert kinds_of(out) == [("gps-001@z1", True)]
    assert kinds_of(ev.on_batch(fixes((0, t(10), IN)), ctx)) == [("gps-000@z1", True)]


def test_a_fix_older_than_the_newest_changes_nothing() -> None:
    ev, ctx = setup("inside")
    assert kinds_of(ev.on_batch(fixes((0, t(5), IN)), ctx)) == [("gps-000@z1", True)]
    assert ev.on_batch(fixes((0, t(4), OUT)), ctx) == []  # late: not a clear
    assert kinds_of(ev.on_batch(fixes((0, t(6), IN)), ctx)) == [("gps-000@z1", True)]
    ev2, ctx2 = setup("inside")
    assert ev2.on_batch(fixes((0, t(5), OUT)), ctx2) == []
    assert ev2.on_batch(fixes((0, t(4), IN)), ctx2) == []  # late: not a raise
    assert ev2.on_batch(fixes((0, t(5), IN)), ctx2) == []  # same time again: not newer


def test_a_resent_fix_counts_once() -> None:
    ev, ctx = setup("enter")
    ev.on_batch(fixes((0, t(0), OUT)), ctx)
    out = ev.on_batch(fixes((0, t(1), IN), (0, t(1), IN)), ctx)
    assert kinds_of(out) == [("gps-000@z1", True)]


def test_half_a_fix_or_another_channel_is_no_position() -> None:
    ev, ctx = setup("inside")
    lat_only = ReadingBatch(np.array([0], np.int32), np.array([0], np.int8),
                            np.array([t(0)]), np.array([IN[0]]))
    speed = ReadingBatch(np.array([0, 0], np.int32), np.array([2, 3], np.int8),
                         np.array([t(0), t(0)]), np.array([IN[0], IN[1]]))
    assert ev.on_batch(lat_only, ctx) == [] and ev.on_batch(speed, ctx) == []
    assert ev.on_batch(fixes((0, t(1), (np.nan, IN[1]))), ctx) == []


def test_zone_hours_limit_when_the_zone_is_forbidden() -> None:
    ev, ctx = setup("inside", zones=[square(hours="07:00-22:00")])
    morning = at(2025, 3, 4, 6, 50)
    assert ev.on_batch(fixes((0, morning, IN), (0, at(2025, 3, 4, 6, 59, 59), IN)), ctx) == []
    opened = ev.on_batch(fixes((0, at(2025, 3, 4, 7, 0), IN)), ctx)
    assert kinds_of(opened) == [("gps-000@z1", True)]
    closed = ev.on_batch(fixes((0, at(2025, 3, 4, 22, 0), IN)), ctx)
    assert kinds_of(closed) == [("gps-000@z1", False)]


def test_enter_counts_a_zone_opening_round_a_parked_truck() -> None:
    ev, ctx = setup("enter", zones=[square(hours="07:00-22:00")])
    assert ev.on_batch(fixes((0, at(2025, 3, 4, 6, 55), IN)), ctx) == []
    assert kinds_of(ev.on_batch(fixes((0, at(2025, 3, 4, 7, 5), IN)), ctx)) == [
        ("gps-000@z1", True)]


def test_the_rules_when_applies_too() -> None:
    ev, ctx = setup("inside", when=When(hours="22:00-06:00"))
    assert ev.on_batch(fixes((0, t(0), IN)), ctx) == []  # noon
    night = at(2025, 3, 4, 23, 0)
    assert kinds_of(ev.on_batch(fixes((0, night, IN)), ctx)) == [("gps-000@z1", True)]
    assert kinds_of(ev.on_batch(fixes((0, at(2025, 3, 5, 6, 0), IN)), ctx)) == [
        ("gps-000@z1", False)]


def test_where_role_picks_the_movers() -> None:
    ev, ctx = setup("inside", devices=3, roles=["muck_truck", "staff", ""],
                    where=Where(role="muck_truck"))
    out = ev.on_batch(fixes((0, t(0), IN), (1, t(0), IN), (2, t(0), IN)), ctx)
    assert kinds_of(out) == [("gps-000@z1", True)]


def test_only_zones_of_the_rules_kind_and_each_zone_its_own_episode() -> None:
    big = Zone("z2", "muck_forbidden", "Big", to_geojson_geometry(
        shapely.box(121.49, 31.19, 121.52, 31.22)))
    lane = square("lane", kind="fire_lane")
    ev, ctx = setup("inside", zones=[square(), big, lane])
    out = ev.on_batch(fixes((0, t(0), IN)), ctx)
    assert sorted(kinds_of(out)) == [("gps-000@z1", True), ("gps-000@z2", True)]
    out = ev.on_batch(fixes((0, t(1), (31.215, 121.515))), ctx)  # in z2 only
    assert kinds_of(out) == [("gps-000@z1", False), ("gps-000@z2", True)]


def test_no_zones_of_the_kind_means_nothing_fires() -> None:
    ev, ctx = setup("inside", zones=[])
    assert ev.on_batch(fixes((0, t(0), IN)), ctx) == [] and ev.on_tick(ctx) == []


def test_many_devices_in_one_batch() -> None:
    n = 50
    ev, ctx = setup("enter", devices=n)
    first = fixes(*[(d, t(0), OUT) for d in range(n)])
    second = fixes(*[(d, t(1), IN if d % 2 else OUT) for d in range(n)])
    assert ev.on_batch(first, ctx) == []
    out = ev.on_batch(second, ctx)
    assert sorted(s.device for s in out) == list(range(1, n, 2))
    assert all(s.active for s in out)


def reference(on: str, dwell_s: float, zones: list[Zone], walk) -> list[tuple[str, bool, int]]:
    """The rule decided one fix at a time, as a person would read it."""
    shapes = [shapely.geometry.shape(z.geometry) for z in zones]
    newest: dict[int, int] = {}
    state: dict[tuple[int, int], dict] = {}
    out = []
    for batch in walk:
        for dev, ts, (lat, lon) in sorted(batch):
            if ts <= newest.get(dev, -1):
                continue
            seen = dev in newest
            newest[dev] = ts
            for z, zone_shape in enumerate(shapes):
                s = state.setdefault((dev, z), {"in": False, "since": 0, "crossed": False,
                                                "active": False})
                now_in = zone_shape.covers(shapely.Point(lon, lat))
                subject = f"gps-{dev:03d}@{zones[z].id}"
                if now_in and not s["in"]:
                    s.update({"in": True, "since": ts, "crossed": seen})
                    if on == "exit" and s["active"]:
                        s["active"] = False
                        out.append((subject, False, ts))
                elif not now_in and s["in"]:
                    s["in"] = False
                    if on == "exit" and not s["active"]:
                        s["active"] = True
                        out.append((subject, True, ts))
                    elif on != "exit" and s["active"]:
                        s["active"] = False
                        out.append((subject, False, ts))
                if on != "exit" and s["in"] and not s["active"]:
                    held = ts - s["since"] >= dwell_s * US
                    if held and (on != "enter" or s["crossed"]):
                        s["active"] = True
                        out.append((subject, True, ts))
    return sorted(out)


def test_agrees_with_a_fix_by_fix_reading_of_the_rule() -> None:
    rng = np.random.default_rng(7)
    zones = [square(), Zone("z2", "muck_forbidden", "Disc", to_geojson_geometry(
        shapely.Point(121.508, 31.208).buffer(0.004)))]
    devices = 12
    walk = []
    position = rng.uniform([31.195, 121.495], [31.215, 121.515], (devices, 2))
    clock = np.zeros(devices, np.int64)
    for _ in range(15):
        batch = []
        for _ in range(40):
            d = int(rng.integers(devices))
            clock[d] += int(rng.integers(1, 60)) * US
            position[d] = np.clip(position[d] + rng.normal(0, 0.003, 2), [31.195, 121.495],
                                  [31.215, 121.515])
            ts = T0 + int(clock[d])
            if rng.random() < 0.1:  # a late fix from before this device's newest
                ts -= int(rng.integers(1, 300)) * US
            batch.append((d, ts, (float(position[d, 0]), float(position[d, 1]))))
        walk.append(batch)
    for on, dwell in [("inside", "0s"), ("enter", "0s"), ("exit", "0s"), ("dwell", "3m"),
                      ("enter", "2m")]:
        ev, ctx = setup(on, zones=zones, devices=devices, dwell=dwell)
        got = []
        for batch in walk:
            rows = fixes(*batch)
            rows = rows.take(rng.permutation(len(rows)))
            got += [(s.subject, s.active, s.ts_us) for s in ev.on_batch(rows, ctx)]
        changes = _changes(got)
        assert changes == reference(on, float(dwell[:-1]) * 60, zones, walk), (on, dwell)
        assert len(changes) >= (100 if dwell == "0s" else 2)


def _changes(signals: list[tuple[str, bool, int]]) -> list[tuple[str, bool, int]]:
    """Raises and clears, without the updates in between."""
    out, open_ = [], set()
    for subject, active, ts in signals:
        if active and subject not in open_:
            open_.add(subject)
            out.append((subject, True, ts))
        elif not active:
            open_.discard(subject)
            out.append((subject, False, ts))
    return sorted(out)


def test_inside_waits_its_dwell_too() -> None:
    ev, ctx = setup("inside", dwell="30s")
    assert ev.on_batch(fixes((0, t(0), IN), (0, t(0.25), IN)), ctx) == []
    assert kinds_of(ev.on_batch(fixes((0, t(0.5), IN)), ctx)) == [("gps-000@z1", True)]
