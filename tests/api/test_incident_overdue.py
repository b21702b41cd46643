"""Issue 14: a case showed `overdue: false` while its work order was overdue. A case is overdue
while any deadline of it has passed (its close limit, an order's accept or finish limit, the
centre's dispatch limit), and the list's `overdue=true` filter returns exactly those cases."""

from __future__ import annotations

from .conftest import HERE, MONDAY_10, Clock

GARBAGE = "event.sanitation.exposed_garbage"


async def _post(client, path, **body):
    r = await client.post(path, json=body)
    assert r.status_code in (200, 201), r.text
    return r.json()


async def test_a_case_is_overdue_while_an_order_is(tmp_path, city, live_node):
    clock = Clock(MONDAY_10)
    async with live_node(city, tmp_path / "data", clock=clock, notify_url="memory:") as live:
        op = live.client(await live.key("operator"))
        san = live.client(await live.key("department", "sanitation"))
        late = await _post(op, "/api/v1/incidents", category=GARBAGE, title="late", **HERE)
        await _post(op, f"/api/v1/incidents/{late['id']}/actions/register")
        order = (await _post(op, f"/api/v1/incidents/{late['id']}/actions/dispatch"))["orders"][0]
        await _post(san, f"/api/v1/work-orders/{order['id']}/actions/accept")
        doc = (await op.get(f"/api/v1/incidents/{late['id']}")).json()
        finish_due = doc["orders"][0]["finish_due"]
        assert finish_due is not None and doc["close_due"] > finish_due and not doc["overdue"]

        clock.now = finish_due + 1  # the order is late, the case's own limit is not yet
        on_time = await _post(op, "/api/v1/incidents", category=GARBAGE, title="on time",
                              lat=HERE["lat"] + 0.01, lon=HERE["lon"])
        doc = (await op.get(f"/api/v1/incidents/{late['id']}")).json()
        assert doc["close_due"] > clock.now
        assert doc["overdue"] is True
        listed = (await op.get("/api/v1/incidents", params={"overdue": "true"})).json()["items"]
        assert [i["id"] for i in listed] == [late["id"]]
        assert listed[0]["overdue"] is True
        every = (await op.get("/api/v1/incidents")).json()["items"]
        assert {i["id"]: i["overdue"] for i in every} == {late["id"]: True,
                                                          on_time["id"]: False}
        # The live snapshot says the same.
        snap = (await op.get("/api/v1/live")).json()
        assert {i["id"]: i["overdue"] for i in snap["incidents"]} == {late["id"]: True,
                                                                      on_time["id"]: False}
        # Finished: the order is no longer late, nor the case.
        r = await san.post(f"/api/v1/work-orders/{order['id']}/actions/finish",
                           json={"note": "cleared"})
        if r.status_code == 200:
            doc = (await op.get(f"/api/v1/incidents/{late['id']}")).json()
            assert doc["overdue"] is False
            assert not (await op.get("/api/v1/incidents",
                                     params={"overdue": "true"})).json()["items"]
        await op.aclose()
        await san.aclose()
