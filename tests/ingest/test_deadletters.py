"""The dead-letter sink: batched writes, bounded memory, a failing store that recovers; and the
whole path from a bad MQTT message on the real broker to the store."""

from __future__ import annotations

import asyncio
import time
import uuid

import aiomqtt
import pytest

from cityops.ingest.deadletters import DeadLetterSink
from cityops.ingest.mqtt import MqttIntake, parse_mqtt_url
from cityops.ingest.pipeline import IngestResult
from cityops.store.base import DeadLetter
from cityops.store.memory import MemoryStore


def letter(i: int) -> DeadLetter:
    return DeadLetter("mqtt", f"cityops/readings/dev-{i}", f"bad {i}", "{}", 1.7e9 + i)


class CountingStore(MemoryStore):
    """The real memory store, remembering the size of each write and failing on request."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[int] = []
        self.fail = 0  # fail this many writes

    async def add_dead_letters(self, letters):
        if self.fail:
            self.fail -= 1
            raise OSError("disk full")
        self.writes.append(len(letters))
        await super().add_dead_letters(letters)


async def eventually(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def test_letters_are_written_in_batches_of_at_most_500():
    store = CountingStore()
    sink = DeadLetterSink(store)
    for i in range(1200):
        sink.add_nowait(letter(i))
    await sink.flush()
    assert store.writes == [500, 500, 200]
    stored = await store.list_dead_letters(limit=2000)
    assert [d.reason for d in stored[::-1]] == [f"bad {i}" for i in range(1200)]  # order kept
    assert sink.stats.written == 1200 and sink.stats.pending == 0


async def test_the_background_flush_writes_small_batches_soon():
    store = CountingStore()
    sink = DeadLetterSink(store, interval_s=0.05)
    await sink.start()
    try:
        await sink.add(letter(1))
        await eventually(lambda: store.writes == [1])
    finally:
        await sink.stop()


async def test_a_full_batch_is_written_without_waiting_for_the_timer():
    store = CountingStore()
    sink = DeadLetterSink(store, interval_s=3600.0)
    await sink.start()
    try:
        for i in range(500):
            await sink.add(letter(i))
        await eventually(lambda: store.writes == [500], timeout=2.0)
    finally:
        await sink.stop()


async def test_without_a_background_task_add_flushes_at_the_batch_size():
    store = CountingStore()
    sink = DeadLetterSink(store, batch_size=10)
    for i in range(25):
        await sink.add(letter(i))
    assert store.writes == [10, 10]
    await sink.stop()  # flushes what is left
    assert store.writes == [10, 10, 5]


async def test_memory_is_bounded_and_drops_are_counted():
    store = CountingStore()
    sink = DeadLetterSink(store, max_pending=100)
    kept = [sink.add_nowait(letter(i)) for i in range(130)]
    assert kept.count(True) == 100 and kept.count(False) == 30
    stats = sink.stats
    assert (stats.added, stats.pending, stats.dropped) == (130, 100, 30)
    await sink.flush()
    assert sink.add_nowait(letter(999))  # room again once written
    assert await store.count_dead_letters() == 100


async def test_a_failing_store_keeps_the_letters_and_is_retried():
    store = CountingStore()
    store.fail = 2
    sink = DeadLetterSink(store, interval_s=0.02)
    await sink.start()
    try:
        for i in range(3):
            await sink.add(letter(i))
        await eventually(lambda: sink.stats.written == 3)
        assert sink.stats.write_errors == 2 and sink.stats.dropped == 0
        assert await store.count_dead_letters() == 3
    finally:
        await sink.stop()


async def test_explicit_flush_reports_a_store_failure():
    store = CountingStore()
    store.fail = 1
    sink = DeadLetterSink(store)
    sink.add_nowait(letter(1))
    with pytest.raises(OSError):
        await sink.flush()
    assert sink.stats.pending == 1
    await sink.flush()
    assert sink.stats.written == 1


@pytest.mark.services
async def test_a_bad_mqtt_message_ends_up_in_the_store(mqtt_url):
    prefix = f"test-{uuid.uuid4().hex}/readings"
    store = MemoryStore()
    await store.open()
    sink = DeadLetterSink(store, interval_s=0.05)
    await sink.start()

    async def ingest(readings, *, source):
        return IngestResult(accepted=len(readings), duplicates=0, rejected=[])

    intake = MqttIntake(mqtt_url, ingest, sink, topic_prefix=prefix)
    await intake.start()
    try:
        await intake.wait_ready(5.0)
        a = parse_mqtt_url(mqtt_url)
        async with aiomqtt.Client(a.host, a.port) as publisher:
            await publisher.publish(f"{prefix}/batch", b"{oops", qos=1)
        await eventually(lambda: sink.stats.written == 1)
        [stored] = await store.list_dead_letters()
        assert stored.where == f"{prefix}/batch" and stored.payload == "{oops"
        assert "malformed JSON" in stored.reason and stored.id == 1
    finally:
        await intake.stop()
        await sink.stop()
