"""Cluster nodes in this process (each with its own NATS connection and store pool) over the
real JetStream and PostgreSQL: act nodes sharing escalation, the web and history roles, and
ingest nodes sharing one MQTT subscription."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import uuid

import aiomqtt
import httpx
import msgspec
import pytest

from cityops.api.app import create_app
from cityops.domain.alerts import Alert, AlertEvent
from cityops.node import Node
from cityops.store.base import open_store

pytestmark = pytest.mark.services

DAY = 86400.0


@contextlib.asynccontextmanager
async def nodes(cluster, *specs, clock=None):
    """Start nodes given as (name, roles, settings overrides); stop them afterwards."""
    started = []
    try:
        for name, roles, more in specs:
            node = Node(cluster.pack, cluster.settings(name, *roles, **more),
                        **({"clock": clock} if clock else {}))
            await node.start()
            started.append(node)
        yield started
    finally:
        for node in reversed(started):
            await node.stop()


def asgi(node, key: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(node,
                                                                          manage_node=False)),
                             base_url="http://cityops.test",
                             headers={"Authorization": f"Bearer {key}"})


async def until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def alert(i: int, device, now: float) -> Alert:
    return Alert(id=f"al_test_{i:04d}", scenario="loud", rule="loud.over_80",
                 category="event.test.loud", severity="high", urgency="high",
                 departments=["environment"], subject=device.id, title="Noise over 80 dB(A)",
                 lat=device.lat, lon=device.lon, first_seen=now - i, last_seen=now)


@pytest.mark.timeout(120)
async def test_two_act_nodes_file_each_alert_once_and_escalate_each_due_order_once(cluster):
    offset = [0.0]

    def clock() -> float:
        return time.time() + offset[0]

    # Sixty alerts of one kind in two towns within a second are a storm, which the storm guard
    # would hold for a supervisor (tests/act/test_storm.py); here every one is to be a case.
    fast = {"escalate_tick_s": 0.1, "storm_cases": 0}
    async with nodes(cluster, ("actA", ["act"], fast), ("actB", ["act"], fast),
                     clock=clock) as (a, b):
        now = clock()
        devices = [d for d in cluster.pack.devices if d.kind == "noise"]
        events = [AlertEvent("raised", alert(i, devices[i % len(devices)], now))
                  for i in range(60)]
        for k in range(0, 60, 6):
            await a.bus.publish("alerts", events[k:k + 6])

        async def filed():
            keys = [await a.store.incident_of_report(f"alert:{e.alert.id}") for e in events]
            return keys if all(keys) else None

        cases = await until(filed, 30, "every alert filed")
        assert len(set(cases)) == 60
        # The two intakes share the alerts: between them every alert was taken once.
        taken = a.act.intake.stats["alerts"] + b.act.intake.stats["alerts"]
        assert taken >= 60 and a.act.desk.stats["created"] + b.act.desk.stats["created"] == 60

        # Two schedulers claiming at the same moment, each on its own connection, get
        # disjoint sets; while the claims are held nobody else gets those cases.
        later = clock() + 30 * DAY
        stores = [open_store(cluster.store_url) for _ in range(2)]
        for store in stores:
            await store.open()
        try:
            one, two = await asyncio.gather(stores[0].claim_due_incidents(later, 40, 1.0),
                                            stores[1].claim_due_incidents(later, 40, 1.0))
            assert not set(one) & set(two) and len(one) + len(two) == 60
            assert await stores[0].claim_due_incidents(later, 100, 1.0) == []
            assert len(await stores[1].claim_due_incidents(later + 1.0, 100, 1.0)) == 60
        finally:
            for store in stores:
                await store.close()

        offset[0] = 30 * DAY + 2.0  # a month later every accept deadline has passed

        async def settled():
            return not await a.store.due_incidents(clock(), 1000)

        await until(settled, 40, "every due order escalated")
        await asyncio.sleep(0.5)  # one more round of ticks on both nodes
        moves: dict[tuple[str, str], int] = {}
        orders = 0
        for case in set(cases):
            inc = await a.store.get_incident(case)
            orders += len(inc.orders)
            for event in await a.store.incident_events(case):
                if event.actor == "scheduler":
                    key = (event.order_id or case, event.action)
                    moves[key] = moves.get(key, 0) + 1
        escalations = [k for k in moves if k[1] == "order.escalate"]
        assert len(escalations) == orders > 0
        assert all(n == 1 for n in moves.values()), {k: n for k, n in moves.items() if n > 1}
        stats = [a.act.desk.stats, b.act.desk.stats]
        assert sum(s["escalations"] for s in stats) == orders
        # Claimed cases are never contended: no save lost a version race.
        assert sum(s["retries"] for s in stats) == 0


@pytest.mark.timeout(120)
async def test_web_node_takes_readings_the_history_node_stores_and_serves_them(cluster):
    async with nodes(cluster, ("hist", ["history"], {}), ("web", ["web"], {})) as (hist, web):
        t0 = time.time() - 600
        rows = [{"device_id": f"noise-{i:06d}", "ts": t0 + k, "value": 50.0 + k}
                for k in range(20) for i in range(40)]
        async with asgi(web, cluster.device_key) as w:
            r = await w.post("/api/v1/readings", content=msgspec.json.encode(rows))
            assert r.status_code == 202, r.text
            assert r.json()["accepted"] == 800

        async with asgi(hist, cluster.admin_key) as h, asgi(web, cluster.admin_key) as w:
            async def stored():
                page = (await h.get("/api/v1/devices/noise-000003/readings",
                                    params={"limit": 100})).json()
                return page if len(page["items"]) == 20 else None

            page = await until(stored, 20, "the history node to store the readings")
            assert page["items"][-1]["value"] == 69.0 or page["items"][0]["value"] == 69.0
            # The web node keeps no history: it says where it is, with 503 + Retry-After.
            r = await w.get("/api/v1/devices/noise-000003/readings")
            assert r.status_code == 503 and "history" in r.json()["error"]
            assert "Retry-After" in r.headers

            # ... but it follows the latest values from the stream.
            async def latest():
                d = (await w.get("/api/v1/devices/noise-000003")).json()
                return d if "69" in str(d) else None

            await until(latest, 20, "the web node's latest value")
            ready = (await w.get("/readyz")).json()
            assert ready["checks"]["bus"]["ok"] and ready["checks"]["bus"]["roles"] == ["web"]

            # An operating state set through the web node reaches the history node's passive
            # engine through the store.
            area = next(a.code for a in cluster.pack.areas if len(a.code) == 9)
            r = await w.put(f"/api/v1/areas/{area}/state",
                            json={"state": "special", "reason": "test"})
            assert r.status_code in (200, 204), r.text

            async def followed():
                return hist.detect.area_states.get(area) == "special"

            await until(followed, 15, "the state to reach the other node")


@pytest.mark.timeout(120)
async def test_ingest_nodes_share_one_mqtt_subscription(cluster, mqtt_url):
    tag = uuid.uuid4().hex[:8]
    prefix = f"cityops-test-{tag}/readings"
    more = {"mqtt_url": mqtt_url, "mqtt_topic": f"{prefix}/+", "mqtt_share": f"g{tag}"}
    async with nodes(cluster, (f"inA-{tag}", ["ingest"], more),
                     (f"inB-{tag}", ["ingest"], more)) as (a, b):
        for node in (a, b):
            await node.mqtt.wait_ready(10)
        t0 = time.time() - 600
        host, port = mqtt_url.removeprefix("mqtt://").split(":")
        async with aiomqtt.Client(host, int(port)) as pub:
            for k in range(200):
                device = f"noise-{k % 40:06d}"
                await pub.publish(f"{prefix}/{device}", msgspec.json.encode(
                    {"ts": t0 + k, "value": 42.0}), qos=1)

        async def all_in():
            n = a.mqtt.stats.accepted + b.mqtt.stats.accepted
            return n if n >= 200 else None

        assert await until(all_in, 30, "the readings through both intakes") == 200
        # The broker dealt the messages out between the two nodes, each one once.
        assert a.mqtt.stats.accepted > 0 and b.mqtt.stats.accepted > 0
        assert a.mqtt.stats.dead_letters == b.mqtt.stats.dead_letters == 0


@pytest.mark.timeout(120)
async def test_ingest_answers_503_with_retry_after_while_jetstream_does_not_ack(cluster,
                                                                              tmp_path):
    import shutil
    import signal
    import socket
    import subprocess

    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = tmp_path / "private-nats"
    store.mkdir()
    # A server of this test's own: pausing the shared one would stop everyone's tests.
    server = subprocess.Popen([binary, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd",
                               str(store)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        await until(lambda: _listening(port), 10, "the private nats-server")
        settings = cluster.settings("ingest-paused", "ingest")
        settings.bus_url = (f"nats://127.0.0.1:{port}?stream={cluster.stream}"
                            "&publish_timeout=1.5&ack_timeout=0.5")
        node = Node(cluster.pack, settings)
        await node.start()
        try:
            start = time.time() - 60
            sent = itertools.count()

            def rows() -> bytes:
                # A new reading each time: one already stored is answered as a duplicate
                # without the bus, which is not what this test asks about.
                return msgspec.json.encode([{"device_id": "noise-000001",
                                             "ts": start + next(sent), "value": 50.0}])

            async with asgi(node, cluster.device_key) as c:
                assert (await c.post("/api/v1/readings", content=rows())).status_code == 202
                server.send_signal(signal.SIGSTOP)  # up, but answering nothing

                async def refused():
                    # A batch posted while the bus's last answer still stands is taken;
                    # once JetStream has failed to ack, the intake refuses.
                    r = await c.post("/api/v1/readings", content=rows())
                    return r if r.status_code == 503 else None

                r = await until(refused, 30, "ingest to refuse what the bus cannot take")
                assert r.headers["Retry-After"]
                ready = await c.get("/readyz")
                assert ready.status_code == 503
                assert ready.json()["checks"]["bus"]["ok"] is False
                server.send_signal(signal.SIGCONT)

                async def taken():
                    r = await c.post("/api/v1/readings", content=rows())
                    return r.status_code == 202

                await until(taken, 30, "ingest to take readings again")
                assert (await c.get("/readyz")).status_code == 200
        finally:
            server.send_signal(signal.SIGCONT)
            await node.stop()
    finally:
        server.terminate()
        server.wait(10)


async def _listening(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    return True
