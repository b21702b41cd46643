"""The field staff roster over HTTP: people added, edited and retired within the key's scope,
at the version last read, each change audited; dispatch, the live screen and the field page
follow at once; a change made on one node reaches another on the same PostgreSQL, and the
roster outlives a restart in each store."""

from __future__ import annotations


import pytest


from .conftest import HERE, MONDAY_10, VILLAGE, Clock

TOWN_A, TOWN_B = "990001001", "990001002"
VILLAGE_B = "990001002001"
FREE_GPS = "gps-000002"  # the grid city's third tracker: nobody carries it
NEW = {"id": "env-07", "name": "Li Na", "department": "sanitation", "home_area": VILLAGE,
       "device_id": FREE_GPS, "skills": ["sweeping"], "reason": "new hire"}


@pytest.fixture
async def live(tmp_path, city, live_node):
    async with live_node(city, tmp_path / "d", clock=Clock(MONDAY_10),
                         notify_url="memory:") as node:
        node.admin = await node.key("admin")
        yield node


async def roster(c, **params) -> dict[str, dict]:
    r = await c.get("/api/v1/roster", params=params)
    assert r.status_code == 200, r.text
    return {p["id"]: p for p in r.json()["items"]}


async def trail(live, person: str) -> list[tuple[str, str | None]]:
    return [(e.action, e.after) for e in await live.node.store.list_audit(
        subject=f"staff:{person}")]


async def test_a_person_is_added_edited_and_retired_each_audited(live) -> None:
    async with live.client(live.admin) as c:
        listed = await roster(c)
        assert listed["san-01"]["version"] == 0 and not listed["san-01"]["added"]
        r = await c.post("/api/v1/roster", json=NEW)
        assert r.status_code == 201, r.text
        assert r.json() == {**{k: v for k, v in NEW.items() if k != "reason"},
                            "active": True, "version": 1, "added": True}

        r = await c.patch("/api/v1/roster/env-07", json={"version": 1, "name": "Li Na (2)",
                                                         "skills": ["sweeping", "drains"]})
        assert r.status_code == 200, r.text
        assert r.json()["version"] == 2 and r.json()["skills"] == ["sweeping", "drains"]
        # A form read before that edit is refused, and nothing changes.
        r = await c.patch("/api/v1/roster/env-07", json={"version": 1, "name": "Old form"})
        assert r.status_code == 409 and r.json()["code"] == "staff_changed"
        # A pack person's first change is made at version 0.
        r = await c.patch("/api/v1/roster/san-02", json={"version": 0, "home_area": TOWN_B})
        assert r.status_code == 200 and r.json()["version"] == 1

        r = await c.post("/api/v1/roster/env-07/retire", json={"version": 2, "reason": "left"})
        assert r.status_code == 200 and r.json()["active"] is False
        r = await c.post("/api/v1/roster/env-07/retire", json={"version": 3})
        assert r.status_code == 409 and r.json()["code"] == "staff_retired"
        assert (await roster(c, active="false")).keys() == {"env-07"}
        assert (await roster(c, q="li na"))["env-07"]["name"] == "Li Na (2)"
        # Retired, never deleted: the id stays taken.
        r = await c.post("/api/v1/roster", json=NEW)
        assert r.status_code == 409 and r.json()["code"] == "staff_id_taken"
    assert await trail(live, "env-07") == [
        ("staff.retire", "retired"),
        ("staff.edit", f"Li Na (2) | sanitation | {VILLAGE} | {FREE_GPS} | sweeping,drains"),
        ("staff.add", f"Li Na | sanitation | {VILLAGE} | {FREE_GPS} | sweeping")]
    async with live.client(live.admin) as c:
        admin_id = (await c.get("/api/v1/me")).json()["key"]
    assert {e.actor for e in await live.node.store.list_audit(subject="staff:env-07")} == {
        admin_id}


@pytest.mark.parametrize(("change", "code"), [
    ({"device_id": "gps-nope"}, "staff_device_unknown"),
    ({"device_id": "gps-000000"}, "staff_device_taken"),  # san-01 carries it
    ({"device_id": "noise-000000"}, "staff_device_not_gps"),
    ({"home_area": "990009"}, "staff_area_unknown"),
    ({"home_area": "990001"}, "staff_area_unknown"),  # the district: no beat
    ({"department": "astronomy"}, "staff_department_unknown"),
])
async def test_a_person_the_city_cannot_have_is_refused(live, change, code) -> None:
    async with live.client(live.admin) as c:
        r = await c.post("/api/v1/roster", json={**NEW, **change})
        assert r.status_code == 422 and r.json()["code"] == code, r.text
        r = await c.patch("/api/v1/roster/san-02", json={"version": 0, **change})
        assert r.status_code == 422 and r.json()["code"] == code, r.text
    assert live.node.roster.get("env-07") is None
    assert live.node.roster.get("san-02").version == 0
    assert await live.node.store.load_staff() == []
    assert await live.node.store.list_audit() == []


async def test_department_and_town_keys_manage_only_their_own(live) -> None:
    async with live.client(live.admin) as c:
        r = await c.patch("/api/v1/roster/san-02", json={"version": 0, "department": "transport",
                                                         "home_area": VILLAGE_B})
        assert r.status_code == 200, r.text
    sanitation = live.client(await live.key("department", "sanitation"))
    transport = live.client(await live.key("department", "transport"))
    town_b = live.client(await live.key("operator", TOWN_B))
    async with sanitation, transport, town_b:
        assert (await roster(sanitation)).keys() == {"san-01"}
        assert (await roster(transport)).keys() == {"san-02"}
        assert (await roster(town_b)).keys() == {"san-02"}
        # Another department's person, or another town's: refused, saying whose is whose.
        for c, person in ((transport, "san-01"), (town_b, "san-01"), (sanitation, "san-02")):
            r = await c.patch(f"/api/v1/roster/{person}", json={"version": 0, "name": "X"})
            assert r.status_code == 403 and r.json()["code"] == "staff_out_of_scope", r.text
            r = await c.post(f"/api/v1/roster/{person}/retire", json={"version": 0})
            assert r.status_code == 403
        # Moving one's own person out of one's department or town is refused too.
        r = await sanitation.patch("/api/v1/roster/san-01",
                                   json={"version": 0, "department": "police"})
        assert r.status_code == 403 and r.json()["code"] == "staff_out_of_scope"
        r = await town_b.patch("/api/v1/roster/san-02", json={"version": 1, "home_area": VILLAGE})
        assert r.status_code == 403
        # Adding: only into one's own scope, and another's id is theirs, not "taken".
        r = await transport.post("/api/v1/roster", json=NEW)  # a sanitation person
        assert r.status_code == 403
        r = await town_b.post("/api/v1/roster", json={**NEW, "id": "san-01",
                                                      "home_area": VILLAGE_B})
        assert r.status_code == 403
        r = await sanitation.post("/api/v1/roster", json=NEW)
        assert r.status_code == 201, r.text
        r = await town_b.patch("/api/v1/roster/san-02", json={"version": 1, "name": "Zhao Yi"})
        assert r.status_code == 200 and r.json()["version"] == 2
    field = live.client(await live.key("field", VILLAGE, "san-01"))
    async with field:
        assert (await field.get("/api/v1/roster")).status_code == 403
    assert live.node.roster.get("san-01").version == 0


async def fix(live, device: str, at: float, lat: float, lon: float) -> None:
    async with live.client(await live.key("device")) as d:
        r = await d.post("/api/v1/readings", json=[{"device_id": device, "ts": at,
                                                     "values": {"lat": lat, "lon": lon}}])
        assert r.status_code in (200, 202), r.text


async def test_dispatch_follows_a_department_change_and_never_offers_the_retired(live) -> None:
    board = live.node.act.staff
    await fix(live, "gps-000000", MONDAY_10, HERE["lat"], HERE["lon"])
    await fix(live, "gps-000001", MONDAY_10, HERE["lat"] + 0.01, HERE["lon"])
    nearest = [c.staff_id for c in board.candidates(**HERE, department="sanitation",
                                                      now=MONDAY_10)]
    assert nearest == ["san-01", "san-02"]
    async with live.client(live.admin) as c:
        r = await c.patch("/api/v1/roster/san-01", json={"version": 0, "department": "transport"})
        assert r.status_code == 200
        assert [x.staff_id for x in board.candidates(**HERE, department="sanitation",
                                                     now=MONDAY_10)] == ["san-02"]
        assert [x.staff_id for x in board.candidates(**HERE, department="transport",
                                                     now=MONDAY_10)] == ["san-01"]
        r = await c.post("/api/v1/roster/san-02/retire", json={"version": 0})
        assert r.status_code == 200

        # A case for sanitation now finds nobody to offer its order to.
        op = live.client(await live.key("operator"))
        async with op:
            inc = (await op.post("/api/v1/incidents", json={
                "category": "event.sanitation.exposed_garbage", **HERE})).json()
            await op.post(f"/api/v1/incidents/{inc['id']}/actions/register")
            inc = (await op.post(f"/api/v1/incidents/{inc['id']}/actions/dispatch")).json()
            order = inc["orders"][0]["id"]
            r = await op.post(f"/api/v1/work-orders/{order}/assign")
            assert r.status_code == 409 and "no available" in r.json()["error"], r.text
            r = await op.post(f"/api/v1/work-orders/{order}/assign",
                              json={"staff_id": "san-02"})
            assert r.status_code == 409 and "san-02" in r.json()["error"], r.text
    # Off the roster for the field page and the staff list too.
    async with live.client(await live.key("field", VILLAGE, "san-02")) as me:
        assert (await me.get("/api/v1/staff/me")).status_code == 404
    async with live.client(await live.key("operator")) as op:
        assert {p["id"] for p in (await op.get("/api/v1/staff")).json()["items"]} == {"san-01"}


async def test_a_new_person_shows_on_the_live_screen(live) -> None:
    await fix(live, FREE_GPS, MONDAY_10, HERE["lat"], HERE["lon"])
    async with live.client(live.admin) as c:
        before = (await c.get("/api/v1/live")).json()["staff"]
        assert before["id"] == ["san-01", "san-02"]
        assert (await c.post("/api/v1/roster", json=NEW)).status_code == 201
        after = (await c.get("/api/v1/live")).json()["staff"]
        assert after["id"] == ["san-01", "san-02", "env-07"] and after["i"] == [0, 1, 2]
        assert after["lat"][2] == round(HERE["lat"] * 100_000)
        r = await c.post("/api/v1/roster/san-01/retire", json={"version": 0})
        assert r.status_code == 200
        gone = (await c.get("/api/v1/live")).json()["staff"]
        # Retired: off the screen; the others keep their indices.
        assert gone["id"] == ["san-02", "env-07"] and gone["i"] == [1, 2]
    async with live.client(await live.key("field", VILLAGE, "env-07")) as me:
        r = await me.get("/api/v1/staff/me")
        assert r.status_code == 200 and r.json()["name"] == "Li Na"


async def test_a_watching_screen_is_sent_a_fresh_snapshot_when_the_roster_changes(live):
    from cityops.api.live import RESYNC, LiveHub
    from cityops.domain.access import Principal, Role, Scope

    hub = LiveHub(live.node, tick_s=3600)
    await hub.ensure_started()
    try:
        wall = hub.join(Principal("k_wall", Role.ADMIN, Scope()))
        first = await hub.snapshot_body(wall, "first")
        assert first["staff"]["id"] == ["san-01", "san-02"]
        hub._tick()
        assert not wall.resync
        while not wall.queue.empty():  # that tick's deltas (the figures)
            wall.queue.get_nowait()
        async with live.client(live.admin) as c:
            assert (await c.post("/api/v1/roster", json=NEW)).status_code == 201
        hub._tick()
        assert wall.resync and wall.queue.get_nowait() is RESYNC
        again = await hub.snapshot_body(wall, "resync")
        assert again["staff"]["id"] == ["san-01", "san-02", "env-07"]
    finally:
        await hub.stop()


async def test_two_nodes_on_one_postgresql_share_the_roster(tmp_path, city, live_node,
                                                            postgres_schema_url) -> None:
    shared = {"store_url": postgres_schema_url, "data_key_file": tmp_path / "data.key"}
    async with live_node(city, tmp_path / "a", **shared) as a, \
            live_node(city, tmp_path / "b", **shared) as b:
        async with a.client(await a.key("admin")) as c:
            assert (await c.post("/api/v1/roster", json=NEW)).status_code == 201
        # What each cluster node does as it follows the store (cluster/compose.py).
        assert await b.node.roster.refresh(b.node.store)
        assert b.node.roster.person("env-07").name == "Li Na"
        assert "env-07" in b.node.act.staff
        async with b.client(await b.key("admin")) as c:
            # b's edit at the version it read; a's copy is then stale and told so.
            r = await c.patch("/api/v1/roster/env-07", json={"version": 1, "name": "Li Na B"})
            assert r.status_code == 200
        async with a.client(await a.key("admin")) as c:
            r = await c.patch("/api/v1/roster/env-07", json={"version": 1, "name": "Li Na A"})
            assert r.status_code == 409 and r.json()["code"] == "staff_changed"
            # The refusal brought a up to date: the form reads the new version.
            held = (await roster(c))["env-07"]
            assert (held["name"], held["version"]) == ("Li Na B", 2)
    async with live_node(city, tmp_path / "a", **shared) as again:
        member = again.node.roster.get("env-07")
        assert member is not None and member.index == 2 and member.version == 2


async def test_the_roster_outlives_a_restart(tmp_path, city, live_node) -> None:
    async with live_node(city, tmp_path / "d") as live:
        async with live.client(await live.key("admin")) as c:
            assert (await c.post("/api/v1/roster", json=NEW)).status_code == 201
            r = await c.post("/api/v1/roster/san-01/retire", json={"version": 0})
            assert r.status_code == 200
    async with live_node(city, tmp_path / "d") as again:
        roster_ = again.node.roster
        assert [m.person.id for m in roster_.members()] == ["san-01", "san-02", "env-07"]
        assert [m.active for m in roster_.members()] == [False, True, True]
        assert "san-01" not in again.node.act.staff


async def test_detection_knows_a_tracker_as_staff_while_its_person_is_on_the_roster(live):
    # A city's own rules may look at field staff's trackers only (`where: {role: staff}`).
    engine = live.node.detect
    row = live.node.registry.index[FREE_GPS]

    def role() -> str:
        engine._grow()  # what each batch and tick does first
        return engine.ctx.places.roles[row]

    assert role() == ""
    async with live.client(live.admin) as c:
        assert (await c.post("/api/v1/roster", json=NEW)).status_code == 201
        assert role() == "staff"
        r = await c.post("/api/v1/roster/env-07/retire", json={"version": 1})
        assert r.status_code == 200
    assert role() == ""
