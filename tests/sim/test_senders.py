"""Senders against real servers: an HTTP readings endpoint served by uvicorn, and Mosquitto."""

from __future__ import annotations

import asyncio
import socket
import uuid

import aiomqtt
import msgspec
import pytest

from cityops.ingest.mqtt import parse_mqtt_url
from cityops.sim import Simulator
from cityops.sim.senders import (
    MQTT_BATCH_READINGS,
    HttpSender,
    MqttSender,
    TargetError,
    TargetRefused,
    TargetUnreachable,
    open_sender,
    retry_after_s,
)

T0 = 1_716_739_200.0


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        await asyncio.sleep(0)


def body(rows: list[dict]) -> bytes:
    return msgspec.json.encode(rows)


ROWS = [{"device_id": f"noise-{i:06d}", "ts": T0 + i, "value": 50.0} for i in range(5)]


async def test_http_posts_batches_with_the_key_and_counts_the_answer(node):
    sender = HttpSender(node.url, "secret-key", concurrency=2)
    await sender.open()
    try:
        rows = ROWS + [{"device_id": "ghost-1", "ts": T0, "value": 1.0}]
        first = await sender.send(body(rows), len(rows))
        again = await sender.send(body(ROWS), len(ROWS))
    finally:
        await sender.close()
    assert (first.sent, first.accepted, first.rejected, first.duplicates) == (6, 5, 1, 0)
    assert first.rejections == ["unknown device"]
    assert (again.accepted, again.duplicates) == (5, 5)
    assert node.auth == ["Bearer secret-key"] * 2
    assert len(node.peers) == 1  # the connection was kept alive


async def test_429_and_503_are_waited_out_and_the_same_batch_is_sent_again(node):
    node.script = [(429, {"Retry-After": "2"}), (503, {"Retry-After": "0.5"}), (503, {})]
    sleeps = Sleeps()
    sender = HttpSender(node.url, "k", sleep=sleeps)
    await sender.open()
    try:
        outcome = await sender.send(body(ROWS), len(ROWS))
    finally:
        await sender.close()
    assert sleeps.calls == [2.0, 0.5, 1.0]  # no Retry-After: a second
    assert outcome.retried == 3 and outcome.accepted == 5 and outcome.errors == 0
    assert node.bodies == [body(ROWS)]


async def test_a_refused_key_or_a_wrong_server_is_a_target_error(node):
    node.script = [(401, {})]
    sender = HttpSender(node.url, None)
    await sender.open()
    try:
        with pytest.raises(TargetRefused, match="refused the API key.*--key"):
            await sender.send(body(ROWS), len(ROWS))
    finally:
        await sender.close()
    elsewhere = HttpSender(node.url + "/not-a-node", "k")
    elsewhere.url = node.url
    node.script = [(404, {})]
    await elsewhere.open()
    try:
        with pytest.raises(TargetRefused, match="is this a CityOps node"):
            await elsewhere.send(body(ROWS), len(ROWS))
    finally:
        await elsewhere.close()


async def test_a_rejected_body_counts_every_reading_as_rejected(node):
    node.script = [(400, {})]
    sender = HttpSender(node.url, "k")
    await sender.open()
    try:
        outcome = await sender.send(body(ROWS), len(ROWS))
    finally:
        await sender.close()
    # The node answered for them: sent, and rejected.
    assert outcome.rejected == 5 and outcome.sent == 5 and outcome.accepted == 0
    assert "400" in outcome.rejections[0]


async def test_server_errors_are_retried_then_given_up(node):
    node.script = [(500, {})] * 5
    sleeps = Sleeps()
    sender = HttpSender(node.url, "k", sleep=sleeps)
    await sender.open()
    try:
        outcome = await sender.send(body(ROWS), len(ROWS))
    finally:
        await sender.close()
    assert outcome.errors == 5 and outcome.sent == 0 and len(sleeps.calls) == 4
    assert outcome.failed == 5


async def test_an_unreachable_server_fails_fast():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    sender = HttpSender(f"http://127.0.0.1:{port}", "k")
    await sender.open()
    try:
        with pytest.raises(TargetUnreachable, match="cannot reach"):
            await sender.send(body(ROWS), len(ROWS))
    finally:
        await sender.close()


def test_retry_after_values():
    assert retry_after_s("3") == 3.0
    assert retry_after_s(None) == 1.0
    assert retry_after_s("soon") == 1.0
    assert retry_after_s("100000") == 60.0  # capped
    assert retry_after_s("Sun, 26 May 2024 16:00:10 GMT", now=T0) == pytest.approx(10.0)
    assert retry_after_s("Sun, 26 May 2024 15:00:00 GMT", now=T0) == 0.0


def test_targets_are_chosen_by_scheme():
    assert isinstance(open_sender("http://127.0.0.1:8080", "k"), HttpSender)
    assert isinstance(open_sender("mqtt://127.0.0.1:1883"), MqttSender)
    for bad in ("ftp://x", "127.0.0.1:8080", "http://", "mqtt://b?qos=7"):
        with pytest.raises(TargetError):
            open_sender(bad)


async def collect(url: str, topic: str, expect: int, ready: asyncio.Event):
    a = parse_mqtt_url(url)
    got: list[aiomqtt.Message] = []
    async with aiomqtt.Client(a.host, a.port) as sub:
        await sub.subscribe(topic, qos=1)
        ready.set()
        async with asyncio.timeout(10):
            async for message in sub.messages:
                got.append(message)
                if len(got) >= expect:
                    break
    return got


@pytest.mark.services
@pytest.mark.parametrize("mode", ["device", "batch"])
async def test_mqtt_publishes_one_reading_per_message_or_arrays(mqtt_url, make_pack, mode):
    prefix = f"test-{uuid.uuid4().hex}/readings"
    url = f"{mqtt_url}/{prefix}" + ("?mode=batch" if mode == "batch" else "")
    # Mosquitto queues at most 1,000 messages per subscriber by default: stay under that.
    n = 900 if mode == "device" else 2500
    expect = n if mode == "device" else -(-n // MQTT_BATCH_READINGS)
    ready = asyncio.Event()
    listener = asyncio.create_task(collect(mqtt_url, f"{prefix}/+", expect, ready))
    await ready.wait()
    sender = MqttSender(url)
    await sender.open()
    try:
        sim = Simulator(make_pack(), seed=1, start_ts=T0)
        outcome = await sender.send(sender.payload(sim, n, T0 + 1), n)
    finally:
        await sender.close()
    messages = await listener
    assert outcome.sent == n and outcome.errors == 0
    if mode == "device":
        for m in messages:
            reading = msgspec.json.decode(m.payload)
            assert m.topic.value == f"{prefix}/{reading['device_id']}"
    else:
        assert {m.topic.value for m in messages} == {f"{prefix}/batch"}
        sizes = [len(msgspec.json.decode(m.payload)) for m in messages]
        assert sum(sizes) == n and max(sizes) <= MQTT_BATCH_READINGS


async def test_an_unreachable_broker_is_a_target_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sender = MqttSender(f"mqtt://127.0.0.1:{port}")
    with pytest.raises(TargetUnreachable, match="cannot reach the MQTT broker"):
        await sender.open()
