"""Sessions: keys that expire, and a live stream that ends when its key stops being good.

The finding this answers: "A revoked key's open live stream goes on delivering new cases."
The stream is read straight off the ASGI app (its messages as they are sent), so each event
is seen when the server sends it; the re-check interval is shortened instead of waited out.
"""

from __future__ import annotations

import asyncio
import json

import msgspec

from cityops.api.live import LiveHub
from cityops.auth import KeyResolver, new_key
from cityops.store.memory import MemoryStore
from tests.clock_kit import Clock

from .conftest import HERE

NOW = 1_800_000_000.0
ELSEWHERE = {"lat": 31.25, "lon": 121.55}  # the grid city's other town


class Stream:
    """GET /api/v1/live as a browser holds it open, with its events parsed as they come."""

    def __init__(self, app, secret: str) -> None:
        self._sent: asyncio.Queue = asyncio.Queue()
        self._gone = asyncio.Event()
        self._asked = False
        self._buffer = b""
        self.status: int | None = None
        self.ended = False
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
            "scheme": "http", "path": "/api/v1/live", "raw_path": b"/api/v1/live",
            "query_string": b"", "root_path": "", "client": ("127.0.0.1", 40000),
            "server": ("cityops.test", 80),
            "headers": [(b"host", b"cityops.test"), (b"accept", b"text/event-stream"),
                        (b"authorization", f"Bearer {secret}".encode())],
        }
        self.task = asyncio.create_task(app(scope, self._receive, self._sent.put))

    async def _receive(self) -> dict:
        if not self._asked:
            self._asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await self._gone.wait()
        return {"type": "http.disconnect"}

    async def next_event(self, timeout: float = 10.0) -> tuple[str, dict] | None:
        """The next event (comments skipped), or None once the server ended the stream."""
        while b"\n\n" not in self._buffer:
            if self.ended:
                return None
            message = await asyncio.wait_for(self._sent.get(), timeout)
            if message["type"] == "http.response.start":
                self.status = message["status"]
                continue
            self._buffer += message.get("body", b"")
            self.ended = not message.get("more_body", False)
        block, self._buffer = self._buffer.split(b"\n\n", 1)
        kind, data = "", {}
        for line in block.decode().split("\n"):
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
        return (kind, data) if kind else await self.next_event(timeout)

    async def until(self, wanted, timeout: float = 10.0) -> tuple[str, dict] | None:
        """Events until one for which `wanted(kind, body)` holds; None if the stream ended."""
        while (event := await self.next_event(timeout)) is not None:
            if wanted(*event):
                return event
        return None

    async def close(self) -> None:
        self._gone.set()
        if not self.task.done():
            self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


def has_case(title: str):
    return lambda kind, body: kind == "delta" and any(
        i["title"] == title for i in body.get("incidents", []))


async def open_case(client, title: str, where: dict = HERE) -> None:
    r = await client.post("/api/v1/incidents", json={
        "category": "event.sanitation.exposed_garbage", "title": title, **where})
    assert r.status_code in (200, 201), r.text


async def tick_until(stream: Stream, hub: LiveHub, wanted, rounds: int = 50):
    """The hub's ticks made by hand: each sends what changed, then the stream is read."""
    for _ in range(rounds):
        hub._tick()
        try:
            event = await stream.next_event(timeout=0.2)
        except TimeoutError:
            continue
        if event is None or wanted(*event):
            return event
    raise AssertionError("the stream never sent what was wanted")


async def test_a_revoked_keys_open_stream_ends_and_sends_no_new_case(tmp_path, city, live_node):
    async with live_node(city, tmp_path / "data", notify_url="memory:") as live:
        # Ticks only by hand, so that what is sent after the revocation is up to the test.
        hub = live.app.state.live = LiveHub(live.node, tick_s=3600)
        hub.recheck_s = 0.05
        viewer_key = await live.key("operator")
        viewer_id = (await live.node.keys.resolve(viewer_key)).key_id
        stream = Stream(live.app, viewer_key)
        try:
            kind, _ = await stream.next_event()
            assert stream.status == 200 and kind == "snapshot"
            async with live.client(await live.key("operator")) as other:
                await open_case(other, "before the revocation")
                assert await tick_until(stream, hub, has_case("before the revocation"))
                # Revoked in the store, as `cityops keys revoke` in another process does:
                # this node's resolver cache still holds the key as good.
                assert await live.node.store.revoke_key(viewer_id)
                # Far from the first, so that it is a case of its own, not a merged report.
                await open_case(other, "after the revocation", ELSEWHERE)
                seen = []
                while True:
                    try:
                        event = await stream.next_event(timeout=1.0)
                    except TimeoutError:
                        hub._tick()  # the stream is still open: send it the new case
                        continue
                    if event is None:
                        break
                    seen.append(event)
                    if has_case("after the revocation")(*event):
                        break
                    hub._tick()
            assert not any(has_case("after the revocation")(*e) for e in seen)
            assert seen and seen[-1][0] == "closed"
            assert "revoked" in seen[-1][1]["reason"]
            assert hub.viewers == set()
        finally:
            await stream.close()


async def test_a_stream_ends_when_its_key_expires(tmp_path, city, live_node):
    async with live_node(city, tmp_path / "data", notify_url="memory:") as live:
        live.app.state.live = LiveHub(live.node, tick_s=0.02, recheck_s=0.05)
        clock = live.node.keys.clock = Clock(NOW)
        secret, record = new_key("operator", None, "night shift", expires_at=NOW + 3600,
                                 now=NOW)
        await live.node.store.add_key(record)
        stream = Stream(live.app, secret)
        try:
            assert (await stream.next_event())[0] == "snapshot"
            async with live.client(secret) as c:
                me = (await c.get("/api/v1/me")).json()
                assert me["expires_at"] == NOW + 3600
                clock.now = NOW + 3600
                assert (await c.get("/api/v1/me")).status_code == 401
            assert await stream.until(lambda kind, body: kind == "closed") is not None
            assert await stream.next_event() is None
        finally:
            await stream.close()


async def test_the_resolver_treats_an_expired_key_as_unknown_even_from_its_cache():
    store = MemoryStore()
    clock = Clock(NOW)
    resolver = KeyResolver(store, ttl=3600.0, clock=clock)
    secret, record = new_key("device", None, "gateway", expires_at=NOW + 60, now=NOW)
    await store.add_key(record)
    who = await resolver.resolve(secret)
    assert who is not None and who.expires_at == NOW + 60
    clock.now = NOW + 59.9
    assert await resolver.resolve(secret) == who
    clock.now = NOW + 60
    assert await resolver.resolve(secret) is None  # from the cache: it never asked again
    assert await resolver.resolve_fresh(secret) is None


async def test_resolve_fresh_and_forget_see_past_the_cache():
    store = MemoryStore()
    resolver = KeyResolver(store, ttl=3600.0)
    secret, record = new_key("operator")
    await store.add_key(record)
    assert await resolver.resolve(secret) is not None
    await store.revoke_key(record.id)
    assert await resolver.resolve(secret) is not None  # cached for its ttl
    assert await resolver.resolve_fresh(secret) is None
    await store.add_key(msgspec.structs.replace(record, id="k_again", hash="0" * 64))
    second, other = new_key("operator")
    await store.add_key(other)
    assert await resolver.resolve(second) is not None
    await store.revoke_key(other.id)
    resolver.forget(other.id)
    assert await resolver.resolve(second) is None


def test_an_expiry_must_lie_ahead():
    import pytest

    with pytest.raises(ValueError, match="future"):
        new_key("operator", expires_at=NOW - 1, now=NOW)
