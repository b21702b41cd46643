"""A citizen's own Open311 reports, kept by the server: `GET /api/v1/citizens/me/reports` lists
what every key of the calling citizen filed (newest first, in pages), never another citizen's,
each with the case it joined, whose status it follows as the case moves."""

from __future__ import annotations

from .conftest import HERE, MONDAY_10, Clock

MINE = "/api/v1/citizens/me/reports"
GARBAGE = "event-sanitation-exposed_garbage"
NOISE = "event-environment-noise_nuisance"


async def _file(client, key: str, description: str, **fields) -> str:
    r = await client.post("/open311/v2/requests.json", data={
        "api_key": key, "service_code": GARBAGE, "lat": str(HERE["lat"]),
        "long": str(HERE["lon"]), "description": description, **fields})
    assert r.status_code == 200, r.text
    return r.json()[0]["service_request_id"]


async def test_each_citizen_sees_only_their_own_newest_first_in_pages(
        tmp_path, city, live_node) -> None:
    clock = Clock(MONDAY_10)
    async with live_node(city, tmp_path / "data", clock=clock, notify_url="memory:") as live:
        li_phone = await live.key("citizen", name="c-000123")
        li_tablet = await live.key("citizen", name="c-000123")  # the same citizen elsewhere
        wang_key = await live.key("citizen", name="c-000456")
        nobody_key = await live.key("citizen")  # a citizen key naming no citizen
        op_key = await live.key("operator")
        public = live.client()
        li, tablet = live.client(li_phone), live.client(li_tablet)
        wang, nobody, op = live.client(wang_key), live.client(nobody_key), live.client(op_key)

        filed: dict[str, list[str]] = {"li": [], "wang": [], "nobody": []}
        for n, (who, key) in enumerate([("li", li_phone), ("wang", wang_key),
                                        ("li", li_phone), ("nobody", nobody_key),
                                        ("li", li_tablet), ("wang", wang_key),
                                        ("li", li_phone)]):
            filed[who].append(await _file(public, key, f"report {n} by {who}"))
            clock.now += 60
        await _file(public, op_key, "an operator's report")

        r = await li.get(MINE)
        assert r.status_code == 200, r.text
        page = r.json()
        assert [i["service_request_id"] for i in page["items"]] == filed["li"][::-1]
        assert page["next"] is None
        assert [i["description"] for i in page["items"]] == [
            "report 6 by li", "report 4 by li", "report 2 by li", "report 0 by li"]
        # Any key of the citizen sees the same list, whichever key filed each report.
        assert (await tablet.get(MINE)).json() == page
        assert [i["service_request_id"] for i in (await wang.get(MINE)).json()["items"]] == \
            filed["wang"][::-1]
        assert [i["service_request_id"] for i in (await nobody.get(MINE)).json()["items"]] == \
            filed["nobody"]

        first = page["items"][0]
        assert first["requested_datetime"] == "2026-11-23T10:06:00+08:00"
        assert first["service_code"] == GARBAGE and first["service_name"]
        assert first["status"] == "open" and first["finished"] is False
        assert first["incident_id"] and first["title"]
        assert first["incident_status"] in ("dispatched", "registered", "collected")
        assert first["media_url"] is None

        # Pages of two, cursor to cursor, give the same list.
        seen, cursor = [], None
        while True:
            r = await li.get(MINE, params={"limit": 2, **({"cursor": cursor} if cursor else {})})
            assert r.status_code == 200, r.text
            seen += [i["service_request_id"] for i in r.json()["items"]]
            cursor = r.json()["next"]
            if cursor is None:
                break
        assert seen == filed["li"][::-1]
        one = (await li.get(MINE, params={"limit": 3})).json()
        assert len(one["items"]) == 3 and one["next"]
        rest = (await li.get(MINE, params={"cursor": one["next"]})).json()
        assert [i["service_request_id"] for i in rest["items"]] == [filed["li"][0]]
        assert rest["next"] is None

        assert (await op.get(MINE)).status_code == 403
        assert (await public.get(MINE)).status_code == 401
        assert (await li.get(MINE, params={"cursor": "nonsense"})).status_code == 400
        assert (await li.get(MINE, params={"limit": 101})).status_code == 400
        assert (await li.get(MINE, params={"limit": 0})).status_code == 400
        for client in (public, li, tablet, wang, nobody, op):
            await client.aclose()


async def test_the_status_follows_the_case_as_it_moves(tmp_path, city, live_node) -> None:
    clock = Clock(MONDAY_10)
    async with live_node(city, tmp_path / "data", clock=clock, notify_url="memory:") as live:
        key = await live.key("citizen", name="c-000123")
        li = live.client(key)
        op = live.client(await live.key("operator"))
        san = live.client(await live.key("department", "sanitation"))
        inspector = live.client(await live.key("field", "990001001", "ins-01"))
        rid = await _file(li, key, "Bags torn open by the gate",
                          media_url="https://photos.example.cn/1.jpg")

        async def mine() -> dict:
            (item,) = (await li.get(MINE)).json()["items"]
            assert item["service_request_id"] == rid
            return item

        item = await mine()
        assert item["media_url"] == "https://photos.example.cn/1.jpg"
        incident = f"/api/v1/incidents/{item['incident_id']}"
        inc = (await op.get(incident)).json()
        assert item["incident_status"] == inc["status"] == "dispatched"
        assert item["title"] == inc["title"]
        order = inc["orders"][0]["id"]

        clock.now += 600
        r = await san.post(f"/api/v1/work-orders/{order}/actions/accept", json={})
        assert r.status_code == 200, r.text
        item = await mine()
        assert (item["incident_status"], item["status"], item["finished"]) == (
            "accepted", "open", False)

        clock.now += 3600
        r = await san.post(f"/api/v1/work-orders/{order}/actions/finish",
                           json={"note": "Cleared"})
        assert r.status_code == 200, r.text
        item = await mine()
        assert (item["incident_status"], item["finished"]) == ("handled", False)
        assert item["status_notes"].endswith("Note: Cleared")

        r = await inspector.post(f"{incident}/actions/verify", json={})
        assert r.status_code == 200, r.text
        item = await mine()
        assert (item["incident_status"], item["status"], item["finished"]) == (
            "verified", "open", True)

        r = await op.post(f"{incident}/actions/close", json={})
        assert r.status_code == 200, r.text
        item = await mine()
        assert (item["incident_status"], item["status"], item["finished"]) == (
            "closed", "closed", True)

        # A complaint the centre cancels is finished for Open311, not for rating.
        noisy = await _file(li, key, "Drums all night", service_code=NOISE, lat="31.25",
                            long="121.55", **{"attribute[noise_source]": "banging"})
        item = (await li.get(MINE)).json()["items"][0]
        assert (item["service_request_id"], item["incident_status"]) == (noisy, "collected")
        r = await op.post(f"/api/v1/incidents/{item['incident_id']}/actions/cancel",
                          json={"reason": "A permitted night works site"})
        assert r.status_code == 200, r.text
        item = (await li.get(MINE)).json()["items"][0]
        assert (item["incident_status"], item["status"], item["finished"]) == (
            "cancelled", "closed", False)
        for client in (li, op, san, inspector):
            await client.aclose()
