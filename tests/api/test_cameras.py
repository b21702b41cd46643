"""The camera registry and camera evidence over HTTP: a Frigate event replayed into a real node
(real Mosquitto, a real snapshot server) leaves a case whose evidence, and whose camera's
newest snapshot, this node serves itself; keys see cameras as they see devices."""

from __future__ import annotations

from tests.ingest.frigate_kit import SnapshotServer, camera_city, jpeg, message, obj, running, until


async def test_cameras_their_snapshots_and_a_cases_camera_evidence(tmp_path, live_node,
                                                                   mqtt_url):
    camera_pack = camera_city()
    server = SnapshotServer()
    try:
        async with running(live_node, camera_pack, tmp_path, mqtt_url, server.url) as rig:
            live, clock = rig.live, rig.clock
            admin = await live.key("admin")
            t = clock.now
            await rig.publish(message("new", obj("ev-9", "gate_3", "car", t, t,
                                                 ["fire_lane_gate_3"])))
            await rig.wait(330)
            (alert,) = [a for a in await rig.alerts(admin) if a["rule"] == "fire_lane.blocked"]
            case = await until(
                lambda: live.node.store.incident_of_report(f"alert:{alert['id']}"))
            async with live.client(admin) as c:
                async def evidence():
                    body = (await c.get(f"/api/v1/incidents/{case}/camera-evidence")).json()
                    return body["items"] if body["items"] and \
                        body["items"][0].get("snapshot_url") else None

                (item,) = await until(evidence, what="the evidence with its snapshot")
                page = (await c.get("/api/v1/cameras", params={"limit": 2})).json()
                rest = (await c.get("/api/v1/cameras", params={"cursor": page["next"]})).json()
                lane = (await c.get("/api/v1/cameras/cam-lane")).json()
                image = await c.get(item["snapshot_url"])
                newest = await c.get("/api/v1/cameras/cam-lane/snapshot")
                none_yet = await c.get("/api/v1/cameras/cam-road/snapshot")
                noise = await c.get(f"/api/v1/cameras/{camera_pack.devices[0].id}")
                bad_name = await c.get("/api/v1/camera-snapshots/nope.jpg")
            town = lane["areas"]["town"]
            other = next(a.code for a in camera_pack.areas
                         if a.level.value == "town" and a.code != town)
            here, there = await live.key("operator", town), await live.key("operator", other)
            async with live.client(here) as c:
                seen_here = [x["id"] for x in (await c.get("/api/v1/cameras")).json()["items"]]
                image_here = await c.get(item["snapshot_url"])
            async with live.client(there) as c:
                seen_there = [x["id"] for x in (await c.get("/api/v1/cameras")).json()["items"]]
                lane_there = await c.get("/api/v1/cameras/cam-lane")
                image_there = await c.get(item["snapshot_url"])
    finally:
        server.close()
    assert item["event"] == "vehicle_in_fire_lane" and item["source_event"] == "ev-9"
    assert item["clip_url"] == f"{server.url}/api/events/ev-9/clip.mp4"
    assert item["snapshot_url"].startswith("/api/v1/camera-snapshots/")
    assert image.status_code == 200 and image.content == jpeg()
    assert image.headers["content-type"] == "image/jpeg"
    assert newest.status_code == 200 and newest.content == jpeg()
    assert none_yet.status_code == 404 and noise.status_code == 404
    assert bad_name.status_code == 404
    listed = [x["id"] for x in page["items"] + rest["items"]]
    assert sorted(listed) == ["cam-kerb", "cam-lane", "cam-road", "cam-square"]
    assert lane["streams"] == {"main": "rtsp://10.0.0.9:554/gate_3",
                               "web": "https://video.example/gate_3.m3u8"}
    assert lane["frigate"]["camera"] == "gate_3"
    assert lane["frigate"]["zones"] == [{"name": "fire_lane_gate_3",
                                         "events": ["vehicle_in_fire_lane"]}]
    assert lane["last_event"]["event"] == "vehicle_in_fire_lane"
    assert lane["last_event"]["dwell_s"] >= 330
    assert lane["last_snapshot"]["url"] == item["snapshot_url"]
    assert lane["last_snapshot"]["incident"] == case
    assert "cam-lane" in seen_here and "cam-lane" not in seen_there
    assert image_here.status_code == 200
    assert lane_there.status_code == 404 and image_there.status_code == 404
