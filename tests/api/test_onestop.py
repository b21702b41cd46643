"""One-stop services through the HTTP API on a live node: search, a "one thing" bundle end to
end (one merged form, one submission, per-department applications moved by department keys,
the combined status, one result notice), both exemptions from submission (a licence attached,
an expired one refused with the reason), an eligibility batch run twice, and an application past
its limit shown overdue."""

from __future__ import annotations


import msgspec
import pytest

from cityops.domain.city import Department
from cityops.packs.categories_file import default_categories

from .conftest import MONDAY_10, Clock

DEPARTMENTS = ["police", "fire", "city_management", "market_regulation", "civil_affairs",
               "housing_construction", "health", "medical_insurance",
               "human_resources_social_security"]
LI = {"id": "c-000123", "name": "Li Wei", "phone": "13812345678",
      "id_number": "310115198001011234", "birth_date": "1980-01-01", "area": "990001001001",
      "address": "8 Zhangyang Road"}
RESTAURANT = {"business_name": "Li's Noodles", "business_address": "8 Zhangyang Road",
              "business_scope": "catering", "floor_area": 85, "food_categories": "hot meals",
              "food_safety_manager": "Li Wei", "seating_capacity": 40,
              "opening_date": "2027-01-05", "sign_area": 3.5, "sign_text": "李记面馆"}
HANDED_IN = {"kitchen_layout": "upload-1", "fire_safety_plan": "upload-2",
             "sign_design": "upload-3"}


@pytest.fixture
def onestop_city(grid_pack):
    departments = [Department(code, code.replace("_", " ").title(), None, ["990001"])
                   for code in DEPARTMENTS]
    return msgspec.structs.replace(grid_pack, departments=departments,
                                   categories=default_categories(DEPARTMENTS))


async def citizen(live, person=LI):
    async with live.client(await live.key("operator")) as op:
        r = await op.post("/api/v1/citizens", json=person)
        assert r.status_code == 201, r.text
    return live.client(await live.key("citizen", name=person["id"]))


async def move(client, app_id, action, **body):
    r = await client.post(f"/api/v1/applications/{app_id}/actions/{action}", json=body)
    return r


async def test_search_the_catalogue(tmp_path, onestop_city, live_node) -> None:
    async with live_node(onestop_city, tmp_path / "data") as live:
        await _search(live)


async def _search(live) -> None:
    c = live.client(await live.key("citizen", name="c-1"))
    r = await c.get("/api/v1/services", params={"q": "restaurant"})
    assert r.status_code == 200, r.text
    first = r.json()["items"][0]
    assert (first["kind"], first["code"]) == ("bundle", "open_restaurant")
    assert {i["department"] for i in first["items"]} == {"market_regulation", "fire",
                                                         "city_management"}
    r = await c.get("/api/v1/services", params={"q": "食品经营"})
    assert r.json()["items"][0]["code"] == "food_operating_permit"
    assert r.json()["items"][0]["time_limit"] == "10wd"
    r = await c.get("/api/v1/services", params={"q": "", "department": "fire"})
    assert [i["code"] for i in r.json()["items"]] == ["open_restaurant", "fire_safety_inspection"]
    r = await c.get("/api/v1/services", params={"channel": "kiosk"})
    assert all("kiosk" in i["channels"] for i in r.json()["items"])
    assert (await c.get("/api/v1/services", params={"channel": "fax"})).status_code == 400
    item = (await c.get("/api/v1/services/food_operating_permit")).json()
    assert item["materials"][0]["licence_name"] == "Business licence"
    assert item["issues"] == {"type": "food_operating_permit", "valid_years": 5,
                              "name": "Food operating permit"}
    assert (await c.get("/api/v1/services/nothing")).status_code == 404
    device = live.client(await live.key("device"))
    assert (await device.get("/api/v1/services")).status_code == 403


async def test_open_a_restaurant_one_form_four_departments_one_notice(
        tmp_path, onestop_city, live_node) -> None:
    clock = Clock(MONDAY_10)
    async with live_node(onestop_city, tmp_path / "data", clock=clock,
                         notify_url="memory:") as live:
        li = await citizen(live)
        market = live.client(await live.key("department", "market_regulation"))
        fire = live.client(await live.key("department", "fire"))
        city = live.client(await live.key("department", "city_management"))
        housing = live.client(await live.key("department", "housing_construction"))
        sent = live.node.act.notifier.sent

        # The government already holds Li's title to the premises.
        r = await housing.post("/api/v1/licences", json={
            "holder": "c-000123", "type": "property_certificate", "number": "沪2020浦字001",
            "valid_from": "2020-05-01"})
        assert r.status_code == 201, r.text

        form = (await li.get("/api/v1/bundles/open_restaurant/form")).json()
        codes = [f["code"] for f in form["fields"]]
        assert len(codes) == len(set(codes))
        by_code = {f["code"]: f for f in form["fields"]}
        assert by_code["business_name"]["items"] == [
            "restaurant_business_licence", "food_operating_permit", "fire_safety_inspection",
            "outdoor_signage_permit"]  # asked once, for all four
        assert by_code["applicant_phone"]["value"] == "13812345678"  # filled in from the registry
        materials = {m["code"]: m for m in form["materials"]}
        assert materials["id_card"]["status"] == "shared"
        assert materials["premises_title"]["status"] == "attached"
        assert materials["business_licence"]["status"] == "pending"
        assert sorted(form["asked"]) == ["fire_safety_plan", "kitchen_layout", "sign_design"]

        # What is not handed in is named, with what is wrong with the answers.
        r = await li.post("/api/v1/applications", json={
            "bundle": "open_restaurant", "answers": {**RESTAURANT, "floor_area": "big"}})
        assert r.status_code == 400
        assert "field 'floor_area' (Floor area (m²)): 'big' is not a number" in r.json()["detail"]
        assert any("'kitchen_layout'" in p for p in r.json()["detail"])

        r = await li.post("/api/v1/applications", json={
            "bundle": "open_restaurant", "answers": RESTAURANT, "materials": HANDED_IN,
            "key": "form-1"})
        assert r.status_code == 201, r.text
        sub = r.json()
        assert sub["status"] == "submitted" and sub["channel"] == "online"
        apps = {a["item"]: a for a in sub["applications"]}
        assert {a["department"] for a in apps.values()} == {"market_regulation", "fire",
                                                            "city_management"}
        assert apps["fire_safety_inspection"]["answers"]["business_name"] == "Li's Noodles"
        # 10 working days for the fire inspection, from Monday 10:00.
        assert apps["fire_safety_inspection"]["due"] == MONDAY_10 + 14 * 86_400
        again = await li.post("/api/v1/applications", json={
            "bundle": "open_restaurant", "answers": RESTAURANT, "materials": HANDED_IN,
            "key": "form-1"})
        assert again.status_code == 200 and again.json()["repeated"]
        assert again.json()["id"] == sub["id"]
        licence_app = apps["restaurant_business_licence"]["id"]
        food_app = apps["food_operating_permit"]["id"]
        fire_app = apps["fire_safety_inspection"]["id"]
        sign_app = apps["outdoor_signage_permit"]["id"]

        # Each department sees its own queue, and only its own.
        queue = (await market.get("/api/v1/applications")).json()["items"]
        assert {a["id"] for a in queue} == {licence_app, food_app}
        assert [a["id"] for a in (await fire.get("/api/v1/applications")).json()["items"]] == [
            fire_app]
        assert (await fire.get(f"/api/v1/applications/{food_app}")).status_code == 404
        assert (await move(fire, food_app, "accept")).status_code == 404
        assert (await move(li, fire_app, "accept")).status_code == 403
        assert (await fire.get("/api/v1/applications",
                               params={"department": "police"})).status_code == 403

        clock.now += 3600
        assert (await move(fire, fire_app, "accept")).json()["status"] == "accepted"
        r = await move(fire, fire_app, "approve")
        assert r.status_code == 409
        assert "'business_licence' is still to be issued" in r.json()["error"]
        r = await li.get(f"/api/v1/submissions/{sub['id']}")
        assert r.json()["status"] == "in_progress"

        # The business licence is issued, and attached to the three others by itself.
        for action in ("accept", "approve", "issue_result"):
            r = await move(market, licence_app, action)
            assert r.status_code == 200, r.text
        result = r.json()["result"]
        assert result["outcome"] == "approved" and result["licence_number"]
        mine = (await li.get("/api/v1/licences")).json()["items"]
        business = next(m for m in mine if m["type"] == "business_licence")
        assert business["state"] == "valid" and business["issuer"] == "market_regulation"
        assert business["number"] == result["licence_number"]
        r = await fire.get(f"/api/v1/applications/{fire_app}")
        attached = {m["code"]: m for m in r.json()["materials"]}["business_licence"]
        assert attached["status"] == "attached" and attached["licence_id"] == business["id"]
        assert r.json()["timeline"][-1]["action"] == "material.attached"
        # Fire's and the sign's decisions.
        for action in ("approve", "issue_result"):
            assert (await move(fire, fire_app, action)).status_code == 200
        for action in ("accept", "approve", "issue_result"):
            assert (await move(city, sign_app, action)).status_code == 200

        # Market needs a better kitchen plan: the clock stands still until Li hands it in.
        r = await move(market, food_app, "need_more", reason="the plan lacks the kitchen",
                       asked=["kitchen_layout"])
        assert r.json()["status"] == "need_more" and r.json()["due"] is None
        assert (await li.get(f"/api/v1/submissions/{sub['id']}")).json()["status"] == \
            "need_more"
        assert any(n.kind == "application.need_more" and n.recipient == "13812345678"
                   for n in sent)
        clock.now += 86_400  # Tuesday 11:00
        r = await move(li, food_app, "resubmit")
        assert r.status_code == 409 and "kitchen_layout" in r.json()["error"]
        r = await move(li, food_app, "resubmit", materials={"kitchen_layout": "upload-4"},
                       answers={"floor_area": "ninety"})
        assert r.status_code == 400 and "'ninety' is not a number" in r.json()["error"]
        r = await move(li, food_app, "resubmit", materials={"kitchen_layout": "upload-4"},
                       answers={"floor_area": 90})
        assert r.status_code == 200, r.text
        assert r.json()["answers"]["floor_area"] == 90
        assert {m["code"]: m for m in r.json()["materials"]}["kitchen_layout"]["ref"] == \
            "upload-4"
        assert r.json()["due"] == MONDAY_10 + 15 * 86_400  # one working day later than before
        assert (await move(market, food_app, "approve")).status_code == 409  # not accepted yet
        assert not any(n.kind == "onestop.result" for n in sent)
        for action in ("accept", "approve", "issue_result"):
            r = await move(market, food_app, action)
            assert r.status_code == 200, r.text
        assert (await move(market, food_app, "issue_result")).status_code == 409

        done = (await li.get(f"/api/v1/submissions/{sub['id']}")).json()
        assert done["status"] == "done"
        assert {a["status"] for a in done["applications"]} == {"result_issued"}
        results = [n for n in sent if n.kind == "onestop.result"]
        assert len(results) == 1
        assert results[0].recipient == "13812345678"
        assert "Food operating permit: approved (No. " in results[0].body
        timeline = (await li.get(f"/api/v1/applications/{food_app}")).json()["timeline"]
        assert [e["action"] for e in timeline] == [
            "submit", "material.attached", "need_more", "resubmit", "accept", "approve",
            "issue_result"]
        listed = (await li.get("/api/v1/submissions")).json()["items"]
        assert [s["id"] for s in listed] == [sub["id"]]

        # The next application asks nothing the government now holds.
        form = (await li.get("/api/v1/services/liquor_retail_filing/form")).json()
        assert {m["code"]: m["status"] for m in form["materials"]} == {
            "business_licence": "attached", "food_operating_permit": "attached"}
        assert form["asked"] == []
        r = await li.post("/api/v1/applications", json={
            "service": "liquor_retail_filing", "answers": RESTAURANT | {"business_scope": None},
            "channel": "kiosk"})
        assert r.status_code == 400  # business_scope is not on this form
        r = await li.post("/api/v1/applications", json={
            "service": "liquor_retail_filing",
            "answers": {"business_name": "Li's Noodles", "business_address": "8 Zhangyang Road"},
            "channel": "kiosk"})
        assert r.status_code == 201, r.text


async def test_an_expired_licence_is_not_attached_and_the_reason_is_shown(
        tmp_path, onestop_city, live_node) -> None:
    async with live_node(onestop_city, tmp_path / "data", clock=Clock(MONDAY_10)) as live:
        li = await citizen(live)
        market = live.client(await live.key("department", "market_regulation"))
        fire = live.client(await live.key("department", "fire"))
        r = await market.post("/api/v1/licences", json={
            "holder": "c-000123", "type": "business_licence", "number": "91310115MA1",
            "valid_from": "2021-01-01"})
        assert r.status_code == 201 and r.json()["state"] == "valid"
        r = await market.post("/api/v1/licences", json={
            "holder": "c-000123", "type": "food_operating_permit", "number": "JY131011500001",
            "valid_from": "2021-04-01", "valid_until": "2026-03-31"})
        assert r.status_code == 201 and r.json()["state"] == "expired"
        # Issuers issue their own types only; numbers are unique within a type.
        r = await fire.post("/api/v1/licences", json={
            "holder": "c-000123", "type": "business_licence", "number": "X",
            "valid_from": "2021-01-01"})
        assert r.status_code == 403
        r = await market.post("/api/v1/licences", json={
            "holder": "c-000999", "type": "business_licence", "number": "Y",
            "valid_from": "2021-01-01"})
        assert r.status_code == 400  # no such citizen

        form = (await li.get("/api/v1/services/liquor_retail_filing/form")).json()
        materials = {m["code"]: m for m in form["materials"]}
        assert materials["business_licence"]["status"] == "attached"
        permit = materials["food_operating_permit"]
        assert permit["status"] == "asked"
        assert permit["reason"] == ("your food operating permit No. JY131011500001 expired on "
                                    "2026-03-31; renew it or hand in a valid one")
        answers = {"business_name": "Li's Noodles", "business_address": "8 Zhangyang Road"}
        r = await li.post("/api/v1/applications", json={
            "service": "liquor_retail_filing", "answers": answers})
        assert r.status_code == 400
        assert r.json()["detail"] == [
            "material 'food_operating_permit' (Food operating permit) is required: your food "
            "operating permit No. JY131011500001 expired on 2026-03-31; renew it or hand in a "
            "valid one"]
        # A business licence handed in is not taken: the store's is attached.
        r = await li.post("/api/v1/applications", json={
            "service": "liquor_retail_filing", "answers": answers,
            "materials": {"food_operating_permit": "new-permit.pdf",
                          "business_licence": "scan.pdf"}})
        assert r.status_code == 201, r.text
        materials = {m["code"]: m for m in r.json()["applications"][0]["materials"]}
        assert materials["business_licence"]["status"] == "attached"
        assert materials["business_licence"]["licence_number"] == "91310115MA1"
        assert materials["food_operating_permit"]["status"] == "provided"

        # A revoked licence is no longer attached either.
        lic_id = "lic-business_licence-91310115MA1"
        r = await market.post(f"/api/v1/licences/{lic_id}/revoke", json={"reason": "closed"})
        assert r.status_code == 200 and r.json()["state"] == "revoked"
        form = (await li.get("/api/v1/services/liquor_retail_filing/form")).json()
        business = {m["code"]: m for m in form["materials"]}["business_licence"]
        assert business["status"] == "asked" and "was revoked: closed" in business["reason"]
        other = live.client(await live.key("citizen", name="c-000999"))
        assert (await other.get(f"/api/v1/licences/{lic_id}")).status_code == 404
        assert (await other.get("/api/v1/licences", params={"holder": "c-000123"})).status_code \
            == 403


async def test_enjoy_without_applying_run_twice_grants_once(
        tmp_path, onestop_city, live_node) -> None:
    clock = Clock(MONDAY_10)
    async with live_node(onestop_city, tmp_path / "data", clock=clock,
                         notify_url="memory:") as live:
        op = live.client(await live.key("operator"))
        people = [
            {"id": "c-old-alone", "name": "Wang", "phone": "13900000001",
             "birth_date": "1942-05-01", "attributes": {"lives_alone": True}},
            {"id": "c-old-family", "name": "Zhao", "birth_date": "1941-01-01",
             "attributes": {"lives_alone": False}},
            {"id": "c-young-alone", "name": "Sun", "birth_date": "1990-01-01",
             "attributes": {"lives_alone": True}},
            {"id": "c-old-unknown", "name": "Qian", "birth_date": "1930-01-01"},
        ]
        for p in people:
            assert (await op.post("/api/v1/citizens", json=p)).status_code == 201
        policies = (await op.get("/api/v1/policies")).json()["items"]
        assert "elderly_care_subsidy_80_alone" in [p["id"] for p in policies]

        path = "/api/v1/policies/elderly_care_subsidy_80_alone/run"
        dept = live.client(await live.key("department", "civil_affairs"))
        assert (await dept.post(path)).status_code == 403
        r = await op.post(path)
        assert r.status_code == 200, r.text
        first = r.json()
        assert (first["citizens"], first["qualified"], first["granted"], first["already"]) == (
            4, 1, 1, 0)
        assert first["granted_to"] == ["c-old-alone"]
        notices = [n for n in live.node.act.notifier.sent if n.kind == "benefit.granted"]
        assert [n.recipient for n in notices] == ["13900000001"]

        clock.now += 86_400
        again = (await op.post(path)).json()
        assert (again["qualified"], again["granted"], again["already"]) == (1, 0, 1)
        assert len([n for n in live.node.act.notifier.sent if n.kind == "benefit.granted"]) == 1

        # Someone who comes to qualify later is granted on the next run, and only they.
        r = await op.post("/api/v1/citizens", json={**people[1], "attributes": {
            "lives_alone": True}})
        assert r.status_code == 200
        clock.now += 86_400
        third = (await op.post(path)).json()
        assert (third["granted"], third["already"], third["granted_to"]) == (
            1, 1, ["c-old-family"])

        wang = live.client(await live.key("citizen", name="c-old-alone"))
        mine = (await wang.get("/api/v1/benefits")).json()["items"]
        assert len(mine) == 1 and mine[0]["policy"] == "elderly_care_subsidy_80_alone"
        assert mine[0]["audit"] == [
            {"condition": "age >= 80", "held": True, "values": {"age": 84}},
            {"condition": "lives_alone", "held": True, "values": {"lives_alone": True}}]
        assert (await wang.get("/api/v1/benefits", params={"citizen": "c-old-family"})
                ).status_code == 403
        runs = (await op.get("/api/v1/policies/elderly_care_subsidy_80_alone")).json()["runs"]
        assert [(r["granted"], r["already"]) for r in runs] == [(1, 1), (0, 1), (1, 0)]
        assert (await op.post("/api/v1/policies/nothing/run")).status_code == 404


async def test_an_application_past_its_limit_shows_overdue_to_staff_and_citizen(
        tmp_path, onestop_city, live_node) -> None:
    clock = Clock(MONDAY_10)
    async with live_node(onestop_city, tmp_path / "data", clock=clock, notify_url="memory:",
                         escalate_tick_s=3600.0) as live:
        li = await citizen(live)
        market = live.client(await live.key("department", "market_regulation"))
        fire = live.client(await live.key("department", "fire"))
        op = live.client(await live.key("operator"))
        r = await li.post("/api/v1/applications", json={
            "bundle": "open_restaurant", "answers": RESTAURANT,
            "materials": {**HANDED_IN, "premises_title": "lease.pdf"}})
        assert r.status_code == 201, r.text
        sub = r.json()
        assert (sub["overdue"], sub["overdue_since"]) == (False, None)
        licence_app = next(a["id"] for a in sub["applications"]
                           if a["item"] == "restaurant_business_licence")  # 1 working day

        clock.now = MONDAY_10 + 86_400 + 3600  # Tuesday 11:00, an hour past its limit
        assert (await live.node.serve.scheduler.tick())["applications_overdue"] == 1
        app = (await market.get(f"/api/v1/applications/{licence_app}")).json()
        assert app["overdue"] is True and app["overdue_since"] == MONDAY_10 + 86_400
        assert app["timeline"][-1]["action"] == "overdue"
        assert app["timeline"][-1]["reason"] == "1 h late on the working-hours clock"
        listed = (await market.get("/api/v1/applications", params={"overdue": "true"})).json()
        assert [a["id"] for a in listed["items"]] == [licence_app] and listed["next"] is None
        assert (await fire.get("/api/v1/applications",
                               params={"overdue": "true"})).json()["items"] == []
        everyone = (await op.get("/api/v1/applications", params={"overdue": "true"})).json()
        assert [a["id"] for a in everyone["items"]] == [licence_app]
        # The bundle is overdue because one of its departments is.
        mine = (await li.get(f"/api/v1/submissions/{sub['id']}")).json()
        assert mine["overdue"] is True and mine["overdue_since"] == MONDAY_10 + 86_400
        sent = live.node.act.notifier.sent
        assert [n.recipient for n in sent if n.kind == "application.overdue"] == [
            "market_regulation"]

        for action in ("accept", "approve"):
            assert (await move(market, licence_app, action)).status_code == 200
        app = (await li.get(f"/api/v1/applications/{licence_app}")).json()
        assert app["overdue"] is False and app["overdue_since"] == MONDAY_10 + 86_400
        assert (await li.get(f"/api/v1/submissions/{sub['id']}")).json()["overdue"] is False
        assert (await market.get("/api/v1/applications",
                                 params={"overdue": "true"})).json()["items"] == []


TOWN_A = "990001001"
ZHANG = {"id": "c-000456", "name": "Zhang Min", "phone": "13900000456",
         "birth_date": "1940-03-01", "area": "990001002001", "address": "2 Dongfang Road",
         "attributes": {"lives_alone": True}}
LIQUOR = {"service": "liquor_retail_filing",
          "answers": {"business_name": "Corner shop", "business_address": "2 Dongfang Road"},
          "materials": {"business_licence": "scan-1", "food_operating_permit": "scan-2"}}


async def test_a_key_sees_one_stop_records_of_its_own_scope_only(
        tmp_path, onestop_city, live_node) -> None:
    """Issue 12: an operator scoped to one town read other towns' applications, submissions and
    licences, and a department key read a housing licence of a citizen it has nothing to do
    with. Every read, list and action checks the key's scope against the record as stored."""
    async with live_node(onestop_city, tmp_path / "data", clock=Clock(MONDAY_10),
                         notify_url="memory:") as live:
        li = await citizen(live)  # lives in town A
        zhang = await citizen(live, ZHANG)  # in town B
        housing = live.client(await live.key("department", "housing_construction"))
        market = live.client(await live.key("department", "market_regulation"))
        town_a = live.client(await live.key("operator", TOWN_A))
        admin_a = live.client(await live.key("admin", TOWN_A))
        everyone = live.client(await live.key("operator"))
        r = await housing.post("/api/v1/licences", json={
            "holder": ZHANG["id"], "type": "property_certificate", "number": "沪2021浦字002",
            "valid_from": "2021-05-01"})
        assert r.status_code == 201, r.text
        deed = r.json()["id"]
        r = await zhang.post("/api/v1/applications", json=LIQUOR)
        assert r.status_code == 201, r.text
        theirs = r.json()
        r = await li.post("/api/v1/applications", json=LIQUOR)
        assert r.status_code == 201, r.text
        mine = r.json()
        their_app, my_app = theirs["applications"][0]["id"], mine["applications"][0]["id"]
        assert (await everyone.post(
            "/api/v1/policies/elderly_care_subsidy_80_alone/run")).json()["granted"] == 1

        # Town B's records answer as if they did not exist; town A's own are there.
        for path in (f"/api/v1/applications/{their_app}", f"/api/v1/submissions/{theirs['id']}",
                     f"/api/v1/licences/{deed}"):
            r = await town_a.get(path)
            assert r.status_code == 404, (path, r.text)
        assert (await town_a.get(f"/api/v1/applications/{my_app}")).status_code == 200
        assert (await town_a.get(f"/api/v1/submissions/{mine['id']}")).status_code == 200
        # Lists are narrowed the same way.
        listed = (await town_a.get("/api/v1/applications")).json()["items"]
        assert [a["id"] for a in listed] == [my_app]
        listed = (await town_a.get("/api/v1/submissions")).json()["items"]
        assert [s["id"] for s in listed] == [mine["id"]]
        for path, params in (("/api/v1/submissions", {"citizen": ZHANG["id"]}),
                             ("/api/v1/licences", {"holder": ZHANG["id"]}),
                             ("/api/v1/benefits", {"citizen": ZHANG["id"]})):
            r = await town_a.get(path, params=params)
            assert r.status_code == 200 and r.json()["items"] == [], (path, r.text)
        assert len((await everyone.get("/api/v1/benefits",
                                       params={"citizen": ZHANG["id"]})).json()["items"]) == 1
        # Nothing is made or moved for town B's citizen by a town A key.
        r = await town_a.post("/api/v1/applications", json={**LIQUOR, "citizen": ZHANG["id"]})
        assert r.status_code in (403, 404), r.text
        r = await everyone.get("/api/v1/submissions", params={"citizen": ZHANG["id"]})
        assert [s["id"] for s in r.json()["items"]] == [theirs["id"]]
        assert (await move(admin_a, their_app, "accept")).status_code == 404
        # A policy run covers the whole city: not for a town's key.
        r = await town_a.post("/api/v1/policies/elderly_care_subsidy_80_alone/run")
        assert r.status_code == 403

        # A department sees the licences it issues, not another's title deed ...
        assert (await market.get(f"/api/v1/licences/{deed}")).status_code == 404
        r = await market.get("/api/v1/licences", params={"holder": ZHANG["id"]})
        assert r.json()["items"] == []
        r = await market.post(f"/api/v1/licences/{deed}/revoke", json={"reason": "mine now"})
        assert r.status_code == 404
        r = await housing.get(f"/api/v1/licences/{deed}")
        assert r.status_code == 200 and r.json()["state"] == "valid"
        # ... and the applications it decides, wherever the applicant lives.
        r = await market.get(f"/api/v1/applications/{their_app}")
        assert r.status_code == 200 and r.json()["status"] == "submitted"
        assert (await housing.get(f"/api/v1/applications/{their_app}")).status_code == 404
        assert (await housing.get(f"/api/v1/submissions/{theirs['id']}")).status_code == 404


async def test_one_stop_input_is_bounded(tmp_path, onestop_city, live_node) -> None:
    """Issue 12: every text field has a length cap, form answers are plain values of bounded
    size, and a body over 1 MiB is refused while it streams in."""
    async with live_node(onestop_city, tmp_path / "data", clock=Clock(MONDAY_10)) as live:
        li = await citizen(live)
        market = live.client(await live.key("department", "market_regulation"))
        answers = LIQUOR["answers"]

        async def refused(r, status: int, field: str = "") -> None:
            assert r.status_code == status, r.text[:300]
            assert field in r.json()["error"], r.text[:300]

        await refused(await li.post("/api/v1/applications", json={
            **LIQUOR, "answers": {**answers, "business_name": "x" * (2 << 20)}}), 413)
        await refused(await li.post("/api/v1/applications", json={
            **LIQUOR, "answers": {**answers, "business_name": "x" * 5000}}), 400, "answers")
        deep: object = "x"
        for _ in range(40):
            deep = [deep]
        await refused(await li.post("/api/v1/applications", json={
            **LIQUOR, "answers": {**answers, "business_name": deep}}), 400)
        await refused(await li.post("/api/v1/applications", json={**LIQUOR, "key": "k" * 1000}),
                      400, "key")
        await refused(await li.post("/api/v1/applications", json={
            **LIQUOR, "materials": {"business_licence": "s" * 5000}}), 400, "materials")
        r = await li.post("/api/v1/applications", json=LIQUOR)
        assert r.status_code == 201, r.text
        app_id = r.json()["applications"][0]["id"]
        await refused(await move(market, app_id, "need_more", reason="r" * 5000), 400, "reason")
        await refused(await market.post("/api/v1/licences", json={
            "holder": LI["id"], "type": "business_licence", "number": "9" * 500,
            "valid_from": "2021-01-01"}), 400, "number")
        await refused(await li.get("/api/v1/services", params={"q": "x" * 1000}), 400, "q")
        await refused(await market.get("/api/v1/applications", params={"limit": 0}), 400,
                      "limit")
        await refused(await market.get("/api/v1/applications", params={"status": "lost"}), 400,
                      "status")
        # Nothing of the refused ones was taken.
        r = await market.get("/api/v1/applications")
        assert [a["id"] for a in r.json()["items"]] == [app_id]
        assert r.json()["items"][0]["status"] == "submitted"
