"""The issue's case: a citizen's "manhole cover missing" request and a sensor's "manhole
tilted" alert at the same manhole became two cases, so two crews went. Related categories of
the city's table (manhole: cover missing / facility damaged) now merge into one case that
says why; an inspector naming the sensor's device joins it too; an operator can split a
wrongly merged report back out into a case of its own."""

from __future__ import annotations

import math

import pytest

from cityops.act.desk import incident_id_for
from cityops.domain.alerts import Alert, AlertEvent
from tests.open311.conftest import BASE, MONDAY_10, VILLAGE, Clock, open311_city

MANHOLE = (31.15, 121.45)  # Town 1, Village 1 of the grid city
COVER = "component-public_facility-manhole_cover"
DAMAGED = "component.public_facility.damaged"


def north(metres: float) -> tuple[float, float]:
    return MANHOLE[0] + metres / 111_195.0, MANHOLE[1]


def tilted(live, at: float, *, device: str = "mh-0042", place=MANHOLE,
           rule: str = "components.manhole_displaced") -> AlertEvent:
    lat, lon = place
    areas = live.node.city.resolve(lat, lon)
    return AlertEvent("raised", Alert(
        id=f"tilt-{device}-{int(at)}", scenario="components", rule=rule, category=DAMAGED,
        severity="major", urgency="high", departments=["city_management"], subject=device,
        title="Manhole cover tilted or displaced", lat=lat, lon=lon, areas=areas,
        cell=live.node.city.cell_of(lat, lon), first_seen=at, last_seen=at, value=14.0,
        group=f"{DAMAGED}|{areas.village}"))


@pytest.fixture
def city():
    return open311_city()


async def citizen_request(live, place, **fields) -> str:
    key = await live.key("citizen", name="c-000001")
    async with live.client() as c:
        r = await c.post(f"{BASE}/requests.json", data={
            "api_key": key, "service_code": COVER, "lat": str(place[0]),
            "long": str(place[1]), "description": "Manhole cover missing, a hole in the path",
            **fields})
    assert r.status_code == 200, r.text
    return r.json()[0]["service_request_id"]


async def test_a_citizen_report_and_a_sensor_alert_at_one_manhole_make_one_case(
        tmp_path, city, live_node):
    clock = Clock(MONDAY_10)
    async with live_node(city, tmp_path / "data", clock=clock, notify_url="memory:") as live:
        request_id = await citizen_request(live, MANHOLE)
        case_id = incident_id_for(f"open311:{request_id}")
        clock.now += 120
        # The sensor on the same manhole, 6 m off by its own coordinates.
        await live.node.act.intake.take(tilted(live, clock.now, place=north(6)))
        op = live.client(await live.key("operator"))
        cases = (await op.get("/api/v1/incidents")).json()["items"]
        assert [c["id"] for c in cases] == [case_id]  # one case: one crew goes
        (case,) = cases
        assert case["category"] == "component.public_facility.manhole_cover"  # the first's
        assert case["reports"] == 2
        detail = (await op.get(f"/api/v1/incidents/{case_id}")).json()
        merge = next(e for e in detail["timeline"] if e["action"] == "merge")
        assert merge["reason"] == "same manhole: 6 m from a citizen's request (Open311)"
        assert merge["detail"]["category"] == DAMAGED
        assert detail["alerts"] == [f"tilt-mh-0042-{int(clock.now)}"]

        # An inspector 80 m off (a wrong fix) who names the sensor's device: the same device.
        clock.now += 60
        lat, lon = north(80)
        r = await op.post("/api/v1/incidents", json={
            "category": DAMAGED, "lat": lat, "lon": lon, "device": "mh-0042",
            "description": "Cover gone, frame cracked"})
        assert r.status_code == 200 and r.json()["merged"] and r.json()["id"] == case_id
        detail = (await op.get(f"/api/v1/incidents/{case_id}")).json()
        assert detail["reports"] == 3


async def test_identity_by_component_number_and_what_stays_apart(tmp_path, city, live_node):
    clock = Clock(MONDAY_10)
    async with live_node(city, tmp_path / "data", clock=clock, notify_url="memory:") as live:
        op = live.client(await live.key("operator"))
        request_id = await citizen_request(live, MANHOLE, **{"attribute[asset_number]": "MH-7"})
        case_id = incident_id_for(f"open311:{request_id}")
        # Another manhole 30 m away (past the group's 15 m) naming no device or number: apart.
        r = await op.post("/api/v1/incidents", json={
            "category": DAMAGED, "lat": north(-30)[0], "lon": MANHOLE[1]})
        assert r.status_code == 201 and r.json()["id"] != case_id
        # Naming the cover's number, 200 m off (a wrong fix): the same component.
        r = await op.post("/api/v1/incidents", json={
            "category": DAMAGED, "lat": north(200)[0], "lon": MANHOLE[1],
            "component": "MH-7"})
        assert r.status_code == 200 and r.json()["id"] == case_id
        events = (await op.get(f"/api/v1/incidents/{case_id}")).json()["timeline"]
        assert [e["reason"] for e in events if e["action"] == "merge"] == [
            "same manhole: component MH-7, named by a citizen's request (Open311) too"]
        # A street lamp's alert (same shared category, another rule) 5 m away: not a manhole.
        await live.node.act.intake.take(tilted(live, clock.now, device="lamp-9",
                                               place=north(5), rule="components.lamp_out"))
        assert (await op.get(f"/api/v1/incidents/{case_id}")).json()["reports"] == 2


async def test_a_wrong_merge_is_split_back_out(tmp_path, city, live_node):
    clock = Clock(MONDAY_10)
    async with live_node(city, tmp_path / "data", clock=clock, notify_url="memory:") as live:
        request_id = await citizen_request(live, MANHOLE)
        case_id = incident_id_for(f"open311:{request_id}")
        clock.now += 60
        event = tilted(live, clock.now, place=north(6))
        await live.node.act.intake.take(event)
        alert_key = f"alert:{event.alert.id}"
        op = live.client(await live.key("operator", name="Zhao"))
        before = (await op.get(f"/api/v1/incidents/{case_id}")).json()
        assert before["reports"] == 2

        clock.now += 300
        r = await op.post(f"/api/v1/incidents/{case_id}/split",
                          json={"report": alert_key, "reason": "the sensor is on the next cover"})
        assert r.status_code == 200, r.text
        done = r.json()
        kept, new = done["incident"], done["split"]
        assert kept["id"] == case_id and kept["reports"] == 1
        assert kept["version"] == before["version"] + 1
        assert new["id"] == incident_id_for(alert_key) and new["reports"] == 1
        # Its own category, routed as an alert of it is: registered and dispatched at once.
        assert new["category"] == DAMAGED and new["status"] == "dispatched"
        assert new["source"] == "sensor" and new["alert_id"] == event.alert.id

        old_doc = (await op.get(f"/api/v1/incidents/{case_id}")).json()
        new_doc = (await op.get(f"/api/v1/incidents/{new['id']}")).json()
        assert [r["key"] for r in old_doc["reports_filed"]] == [f"open311:{request_id}"]
        assert [r["key"] for r in new_doc["reports_filed"]] == [alert_key]
        assert old_doc["alerts"] == [] and new_doc["alerts"] == [event.alert.id]
        (gone,) = [e for e in old_doc["timeline"] if e["action"] == "split"]
        (came,) = [e for e in new_doc["timeline"] if e["action"] == "split"]
        for e in (gone, came):
            assert e["reason"] == "the sensor is on the next cover"
            assert e["actor_name"] == "Zhao" and e["actor"].startswith("k_")
        assert gone["detail"] == {"report": alert_key, "reports": 1, "to": new["id"]}
        assert came["detail"] == {"report": alert_key, "from": case_id}
        assert live.node.store is not None
        assert await live.node.store.incident_of_report(alert_key) == new["id"]
        # A later alert of the same sensor joins the split-off case (its group), not the
        # citizen's.
        clock.now += 60
        await live.node.act.intake.take(tilted(live, clock.now, place=north(6)))
        assert (await op.get(f"/api/v1/incidents/{case_id}")).json()["reports"] == 1
        assert (await op.get(f"/api/v1/incidents/{new['id']}")).json()["reports"] == 2


async def test_a_split_is_refused_whole(tmp_path, city, live_node):
    clock = Clock(MONDAY_10)
    async with live_node(city, tmp_path / "data", clock=clock, notify_url="memory:") as live:
        request_id = await citizen_request(live, MANHOLE)
        case_id = incident_id_for(f"open311:{request_id}")
        event = tilted(live, clock.now, place=north(6))
        await live.node.act.intake.take(event)
        alert_key = f"alert:{event.alert.id}"
        op = live.client(await live.key("operator"))
        url = f"/api/v1/incidents/{case_id}/split"
        before = (await op.get(f"/api/v1/incidents/{case_id}")).json()

        r = await op.post(url, json={"report": f"open311:{request_id}", "reason": "x"})
        assert r.status_code == 409 and "opened incident" in r.json()["error"]
        r = await op.post(url, json={"report": "alert:nope", "reason": "x"})
        assert r.status_code == 409 and "alert:nope" in r.json()["error"]
        r = await op.post(url, json={"report": alert_key, "reason": ""})
        assert r.status_code == 400 and "reason" in r.json()["error"]
        r = await op.post(url, json={"report": alert_key})
        assert r.status_code == 400 and "reason" in r.json()["error"]
        r = await op.post(url, json={"report": alert_key, "reason": "x", "also": 1})
        assert r.status_code == 400 and "also" in r.json()["error"]
        station = live.client(await live.key("station", VILLAGE))
        r = await station.post(url, json={"report": alert_key, "reason": "x"})
        assert r.status_code == 403
        elsewhere = live.client(await live.key("operator", "990001002"))
        r = await elsewhere.post(url, json={"report": alert_key, "reason": "x"})
        assert r.status_code == 404

        after = (await op.get(f"/api/v1/incidents/{case_id}")).json()
        assert after["version"] == before["version"] and after["reports"] == 2
        assert len(after["timeline"]) == len(before["timeline"])
        assert await live.node.store.get_incident(incident_id_for(alert_key)) is None
        assert math.isfinite(after["reported_at"])
