"""Readings refused for their value reach the device-health rule: intake publishes every
out-of-range row on the `rejections` subject, detection takes them whether or not readings come
with them, and a storm of them is an alert the pipeline benchmark counts as detected."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import msgspec
import numpy as np

from cityops.domain.readings import ReadingBatch
from cityops.bus.subjects import REJECTIONS
from cityops.packs.grid import generate

START = dt.datetime(2025, 7, 15, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")).timestamp()


def sensors():
    return generate(devices={"noise": 6, "water_depth": 3, "bin_fill": 3})


async def test_every_injected_out_of_range_storm_is_detected(replay):
    async with replay(sensors(), START, rules={"device_health.out_of_range"},
                      per_min=0.5, minutes=24) as r:
        await r.run(24)
        verdict = r.score()
        assert verdict["injected"] >= 2
        assert verdict["detected"] == verdict["injected"], verdict
        assert verdict["false_alerts"] == 0
        assert r.rejected > 0
        stats = r.live.node.detect.summary()
        assert stats["rejected_rows"] >= r.rejected
        assert stats["rejections_dropped"] == 0


async def test_refused_rows_are_evaluated_on_a_tick_without_readings(live_node, tmp_path):
    """A device sending nothing but impossible values: every body is refused whole, so no
    readings batch ever wakes detection; the tick must take the rejections."""
    city = sensors()
    clock = [START]
    async with live_node(city, tmp_path / "d", clock=lambda: clock[0],
                         detect_tick_s=3600.0) as live:
        key = await live.key("device")
        async with live.client(key) as client:
            for i in range(8):
                clock[0] = START + 60.0 * i
                body = [{"device_id": "noise-000001", "ts": clock[0], "value": 400.0}]
                answer = await client.post("/api/v1/readings", content=msgspec.json.encode(body))
                assert answer.status_code == 202 and answer.json()["rejected"]
                await live.node.detect.tick()
        alerts = await live.node.store.list_alerts(active=True, limit=100)
    # (the other devices, silent all along, are offline: not what this test is about)
    assert [a.subject for a in alerts if a.rule == "device_health.out_of_range"] == [
        "noise-000001"]


async def test_every_out_of_range_row_of_a_batch_is_published(live_node, tmp_path):
    city = sensors()
    async with live_node(city, tmp_path / "d", detect=False) as live:
        seen = live.node.bus.subscribe(REJECTIONS)
        now = live.node.clock()
        body = [{"device_id": "noise-000001", "ts": now, "value": 400.0},
                {"device_id": "noise-000002", "ts": now, "value": 45.0},
                {"device_id": "noise-000003", "ts": now, "value": -50.0},
                {"device_id": "water_depth-000000", "ts": now, "value": -9.0}]
        key = await live.key("device")
        async with live.client(key) as client:
            answer = await client.post("/api/v1/readings", content=msgspec.json.encode(body))
        assert len(answer.json()["rejected"]) == 3
        rows = ReadingBatch.concat(await seen.get_batch(64))
    names = [live.node.registry.devices[d].id for d in rows.device.tolist()]
    assert sorted(names) == ["noise-000001", "noise-000003", "water_depth-000000"]
    assert np.isin(rows.value, [400.0, -50.0, -9.0]).all()


async def test_a_full_rejections_queue_drops_with_a_count(live_node, tmp_path):
    """The queue stays bounded: when detection cannot keep up, refused rows are dropped, and
    how many is reported rather than lost silently."""
    city = sensors()
    async with live_node(city, tmp_path / "d", detect=False, bus_queue=2) as live:
        live.node.bus.subscribe(REJECTIONS, maxsize=2)  # nobody reads it
        key = await live.key("device")
        async with live.client(key) as client:
            for i in range(5):
                now = live.node.clock()
                body = [{"device_id": "noise-000001", "ts": now - i, "value": 400.0},
                        {"device_id": "noise-000002", "ts": now - i, "value": 401.0}]
                answer = await client.post("/api/v1/readings", content=msgspec.json.encode(body))
                assert answer.status_code == 202
        assert live.node.ingestor.rejections_dropped == 6  # 3 batches of 2 rows had no room
