import asyncio

import pytest

from cityops.bus.memory import MemoryBus


async def test_every_subscriber_gets_every_message_in_order():
    bus = MemoryBus()
    a = bus.subscribe("readings")
    b = bus.subscribe("readings")
    other = bus.subscribe("alerts")
    for i in range(5):
        await bus.publish("readings", i)
    assert await a.get_batch(10) == [0, 1, 2, 3, 4]
    assert await b.get_batch(2) == [0, 1]
    assert await b.get_batch(10) == [2, 3, 4]
    assert other.depth() == 0


async def test_a_full_subscriber_holds_the_publisher_back():
    bus = MemoryBus()
    sub = bus.subscribe("readings", maxsize=2)
    await bus.publish("readings", 1)
    await bus.publish("readings", 2)
    assert not bus.has_room("readings")
    blocked = asyncio.create_task(bus.publish("readings", 3))
    await asyncio.sleep(0.05)
    assert not blocked.done()  # bounded: it waits rather than grow
    assert await sub.get_batch(1) == [1]
    await asyncio.wait_for(blocked, 1)
    assert await sub.get_batch(10) == [2, 3]
    assert bus.has_room("readings")


async def test_get_batch_times_out_empty_and_close_unsubscribes():
    bus = MemoryBus()
    sub = bus.subscribe("readings")
    assert await sub.get_batch(10, timeout=0.01) == []
    await sub.close()
    await bus.publish("readings", 1)  # no subscriber left: nothing queued anywhere
    assert bus.depths() == {}


@pytest.mark.parametrize("subject", ["readings", "nobody-listens"])
async def test_depths_name_each_subscriber(subject):
    bus = MemoryBus()
    bus.subscribe("readings")
    await bus.publish(subject, "x")
    assert sum(bus.depths().values()) == (1 if subject == "readings" else 0)
