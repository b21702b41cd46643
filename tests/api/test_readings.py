import asyncio
import contextlib
import threading
import time

import msgspec
import pytest



def reading(device="noise-000001", ts=None, value=55.0, **extra):
    return {"device_id": device, "ts": time.time() - 10 if ts is None else ts, "value": value,
            **extra}


async def post(client, rows, **kw):
    return await client.post("/api/v1/readings", content=msgspec.json.encode(rows), **kw)


async def count(live):
    admin = await live.key("admin")
    async with live.client(admin) as c:
        return (await c.get("/api/v1/history/count")).json()["readings"]


async def test_a_batch_with_bad_readings_stores_the_good_ones(live):
    key = await live.key("device")
    now = time.time()
    rows = [reading(ts=now - 3), reading("ghost"), reading(value=999), reading(ts=now - 2),
            reading(ts="not a time"), {"device_id": "air_quality-000000", "ts": now,
                                       "values": {"pm25": 12, "pm10": 20}}]
    async with live.client(key) as c:
        r = await post(c, rows)
    assert r.status_code == 202
    body = r.json()
    assert body["accepted"] == 3 and body["duplicates"] == 0
    assert [x["index"] for x in body["rejected"]] == [1, 2, 4]
    assert "unknown device 'ghost'" in body["rejected"][0]["error"]
    assert "outside the valid range" in body["rejected"][1]["error"]
    assert "RFC3339" in body["rejected"][2]["error"]
    assert await count(live) == 4  # three readings, one of them with two channels


async def test_duplicates_are_idempotent(live):
    key = await live.key("device")
    rows = [reading(ts=time.time() - i) for i in range(5)]
    async with live.client(key) as c:
        first = (await post(c, rows)).json()
        again = (await post(c, rows)).json()
    assert first == {"accepted": 5, "duplicates": 0, "rejected": []}
    assert again == {"accepted": 5, "duplicates": 5, "rejected": []}
    assert await count(live) == 5


async def test_ndjson_and_single_objects(live):
    key = await live.key("device")
    now = time.time()
    lines = b"\n".join(msgspec.json.encode(reading(ts=now - i)) for i in range(3)) + b"\n{bad}\n"
    async with live.client(key) as c:
        r = await c.post("/api/v1/readings", content=lines,
                         headers={"Content-Type": "application/x-ndjson"})
        one = await post(c, reading(ts=now - 10))
    assert r.status_code == 202 and r.json()["accepted"] == 3
    assert r.json()["rejected"][0]["index"] == 3
    assert one.json()["accepted"] == 1


async def test_a_body_that_is_not_readings_is_a_400_with_the_reason(live):
    key = await live.key("device")
    async with live.client(key) as c:
        r = await c.post("/api/v1/readings", content=b"hello")
    assert r.status_code == 400
    assert "not a JSON array of readings" in r.json()["error"]


async def test_a_body_over_the_limit_is_413(tmp_path, grid_pack, live_node):
    async with live_node(grid_pack, tmp_path / "d", max_body_bytes=1000) as live:
        key = await live.key("device")
        async with live.client(key) as c:
            r = await post(c, [reading(ts=time.time() - i) for i in range(100)])
            small = await post(c, [reading()])
    assert r.status_code == 413 and "over the limit of 1000 bytes" in r.json()["error"]
    assert small.status_code == 202


async def test_keys_decide_who_may_write(live):
    async with live.client() as anonymous:
        assert (await post(anonymous, [reading()])).status_code == 401
    async with live.client("co_made_up") as wrong:
        assert (await post(wrong, [reading()])).status_code == 401
    citizen = await live.key("citizen")
    async with live.client(citizen) as c:
        r = await post(c, [reading()])
    assert r.status_code == 403 and "citizen key may not" in r.json()["error"]


async def test_a_gateway_key_writes_only_for_devices_in_its_area(live):
    device = live.node.registry.get("noise-000001")
    inside = device.areas.village
    other = next(d for d in live.node.registry.devices
                 if d.kind == "noise" and d.areas.village != inside)
    key = await live.key("device", inside)
    async with live.client(key) as c:
        r = await post(c, [reading(device.id), reading(other.id)])
    assert r.json()["accepted"] == 1
    assert r.json()["rejected"][0] == {"index": 1, "error": f"device {other.id!r} is outside "
                                                           f"this key's area {inside}"}


@contextlib.contextmanager
def stalled_disk(history):
    """Hold the history writer inside its write, as a stalled disk would."""
    gate = threading.Event()
    segment = history._segment
    original = segment.append

    def slow(frames):
        gate.wait(30)
        original(frames)

    segment.append = slow
    try:
        yield
    finally:
        gate.set()
        segment.append = original


async def test_overload_answers_429_with_retry_after(tmp_path, grid_pack, live_node):
    async with live_node(grid_pack, tmp_path / "d", max_in_flight=1) as live:
        key = await live.key("device")
        async with live.client(key) as c:
            with stalled_disk(live.node.history):
                first = asyncio.create_task(post(c, [reading()]))
                await asyncio.sleep(0.3)
                r = await post(c, [reading(ts=time.time() - 50)])
            assert (await first).status_code == 202
            after = await post(c, [reading(ts=time.time() - 50)])
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "1"
    assert "in progress" in r.json()["error"]
    assert after.status_code == 202  # it recovers once the stall is over


async def test_a_stalled_disk_answers_503_with_retry_after(tmp_path, grid_pack, live_node):
    async with live_node(grid_pack, tmp_path / "d", history_queue=1) as live:
        key = await live.key("device")
        now = time.time()
        async with live.client(key) as c:
            with stalled_disk(live.node.history):
                held = asyncio.create_task(post(c, [reading(ts=now - 1)]))  # in the writer
                await asyncio.sleep(0.3)
                queued = asyncio.create_task(post(c, [reading(ts=now - 2)]))  # fills the queue
                await asyncio.sleep(0.3)
                r = await post(c, [reading(ts=now - 3)])
            assert (await held).status_code == 202
            assert (await queued).status_code == 202
    assert r.status_code == 503 and int(r.headers["Retry-After"]) >= 1
    assert "history writer queue is full" in r.json()["error"]


async def test_many_concurrent_batches_all_land(live):
    key = await live.key("device")
    devices = [d.id for d in live.node.registry.devices if d.kind == "noise"]
    now = int(time.time()) - 100
    async with live.client(key) as c:
        replies = await asyncio.gather(*(
            post(c, [reading(d, ts=now + k) for d in devices]) for k in range(20)))
    assert all(r.status_code == 202 for r in replies)
    assert await count(live) == 20 * len(devices)


async def test_health_is_open_and_metrics_need_a_key(live):
    async with live.client() as c:
        assert (await c.get("/healthz")).status_code == 200
        assert (await c.get("/metrics")).status_code == 401
    async with live.client(await live.key("operator")) as c:
        assert (await c.get("/metrics")).status_code == 200
    async with live.client(await live.key("operator", "990001001")) as c:
        assert (await c.get("/metrics")).status_code == 403  # the whole node's figures


async def test_metrics_open_where_the_setting_says(tmp_path, grid_pack, live_node):
    async with live_node(grid_pack, tmp_path / "d", open_status=True) as node, \
            node.client() as c:
        assert (await c.get("/metrics")).status_code == 200


async def test_multichannel_readings_count_as_readings(live):
    key = await live.key("device")
    now = time.time() - 5
    aq = {"device_id": "air_quality-000000", "ts": now, "values": {"pm25": 10, "pm10": 20}}
    async with live.client(key) as c:
        first = (await post(c, [aq])).json()
        again = (await post(c, [aq, {**aq, "ts": now + 1}])).json()
    async with live.client(await live.key("admin")) as c:
        metrics = (await c.get("/metrics")).text
    assert first == {"accepted": 1, "duplicates": 0, "rejected": []}
    assert again == {"accepted": 2, "duplicates": 1, "rejected": []}
    assert 'cityops_readings_accepted_total{source="http"} 2.0' in metrics
    assert 'cityops_values_stored_total{source="http"} 4.0' in metrics


async def test_deep_nesting_is_a_400_not_a_server_error(live):
    """Found in issue 12: a batch nested 100,000 deep, or a reading whose (unused)
    attributes nest 10,000 deep, answered 500 (the decoder's recursion error escaped)."""
    key = await live.key("device")
    deep_attributes = (b'[{"device_id": "noise-000001", "ts": 1, "value": 50, "attributes": '
                       + b'{"a": ' * 10_000 + b"1" + b"}" * 10_000 + b"}]")
    async with live.client(key) as c:
        arrays = await c.post("/api/v1/readings", content=b"[" * 100_000)
        closed = await c.post("/api/v1/readings",
                              content=b"[" * 100_000 + b"]" * 100_000)
        attributes = await c.post("/api/v1/readings", content=deep_attributes)
        one = await c.post("/api/v1/readings", content=deep_attributes[1:-1])
        lines = await c.post("/api/v1/readings",
                             content=msgspec.json.encode(reading()) + b"\n"
                             + deep_attributes[1:-1] + b"\n",
                             headers={"Content-Type": "application/x-ndjson"})
    for r in (arrays, closed, attributes, one):
        assert r.status_code == 400, r.text
        assert "nested too deeply" in r.json()["error"]
    # NDJSON lines stand alone: the deep one is refused by its line number, the other kept.
    assert lines.status_code == 202
    assert lines.json()["accepted"] == 1
    assert lines.json()["rejected"][0]["index"] == 1
    assert "nested too deeply" in lines.json()["rejected"][0]["error"]


@pytest.mark.parametrize("when", ["-1e309", "1e309", "nan", "inf", "1e300", "-1e300"])
async def test_a_time_that_is_no_time_is_a_400(live, when):
    """Found in issue 12: `from=-1e309` (minus infinity as a float) answered 500."""
    key = await live.key("operator")
    async with live.client(key) as c:
        history = await c.get("/api/v1/devices/noise-000001/readings", params={"from": when})
        until = await c.get("/api/v1/devices/noise-000001/readings", params={"to": when})
    for r in (history, until):
        assert r.status_code == 400, r.text
        assert when in r.json()["error"]


def _stalling(size: int, go: asyncio.Event):
    """A batch of `size` bytes (an empty array padded with blanks) whose sender sends `[` and
    then nothing until `go` is set, as a slow or hostile sender holds a connection open."""
    async def body():
        yield b"["
        await go.wait()
        yield b" " * (size - 2) + b"]"
    return body()


async def _hold(client, go: asyncio.Event, n: int, size: int, settled):
    """`n` stalling batches of one key; returns once `settled()` says the node has seen them."""
    tasks = [asyncio.create_task(client.post(
        "/api/v1/readings", content=_stalling(size, go),
        headers={"Content-Length": str(size)})) for _ in range(n)]
    for _ in range(500):
        if settled(tasks):
            break
        await asyncio.sleep(0.01)
    return tasks


@pytest.mark.parametrize("slots,held,size", [(8, 4, 1 << 20), (64, 6, 4 << 20)],
                         ids=["slots", "bytes"])
async def test_slow_senders_of_one_key_cannot_take_every_ingest_slot(tmp_path, grid_pack,
                                                                      live_node, slots, held,
                                                                      size):
    """Found in issue 12: 80 connections sending only `[` held all ingest slots, and every
    other sender, with any key, got 429. A key may hold at most half of the ingest slots
    (4 of 8 here) and three quarters of the 32 MiB in progress (6 of its 4 MiB batches); the
    rest stays for everyone else."""
    async with live_node(grid_pack, tmp_path / "d", max_in_flight=slots) as live:
        ingestor = live.node.ingestor
        hostile, other = await live.key("device"), await live.key("device")
        go = asyncio.Event()
        async with live.client(hostile) as h, live.client(other) as c:
            tasks = await _hold(h, go, 12, size,
                                lambda ts: sum(t.done() for t in ts) == 12 - held)
            refused = [t for t in tasks if t.done()]
            assert ingestor.in_flight == held
            assert [t.result().status_code for t in refused] == [429] * (12 - held)
            assert all(t.result().headers["Retry-After"] == "1" for t in refused)
            r = await post(c, [reading(ts=time.time() - 20)])
            assert r.status_code == 202 and r.json()["accepted"] == 1
            go.set()
            taken = await asyncio.gather(*(t for t in tasks if t not in refused))
    assert [r.status_code for r in taken] == [202] * held
    assert ingestor.in_flight == 0 and ingestor.in_flight_bytes == 0


async def test_one_stalled_batch_of_the_largest_size_blocks_no_other_key(tmp_path, grid_pack,
                                                                         live_node):
    """A batch declared at the body limit (16 MiB) that stalls holds half of the bytes budget,
    never all of it: another key's batch still goes in while it stalls."""
    async with live_node(grid_pack, tmp_path / "d") as live:
        ingestor = live.node.ingestor
        hostile, other = await live.key("device"), await live.key("device")
        go = asyncio.Event()
        limit = live.node.settings.max_body_bytes
        async with live.client(hostile) as h, live.client(other) as c:
            [stalled] = await _hold(h, go, 1, limit, lambda ts: ingestor.in_flight == 1)
            assert ingestor.in_flight_bytes == limit
            r = await post(c, [reading(ts=time.time() - 20)])
            assert r.status_code == 202 and r.json()["accepted"] == 1
            go.set()
            assert (await stalled).status_code == 202
    assert ingestor.in_flight == 0 and ingestor.in_flight_bytes == 0


async def test_a_keys_requests_in_progress_are_capped(tmp_path, grid_pack, live_node):
    async with live_node(grid_pack, tmp_path / "d", in_flight_per_key=3) as live:
        ingestor = live.node.ingestor
        hostile, other = await live.key("device"), await live.key("device")
        go = asyncio.Event()
        async with live.client(hostile) as h, live.client(other) as c:
            tasks = await _hold(h, go, 10, 100, lambda ts: sum(t.done() for t in ts) == 7)
            refused = [t.result() for t in tasks if t.done()]
            assert ingestor.in_flight == 3
            assert [r.status_code for r in refused] == [429] * 7
            assert "requests in progress" in refused[0].json()["error"]
            assert (await post(c, [reading(ts=time.time() - 20)])).status_code == 202
            go.set()
            await asyncio.gather(*tasks)
    assert ingestor.in_flight == 0


async def test_a_stalled_body_is_cut_at_the_deadline(tmp_path, grid_pack, live_node):
    async with live_node(grid_pack, tmp_path / "d", body_timeout_s=0.5) as live:
        ingestor = live.node.ingestor
        key = await live.key("device")
        go = asyncio.Event()
        async with live.client(key) as c:
            [stalled] = await _hold(c, go, 1, 1000, lambda ts: ingestor.in_flight == 1)
            assert ingestor.in_flight == 1  # it holds its place while it stalls ...
            r = await stalled  # ... until the deadline cuts it
            go.set()
            assert r.status_code == 408 and "did not arrive within 0.5 s" in r.json()["error"]
            assert ingestor.in_flight == 0 and ingestor.in_flight_bytes == 0
            assert (await post(c, [reading(ts=time.time() - 20)])).status_code == 202
