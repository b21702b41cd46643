"""Open311 service requests on a live node: posted as form fields with an api_key, filed as
incidents (merging with nearby duplicates), read back one by one, by list, by token, by dates,
code and status, with their status following the incident; every refusal in the spec's
format."""

from __future__ import annotations

import datetime as dt

import pytest
from lxml import etree

from cityops.act.desk import incident_id_for
from cityops.auth import new_key
from cityops.store.record_rows import Record

from .conftest import BASE, GARBAGE, HERE, MONDAY_10, NOISE, SHANGHAI, VILLAGE, Clock

DAY = 86400.0


def _iso(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, SHANGHAI).isoformat(timespec="seconds")


async def post(c, fmt="json", **fields):
    return await c.post(f"{BASE}/requests.{fmt}", data=fields)


async def one(c, request_id: str) -> dict:
    r = await c.get(f"{BASE}/requests/{request_id}.json")
    assert r.status_code == 200, r.text
    (doc,) = r.json()
    return doc


async def test_a_request_is_filed_and_read_back_in_json_and_xml(tmp_path, city, live_node):
    clock = Clock(MONDAY_10)
    async with live_node(city, tmp_path / "data", clock=clock, notify_url="memory:") as live:
        key = await live.key("citizen", name="c-000001")
        op = live.client(await live.key("operator"))
        c = live.client()
        r = await post(c, api_key=key, service_code=GARBAGE, **HERE,
                       description="Bags torn open by the gate", email="li@example.cn",
                       first_name="Li", last_name="Lei", phone="13812345678",
                       device_id="phone-7", account_id="acct-9",
                       media_url="https://photos.example.cn/1.jpg",
                       **{"attribute[amount]": "car_load",
                          "attribute[waste_kind][]": ["household", "furniture"]})
        assert r.status_code == 200, r.text
        (answer,) = r.json()
        request_id, token = answer["service_request_id"], answer["token"]
        assert len(request_id) == 12 and request_id.isdigit() and len(token) == 32
        assert answer["account_id"] == "acct-9"
        assert answer["service_notice"] == ("Sent to Sanitation; to be dealt with within 4 "
                                            "working hours of being dispatched.")

        # The request is a report of an incident, keyed by its own id.
        incident_id = incident_id_for(f"open311:{request_id}")
        inc = (await op.get(f"/api/v1/incidents/{incident_id}")).json()
        assert inc["source"] == "open311" and inc["category"] == "event.sanitation.exposed_garbage"
        # Exposed garbage is registered and dispatched at once (the category table says so).
        assert inc["status"] == "dispatched" and inc["areas"]["village"] == VILLAGE
        (report,) = inc["reports_filed"]
        assert report["key"] == f"open311:{request_id}" and report["reporter"] == "c-000001"
        data = report["data"]
        assert data["attributes"] == {"amount": "car_load",
                                      "waste_kind": ["household", "furniture"]}
        # The operator's view keeps the contact but masks the phone number.
        assert data["contact"] == {"email": "li@example.cn", "device_id": "phone-7",
                                   "account_id": "acct-9", "first_name": "Li",
                                   "last_name": "Lei", "phone": "138****5678"}
        # The case is given the phone masked; the request's own record keeps it whole,
        # sealed at rest, for the citizen's export.
        stored = await live.node.store.incident_reports(incident_id)
        assert stored[0].data["contact"]["phone"] == "138****5678"
        kept = await live.node.store.get_record("open311.request", request_id)
        assert b'"phone":"13812345678"' in kept.doc
        on_disk = b"".join(p.read_bytes() for p in (tmp_path / "data").glob("state.db*"))
        assert b"13812345678" not in on_disk

        doc = await one(c, request_id)
        assert doc == {
            "service_request_id": request_id, "status": "open",
            "status_notes": "Sent to the responsible department.",
            "service_name": "Exposed garbage", "service_code": GARBAGE,
            "description": "Bags torn open by the gate", "agency_responsible": "Sanitation",
            "service_notice": answer["service_notice"],
            "requested_datetime": "2026-11-23T10:00:00+08:00",
            "updated_datetime": "2026-11-23T10:00:00+08:00",
            "expected_datetime": _iso(inc["close_due"]),
            "address": "Town 1 Village 1, Town 1, Grid District", "address_id": None,
            "zipcode": None, "lat": 31.15, "long": 121.45,
            "media_url": "https://photos.example.cn/1.jpg"}
        # Nothing in what GET publishes identifies the caller.
        assert "13812345678" not in (await c.get(f"{BASE}/requests.json")).text

        x = await c.get(f"{BASE}/requests/{request_id}.xml")
        assert x.headers["content-type"] == "text/xml; charset=utf-8"
        root = etree.fromstring(x.content)
        assert root.tag == "service_requests" and len(root) == 1 and root[0].tag == "request"
        assert [e.tag for e in root[0]] == list(doc)
        assert root[0].findtext("lat") == "31.15" and root[0].findtext("zipcode") == ""
        assert root[0].findtext("expected_datetime") == doc["expected_datetime"]

        for fmt in ("json", "xml"):
            t = await c.get(f"{BASE}/tokens/{token}.{fmt}")
            assert t.status_code == 200
        assert t.text.endswith("<service_requests><request><service_request_id>"
                               f"{request_id}</service_request_id><token>{token}</token>"
                               "</request></service_requests>")
        t = await c.get(f"{BASE}/tokens/{token}.json")
        assert t.json() == [{"service_request_id": request_id, "token": token}]

        # POST answered in XML too, with the spec's elements.
        x = await post(c, "xml", api_key=key, service_code=GARBAGE, lat="31.16", long="121.46")
        root = etree.fromstring(x.content)
        assert [e.tag for e in root[0]] == ["service_request_id", "token", "service_notice",
                                            "account_id"]
        assert root[0].findtext("account_id") == ""
        for client in (op, c):
            await client.aclose()


async def test_status_and_notes_follow_the_incident(tmp_path, city, live_node):
    clock = Clock(MONDAY_10)
    async with live_node(city, tmp_path / "data", clock=clock, notify_url="memory:") as live:
        key = await live.key("citizen", name="c-000002")
        op = live.client(await live.key("operator"))
        san = live.client(await live.key("department", "sanitation"))
        inspector = live.client(await live.key("field", "990001001", "ins-01"))
        c = live.client()
        request_id = (await post(c, api_key=key, service_code=GARBAGE, **HERE)).json()[0][
            "service_request_id"]
        incident = f"/api/v1/incidents/{incident_id_for('open311:' + request_id)}"
        order = (await op.get(incident)).json()["orders"][0]["id"]

        clock.now += 600
        r = await san.post(f"/api/v1/work-orders/{order}/actions/accept", json={})
        assert r.status_code == 200, r.text
        doc = await one(c, request_id)
        assert doc["status"] == "open"
        assert doc["status_notes"] == "The responsible department is working on it."
        assert doc["updated_datetime"] == "2026-11-23T10:10:00+08:00"

        clock.now += 3600
        r = await san.post(f"/api/v1/work-orders/{order}/actions/finish",
                           json={"note": "Cleared and the bin lid fixed"})
        assert r.status_code == 200, r.text
        doc = await one(c, request_id)
        assert doc["status_notes"] == ("Reported done by the department; waiting to be checked "
                                       "on site. Note: Cleared and the bin lid fixed")
        await inspector.post(f"{incident}/actions/verify", json={})
        clock.now += 60
        r = await op.post(f"{incident}/actions/close", json={})
        assert r.json()["status"] == "closed", r.text
        doc = await one(c, request_id)
        assert doc["status"] == "closed"
        assert doc["status_notes"] == "Closed. Note: Cleared and the bin lid fixed"
        assert doc["updated_datetime"] == "2026-11-23T11:11:00+08:00"

        # A noise complaint waits for the centre; cancelled as a false report, it is closed
        # with the centre's reason.
        noisy = (await post(c, api_key=key, service_code=NOISE, lat="31.25", long="121.55",
                            **{"attribute[noise_source]": "banging"})).json()[0]
        doc = await one(c, noisy["service_request_id"])
        assert doc["status"] == "open" and doc["expected_datetime"] is None
        assert doc["status_notes"] == ("Received; waiting to be checked by the city's "
                                       "supervision centre.")
        assert doc["agency_responsible"] == "Environment, City management, Police"
        noisy_incident = incident_id_for("open311:" + noisy["service_request_id"])
        r = await op.post(f"/api/v1/incidents/{noisy_incident}/actions/cancel",
                          json={"reason": "Building site with a permit for night work"})
        assert r.status_code == 200, r.text
        doc = await one(c, noisy["service_request_id"])
        assert doc["status"] == "closed"
        assert doc["status_notes"] == ("Cancelled. Note: Building site with a permit for night "
                                       "work")

        closed = (await c.get(f"{BASE}/requests.json", params={"status": "closed"})).json()
        assert {d["service_request_id"] for d in closed} == {request_id,
                                                             noisy["service_request_id"]}
        assert (await c.get(f"{BASE}/requests.json", params={"status": "open"})).json() == []
        both = (await c.get(f"{BASE}/requests.json", params={"status": "open,closed"})).json()
        assert len(both) == 2
        for client in (op, san, inspector, c):
            await client.aclose()


async def test_nearby_duplicates_join_one_incident(tmp_path, city, live_node):
    clock = Clock(MONDAY_10)
    async with live_node(city, tmp_path / "data", clock=clock, notify_url="memory:") as live:
        keys = [await live.key("citizen", name=f"c-{i}") for i in range(3)]
        op = live.client(await live.key("operator"))
        c = live.client()
        answers = []
        # Two neighbours 20 m apart, ten minutes apart; a third caller in another village.
        for key, (lat, lon) in zip(keys, [("31.1500", "121.4500"), ("31.1502", "121.4501"),
                                          ("31.2500", "121.4500")]):
            r = await post(c, api_key=key, service_code=NOISE, lat=lat, long=lon,
                           **{"attribute[noise_source]": "music_party"})
            assert r.status_code == 200, r.text
            answers.append(r.json()[0])
            clock.now += 600
        first, second, third = (a["service_request_id"] for a in answers)
        assert len({first, second, third}) == 3
        assert answers[1]["service_notice"].startswith("This was already reported: your "
                                                       "request joined the open case.")
        assert not answers[0]["service_notice"].startswith("This was already reported")
        case = incident_id_for(f"open311:{first}")
        inc = (await op.get(f"/api/v1/incidents/{case}")).json()
        assert inc["reports"] == 2
        assert [r["key"] for r in inc["reports_filed"]] == [f"open311:{first}",
                                                           f"open311:{second}"]
        assert (await op.get(f"/api/v1/incidents/{incident_id_for('open311:' + third)}")
                ).json()["reports"] == 1
        assert live.node.act.desk.stats["merged"] == 1
        assert live.node.act.desk.stats["created"] == 2

        # Both requests of the case close with it.
        await op.post(f"/api/v1/incidents/{case}/actions/cancel", json={"reason": "Party over"})
        for request_id in (first, second):
            assert (await one(c, request_id))["status"] == "closed"
        assert (await one(c, third))["status"] == "open"
        await op.aclose()
        await c.aclose()


@pytest.mark.parametrize("fmt", ["json", "xml"])
async def test_post_refusals(tmp_path, city, live_node, fmt):
    async with live_node(city, tmp_path / "data", notify_url="memory:") as live:
        key = await live.key("citizen", name="c-000003")
        device = await live.key("device")
        elsewhere = await live.key("operator", "990001002")
        revoked, record = new_key("citizen", None, "c-gone")
        await live.node.store.add_key(record)
        await live.node.store.revoke_key(record.id)
        c = live.client()

        async def refused(status: int, expected: str, **fields) -> None:
            r = await post(c, fmt, **fields)
            assert r.status_code == status, (fields, r.text)
            if fmt == "json":
                assert r.headers["content-type"] == "application/json; charset=utf-8"
                (error,) = r.json()
                assert error["code"] == status, r.text
                description = error["description"]
            else:
                assert r.headers["content-type"] == "text/xml; charset=utf-8"
                root = etree.fromstring(r.content)
                assert root.tag == "errors" and root[0].tag == "error"
                assert root[0].findtext("code") == str(status)
                description = root[0].findtext("description")
            assert expected in description, (fields, description)

        noise = {"service_code": NOISE, "attribute[noise_source]": "talking"}
        await refused(403, "api_key was not provided", service_code=GARBAGE, **HERE)
        await refused(403, "Invalid api_key received", api_key="co_nonsense",
                      service_code=GARBAGE, **HERE)
        await refused(403, "Invalid api_key received", api_key=revoked, service_code=GARBAGE,
                      **HERE)
        await refused(403, "a device api_key may not post requests", api_key=device,
                      service_code=GARBAGE, **HERE)
        await refused(403, "outside the area of this api_key", api_key=elsewhere,
                      service_code=GARBAGE, **HERE)
        await refused(404, "jurisdiction_id 'nyc.gov' was not found", api_key=key,
                      jurisdiction_id="nyc.gov", service_code=GARBAGE, **HERE)
        await refused(400, "service_code was not provided", api_key=key, **HERE)
        await refused(404, "service_code 'pothole' was not found", api_key=key,
                      service_code="pothole", **HERE)
        await refused(400, "lat 'north' is not a number", api_key=key, service_code=GARBAGE,
                      lat="north", long="121.45")
        await refused(400, "lat '95' is not between -90 and 90", api_key=key,
                      service_code=GARBAGE, lat="95", long="121.45")
        await refused(400, "long 'inf' is not between -180 and 180", api_key=key,
                      service_code=GARBAGE, lat="31.15", long="inf")
        await refused(400, "lat and long must be given together", api_key=key,
                      service_code=GARBAGE, lat="31.15")
        await refused(400, "(40.7, -74.0) lies outside Grid City", api_key=key,
                      service_code=GARBAGE, lat="40.7", long="-74.0")
        await refused(400, "a location is required", api_key=key, service_code=GARBAGE)
        await refused(400, "address_string '1 Main St' names no neighbourhood of Grid City",
                      api_key=key, service_code=GARBAGE, address_string="1 Main St")
        await refused(400, "address_id '123' is not an area code of Grid City", api_key=key,
                      service_code=GARBAGE, address_id="123")
        await refused(400, "address_id '990001001' is a whole town (Town 1)", api_key=key,
                      service_code=GARBAGE, address_id="990001001")
        await refused(400, "attribute[noise_source] is required", api_key=key,
                      service_code=NOISE, **HERE)
        await refused(400, "attribute[noise_source] value 'dragon' is not one of: music_party",
                      api_key=key, service_code=NOISE, **HERE,
                      **{"attribute[noise_source]": "dragon"})
        await refused(400, f"service {NOISE} has no attribute 'colour'", api_key=key, **noise,
                      **HERE, **{"attribute[colour]": "red"})
        await refused(400, "attribute[homes_affected] 'many' is not a number", api_key=key,
                      service_code="event-housing-heat_hot_water", **HERE,
                      **{"attribute[homes_affected]": "many"})
        await refused(400, "attribute[waste_kind] value 'gold' is not one of", api_key=key,
                      service_code=GARBAGE, **HERE,
                      **{"attribute[waste_kind][]": ["household", "gold"]})
        await refused(400, "media_url 'ftp://x/y.jpg' is not an http(s) URL", api_key=key,
                      **noise, **HERE, media_url="ftp://x/y.jpg")
        await refused(400, "email 'nobody' is not an e-mail address", api_key=key, **noise,
                      **HERE, email="nobody")
        await refused(400, "description is longer than 4000 characters", api_key=key, **noise,
                      **HERE, description="x" * 4001)

        # A JSON body is not what the spec posts.
        r = await c.post(f"{BASE}/requests.{fmt}",
                         json={"api_key": key, "service_code": GARBAGE, **HERE})
        assert r.status_code == 415
        assert (live.node.act.desk.stats["reports"]) == 0  # nothing refused got filed
        await c.aclose()


async def test_other_ways_to_say_where_and_who(tmp_path, city, live_node):
    async with live_node(city, tmp_path / "data", notify_url="memory:") as live:
        key = await live.key("citizen", name="c-000004")
        c = live.client()
        # A neighbourhood by name, or by its area code: filed in that village, with no point.
        r = await post(c, api_key=key, service_code=GARBAGE, address_string="town 1 village 2")
        assert r.status_code == 200, r.text
        doc = await one(c, r.json()[0]["service_request_id"])
        assert (doc["address"], doc["lat"], doc["long"]) == ("town 1 village 2", None, None)
        r = await post(c, api_key=key, service_code=GARBAGE, address_id="990001002001")
        doc = await one(c, r.json()[0]["service_request_id"])
        assert doc["address_id"] == "990001002001"
        assert doc["address"] == "Town 2 Village 1, Town 2, Grid District"
        inc = await live.node.store.get_incident(
            incident_id_for("open311:" + doc["service_request_id"]))
        assert inc.areas.village == "990001002001" and inc.lat is None
        # lat/long win over an address, which is kept as the caller wrote it.
        r = await post(c, api_key=key, service_code=GARBAGE, **HERE,
                       address_string="By the school gate")
        doc = await one(c, r.json()[0]["service_request_id"])
        assert (doc["address"], doc["lat"]) == ("By the school gate", 31.15)
        # A CityOps client may send its key as a bearer header instead; a field inspector may
        # post too; fields in the query string count as form fields.
        inspector = await live.key("field", "990001001", "ins-02")
        r = await c.post(f"{BASE}/requests.json", params={"service_code": GARBAGE},
                         data=HERE, headers={"Authorization": f"Bearer {inspector}"})
        assert r.status_code == 200, r.text
        # Characters XML cannot carry are dropped from XML answers; markup is escaped.
        r = await post(c, api_key=key, service_code=GARBAGE, **HERE,
                       description="Bins <full> & \x07overflowing")
        x = await c.get(f"{BASE}/requests/{r.json()[0]['service_request_id']}.xml")
        assert b"&lt;full&gt; &amp; overflowing" in x.content
        assert etree.fromstring(x.content)[0].findtext("description") == \
            "Bins <full> & overflowing"
        await c.aclose()


async def test_listing_by_ids_codes_dates_and_status(tmp_path, city, live_node):
    clock = Clock(MONDAY_10)
    async with live_node(city, tmp_path / "data", clock=clock, notify_url="memory:") as live:
        key = await live.key("citizen", name="c-000005")
        c = live.client()
        made = {}
        # Day 0, day 10 and day 100; the last two villages apart so that nothing merges.
        for day, code, where in [(0, GARBAGE, HERE), (10, NOISE, {"lat": "31.25",
                                                                  "long": "121.45"}),
                                 (100, GARBAGE, {"lat": "31.15", "long": "121.55"})]:
            clock.now = MONDAY_10 + day * DAY
            r = await post(c, api_key=key, service_code=code, **where,
                           **({"attribute[noise_source]": "alarm"} if code == NOISE else {}))
            assert r.status_code == 200, r.text
            made[day] = r.json()[0]["service_request_id"]

        async def ids(**params) -> list[str]:
            r = await c.get(f"{BASE}/requests.json", params=params)
            assert r.status_code == 200, r.text
            return [d["service_request_id"] for d in r.json()]

        # Default: the most recent 90 days, newest first.
        assert await ids() == [made[100], made[10]]
        assert await ids(service_code=GARBAGE) == [made[100]]
        assert await ids(service_code=f"{NOISE},{GARBAGE}") == [made[100], made[10]]
        assert await ids(service_code="nothing-like-it") == []
        # Dates: W3C with Z or an offset; a bare date is midnight in the city.
        assert await ids(start_date="2026-11-23T00:00:00Z", end_date="2026-12-31T00:00:00Z") \
            == [made[10], made[0]]
        assert await ids(start_date="2026-11-23T10:00:00+08:00",
                         end_date="2026-11-23T10:00:00+08:00") == [made[0]]
        assert await ids(start_date="2026-12-01") == [made[10]]  # to 90 days later
        assert await ids(end_date="2026-11-24") == [made[0]]
        # A list of ids overrides every other filter, even the window; unknown ids are left out.
        assert await ids(service_request_id=f"{made[0]},999,{made[100]}",
                         service_code=NOISE) == [made[0], made[100]]

        async def bad(expected: str, **params) -> None:
            for fmt in ("json", "xml"):
                r = await c.get(f"{BASE}/requests.{fmt}", params=params)
                assert r.status_code == 400, (params, r.text)
                if fmt == "json":
                    assert expected in r.json()[0]["description"]
                else:
                    assert expected in etree.fromstring(r.content)[0].findtext("description")

        await bad("start_date 'yesterday' is not a W3C datetime", start_date="yesterday")
        await bad("end_date '2026-13-01' is not a W3C datetime", end_date="2026-13-01")
        await bad("end_date is before start_date", start_date="2026-12-01T00:00:00Z",
                  end_date="2026-11-01T00:00:00Z")
        await bad("may not span more than 90 days", start_date="2026-01-01T00:00:00Z",
                  end_date="2026-12-01T00:00:00Z")
        await bad("status 'pending' is not open or closed", status="open,pending")

        for fmt in ("json", "xml"):
            r = await c.get(f"{BASE}/requests/100000000000.{fmt}")
            assert r.status_code == 404
            r = await c.get(f"{BASE}/tokens/deadbeef.{fmt}")
            assert r.status_code == 404
        assert r.text.endswith("<errors><error><code>404</code><description>token 'deadbeef' "
                               "was not found</description></error></errors>")
        # An empty list is an empty root element in XML.
        r = await c.get(f"{BASE}/requests.xml", params={"service_code": "nothing"})
        assert etree.fromstring(r.content).tag == "service_requests" and r.text.endswith(
            "<service_requests />")
        await c.aclose()


async def test_a_listing_stops_at_1000_newest_first(tmp_path, city, live_node):
    clock = Clock(MONDAY_10)
    async with live_node(city, tmp_path / "data", clock=clock, notify_url="memory:",
                         store_url="memory://") as live:
        # Records as the intake writes them, straight into the store: 1,100 requests a minute
        # apart, all of them on one incident.
        key = await live.key("citizen", name="c-000006")
        c = live.client()
        first = (await post(c, api_key=key, service_code=GARBAGE, **HERE)).json()[0]
        rec = await live.node.store.get_record("open311.request", first["service_request_id"])
        for i in range(1, 1100):
            await live.node.store.put_record(Record(
                kind=rec.kind, id=str(200000000000 + i), doc=rec.doc, unique=f"t{i}",
                created=MONDAY_10 + 60 * i))
        clock.now = MONDAY_10 + 60 * 1100
        r = await c.get(f"{BASE}/requests.json")
        got = [d["requested_datetime"] for d in r.json()]
        assert len(got) == 1000 and got == sorted(got, reverse=True)
        assert got[0] == _iso(MONDAY_10 + 60 * 1099) and got[-1] == _iso(MONDAY_10 + 60 * 100)
        await c.aclose()
