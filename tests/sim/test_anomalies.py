"""Injected anomalies: the readings behind each label really meet the rule's thresholds, the
real rule evaluators detect every labelled anomaly, and the CLI writes the labels."""

from __future__ import annotations

from tests.sim.sim_kit import CountingSender

import asyncio
import collections
import datetime as dt
import json
from zoneinfo import ZoneInfo

import msgspec
import numpy as np
import pytest
import shapely
from typer.testing import CliRunner

from cityops.domain.calendar import LocalClock
from cityops.domain.city import Device, Vehicle, Zone
from cityops.domain.geo import CityMap
from cityops.domain.kinds import CAMERA_EVENTS
from cityops.domain.readings import ReadingBatch
from cityops.domain.registry import DeviceRegistry
from cityops.domain.scenarios import spec
from cityops.domain.scenarios.build import build
from cityops.domain.scenarios.context import STATE_CODES, Context, Places
from cityops.packs import grid
from cityops.scenarios.loader import load_scenarios
from cityops.sim.anomalies import AnomalousSimulator, AnomalyPlan, KindRows, Label

US = 1_000_000
TZ = ZoneInfo("Asia/Shanghai")
LAT, LON = 31.2, 121.5


def local(hour: int, minute: int = 0, day: int = 15) -> float:
    return dt.datetime(2025, 7, day, hour, minute, tzinfo=TZ).timestamp()


# -- a small city with every kind of device the packs read --------------------------------


def _square(lon: float, lat: float, half: float) -> dict:
    ring = [[lon - half, lat - half], [lon + half, lat - half], [lon + half, lat + half],
            [lon - half, lat + half], [lon - half, lat - half]]
    return {"type": "Polygon", "coordinates": [ring]}


# Flood gauges placed by hand: an underpass with a rain gauge beside it in two corners of the
# city (where waterlogging can happen), a low road and a lone rain gauge in the other two, far
# enough from the underpasses that rain there is not "heavy rain near an underpass".
FLOOD = {
    "water_depth-000000": (-0.07, -0.07, "underpass"), "rainfall-000000": (-0.068, -0.07, None),
    "water_depth-000001": (0.07, 0.07, "underpass"), "rainfall-000001": (0.068, 0.07, None),
    "water_depth-000002": (0.07, -0.07, "low_point"), "rainfall-000002": (-0.07, 0.07, None),
}


def make_city():
    """A 20 km square city: meta as the Pudong generator writes it, a forbidden zone, a route
    per truck, five smoke detectors in one building."""
    counts = {"noise": 4, "water_depth": 3, "rainfall": 3, "wind": 3, "smoke": 3,
              "manhole_tilt": 3, "bin_fill": 3, "air_quality": 2, "water_meter": 3,
              "street_lamp": 3, "camera": 4, "gps": 5, "kpi": 2}
    pack = grid.generate(devices=counts, center=(LAT, LON), size_deg=0.2, seed=3)
    devices = []
    for d in pack.devices:
        i = int(d.id.rsplit("-", 1)[1])
        meta = {
            "noise": {"setting": "residential"},
            "water_meter": {"household": "elderly_living_alone"},
            "camera": {"site": "fire_lane" if i < 2 else "community_gate"},
            "kpi": {"kpi": "sorting_accuracy", "level": "village"},
        }.get(d.kind, {})
        if d.id in FLOOD:
            dlat, dlon, site = FLOOD[d.id]
            d = msgspec.structs.replace(d, lat=LAT + dlat, lon=LON + dlon)
            meta = {"site": site} if site else {}
        devices.append(msgspec.structs.replace(d, meta=meta))
    # A building with five detectors: the only place a cluster of several devices can form.
    devices += [Device(f"smoke-b{i}", "smoke", LAT + 0.004, LON + 0.004 + i * 1e-5,
                       meta={"building": "residential"}) for i in range(5)]
    trucks = [d for d in devices if d.kind == "gps"][:3]
    vehicles = [Vehicle(f"truck-{i}", f"T{i}", "muck_truck", d.id) for i, d in enumerate(trucks)]
    zones = [Zone("forbidden-core", "muck_forbidden", "Core", _square(LON - 0.01, LAT + 0.01,
                                                                   0.004))]
    for i, truck in enumerate(trucks):
        line = [[LON - 0.06, LAT - 0.03 + 0.02 * i], [LON + 0.06, LAT - 0.03 + 0.02 * i]]
        zones.append(Zone(f"route-{i}", "muck_route", f"Route {i}",
                          {"type": "LineString", "coordinates": line},
                          {"vehicles": [truck.id]}))
    return msgspec.structs.replace(pack, devices=devices, vehicles=vehicles, zones=zones)


@pytest.fixture(scope="module")
def city():
    return make_city()


@pytest.fixture(scope="module")
def scenarios(city):
    return load_scenarios(kinds=city.kinds, departments={d.code for d in city.departments})


# -- running a plan through the real evaluators --------------------------------------------


class Run:
    """The simulator with a plan, its readings kept per device, and the scenario rules
    evaluated over them as the detect engine would."""

    def __init__(self, city, scenarios, *, start: float, minutes: float, state: str = "daily",
                 rules: set[str] | None = None, per_min: float = 6.0, step_s: float = 5.0,
                 seed: int = 7) -> None:
        self.city, self.state, self.step_s = city, state, step_s
        self.start, self.end = start, start + minutes * 60
        self.plan = AnomalyPlan(city, scenarios, seed, start, per_min, state=state,
                                end_ts=self.end, rules=rules)
        self.sim = AnomalousSimulator(city, seed, start, plan=self.plan)
        resolved, errors = CityMap.from_pack(city).resolve_devices(city.devices)
        assert not errors
        self.registry = DeviceRegistry(city.kinds)
        self.registry.add(resolved)
        n = len(self.registry)
        self.ctx = Context(self.registry, Places.build(self.registry, city),
                           LocalClock(city.info.timezone, city.calendar), now_us=int(start * US),
                           state=np.full(n, STATE_CODES[state], np.int8), zones=list(city.zones))
        self.evaluators = [build(p, r, self.ctx) for p in scenarios if state in p.states
                           for r in p.rules]
        # Every device reports at its kind's nominal period, as real devices do.
        self.rate = sum(1.0 / city.kinds[d.kind].period_s for d in city.devices)
        self.rows: dict[str, list[tuple[float, np.ndarray]]] = collections.defaultdict(list)
        self.refused: dict[str, list[tuple[float, np.ndarray]]] = collections.defaultdict(list)
        self.signals: dict[tuple[str, str], list[float]] = collections.defaultdict(list)
        self.labels: list[Label] = []

    def go(self) -> Run:
        last_seen = np.full(len(self.registry), np.iinfo(np.int64).min, np.int64)
        owed, now = 0.0, self.start
        readings = [e for e in self.evaluators
                    if getattr(e, "source", "readings") == "readings"
                    and not hasattr(e, "on_signals")]
        refused = [e for e in self.evaluators if getattr(e, "source", "") == "rejections"]
        composites = [e for e in self.evaluators if hasattr(e, "on_signals")]
        while now < self.end:
            now += self.step_s
            owed += self.rate * self.step_s
            n, owed = int(owed), owed - int(owed)
            columns = self.sim._columns(n, now)
            batch, bad = self._batches(columns)
            self.ctx.now_us = int(now * US)
            np.maximum.at(last_seen, batch.device, batch.ts)
            self.ctx.last_seen_us = last_seen
            found = []
            for e in readings:
                found += e.on_batch(batch, self.ctx) or []
            for e in refused:
                found += e.on_batch(bad, self.ctx) or []
            for e in readings + refused:
                found += e.on_tick(self.ctx) or []
            for e in composites:
                found += e.on_signals(found, self.ctx) or []
            for s in found:
                if s.active:
                    self.signals[(s.rule, s.subject)].append(s.ts_us / US)
        self.labels = self.plan.labels + self.sim.finish(now)
        return self

    def _batches(self, columns) -> tuple[ReadingBatch, ReadingBatch]:
        """Rows as the intake makes them: valid ones for the rules, refused ones aside."""
        reg = self.registry
        parts = []
        for ids, ts, values, group in columns:
            rows = KindRows(group.kind.name, ids, ts, values)
            for device, t, row in zip(rows.ids.tolist(), rows.ts.tolist(), rows.values):
                kind = reg.kinds[reg.kind_of[reg.index[device]]]
                inside = all(c.min <= v <= c.max for c, v in zip(kind.channels, row))
                (self.rows if inside else self.refused)[device].append((t, row.copy()))
            index = np.array([reg.index[i] for i in ids.tolist()], np.int32)
            for c in range(values.shape[1]):
                parts.append((index, np.full(len(index), c, np.int8),
                              np.round(ts * US).astype(np.int64), values[:, c]))
        if not parts:
            return ReadingBatch.empty(), ReadingBatch.empty()
        d, c, t, v = (np.concatenate(x) for x in zip(*parts))
        k = reg.kind_of[d]
        ok = (v >= reg.ch_min[k, c]) & (v <= reg.ch_max[k, c])
        good = ReadingBatch(d[ok], c[ok], t[ok], v[ok])
        bad = ReadingBatch(d[~ok], c[~ok], t[~ok], v[~ok], source="rejections")
        return good, bad

    def detected(self, label: Label, grace_s: float = 120.0) -> bool:
        times = self.signals.get((label.rule, label.subject), [])
        return any(label.start - 1.0 <= t <= label.end + grace_s for t in times)

    def missed(self) -> list[Label]:
        return [label for label in self.labels if not self.detected(label)]


@pytest.fixture(scope="module")
def night(city, scenarios):
    """Forty minutes from 22:30: every rule that can run at night, in the daily state."""
    return Run(city, scenarios, start=local(22, 30), minutes=40).go()


@pytest.fixture(scope="module")
def day(city, scenarios):
    """Forty minutes from 10:00 in the special state (a typhoon warning is in force)."""
    return Run(city, scenarios, start=local(10), minutes=40, state="special").go()


# -- what the labels say happened did happen -----------------------------------------------


def _rules(scenarios) -> dict[str, spec.AnyRule]:
    return {f"{p.name}.{r.id}": r for p in scenarios for r in p.rules}


def _series(run: Run, device: str, channel: int, label: Label, before_s: float = 0.0):
    """A device's readings from `before_s` before the label's start to its end."""
    rows = [(ts, row) for ts, row in run.rows[device]
            if label.start - before_s <= ts <= label.end]
    return np.array([ts for ts, _ in rows]), np.array([row[channel] for _, row in rows])


def _channel(city, rule, device_id: str) -> int:
    kind = city.kinds[next(d.kind for d in city.devices if d.id == device_id)]
    return kind.channel_index(rule.channel) if rule.channel else 0


def check_label(run: Run, rules: dict[str, spec.AnyRule], label: Label) -> None:
    """The readings of the label's subject between its start and end meet its rule."""
    rule, state, city = rules[label.rule], run.state, run.city
    p = lambda name: spec.param(rule, name, state)  # noqa: E731
    if isinstance(rule, spec.Threshold):
        t, v = _series(run, label.subject, _channel(city, rule, label.subject), label)
        past = v > p("above") if p("above") is not None else v < p("below")
        if _made_for(run, label):
            assert past.all(), (label, v)
        # A run of readings past the line, without a break, for at least `for`.
        spans = [t[b] - t[a] for a, b in _runs(past)]
        assert spans and max(spans) >= spec.seconds(p("for_")), (label, v)
    elif isinstance(rule, spec.RateOfChange):
        within = spec.seconds(p("within"))
        # The level before the anomaly counts: a jump from it is a rise.
        t, v = _series(run, label.subject, _channel(city, rule, label.subject), label, within)
        rises = [v[j] - v[(t >= t[j] - within) & (t <= t[j])].min() for j in range(len(v))]
        assert max(rises) > p("rise"), (label, max(rises))
    elif isinstance(rule, spec.Absence):
        assert not [ts for ts, _ in run.rows[label.subject] if label.start < ts < label.end]
        period = city.kinds[next(d.kind for d in city.devices if d.id == label.subject)].period_s
        assert label.end - label.start >= p("periods") * period, label
    elif isinstance(rule, spec.Quiet):
        t, v = _series(run, label.subject, 0, label)
        assert (v <= p("active_above")).all(), label
        clock = LocalClock(city.info.timezone)
        inside = clock.seconds_inside(rule.when, int(label.start * US), int(label.end * US))
        assert inside >= spec.seconds(p("for_")), label
    elif isinstance(rule, spec.CameraEvent):
        _, event = _series(run, label.subject, 0, label)
        _, dwell = _series(run, label.subject, 1, label)
        code = {name: c for c, name in CAMERA_EVENTS.items()}[rule.event]
        assert (event == code).all() and dwell.max() > spec.seconds(p("dwell")), label
    elif isinstance(rule, spec.Window):
        _check_window(run, rule, p, label)
    elif isinstance(rule, spec.Geofence):
        device, zone_id = label.subject.split("@")
        zone = next(z for z in city.zones if z.id == zone_id)
        t, lat = _series(run, device, 0, label)
        _, lon = _series(run, device, 1, label)
        inside = shapely.contains_xy(shapely.geometry.shape(zone.geometry), lon, lat)
        assert inside.any() and t[inside][-1] - t[inside][0] >= spec.seconds(p("dwell"))
    elif isinstance(rule, spec.RouteDeviation):
        t, lat = _series(run, label.subject, 0, label)
        _, lon = _series(run, label.subject, 1, label)
        route = next(z for z in city.zones if label.subject in z.meta.get("vehicles", []))
        view = run.plan.view
        x, y = view.to_xy(lat, lon)
        metres = shapely.distance(view.line_xy(route), shapely.points(x, y))
        off = t[metres > p("max_distance_m")]
        assert off.size and off[-1] - off[0] >= spec.seconds(p("for_")), label
    elif isinstance(rule, spec.Composite):
        members = {m if "." in m else f"{label.rule.split('.')[0]}.{m}" for m in rule.all_of}
        same = {x.rule for x in run.labels if x.anomaly == label.anomaly}
        assert members <= same, label
        assert label.subject.count("+") == len(rule.all_of) - 1


def _made_for(run: Run, label: Label) -> bool:
    """The label is of the rule its anomaly was made for (not a companion)."""
    return next(x for x in run.labels if x.anomaly == label.anomaly) == label


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    edges = np.diff(np.r_[0, flags.astype(np.int8), 0])
    return list(zip(np.flatnonzero(edges == 1).tolist(),
                    (np.flatnonzero(edges == -1) - 1).tolist()))


def _check_window(run: Run, rule, p, label: Label) -> None:
    over = spec.seconds(p("over"))
    city = run.city
    if rule.source == "rejections":
        times = sorted(ts for ts, _ in run.refused[label.subject]
                       if label.start <= ts <= label.end)
        best = max(sum(1 for u in times if t - over <= u <= t) for t in times)
        assert best > p("above"), label
        return
    if rule.per == "device":
        channel = _channel(city, rule, label.subject)
        t, v = _series(run, label.subject, channel, label)
        if rule.agg == "range":
            window = (t >= t[-1] - over)
            assert window.sum() >= p("min_count")
            assert np.ptp(v[window]) < p("below"), label
        return
    members = [d.id for d in run.plan.view.selected(rule)
               if run.plan.view.group_key(d, rule.per) == label.subject]
    times = sorted(ts for m in members for ts, row in run.rows[m]
                   if label.start <= ts <= label.end and row[0] > p("value_above"))
    best = max(sum(1 for u in times if t - over <= u <= t) for t in times)
    assert best > p("above"), label


def test_labels_match_the_injected_readings_at_night(night, scenarios):
    rules = _rules(scenarios)
    assert night.labels
    for label in night.labels:
        check_label(night, rules, label)


def test_labels_match_the_injected_readings_by_day_in_the_special_state(day, scenarios):
    rules = _rules(scenarios)
    assert day.labels
    for label in day.labels:
        check_label(day, rules, label)


def test_night_exercises_every_night_time_rule(night):
    own = {label.rule for label in night.labels}
    expected = {
        "noise.night_residential", "flood.deep_water", "flood.rising", "flood.heavy_rain",
        "flood.waterlogging", "fire_lane.blocked", "muck.forbidden_zone", "muck.off_route",
        "muck.speeding", "garbage.bin_full", "garbage.sorting_accuracy",
        "components.manhole_displaced", "components.lamp_out", "smoke.alarm_cluster",
        "device_health.offline_noise", "device_health.out_of_range",
    }
    assert expected <= own, expected - own


def test_day_in_the_special_state_exercises_typhoon_and_daytime_rules(day):
    own = {label.rule for label in day.labels}
    assert {"typhoon.gale", "typhoon.storm_force", "typhoon.torrential_rain",
            "muck.out_of_hours"} <= own
    assert "noise.night_residential" not in own and "components.lamp_out" not in own


def test_every_labelled_anomaly_is_detected_by_the_rules(night, day):
    assert night.missed() == []
    assert day.missed() == []


def test_companions_are_labelled_with_the_anomaly_that_sets_them_off(day):
    storms = [x for x in day.labels if x.rule == "typhoon.storm_force"]
    assert storms
    for storm in storms:
        mates = {(x.rule, x.subject) for x in day.labels if x.anomaly == storm.anomaly}
        assert ("typhoon.gale", storm.subject) in mates  # a storm-force wind is a gale too


def test_long_anomalies_elderly_silence_stuck_sensors_and_daytime_noise(city, scenarios):
    rules = {"elderly.no_water", "device_health.stuck_air_quality", "noise.day_residential",
             "device_health.stuck_noise"}
    run = Run(city, scenarios, start=local(6, 40), minutes=13 * 60, rules=rules,
              per_min=0.2, step_s=20.0).go()
    assert {label.rule for label in run.labels} == rules
    checks = _rules(scenarios)
    for label in run.labels:
        check_label(run, checks, label)
    assert run.missed() == []
    silent = next(x for x in run.labels if x.rule == "elderly.no_water")
    assert dt.datetime.fromtimestamp(silent.start, TZ).hour < 10  # "silent from the morning"


# -- the plan ------------------------------------------------------------------------------


def test_rules_the_city_cannot_exercise_say_why(city, scenarios):
    plan = AnomalyPlan(city, scenarios, 1, local(12), 1.0)
    assert "weeks of history" in plan.skipped["vital_signs.calls_110"]
    assert plan.skipped["typhoon.gale"] == "pack not active in state daily"
    assert "no device" in plan.skipped["device_health.offline_kpi"]
    special = AnomalyPlan(city, scenarios, 1, local(12), 1.0, state="special")
    assert "typhoon.gale" in special.injectable
    with pytest.raises(ValueError, match="state 'busy'"):
        AnomalyPlan(city, scenarios, 1, local(12), 1.0, state="busy")


def test_the_same_seed_gives_the_same_labels(city, scenarios):
    def labels():
        return Run(city, scenarios, start=local(23), minutes=15, seed=11).go().labels

    first = labels()
    assert first and first == labels()


def test_anomalies_start_at_the_rate_asked(scenarios):
    covers = grid.generate(devices={"manhole_tilt": 200}, center=(LAT, LON))
    plan = AnomalyPlan(covers, scenarios, 2, local(23), 4.0,
                       rules={"components.manhole_displaced"})
    sim = AnomalousSimulator(covers, 2, local(23), plan=plan)
    now = local(23)
    for _ in range(10 * 60):
        now += 1.0
        sim._columns(5, now)
    assert plan.started == 40  # 4 a minute for ten minutes
    assert len(plan.labels) >= 30  # those that have ended (3 minutes each)


def test_a_silent_device_sends_nothing_and_comes_back(city, scenarios):
    plan = AnomalyPlan(city, scenarios, 3, local(23), 0.0)
    sim = AnomalousSimulator(city, 3, local(23), plan=plan)
    anomaly = plan.start("device_health.offline_noise", local(23))
    device = anomaly.tracks[0].device
    seen = []
    now = local(23)
    for _ in range(12 * 60):
        now += 1.0
        for ids, ts, _, _ in sim._columns(10, now):
            seen += [t for i, t in zip(ids.tolist(), ts.tolist()) if i == device]
    (label,) = plan.labels
    assert label.subject == device and label.rule == "device_health.offline_noise"
    assert not [t for t in seen if label.start < t < label.end]
    assert [t for t in seen if t > label.end]  # back afterwards


def test_labels_serialise_as_the_documented_json(city, scenarios):
    label = Label("noise.night_residential", "noise-000001", 1.5, 901.5, 4)
    assert json.loads(msgspec.json.encode(label)) == {
        "rule": "noise.night_residential", "subject": "noise-000001", "start": 1.5,
        "end": 901.5, "anomaly": 4}


# -- wiring: the run and the CLI ------------------------------------------------------------


def test_a_run_with_a_plan_reports_its_labels(city, scenarios):
    from cityops.sim.run import simulate

    clock = [local(23)]

    def wall() -> float:
        return clock[0]

    async def sleep(seconds: float) -> None:
        clock[0] += seconds
        await asyncio.sleep(0)

    plan = AnomalyPlan(city, scenarios, 5, local(23), 6.0,
                       rules={"components.manhole_displaced"})
    found: list[Label] = []
    report = asyncio.run(simulate(
        city, CountingSender(), rate=20, duration=300, batch_size=10, seed=5,
        clock=wall, sleep=sleep, wall=wall, plan=plan, on_labels=found.extend))
    assert found and report.labels == len(found)
    assert report.anomalies == len({x.anomaly for x in found})
    assert {x.rule for x in found} == {"components.manhole_displaced"}


def test_cli_labels_need_anomalies(tmp_path, city):
    from cityops.cli.main import app
    from cityops.packs.format import save_pack

    save_pack(city, tmp_path / "city")
    result = CliRunner().invoke(app, ["simulate", "--city", str(tmp_path / "city"),
                                      "--labels", str(tmp_path / "labels.jsonl")])
    assert result.exit_code == 2
    assert "--labels needs --anomalies" in result.output


def test_cli_refuses_an_unknown_state(tmp_path, city):
    from cityops.cli.main import app
    from cityops.packs.format import save_pack

    save_pack(city, tmp_path / "city")
    result = CliRunner().invoke(app, ["simulate", "--city", str(tmp_path / "city"),
                                      "--anomalies", "--state", "busy"])
    assert result.exit_code == 2
    assert "--state 'busy'" in result.output
