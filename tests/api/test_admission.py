"""Admission under overload (found by `cityops bench overload`): a batch holds its place from
before its body is read, a byte budget bounds what is in progress, and a node whose event loop
runs late refuses at once instead of letting requests wait unread in the kernel."""

from __future__ import annotations

import asyncio
import time

import msgspec


def body(n: int, ts: float) -> bytes:
    return msgspec.json.encode([{"device_id": "noise-000001", "ts": ts + i * 1e-3, "value": 50.0}
                                for i in range(n)])


async def post(client, content, **kw):
    return await client.post("/api/v1/readings", content=content, **kw)


async def test_a_body_still_being_read_holds_its_place(tmp_path, grid_pack, live_node):
    """Before, admission counted only batches already decoded: every connection passed it
    while its body was still arriving, then read and decoded it, and was refused only then;
    memory grew with the connections and the work was thrown away."""
    async with live_node(grid_pack, tmp_path / "d", max_in_flight=1) as live:
        key = await live.key("device")
        first = body(20, time.time() - 100)
        more = asyncio.Event()

        async def slowly():
            yield first[:10]
            await more.wait()
            yield first[10:]

        async with live.client(key) as c:
            slow = asyncio.create_task(post(c, slowly(),
                                            headers={"Content-Length": str(len(first))}))
            for _ in range(100):
                if live.node.ingestor.in_flight:
                    break
                await asyncio.sleep(0.01)
            assert live.node.ingestor.in_flight == 1  # admitted, its body not yet read
            r = await post(c, body(1, time.time() - 50))
            assert r.status_code == 429 and r.headers["Retry-After"] == "1"
            more.set()
            assert (await slow).status_code == 202
            assert (await post(c, body(1, time.time() - 50))).status_code == 202
    assert live.node.ingestor.in_flight == 0 and live.node.ingestor.in_flight_bytes == 0


async def test_bytes_in_progress_are_bounded_but_one_batch_always_goes(tmp_path, grid_pack,
                                                                       live_node):
    async with live_node(grid_pack, tmp_path / "d") as live:
        ingestor = live.node.ingestor
        ingestor.max_in_flight_bytes = 1000
        key = await live.key("device")
        big = body(100, time.time() - 100)  # several times the budget
        held = asyncio.Event()

        async def slowly():
            yield big[:10]
            await held.wait()
            yield big[10:]

        async with live.client(key) as c:
            slow = asyncio.create_task(post(c, slowly(),
                                            headers={"Content-Length": str(len(big))}))
            for _ in range(100):
                if ingestor.in_flight:
                    break
                await asyncio.sleep(0.01)
            assert ingestor.in_flight_bytes == len(big)  # alone, it went in
            r = await post(c, body(1, time.time() - 50))
            assert r.status_code == 429 and "MiB of ingest batches in progress" in r.text
            held.set()
            assert (await slow).status_code == 202
            assert (await post(c, body(1, time.time() - 50))).status_code == 202
        assert ingestor.in_flight_bytes == 0


async def test_a_late_event_loop_refuses_with_retry_after(tmp_path, grid_pack, live_node):
    async with live_node(grid_pack, tmp_path / "d") as live:
        key = await live.key("device")
        async with live.client(key) as c:
            assert (await post(c, body(1, time.time() - 60))).status_code == 202
            await asyncio.sleep(0.2)  # the lag heartbeat is beating
            # Something holds the loop for 0.6 s (in a node under overload: decoding,
            # detection); requests arriving meanwhile have waited that long unread.
            asyncio.get_running_loop().call_soon(time.sleep, 0.6)
            await asyncio.sleep(0)
            r = await post(c, body(1, time.time() - 40))
            assert r.status_code == 503, r.text
            assert r.headers["Retry-After"] == "1"
            assert "event loop runs" in r.json()["error"]
            await asyncio.sleep(0.3)  # caught up
            assert (await post(c, body(1, time.time() - 30))).status_code == 202
