"""A node keeps what it acknowledged across restarts, on the embedded and the PostgreSQL store."""

import time
import uuid

import msgspec
import pytest


async def _post(live, rows):
    key = await live.key("device")
    async with live.client(key) as c:
        r = await c.post("/api/v1/readings", content=msgspec.json.encode(rows))
    assert r.status_code == 202, r.text
    return r.json()


async def _device(live, device_id):
    key = await live.key("admin")
    async with live.client(key) as c:
        return (await c.get(f"/api/v1/devices/{device_id}")).json()


async def restart_keeps_everything(pack, data_dir, live_node, **settings):
    t0 = int(time.time()) - 600
    # A retried batch: several devices, a few readings each (the dedup memory keeps the last
    # RING timestamps of every series; older repeats still read back once).
    rows = [{"device_id": f"noise-00000{d}", "ts": t0 + i, "value": 40.0 + i}
            for d in (4, 5) for i in range(5)]
    async with live_node(pack, data_dir, **settings) as live:
        await _post(live, rows)
        key = await live.key("operator")
        async with live.client(key) as c:
            made = await c.post("/api/v1/devices", json={
                "id": "late-gauge", "kind": "water_depth",
                "lat": pack.devices[0].lat, "lon": pack.devices[0].lon})
            assert made.status_code == 201
    async with live_node(pack, data_dir, **settings) as live:
        device = await _device(live, "noise-000004")
        assert device["latest"]["value"] == 44.0
        assert (await _device(live, "late-gauge"))["areas"] is not None
        again = await _post(live, rows)
        assert again["duplicates"] == 10  # the retry after a restart is still idempotent
        admin = await live.key("admin")
        async with live.client(admin) as c:
            count = (await c.get("/api/v1/history/count")).json()["readings"]
            history = (await c.get("/api/v1/devices/noise-000004/readings")).json()["items"]
        assert count == 10 and [h["value"] for h in history] == [40.0 + i for i in range(5)]
        # Pack devices are registered once: the store holds them with their areas resolved.
        stored = await live.node.store.load_devices()
        assert len(stored) == len(pack.devices) + 1


async def test_restart_on_sqlite(tmp_path, grid_pack, live_node):
    await restart_keeps_everything(grid_pack, tmp_path / "data", live_node)


async def test_restart_on_postgres(tmp_path, grid_pack, live_node, postgres_url):
    import psycopg

    schema = f"cityops_node_{uuid.uuid4().hex[:8]}"
    url = f"{postgres_url}?schema={schema}"
    try:
        await restart_keeps_everything(grid_pack, tmp_path / "data", live_node, store_url=url)
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as con:
            con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


async def test_latest_values_are_snapshotted_to_the_store(tmp_path, grid_pack, live_node):
    async with live_node(grid_pack, tmp_path / "d", snapshot_every_s=0.05) as live:
        await _post(live, [{"device_id": "noise-000001", "ts": time.time() - 1, "value": 77.0}])
        for _ in range(100):
            latest = await live.node.store.load_latest()
            if "noise-000001" in latest.device_id:
                break
            await __import__("asyncio").sleep(0.05)
        i = latest.device_id.index("noise-000001")
        assert latest.channel[i] == "laeq" and latest.value[i] == 77.0


@pytest.mark.parametrize("bad", ["nope://x", "mysql://localhost/db"])
def test_an_unknown_store_url_is_a_clear_error(bad):
    from cityops.store.base import open_store

    with pytest.raises(ValueError, match="is not understood"):
        open_store(bad)


async def test_stored_batches_are_published_on_the_bus(live):
    from cityops.bus.subjects import READINGS

    sub = live.node.bus.subscribe(READINGS)
    now = time.time() - 5
    rows = [{"device_id": "noise-000001", "ts": now, "value": 61.0},
            {"device_id": "noise-000001", "ts": now, "value": 61.0},  # a repeat: not republished
            {"device_id": "ghost", "ts": now, "value": 1.0}]
    await _post(live, rows)
    await _post(live, rows[:1])  # a retry: nothing new, nothing published
    batches = await sub.get_batch(10, timeout=1.0)
    assert len(batches) == 1
    batch = batches[0]
    assert batch.source == "http" and batch.received_ns > 0
    assert batch.device.tolist() == [live.node.registry.index["noise-000001"]]
    assert batch.value.tolist() == [61.0]


def test_a_single_node_runs_on_the_services_one_process_composes(tmp_path, grid_pack):
    from cityops.node import Node
    from cityops.services import Services, SingleWiring, compose_single
    from cityops.settings import Settings

    def clock():
        return 1_700_000_000.0

    node = Node(grid_pack, Settings(data_dir=tmp_path / "d"), clock=clock)
    services = node.services
    assert isinstance(services, Services) and isinstance(services.wiring, SingleWiring)
    assert (node.store, node.bus, node.history, node.registry) == (
        services.store, services.bus, services.history, services.registry)
    # One process has one bus: every component's view of it is the bus itself.
    assert node.bus_for("detect") is node.bus_for("act") is services.bus
    assert node.act is not None and node.act.intake.bus is services.bus
    assert node.act.desk.clock is clock
    with pytest.raises(ValueError, match="need a bus between the nodes"):
        compose_single(grid_pack, Settings(data_dir=tmp_path / "e", roles=["ingest"]), clock)
