"""A citizen's export and erasure reach the services added since it was written: queue numbers,
kiosk sign-ins, nursing-home waiting lists and beds, caregiver visits, retrofit assessments and
video calls, on each store (memory, SQLite, PostgreSQL). Each is made through its own service,
as a citizen's day would make it; the erasure must leave every shared record consistent for
the others in it (the queue's day still adds up, a bed offered to the erased person goes to
the next in line, and that person is told)."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from cityops.api.window import hub_of
from cityops.domain.access import Role, Scope
from cityops.domain.citizens import Citizen
from cityops.domain.onestop.applications import Actor
from cityops.domain.seniorcare import admission
from cityops.domain.seniorcare.admission import EntryStatus
from cityops.domain.seniorcare.caregivers import BookingStatus, Caregiver, Shift
from cityops.domain.seniorcare.retrofit import Finding
from cityops.serve.citizen_data import CitizenData, NotFound
from cityops.serve.kiosk import signin_of
from cityops.serve.kiosk.idcard import check_digit
from cityops.serve.queue import hall_of
from cityops.serve.queue.hall import CounterDay, TicketStatus
from cityops.serve.queue.hall import forget as forget_numbers
from cityops.serve.seniorcare import homes, seniorcare_of
from cityops.serve.window.hub import Party

from .conftest import MONDAY_10, SHANGHAI, VILLAGE, Clock

HOME = f"care-{VILLAGE}"  # the grid city's care point in town 1, village 1
LI_CARD = "31011519500101123" + check_digit("31011519500101123")
NAME, PHONE, ADDRESS = "Li Wei", "13812345678", "8 Century Avenue"
LI = Citizen(id="c-1", name=NAME, phone=PHONE, id_number=LI_CARD,
             birth_date=dt.date(1950, 1, 1), area=VILLAGE, address=ADDRESS,
             attributes={"care_level": 3})
WANG = Citizen(id="c-2", name="Wang Fang", phone="13900000002",
               birth_date=dt.date(1940, 5, 5), area=VILLAGE, attributes={"care_level": 2})
ZHAO = Citizen(id="c-3", name="Zhao Lei", phone="13900000003",
               birth_date=dt.date(1938, 7, 7), area=VILLAGE, attributes={"care_level": 1})
ZHOU = Citizen(id="c-4", name="Zhou Jie", phone="13900000004",  # 66: behind Zhao (88)
               birth_date=dt.date(1960, 2, 2), area=VILLAGE, attributes={"care_level": 1})
COUNTER = "civil_affairs"
CIVIL = Actor("k-civil", Role.DEPARTMENT, Scope(department=COUNTER), "Assessor Qian")
SETTINGS = {"notify_url": "memory:", "escalate_tick_s": 3600.0}
HOUR = 3600.0


def sms(live, kind: str, phone: str) -> list[str]:
    return [n.body for n in live.node.act.notifier.sent
            if n.kind == kind and n.recipient == phone]


async def li_uses_every_service(live) -> dict[str, str]:
    """Li (and Wang, Zhao beside him) registered; Li takes a queue number, signs in at a
    kiosk, holds the offer of a nursing home's only bed with Wang waiting behind, has two
    caregiver visits (one this morning, one tomorrow), a retrofit assessed, and calls the
    window about it. Returns ids by what they are."""
    node, side = live.node, live.node.serve
    for person in (LI, WANG, ZHAO):
        await side.citizens.register(person)
    hall = hall_of(node)
    await hall.take("c-2", COUNTER, "portal")
    ticket = await hall.take("c-1", COUNTER, "kiosk")
    await hall.call_next(COUNTER, "3", "k-clerk")  # Wang's number: Li's still waits

    kiosk = signin_of(node)
    started = await kiosk.start(LI_CARD)
    (text,) = sms(live, "kiosk.code", PHONE)
    session = await kiosk.verify(started.challenge, re.match(r"\d{6}", text).group())

    care = seniorcare_of(node)
    await care.homes.set_beds(HOME, 1)
    _, li_entry = await care.homes.apply(HOME, "c-1", care_level=None, hardship=None,
                                         lives_alone=None, note=f"daughter {NAME} Jr",
                                         trusted=True)
    assert li_entry.status is EntryStatus.OFFERED and li_entry.bed == 1
    _, wang_entry = await care.homes.apply(HOME, "c-2", care_level=None, hardship=None,
                                           lives_alone=None, trusted=True)
    assert wang_entry.status is EntryStatus.WAITING
    await care.caregivers.register(Caregiver(
        id="cg-1", name="Zhou Min", area="990001001", skills=["bathing"],
        schedule=[Shift(1, 8 * 60, 17 * 60), Shift(2, 8 * 60, 17 * 60)]), replace=False)
    monday = dt.datetime.fromtimestamp(MONDAY_10, SHANGHAI).date()
    today = await care.caregivers.book("cg-1", "c-1", monday.isoformat(), 11 * 60, 12 * 60,
                                       ["bathing"], by=session.key_id, address=ADDRESS)
    tomorrow = await care.caregivers.book(
        "cg-1", "c-1", (monday + dt.timedelta(days=1)).isoformat(), 9 * 60, 10 * 60,
        ["bathing"], by="k-station", address=ADDRESS, note=f"call {PHONE} at the gate")

    li_actor = Actor(session.key_id, Role.CITIZEN, Scope(), "c-1")
    sub, apps, _ = await side.onestop.desk.submit(
        li_actor, "c-1", bundle="aging_friendly_retrofit", answers={
            "applicant_name": NAME, "applicant_id_number": LI_CARD,
            "applicant_phone": PHONE, "home_address": ADDRESS, "start_date": "2026-12-01",
            "bank_account": "6222"},
        materials={"id_card": "scan-1", "premises_title": "scan-2",
                   "renovation_plan": "scan-3", "bank_card": "scan-4"})
    assessment = next(a for a in apps if a.item == "aging_retrofit_assessment")
    await care.retrofits.assess(assessment, CIVIL, [
        Finding(hazard="no_grab_bar", room=f"{NAME}'s bathroom", quantity=2,
                note=f"{NAME} fell here in May")])

    hub = hub_of(node)
    clerk = Party("k-clerk", "clerk", department=COUNTER)
    hub.join(clerk)
    hub.set_online(clerk, True)
    caller = Party(session.key_id, "citizen", citizen="c-1")
    hub.join(caller)
    call = await hub.start(caller, {"id": assessment.id, "item": assessment.item,
                                    "department": COUNTER, "applicant": "c-1"})
    await hub.accept(clerk, call.id)
    await hub.hangup(caller, call.id)
    return {"ticket": ticket.label, "challenge": started.challenge, "key": session.key_id,
            "entry": li_entry.id, "wang_entry": wang_entry.id, "today": today.id,
            "tomorrow": tomorrow.id, "submission": sub.id, "call": call.id}


async def test_export_shows_each_service_and_erasure_takes_the_person_out(
        tmp_path, care_city, live_node, each_store_url) -> None:
    clock = Clock(MONDAY_10)
    async with live_node(care_city, tmp_path / "d", clock=clock, store_url=each_store_url,
                         **SETTINGS) as live:
        ids = await li_uses_every_service(live)
        store, service = live.node.store, live.node.serve.citizen_data

        out = await service.export("c-1", by="k-admin", reason="request 2026-40")
        records = out["records"]
        (ticket,) = records["queue_tickets"]
        assert ticket["doc"]["label"] == ids["ticket"] and ticket["status"] == "waiting"
        assert ticket["doc"]["counter"] == COUNTER and "citizen" not in ticket["doc"]
        (code,) = records["kiosk_codes"]
        assert code["id"] == ids["challenge"] and "code_hash" not in code["doc"]
        assert "keyed hash" in code["doc"]["code"] and code["doc"]["used_at"] is not None
        (sends,) = records["kiosk_card_sends"]
        assert sends["id"] == "(a keyed hash)" and len(sends["doc"]["times"]) == 1
        (kiosk_session,) = records["kiosk_sessions"]
        assert kiosk_session["id"] == ids["key"] and kiosk_session["doc"]["expires_at"]
        (kiosk_key,) = [k for k in out["keys"] if k["id"] == ids["key"]]
        assert kiosk_key["expires_at"] == kiosk_session["doc"]["expires_at"]
        (entry,) = records["care_waiting_list"]
        assert (entry["id"], entry["status"], entry["doc"]["bed"]) == (ids["entry"], "offered",
                                                                       1)
        assert entry["doc"]["home"] == HOME and entry["doc"]["deadline"]
        assert sorted(v["id"] for v in records["caregiver_visits"]) == sorted(
            [ids["today"], ids["tomorrow"]])
        (retrofit,) = records["retrofit_assessments"]
        assert retrofit["id"] == ids["submission"] and retrofit["doc"]["subsidy"] > 0
        (call,) = records["window_calls"]
        assert call["id"] == ids["call"]
        assert [e["action"] for e in call["doc"]["events"]] == ["call.start", "call.accept",
                                                                "call.end"]
        text = json.dumps(out)
        assert "code_hash" not in text and '"hash"' not in text

        clock.now = MONDAY_10 + 2 * HOUR  # the 11:00 visit is past, tomorrow's still to come
        summary = await service.erase("c-1", by="k-admin", reason="erasure request 2026-41")
        assert summary["deleted"] == {"citizen": 1, "kiosk_codes": 1, "kiosk_card_sends": 1,
                                      "kiosk_sessions": 1, "care_index": 1,
                                      "window_call_index": 1}
        assert summary["anonymised"] == {
            "queue_tickets": 1, "care_waiting_list": 1, "caregiver_visits": 2,
            "retrofit_assessments": 1, "submissions": 1, "applications": 3}
        assert summary["kept"] == {"window_calls": 1}
        assert summary["moved"] == {"care_offers_withdrawn": 1,
                                    "caregiver_visits_cancelled": 1}
        assert "care_offers_untold" not in summary

        # The queue's day still adds up: both numbers, Wang's called, Li's waiting unnamed.
        day = await hall_of(live.node).day(COUNTER)
        assert [(t.citizen, t.status) for t in day.tickets] == [
            ("c-2", TicketStatus.CALLED), ("[erased]", TicketStatus.WAITING)]
        assert (await hall_of(live.node).counter_view(COUNTER)).waiting == 1
        # The kiosk keeps nothing of the sign-in; its key is revoked.
        for kind in ("kiosk_code", "kiosk_sends", "kiosk_session"):
            assert await store.find_records(kind) == [], kind
        assert [k.revoked for k in await store.list_keys() if k.id == ids["key"]] == [True]
        # The bed offered to Li went to Wang, who was told.
        home = await homes.stored(store, HOME)
        admission.check(home)
        wang = home.entry(ids["wang_entry"])
        assert (wang.status, wang.bed) == (EntryStatus.OFFERED, 1)
        assert sms(live, "care.offer", WANG.phone)
        li = home.entry(ids["entry"])
        assert (li.citizen, li.status, li.note) == ("[erased]", EntryStatus.WITHDRAWN,
                                                    "[erased]")
        # This morning's visit stays as worked hours; tomorrow's is cancelled.
        care = seniorcare_of(live.node).caregivers
        done, gone = await care.find(ids["today"]), await care.find(ids["tomorrow"])
        assert done.status is BookingStatus.BOOKED and gone.status is BookingStatus.CANCELLED
        for b in (done, gone):
            assert (b.citizen, b.address) == ("[erased]", "")
        assert done.by == "" and gone.by == "k-station"
        # The call's trail stays in the audit (key ids and the application's id only).
        assert len(await store.list_audit(subject=f"window_call:{ids['call']}")) == 3
        kept = [await store.get_record("care_retrofit", ids["submission"]),
                await store.get_record("care_home", HOME),
                *await store.find_records("queue_day"), *await store.find_records("care_day")]
        for rec in kept:
            text = rec.doc.decode()
            for held in (NAME, PHONE, LI_CARD, ADDRESS, '"c-1"'):
                assert held not in text, (rec.kind, held, text)
            assert rec.owner != "c-1"

        # Done once: nothing is left to find, to export or to erase again.
        with pytest.raises(NotFound):
            await service.export("c-1")
        with pytest.raises(NotFound):
            await service.erase("c-1", by="k-admin", reason="again")
        (entry,) = [e for e in await store.list_audit(subject="citizen:c-1")
                    if e.action == "citizen.erase"]
        assert json.loads(entry.after)["moved"]["care_offers_withdrawn"] == 1
        for held in (NAME, PHONE, LI_CARD):
            assert held not in entry.after


async def test_erasing_a_resident_and_an_offer_holder_keeps_the_list_consistent(
        tmp_path, care_city, live_node, each_store_url) -> None:
    """Two beds: Li lives in one, Wang holds the offer of the other, Zhao and Zhou wait.
    Erasing Wang offers Wang's bed to Zhao, who is told; erasing Li from the command line
    (no SMS gateway there) frees Li's bed for Zhou, and says whom the staff must tell."""
    clock = Clock(MONDAY_10)
    async with live_node(care_city, tmp_path / "d", clock=clock, store_url=each_store_url,
                         **SETTINGS) as live:
        side = live.node.serve
        for person in (LI, WANG, ZHAO):
            await side.citizens.register(person)
        care = seniorcare_of(live.node).homes
        await care.set_beds(HOME, 2)
        entries = {}
        for cid in ("c-1", "c-2"):
            _, e = await care.apply(HOME, cid, care_level=None, hardship=None,
                                    lives_alone=None, trusted=True)
            entries[cid] = e
        await care.respond(HOME, entries["c-1"].id, True)
        _, zhao = await care.apply(HOME, "c-3", care_level=None, hardship=None,
                                   lives_alone=None, trusted=True)
        await side.citizens.register(ZHOU)
        _, zhou = await care.apply(HOME, "c-4", care_level=None, hardship=None,
                                   lives_alone=None, trusted=True)
        home = await homes.stored(live.node.store, HOME)
        assert [r.citizen for r in home.residents] == ["c-1"]
        assert home.entry(entries["c-2"].id).status is EntryStatus.OFFERED
        assert home.entry(zhao.id).status is EntryStatus.WAITING

        clock.now += HOUR
        summary = await side.citizen_data.erase("c-2", by="k-admin", reason="request 7")
        assert summary["moved"] == {"care_offers_withdrawn": 1}
        home = await homes.stored(live.node.store, HOME)
        admission.check(home)
        offered = home.entry(zhao.id)
        assert (offered.status, offered.bed) == (EntryStatus.OFFERED,
                                                 entries["c-2"].bed)
        assert offered.deadline == clock.now + admission.RESPONSE_S
        assert sms(live, "care.offer", ZHAO.phone)
        assert len(sms(live, "care.offer", WANG.phone)) == 1  # the offer made before

        command_line = CitizenData(live.node.store, clock)  # as `cityops citizens` makes it
        summary = await command_line.erase("c-1", by="cli:admin", reason="request 8")
        assert summary["moved"] == {"care_beds_freed": 1}
        (untold,) = summary["care_offers_untold"]
        assert (untold["home"], untold["citizen"], untold["notice"]) == (HOME, "c-4",
                                                                          "care.offer")
        assert not sms(live, "care.offer", ZHOU.phone)
        home = await homes.stored(live.node.store, HOME)
        admission.check(home)
        assert home.residents == [] and home.free_beds() == []
        assert home.entry(zhou.id).bed == entries["c-1"].bed
        assert {e.citizen for e in home.entries} == {"[erased]", "c-3", "c-4"}
        # The home's own moves go on as before.
        home = await care.respond(HOME, zhao.id, True)
        assert [r.citizen for r in home.residents] == ["c-3"]


def test_a_queue_day_forgets_who_took_a_number_and_keeps_the_number() -> None:
    day = CounterDay(counter=COUNTER, day="2026-11-23", prefix="A")
    from cityops.serve.queue import hall

    day, _ = hall.take(day, "c-2", "portal", 1.0)
    day, _ = hall.take(day, "c-1", "kiosk", 2.0)
    forgot, hits = forget_numbers(day, "c-1", "[erased]")
    assert hits == 1 and [t.citizen for t in forgot.tickets] == ["c-2", "[erased]"]
    assert [t.label for t in forgot.tickets] == ["A001", "A002"]
    assert forget_numbers(forgot, "c-1", "[erased]") == (forgot, 0)
