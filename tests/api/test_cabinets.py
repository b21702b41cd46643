"""Smart filing cabinets through the API, on a live node with an injected clock: drop-off and
SMS, single-use codes, guessing locks per key and per cabinet, the 7-day limit and return."""

from __future__ import annotations

from .conftest import MONDAY_10, VILLAGE, Clock

CITIZEN = {"id": "c-1", "name": "Li Wei", "phone": "13812345678", "area": VILLAGE}
CABINET = {"id": "cab-1", "name": "Lobby cabinet", "centre": "Town 1 service centre",
           "area": VILLAGE, "compartments": ["standard", "standard", "large"]}


async def resident(live, op, cid: str):
    """A key of a citizen registered in the cabinet's town (a citizen uses the cabinets of
    the town they live in)."""
    r = await op.post("/api/v1/citizens", json={"id": cid, "name": cid, "area": VILLAGE})
    assert r.status_code == 201, r.text
    return live.client(await live.key("citizen", name=cid))


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def start(live):
    admin = live.client(await live.key("admin"))
    op = live.client(await live.key("operator"))
    await op.post("/api/v1/citizens", json=CITIZEN)
    assert (await op.post("/api/v1/cabinets", json=CABINET)).status_code == 403
    r = await admin.post("/api/v1/cabinets", json=CABINET)
    assert r.status_code == 201, r.text
    assert (await admin.post("/api/v1/cabinets", json=CABINET)).status_code == 409
    return admin, op


async def test_drop_off_pick_up_once(tmp_path, city, live_node) -> None:
    clock = Clock(MONDAY_10)
    async with live_node(city, tmp_path / "data", clock=clock, notify_url="memory:") as live:
        admin, op = await start(live)
        me = live.client(await live.key("citizen", name="c-1"))
        r = await op.post("/api/v1/cabinets/cab-1/dropoff", json={
            "recipient_citizen": "c-1", "description": "signed licence, tel 13812345678"})
        assert r.status_code == 201, r.text
        item = r.json()
        code = item["code"]
        assert len(code) == 6 and code.isdigit() and "code_hash" not in item
        assert item["phone"] == "138****5678" and item["compartment"] == 1
        assert item["description"] == "signed licence, tel 138****5678"
        sms = [n for n in live.node.act.notifier.sent if n.kind == "cabinet.dropoff"]
        assert len(sms) == 1 and sms[0].recipient == "13812345678" and code in sms[0].body
        # The code is nowhere in the store: only its hash.
        rec = await live.node.store.get_record("cabinet_item", item["id"])
        assert code not in rec.doc.decode() and code not in (rec.unique or "")

        cabinet = (await me.get("/api/v1/cabinets/cab-1")).json()
        assert cabinet["free"] == 2 and "occupancy" not in cabinet
        assert (await op.get("/api/v1/cabinets/cab-1")).json()["occupancy"][0]["item"] == \
            item["id"]
        mine = (await me.get("/api/v1/cabinet-items")).json()["items"]
        assert [i["id"] for i in mine] == [item["id"]] and mine[0]["phone"] == "13812345678"
        listed = (await op.get("/api/v1/cabinet-items", params={"cabinet": "cab-1"})).json()
        assert listed["items"][0]["phone"] == "138****5678"

        r = await me.post("/api/v1/cabinets/cab-1/pickup", json={"code": wrong(code)})
        assert r.status_code == 403 and r.json()["detail"]["attempts_left"] == 4
        assert (await me.post("/api/v1/cabinets/cab-1/pickup",
                              json={"code": "12ab"})).status_code == 400
        r = await me.post("/api/v1/cabinets/cab-1/pickup", json={"code": code})
        assert r.status_code == 200, r.text
        assert r.json() == {"opened": True, "cabinet": "cab-1", "compartment": 1,
                            "item": item["id"]}
        # Single use: the same code again opens nothing and counts as a wrong one.
        again = await me.post("/api/v1/cabinets/cab-1/pickup", json={"code": code})
        assert again.status_code == 403
        got = (await me.get(f"/api/v1/cabinet-items/{item['id']}")).json()
        assert got["status"] == "collected"
        assert (await me.get("/api/v1/cabinets/cab-1")).json()["free"] == 3
        assert (await op.post("/api/v1/cabinets/nowhere/pickup",
                              json={"code": code})).status_code == 404

        # A citizen drops materials for a department; the cabinet fills up.
        r = await me.post("/api/v1/cabinets/cab-1/dropoff", json={
            "recipient_department": "sanitation", "size": "large"})
        assert r.status_code == 201 and r.json()["compartment"] == 3
        r = await me.post("/api/v1/cabinets/cab-1/dropoff", json={
            "recipient_department": "sanitation", "size": "large"})
        assert r.status_code == 409 and "no free large" in r.json()["error"]
        assert (await me.post("/api/v1/cabinets/cab-1/dropoff", json={})).status_code == 409
        assert (await me.post("/api/v1/cabinets/cab-1/dropoff", json={
            "recipient_department": "wizards"})).status_code == 400
        san = live.client(await live.key("department", "sanitation"))
        items = (await san.get("/api/v1/cabinet-items")).json()["items"]
        assert [i["recipient_department"] for i in items] == ["sanitation"]


async def test_guessing_is_locked_per_key_and_per_cabinet(tmp_path, city, live_node) -> None:
    clock = Clock(MONDAY_10)
    async with live_node(city, tmp_path / "data", clock=clock, notify_url="memory:") as live:
        admin, op = await start(live)
        code = (await op.post("/api/v1/cabinets/cab-1/dropoff",
                              json={"phone": "13912345678"})).json()["code"]
        guesser = await resident(live, op, "c-9")
        for left in (4, 3, 2, 1):
            r = await guesser.post("/api/v1/cabinets/cab-1/pickup", json={"code": wrong(code)})
            assert r.status_code == 403 and r.json()["detail"]["attempts_left"] == left
        r = await guesser.post("/api/v1/cabinets/cab-1/pickup", json={"code": wrong(code)})
        assert r.status_code == 429 and r.headers["Retry-After"] == "900"
        # Locked: even the right code is not tried.
        r = await guesser.post("/api/v1/cabinets/cab-1/pickup", json={"code": code})
        assert r.status_code == 429
        clock.now += 901
        # 5 wrong codes from each of 6 more keys within 15 minutes: 30 at the cabinet, which
        # then refuses everyone.
        for n in range(6):
            other = await resident(live, op, f"g-{n}")
            for _ in range(5):
                r = await other.post("/api/v1/cabinets/cab-1/pickup",
                                     json={"code": wrong(code)})
            assert r.status_code == 429
        honest = live.client(await live.key("device"))
        r = await honest.post("/api/v1/cabinets/cab-1/pickup", json={"code": code})
        assert r.status_code == 429 and "at this cabinet" in r.json()["error"]
        clock.now += 15 * 60 + 1
        r = await honest.post("/api/v1/cabinets/cab-1/pickup", json={"code": code})
        assert r.status_code == 200, r.text


async def test_items_wait_seven_days_then_go_back(tmp_path, city, live_node) -> None:
    clock = Clock(MONDAY_10)
    async with live_node(city, tmp_path / "data", clock=clock, notify_url="memory:") as live:
        admin, op = await start(live)
        me = live.client(await live.key("citizen", name="c-1"))
        first = (await op.post("/api/v1/cabinets/cab-1/dropoff",
                               json={"recipient_citizen": "c-1"})).json()
        clock.now += 3 * 86400
        second = (await op.post("/api/v1/cabinets/cab-1/dropoff",
                                json={"recipient_citizen": "c-1"})).json()
        clock.now = MONDAY_10 + 7 * 86400  # the first has waited 7 days, the second 4
        r = await me.post("/api/v1/cabinets/cab-1/pickup", json={"code": first["code"]})
        assert r.status_code == 410 and "7 days" in r.json()["error"]
        scheduler = live.node.serve.scheduler
        await scheduler.tick()  # the node's own loop may get there first: both are fine
        assert (await scheduler.tick())["cabinet_items_flagged"] == 0
        kinds = [n.kind for n in live.node.act.notifier.sent]
        assert "cabinet.return_due" in kinds and "cabinet.expired" in kinds
        r = await me.post("/api/v1/cabinets/cab-1/pickup", json={"code": first["code"]})
        assert r.status_code == 410
        flagged = (await op.get("/api/v1/cabinet-items", params={"status": "return_due"}))
        assert [i["id"] for i in flagged.json()["items"]] == [first["id"]]
        path = f"/api/v1/cabinet-items/{first['id']}/actions/return"
        assert (await me.post(path)).status_code == 403
        r = await op.post(path, json={"note": "back to the counter"})
        assert r.status_code == 200 and r.json()["status"] == "returned"
        assert (await op.post(path)).status_code == 409
        assert (await op.get("/api/v1/cabinets/cab-1")).json()["free"] == 2
        # The second still works until its own 7 days are up.
        r = await me.post("/api/v1/cabinets/cab-1/pickup", json={"code": second["code"]})
        assert r.status_code == 200


async def test_cabinets_and_items_stay_in_their_town(tmp_path, city, live_node) -> None:
    """Issue 12: cabinets and their items are used by the keys whose scope covers them; a
    department key saw every cabinet, a citizen any town's."""
    async with live_node(city, tmp_path / "data", notify_url="memory:") as live:
        admin, op = await start(live)
        r = await admin.post("/api/v1/cabinets", json={
            **CABINET, "id": "cab-2", "area": "990001002001", "compartments": 2})
        assert r.status_code == 201, r.text
        item = (await op.post("/api/v1/cabinets/cab-1/dropoff",
                              json={"recipient_citizen": "c-1"})).json()
        town2 = live.client(await live.key("operator", "990001002"))
        environment = live.client(await live.key("department", "environment"))  # town 1
        r = await op.post("/api/v1/citizens", json={"id": "c-2", "name": "c-2",
                                                     "area": "990001002001"})
        assert r.status_code == 201, r.text
        neighbour = live.client(await live.key("citizen", name="c-2"))

        for key in (town2, neighbour):
            assert (await key.get("/api/v1/cabinets/cab-1")).status_code == 404
            r = await key.post("/api/v1/cabinets/cab-1/dropoff",
                               json={"recipient_department": "sanitation"})
            assert r.status_code == 404
            r = await key.post("/api/v1/cabinets/cab-1/pickup", json={"code": item["code"]})
            assert r.status_code == 404
            assert (await key.get(f"/api/v1/cabinet-items/{item['id']}")).status_code == 404
            listed = (await key.get("/api/v1/cabinets")).json()["items"]
            assert [c["id"] for c in listed] == ["cab-2"]
        path = f"/api/v1/cabinet-items/{item['id']}/actions/return"
        assert (await town2.post(path, json={"note": "ours now"})).status_code == 404
        assert (await town2.get("/api/v1/cabinet-items")).json()["items"] == []
        assert (await environment.get("/api/v1/cabinets/cab-2")).status_code == 404
        listed = (await environment.get("/api/v1/cabinets")).json()["items"]
        assert [c["id"] for c in listed] == ["cab-1"]
        held, _ = await live.node.serve.cabinets.get_item(item["id"])
        assert held.status.value == "waiting"
        cabinet, _ = await live.node.serve.cabinets.get("cab-1")
        assert len(cabinet.free()) == 2


async def test_a_citizen_cannot_fill_a_cabinet(tmp_path, city, live_node) -> None:
    """Issue 12: any citizen key could fill every compartment of a cabinet for the 7 days items
    wait. A citizen keeps at most 2 items waiting in one cabinet, and drops off 4 a day."""
    clock = Clock(MONDAY_10)
    async with live_node(city, tmp_path / "data", clock=clock, notify_url="memory:") as live:
        admin, op = await start(live)
        r = await admin.post("/api/v1/cabinets", json={**CABINET, "id": "cab-8",
                                                        "compartments": 8})
        assert r.status_code == 201, r.text
        me = live.client(await live.key("citizen", name="c-1"))
        san = live.client(await live.key("department", "sanitation"))

        async def drop(client=me):
            return await client.post("/api/v1/cabinets/cab-8/dropoff",
                                     json={"recipient_department": "sanitation"})

        async def collect(code: str) -> None:
            r = await san.post("/api/v1/cabinets/cab-8/pickup", json={"code": code})
            assert r.status_code == 200, r.text

        codes = []
        for _ in range(2):
            r = await drop()
            assert r.status_code == 201, r.text
            codes.append(r.json()["code"])
        r = await drop()
        assert r.status_code == 409 and "2 items dropped off by this citizen" in r.text
        assert (await me.get("/api/v1/cabinets/cab-8")).json()["free"] == 6
        # Collected, one makes room again, until the day's drop-offs are made.
        for n in range(2):
            await collect(codes[n])
            r = await drop()
            assert r.status_code == 201, r.text
            codes.append(r.json()["code"])
        await collect(codes[2])
        r = await drop()
        assert r.status_code == 429 and "4 drop-offs a day" in r.json()["error"]
        assert r.headers["Retry-After"] == "86400"
        others = await resident(live, op, "c-3")
        assert (await drop(others)).status_code == 201  # another citizen is not held up
        assert (await op.post("/api/v1/cabinets/cab-8/dropoff",
                              json={"recipient_department": "sanitation"})).status_code == 201
        clock.now += 86400 + 1
        assert (await drop()).status_code == 201


async def test_pickup_codes_go_only_to_the_registered_phone(tmp_path, city, live_node) -> None:
    """Issue 12: a citizen key sent a pickup code to any phone it typed into the drop-off."""
    async with live_node(city, tmp_path / "data", notify_url="memory:") as live:
        admin, op = await start(live)
        stranger = await resident(live, op, "c-7")
        dropoff = "/api/v1/cabinets/cab-1/dropoff"
        typed = "13900001111"
        for body in ({"recipient_citizen": "c-1", "phone": typed}, {"phone": typed}):
            r = await stranger.post(dropoff, json=body)
            assert r.status_code == 400 and "phone" in r.json()["error"], body
        r = await op.post(dropoff, json={"recipient_citizen": "c-1", "phone": typed})
        assert r.status_code == 400 and "registered phone" in r.json()["error"]
        r = await stranger.post(dropoff, json={"recipient_citizen": "c-1"})
        assert r.status_code == 201, r.text
        sent = [n.recipient for n in live.node.act.notifier.sent if n.kind == "cabinet.dropoff"]
        assert sent == [CITIZEN["phone"]]
        cabinet, _ = await live.node.serve.cabinets.get("cab-1")
        assert len(cabinet.free()) == 2  # the refused drop-offs took no compartment
