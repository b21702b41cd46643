"""The storm on top of the simulated city: gateway outages stop exactly the devices behind a
village's gateways for exactly their window, flaky devices fall silent for three periods and
more and come back, repeaters repeat their alarm, labels are the same for the same seed, the
usual anomalies are still injected and detected, and packs without gateways (or areas) work.

Time is the simulator's own: batches are asked for at simulated instants, nothing waits."""

from __future__ import annotations

from tests.sim.sim_kit import CountingSender

import asyncio
import collections
import json

import msgspec
import numpy as np
import pytest
from typer.testing import CliRunner

from cityops.domain.city import CityPack, Device
from cityops.sim.anomalies import AnomalousSimulator
from cityops.sim.run import simulate
from cityops.sim.simulator import Simulator
from cityops.sim.storm import Flaky, Outage, Repeater, StormLabel, StormOptions

T0 = 1_716_739_200.0  # midnight in Shanghai


def with_gateways(pack: CityPack) -> CityPack:
    """Two gateways a village (by the device's number), and one wired camera per village that
    reaches the platform without any."""
    devices = []
    for d in pack.devices:
        if d.kind in ("gps", "kpi"):
            devices.append(d)
            continue
        number = int(d.id.rsplit("-", 1)[1])
        village = _village_of(pack, d)
        meta = dict(d.meta)
        if not (d.kind == "camera" and number < 4):
            meta["gateway"] = f"gw-{village}-{1 + number // 8 % 2}"
        devices.append(msgspec.structs.replace(d, meta=meta))
    return msgspec.structs.replace(pack, devices=devices)


def _village_of(pack: CityPack, device: Device) -> str:
    from cityops.domain.geo import CityMap

    place = CityMap.from_pack(pack).resolve(device.lat, device.lon)
    assert place is not None
    return place.village


class Tape:
    """Readings of a simulator asked for every `step_s` of simulated time, kept per device."""

    def __init__(self, sim: Simulator, *, seconds: float, step_s: float = 1.0,
                 per_step: int = 40) -> None:
        self.sim = sim
        self.seen: dict[str, list[tuple[float, list[float]]]] = collections.defaultdict(list)
        self.labels: list[StormLabel] = []
        sim.on_storm = self.labels.extend
        now = sim.start_ts
        while now < sim.start_ts + seconds:
            now += step_s
            for ids, ts, values, _ in sim._columns(per_step, now):
                for i, t, row in zip(ids.tolist(), ts.tolist(), values.tolist(), strict=True):
                    self.seen[i].append((t, row))
        self.end = now
        sim.finish_storm(now)

    def times(self, device: str) -> np.ndarray:
        return np.array([t for t, _ in self.seen[device]])

    def of(self, kind: type) -> list:
        return [x for x in self.labels if isinstance(x, kind)]


def fast_pack(make_pack) -> CityPack:
    """Sixty-second kinds only (no movers): every device reported every few seconds at the
    tape's rate, so gaps are the storm's."""
    pack = make_pack(per_kind=12, movers=0)
    fast = [d for d in pack.devices if pack.kinds[d.kind].period_s == 60]
    return msgspec.structs.replace(pack, devices=fast)


# -- outages ------------------------------------------------------------------------------


def test_an_outage_stops_exactly_the_devices_behind_the_gateways_for_its_window(make_pack):
    pack = with_gateways(fast_pack(make_pack))
    options = StormOptions(outages=1, outage_at=120.0, outage_for=240.0)
    tape = Tape(Simulator(pack, seed=5, start_ts=T0, storm=options), seconds=600)
    (outage,) = tape.of(Outage)
    assert (outage.start, outage.end) == (T0 + 120.0, T0 + 360.0)
    behind = {d.id for d in pack.devices if d.meta.get("gateway") in outage.gateways}
    assert outage.gateways == [f"gw-{outage.village}-1", f"gw-{outage.village}-2"]
    assert set(outage.devices) == behind and outage.count == len(behind) >= 10
    for device in pack.devices:
        t = tape.times(device.id)
        inside = t[(t >= outage.start) & (t < outage.end)]
        if device.id in behind:
            assert inside.size == 0, device.id
            # Heard up to the outage and again right after it: down for exactly the window.
            assert outage.start - 5.0 < t[t < outage.start].max()
            assert t[t >= outage.end].min() < outage.end + 5.0
        else:  # other villages, and the wired camera of this one, keep sending
            assert inside.size > 40, device.id
    wired = [d.id for d in pack.devices if "gateway" not in d.meta
             and _village_of(pack, d) == outage.village]
    assert wired and not set(wired) & set(outage.devices)


def test_outages_without_gateways_take_a_villages_fixed_devices(make_pack):
    pack = make_pack(per_kind=12, movers=4)  # no gateways at all
    options = StormOptions(outages=2, outage_at=30.0, outage_for=100.0, outage_stagger=50.0)
    tape = Tape(Simulator(pack, seed=2, start_ts=T0, storm=options), seconds=300)
    first, second = tape.of(Outage)
    assert first.gateways == second.gateways == []
    assert first.village != second.village
    assert (first.start, second.start) == (T0 + 30.0, T0 + 80.0)
    for outage in (first, second):
        expected = {d.id for d in pack.devices if d.kind not in ("gps", "kpi")
                    and _village_of(pack, d) == outage.village}
        assert set(outage.devices) == expected
        assert outage.town == outage.village[:9]
        for device in outage.devices:
            t = tape.times(device)
            assert not ((t >= outage.start) & (t < outage.end)).any()
    movers = [d.id for d in pack.devices if d.kind == "gps"]
    for device in movers:  # on the mobile network, not behind a gateway
        t = tape.times(device)
        assert ((t >= first.start) & (t < first.end)).sum() > 5


def test_outage_labels_go_out_as_each_ends_and_a_running_one_at_the_finish(make_pack):
    pack = make_pack(per_kind=12, movers=0)
    sim = Simulator(pack, seed=2, start_ts=T0, storm=StormOptions(
        outages=2, outage_at=10.0, outage_for=50.0, outage_stagger=100.0))
    got: list[StormLabel] = []
    sim.on_storm = got.extend
    for second in range(1, 121):
        sim._columns(10, T0 + second)
        if second == 59:
            assert got == []
        if second == 61:
            assert [x.start for x in got] == [T0 + 10.0]
    assert len(got) == 1  # the second started at +110 and runs on
    sim.finish_storm(T0 + 120.0)
    assert [x.start for x in got if isinstance(x, Outage)] == [T0 + 10.0, T0 + 110.0]


def test_fewer_villages_than_asked_says_why(make_pack):
    sim = Simulator(make_pack(per_kind=12, movers=0), seed=1, start_ts=T0,
                    storm=StormOptions(outages=9))
    assert sim.storm is not None and len(sim.storm.outages) == 4  # the pack has four villages
    assert "9 asked, 4 villages" in sim.storm.skipped["outages"]


# -- flaky devices and repeaters ------------------------------------------------------------


def test_flaky_devices_fall_silent_for_three_periods_and_more_and_come_back(make_pack):
    pack = fast_pack(make_pack)
    storm = StormOptions(flaky=0.1)
    tape = Tape(Simulator(pack, seed=8, start_ts=T0, storm=storm), seconds=1800, per_step=40)
    flaky = tape.of(Flaky)
    fixed = [d for d in pack.devices if d.kind not in ("gps", "kpi")]
    assert len(flaky) == round(0.1 * len(fixed))
    flaky_ids = {x.device for x in flaky}
    for label in flaky:
        t = tape.times(label.device)
        gaps = np.diff(t)
        long = gaps[gaps > label.period_s]
        # Again and again: every spell a gap of at least 3 periods (an absence rule of 3
        # periods fires), and reports in between (it clears).
        assert len(label.spells) >= 3 and len(long) >= len(label.spells) - 1
        assert (long >= 3.5 * label.period_s - 5.0).all()
        assert t[0] < label.spells[0][0]  # heard before its first spell
        for start, end in label.spells:
            assert 3.5 * label.period_s <= end - start <= 4.5 * label.period_s
            assert not ((t >= start) & (t < end)).any()
            if end < tape.end - 10:
                assert ((t >= end) & (t < end + 10)).any()  # back
    for device in fixed:
        if device.id not in flaky_ids:
            assert np.diff(tape.times(device.id)).max() < 60.0, device.id
    # Their spells do not line up into something like an outage.
    starts = sorted(s for x in flaky for s, _ in x.spells[:1])
    assert starts[-1] - starts[0] > 30.0


@pytest.mark.parametrize(("per_step", "step_s"), [(40, 1.0), (2, 5.0)])
def test_repeaters_repeat_their_alarm_at_any_rate(make_pack, per_step, step_s):
    """At a brisk rate and at one where the round robin reaches a device every few minutes,
    every burst shows in an alarm reading and every quiet spell in a normal one."""
    pack = make_pack(per_kind=12, movers=0)
    options = StormOptions(repeaters=4)
    tape = Tape(Simulator(pack, seed=3, start_ts=T0, storm=options), seconds=900,
                step_s=step_s, per_step=per_step)
    repeaters = tape.of(Repeater)
    assert sorted(x.kind for x in repeaters) == ["manhole_tilt", "manhole_tilt", "smoke", "smoke"]
    for label in repeaters:
        line, clear = {"manhole_tilt": (10.0, 5.0), "smoke": (5.0, 1.0)}[label.kind]
        rows = tape.seen[label.device]
        values = np.array([row[0] for _, row in rows])
        t = np.array([ts for ts, _ in rows])
        assert T0 + 40.0 <= label.start < T0 + 100.0  # a while of normal readings first
        assert label.bursts == (label.end - label.start) // label.every_s + 1 >= 13
        raised = 0
        for b in range(label.bursts):
            start = label.start + b * label.every_s
            burst = values[(t >= start) & (t < start + label.burst_s)]
            quiet = values[(t >= start + label.burst_s) & (t < start + label.every_s)]
            assert burst.size and (burst > line).all(), (label.device, b)
            assert abs(float(burst.mean()) - label.level) < 2.0
            if start + label.every_s < tape.end - step_s:
                assert quiet.size and (quiet < clear).all(), (label.device, b)
        above = values > line
        raised = int((above[1:] & ~above[:-1]).sum()) + int(above[0])
        assert raised == label.bursts  # raised and cleared, again and again


def test_the_storm_never_shares_a_device(make_pack):
    pack = make_pack(per_kind=12, movers=0)
    sim = Simulator(pack, seed=9, start_ts=T0,
                    storm=StormOptions(outages=2, flaky=0.3, repeaters=6))
    storm = sim.storm
    assert storm is not None
    out = {d for o in storm.outages for d in o.devices}
    flaky = {storm.devices[i].id for i in storm.flaky}
    repeaters = {storm.devices[i].id for i in storm.repeaters}
    assert out and flaky and repeaters
    assert not out & flaky and not out & repeaters and not flaky & repeaters
    assert storm.device_ids == out | flaky | repeaters


# -- the same seed, other packs -------------------------------------------------------------


def test_the_same_seed_gives_the_same_labels_and_readings(make_pack):
    pack = with_gateways(make_pack(per_kind=10, movers=2))
    options = StormOptions(outages=1, outage_at=20.0, outage_for=200.0, flaky=0.2,
                           repeaters=3)

    def tape(seed: int) -> Tape:
        return Tape(Simulator(pack, seed=seed, start_ts=T0, storm=options), seconds=400,
                    per_step=30)

    a, b, c = tape(4), tape(4), tape(5)
    assert a.labels == b.labels and dict(a.seen) == dict(b.seen)
    assert a.labels != c.labels


def test_a_pack_without_areas_or_gateways_still_storms(make_pack):
    pack = msgspec.structs.replace(make_pack(per_kind=6, movers=2), areas=[])
    sim = Simulator(pack, seed=1, start_ts=T0,
                    storm=StormOptions(outages=1, flaky=0.2, repeaters=2))
    tape = Tape(sim, seconds=300)
    assert tape.of(Outage) == [] and "0 villages" in sim.storm.skipped["outages"]
    assert len(tape.of(Flaky)) == round(0.2 * 6 * 11) and len(tape.of(Repeater)) == 2
    assert all(x.village is None for x in tape.of(Flaky))


def test_a_pack_of_kinds_that_cannot_repeat_says_so(make_pack):
    pack = make_pack(per_kind=4, movers=0)
    pack = msgspec.structs.replace(
        pack, devices=[d for d in pack.devices if d.kind in ("noise", "bin_fill")])
    sim = Simulator(pack, seed=1, start_ts=T0, storm=StormOptions(repeaters=2))
    assert sim.storm is not None and sim.storm.repeaters == []
    assert "2 asked, 0 free devices" in sim.storm.skipped["repeaters"]
    assert sim.next_readings(50, T0 + 1.0)


def test_bad_options_are_refused_in_one_line(make_pack):
    for options, why in [(StormOptions(flaky=1.5), "share of the devices"),
                         (StormOptions(outages=-1), "counts"),
                         (StormOptions(outages=1, outage_for=0.0), "outage_for"),
                         (StormOptions(repeaters=1, repeat_burst=90.0), "repeat_burst")]:
        assert why in (options.problem() or "")
        with pytest.raises(ValueError, match=why):
            Simulator(make_pack(), seed=1, start_ts=T0, storm=options)


def test_labels_serialise_with_their_type():
    outage = Outage("310115001001", "310115001", ["gw-310115001001-1"], ["noise-000001"], 1,
                    60.0, 270.0)
    assert json.loads(msgspec.json.encode(outage)) == {
        "type": "outage", "village": "310115001001", "town": "310115001",
        "gateways": ["gw-310115001001-1"], "devices": ["noise-000001"], "count": 1,
        "start": 60.0, "end": 270.0}
    lines = [msgspec.json.encode(x) for x in (
        outage, Flaky("noise-000002", "noise", None, 60.0, [(1.0, 241.0)]),
        Repeater("smoke-000001", "smoke", "310115001001", "obscuration", 15.0, 60.0, 20.0,
                 40.0, 400.0, 6))]
    back = [msgspec.json.decode(x, type=StormLabel) for x in lines]
    assert [type(x).__name__ for x in back] == ["Outage", "Flaky", "Repeater"]
    assert back[1].spells == [(1.0, 241.0)]


# -- with an anomaly plan, through a run, from the command line ---------------------------


def test_the_usual_anomalies_are_still_injected_and_detected_during_the_storm():
    """The anomaly test city with a storm on top: no anomaly on a device the storm touches,
    and every labelled anomaly detected by the real rule evaluators (companion labels and
    all), as without the storm."""
    from tests.sim.test_anomalies import Run, check_label, local, make_city

    from cityops.scenarios.loader import load_scenarios

    city = make_city()
    scenarios = load_scenarios(kinds=city.kinds, departments={d.code for d in city.departments})
    run = Run(city, scenarios, start=local(22, 30), minutes=30)
    options = StormOptions(outages=1, outage_at=300.0, outage_for=400.0, flaky=0.1,
                           repeaters=2)
    stormed: list[StormLabel] = []
    run.sim = AnomalousSimulator(city, 7, run.start, plan=run.plan, storm=options,
                                 on_storm=stormed.extend)
    run.go()
    run.sim.finish_storm(run.end)
    storm = run.sim.storm
    assert storm is not None and storm.outages and storm.flaky and storm.repeaters
    assert len(stormed) == 1 + len(storm.flaky) + len(storm.repeaters)
    touched = storm.device_ids
    assert len(run.labels) > 10
    for anomaly in {x.anomaly for x in run.labels}:
        tracks = [x for x in run.labels if x.anomaly == anomaly]
        subjects = {s for x in tracks for s in x.subject.split("+")}
        assert not subjects & touched, tracks
    assert run.missed() == []
    rules = {f"{p.name}.{r.id}": r for p in scenarios for r in p.rules}
    for label in run.labels:
        check_label(run, rules, label)


def test_a_run_counts_what_the_storm_withholds_and_adds(make_pack):
    clock = [T0]

    def wall() -> float:
        return clock[0]

    async def sleep(seconds: float) -> None:
        clock[0] += seconds
        await asyncio.sleep(0)

    sender = CountingSender()
    found: list[StormLabel] = []
    options = StormOptions(outages=1, outage_at=30.0, outage_for=120.0, flaky=0.1,
                           repeaters=2)
    report = asyncio.run(simulate(
        make_pack(per_kind=8, movers=2), sender, rate=20, duration=300, batch_size=10,
        seed=5, clock=wall, sleep=sleep, wall=wall, storm=options, on_storm=found.extend))
    assert report.withheld > 0 and report.added > 0
    assert report.made == report.planned - report.withheld + report.added == sender.readings
    kinds = collections.Counter(type(x).__name__ for x in found)
    assert report.storm_labels == len(found)
    assert kinds["Outage"] == 1 and kinds["Repeater"] == 2 and kinds["Flaky"] > 0


async def test_cli_writes_storm_labels(tmp_path, make_pack, node):
    from cityops.cli.main import app
    from cityops.packs.format import save_pack

    save_pack(make_pack(per_kind=8, movers=2), tmp_path / "city")
    labels = tmp_path / "storm.jsonl"
    # The command runs its own event loop: in a thread, while this one serves the node.
    result = await asyncio.to_thread(CliRunner().invoke, app, [
        "simulate", "--city", str(tmp_path / "city"), "--target", node.url,
        "--rate", "400", "--duration", "2", "--outages", "1", "--outage-at", "0.5",
        "--outage-for", "1", "--flaky", "0.1", "--repeaters", "2",
        "--storm-labels", str(labels)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in labels.read_text().splitlines()]
    types = collections.Counter(r["type"] for r in rows)
    assert types["outage"] == 1 and types["repeater"] == 2 and types["flaky"] > 0
    assert "storm: villages out: 3101150" in result.output


def test_cli_refuses_bad_storm_options(tmp_path, make_pack):
    from cityops.cli.main import app
    from cityops.packs.format import save_pack

    save_pack(make_pack(), tmp_path / "city")
    runner = CliRunner()
    flaky = runner.invoke(app, ["simulate", "--city", str(tmp_path / "city"), "--flaky", "2"])
    assert flaky.exit_code == 2 and "Traceback" not in flaky.output
    lonely = runner.invoke(app, ["simulate", "--city", str(tmp_path / "city"),
                                 "--storm-labels", str(tmp_path / "x.jsonl")])
    assert lonely.exit_code == 2
    assert "--storm-labels needs --outages, --flaky or --repeaters" in lonely.output
