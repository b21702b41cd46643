"""MQTT into a whole node, against the real Mosquitto: readings reach the history, bad
messages reach GET /api/v1/dead-letters with their reason."""

import asyncio
import time
import uuid

import aiomqtt
import msgspec


async def wait_for(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


async def test_mqtt_readings_are_stored_and_bad_ones_dead_lettered(tmp_path, grid_pack, live_node,
                                                                   mqtt_url):
    prefix = f"cityops-test-{uuid.uuid4().hex[:8]}/readings"
    async with live_node(grid_pack, tmp_path / "d", mqtt_url=mqtt_url,
                         mqtt_topic=f"{prefix}/+") as live:
        await live.node.mqtt.wait_ready(10)
        admin = await live.key("admin")
        now = time.time() - 5
        async with aiomqtt.Client("127.0.0.1", 1883) as pub:
            await pub.publish(f"{prefix}/noise-000001", msgspec.json.encode(
                {"device_id": "noise-000001", "ts": now, "value": 58.0}), qos=1)
            await pub.publish(f"{prefix}/batch", msgspec.json.encode(
                [{"device_id": "noise-000002", "ts": now, "value": 51.0},
                 {"device_id": "noise-000002", "ts": now + 1, "value": 900.0}]), qos=1)
            await pub.publish(f"{prefix}/noise-000003", b"\xff\xfe not json", qos=1)
            await pub.publish(f"{prefix}/noise-000003", msgspec.json.encode(
                {"ts": now, "value": 49.5}), qos=1)  # device id from the topic

        async with live.client(admin) as c:
            async def stored():
                r = await c.get("/api/v1/history/count")
                return r.json()["readings"] == 3

            await wait_for(stored)

            async def letters():
                body = (await c.get("/api/v1/dead-letters")).json()
                return body if body["total"] >= 2 else None

            body = await wait_for(letters)
            health = (await c.get("/healthz")).json()
            metrics = (await c.get("/metrics")).text
    reasons = {(d["where"].rsplit("/", 1)[-1], d["index"]): d["reason"] for d in body["items"]}
    assert "outside the valid range" in reasons[("batch", 1)]
    bad = next(d for d in body["items"] if d["where"].endswith("noise-000003"))
    assert "JSON" in bad["reason"] or "UTF-8" in bad["reason"]
    assert "ff" in bad["payload"].lower()
    assert all(d["source"] == "mqtt" for d in body["items"])
    assert health["mqtt"] == "connected"
    assert 'cityops_mqtt{figure="messages"} 4.0' in metrics
    assert 'cityops_dead_letters{state="written"} 2.0' in metrics
