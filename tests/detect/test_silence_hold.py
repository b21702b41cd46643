"""Silences on a live node: an alert a silence matches is recorded with the silence that held
it and opens no case; when the silence ends (expired early, or its end reached) what still
fires is evaluated as new and opens its case; what the silence does not match is untouched."""

from __future__ import annotations

import time

from cityops.packs.grid import generate
from tests.clock_kit import Clock
from tests.detect.node_kit import STEP_S, listing, post_all, settled


async def test_a_silence_holds_alerts_and_its_end_lets_what_still_fires_through(live_node,
                                                                               tmp_path):
    clock = Clock(time.time())
    async with live_node(generate(devices={"noise": 40}), tmp_path / "d", clock=clock,
                         detect_tick_s=3600.0) as live:
        devices = live.node.registry.devices
        village = devices[0].areas.village
        quiet, other = devices[0].id, next(d.id for d in devices if d.areas.village != village)
        device_key, admin = await live.key("device"), await live.key("admin")
        async with live.client(device_key) as sensors, live.client(admin) as ops:
            made = await ops.post("/api/v1/silences", json={
                "matchers": {"pack": ["device_health"], "area": [village]},
                "comment": "gateway maintenance in this village", "duration": "2h"})
            assert made.status_code == 201, made.text
            silence = made.json()["id"]
            await post_all(live, sensors, clock)
            for _ in range(int(300 / STEP_S)):  # two devices silent for five minutes
                clock.now += STEP_S
                await post_all(live, sensors, clock, but={quiet, other})
            await settled(live)

            alerts = {a["subject"]: a for a in await listing(ops, "/api/v1/alerts")
                      if a["rule"] == "device_health.offline_noise"}
            assert alerts[quiet]["silenced_by"] == silence and alerts[quiet]["active"]
            assert alerts[other]["silenced_by"] is None  # another village: not matched
            cases = await listing(ops, "/api/v1/incidents")
            assert [c["alert_id"] for c in cases] == [alerts[other]["id"]]
            assert live.node.act.intake.stats["silenced"] == 1

            ended = await ops.request("DELETE", f"/api/v1/silences/{silence}",
                                      json={"reason": "maintenance done early"})
            assert ended.status_code == 200, ended.text
            clock.now += STEP_S
            await post_all(live, sensors, clock, but={quiet, other})
            await settled(live)
            alerts = {a["subject"]: a for a in await listing(ops, "/api/v1/alerts")
                      if a["rule"] == "device_health.offline_noise"}
            assert alerts[quiet]["silenced_by"] is None and alerts[quiet]["active"]
            cases = await listing(ops, "/api/v1/incidents")
            assert sorted(c["alert_id"] for c in cases) == sorted(
                [alerts[other]["id"], alerts[quiet]["id"]])


async def test_a_silence_reaching_its_end_lets_go_on_the_nodes_clock(live_node, tmp_path):
    clock = Clock(time.time())
    async with live_node(generate(devices={"noise": 12}), tmp_path / "d", clock=clock,
                         detect_tick_s=3600.0) as live:
        quiet = live.node.registry.devices[0].id
        device_key, admin = await live.key("device"), await live.key("admin")
        async with live.client(device_key) as sensors, live.client(admin) as ops:
            made = await ops.post("/api/v1/silences", json={
                "matchers": {"device": [quiet]}, "comment": "being replaced",
                "duration": "10m"})
            assert made.status_code == 201, made.text
            await post_all(live, sensors, clock)
            for _ in range(int(300 / STEP_S)):
                clock.now += STEP_S
                await post_all(live, sensors, clock, but={quiet})
            await settled(live)
            assert await listing(ops, "/api/v1/incidents") == []
            for _ in range(int(360 / STEP_S)):  # past the silence's end, still silent
                clock.now += STEP_S
                await post_all(live, sensors, clock, but={quiet})
            await settled(live)
            cases = await listing(ops, "/api/v1/incidents")
            assert [c["category"] for c in cases] == ["component.iot_device.fault"]


async def test_a_silence_written_to_the_store_elsewhere_reaches_a_running_single_node(
        live_node, tmp_path):
    """As `cityops silences add` does: straight into the store, the node not told. The engine
    reads the silences' version every few seconds of its clock, on its ticks."""
    from cityops.detect import silences as records
    from cityops.domain.silences import Matchers, Silence

    clock = Clock(time.time())
    async with live_node(generate(devices={"noise": 4}), tmp_path / "d", clock=clock,
                         detect_tick_s=3600.0) as live:
        node = live.node
        quiet = node.registry.devices[0]
        book = node.services.silences
        await node.detect.tick()  # the book read just now
        made = await records.create(node.store, Silence(
            id=records.new_id(), matchers=Matchers(device=[quiet.id]), starts_at=clock.now,
            ends_at=clock.now + 3600, comment="written by the CLI", created_by="cli:test",
            created_at=clock.now), now=clock.now)
        clock.now += 0.5
        await node.detect.tick()
        assert not book.in_force(made.id, clock.now)  # read at most every 2 s
        clock.now += 2.0
        await node.detect.tick()
        assert book.in_force(made.id, clock.now)
