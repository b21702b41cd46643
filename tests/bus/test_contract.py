"""The Bus contract: what every bus does, checked against the in-process bus and the NATS
JetStream bus alike. What differs stays out: the in-process bus gives every subscriber every
message, JetStream shares a group's messages among its workers (test_nats.py)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from cityops.bus.memory import MemoryBus
from cityops.bus.nats import NatsBus

from . import samples
from .samples import TEST_OPTIONS, collect, drop_stream, stream_name


@pytest.fixture(params=["memory", pytest.param("nats", marks=pytest.mark.services)])
async def bus(request):
    if request.param == "memory":
        memory = MemoryBus()
        yield memory
        await memory.close()
        return
    url = request.getfixturevalue("nats_url")
    stream = stream_name()
    nats_bus = await NatsBus.open(url, **{**TEST_OPTIONS, "stream": stream})
    try:
        yield nats_bus
    finally:
        await nats_bus.close()
        await drop_stream(url, stream)


def ids(messages: list) -> list[str]:
    return [e.alert.id for events in messages for e in events]


async def test_messages_published_after_subscribing_arrive_in_order(bus):
    sub = bus.subscribe("alerts")
    sent = [samples.events(i) for i in range(6)]
    for events in sent:
        await bus.publish("alerts", events)
    assert ids(await collect(sub, 6)) == ids(sent)


async def test_reading_rows_arrive_whole_and_each_device_in_order(bus):
    sub = bus.subscribe("readings")
    sent = [samples.batch(1000, devices=400, seed=s, start_us=samples.T0_US + s * 10**9)
            for s in range(3)]
    for batch in sent:
        await bus.publish("readings", batch)
    got: list = []
    while sum(map(len, got)) < 3000:
        more = await sub.get_batch(64, timeout=5)
        assert more, "rows went missing"
        got += more
    assert sum(map(len, got)) == 3000  # a bus may re-cut batches, never add or drop rows
    assert samples.rows_of(got) == samples.rows_of(sent)
    device = np.concatenate([b.device for b in got])
    ts = np.concatenate([b.ts for b in got])
    order = np.argsort(device, kind="stable")
    same = device[order][1:] == device[order][:-1]
    assert (np.diff(ts[order])[same] > 0).all()  # per device, in publication order


async def test_incident_changes_arrive_as_published(bus):
    sub = bus.subscribe("incidents")
    changes = [samples.incident_change(i) for i in range(3)]
    for change in changes:
        await bus.publish("incidents", change)
    assert await collect(sub, 3) == changes


async def test_get_batch_takes_at_most_max_items_and_times_out_empty(bus):
    sub = bus.subscribe("alerts")
    assert await sub.get_batch(10, timeout=0.05) == []
    for i in range(5):
        await bus.publish("alerts", samples.events(i))
    got: list = []
    while len(got) < 5:
        batch = await sub.get_batch(2, timeout=5)
        assert 1 <= len(batch) <= 2
        got += batch
    assert await sub.get_batch(10, timeout=0.2) == []


async def test_has_room_depths_and_close(bus):
    sub = bus.subscribe("alerts", maxsize=8)
    assert bus.has_room("alerts") and bus.has_room("readings")
    await bus.publish("alerts", samples.events(1))
    for _ in range(100):  # the NATS bus fills its local buffer a moment after the ack
        if bus.depths() == {"alerts#0": 1}:
            break
        await asyncio.sleep(0.02)
    assert bus.depths() == {"alerts#0": 1}
    assert sub.depth() == 1
    await sub.close()
    assert bus.depths() == {}
    await bus.publish("alerts", samples.events(2))  # nobody listening: nothing queued here
    assert bus.depths() == {}
