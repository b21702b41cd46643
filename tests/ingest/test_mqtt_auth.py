"""Authenticated MQTT, against a Mosquitto the test starts (dynamic security, no anonymous
clients): a device key made with `cityops keys create` gets a broker client that may publish
only to its own devices' topics, revoking, expiring or rotating the key takes it away, and
the intake refuses a reading whose device is not its topic's.

The finding this answers: "Anyone can publish readings for any device over MQTT (the broker
allows anonymous clients)."
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid

import aiomqtt
import msgspec
import pytest
from typer.testing import CliRunner

from cityops.cli.main import app
from cityops.domain.city import Device
from cityops.ingest.broker_accounts import BrokerAccounts, device_topics, topic_prefix
from cityops.store.base import ApiKeyRecord
from tests.clock_kit import Clock
from tests.mqtt_kit import SecureBroker

runner = CliRunner()
INTAKE = ("cityops-intake", "intake-secret")


async def eventually(check, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def reading(device: str, value: float = 55.0) -> bytes:
    return msgspec.json.encode({"device_id": device, "ts": time.time() - 1, "value": value})


@contextlib.asynccontextmanager
async def secured_node(live_node, pack, data, broker: SecureBroker):
    prefix = f"test-{uuid.uuid4().hex[:8]}/readings"
    async with live_node(pack, data, mqtt_url=broker.url(*INTAKE),
                         mqtt_admin_url=broker.admin_url, mqtt_topic=f"{prefix}/+",
                         mqtt_sync_s=3600.0) as live:
        await live.node.broker_sync.sync_now(10)  # also makes the intake's own client
        await live.node.mqtt.wait_ready(15)
        live.prefix = prefix
        live.admin = await live.key("admin")
        yield live


async def keys_cli(live, broker: SecureBroker, *args: str) -> tuple[str, str]:
    """`cityops keys ...` on the node's data dir, as an operator runs it beside the server;
    the key id and the secret from its last line."""
    result = await asyncio.to_thread(
        runner.invoke, app, ["keys", *args, "--data", str(live.node.settings.data_dir),
                             "--mqtt-admin", broker.admin_url, "--mqtt-topic",
                             f"{live.prefix}/+"])
    assert result.exit_code == 0, result.output
    last = result.output.strip().splitlines()[-1]
    return re.findall(r"\bk_[0-9a-f]{12}\b", last)[-1], last.split()[-1]


async def stored(live) -> int:
    async with live.client(live.admin) as c:
        return (await c.get("/api/v1/history/count")).json()["readings"]


async def dead_letters(live) -> list[dict]:
    await live.node.dead_letters.flush()
    async with live.client(live.admin) as c:
        return (await c.get("/api/v1/dead-letters")).json()["items"]


def device_client(broker: SecureBroker, user: str, password: str) -> aiomqtt.Client:
    return aiomqtt.Client(broker.host, broker.port, username=user, password=password,
                          protocol=aiomqtt.ProtocolVersion.V5, timeout=5)


def by_village(live) -> dict[str, list[Device]]:
    out: dict[str, list[Device]] = {}
    for d in live.node.registry.devices:
        if d.areas is not None and d.kind == "noise":
            out.setdefault(d.areas.village, []).append(d)
    return out


async def test_anonymous_clients_are_refused(secure_broker):
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(secure_broker.host, secure_broker.port, timeout=5):
            pass
    with pytest.raises(aiomqtt.MqttError):
        async with device_client(secure_broker, "k_000000000000", "co_guess"):
            pass


async def test_a_device_key_publishes_its_own_devices_readings_and_nothing_else(
        tmp_path, grid_pack, live_node, secure_broker):
    async with secured_node(live_node, grid_pack, tmp_path / "d", secure_broker) as live:
        villages = by_village(live)
        village, other = sorted(villages)[:2]
        mine, theirs = villages[village][0], villages[other][0]
        key_id, secret = await keys_cli(live, secure_broker, "create", "--role", "device",
                                        "--scope", village, "--name", "gateway")
        intake = live.node.mqtt
        async with device_client(secure_broker, key_id, secret) as device:
            # Another village's device: the broker drops it, it never reaches CityOps.
            await device.publish(f"{live.prefix}/{theirs.id}", reading(theirs.id), qos=1)
            await device.publish(f"{live.prefix}/batch", msgspec.json.encode(
                [msgspec.json.decode(reading(theirs.id))]), qos=1)
            # Its own topic, but another device named in the payload: dead-lettered.
            await device.publish(f"{live.prefix}/{mine.id}", reading(theirs.id), qos=1)
            await device.publish(f"{live.prefix}/{mine.id}", msgspec.json.encode(
                [msgspec.json.decode(reading(mine.id, 50.0)),
                 msgspec.json.decode(reading(theirs.id, 51.0))]), qos=1)
            await device.publish(f"{live.prefix}/{mine.id}", reading(mine.id, 58.0), qos=1)
        await eventually(lambda: _ready(stored(live), 2))
        # In order from one client: the refused ones would have come first, and did not.
        assert intake.stats.messages == 3
        letters = await eventually(lambda: _ready(dead_letters(live), 2, items=True))
    assert {d["where"] for d in letters} == {f"{live.prefix}/{mine.id}"}
    assert all("does not match the topic's device" in d["reason"] for d in letters)
    assert sorted(d["index"] for d in letters if d["index"] is not None) == [1]


async def _ready(coro, n: int, items: bool = False):
    value = await coro
    size = len(value) if items else value
    return value if size >= n else None


async def test_revoking_the_key_takes_its_client_off_the_broker(
        tmp_path, grid_pack, live_node, secure_broker):
    async with secured_node(live_node, grid_pack, tmp_path / "d", secure_broker) as live:
        key_id, secret = await keys_cli(live, secure_broker, "create", "--role", "device")
        async with device_client(secure_broker, key_id, secret) as device:
            await device.publish(f"{live.prefix}/noise-000001", reading("noise-000001"), qos=1)
            await eventually(lambda: _ready(stored(live), 1))
            await keys_cli_revoke(live, secure_broker, key_id)
            # Deleting the client disconnects it at once: the next publish has no connection.
            with pytest.raises(aiomqtt.MqttError):
                for _ in range(100):
                    await device.publish(f"{live.prefix}/noise-000002",
                                         reading("noise-000002"), qos=1)
                    await asyncio.sleep(0.05)
        with pytest.raises(aiomqtt.MqttError):
            async with device_client(secure_broker, key_id, secret):
                pass
        assert await stored(live) == 1


async def keys_cli_revoke(live, broker: SecureBroker, key_id: str) -> None:
    result = await asyncio.to_thread(
        runner.invoke, app, ["keys", "revoke", key_id, "--data",
                             str(live.node.settings.data_dir), "--mqtt-admin", broker.admin_url])
    assert result.exit_code == 0, result.output


async def test_the_node_removes_clients_of_keys_revoked_or_expired_elsewhere_and_follows_devices(
        tmp_path, grid_pack, live_node, secure_broker):
    async with secured_node(live_node, grid_pack, tmp_path / "d", secure_broker) as live:
        villages = by_village(live)
        village = sorted(villages)[0]
        revoked_id, revoked_secret = await keys_cli(live, secure_broker, "create", "--role",
                                                    "device")
        dated_id, dated_secret = await keys_cli(live, secure_broker, "create", "--role",
                                                "device", "--scope", village, "--expires", "1h")
        # Revoked without --mqtt-admin (the broker was away, say): the node's sync catches up.
        await asyncio.to_thread(runner.invoke, app, [
            "keys", "revoke", revoked_id, "--data", str(live.node.settings.data_dir)])
        # A device registered in the key's village after the key was made.
        near = villages[village][0]
        newcomer = Device("noise-newcomer", "noise", near.lat, near.lon)
        await live.node.register_devices([newcomer])
        await live.node.broker_sync.sync_now(10)
        with pytest.raises(aiomqtt.MqttError):
            async with device_client(secure_broker, revoked_id, revoked_secret):
                pass
        async with device_client(secure_broker, dated_id, dated_secret) as device:
            await device.publish(f"{live.prefix}/noise-newcomer", reading("noise-newcomer"),
                                 qos=1)
            await eventually(lambda: _ready(stored(live), 1))
        # The broker knows no expiry: the node removes the client when the key expires.
        live.node.broker_sync.clock = Clock(time.time() + 3601)
        await live.node.broker_sync.sync_now(10)
        with pytest.raises(aiomqtt.MqttError):
            async with device_client(secure_broker, dated_id, dated_secret):
                pass


async def test_rotating_a_device_key_replaces_its_client(tmp_path, grid_pack, live_node,
                                                         secure_broker):
    async with secured_node(live_node, grid_pack, tmp_path / "d", secure_broker) as live:
        old_id, old_secret = await keys_cli(live, secure_broker, "create", "--role", "device")
        new_id, new_secret = await keys_cli(live, secure_broker, "rotate", old_id)
        with pytest.raises(aiomqtt.MqttError):
            async with device_client(secure_broker, old_id, old_secret):
                pass
        async with device_client(secure_broker, new_id, new_secret) as device:
            await device.publish(f"{live.prefix}/noise-000003", reading("noise-000003"), qos=1)
            await eventually(lambda: _ready(stored(live), 1))


async def test_without_a_dynsec_admin_the_node_warns_that_publishing_is_open(
        tmp_path, grid_pack, live_node, secure_broker, caplog):
    with caplog.at_level(logging.WARNING, logger="cityops.node"):
        async with live_node(grid_pack, tmp_path / "d", mqtt_url=secure_broker.url()):
            pass
    assert any("MQTT ANONYMOUS PUBLISHING IS OPEN" in r.getMessage() for r in caplog.records)


def test_a_device_key_made_while_the_broker_is_away_is_not_made(tmp_path, secure_broker):
    r = runner.invoke(app, ["keys", "create", "--role", "device", "--data", str(tmp_path),
                            "--mqtt-admin", "mqtt://dynsec-admin:wrong@127.0.0.1:"
                                            f"{secure_broker.port}"])
    assert r.exit_code == 2 and "no key was made" in r.output and "Traceback" not in r.output
    assert "wrong" not in r.output  # the password is not repeated
    listed = runner.invoke(app, ["keys", "list", "--data", str(tmp_path)])
    assert "k_" not in listed.output


def test_topics_follow_the_keys_scope():
    def dev(i: str, village: str | None, owner: str | None = None) -> Device:
        from cityops.domain.city import AreaCodes

        areas = AreaCodes(village[:6], village[:9], village) if village else None
        return Device(i, "noise", 31.0, 121.0, owner=owner, areas=areas)

    devices = [dev("a", "990001001001"), dev("b", "990001002001", "sanitation"),
               dev("c", None), dev("bad/id", "990001001001"), dev("d", "990001001002")]

    def key(scope: str) -> ApiKeyRecord:
        return ApiKeyRecord("k_000000000001", "0" * 64, "device", scope)

    assert device_topics(key("*"), devices, "p") == ["p/+"]
    assert device_topics(key("990001001"), devices, "p") == ["p/a", "p/d"]
    assert device_topics(key("990001001001"), devices, "p") == ["p/a"]
    assert device_topics(key("sanitation"), devices, "p") == ["p/b"]
    assert topic_prefix("$share/cityops/city/readings/+") == "city/readings"
    assert topic_prefix("cityops/readings/+") == "cityops/readings"


async def test_the_admin_url_must_name_a_user():
    with pytest.raises(ValueError, match="names no user"):
        BrokerAccounts("mqtt://127.0.0.1:1883", "cityops/readings")


async def test_the_intakes_own_client_may_subscribe_shared_or_not_and_nothing_else(
        secure_broker):
    async with BrokerAccounts(secure_broker.admin_url, "city/readings") as accounts:
        assert await accounts.ensure_intake("intake", "pw", "$share/g/city/readings/+")
        assert not await accounts.ensure_intake("intake", "pw", "city/readings/+")  # kept
    async with device_client(secure_broker, "intake", "pw") as intake:
        granted = [await intake.subscribe(t, qos=1) for t in (
            "city/readings/+", "$share/cityops/city/readings/+", "elsewhere/+")]
    codes = [r[0].getName() for r in granted]
    assert codes[:2] == ["Granted QoS 1"] * 2 and codes[2] == "Not authorized"
