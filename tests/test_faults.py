"""Fault tests: PostgreSQL and the MQTT broker are restarted while a node works. The node
answers 503 with Retry-After (never 500) while a server is down, says so on /readyz, reconnects
by itself, and loses nothing it acknowledged.

The servers restarted are the test's own, started from the installed binaries on a free port
(tests/pg_kit.py, tests/mqtt_kit.py): the machine's shared PostgreSQL and Mosquitto, which other
test runs use at the same time, are never stopped."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import aiomqtt
import msgspec
import pytest

from cityops.ingest.mqtt import parse_mqtt_url
from cityops.store.base import IncidentFilter
from tests.mqtt_kit import PlainBroker, own_plain_broker
from tests.pg_kit import PrivatePostgres, own_postgres

pytestmark = [pytest.mark.services, pytest.mark.timeout(300)]


@pytest.fixture
def pg() -> Iterator[PrivatePostgres]:
    """The test's own PostgreSQL, on a free port: this test stops and starts it."""
    with own_postgres() as server:
        yield server


@pytest.fixture
def broker(tmp_path_factory) -> Iterator[PlainBroker]:
    """The test's own anonymous Mosquitto, on a free port: this test stops and starts it."""
    with own_plain_broker(tmp_path_factory.mktemp("mosquitto")) as server:
        yield server


async def wait_port(host: str, port: int, up: bool, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection(host, port)
            writer.close()
            if up:
                return
        except OSError:
            if not up:
                return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{host}:{port} did not go {'up' if up else 'down'}")


async def test_postgresql_restarted_mid_run(tmp_path, grid_pack, live_node,
                                            pg: PrivatePostgres):
    async with live_node(grid_pack, tmp_path / "data", store_url=pg.schema_url("cityops_fault"),
                         notify_url="memory:") as live:
        op = live.client(await live.key("operator"))
        acked: list[str] = []
        answers: dict[int, int] = {}
        degraded = False

        async def report(i: int, tries: int = 1) -> None:
            """As a client does: a 503 is tried again (here without waiting the whole
            Retry-After), with the same key, so a retry can never file the report twice."""
            for _ in range(tries):
                r = await op.post("/api/v1/incidents", json={
                    "category": "event.sanitation.exposed_garbage", "key": f"k{i}",
                    "lat": 31.11 + (i % 40) * 0.004, "lon": 121.41 + (i // 40) * 0.004})
                answers[r.status_code] = answers.get(r.status_code, 0) + 1
                if r.status_code in (200, 201):
                    acked.append(r.json()["id"])
                    return
                assert r.status_code == 503, r.text
                assert r.headers.get("retry-after")
                await asyncio.sleep(0.2)

        for i in range(20):
            await report(i)
        # A request waits the pool's ten seconds for a connection before its 503; one second
        # takes the same path (PoolTimeout to StoreBusy) and saves this test twenty.
        live.node.store._pool.timeout = 1.0
        await asyncio.to_thread(pg.stop)
        try:
            await wait_port(pg.host, pg.port, up=False)
            r = await live.client().get("/readyz")
            degraded = r.status_code == 503 and not r.json()["checks"]["store"]["ok"]
            for i in range(20, 22):  # refused while down, with a reason and a time to retry
                await report(i)
        finally:
            await asyncio.to_thread(pg.start)
        await wait_port(pg.host, pg.port, up=True)
        deadline = time.monotonic() + 60
        while (await live.client().get("/readyz")).status_code != 200:
            assert time.monotonic() < deadline, "the node did not reconnect"
            await asyncio.sleep(0.5)
        for i in range(22, 60):
            await report(i, tries=20)
        assert degraded
        assert answers.get(503, 0) >= 2 and answers.get(500, 0) == 0
        stored = {i.id for i in await live.node.store.list_incidents(IncidentFilter(),
                                                                      limit=1000)}
        assert set(acked) <= stored and len(acked) == 58  # all but the two refused while down
        await op.aclose()


async def test_mqtt_broker_restarted_mid_run(tmp_path, grid_pack, live_node,
                                             broker: PlainBroker):
    a = parse_mqtt_url(broker.url)
    async with live_node(grid_pack, tmp_path / "data", mqtt_url=broker.url) as live:
        intake = live.node.mqtt
        await intake.wait_ready(10.0)
        device = "noise-000001"
        now = time.time() - 60

        async def publish(values: list[float], t0: float) -> None:
            async with aiomqtt.Client(a.host, a.port) as client:
                for k, v in enumerate(values):
                    await client.publish(f"cityops/readings/{device}", msgspec.json.encode(
                        {"ts": t0 + k, "value": v}), qos=1)

        await publish([40.0, 41.0, 42.0], now)
        await asyncio.to_thread(broker.stop)
        try:
            await wait_port(a.host, a.port, up=False)
            deadline = time.monotonic() + 10
            while intake.connected:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            r = await live.client().get("/readyz")
            assert r.status_code == 503 and r.json()["checks"]["mqtt"]["ok"] is False
        finally:
            await asyncio.to_thread(broker.start)
        await wait_port(a.host, a.port, up=True)
        await intake.wait_ready(30.0)
        await publish([43.0, 44.0], now + 10)
        key = await live.key("admin")
        async with live.client(key) as c:
            deadline = time.monotonic() + 15
            while True:
                items = (await c.get(f"/api/v1/devices/{device}/readings")).json()["items"]
                if len(items) >= 5 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.2)
        assert [i["value"] for i in items] == [40.0, 41.0, 42.0, 43.0, 44.0]
        assert intake.stats.reconnects >= 1
        assert (await live.client().get("/readyz")).status_code == 200
