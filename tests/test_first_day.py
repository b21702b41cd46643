"""A city's first day: a node started with every kind of device and no readings yet raises no
offline alert and opens no case, however long it waits (issue 14: ~18,000 offline alerts and
~6,400 dispatched cases in ten minutes). A device that has reported once and then falls
silent is offline as before; a device in maintenance is not; a restarted node keeps what it
learnt (the store holds every device's lifecycle)."""

from __future__ import annotations

import asyncio
import time
import uuid

import msgspec

from cityops import lifecycle
from cityops.domain.kinds import BUILTIN_KINDS
from cityops.packs.grid import generate as grid_city
from cityops.store.base import IncidentFilter
from tests.clock_kit import Clock

T0 = 1_780_000_000.0  # a fixed start; the node's clock, not the wall's


def _every_kind():
    pack = grid_city(devices={kind: 4 for kind in BUILTIN_KINDS})
    # Hourly vital-sign series are watched only when they name a KPI (device_health).
    devices = [msgspec.structs.replace(d, meta={"kpi": "calls_110"}) if d.kind == "kpi" else d
               for d in pack.devices]
    return msgspec.structs.replace(pack, devices=devices)


def _longest_silence() -> float:
    """Three reporting periods of the slowest kind, and the gps rule's 30 of its own."""
    return max(max(3 * k.period_s for k in BUILTIN_KINDS.values()), 30 * 10.0)


async def _run(live, clock, until, step=300.0):
    while clock.now < until:
        clock.now = min(until, clock.now + step)
        await live.node.detect.tick()
    assert await live.node.act.intake.caught_up()  # the act side files in the background


async def _offline(live):
    return sorted((a.rule.split(".")[-1], a.subject)
                  for a in await live.node.store.list_alerts(active=True, limit=10_000)
                  if ".offline_" in a.rule)


async def _cases(live):
    return await live.node.store.count_incidents(IncidentFilter())


async def _read(live, device_id, ts, value=50.0):
    key = await live.key("device")
    async with live.client(key) as c:
        r = await c.post("/api/v1/readings", content=msgspec.json.encode(
            [{"device_id": device_id, "ts": ts, "value": value}]))
    assert r.status_code == 202, r.text
    await live.node.detect.caught_up()  # evaluated now, not at a later tick's clock


def _settings(**more):
    # Ticks are driven by the test; the background ticker would only repeat them.
    return {"detect_tick_s": 3600.0, "notify_url": "memory:", **more}


async def test_no_readings_for_three_periods_of_every_kind_opens_no_case(
        tmp_path, live_node):
    pack = _every_kind()
    clock = Clock(T0)
    async with live_node(pack, tmp_path / "d", clock=clock, **_settings()) as live:
        assert {d.lifecycle.value for d in live.node.registry.devices} == {"commissioning"}
        await _run(live, clock, T0 + _longest_silence() + 600)
        assert await _offline(live) == []
        assert live.node.detect.stats["raised"] == 0
        assert await _cases(live) == 0

        # One reading, then silence past three of its periods: offline, as before.
        await _read(live, "noise-000000", clock.now - 1)
        assert live.node.registry.get("noise-000000").lifecycle.value == "active"
        start = clock.now
        await _run(live, clock, start + 179, step=60)
        assert await _offline(live) == []
        await _run(live, clock, start + 240, step=60)
        assert await _offline(live) == [("offline_noise", "noise-000000")]

        # Into maintenance: its offline alert clears, saying why, and nothing else comes.
        admin = await live.key("admin")
        async with live.client(admin) as c:
            r = await c.post("/api/v1/devices/lifecycle", json={
                "to": "maintenance", "devices": ["noise-000000"], "reason": "battery"})
        assert r.status_code == 200, r.text
        await _run(live, clock, clock.now + 3600)
        assert await _offline(live) == []
        cleared = [a for a in await live.node.store.list_alerts(limit=100)
                   if a.subject == "noise-000000"]
        assert cleared and cleared[0].detail == "in maintenance"


async def restart_keeps_lifecycles(pack, data_dir, live_node, **settings):
    clock = Clock(T0)
    async with live_node(pack, data_dir, clock=clock, **_settings(**settings)) as live:
        await _read(live, "noise-000001", T0 - 5)
        admin = await live.key("admin")
        async with live.client(admin) as c:
            r = await c.post("/api/v1/devices/lifecycle", json={
                "to": "decommissioned", "devices": ["noise-000002"], "reason": "removed"})
        assert r.status_code == 200
        stamped = live.node.registry.get("noise-000003").lifecycle_at
    clock.now = T0 + 86400
    async with live_node(pack, data_dir, clock=clock, **_settings(**settings)) as live:
        states = {d.id: (d.lifecycle.value, d.lifecycle_at) for d in live.node.registry.devices}
        assert states["noise-000001"] == ("active", T0)
        assert states["noise-000002"] == ("decommissioned", T0)
        # A pack device's commissioning window still counts from its first registration.
        assert states["noise-000003"] == ("commissioning", stamped) and stamped == T0
        # A device heard before the restart counts as heard: silent for a day, it is offline.
        await _run(live, clock, clock.now + 600, step=60)
        assert ("offline_noise", "noise-000001") in await _offline(live)
        assert ("offline_noise", "noise-000003") not in await _offline(live)


async def test_a_restarted_node_keeps_lifecycles_on_sqlite(tmp_path, live_node):
    await restart_keeps_lifecycles(_every_kind(), tmp_path / "d", live_node)


async def test_a_restarted_node_keeps_lifecycles_on_postgres(tmp_path, live_node, postgres_url):
    import psycopg

    schema = f"cityops_life_{uuid.uuid4().hex[:8]}"
    try:
        await restart_keeps_lifecycles(_every_kind(), tmp_path / "d", live_node,
                                       store_url=f"{postgres_url}?schema={schema}")
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as con:
            con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


async def test_devices_heard_before_lifecycles_existed_are_active_at_start(
        tmp_path, grid_pack, live_node):
    """A store from before this change holds no lifecycle: the latest values say who was
    heard, and those devices start active, not commissioning."""
    clock = Clock(T0)
    async with live_node(grid_pack, tmp_path / "d", clock=clock, **_settings()) as live:
        await _read(live, "noise-000004", T0 - 30)
        store = live.node.store
    # Forget the lifecycles, as an old store would have none.
    async with live_node(grid_pack, tmp_path / "d", clock=clock, **_settings()) as live:
        store = live.node.store
        plain = [msgspec.structs.replace(d, lifecycle=type(d.lifecycle).COMMISSIONING,
                                         lifecycle_at=0.0) for d in await store.load_devices()]
        await store.upsert_devices(plain)
    async with live_node(grid_pack, tmp_path / "d", clock=clock, **_settings()) as live:
        device = live.node.registry.get("noise-000004")
        assert device.lifecycle.value == "active" and device.lifecycle_at == T0 - 30
        assert live.node.registry.get("noise-000005").lifecycle.value == "commissioning"


async def test_readings_of_a_device_in_maintenance_are_stored_but_read_by_no_rule(
        tmp_path, grid_pack, live_node):
    from tests.pack_kit import LOUD

    (tmp_path / "packs" / "loud").mkdir(parents=True)
    (tmp_path / "packs" / "loud" / "manifest.yaml").write_text(LOUD)
    clock = Clock(T0)
    device = "noise-000000"

    async def loud_alerts(live):
        return [a.rule for a in await live.node.store.list_alerts(limit=100)
                if a.subject == device and a.rule == "loud.over_80"]

    async with live_node(grid_pack, tmp_path / "d", clock=clock,
                         scenario_dirs=[tmp_path / "packs"], **_settings()) as live:
        admin = await live.key("admin")
        async with live.client(admin) as c:
            r = await c.post("/api/v1/devices/lifecycle", json={
                "to": "maintenance", "devices": [device], "reason": "testing the siren"})
            assert r.status_code == 200
        await _read(live, device, T0 - 1, 95.0)
        assert await loud_alerts(live) == []
        async with live.client(admin) as c:
            got = (await c.get(f"/api/v1/devices/{device}")).json()
        assert got["latest"]["value"] == 95.0 and got["lifecycle"] == "maintenance"
        # Back in service: its readings are read again.
        async with live.client(admin) as c:
            r = await c.post("/api/v1/devices/lifecycle", json={
                "to": "active", "devices": [device], "reason": "done"})
            assert r.status_code == 200
        await _read(live, device, T0, 96.0)
        assert await loud_alerts(live) == ["loud.over_80"]


async def test_a_running_node_follows_a_change_made_with_the_cli(tmp_path, grid_pack, live_node):
    from typer.testing import CliRunner

    from cityops.cli.main import app

    data = tmp_path / "d"
    async with live_node(grid_pack, data, snapshot_every_s=0.05, **_settings()) as live:
        await _read(live, "noise-000006", time.time() - 1)
        r = await asyncio.to_thread(CliRunner().invoke, app, [
            "devices", "lifecycle", "--to", "maintenance", "--device", "noise-000006",
            "--device", "noise-000007", "--reason", "pump station works", "--data", str(data)])
        assert r.exit_code == 0, r.output
        # What the node's keep-saved loop does every few seconds: follow the store.
        await lifecycle.follow_store(live.node)
        assert [live.node.registry.get(i).lifecycle.value
                for i in ("noise-000006", "noise-000007")] == ["maintenance", "maintenance"]
        registry = live.node.registry
        assert not registry.evaluated(len(registry))[registry.index["noise-000006"]]
