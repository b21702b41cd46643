"""How readings are partitioned between detect workers so that rules across devices see every
device of their groups (no servers needed)."""

from __future__ import annotations

import msgspec
import numpy as np
import pytest

from cityops.bus.nats import partition_of, share
from cityops.bus.nats import split_by_key
from cityops.cluster import Router, SpanPlan, owned_devices, owns_alert
from cityops.domain.alerts import Alert
from cityops.domain.readings import ReadingBatch
from cityops.domain.registry import DeviceRegistry
from cityops.domain.scenarios.spec import ScenarioPack
from cityops.packs.grid import generate
from cityops.settings import Settings

PACK = """
name: t
version: 1
title: T
category: {code: event.t.t, kind: event, major: t, minor: t, name: T}
departments: [environment]
rules:
  - {id: loud, type: threshold, kind: noise, above: 80}
  - {id: alarms, type: window, kind: smoke, per: cell, above: 2}
  - {id: wet, type: threshold, kind: rainfall, above: 30}
  - {id: deep, type: threshold, kind: water_depth, above: 15}
  - {id: both, type: composite, all_of: [wet, deep]}
  - {id: stuck, type: window, kind: air_quality, per: device, agg: range, below: 0.01}
"""


def scenario(text: str = PACK) -> ScenarioPack:
    import yaml

    return msgspec.convert(yaml.safe_load(text), ScenarioPack)


def registry(devices: dict[str, int]) -> DeviceRegistry:
    pack = generate(devices=devices)
    reg = DeviceRegistry(pack.kinds)
    reg.add(pack.devices)
    return reg


def settings(worker: int, workers: int, tmp_path) -> Settings:
    return Settings(data_dir=tmp_path, worker=worker, workers=workers)


def test_kinds_read_by_rules_across_devices_are_pinned_and_members_join_their_composite():
    plan = SpanPlan.of([scenario()], 8)
    assert set(plan.kinds) == {"smoke", "rainfall", "water_depth"}
    # A composite and its members are one unit: one partition for rain and water alike.
    assert plan.kinds["rainfall"] == plan.kinds["water_depth"] == plan.rules["t.both"]
    assert plan.rules["t.alarms"] == plan.kinds["smoke"]
    assert "t.loud" not in plan.rules and plan.everything is None


def test_a_window_across_devices_of_any_kind_pins_every_device_to_one_partition():
    text = PACK + "  - {id: storm, type: window, source: rejections, per: town, above: 9}\n"
    plan = SpanPlan.of([scenario(text)], 8)
    reg = registry({"noise": 30, "smoke": 5})
    parts = Router(reg, plan, 8).of(np.arange(len(reg)))
    assert set(parts.tolist()) == {plan.everything}


def test_pinned_devices_share_a_partition_and_the_others_keep_their_hash():
    reg = registry({"noise": 50, "smoke": 20, "rainfall": 10, "water_depth": 10})
    plan = SpanPlan.of([scenario()], 8)
    router = Router(reg, plan, 8)
    devices = np.arange(len(reg))
    parts = router.of(devices)
    kinds = np.array([reg.kinds[k].name for k in reg.kind_of])
    for kind in ("smoke", "rainfall", "water_depth"):
        assert set(parts[kinds == kind].tolist()) == {plan.kinds[kind]}
    noise = devices[kinds == "noise"]
    assert np.array_equal(parts[noise], partition_of(noise, 8))
    # Noise meters still spread over every partition: the per-device work scales out.
    assert len(set(parts[noise].tolist())) == 8
    # A device the registry does not hold yet goes by its hash.
    assert router.of(np.array([len(reg) + 5]))[0] == partition_of(len(reg) + 5, 8)


def test_every_device_is_owned_by_exactly_one_worker_at_any_worker_count(tmp_path):
    reg = registry({"noise": 50, "smoke": 20, "rainfall": 10, "water_depth": 10})
    router = Router(reg, SpanPlan.of([scenario()], 8), 8)
    for workers in (1, 2, 4):
        owned = [owned_devices(len(reg), settings(w, workers, tmp_path), router)
                 for w in range(workers)]
        assert np.array_equal(np.sum(owned, axis=0), np.ones(len(reg), int))


def test_an_open_alert_of_a_rule_across_devices_is_restored_by_the_worker_of_its_unit(
        tmp_path):
    reg = registry({"noise": 10, "smoke": 10, "rainfall": 4, "water_depth": 4})
    plan = SpanPlan.of([scenario()], 8)
    router = Router(reg, plan, 8)
    cell = Alert(id="a1", scenario="t", rule="t.alarms", category="event.t.t",
                 severity="minor", urgency="normal", departments=["environment"],
                 subject="cell:8a2a1072b59ffff", title="", lat=0.0, lon=0.0, first_seen=1.0,
                 last_seen=1.0)
    noise = msgspec.structs.replace(cell, id="a2", rule="t.loud", subject=reg.devices[3].id)
    for alert, partition in ((cell, plan.rules["t.alarms"]),
                             (noise, int(partition_of(3, 8)))):
        owners = []
        for w in range(4):
            s = settings(w, 4, tmp_path)
            if owns_alert(alert, reg, owned_devices(len(reg), s, router), router, s):
                owners.append(w)
        assert owners == [w for w in range(4) if partition in share(w, 4, 8)]


def test_split_by_key_keeps_the_order_of_rows_within_each_partition():
    n = 50
    batch = ReadingBatch(np.arange(n, dtype=np.int32) % 7, np.zeros(n, np.int8),
                         np.arange(n, dtype=np.int64), np.arange(n, dtype=np.float64))
    key = (np.arange(n) * 5 % 3).astype(np.int64)
    pieces = split_by_key(batch, key, 8)
    assert sorted(p for p, _ in pieces) == [0, 1, 2]
    for p, piece in pieces:
        assert np.array_equal(piece.ts, np.flatnonzero(key == p))


def test_a_history_worker_names_the_worker_holding_a_pinned_device(tmp_path):
    from cityops.api.errors import ApiError
    from cityops.cluster import ShardReader

    reg = registry({"noise": 10, "smoke": 10})
    plan = SpanPlan.of([scenario()], 8)
    smoke = next(i for i, k in enumerate(reg.kind_of) if reg.kinds[k].name == "smoke"
                 and partition_of(i, 8) % 2 != plan.kinds["smoke"] % 2)

    class Reader:
        def device_readings(self, index, *args, **kwargs):
            return ["readings of", index]

    holder = plan.kinds["smoke"] % 2
    for worker in (0, 1):
        shard = ShardReader(Reader(), settings(worker, 2, tmp_path))
        shard.route_with(Router(reg, plan, 8))
        if worker == holder:
            assert shard.device_readings(smoke) == ["readings of", smoke]
        else:
            with pytest.raises(ApiError, match=f"--worker {holder}"):
                shard.device_readings(smoke)
