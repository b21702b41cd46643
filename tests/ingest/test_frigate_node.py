"""Frigate replayed into a real node: event sequences written from Frigate's documented format
are published on the real Mosquitto (a topic prefix of each test's own), snapshots are served
by a real HTTP server the test starts, and time is the test's clock. What must hold: a car
dwelling in a fire lane past five minutes opens a fire-lane case with the snapshot as evidence
and the clip linked, and `end` clears it; each camera event type raises its rule; malformed
events and unknown cameras are dead letters with the reason; an NVR that is down loses neither
the case nor, once it is back, the snapshot."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import aiomqtt
import msgspec
import pytest

from cityops.act.camera_evidence import EvidenceBook, file_of
from cityops.domain.city import Device
from cityops.packs.grid import generate as grid_city
from tests.clock_kit import Clock
from tests.ingest.frigate_kit import SnapshotServer, free_port, jpeg, mapping_yaml, message, obj

LAT, LON = 31.2, 121.5


@pytest.fixture
def camera_pack():
    pack = grid_city(devices={"noise": 2})
    cams = [Device("cam-lane", "camera", LAT + 0.01, LON + 0.01, meta={"site": "fire_lane"}),
            Device("cam-square", "camera", LAT - 0.01, LON + 0.01),
            Device("cam-kerb", "camera", LAT - 0.011, LON + 0.01),
            Device("cam-road", "camera", LAT + 0.02, LON - 0.02)]
    return msgspec.structs.replace(pack, devices=[*pack.devices, *cams])


@pytest.fixture
def snapshots():
    server = SnapshotServer()
    yield server
    server.close()


async def until(check, timeout=15.0, what="condition"):
    """Poll `check` (sync or async) until it answers something truthy, within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: not met within {timeout} s")


class Rig:
    def __init__(self, live, prefix: str, clock: Clock) -> None:
        self.live = live
        self.node = live.node
        self.prefix = prefix
        self.clock = clock

    async def publish(self, *payloads: bytes) -> None:
        before = self.node.frigate.intake.stats.handled
        async with aiomqtt.Client("127.0.0.1", 1883) as pub:
            for payload in payloads:
                await pub.publish(f"{self.prefix}/events", payload, qos=1)
        await until(lambda: self.node.frigate.intake.stats.handled >= before + len(payloads),
                    what="messages taken")
        await self.settle()

    async def settle(self) -> None:
        await self.node.detect.caught_up()
        await self.node.act.intake.caught_up()

    async def wait(self, seconds: float) -> None:
        """Time passes on the node's clock; the intake reports the dwell as it would."""
        self.clock.now += seconds
        await self.node.frigate.intake.tick()
        await self.settle()

    async def alerts(self, secret) -> list[dict]:
        async with self.live.client(secret) as c:
            return (await c.get("/api/v1/alerts", params={"limit": 1000})).json()["items"]

    async def case_of(self, alert: dict, what: str = "the case") -> str:
        """The case the alert opened, once the act side has opened it."""
        return await until(lambda: self.node.store.incident_of_report(f"alert:{alert['id']}"),
                           what=what)


@contextlib.asynccontextmanager
async def running(live_node, pack, tmp_path, mqtt_url, url, **settings):
    """A node with the Frigate mapping (snapshots at `url`) on a topic prefix of its own, its
    intake subscribed, on the test's clock."""
    clock = Clock(time.time())
    prefix = f"frigate-test-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "frigate.yaml"
    path.write_bytes(mapping_yaml(prefix=prefix, url=url))
    node = live_node(pack, tmp_path / "data", clock=clock, frigate_file=path,
                     frigate_mqtt_url=mqtt_url, frigate_retry_s=0.05, **settings)
    async with node as live:
        await live.node.frigate.intake.wait_ready(10)
        yield Rig(live, prefix, clock)


async def test_a_car_in_the_fire_lane_opens_a_case_with_its_snapshot_and_end_clears(
        tmp_path, camera_pack, live_node, mqtt_url, snapshots):
    async with running(live_node, camera_pack, tmp_path, mqtt_url, snapshots.url) as rig:
        live, clock = rig.live, rig.clock
        admin = await live.key("admin")
        t0 = clock.now
        zone = ["fire_lane_gate_3"]
        car = obj("1750000000.1-abc123", "gate_3", "car", t0, t0, zone, stationary=False)
        await rig.publish(message("new", car))
        await rig.wait(120)
        parked = obj("1750000000.1-abc123", "gate_3", "car", t0, t0 + 125, zone,
                     stationary=True)
        await rig.publish(message("update", parked, car))
        await rig.wait(120)
        assert not [a for a in await rig.alerts(admin) if a["rule"] == "fire_lane.blocked"]
        await rig.wait(90)  # 5 min 30 s
        (alert,) = [a for a in await rig.alerts(admin) if a["rule"] == "fire_lane.blocked"]
        assert alert["subject"] == "cam-lane" and alert["active"]
        case = await rig.case_of(alert)
        book = EvidenceBook(live.node.store, clock)

        async def fetched():
            items = await book.of_case(case)
            return items if items and items[0].snapshot else None

        (evidence,) = await until(fetched, what="the snapshot kept")
        assert evidence.source_event == "1750000000.1-abc123"
        assert evidence.event == "vehicle_in_fire_lane" and evidence.label == "car"
        assert evidence.clip_url == f"{snapshots.url}/api/events/1750000000.1-abc123/clip.mp4"
        assert file_of(live.node.settings.data_dir, evidence.snapshot).read_bytes() == jpeg()
        assert snapshots.asked == ["/api/events/1750000000.1-abc123/snapshot.jpg"]
        async with live.client(admin) as c:
            found = (await c.get(f"/api/v1/incidents/{case}")).json()
        assert found["category"] == "event.street_order.fire_lane_blocked"

        gone = obj("1750000000.1-abc123", "gate_3", "car", t0, clock.now + 1, zone,
                   end=clock.now + 1)
        clock.now += 1
        await rig.publish(message("end", gone, parked))
        (alert,) = [a for a in await rig.alerts(admin) if a["rule"] == "fire_lane.blocked"]
        assert not alert["active"]


# (event published, how long it must last, the rule it raises)
TYPES = [
    ("stall", "road_7", [], 630, "street_stall.on_carriageway"),
    ("truck", "road_7", [], 5, "muck.uncovered"),
    ("garbage", "road_7", [], 930, "garbage.garbage_exposed"),
    ("fire", "road_7", [], 70, "smoke.seen_on_camera"),
    ("car", "square_cam", ["kerb"], 630, "parking.parked"),
]


async def test_each_camera_event_type_raises_its_rule(tmp_path, camera_pack, live_node,
                                                      mqtt_url, snapshots):
    async with running(live_node, camera_pack, tmp_path, mqtt_url, snapshots.url) as rig:
        live, clock = rig.live, rig.clock
        admin = await live.key("admin")
        for n, (label, camera, zones, lasts, _) in enumerate(TYPES):
            t = clock.now
            sub = ["uncovered", 0.9] if label == "truck" else None
            seen = obj(f"ev-{n}", camera, label, t, t, zones, sub_label=sub, score=0.9)
            await rig.publish(message("new", seen))
            await rig.wait(lasts)
            await rig.publish(message("end", obj(f"ev-{n}", camera, label, t, clock.now,
                                                 zones, end=clock.now, sub_label=sub)))
            await rig.wait(60)
        # A crowd: three people in the square (the kit's min_count), for 3 min 10 s.
        t = clock.now
        await rig.publish(*(message("new", obj(f"p-{i}", "square_cam", "person", t, t,
                                               ["square"])) for i in range(3)))
        await rig.wait(190)
        raised = {a["rule"] for a in await rig.alerts(admin)}
    assert raised == {rule for *_, rule in TYPES} | {"crowd.gathering"}


async def test_malformed_events_and_unknown_cameras_are_dead_letters(
        tmp_path, camera_pack, live_node, mqtt_url, snapshots):
    async with running(live_node, camera_pack, tmp_path, mqtt_url, snapshots.url) as rig:
        live, clock, prefix = rig.live, rig.clock, rig.prefix
        admin = await live.key("admin")
        t = clock.now
        await rig.publish(
            b"not json at all",
            msgspec.json.encode({"type": "new", "after": {"id": "x", "camera": "gate_3"}}),
            msgspec.json.encode({"type": "new", "after": {**obj("y", "gate_3", "car", t),
                                                          "start_time": "yesterday"}}),
            message("new", obj("z", "back_yard", "car", t, t, ["drive"])),
            message("new", obj("ok", "gate_3", "car", t, t, ["fire_lane_gate_3"])),
        )
        async with live.client(admin) as c:
            async def letters():
                body = (await c.get("/api/v1/dead-letters")).json()
                found = [d for d in body["items"] if d["source"] == "frigate"]
                return found if len(found) >= 4 else None

            found = await until(letters, what="four dead letters")
        stats = live.node.frigate.intake.stats
    reasons = sorted(d["reason"] for d in found)
    assert len(found) == 4
    assert any("not valid JSON" in r for r in reasons)
    assert any("missing required field `label`" in r for r in reasons)
    assert any("start_time" in r for r in reasons)
    assert any("unknown camera 'back_yard'" in r for r in reasons)
    assert all(d["where"] == f"{prefix}/events" for d in found)
    assert any("back_yard" in d["payload"] for d in found)
    assert stats.messages == 5 and stats.dead_letters == 4 and stats.accepted == 1


async def test_a_snapshot_server_that_is_down_loses_neither_case_nor_snapshot(
        tmp_path, camera_pack, live_node, mqtt_url):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    async with running(live_node, camera_pack, tmp_path, mqtt_url, url,
                       frigate_snapshot_attempts=12) as rig:
        live, clock = rig.live, rig.clock
        t = clock.now
        await rig.publish(message("new", obj("e-down", "gate_3", "car", t, t,
                                             ["fire_lane_gate_3"])))
        await rig.wait(330)
        alerts = await rig.alerts(await live.key("admin"))
        (alert,) = [a for a in alerts if a["rule"] == "fire_lane.blocked"]
        case = await rig.case_of(alert, "the case, opened while the NVR is down")
        book = EvidenceBook(live.node.store, clock)

        async def tried_twice():
            items = await book.of_case(case)
            return items[0] if items and items[0].attempts >= 2 else None

        evidence = await until(tried_twice, what="two failed attempts")
        assert not evidence.snapshot and "Connect" in evidence.error
        assert evidence.clip_url.endswith("/api/events/e-down/clip.mp4")  # linked meanwhile
        server = SnapshotServer(port)  # the NVR is back
        try:
            async def fetched():
                items = await book.of_case(case)
                return items[0] if items[0].snapshot else None

            evidence = await until(fetched, timeout=60, what="the snapshot, once back")
        finally:
            server.close()
        assert evidence.attempts >= 3 and not evidence.error
        assert server.asked == ["/api/events/e-down/snapshot.jpg"]
