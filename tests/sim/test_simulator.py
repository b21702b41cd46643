"""The simulator over a whole (small) city pack: reproducible, valid at intake, fair shares,
movers inside the city."""

from __future__ import annotations

from collections import Counter

import msgspec
import numpy as np

from cityops.domain.city import Device
from cityops.domain.readings import US
from cityops.domain.registry import DeviceRegistry
from cityops.ingest.decode import Reading, decode_array
from cityops.ingest.validate import to_batch
from cityops.sim import Simulator
from cityops.sim.places import city_bbox

T0 = 1_716_739_200.0  # midnight in Shanghai


def run(sim: Simulator, batches: int, n: int, step_s: float, start: float = T0) -> list[bytes]:
    return [sim.next_batch(n, start + (i + 1) * step_s) for i in range(batches)]


def test_the_same_seed_gives_the_same_readings(make_pack):
    pack = make_pack()
    a = run(Simulator(pack, seed=42, start_ts=T0), 20, 500, 30.0)
    b = run(Simulator(pack, seed=42, start_ts=T0), 20, 500, 30.0)
    c = run(Simulator(pack, seed=43, start_ts=T0), 20, 500, 30.0)
    assert a == b
    assert a != c


def test_100k_readings_pass_intake_validation_and_stay_in_range(make_pack):
    pack = make_pack(per_kind=20, movers=10)
    registry = DeviceRegistry(pack.kinds)
    registry.add(pack.devices)
    sim = Simulator(pack, seed=7, start_ts=T0)
    seen: dict[tuple[str, str], list[float]] = {}
    total = 0
    # 100 batches of 1,000 spread over three simulated days: night, day, storms and all.
    for i in range(100):
        now = T0 + (i + 1) * 2600.0
        body = sim.next_batch(1000, now)
        good, bad = decode_array(body)
        assert bad == []
        batch, rejected, _ = to_batch(good, registry, int(now * US))
        assert rejected == [], rejected[:3]
        total += len(good)
        for _, r in good:
            kind = registry.get(r.device_id).kind
            if r.values is None:
                items = [(pack.kinds[kind].primary.name, r.value)]
            else:
                items = r.values.items()
            for channel, value in items:
                seen.setdefault((kind, channel), []).append(value)
    assert total == 100_000
    for (kind, channel), values in seen.items():
        spec = pack.kinds[kind].channels[pack.kinds[kind].channel_index(channel)]
        assert spec.min <= min(values) and max(values) <= spec.max, (kind, channel)
    assert {k for k, _ in seen} == {d.kind for d in pack.devices}


def test_each_device_reports_at_its_kinds_share(make_pack):
    pack = make_pack(per_kind=4, movers=4)
    sim = Simulator(pack, seed=1, start_ts=T0)
    cycle = len(sim._schedule.cycle)
    counts = Counter(r.device_id for r in sim.next_readings(cycle * 3, T0 + 10.0))
    assert set(counts) == {d.id for d in pack.devices}
    period = {d.id: pack.kinds[d.kind].period_s for d in pack.devices}
    # Readings per device times its period is the same for every device: a fair share.
    share = {device: n * period[device] for device, n in counts.items()}
    assert max(share.values()) / min(share.values()) < 1.05
    assert counts["gps-000000"] == 60 * counts["bin_fill-000000"]


def test_timestamps_are_recent_distinct_and_increasing(make_pack):
    sim = Simulator(make_pack(), seed=1, start_ts=T0)
    last = T0
    for i in range(20):
        now = T0 + 5.0 + i * 0.05
        rows = msgspec.json.decode(sim.next_batch(300, now))
        ts = sorted(r["ts"] for r in rows)
        assert len(set(ts)) == len(ts)
        assert ts[0] > last - 1e-6 and ts[-1] <= now + 1e-6
        assert ts[0] >= now - 1.0
        keys = {(r["device_id"], r["ts"]) for r in rows}
        assert len(keys) == len(rows)
        last = ts[-1]


def test_a_stalled_clock_still_gives_fresh_timestamps(make_pack):
    sim = Simulator(make_pack(), seed=1, start_ts=T0)
    a = msgspec.json.decode(sim.next_batch(50, T0))
    b = msgspec.json.decode(sim.next_batch(50, T0))
    assert max(r["ts"] for r in a) < min(r["ts"] for r in b)


def test_the_three_output_forms_agree(make_pack):
    pack = make_pack()
    as_structs = Simulator(pack, seed=9, start_ts=T0).next_readings(400, T0 + 1)
    as_array = msgspec.json.decode(
        Simulator(pack, seed=9, start_ts=T0).next_batch(400, T0 + 1), type=list[Reading]
    )
    messages = Simulator(pack, seed=9, start_ts=T0).next_messages(400, T0 + 1)
    as_messages = [msgspec.json.decode(body, type=Reading) for _, body in messages]
    assert as_structs == as_array == as_messages
    assert [device for device, _ in messages] == [r.device_id for r in as_structs]


def test_movers_stay_inside_the_city_and_keep_their_hours(make_pack):
    pack = make_pack(per_kind=1, movers=40)
    box = city_bbox(pack)
    trucks = {v.device_id for v in pack.vehicles}
    sim = Simulator(pack, seed=3, start_ts=T0)
    moving: dict[str, list[tuple[float, float]]] = {"truck": [], "staff": []}
    for i in range(2 * 24 * 60):  # two days, a batch a minute
        now = T0 + (i + 1) * 60.0
        for r in sim.next_readings(60, now):
            if r.values is None or "lat" not in r.values:
                continue
            v = r.values
            assert box.south <= v["lat"] <= box.north and box.west <= v["lon"] <= box.east
            assert 0.0 <= v["speed"] <= 60.0 and 0.0 <= v["heading"] < 360.0
            hour = ((now + 8 * 3600) % 86400) / 3600
            role = "truck" if r.device_id in trucks else "staff"
            moving[role].append((hour, v["speed"]))
    truck = np.array(moving["truck"])
    night = (truck[:, 0] >= 20) | (truck[:, 0] < 6)
    assert (truck[night, 1] > 0).mean() > 3 * max((truck[~night, 1] > 0).mean(), 0.01)
    staff = np.array(moving["staff"])
    day = (staff[:, 0] >= 8) & (staff[:, 0] < 18)
    assert (staff[day, 1] > 0).mean() > (staff[~day, 1] > 0).mean()
    assert (staff[day, 1] > 0).mean() > 0.2


def test_a_mover_travels_at_a_plausible_speed(make_pack):
    pack = make_pack(per_kind=1, movers=2)
    sim = Simulator(pack, seed=5, start_ts=T0 + 10 * 3600)  # 10:00, staff on duty
    track = []
    for i in range(600):
        now = T0 + 10 * 3600 + (i + 1) * 10.0
        for r in sim.next_readings(20, now):
            if r.device_id == "gps-000000":
                track.append((r.ts, r.values["lat"], r.values["lon"]))
    track = np.array(track)
    dt = np.diff(track[:, 0])
    metres = np.hypot(np.diff(track[:, 1]) * 111_000, np.diff(track[:, 2]) * 95_000)
    kmh = metres / dt * 3.6
    assert kmh.max() < 25.0  # a walking or cycling inspector
    assert (kmh > 1.0).any()  # who does move


def test_devices_of_undefined_kinds_are_skipped(make_pack):
    pack = make_pack()
    pack.devices.append(Device("mystery-1", "mystery", 31.05, 121.05))
    sim = Simulator(pack, seed=1, start_ts=T0)
    assert sim.skipped == ["mystery-1"]
    assert all(r.device_id != "mystery-1" for r in sim.next_readings(2000, T0 + 1))


def test_an_empty_pack_gives_nothing(make_pack):
    pack = make_pack(per_kind=0, movers=0)
    sim = Simulator(pack, seed=1, start_ts=T0)
    assert sim.next_batch(100, T0 + 1) == b"[]"


def test_a_calm_city_makes_no_incidents_of_its_own(make_pack):
    from cityops.domain.kinds import CAMERA_EVENTS

    fire_lane = next(c for c, name in CAMERA_EVENTS.items() if name == "vehicle_in_fire_lane")
    pack = make_pack(per_kind=40, movers=4)
    seen = {False: Counter(), True: Counter()}
    for calm in (False, True):
        sim = Simulator(pack, seed=3, start_ts=T0, calm=calm)
        for hour in range(0, 24 * 14, 3):  # two weeks, every three hours, day and night
            for r in sim.next_readings(2000, T0 + hour * 3600.0):
                kind = r.device_id.rsplit("-", 1)[0]
                if kind == "smoke" and r.value > 1.0:
                    seen[calm]["smoke spike"] += 1
                if kind == "manhole_tilt" and r.value > 10.0:
                    seen[calm]["displaced cover"] += 1
                if kind == "camera" and r.values["event"] == fire_lane:
                    seen[calm]["fire lane"] += 1
                if kind == "bin_fill" and r.value > 90.0:
                    seen[calm]["bin full"] += 1
                local_hour = (T0 + hour * 3600.0 + 8 * 3600.0) % 86400 / 3600.0  # Shanghai
                if kind == "noise" and r.value > 55.0 and (local_hour >= 22 or local_hour < 6):
                    seen[calm]["loud night"] += 1
    assert sum(seen[True].values()) == 0, seen[True]
    assert sum(seen[False].values()) > 0  # the lively city does have them


def test_kpi_series_keep_one_value_per_hour_and_a_plausible_scale():
    from cityops.packs.pudong import generate

    pack = generate(1)
    sim = Simulator(pack, seed=2, start_ts=T0)
    group = next(g for g in sim.groups if g.kind.name == "kpi")
    model = group.model
    members = np.arange(len(group.ids))
    hour = 3600.0 * np.floor(T0 / 3600.0)
    first = model.values(members, np.full(len(members), hour + 60.0),
                         np.full(len(members), hour + 60.0 + 8 * 3600))
    again = model.values(members, np.full(len(members), hour + 3000.0),
                         np.full(len(members), hour + 3000.0 + 8 * 3600))
    assert (first == again).all()  # a running hour reports one count
    by_kind = {}
    for device_id, value in zip(group.ids, first[:, 0]):
        kpi = device_id.split("-")[1]
        level = "town" if len(device_id.rsplit("-", 1)[1]) == 9 else "other"
        by_kind.setdefault((kpi, level), []).append(value)
    assert all(0 <= v <= 100 for v in by_kind[("sorting_accuracy", "other")])
    district_calls = by_kind[("calls_110", "other")][0]
    town_calls = np.mean(by_kind[("calls_110", "town")])
    assert district_calls > 5 * town_calls > 0
