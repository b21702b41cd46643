"""The live feed, photo upload and field position at the HTTP level (no browser)."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from cityops.bus.messages import IncidentChange
from cityops.bus.subjects import INCIDENTS
from cityops.api.live import LiveHub
from cityops.domain.access import Principal, Role, Scope
from cityops.domain.incidents.model import Incident

from .conftest import TOWN2, web_city

PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c63f8cfc0f00f0004850180848a98c8"
                    "0000000049454e44ae426082")


class Events:
    """Server-sent events parsed off a streamed response."""

    def __init__(self, response) -> None:
        self.chunks = response.iter_text()
        self.buffer = ""

    def take(self, wanted: int, timeout: float = 10.0) -> list[tuple[str, dict]]:
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < wanted and time.monotonic() < deadline:
            while "\n\n" not in self.buffer:
                self.buffer += next(self.chunks)
            block, self.buffer = self.buffer.split("\n\n", 1)
            kind = data = None
            for line in block.split("\n"):
                if line.startswith("event: "):
                    kind = line[7:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
            if kind:
                out.append((kind, data))
        return out


def test_the_stream_sends_a_snapshot_then_only_what_changed(web_node):
    web_node.place_everyone()
    headers = {"Authorization": f"Bearer {web_node.keys['operator']}",
               "Accept": "text/event-stream"}
    with httpx.Client(base_url=web_node.url, timeout=15) as c, \
            c.stream("GET", "/api/v1/live", headers=headers) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = Events(r)
        ((kind, snap),) = events.take(1)
        assert kind == "snapshot" and snap["q"] == 100_000
        assert snap["staff"]["id"] == ["san-01", "san-02", "cm-01", "cm-02", "cm-03"]
        assert len(snap["vehicles"]["i"]) == 3
        web_node.send([{"device_id": "gps-000002", "ts": time.time(),
                        "values": {"lat": 31.1612, "lon": 121.4734}}])
        for kind, body in events.take(20, timeout=5):
            if kind == "delta" and "staff" in body:
                break
        else:
            pytest.fail("no delta with the moved person")
    # Only the one who moved, as integers of 1e-5 degree.
    assert body["staff"] == {"i": [2], "lat": [3116120], "lon": [12147340]}
    assert "vehicles" not in body


def test_a_scoped_stream_holds_only_its_area_and_a_plain_get_is_one_snapshot(web_node):
    with web_node.client("operator_town2") as c:
        snap = c.get("/api/v1/live").json()  # no Accept: text/event-stream
    assert snap["type"] == "snapshot" and snap["me"]["scope"] == TOWN2
    assert snap["staff"]["id"] == ["cm-03"]
    assert all(i["town"] == TOWN2 for i in snap["incidents"])
    assert all(code.startswith(TOWN2) or TOWN2.startswith(code)
               for code in snap["kpi"]["health"])
    with httpx.Client(base_url=web_node.url) as c:
        assert c.get("/api/v1/live").status_code == 401


def _incident(n: int) -> Incident:
    return Incident(id=f"inc-{n:06d}", category="event.sanitation.garbage", kind="event",
                    title=f"case {n}", source="inspector", reported_at=1e9, updated_at=1e9 + n)


async def test_a_slow_viewer_never_holds_up_the_bus_and_is_resynced(live_node, tmp_path):
    async with live_node(web_city(), tmp_path / "data", notify_url="memory:") as live:
        node = live.node
        hub = LiveHub(node, tick_s=3600, queue_frames=2, bus_queue=64)
        await hub.ensure_started()
        try:
            viewer = hub.join(Principal("k_test", Role.ADMIN, Scope()))
            # Far more changes than any queue holds, published while nobody reads: the desk's
            # publish must go through at once every time (the hub only folds them).
            started = time.monotonic()
            for n in range(5000):
                assert node.bus.has_room(INCIDENTS)
                await node.bus.publish(INCIDENTS, IncidentChange("collect", _incident(n)))
                if n % 32 == 0:  # the desk awaits its store between changes; so does this
                    await asyncio.sleep(0)
            assert time.monotonic() - started < 5
            for round_ in range(5):  # five coalesced frames for a queue of two
                await node.bus.publish(INCIDENTS, IncidentChange("collect", _incident(round_)))
                await asyncio.sleep(0.01)
                hub._tick()
            assert viewer.resync and viewer.dropped >= 3
            assert hub.stats["dropped_updates"] == viewer.dropped
            snap = await hub.snapshot_body(viewer, "resync")
            assert snap["dropped"] == viewer.dropped
        finally:
            await hub.stop()


async def test_photos_and_the_phones_position(live_node, tmp_path):
    from cityops.auth import new_key

    async with live_node(web_city(), tmp_path / "data", notify_url="memory:") as live:
        keys = {}
        for label, role, scope, name in (("op", "operator", None, ""),
                                         ("town2", "operator", TOWN2, ""),
                                         ("san", "field", None, "san-01"),
                                         ("cm", "field", None, "cm-01"),
                                         ("dev", "device", None, "")):
            secret, record = new_key(role, scope, name)
            await live.node.store.add_key(record)
            keys[label] = live.client(secret)
        op, san = keys["op"], keys["san"]
        await keys["dev"].post("/api/v1/readings", json=[
            {"device_id": "gps-000000", "ts": time.time(), "values": {"lat": 31.15, "lon": 121.45}}])
        inc = (await op.post("/api/v1/incidents", json={
            "category": "event.sanitation.exposed_garbage", "lat": 31.151, "lon": 121.451})).json()
        await op.post(f"/api/v1/incidents/{inc['id']}/actions/register")
        inc = (await op.post(f"/api/v1/incidents/{inc['id']}/actions/dispatch")).json()
        order = inc["orders"][0]["id"]
        assert (await op.post(f"/api/v1/work-orders/{order}/assign")).status_code == 200
        url = f"/api/v1/work-orders/{order}/photos"

        r = await san.post(url, content=PNG, headers={"Content-Type": "image/png"})
        assert r.status_code == 201, r.text
        photo, photo_id = r.json()["url"], r.json()["id"]
        got = await op.get(photo)
        assert got.status_code == 200 and got.content == PNG
        assert got.headers["content-type"] == "image/png"
        assert (await keys["town2"].get(photo)).status_code == 404
        r = await keys["cm"].post(url, content=PNG, headers={"Content-Type": "image/png"})
        assert r.status_code in (403, 404)  # not this person's order
        r = await san.post(url, content=b"hello", headers={"Content-Type": "text/plain"})
        assert r.status_code == 415
        r = await san.post(url, content=b"GIF89a....", headers={"Content-Type": "image/png"})
        assert r.status_code == 400
        r = await san.post(url, content=b"\x89PNG" + bytes(8 << 20),
                           headers={"Content-Type": "image/png"})
        assert r.status_code == 413
        r = await san.post(f"/api/v1/work-orders/{order}/actions/acknowledge")
        r = await san.post(f"/api/v1/work-orders/{order}/actions/finish",
                           json={"photos": [photo_id]})
        assert r.status_code == 200 and r.json()["orders"][0]["photos"] == [photo]

        r = await san.post("/api/v1/staff/me/position",
                           json={"lat": 31.1533, "lon": 121.4522, "accuracy": 8})
        assert r.status_code == 202, r.text
        me = (await san.get("/api/v1/staff/me")).json()
        assert (me["id"], me["lat"], me["lon"]) == ("san-01", 31.1533, 121.4522)
        r = await san.post("/api/v1/staff/me/position",
                           json={"lat": 31.15, "lon": 121.45, "accuracy": 2000})
        assert r.status_code == 422
        assert (await op.post("/api/v1/staff/me/position",
                              json={"lat": 31.15, "lon": 121.45})).status_code == 403
        for c in keys.values():
            await c.aclose()
