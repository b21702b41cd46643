"""MQTT intake against the real Mosquitto: good readings are ingested, bad ones dead-lettered
with their reason and index, and nothing a device sends stops the subscriber."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import aiomqtt
import msgspec
import pytest

from cityops.domain.city import Device
from cityops.domain.kinds import BUILTIN_KINDS
from cityops.domain.readings import US
from cityops.domain.registry import DeviceRegistry
from cityops.ingest.deadletters import DeadLetterSink
from cityops.ingest.decode import Reading
from cityops.ingest.mqtt import MqttIntake, parse_mqtt_url, show_payload
from cityops.ingest.pipeline import IngestResult, Overloaded
from cityops.ingest.validate import to_batch
from cityops.store.memory import MemoryStore

pytestmark = pytest.mark.services

NOISE = "noise-000001"
AIR = "air_quality-000001"


class Recorder:
    """An `ingest` coroutine that validates for real and remembers what it took."""

    def __init__(self) -> None:
        self.registry = DeviceRegistry(BUILTIN_KINDS)
        self.registry.add(
            [Device(NOISE, "noise", 31.2, 121.5), Device(AIR, "air_quality", 31.2, 121.5)]
        )
        self.taken: list[Reading] = []
        self.calls = 0
        self.overload_first = 0  # answer Overloaded to this many calls first
        self.fail_next = False

    async def ingest(self, readings: list[tuple[int, Reading]], *, source: str) -> IngestResult:
        assert source == "mqtt"
        self.calls += 1
        if self.calls <= self.overload_first:
            raise Overloaded("history writer is behind", retry_after=0.05)
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("disk on fire")
        _, rejected, _ = to_batch(readings, self.registry, int(time.time() * US))
        bad = {r.index for r in rejected}
        self.taken.extend(r for i, r in readings if i not in bad)
        return IngestResult(accepted=len(readings) - len(bad), duplicates=0, rejected=rejected)


async def eventually(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


class Harness:
    def __init__(self, url: str, prefix: str, intake, recorder, store, sink, publisher):
        self.url, self.prefix = url, prefix
        self.intake, self.recorder, self.store, self.sink = intake, recorder, store, sink
        self.publisher = publisher

    async def publish(self, suffix: str, payload) -> None:
        if not isinstance(payload, bytes):
            payload = msgspec.json.encode(payload)
        await self.publisher.publish(f"{self.prefix}/{suffix}", payload, qos=1)

    async def letters(self, n: int):
        await eventually(lambda: self.sink.stats.added >= n)
        await self.sink.flush()
        return sorted(await self.store.list_dead_letters(limit=1000), key=lambda d: d.id)


@contextlib.asynccontextmanager
async def harness(url: str, recorder: Recorder | None = None, **options):
    prefix = f"test-{uuid.uuid4().hex}/cityops/readings"
    store = MemoryStore()
    await store.open()
    # These tests count every letter; the cap per source has tests of its own.
    sink = DeadLetterSink(store, per_source=100_000)
    await sink.start()
    recorder = recorder or Recorder()
    intake = MqttIntake(url, recorder.ingest, sink, topic_prefix=prefix, batch_ms=20, **options)
    await intake.start()
    try:
        await intake.wait_ready(5.0)
        a = parse_mqtt_url(url)
        async with aiomqtt.Client(a.host, a.port) as publisher:
            yield Harness(url, prefix, intake, recorder, store, sink, publisher)
    finally:
        await intake.stop()
        await sink.stop()


def reading(device: str = NOISE, value: float = 55.0, ts: float | None = None) -> dict:
    return {"device_id": device, "ts": time.time() - 1 if ts is None else ts, "value": value}


async def test_good_readings_of_every_shape_are_ingested(mqtt_url):
    async with harness(mqtt_url) as h:
        now = time.time()
        await h.publish(NOISE, reading(value=51.5))
        await h.publish(NOISE, {"ts": now, "value": 48.0})  # the topic names the device
        await h.publish("batch", [reading(value=60.0), reading(AIR, ts=now) | {"value": 12.0}])
        await h.publish(AIR, {"ts": now, "values": {"pm25": 30.0, "pm10": 55.0}})
        await eventually(lambda: len(h.recorder.taken) == 5)
        got = sorted(repr((r.device_id, r.value, r.values)) for r in h.recorder.taken)
        assert got == sorted(repr(x) for x in [
            (NOISE, 51.5, None), (NOISE, 48.0, None), (NOISE, 60.0, None), (AIR, 12.0, None),
            (AIR, None, {"pm25": 30.0, "pm10": 55.0}),
        ])
        stats = h.intake.stats
        assert stats.messages == 4 and stats.readings == 5 and stats.dead_letters == 0
        assert stats.connected


BAD = [
    pytest.param(b"this is not json", "malformed JSON", id="malformed"),
    pytest.param(b"\xff\xfe\x00\x81 binary", "malformed JSON", id="non-utf8"),
    pytest.param(
        msgspec.json.encode([reading()] * 6000), "over the 262144 byte limit", id="oversize"
    ),
    pytest.param(
        msgspec.json.encode({"device_id": NOISE, "ts": 1.7e9, "value": "loud"}),
        "Expected `float | null`, got `str`",
        id="wrong-type",
    ),
    pytest.param(msgspec.json.encode(reading("ghost-9")), "unknown device 'ghost-9'", id="unknown"),
    pytest.param(msgspec.json.encode(reading(value=400.0)), "outside the valid range", id="range"),
    pytest.param(b"", "not a JSON array", id="empty"),
    pytest.param(b"42", "not a JSON array", id="number"),
]


@pytest.mark.parametrize(("payload", "reason"), BAD)
async def test_a_bad_message_is_dead_lettered_and_the_subscriber_carries_on(
    mqtt_url, payload, reason
):
    async with harness(mqtt_url) as h:
        await h.publish("batch", payload)
        await h.publish(NOISE, reading(value=44.0))
        letters = await h.letters(1)
        await eventually(lambda: len(h.recorder.taken) == 1)
        assert len(letters) == 1
        letter = letters[0]
        assert reason in letter.reason
        assert letter.source == "mqtt" and letter.where == f"{h.prefix}/batch"
        assert letter.index is None
        assert len(letter.payload) <= 4096 + 40
        assert letter.received_at == pytest.approx(time.time(), abs=30)
        assert h.recorder.taken[0].value == 44.0
        assert h.intake.stats.dead_letters == 1


async def test_non_utf8_payload_is_kept_as_hex(mqtt_url):
    async with harness(mqtt_url) as h:
        await h.publish(NOISE, b"\xff\xfe\x00\x81")
        [letter] = await h.letters(1)
        assert letter.payload == "hex:fffe0081"
        assert letter.where == f"{h.prefix}/{NOISE}"


async def test_oversize_payload_is_cut_in_its_letter(mqtt_url):
    async with harness(mqtt_url) as h:
        body = msgspec.json.encode([reading()] * 6000)
        await h.publish("batch", body)
        [letter] = await h.letters(1)
        assert letter.payload.startswith('[{"device_id":"noise-000001"')
        assert letter.payload.endswith(f"…[{len(body)} bytes in all]")
        assert h.recorder.calls == 0


async def test_an_array_with_bad_elements_keeps_the_good_ones(mqtt_url):
    async with harness(mqtt_url) as h:
        now = time.time()
        rows = [
            reading(value=50.0, ts=now - 3),
            {"device_id": NOISE, "ts": now, "value": "loud"},  # decoding refuses it
            reading(value=51.0, ts=now - 2),
            reading("ghost-1", ts=now),  # validation refuses it
            reading(value=-5.0, ts=now),
            reading(value=52.0, ts=now - 1),
        ]
        await h.publish("batch", rows)
        letters = await h.letters(3)
        await eventually(lambda: len(h.recorder.taken) == 3)
        assert sorted(r.value for r in h.recorder.taken) == [50.0, 51.0, 52.0]
        by_index = {d.index: d for d in letters}
        assert sorted(by_index) == [1, 3, 4]
        assert "Expected `float | null`" in by_index[1].reason
        assert "unknown device 'ghost-1'" in by_index[3].reason
        assert "outside the valid range" in by_index[4].reason
        # Each letter shows its own element, not the whole array.
        assert msgspec.json.decode(by_index[3].payload)["device_id"] == "ghost-1"
        assert msgspec.json.decode(by_index[1].payload)["value"] == "loud"


async def test_device_topic_and_payload_must_agree(mqtt_url):
    async with harness(mqtt_url) as h:
        await h.publish(NOISE, reading(AIR))
        [letter] = await h.letters(1)
        assert "does not match the topic's device" in letter.reason
        assert h.recorder.taken == []


async def test_many_messages_are_micro_batched(mqtt_url):
    async with harness(mqtt_url) as h:
        now = time.time()
        for i in range(300):
            await h.publish(NOISE, {"ts": now - i * 0.01, "value": 40.0 + i % 50})
        await eventually(lambda: len(h.recorder.taken) == 300)
        assert h.recorder.calls < 300  # several messages per ingest call
        assert h.intake.stats.batches == h.recorder.calls


async def test_overloaded_batches_are_retried_not_dropped(mqtt_url):
    recorder = Recorder()
    recorder.overload_first = 3
    async with harness(mqtt_url, recorder) as h:
        await h.publish(NOISE, reading(value=61.0))
        await eventually(lambda: len(recorder.taken) == 1)
        assert recorder.calls == 4
        assert h.intake.stats.overloaded_retries == 3
        assert h.sink.stats.added == 0


async def test_a_failing_ingest_dead_letters_its_batch_and_the_intake_survives(mqtt_url):
    recorder = Recorder()
    recorder.fail_next = True
    async with harness(mqtt_url, recorder) as h:
        await h.publish(NOISE, reading(value=62.0))
        [letter] = await h.letters(1)
        assert "ingest failed: RuntimeError: disk on fire" in letter.reason
        await h.publish(NOISE, reading(value=63.0))
        await eventually(lambda: len(recorder.taken) == 1)
        assert recorder.taken[0].value == 63.0
        assert h.intake.stats.failed_batches == 1


class Proxy:
    """A TCP relay to the broker that the test can cut and restore, as a broker restart would."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.server: asyncio.Server | None = None
        self.port = 0
        self.pipes: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in list(self.pipes):
            writer.close()
        await self.server.wait_closed()

    async def _serve(self, reader, writer) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self.pipes |= {writer, up_writer}

        async def pump(src, dst):
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))


async def test_reconnects_when_the_broker_goes_away(mqtt_url):
    a = parse_mqtt_url(mqtt_url)
    proxy = Proxy(a.host, a.port)
    await proxy.start()
    url = f"mqtt://127.0.0.1:{proxy.port}"
    async with harness(url, backoff_s=(0.05, 0.2)) as h:
        # Publish straight to the broker; only the intake's connection goes through the relay.
        async with aiomqtt.Client(a.host, a.port) as direct:
            h.publisher = direct
            await h.publish(NOISE, reading(value=45.0))
            await eventually(lambda: len(h.recorder.taken) == 1)
            await proxy.cut()
            await eventually(lambda: not h.intake.connected)
            await asyncio.sleep(0.3)  # a few failed attempts against the closed port
            await proxy.start()
            await h.intake.wait_ready(5.0)
            await h.publish(NOISE, reading(value=46.0))
            await eventually(lambda: len(h.recorder.taken) == 2)
        assert h.intake.stats.reconnects >= 2
        await proxy.cut()


def test_payload_display_rules():
    assert show_payload(b'{"a": 1}') == '{"a": 1}'
    assert show_payload(b"\x00\xff") == "hex:00ff"
    long = show_payload(b"x" * 5000)
    assert long.startswith("x" * 4096) and long.endswith("…[5000 bytes in all]")
    accents = show_payload("é".encode() * 3000)  # 6000 bytes; a cut at 4096 is mid-letter
    assert accents == "é" * 2048 + "…[6000 bytes in all]"


def test_mqtt_urls():
    a = parse_mqtt_url("mqtt://user:p%40ss@broker.example:1884/city/readings?mode=batch")
    assert (a.host, a.port, a.username, a.password) == ("broker.example", 1884, "user", "p@ss")
    assert a.path == "city/readings" and a.query == "mode=batch" and not a.tls
    assert parse_mqtt_url("mqtts://b").port == 8883
    with pytest.raises(ValueError, match="mqtt://"):
        parse_mqtt_url("http://b:1883")
