"""Frigate replayed into a real node: event sequences written from Frigate's documented format
are published on the real Mosquitto (a topic prefix of each test's own), snapshots are served
by a real HTTP server the test starts, and time is the test's clock. What must hold: a car
dwelling in a fire lane past five minutes opens a fire-lane case with the snapshot as evidence
and the clip linked, and `end` clears it; each camera event type raises its rule; malformed
events and unknown cameras are dead letters with the reason; an NVR that is down loses neither
the case nor, once it is back, the snapshot."""

from __future__ import annotations

import msgspec
import pytest

from cityops.act.camera_evidence import EvidenceBook, file_of
from tests.ingest.frigate_kit import (
    SnapshotServer,
    camera_city,
    free_port,
    jpeg,
    message,
    obj,
    running,
    until,
)


@pytest.fixture
def camera_pack():
    return camera_city()


@pytest.fixture
def snapshots():
    server = SnapshotServer()
    yield server
    server.close()

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
