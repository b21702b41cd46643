"""Senior care's pure rules: who is offered the next nursing-home bed, how offers move on, and
what a caregiver booking or a retrofit assessment accepts."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from cityops.domain.seniorcare import admission as adm
from cityops.domain.seniorcare import caregivers as cg
from cityops.domain.seniorcare import retrofit as rf
from cityops.domain.seniorcare.admission import Entry, EntryStatus, Hardship, Home
from cityops.domain.seniorcare.errors import CareInvalid, CareNotFound, CareRefused

T0 = 1_800_000_000.0
DAY = 86_400.0


def entry(eid: str, *, level: int = 3, age: int = 75, alone: bool = False,
          hardship: Hardship = Hardship.NONE) -> Entry:
    return Entry(id=eid, citizen=f"c-{eid}", care_level=level, age=age, lives_alone=alone,
                 hardship=hardship, since=0.0)


def home_with(*entries: Entry, beds: int = 0, start: float = T0) -> Home:
    h = Home(id="care-1", name="Huamu home", area="990001001001", beds=beds)
    now = start
    for e in entries:
        h, _ = adm.apply(h, e, now)
        now += 60
    return h


def test_priority_hardship_first_then_need_then_waiting_since() -> None:
    h = home_with(
        entry("early-low", level=2, age=70),
        entry("frail-85-alone", level=4, age=85, alone=True),  # 40 + 10 + 10 = 60
        entry("level5-70", level=5, age=70),  # 50
        entry("hardship", level=1, age=65, hardship=Hardship.LOW_INCOME),
        entry("special", level=1, age=62, hardship=Hardship.SPECIAL),
        entry("late-low", level=2, age=70),
    )
    assert [e.id for e in h.waiting()] == ["special", "hardship", "frail-85-alone",
                                           "level5-70", "early-low", "late-low"]
    assert adm.position(h, "early-low") == 5 and adm.position(h, "nobody") is None
    assert adm.need_points(entry("x", level=6, age=92, alone=True)) == 90


def test_a_freed_bed_goes_to_the_next_in_line_with_a_deadline() -> None:
    h = home_with(entry("a", level=2), entry("b", level=5), entry("c", level=4))
    h, told = adm.set_beds(h, 1, T0 + 1000)
    # One bed: offered to b (level 5), the head of the line, not to a who came first.
    assert [(t.kind, t.citizen) for t in told] == [("care.offer", "c-b")]
    b = h.entry("b")
    assert b.status is EntryStatus.OFFERED and b.bed == 1
    assert b.deadline == T0 + 1000 + adm.RESPONSE_S
    assert h.free_beds() == []
    h, told = adm.respond(h, "b", True, T0 + 2000)
    assert [r.citizen for r in h.residents] == ["c-b"] and told[0].kind == "care.admitted"
    # b leaves; the bed is offered to c (level 4) before a (level 2).
    h, told = adm.free_bed(h, 1, T0 + 3000)
    assert [(t.citizen, t.kind) for t in told] == [("c-c", "care.offer")]
    adm.check(h)


def test_declined_and_expired_offers_move_on() -> None:
    h = home_with(entry("a", level=5), entry("b", level=4), entry("c", level=3), beds=1)
    assert h.entry("a").status is EntryStatus.OFFERED
    h, told = adm.respond(h, "a", False, T0 + 100)
    assert h.entry("a").status is EntryStatus.DECLINED
    assert [t.citizen for t in told] == ["c-b"] and h.entry("b").bed == 1
    late = h.entry("b").deadline + 1
    with pytest.raises(CareRefused) as caught:
        adm.respond(h, "b", True, late)
    assert caught.value.code == "care_offer_expired"
    h, told = adm.expire(h, late)
    assert h.entry("b").status is EntryStatus.EXPIRED
    assert [(t.kind, t.citizen) for t in told] == [("care.expired", "c-b"),
                                                   ("care.offer", "c-c")]
    # Nothing left to lapse: expiring again changes nothing.
    assert adm.expire(h, late)[1] == []
    adm.check(h)


def test_a_bed_is_never_held_twice() -> None:
    h = home_with(*(entry(f"e{n}", level=n % 7) for n in range(10)), beds=3)
    assert sorted(e.bed for e in h.offers()) == [1, 2, 3]
    h, _ = adm.respond(h, h.offers()[0].id, True, T0 + 10_000)
    with pytest.raises(CareRefused) as caught:
        adm.free_bed(h, 2, T0 + 10_001)  # offered, not taken
    assert caught.value.code == "care_bed_offered"
    with pytest.raises(CareRefused):
        adm.free_bed(h, 9, T0 + 10_001)
    with pytest.raises(CareRefused) as caught:
        adm.set_beds(h, 2, T0 + 10_002)
    assert caught.value.code == "care_bed_in_use"
    h, told = adm.set_beds(h, 5, T0 + 10_003)
    assert len(told) == 2 and len(h.held_beds()) == 5
    adm.check(h)


def test_one_open_entry_per_citizen_and_bad_input() -> None:
    h = home_with(entry("a"))
    with pytest.raises(CareRefused) as caught:
        adm.apply(h, Entry(id="a2", citizen="c-a", care_level=1, age=70, since=0.0), T0)
    assert caught.value.code == "care_already_waiting"
    with pytest.raises(CareInvalid):
        adm.apply(h, Entry(id="z", citizen="c-z", care_level=7, age=70, since=0.0), T0)
    with pytest.raises(CareNotFound):
        adm.respond(h, "nope", True, T0)
    h, _ = adm.withdraw(h, "a", T0 + 5)
    with pytest.raises(CareRefused):
        adm.withdraw(h, "a", T0 + 6)
    # Withdrawn, the citizen may apply again, from the back.
    h, _ = adm.apply(h, Entry(id="a3", citizen="c-a", care_level=1, age=70, since=0.0), T0 + 7)
    assert h.entry("a3").since == T0 + 7


def test_forgetting_a_citizen_moves_their_offer_and_bed_on_by_the_rules() -> None:
    # Beds 1 and 2: a (level 6) admitted to bed 1, b (level 5) holds an offer of bed 2; c, d
    # wait. Erasing b withdraws b's offer and offers bed 2 to the head of the line (d, level
    # 4, before c who came first); erasing a frees bed 1 for c.
    h = home_with(entry("a", level=6), entry("b", level=5), entry("c", level=2),
                  entry("d", level=4), beds=2)
    h, _ = adm.respond(h, "a", True, T0 + 500)
    assert h.entry("b").status is EntryStatus.OFFERED and h.entry("b").bed == 2
    h = msgspec.structs.replace(h, entries=[msgspec.structs.replace(e, note="calls 138")
                                            if e.id == "b" else e for e in h.entries])
    h, told, moved = adm.forget(h, "c-b", "[erased]", T0 + 600)
    assert moved == {"entries_withdrawn": 0, "offers_withdrawn": 1, "beds_freed": 0,
                     "entries": 1}
    assert [(t.kind, t.citizen) for t in told] == [("care.offer", "c-d")]
    assert h.entry("d").bed == 2 and h.entry("d").status is EntryStatus.OFFERED
    gone = h.entry("b")
    assert (gone.citizen, gone.status, gone.note) == ("[erased]", EntryStatus.WITHDRAWN,
                                                      "[erased]")
    assert (gone.care_level, gone.age) == (5, 75)  # the order the list was decided by
    h, told, moved = adm.forget(h, "c-a", "[erased]", T0 + 700)
    assert moved["beds_freed"] == 1 and [t.citizen for t in told] == ["c-c"]
    assert "c-a" not in {r.citizen for r in h.residents} | {e.citizen for e in h.entries}
    assert h.entry("c").bed == 1
    adm.check(h)
    # Nothing of theirs is left: forgetting again changes nothing.
    again, told, moved = adm.forget(h, "c-a", "[erased]", T0 + 800)
    assert again == h and told == [] and moved["entries"] == 0


# -- caregivers -------------------------------------------------------------------------------

MONDAY = dt.date(2026, 11, 23)
SUNDAY_BEFORE = dt.date(2026, 11, 22)


def carer(**kw) -> cg.Caregiver:
    base = dict(id="cg-1", name="Zhou Min", area="990001001", skills=["personal_care", "bathing"],
                schedule=[cg.Shift(1, 8 * 60, 12 * 60), cg.Shift(1, 13 * 60, 17 * 60)])
    return cg.Caregiver(**{**base, **kw})


def visit(bid: str, start: str, end: str, skills=("bathing",)) -> cg.Booking:
    return cg.Booking(id=bid, caregiver="cg-1", citizen="c-1", day=MONDAY.isoformat(),
                      start=cg.minutes(start, "start"), end=cg.minutes(end, "end"),
                      skills=list(skills))


def test_booking_within_schedule_with_skills_and_no_overlap() -> None:
    c = carer()
    cg.check_caregiver(c)
    day = cg.Day(caregiver="cg-1", day=MONDAY.isoformat())
    day = cg.book(c, day, visit("b1", "09:00", "10:30"), MONDAY, SUNDAY_BEFORE, 0)
    assert cg.free_slots(c, day, MONDAY) == [(480, 540), (630, 720), (780, 1020)]
    refusals = {
        "care_double_booked": visit("b2", "10:00", "11:00"),
        "care_outside_schedule": visit("b3", "11:30", "13:30"),
        "care_skill_mismatch": visit("b4", "14:00", "15:00", skills=("nursing",)),
    }
    for code, b in refusals.items():
        with pytest.raises(CareRefused) as caught:
            cg.book(c, day, b, MONDAY, SUNDAY_BEFORE, 0)
        assert caught.value.code == code, code
    # Back to back is no overlap.
    day = cg.book(c, day, visit("b5", "10:30", "11:00"), MONDAY, SUNDAY_BEFORE, 0)
    day = cg.cancel(day, "b1", T0, "in hospital")
    assert [b.id for b in day.active()] == ["b5"]
    day = cg.book(c, day, visit("b6", "09:00", "10:00"), MONDAY, SUNDAY_BEFORE, 0)
    with pytest.raises(CareRefused):
        cg.cancel(day, "b1", T0)


def test_forgetting_a_citizen_cancels_visits_to_come_and_keeps_past_ones() -> None:
    c = carer()
    day = cg.Day(caregiver="cg-1", day=MONDAY.isoformat())
    day = cg.book(c, day, visit("done", "08:00", "09:00"), MONDAY, SUNDAY_BEFORE, 0)
    later = msgspec.structs.replace(visit("later", "14:00", "15:00"), address="8 Century Ave",
                                    note="ring twice", by="k-own")
    day = cg.book(c, day, later, MONDAY, SUNDAY_BEFORE, 0)
    other = msgspec.structs.replace(visit("other", "15:00", "16:00"), citizen="c-2")
    day = cg.book(c, day, other, MONDAY, SUNDAY_BEFORE, 0)
    # Monday 10:00: the 08:00 visit happened, the 14:00 one is still to come.
    day, cancelled, kept = cg.forget(day, "c-1", "[erased]", T0, MONDAY, 600,
                                     frozenset({"k-own"}))
    assert (cancelled, kept) == (1, 2)
    done, gone, kept_other = (next(b for b in day.bookings if b.id == i)
                              for i in ("done", "later", "other"))
    assert done.status is cg.BookingStatus.BOOKED and done.citizen == "[erased]"
    assert gone.status is cg.BookingStatus.CANCELLED
    assert (gone.citizen, gone.address, gone.note, gone.by) == ("[erased]", "", "[erased]", "")
    assert kept_other == other
    assert cg.forget(day, "c-1", "[erased]", T0, MONDAY, 600) == (day, 0, 0)


def test_booking_bad_input() -> None:
    c, day = carer(), cg.Day(caregiver="cg-1", day=MONDAY.isoformat())
    for b in (visit("x", "09:00", "09:15"), visit("x", "09:10", "10:00")):
        with pytest.raises(CareInvalid):
            cg.book(c, day, b, MONDAY, SUNDAY_BEFORE, 0)
    with pytest.raises(CareInvalid):  # in the past: today, earlier than now
        cg.book(c, day, visit("x", "09:00", "10:00"), MONDAY, MONDAY, 9 * 60 + 30)
    with pytest.raises(CareInvalid):
        cg.minutes("25:00", "start")
    with pytest.raises(CareInvalid):
        cg.check_caregiver(carer(skills=["juggling"]))
    with pytest.raises(CareInvalid):
        cg.check_caregiver(carer(schedule=[cg.Shift(1, 600, 700), cg.Shift(1, 650, 800)]))
    with pytest.raises(CareRefused):
        cg.book(carer(active=False), day, visit("x", "09:00", "10:00"), MONDAY,
                SUNDAY_BEFORE, 0)


# -- retrofits --------------------------------------------------------------------------------


def test_retrofit_works_and_subsidy() -> None:
    findings = [rf.Finding(hazard="no_grab_bar", room="bathroom", quantity=3),
                rf.Finding(hazard="fall_unnoticed")]
    a = rf.assess(submission="sub-1", application="app-1", citizen="c-1", area="990001001001",
                  assessor="a", now=T0, hardship=Hardship.NONE, findings=findings)
    assert a.works_cost == 3 * 300 + 500 and a.subsidy == 700 and a.own_share == 700
    rich = rf.assess(submission="s", application="a", citizen="c", area="", assessor="a",
                     now=T0, hardship=Hardship.NONE,
                     findings=[rf.Finding(hazard="fall_unnoticed", quantity=10)])
    assert rich.subsidy == rf.CAP_OTHER
    poor = rf.assess(submission="s", application="a", citizen="c", area="", assessor="a",
                     now=T0, hardship=Hardship.SPECIAL, findings=findings)
    assert poor.subsidy == 1400 and poor.own_share == 0
    assert "grab_bars x3" in rf.summary(a)
    for bad in ([], [rf.Finding(hazard="ghosts")], [rf.Finding(hazard="dark_path", quantity=0)]):
        with pytest.raises(CareInvalid):
            rf.works_of(bad)


# -- who sees what ----------------------------------------------------------------------------


def test_access_rules() -> None:
    from cityops.domain.access import Principal, Role, Scope
    from cityops.domain.seniorcare import access

    v11, v21 = "990001001001", "990001002001"
    served = {"civil_affairs": ["990001001"], "sanitation": ["990001"]}

    def key(role: Role, area=None, department=None, name="") -> Principal:
        return Principal("k", role, Scope(area=area, department=department), name)

    homes = frozenset({"care-a", "care-b"})
    admin, civil = key(Role.ADMIN), key(Role.DEPARTMENT, department="civil_affairs")
    staff = key(Role.STATION, v11, name="care-a")
    station = key(Role.STATION, "990001001")
    assert access.sees_home(admin, "care-b", v21, served, home_ids=homes)
    assert access.sees_home(civil, "care-a", v11, served, home_ids=homes)
    assert not access.sees_home(civil, "care-b", v21, served, home_ids=homes)
    assert not access.sees_home(key(Role.DEPARTMENT, department="sanitation"), "care-a", v11,
                                served, home_ids=homes)
    assert access.sees_home(staff, "care-a", v11, served, home_ids=homes)
    assert not access.sees_home(key(Role.STATION, v11, name="care-b"), "care-a", v11, served,
                                home_ids=homes)
    assert access.sees_home(station, "care-a", v11, served, home_ids=homes)
    citizen = key(Role.CITIZEN, name="c-1")
    assert access.sees_home(citizen, "care-a", v11, served, "990001001002", homes)
    assert not access.sees_home(citizen, "care-b", v21, served, "990001001002", homes)
    assert not access.sees_home(citizen, "care-a", v11, served, None, homes)
    assert not access.sees_home(key(Role.FIELD), "care-a", v11, served, home_ids=homes)

    # A town's caregiver: seen by the town's stations and by its communities' ones.
    assert access.sees_caregiver(key(Role.STATION, v11), "990001001", served)
    assert not access.sees_caregiver(key(Role.STATION, v21), "990001001", served)
    assert not access.sees_caregiver(key(Role.STATION, "990001001"), v21[:9], served)
    # A visit: the caregiver's staff or the citizen's, never the other town's.
    assert access.sees_booking(key(Role.STATION, v11), "c-9", "990001002", v11, served)
    assert not access.sees_booking(key(Role.STATION, v21), "c-9", "990001001", v11, served)
    assert access.sees_booking(citizen, "c-1", "990001002", v21, served)
    assert not access.sees_booking(citizen, "c-2", "990001001", v11, served)
