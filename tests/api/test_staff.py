"""Field staff through the API: positions and status, and a field key's own work orders."""

from __future__ import annotations

from .conftest import HERE, MONDAY_10, Clock


async def test_staff_status_positions_and_my_work_orders(tmp_path, city, live_node):
    clock = Clock(MONDAY_10)
    async with live_node(city, tmp_path / "data", clock=clock, notify_url="memory:") as live:
        op = live.client(await live.key("operator"))
        san = live.client(await live.key("department", "sanitation"))
        me = live.client(await live.key("field", "990001001001", "san-01"))
        async with live.client(await live.key("device")) as d:
            await d.post("/api/v1/readings", json=[{"device_id": "gps-000000", "ts": MONDAY_10,
                                                     "values": {"lat": 31.15, "lon": 121.45}}])
        people = {p["id"]: p for p in (await op.get("/api/v1/staff")).json()["items"]}
        assert people["san-01"]["lat"] == 31.15 and people["san-02"]["lat"] is None
        assert people["san-01"]["status"] == "available"

        r = await me.put("/api/v1/staff/san-02/status", json={"status": "off_duty"})
        assert r.status_code == 403
        r = await me.put("/api/v1/staff/san-01/status", json={"status": "napping"})
        assert r.status_code == 400 and "`$.status`" in r.json()["error"]
        r = await san.put("/api/v1/staff/san-02/status", json={"status": "off_duty"})
        assert r.status_code == 200 and r.json()["status"] == "off_duty"

        inc = (await op.post("/api/v1/incidents", json={
            "category": "event.sanitation.exposed_garbage", **HERE})).json()
        await op.post(f"/api/v1/incidents/{inc['id']}/actions/register")
        inc = (await op.post(f"/api/v1/incidents/{inc['id']}/actions/dispatch")).json()
        order = inc["orders"][0]["id"]
        assert (await me.get("/api/v1/work-orders")).json()["items"] == []
        r = await san.post(f"/api/v1/work-orders/{order}/assign")
        assert r.status_code == 200, r.text
        mine = (await me.get("/api/v1/work-orders")).json()["items"]
        assert [o["id"] for o in mine] == [order]
        assert mine[0]["incident"]["title"] == "Exposed garbage"
        listed = (await san.get("/api/v1/work-orders", params={"status": "dispatched"})).json()
        assert [o["id"] for o in listed["items"]] == [order]
        for c in (op, san, me):
            await c.aclose()


async def test_a_town_key_cannot_set_another_towns_field_person(tmp_path, city, live_node):
    """Found in issue 12: an operator scoped to one town took another town's field staff off
    duty. The person's home area, as the board holds it, must lie in the key's scope."""
    async with live_node(city, tmp_path / "data", notify_url="memory:") as live:
        board = live.node.act.staff
        # san-01 lives in Town 1 and works for sanitation; these keys cover neither.
        town2 = live.client(await live.key("operator", "990001002"))
        water = live.client(await live.key("department", "water_affairs"))
        town1 = live.client(await live.key("operator", "990001001"))
        for c in (town2, water):
            r = await c.put("/api/v1/staff/san-01/status", json={"status": "off_duty"})
            assert r.status_code == 404, r.text
            assert r.json()["error"] == "no staff 'san-01'"
            assert board.status["san-01"].value == "available"
        # The answer is the same as for someone who does not exist: nothing is learnt.
        r = await town2.put("/api/v1/staff/nobody/status", json={"status": "off_duty"})
        assert r.status_code == 404 and r.json()["error"] == "no staff 'nobody'"
        r = await town1.put("/api/v1/staff/san-01/status", json={"status": "off_duty"})
        assert r.status_code == 200 and board.status["san-01"].value == "off_duty"
        for c in (town2, water, town1):
            await c.aclose()
