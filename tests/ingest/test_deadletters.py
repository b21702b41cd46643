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


RECENT = time.time()  # within the retention period, which the sink's sweep enforces


def letter(i: int) -> DeadLetter:
    return DeadLetter("mqtt", f"cityops/readings/dev-{i}", f"bad {i}", "{}", RECENT + i)


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


# -- caps per source and retention ----------------------------------------------------------------

from tests.clock_kit import Clock  # noqa: E402


def from_topic(topic: str, i: int, at: float = RECENT) -> DeadLetter:
    return DeadLetter("mqtt", topic, f"bad {i}", "garbage", at)


async def test_a_flood_from_one_source_keeps_at_most_its_cap_and_others_are_still_kept():
    store = MemoryStore()
    clock = Clock(RECENT)
    capped: list[DeadLetter] = []
    sink = DeadLetterSink(store, per_source=20, window_s=60.0, clock=clock,
                          on_capped=capped.append)
    kept = [sink.add_nowait(from_topic("cityops/readings/noisy", i)) for i in range(20_000)]
    assert kept.count(True) == 20
    assert [sink.add_nowait(from_topic("cityops/readings/quiet", i)) for i in range(3)] == [True] * 3
    await sink.flush()
    assert await store.count_dead_letters() == 23
    stats = sink.stats
    assert (stats.added, stats.written, stats.capped, stats.dropped) == (20_003, 23, 19_980, 0)
    assert len(capped) == 19_980 and capped[0].where == "cityops/readings/noisy"
    # The next window brings a new allowance.
    clock.now += 60.0
    assert sink.add_nowait(from_topic("cityops/readings/noisy", 0))


async def test_past_max_sources_new_sources_share_one_allowance():
    sink = DeadLetterSink(MemoryStore(), per_source=2, window_s=60.0, max_sources=3,
                          clock=Clock(RECENT))
    for n in range(3):
        assert sink.add_nowait(from_topic(f"t/{n}", 0))
    # Random topics cannot each bring an allowance of their own.
    kept = [sink.add_nowait(from_topic(f"t/random-{n}", 0)) for n in range(50)]
    assert kept.count(True) == 2 and sink.stats.capped == 48
    assert len(sink._windows) <= 4  # memory is bounded too


async def test_the_retention_sweep_deletes_old_letters():
    store = MemoryStore()
    clock = Clock(RECENT)
    sink = DeadLetterSink(store, retention_s=7 * 86400.0, clock=clock)
    await store.add_dead_letters([from_topic("t/old", n, at=RECENT - 8 * 86400 + n)
                                  for n in range(12_000)])
    await store.add_dead_letters([from_topic("t/new", 0, at=RECENT - 86400)])
    assert await sink.sweep() == 12_000  # in pieces of a bounded size
    assert [d.where for d in await store.list_dead_letters()] == ["t/new"]
    assert sink.stats.expired == 12_000
    clock.now += 6 * 86400 + 1
    assert await sink.sweep() == 1 and await store.count_dead_letters() == 0


async def test_the_background_worker_sweeps_at_start():
    store = MemoryStore()
    await store.add_dead_letters([from_topic("t/old", 0, at=RECENT - 30 * 86400)])
    sink = DeadLetterSink(store, interval_s=0.01, clock=Clock(RECENT))
    await sink.start()
    try:
        await eventually(lambda: sink.stats.expired == 1)
    finally:
        await sink.stop()
    assert await store.count_dead_letters() == 0


async def test_a_flood_of_garbage_through_a_node_is_capped_and_counted_in_metrics(
        tmp_path, grid_pack, live_node):
    async with live_node(grid_pack, tmp_path / "d", dead_letters_per_source=10) as live:
        sink = live.node.dead_letters
        for i in range(2000):
            sink.add_nowait(from_topic("cityops/readings/noise-000001", i))
        sink.add_nowait(from_topic("cityops/readings/noise-000002", 0))
        await sink.flush()
        assert await live.node.store.count_dead_letters() == 11
        async with live.client(await live.key("admin")) as c:
            metrics = (await c.get("/metrics")).text
    assert 'cityops_dead_letters_capped_total{source="mqtt"} 1990.0' in metrics
    assert 'cityops_dead_letters{state="capped"} 1990.0' in metrics
