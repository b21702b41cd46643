"""A citizen's data on request: `export` gives back everything held about them, `erase` leaves
nothing that identifies them (the cases keep their history), and both are in the audit trail."""

from __future__ import annotations

import json

import msgspec
import pytest

from cityops.domain.access import Role, Scope
from cityops.domain.citizens import Citizen
from cityops.domain.incidents.workflow import Actor
from cityops.domain.onestop.applications import Actor as DeskActor
from cityops.domain.onestop.catalogue import Catalogue, FormField, ServiceItem
from cityops.serve import citizen_data
from cityops.serve.citizen_data import NotFound
from cityops.serve.report_photos import Photo, ReportPhotos, file_of
from tests.open311.conftest import BASE, HERE, MONDAY_10, NOISE, open311_city
from tests.clock_kit import Clock

PHONE, ID = "13812345678", "310115198001011234"
NAME, ADDRESS = "Li Wei", "8 Century Avenue"
OPERATOR = Actor("k_op", Role.OPERATOR, Scope(), "agent")
LI = DeskActor("k-li", Role.CITIZEN, Scope(), "c-1")
CATALOGUE = Catalogue(items=[ServiceItem(
    code="sign_permit", name="Sign permit", department="sanitation", time_limit="5wd",
    fields=[FormField("shop_name", "Shop name"),
            FormField("mobile", "Mobile", type="phone", prefill="phone")])])
PHOTO = "abcdefghijklmnopqrstuvwxyz.png"


@pytest.fixture
def city():
    return msgspec.structs.replace(open311_city(), services=CATALOGUE, policies=[])


async def _everything_about_li(live) -> dict[str, str]:
    """Li registered, with a key; a report, a hotline call, a review of it, an application,
    a parcel waiting and a photo never sent. Returns ids by what they are."""
    side = live.node.serve
    await side.citizens.register(Citizen(id="c-1", name=NAME, phone=PHONE, id_number=ID,
                                         area="990001001001", address=ADDRESS))
    key = await live.key("citizen", name="c-1")
    r = await live.client().post(f"{BASE}/requests.json", data={
        "api_key": key, "service_code": NOISE, **HERE, "attribute[noise_source]": "banging",
        "description": f"Drilling at {ADDRESS} all night, {NAME} ({PHONE})",
        "phone": PHONE, "first_name": "Wei", "last_name": "Li"})
    assert r.status_code == 200, r.text
    request_id = r.json()[0]["service_request_id"]
    order = await side.hotline.create(OPERATOR, type="consultation", title="Opening hours",
                                      content=f"{NAME} asks; call {PHONE}", citizen_id="c-1",
                                      department="sanitation")
    await side.hotline.act(order.number, "contact", OPERATOR, note=f"called {PHONE}")
    await side.hotline.act(order.number, "answer", OPERATOR, answer="9 to 5")
    await side.reviews.rate("c-1", "hotline_order", order.number, "satisfied",
                            comment=f"Thanks, {NAME} here")
    sub, apps, _ = await side.onestop.desk.submit(
        LI, "c-1", service="sign_permit", answers={"shop_name": "Li's noodles",
                                                   "mobile": PHONE})
    await side.cabinets.create("cab-1", "Lobby", "Centre 1", 2)
    item, _ = await side.cabinets.drop_off("cab-1", by="k_op", role="operator",
                                           recipient_citizen="c-1",
                                           description=f"Passport of {NAME}")
    photos = ReportPhotos(live.node.store, live.node.clock)
    await photos.keep("c-1", PHOTO, Photo(type="image/png", bytes=4))
    path = file_of(live.node.settings.data_dir, PHOTO)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG")
    return {"request": request_id, "order": order.number, "submission": sub.id,
            "application": apps[0].id, "item": item.id, "key": key}


async def test_export_gives_back_everything_held(tmp_path, city, live_node) -> None:
    async with live_node(city, tmp_path / "data", clock=Clock(MONDAY_10),
                         notify_url="memory:") as live:
        ids = await _everything_about_li(live)
        service = live.node.serve.citizen_data
        out = await service.export("c-1", by="k_admin", reason="request 2026-17")
        assert out["citizen"]["phone"] == PHONE and out["citizen"]["id_number"] == ID
        records = out["records"]
        assert [r["id"] for r in records["open311_requests"]] == [ids["request"]]
        (request,) = records["open311_requests"]
        assert request["doc"]["contact"]["phone"] == PHONE  # whole: it is for the person
        assert [r["id"] for r in records["hotline_orders"]] == [ids["order"]]
        assert len(records["reviews"]) == 1
        assert [r["id"] for r in records["submissions"]] == [ids["submission"]]
        assert [r["id"] for r in records["applications"]] == [ids["application"]]
        assert records["applications"][0]["doc"]["answers"]["mobile"] == PHONE
        (item,) = records["cabinet_items"]
        assert item["id"] == ids["item"] and "code_hash" not in item["doc"]
        assert [r["id"] for r in records["photos"]] == [PHOTO]
        assert [k["role"] for k in out["keys"]] == ["citizen"]
        assert "hash" not in out["keys"][0]
        json.dumps(out)  # plain JSON, ready to hand over

        (entry,) = await live.node.store.list_audit(subject="citizen:c-1")
        assert (entry.action, entry.actor, entry.reason) == ("citizen.export", "k_admin",
                                                             "request 2026-17")
        assert PHONE not in entry.after and ID not in entry.after
        with pytest.raises(NotFound):
            await service.export("c-nobody")


async def test_erase_leaves_nothing_that_identifies_and_is_audited(tmp_path, city,
                                                                   live_node) -> None:
    async with live_node(city, tmp_path / "data", clock=Clock(MONDAY_10),
                         notify_url="memory:") as live:
        ids = await _everything_about_li(live)
        side, store = live.node.serve, live.node.store
        with pytest.raises(ValueError, match="reason"):
            await side.citizen_data.erase("c-1", by="k_admin", reason=" ")
        summary = await side.citizen_data.erase("c-1", by="k_admin",
                                                reason="erasure request 2026-18")
        assert summary["deleted"] == {"citizen": 1, "photos": 1}
        assert summary["anonymised"] == {"open311_requests": 1, "hotline_orders": 1,
                                         "reviews": 1, "submissions": 1, "applications": 1,
                                         "cabinet_items": 1}
        assert summary["keys_revoked"] == 1

        assert await side.citizens.get("c-1") is None
        assert await side.citizens.by_id_number(ID) is None
        assert not file_of(live.node.settings.data_dir, PHOTO).exists()
        assert [k.revoked for k in await store.list_keys() if k.name == "c-1"] == [True]
        # What the cases keep says nothing of who Li is.
        kept = [await store.get_record(kind, ids[name]) for kind, name in (
            ("open311.request", "request"), ("hotline_order", "order"),
            ("submission", "submission"), ("application", "application"),
            ("cabinet_item", "item"))]
        kept += await store.find_records("review")
        for rec in kept:
            text = rec.doc.decode()
            # The citizen id as a JSON value: bare "c-1" also stands inside case ids that
            # happen to begin "inc-1...".
            for held in (PHONE, ID, NAME, ADDRESS, '"c-1"'):
                assert held not in text, (rec.kind, held, text)
            assert rec.owner != "c-1" and "c-1" not in (rec.unique or "")
        order = msgspec.json.decode(kept[1].doc)
        assert order["content"] == "[erased] asks; call [erased]"
        actions = [m["action"] for m in order["timeline"]]
        assert actions[0] == "create" and "contact" in actions  # the history stays
        # The public case goes on: the request still reads, with the words scrubbed.
        r = await live.client().get(f"{BASE}/requests/{ids['request']}.json")
        assert r.status_code == 200 and NAME not in r.text and ADDRESS not in r.text
        # The same person may register again, with the same ID number.
        await side.citizens.register(Citizen(id="c-9", name=NAME, id_number=ID))

        (entry,) = [e for e in await store.list_audit(subject="citizen:c-1")
                    if e.action == "citizen.erase"]
        assert (entry.actor, entry.reason) == ("k_admin", "erasure request 2026-18")
        assert json.loads(entry.after)["anonymised"]["hotline_orders"] == 1
        for held in (PHONE, ID, NAME):
            assert held not in entry.after
        with pytest.raises(NotFound):
            await side.citizen_data.erase("c-1", by="k_admin", reason="again")


def test_the_erasure_table_names_the_kinds_the_services_write() -> None:
    from cityops.open311 import service_requests
    from cityops.serve import cabinets, hotline, reviews
    from cityops.serve.onestop import benefits, desk, licences

    assert citizen_data.OPEN311 == service_requests.KIND
    assert citizen_data.CITIZEN_OWNER == service_requests.CITIZEN_OWNER
    assert citizen_data.HOTLINE == hotline.KIND
    assert citizen_data.REVIEW == reviews.KIND
    assert citizen_data.CABINET_ITEM == cabinets.ITEM
    assert (citizen_data.SUBMISSION, citizen_data.APPLICATION) == (desk.SUBMISSION,
                                                                   desk.APPLICATION)
    assert citizen_data.LICENCE == licences.KIND
    assert citizen_data.BENEFIT == benefits.BENEFIT


def test_every_kind_about_a_citizen_has_an_erasure_rule() -> None:
    """A kind found by the citizen's owner is either deleted or has its own anonymising rule
    (`anonymise` refuses a kind it has no rule for, so an erasure could not pass over one)."""
    from cityops.store.base import Record

    for _, kind, _owner in citizen_data.OWNED:
        if kind in citizen_data.DELETED:
            continue
        rec = Record(kind=kind, id="x", doc=b"{}", owner="c-1", created=0.0, updated=0.0)
        citizen_data.anonymise(rec, {}, "c-1", [])
