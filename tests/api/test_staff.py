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
        assert r.status_code == 400 and "not one of" in r.json()["error"]
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
