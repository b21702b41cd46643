"""The public Open311 reads (no key) never show a phone or ID number, whether a citizen typed
it into a description or an address, or a department wrote it into a note; the citizen who
filed the request still reads their own words whole."""

from __future__ import annotations

from cityops.act.desk import incident_id_for

from .conftest import BASE, HERE, MONDAY_10, NOISE, Clock

PHONE, ID = "13812345678", "310115198001011234"
OTHER_PHONE = "13987654321"


async def test_public_reads_mask_numbers_typed_into_text(tmp_path, city, live_node) -> None:
    async with live_node(city, tmp_path / "data", clock=Clock(MONDAY_10),
                         notify_url="memory:") as live:
        key = await live.key("citizen", name="c-000001")
        op = live.client(await live.key("operator"))
        anyone = live.client()
        r = await anyone.post(f"{BASE}/requests.json", data={
            "api_key": key, "service_code": NOISE, **HERE,
            "attribute[noise_source]": "banging",
            "description": f"Drilling all night. Call me on {PHONE}, my ID is {ID}",
            "address_string": f"Flat 3, ask for {PHONE}", "phone": PHONE})
        assert r.status_code == 200, r.text
        request_id = r.json()[0]["service_request_id"]
        incident = incident_id_for(f"open311:{request_id}")
        r = await op.post(f"/api/v1/incidents/{incident}/actions/cancel",
                          json={"reason": f"Permit holder reachable on {OTHER_PHONE}"})
        assert r.status_code == 200, r.text

        for path in (f"{BASE}/requests/{request_id}.json", f"{BASE}/requests.json",
                     f"{BASE}/requests.xml", f"{BASE}/requests.json?service_request_id="
                                             f"{request_id}"):
            r = await anyone.get(path)
            assert r.status_code == 200, (path, r.text)
            for number in (PHONE, ID, OTHER_PHONE):
                assert number not in r.text, (path, number)
        (doc,) = (await anyone.get(f"{BASE}/requests/{request_id}.json")).json()
        assert doc["description"] == ("Drilling all night. Call me on 138****5678, my ID is "
                                      "310115********1234")
        assert doc["address"] == "Flat 3, ask for 138****5678"
        assert doc["status_notes"].endswith("Note: Permit holder reachable on 139****4321")

        # The case's staff are given the text as they would see it: masked.
        inc = (await op.get(f"/api/v1/incidents/{incident}")).json()
        assert PHONE not in str(inc) and ID not in str(inc)

        # The citizen's own list shows their words whole, the city's note still masked.
        mine = live.client(key)
        (own,) = (await mine.get("/api/v1/citizens/me/reports")).json()["items"]
        assert own["description"] == f"Drilling all night. Call me on {PHONE}, my ID is {ID}"
        assert own["address"] == f"Flat 3, ask for {PHONE}"
        assert OTHER_PHONE not in own["status_notes"]
