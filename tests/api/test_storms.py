"""Storms through the HTTP API: listed to the keys whose scope covers their area, the storm
case decided with the incident actions, held reports released as separate cases."""

from __future__ import annotations

from cityops.domain.city import AreaCodes
from cityops.domain.incidents.model import Report

from .conftest import MONDAY_10, Clock

TOWN_1, TOWN_2 = "990001001", "990001002"
CATEGORY = "event.sanitation.exposed_garbage"


async def storm_in(live, town: str, clock: Clock, cases: int) -> str:
    """`cases` + 1 alerts of one category in one town: the last one is held."""
    desk = live.node.act.desk
    areas = AreaCodes(town[:6], town, f"{town}001")
    result = None
    for i in range(cases + 1):
        report = Report(f"alert:{town}-{i}", "sensor", clock.now, text="bin full")
        result = await desk.async_report(report, CATEGORY, areas=areas, auto_register=True,
                                         title=f"bin {i} full")
    assert result is not None
    return result.incident.id


async def test_storms_are_listed_in_scope_and_decided_by_a_supervisor(tmp_path, city,
                                                                      live_node):
    clock = Clock(MONDAY_10)
    async with live_node(city, tmp_path / "data", clock=clock, notify_url="memory:",
                         storm_cases=3, storm_window_s=300.0) as live:
        op = live.client(await live.key("operator"))
        op_1 = live.client(await live.key("operator", TOWN_1))
        station_1 = live.client(await live.key("station", TOWN_1))
        sanitation = live.client(await live.key("department", "sanitation"))
        citizen = live.client(await live.key("citizen", name="c-1"))
        r = await op.get("/api/v1/storms")
        assert r.status_code == 200 and r.json() == {"items": [], "threshold": 3,
                                                     "window_s": 300.0, "level": "town"}
        one = await storm_in(live, TOWN_1, clock, 3)
        two = await storm_in(live, TOWN_2, clock, 3)

        everything = (await op.get("/api/v1/storms")).json()["items"]
        assert {(s["id"], s["area"], s["held"], s["incident"]) for s in everything} == {
            (one, TOWN_1, 1, one), (two, TOWN_2, 1, two)}
        assert everything[0]["category"] == CATEGORY and everything[0]["threshold"] == 3
        mine = (await op_1.get("/api/v1/storms")).json()["items"]
        assert [s["id"] for s in mine] == [one]
        assert len((await sanitation.get("/api/v1/storms")).json()["items"]) == 2
        assert (await citizen.get("/api/v1/storms")).status_code == 403
        stats = (await op.get("/api/v1/act/stats")).json()
        assert (stats["held_by_storm_guard"], stats["storms_started"]) == (2, 2)

        # The storm case is an incident the town's keys see, waiting for the centre's check.
        case = (await op_1.get(f"/api/v1/incidents/{one}")).json()
        assert case["status"] == "collected" and case["title"].startswith("storm: 1 ")
        assert case["titles"] == {"zh-CN": "第1街镇暴露垃圾案件激增，1件暂挂待研判"}
        assert [r["key"] for r in case["reports_filed"]] == [f"alert:{TOWN_1}-3"]
        assert (await op_1.get(f"/api/v1/incidents/{two}")).status_code == 404

        # Release: not another town's storm, not a station's call; then the held report is
        # a dispatched case of its own and the storm case is cancelled.
        assert (await op_1.post(f"/api/v1/storms/{two}/release")).status_code == 404
        assert (await station_1.post(f"/api/v1/storms/{one}/release")).status_code == 403
        assert (await op_1.post("/api/v1/storms/storm-nothing/release")).status_code == 404
        r = await op_1.post(f"/api/v1/storms/{one}/release")
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["cancelled"] == one and len(out["incidents"]) == 1
        assert out["incidents"][0]["status"] == "dispatched"
        assert out["incidents"][0]["title"] == "bin 3 full"
        assert (await op_1.get(f"/api/v1/incidents/{one}")).json()["status"] == "cancelled"
        again = await op_1.post(f"/api/v1/storms/{one}/release")
        assert again.status_code == 409, again.text

        # The other one is dispatched as one job with the incident actions.
        path = f"/api/v1/incidents/{two}/actions"
        assert (await op.post(f"{path}/register")).status_code == 200
        r = await op.post(f"{path}/dispatch")
        assert r.status_code == 200 and len(r.json()["orders"]) == 1, r.text

        # A window with nothing more: the storms are over.
        clock.now += 301
        assert (await op.get("/api/v1/storms")).json()["items"] == []


async def test_a_restarted_node_carries_on_the_storm(tmp_path, city, live_node):
    clock = Clock(MONDAY_10)
    settings = dict(clock=clock, notify_url="memory:", storm_cases=3)
    async with live_node(city, tmp_path / "data", **settings) as live:
        storm_id = await storm_in(live, TOWN_1, clock, 3)
    clock.now += 60
    async with live_node(city, tmp_path / "data", **settings) as live:
        op = live.client(await live.key("operator"))
        [storm] = (await op.get("/api/v1/storms")).json()["items"]
        assert storm["id"] == storm_id and storm["held"] == 1
        # The next alert of the kind in the town is held in the same case, not dispatched.
        report = Report("alert:after-restart", "sensor", clock.now)
        result = await live.node.act.desk.async_report(
            report, CATEGORY, areas=AreaCodes("990001", TOWN_1, f"{TOWN_1}001"),
            auto_register=True)
        assert result.incident.id == storm_id and result.incident.reports == 2
        sent = live.node.act.notifier.sent
        assert not [n for n in sent if n.kind in ("storm.started", "order.dispatched")]
