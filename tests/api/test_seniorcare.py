"""Senior care through the API on a live node with an injected clock: nursing-home waiting
lists and beds moving on by priority, caregiver bookings and their conflicts, the retrofit
bundle's on-site assessment, and who sees what. The concurrency tests run on SQLite and on the
real PostgreSQL server: a bed is never offered twice, a slot never booked twice."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import msgspec
import pytest

from cityops.domain.access import Role
from cityops.domain.seniorcare.admission import RESPONSE_S

from .conftest import MONDAY_10, SHANGHAI, VILLAGE, Clock

HOME = f"care-{VILLAGE}"  # the grid city's care point in town 1, village 1
OTHER_TOWN_HOME = "care-990001002001"
P = "/api/v1/seniorcare"
TUESDAY = (dt.datetime.fromtimestamp(MONDAY_10, SHANGHAI).date() + dt.timedelta(days=1))
SETTINGS = {"notify_url": "memory:", "escalate_tick_s": 3600.0}


def elder(cid: str, *, born: int = 1946, area: str = VILLAGE, phone: str = "",
          **attributes) -> dict:
    return {"id": cid, "name": cid, "birth_date": f"{born}-03-01", "area": area,
            "phone": phone, "attributes": attributes}


async def setup(live):
    admin = live.client(await live.key("admin"))
    civil = live.client(await live.key("department", "civil_affairs"))
    for body in (elder("c-low", care_level=2, phone="13800000001"),
                 elder("c-frail", care_level=5, lives_alone=True),
                 elder("c-poor", care_level=1, hardship="special_hardship"),
                 elder("c-far", area="990001002001", care_level=6)):
        r = await admin.post("/api/v1/citizens", json=body)
        assert r.status_code == 201, r.text
    return admin, civil


def offers(live, kind="care.offer"):
    return [n for n in live.node.act.notifier.sent if n.kind == kind]


async def test_waiting_list_priority_and_freed_bed(tmp_path, care_city, live_node) -> None:
    clock = Clock(MONDAY_10)
    async with live_node(care_city, tmp_path / "d", clock=clock, **SETTINGS) as live:
        admin, civil = await setup(live)
        staff = live.client(await live.key("station", VILLAGE, name=HOME))
        town_station = live.client(await live.key("station", "990001001"))
        assert (await staff.put(f"{P}/homes/{HOME}/beds", json={"beds": 1})).status_code == 200
        # The town's station may look but not run the home.
        r = await town_station.put(f"{P}/homes/{HOME}/beds", json={"beds": 3})
        assert r.status_code == 403 and r.json()["code"] == "care_not_home_staff"
        mine = {}
        for cid in ("c-low", "c-frail", "c-poor"):
            me = live.client(await live.key("citizen", name=cid))
            # A citizen's own word on their care level or hardship is not taken.
            r = await me.post(f"{P}/homes/{HOME}/waiting", json={"care_level": 6,
                                                                 "hardship": "special_hardship"})
            assert r.status_code == 201, r.text
            mine[cid] = (me, r.json()["entry"])
            clock.now += 60
        assert mine["c-low"][1]["care_level"] == 2 and mine["c-low"][1]["hardship"] == "none"
        # c-low came first and the bed was free: it is offered to them at once.
        assert mine["c-low"][1]["status"] == "offered" and mine["c-low"][1]["bed"] == 1
        sms = offers(live)
        assert [n.recipient for n in sms] == ["13800000001"]

        me, entry = mine["c-low"]
        r = await me.post(f"{P}/homes/{HOME}/entries/{entry['id']}", json={"action": "accept"})
        assert r.status_code == 200, r.text
        view = (await staff.get(f"{P}/homes/{HOME}")).json()
        assert [w["entry"]["citizen"] for w in view["waiting"]] == ["c-poor", "c-frail"]
        assert view["home"]["occupied"] == 1 and view["home"]["free"] == 0
        assert [r["citizen"] for r in view["residents"]] == ["c-low"]

        # c-low leaves: the bed goes to c-poor (special hardship first), not c-frail.
        r = await staff.post(f"{P}/homes/{HOME}/beds/1/free", json={"reason": "moved"})
        assert r.status_code == 200, r.text
        assert [o["citizen"] for o in r.json()["offers"]] == ["c-poor"]
        poor_me, poor = mine["c-poor"]
        got = (await poor_me.get(f"{P}/mine")).json()["entries"][0]
        assert got["entry"]["status"] == "offered" and got["home"] == HOME
        # A citizen sees their own entry, not the others'.
        seen = (await poor_me.get(f"{P}/homes/{HOME}")).json()
        assert "waiting" not in seen and [m["entry"]["id"] for m in seen["mine"]] == [poor["id"]]
        # Another citizen's entry is no business of theirs: 404.
        r = await poor_me.post(f"{P}/homes/{HOME}/entries/{mine['c-frail'][1]['id']}",
                               json={"action": "withdraw"})
        assert r.status_code == 404

        # c-poor does not answer: the offer lapses at the deadline and moves on to c-frail.
        clock.now += RESPONSE_S + 1
        r = await poor_me.post(f"{P}/homes/{HOME}/entries/{poor['id']}",
                               json={"action": "accept"})
        assert r.status_code == 409 and r.json()["code"] == "care_offer_expired"
        await live.node.serve.scheduler.tick()
        view = (await civil.get(f"{P}/homes/{HOME}")).json()
        assert [o["citizen"] for o in view["offers"]] == ["c-frail"]
        assert [n.data.get("home") for n in offers(live, "care.expired")] == [HOME]

        # Bad input: an unknown home, a bed not taken, a bed number that is no number.
        assert (await admin.get(f"{P}/homes/care-nowhere")).status_code == 404
        r = await staff.post(f"{P}/homes/{HOME}/beds/1/free", json={})
        assert r.status_code == 409 and r.json()["code"] == "care_bed_offered"
        assert (await staff.post(f"{P}/homes/{HOME}/beds/x/free")).status_code == 400
        r = await staff.put(f"{P}/homes/{HOME}/beds", json={"beds": 0})
        assert r.status_code == 409 and r.json()["code"] == "care_bed_in_use"
        r = await staff.put(f"{P}/homes/{HOME}/beds", json={"beds": -1})
        assert r.status_code == 400


async def test_who_sees_which_home(tmp_path, care_city, live_node) -> None:
    async with live_node(care_city, tmp_path / "d", clock=Clock(MONDAY_10), **SETTINGS) as live:
        admin, civil = await setup(live)
        far = live.client(await live.key("citizen", name="c-far"))
        near = live.client(await live.key("citizen", name="c-low"))
        town1 = live.client(await live.key("operator", "990001001"))
        sanitation = live.client(await live.key("department", "sanitation"))
        staff = live.client(await live.key("station", VILLAGE, name=HOME))

        def ids(r):
            assert r.status_code == 200, r.text
            return [h["id"] for h in r.json()["homes"]]

        assert len(ids(await admin.get(f"{P}/homes"))) == 4
        assert len(ids(await civil.get(f"{P}/homes"))) == 4
        assert ids(await town1.get(f"{P}/homes")) == [HOME, "care-990001001002"]
        assert ids(await sanitation.get(f"{P}/homes")) == []
        assert ids(await staff.get(f"{P}/homes")) == [HOME]
        assert ids(await near.get(f"{P}/homes")) == [HOME, "care-990001001002"]
        assert ids(await far.get(f"{P}/homes")) == [OTHER_TOWN_HOME, "care-990001002002"]
        for c in (town1, sanitation, staff, near):
            assert (await c.get(f"{P}/homes/{OTHER_TOWN_HOME}")).status_code == 404
        r = await near.post(f"{P}/homes/{OTHER_TOWN_HOME}/waiting", json={})
        assert r.status_code == 404
        # A citizen key applies for itself only.
        r = await near.post(f"{P}/homes/{HOME}/waiting", json={"citizen": "c-frail"})
        assert r.status_code == 403


async def test_caregiver_booking_conflicts_and_scope(tmp_path, care_city, live_node) -> None:
    clock = Clock(MONDAY_10)
    async with live_node(care_city, tmp_path / "d", clock=clock, **SETTINGS) as live:
        admin, civil = await setup(live)
        carer = {"id": "cg-zhou", "name": "Zhou Min", "area": "990001001",
                 "skills": ["personal_care", "bathing"], "phone": "13900000009",
                 "schedule": [{"weekday": 2, "start": "08:00", "end": "12:00"}]}
        r = await civil.post(f"{P}/caregivers", json=carer)
        assert r.status_code == 201, r.text
        assert (await civil.post(f"{P}/caregivers", json=carer)).status_code == 200
        bad = {**carer, "id": "cg-bad", "skills": ["juggling"]}
        r = await civil.post(f"{P}/caregivers", json=bad)
        assert r.status_code == 400 and "juggling" in r.json()["error"]
        r = await civil.post(f"{P}/caregivers", json={**carer, "id": "cg-x",
                                                     "schedule": [{"weekday": 2,
                                                                   "start": "8am",
                                                                   "end": "12:00"}]})
        assert r.status_code == 400
        me = live.client(await live.key("citizen", name="c-low"))
        far = live.client(await live.key("citizen", name="c-far"))
        visit = {"caregiver": "cg-zhou", "day": TUESDAY.isoformat(), "start": "09:00",
                 "end": "10:30", "skills": ["bathing"]}
        r = await me.post(f"{P}/bookings", json=visit)
        assert r.status_code == 201, r.text
        booking = r.json()
        assert booking["citizen"] == "c-low" and booking["end"] == "10:30"

        conflicts = {
            "care_double_booked": {**visit, "start": "10:00", "end": "11:00"},
            "care_outside_schedule": {**visit, "start": "11:30", "end": "12:30"},
            "care_skill_mismatch": {**visit, "start": "11:00", "end": "12:00",
                                    "skills": ["nursing"]},
        }
        for code, body in conflicts.items():
            r = await civil.post(f"{P}/bookings", json={**body, "citizen": "c-frail"})
            assert r.status_code == 409 and r.json()["code"] == code, (code, r.text)
        r = await me.post(f"{P}/bookings", json={**visit, "caregiver": "cg-nobody"})
        assert r.status_code == 404 and r.json()["code"] == "care_unknown_caregiver"
        r = await me.post(f"{P}/bookings", json={**visit, "day": "2026-02-30"})
        assert r.status_code == 400
        # The caregiver serves town 1: town 2's citizen does not see them.
        r = await far.post(f"{P}/bookings", json={**visit, "start": "11:00", "end": "12:00"})
        assert r.status_code == 404
        assert (await far.get(f"{P}/caregivers")).json()["caregivers"] == []
        assert (await far.get(f"{P}/bookings/{booking['id']}")).status_code == 404

        days = (await me.get(f"{P}/caregivers/cg-zhou",
                             params={"start": TUESDAY.isoformat(), "days": 1})).json()
        assert days["days"][0]["free"] == [{"start": "08:00", "end": "09:00"},
                                           {"start": "10:30", "end": "12:00"}]
        assert "phone" not in days["caregiver"]
        mine = (await me.get(f"{P}/mine")).json()["bookings"]
        assert [b["id"] for b in mine] == [booking["id"]]

        # A community's station books the town's caregiver for its own residents only, and
        # sees their visits; the other town's station sees neither caregiver nor visit.
        station = live.client(await live.key("station", VILLAGE))
        other = live.client(await live.key("station", "990001002"))
        r = await station.post(f"{P}/bookings", json={**visit, "citizen": "c-far",
                                                      "start": "11:00", "end": "12:00"})
        assert r.status_code == 403, r.text
        r = await station.post(f"{P}/bookings", json={**visit, "citizen": "c-frail",
                                                      "start": "11:00", "end": "12:00"})
        assert r.status_code == 201, r.text
        theirs = r.json()["id"]
        assert (await station.get(f"{P}/bookings/{theirs}")).status_code == 200
        assert (await other.get(f"{P}/bookings/{theirs}")).status_code == 404
        assert (await other.get(f"{P}/caregivers/cg-zhou")).status_code == 404
        days = (await station.get(f"{P}/caregivers/cg-zhou",
                                  params={"start": TUESDAY.isoformat(), "days": 1})).json()
        assert [b.get("citizen") for b in days["days"][0]["busy"]] == ["c-low", "c-frail"]
        # c-low is not the business of a citizen looking at the caregiver: busy, no name.
        seen = (await live.client(await live.key("citizen", name="c-frail")).get(
            f"{P}/caregivers/cg-zhou", params={"start": TUESDAY.isoformat(), "days": 1})).json()
        assert [b.get("booking") for b in seen["days"][0]["busy"]] == [None, theirs]
        assert (await station.post(f"{P}/bookings/{theirs}/cancel")).status_code == 200

        r = await me.post(f"{P}/bookings/{booking['id']}/cancel", json={"reason": "unwell"})
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        r = await me.post(f"{P}/bookings/{booking['id']}/cancel", json={})
        assert r.status_code == 409
        # The time is free again.
        r = await civil.post(f"{P}/bookings", json={**visit, "citizen": "c-frail"})
        assert r.status_code == 201, r.text


async def test_retrofit_bundle_with_on_site_assessment(tmp_path, care_city, live_node) -> None:
    async with live_node(care_city, tmp_path / "d", clock=Clock(MONDAY_10), **SETTINGS) as live:
        admin, civil = await setup(live)
        me = live.client(await live.key("citizen", name="c-poor"))
        form = await me.get("/api/v1/bundles/aging_friendly_retrofit/form")
        assert form.status_code == 200, form.text
        body = {
            "bundle": "aging_friendly_retrofit", "key": "retro-1",
            "answers": {"applicant_name": "Poor", "applicant_id_number": "110101194603011231",
                        "applicant_phone": "13800000002", "home_address": "1 Huamu Rd",
                        "start_date": TUESDAY.isoformat(), "bank_account": "6222"},
            "materials": {"id_card": "scan-1", "premises_title": "scan-2",
                          "renovation_plan": "scan-3", "bank_card": "scan-4"}}
        r = await me.post("/api/v1/applications", json=body)
        assert r.status_code == 201, r.text
        apps = {a["item"]: a for a in r.json()["applications"]}
        assessment = apps["aging_retrofit_assessment"]["id"]
        works = apps["home_renovation_filing"]["id"]
        findings = {"findings": [{"hazard": "no_grab_bar", "room": "bathroom", "quantity": 2},
                                 {"hazard": "fall_unnoticed"}]}
        # Not an assessment application; not the citizen's to record; bad hazards.
        assert (await civil.post(f"{P}/retrofits/{works}/assessment",
                                 json=findings)).status_code == 404
        assert (await me.post(f"{P}/retrofits/{assessment}/assessment",
                              json=findings)).status_code == 403
        r = await civil.post(f"{P}/retrofits/{assessment}/assessment",
                             json={"findings": [{"hazard": "ghosts"}]})
        assert r.status_code == 400 and "ghosts" in r.json()["error"]
        r = await civil.post(f"{P}/retrofits/{assessment}/assessment", json=findings)
        assert r.status_code == 201, r.text
        done = r.json()
        # Special hardship (from the registry): the works are paid in full.
        assert done["works_cost"] == 1100 and done["subsidy"] == 1100
        assert done["own_share"] == 0
        r = await civil.post(f"{P}/retrofits/{assessment}/assessment", json=findings)
        assert r.status_code == 409
        app = (await me.get(f"/api/v1/applications/{assessment}")).json()
        assert app["status"] == "result_issued" and "grab_bars x2" in app["result"]["note"]
        seen = (await me.get(f"{P}/retrofits/{assessment}")).json()
        assert seen["assessment"]["subsidy"] == 1100

        # A call cut short after recording the findings: the next one finishes the moves
        # with the findings first recorded, and does not assess twice.
        r = await me.post("/api/v1/applications", json={**body, "key": "retro-2"})
        second = {a["item"]: a for a in r.json()["applications"]}["aging_retrofit_assessment"]
        from cityops.domain.onestop.applications import Actor
        from cityops.domain.seniorcare.retrofit import Finding
        from cityops.serve.seniorcare import seniorcare_of

        care = seniorcare_of(live.node).retrofits
        cut = await care._record(await care.application(second["id"]),
                                 Actor("k", Role.DEPARTMENT), [Finding(hazard="dark_path")],
                                 None, "")
        r = await civil.post(f"{P}/retrofits/{second['id']}/assessment", json=findings)
        assert r.status_code == 201, r.text
        assert r.json()["works"] == msgspec.to_builtins(cut.works)
        app = (await me.get(f"/api/v1/applications/{second['id']}")).json()
        assert app["status"] == "result_issued" and "night_lights x1" in app["result"]["note"]


# -- concurrency, on both databases -----------------------------------------------------------


def _store(backend: str, tmp_path, request) -> dict:
    if backend == "sqlite":
        return {}
    url = request.getfixturevalue("postgres_url")
    schema = f"cityops_care_{uuid.uuid4().hex[:8]}"

    def drop() -> None:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    request.addfinalizer(drop)
    return {"store_url": f"{url}?schema={schema}"}


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_a_bed_and_a_slot_are_never_taken_twice(tmp_path, care_city, live_node, backend,
                                                      request) -> None:
    clock = Clock(MONDAY_10)
    async with live_node(care_city, tmp_path / "d", clock=clock, **SETTINGS,
                         **_store(backend, tmp_path, request)) as live:
        admin, civil = await setup(live)
        for n in range(12):
            r = await admin.post("/api/v1/citizens", json=elder(f"c-{n}", care_level=n % 7))
            assert r.status_code == 201
        waiting = await asyncio.gather(*(civil.post(f"{P}/homes/{HOME}/waiting",
                                                    json={"citizen": f"c-{n}"})
                                         for n in range(12)))
        assert all(r.status_code == 201 for r in waiting), [r.text for r in waiting]
        # Beds opened several times at once: every move re-decides on the home as stored.
        changes = await asyncio.gather(*(civil.put(f"{P}/homes/{HOME}/beds",
                                                   json={"beds": b}) for b in (2, 3, 4, 5)))
        assert {r.status_code for r in changes} <= {200, 409}
        home = await live.node.store.get_record("care_home", HOME)
        from cityops.domain.seniorcare.admission import Home, check

        held = msgspec.json.decode(home.doc, type=Home)
        check(held)
        offered = [e.bed for e in held.offers()]
        assert len(offered) == len(set(offered)) == held.beds
        # The first offers went to the highest need.
        levels = sorted((e.care_level for e in held.entries), reverse=True)
        assert sorted((e.care_level for e in held.offers()), reverse=True) == \
            levels[:held.beds]

        await civil.post(f"{P}/caregivers", json={
            "id": "cg-1", "name": "Li", "area": "990001001", "skills": ["bathing"],
            "schedule": [{"weekday": 2, "start": "08:00", "end": "18:00"}]})
        tries = await asyncio.gather(*(civil.post(f"{P}/bookings", json={
            "caregiver": "cg-1", "citizen": f"c-{n}", "day": TUESDAY.isoformat(),
            "start": "09:00", "end": "10:00"}) for n in range(8)))
        codes = sorted(r.status_code for r in tries)
        assert codes == [201] + [409] * 7, [r.text for r in tries]
        assert {r.json()["code"] for r in tries if r.status_code == 409} == \
            {"care_double_booked"}


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_two_nodes_free_one_bed_once(tmp_path, care_city, live_node, backend,
                                           request) -> None:
    """Two staff on two nodes sharing one store free the same bed at the same moment: the
    version check lets one through, the other is decided again on the saved home and
    refused, and the bed is offered once, to the head of the list."""
    store = _store(backend, tmp_path, request) or {"store_url": f"sqlite:///{tmp_path}/s.db"}
    shared = {**SETTINGS, **store, "data_key_file": tmp_path / "data.key"}
    clock = Clock(MONDAY_10)
    async with live_node(care_city, tmp_path / "a", clock=clock, **shared) as a, \
            live_node(care_city, tmp_path / "b", clock=clock, **shared) as b:
        admin, civil = await setup(a)
        on_b = b.client(await b.key("department", "civil_affairs"))
        for cid in ("c-low", "c-frail", "c-poor"):
            r = await civil.post(f"{P}/homes/{HOME}/waiting", json={"citizen": cid})
            assert r.status_code == 201, r.text
        r = await civil.put(f"{P}/homes/{HOME}/beds", json={"beds": 1})
        entry = r.json()["offers"][0]
        assert entry["citizen"] == "c-poor"
        r = await on_b.post(f"{P}/homes/{HOME}/entries/{entry['id']}", json={"action": "accept"})
        assert r.status_code == 200, r.text
        for _ in range(5):
            both = await asyncio.gather(civil.post(f"{P}/homes/{HOME}/beds/1/free", json={}),
                                        on_b.post(f"{P}/homes/{HOME}/beds/1/free", json={}))
            codes = sorted(r.status_code for r in both)
            assert codes == [200, 409], [r.text for r in both]
            offered = [r for r in both if r.status_code == 200][0].json()["offers"]
            assert len(offered) == 1 and offered[0]["bed"] == 1
            # The one offered takes the bed, and the next round frees it again.
            r = await civil.post(f"{P}/homes/{HOME}/entries/{offered[0]['id']}",
                                 json={"action": "accept"})
            assert r.status_code == 200, r.text
            if offered[0]["citizen"] == "c-low":
                break
        told = [n for node in (a, b) for n in offers(node)]
        assert [n.data["home"] for n in told] == [HOME] * len(told)
        assert len({n.id for n in told}) == len(told)


async def test_a_bed_offer_in_a_zh_cn_city_is_a_chinese_sms(tmp_path, care_city,
                                                            live_node) -> None:
    city = msgspec.structs.replace(
        care_city, info=msgspec.structs.replace(care_city.info, language="zh-CN"))
    async with live_node(city, tmp_path / "d", clock=Clock(MONDAY_10), **SETTINGS) as live:
        await setup(live)
        staff = live.client(await live.key("station", VILLAGE, name=HOME))
        assert (await staff.put(f"{P}/homes/{HOME}/beds", json={"beds": 1})).status_code == 200
        me = live.client(await live.key("citizen", name="c-low"))
        r = await me.post(f"{P}/homes/{HOME}/waiting", json={})
        assert r.status_code == 201 and r.json()["entry"]["status"] == "offered", r.text
        [sms] = offers(live)
        deadline = dt.datetime.fromtimestamp(MONDAY_10 + RESPONSE_S, SHANGHAI)
        name = sms.data["home_name"]
        assert sms.data["home"] == HOME  # the structured data as before
        assert (sms.lang, sms.text) == (
            "zh-CN", f"{name}为您预留1号床位，请于{deadline.month}月{deadline.day}日 "
                     f"{deadline:%H:%M}前确认入住或放弃。")
