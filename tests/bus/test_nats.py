"""The NATS JetStream bus against a real server: the shared one on 4222 for most tests (each in
a stream of its own), a private one for the tests that pause, stop or restart it."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap

import nats
import numpy as np
import pytest

from cityops.bus.subjects import codec_for
from cityops.bus.nats import BusUnavailable, NatsBus, partition_of, share

from . import samples
from .samples import collect

pytestmark = pytest.mark.services


def alert_ids(messages: list) -> list[str]:
    return [e.alert.id for events in messages for e in events]


# -- round trips ------------------------------------------------------------------------------


async def test_every_message_type_makes_the_round_trip(nats_buses):
    bus = await nats_buses()
    readings = bus.subscribe("readings")
    rejections = bus.subscribe("rejections")
    alerts = bus.subscribe("alerts")
    incidents = bus.subscribe("incidents")
    batch = samples.batch(5000)
    rejected = samples.batch(40, seed=2, source="rejections")
    events = samples.events(1, count=3)
    change = samples.incident_change(1)
    await bus.publish("readings", batch)
    await bus.publish("rejections", rejected)
    await bus.publish("alerts", events)
    await bus.publish("incidents", change)

    got = await collect(readings, 8)  # a 5,000-row batch over 60,000 devices hits all 8
    assert len(got) == 8
    assert samples.rows_of(got) == samples.rows_of([batch])
    assert all(b.source == "http" for b in got)
    assert samples.rows_of(await collect(rejections, 1, timeout=2)) == samples.rows_of([rejected])
    (back,) = await collect(alerts, 1)
    assert [e.alert for e in back] == [e.alert for e in events]
    assert [e.change for e in back] == ["raised", "updated", "updated"]
    assert await collect(incidents, 1) == [change]


async def test_a_batch_larger_than_a_nats_message_is_split_and_arrives_whole(nats_buses):
    bus = await nats_buses(partitions=1)
    sub = bus.subscribe("readings")
    big = samples.batch(200_000)  # 4.2 MB; the server takes 1 MiB per message
    await bus.publish("readings", big)
    assert bus.stats["messages"] >= 5
    got = await collect(sub, bus.stats["messages"])
    assert sum(len(b) for b in got) == 200_000
    np.testing.assert_array_equal(np.concatenate([b.ts for b in got]), big.ts)  # in order


# -- partitions -------------------------------------------------------------------------------


async def test_a_device_always_goes_to_the_same_partition(nats_buses):
    bus = await nats_buses()
    subs = {p: bus.subscribe("readings", partitions=[p]) for p in range(8)}
    for seed in range(4):  # the same 300 devices in four batches
        await bus.publish("readings", samples.batch(1000, devices=300, seed=seed))
    seen: dict[int, set[int]] = {}
    rows = 0
    for p, sub in subs.items():
        for b in await collect(sub, 4, timeout=3):
            assert (partition_of(b.device, 8) == p).all()
            for d in np.unique(b.device).tolist():
                seen.setdefault(d, set()).add(p)
            rows += len(b)
    assert rows == 4000
    assert all(len(parts) == 1 for parts in seen.values())
    # The subject carries the partition: read the stored messages straight from the stream.
    nc = await nats.connect(bus.url)
    try:
        psub = await nc.jetstream().pull_subscribe(f"{bus.prefix}.readings.3", stream=bus.stream)
        stored = await psub.fetch(4, timeout=2)
        assert stored and all(m.subject == f"{bus.prefix}.readings.3" for m in stored)
    finally:
        await nc.close()


# -- publishing -------------------------------------------------------------------------------


async def test_publish_returns_only_once_jetstream_acknowledged_every_part(nats_buses):
    bus = await nats_buses()
    parts = 0
    for i in range(5):
        batch = samples.batch(200, seed=i)
        await bus.publish("readings", batch)
        parts += len(np.unique(partition_of(batch.device, 8)))
        # Stored and acknowledged by the time publish returned: nothing left in flight.
        assert bus.stats["acked"] == bus.stats["messages"] == parts
        assert bus.in_flight == 0
        assert await bus.stream_messages() == parts
    await bus.publish("alerts", samples.events(1))
    assert bus.stats["acked"] == parts + 1 and bus.stats["duplicates"] == 0


async def test_has_room_tracks_the_in_flight_bound(private_nats, nats_buses):
    """The private server is paused (SIGSTOP): it keeps the connection but acknowledges
    nothing, so parts stay in flight until it resumes."""
    bus = await nats_buses(private_nats.url, max_in_flight=4, ack_timeout=20.0)
    await bus.publish("alerts", samples.events(0))
    assert bus.has_room("alerts") and bus.has_room("readings")
    private_nats.pause()
    try:
        first = [asyncio.create_task(bus.publish("alerts", samples.events(i))) for i in (1, 2, 3)]
        await until(lambda: bus.in_flight == 3, first)
        assert bus.has_room("alerts")
        fourth = asyncio.create_task(bus.publish("alerts", samples.events(4)))
        await until(lambda: bus.in_flight == 4, [fourth])
        assert not bus.has_room("alerts")  # the bound is reached
        fifth = asyncio.create_task(bus.publish("alerts", samples.events(5)))
        await asyncio.sleep(0.5)
        assert bus.in_flight == 4  # the fifth waits for a slot instead of adding to the pile
        assert not any(t.done() for t in [*first, fourth, fifth])  # no ack, no return
    finally:
        private_nats.resume()
    await asyncio.wait_for(asyncio.gather(*first, fourth, fifth), 15)
    assert bus.has_room("alerts") and bus.in_flight == 0
    assert bus.stats["acked"] == 6
    assert await bus.stream_messages() == 6


async def until(condition, tasks=(), timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        for task in tasks:
            if task.done():
                task.result()  # raises what it raised
                raise AssertionError("a publish returned while the server was paused")
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_publish_gives_up_with_bus_unavailable_when_the_server_stays_away(
        private_nats, nats_buses):
    bus = await nats_buses(private_nats.url, ack_timeout=0.3, publish_timeout=1.5,
                           reconnect_wait_max=0.2)
    await bus.publish("alerts", samples.events(1))
    assert bus.healthy
    private_nats.stop()
    with pytest.raises(BusUnavailable):
        await bus.publish("alerts", samples.events(2))
    assert not bus.healthy and not bus.status()["connected"]
    assert bus.in_flight == 0 and bus.stats["failed"] == 1


async def test_an_unreachable_server_fails_start_with_bus_unavailable():
    with pytest.raises(BusUnavailable):
        await NatsBus.open("nats://127.0.0.1:1", connect_timeout=1.0)


# -- consuming --------------------------------------------------------------------------------


async def test_two_workers_of_a_group_split_the_messages_without_duplicates(nats_buses):
    a_bus, b_bus = await nats_buses(), await nats_buses()  # two processes' connections
    a = a_bus.subscribe("readings", group="detect", partitions=share(0, 2))
    b = b_bus.subscribe("readings", group="detect", partitions=share(1, 2))
    await a.ready(5)
    await b.ready(5)
    sent = [samples.batch(500, devices=2000, seed=s) for s in range(10)]
    for batch in sent:
        await a_bus.publish("readings", batch)
    got_a = await collect(a, 40, timeout=3)
    got_b = await collect(b, 40, timeout=3)
    rows_a, rows_b = samples.rows_of(got_a), samples.rows_of(got_b)
    assert rows_a | rows_b == samples.rows_of(sent)
    assert not rows_a & rows_b
    assert sum(map(len, got_a)) + sum(map(len, got_b)) == 5000  # no row twice
    devices_a = set(np.concatenate([x.device for x in got_a]).tolist())
    devices_b = set(np.concatenate([x.device for x in got_b]).tolist())
    assert not devices_a & devices_b  # each device's windows live in one worker


async def test_workers_sharing_one_partition_still_get_each_message_once(nats_buses):
    a_bus, b_bus = await nats_buses(), await nats_buses()
    a = a_bus.subscribe("alerts", group="desk", maxsize=4)
    b = b_bus.subscribe("alerts", group="desk", maxsize=4)
    await a.ready(5)
    await b.ready(5)
    for i in range(40):
        await a_bus.publish("alerts", samples.events(i, count=1))
    got: list = []

    async def work(sub):
        while True:
            batch = await sub.get_batch(2, timeout=1.5)
            if not batch:
                return
            got.extend(alert_ids(batch))
            await asyncio.sleep(0.01)  # both keep pulling while the other works

    await asyncio.gather(work(a), work(b))
    assert sorted(got) == sorted(alert_ids([samples.events(i, count=1) for i in range(40)]))
    assert a.stats["delivered"] > 0 and b.stats["delivered"] > 0


async def test_every_group_gets_every_message(nats_buses):
    bus = await nats_buses()
    detect = bus.subscribe("alerts", group="intake")
    views = bus.subscribe("alerts", group="views")
    await bus.publish("alerts", samples.events(1))
    await bus.publish("alerts", samples.events(2))
    assert alert_ids(await collect(detect, 2)) == alert_ids(await collect(views, 2))


async def test_a_new_group_starts_now_and_an_old_one_resumes(nats_buses):
    bus = await nats_buses(start_slack=0.0)
    await bus.publish("alerts", samples.events(1))  # before anyone listened
    first = bus.subscribe("alerts", group="late")
    await first.ready(5)
    await bus.publish("alerts", samples.events(2))
    assert alert_ids(await collect(first, 1)) == alert_ids([samples.events(2)])
    await first.close()  # acknowledges what it was handed
    await bus.publish("alerts", samples.events(3))  # while the group is away
    again = bus.subscribe("alerts", group="late")
    assert alert_ids(await collect(again, 1)) == alert_ids([samples.events(3)])
    assert await again.get_batch(10, timeout=0.5) == []


DYING_WORKER = textwrap.dedent("""
    import asyncio, sys
    from cityops.bus.nats import NatsBus

    async def main():
        bus = await NatsBus.open(sys.argv[1], stream=sys.argv[2], ack_wait=float(sys.argv[3]),
                                 max_bytes=int(sys.argv[4]), max_age=float(sys.argv[5]),
                                 fetch_wait=float(sys.argv[6]))
        sub = bus.subscribe("alerts", group="workers", maxsize=8)
        got = await sub.get_batch(2, timeout=20)
        print(",".join(e.alert.id for events in got for e in events), flush=True)
        await asyncio.sleep(3600)  # working on it ... until SIGKILL, without acking

    asyncio.run(main())
""")


async def test_a_worker_that_dies_before_acking_has_its_messages_redelivered(nats_buses):
    ack_wait = 2.0
    bus = await nats_buses(ack_wait=ack_wait, fetch_wait=0.5)
    # Create the group's consumer first, so the worker resumes from here.
    probe = bus.subscribe("alerts", group="workers")
    await probe.ready(5)
    await probe.close()
    sent = [samples.events(i, count=1) for i in range(6)]
    for events in sent:
        await bus.publish("alerts", events)

    worker = subprocess.Popen(
        [sys.executable, "-c", DYING_WORKER, bus.url, bus.stream, str(ack_wait),
         str(bus.max_bytes), str(bus.max_age), str(bus.fetch_wait)],
        stdout=subprocess.PIPE, text=True)
    try:
        line = await asyncio.wait_for(asyncio.to_thread(worker.stdout.readline), 30)
    finally:
        worker.send_signal(signal.SIGKILL)  # dies mid-batch: no ack, no nak, no goodbye
        worker.wait(10)
    handed = line.strip().split(",")
    assert handed == alert_ids(sent[:2])  # what it was working on when it died

    survivor = bus.subscribe("alerts", group="workers")
    loop = asyncio.get_running_loop()
    started = loop.time()
    got = alert_ids(await collect(survivor, 6, timeout=ack_wait * 5))
    assert sorted(got) == sorted(alert_ids(sent))  # nothing lost, none twice
    assert survivor.stats["redelivered"] >= 2  # at least the two it had in hand
    assert loop.time() - started < ack_wait * 4


async def test_close_acks_what_was_handed_and_gives_back_the_rest(nats_buses):
    bus = await nats_buses(ack_wait=30.0)
    first = bus.subscribe("alerts", group="g", maxsize=16)
    await first.ready(5)
    sent = [samples.events(i, count=1) for i in range(5)]
    for events in sent:
        await bus.publish("alerts", events)
    (head,) = await first.get_batch(1, timeout=5)
    for _ in range(50):
        if first.status()["buffered"] == 4:
            break
        await asyncio.sleep(0.05)
    assert first.status()["buffered"] == 4  # delivered to this worker, never handed over
    await first.close()
    second = bus.subscribe("alerts", group="g")
    # Given back (nak) as soon as the closed subscription's last pull request has expired
    # (fetch_wait), not after ack_wait; the one in hand was acked.
    got = await collect(second, 4, timeout=5)
    assert sorted(alert_ids(got)) == alert_ids(sent[1:])  # redeliveries need not keep order
    assert alert_ids([head]) == alert_ids(sent[:1])
    assert await second.get_batch(10, timeout=0.5) == []


async def test_the_local_buffer_is_bounded_in_bytes_too(nats_buses):
    """Big batches fill the buffer by size long before its count: the pull requests ask for
    no more than fits (`max_bytes`), and reaching that is the normal end of a request."""
    bus = await nats_buses(partitions=1, buffer_bytes=2 << 20)
    sub = bus.subscribe("readings", maxsize=1024)
    await sub.ready(5)
    sent = [samples.batch(5000, seed=i) for i in range(40)]
    for batch in sent:
        await bus.publish("readings", batch)
    size = len(codec_for("readings").encode(sent[0]))
    for _ in range(100):
        if sub.status()["buffered_bytes"] >= (2 << 20) - 2 * size:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)  # more would have come by now, were it asked for
    status = sub.status()
    assert (2 << 20) - 2 * size <= status["buffered_bytes"] <= 2 << 20
    assert status["buffered"] < 40
    got = await collect(sub, 40)
    assert samples.rows_of(got) == samples.rows_of(sent)
    assert sub.stats["pull_errors"] == 0


async def test_an_undecodable_message_is_dropped_and_the_next_one_delivered(nats_buses):
    bus = await nats_buses()
    sub = bus.subscribe("alerts")
    await sub.ready(5)
    nc = await nats.connect(bus.url)
    try:
        await nc.jetstream().publish(f"{bus.prefix}.alerts.0", b"\xc1 not msgpack")
    finally:
        await nc.close()
    await bus.publish("alerts", samples.events(1))
    assert alert_ids(await collect(sub, 1)) == alert_ids([samples.events(1)])
    assert sub.stats["undecodable"] == 1


async def test_depths_and_status(nats_buses):
    bus = await nats_buses()
    sub = bus.subscribe("alerts", maxsize=4)
    await sub.ready(5)
    for i in range(3):
        await bus.publish("alerts", samples.events(i))
    for _ in range(50):
        if bus.depths() == {"alerts#0": 3}:
            break
        await asyncio.sleep(0.05)
    assert bus.depths() == {"alerts#0": 3}
    status = bus.status()
    assert status["healthy"] and status["connected"] and status["stream"] == bus.stream
    assert status["subscriptions"][0]["buffered"] == 3
    await sub.close()
    assert bus.depths() == {}


# -- the server restarts ----------------------------------------------------------------------


@pytest.mark.parametrize("how", ["restart", "crash"])
async def test_nats_restarted_mid_run(private_nats, nats_buses, how):
    """Publishing and consuming go on across a server restart (SIGTERM, or SIGKILL for a
    crash): what was acknowledged before is delivered, a publish made while the server is
    down completes once it is back, and so does everything after."""
    bus = await nats_buses(private_nats.url, ack_timeout=1.0, publish_timeout=60.0,
                           reconnect_wait_max=0.5, fetch_wait=1.0)
    sub = bus.subscribe("alerts", group="desk", maxsize=8)
    readings = bus.subscribe("readings", group="detect")
    await sub.ready(5)
    await readings.ready(5)
    acknowledged: list[str] = []
    for i in range(20):
        events = samples.events(i, count=1)
        await bus.publish("alerts", events)
        acknowledged += alert_ids([events])
    batch = samples.batch(2000)
    await bus.publish("readings", batch)
    got = alert_ids(await collect(sub, 5, max_items=5))  # some consumed, the rest waits

    private_nats.stop(signal.SIGKILL if how == "crash" else signal.SIGTERM)
    for _ in range(100):
        if not bus.connected:
            break
        await asyncio.sleep(0.02)
    assert not bus.connected
    during = samples.events(100, count=1)
    pending = asyncio.create_task(bus.publish("alerts", during))
    await asyncio.sleep(1.0)
    assert not pending.done()  # not acknowledged, so not returned
    assert not bus.healthy
    private_nats.start()
    await asyncio.wait_for(pending, 30)
    acknowledged += alert_ids([during])
    for i in range(101, 111):
        events = samples.events(i, count=1)
        await bus.publish("alerts", events)
        acknowledged += alert_ids([events])

    deadline = asyncio.get_running_loop().time() + 30
    while set(got) != set(acknowledged) and asyncio.get_running_loop().time() < deadline:
        got += alert_ids(await sub.get_batch(64, timeout=1.0))
    assert set(got) == set(acknowledged)  # nothing acknowledged is lost
    rows = samples.rows_of(await collect(readings, 8, timeout=10))
    assert rows == samples.rows_of([batch])
    assert bus.stats["reconnects"] >= 1
    for _ in range(50):
        if bus.healthy:
            break
        await asyncio.sleep(0.1)
    assert bus.healthy
    # At least once: a repeat is possible (an ack lost with the server); report, don't hide.
    print(f"{how}: {len(got)} deliveries of {len(acknowledged)} messages, "
          f"{bus.stats['duplicates']} publish repeats dropped by the stream")


def test_settings_that_cannot_work_are_refused():
    with pytest.raises(ValueError, match="fetch_wait"):
        NatsBus(ack_wait=5.0, fetch_wait=5.0)
    with pytest.raises(ValueError):
        NatsBus(stream="CITY.OPS")  # a dot would split the subject hierarchy
    with pytest.raises(ValueError):
        NatsBus(partitions=0)
