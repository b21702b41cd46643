"""Masking in the incident views: a citizen's report (from Open311, the hotline, the portal)
may carry a phone in its contact details or its text; operators never see it whole."""

from __future__ import annotations

from cityops.domain.incidents.model import Report

from .conftest import HERE, MONDAY_10, Clock

PHONE, ID = "13812345678", "310115198001011234"


async def test_incident_reports_and_text_are_masked_for_staff(tmp_path, city,
                                                              live_node) -> None:
    clock = Clock(MONDAY_10)
    async with live_node(city, tmp_path / "data", clock=clock, notify_url="memory:") as live:
        report = Report(key="open311:000000000001", source="open311", at=MONDAY_10,
                        text=f"garbage again, call {PHONE}", **HERE, reporter="c-1",
                        data={"contact": {"phone": PHONE, "email": "li@example.cn"},
                              "attributes": {"id_number": ID, "amount": "car_load"}})
        result = await live.node.act.desk.async_report(
            report, "event.sanitation.exposed_garbage",
            description=f"garbage again, call {PHONE}", auto_register=False)
        op = live.client(await live.key("operator"))
        r = await op.get(f"/api/v1/incidents/{result.incident.id}")
        assert r.status_code == 200
        assert PHONE not in r.text and ID not in r.text
        doc = r.json()
        (filed,) = doc["reports_filed"]
        assert filed["data"]["contact"] == {"phone": "138****5678", "email": "li@example.cn"}
        assert filed["data"]["attributes"] == {"id_number": "310115********1234",
                                               "amount": "car_load"}
        assert filed["text"] == "garbage again, call 138****5678"
        assert filed["key"] == "open311:000000000001"
        assert doc["description"] == "garbage again, call 138****5678"
        listed = await op.get("/api/v1/incidents")
        assert PHONE not in listed.text
        # The store keeps what the citizen gave; only the views mask it.
        (stored,) = await live.node.store.incident_reports(result.incident.id)
        assert stored.data["contact"]["phone"] == PHONE
