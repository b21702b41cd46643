"""12345 hotline orders: time limits on the working-hours clock across weekends and holidays,
the order of the steps, re-opening once as a warning order, roles, and overdue flags."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from cityops.domain import hotline
from cityops.domain.access import Role, Scope
from cityops.domain.city import WorkCalendar
from cityops.domain.hotline import Actor, NotAllowed, Refused, Status
from cityops.domain.workclock import WorkClock

SH = ZoneInfo("Asia/Shanghai")
# National Day 2026 as China schedules it: 1-7 October off, Saturday 10 October worked.
CLOCK = WorkClock(WorkCalendar(timezone="Asia/Shanghai",
                               holidays=[dt.date(2026, 10, d) for d in range(1, 8)],
                               working_days=[dt.date(2026, 9, 20), dt.date(2026, 10, 10)]))
OPERATOR = Actor("k_op", Role.OPERATOR, Scope(), "agent 7")
SANITATION = Actor("k_san", Role.DEPARTMENT, Scope(department="sanitation"))
POLICE = Actor("k_pol", Role.DEPARTMENT, Scope(department="police"))


def at(*args: int) -> float:
    return dt.datetime(*args, tzinfo=SH).timestamp()


def local(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, SH).replace(tzinfo=None)


def new(kind: str, now: float, **kw) -> hotline.HotlineOrder:
    kw.setdefault("phone", "13812345678")
    return hotline.new_order("20261123-TEST0001", kind, "Noise at night", now=now,
                             clock=CLOCK, actor=OPERATOR, **kw).order


def step(order, action, actor, now, **args):
    return hotline.act(order, action, actor, now, CLOCK, **args).order


def test_consultation_and_suggestion_are_answered_within_one_working_day() -> None:
    friday = at(2026, 11, 20, 16, 0)
    for kind in ("consultation", "suggestion"):
        order = new(kind, friday)
        assert order.limit == "1wd"
        assert local(order.answer_due) == dt.datetime(2026, 11, 23, 16, 0)  # Monday
        assert order.contact_due == order.answer_due


def test_help_and_complaint_take_five_working_days_across_a_holiday() -> None:
    # Taken on Tuesday 29 September: 30 Sep, (1-7 Oct off, Sunday 4th too), 8, 9, 10 (a
    # Saturday worked), 12 October.
    tuesday = at(2026, 9, 29, 10, 0)
    for kind in ("help", "complaint"):
        order = new(kind, tuesday)
        assert order.limit == "5wd"
        assert local(order.answer_due) == dt.datetime(2026, 10, 12, 10, 0)
        # The first contact is due within one working day, whatever the answer's limit.
        assert local(order.contact_due) == dt.datetime(2026, 9, 30, 10, 0)


def test_a_call_taken_at_night_counts_from_the_next_working_morning() -> None:
    saturday_night = at(2026, 11, 21, 23, 30)
    order = new("consultation", saturday_night)
    assert local(order.answer_due) == dt.datetime(2026, 11, 24, 9, 0)  # Monday 09:00 + 1wd


def test_the_steps_in_order_and_the_citizen_is_contacted_first() -> None:
    t0 = at(2026, 11, 23, 9, 30)
    order = new("help", t0, department="sanitation")
    assert order.status is Status.ASSIGNED and order.department == "sanitation"
    with pytest.raises(Refused, match="contacted first"):
        step(order, "answer", SANITATION, t0 + 60, answer="done")
    with pytest.raises(Refused, match="contacted first"):
        step(order, "handle", SANITATION, t0 + 60)
    with pytest.raises(Refused, match="it is assigned, and revisit needs it answered"):
        step(order, "revisit", OPERATOR, t0 + 60, satisfied=True)
    order = step(order, "contact", SANITATION, t0 + 600, note="called back")
    order = step(order, "handle", SANITATION, t0 + 700, incident_id="inc-abc")
    assert order.incident_id == "inc-abc"
    with pytest.raises(Refused, match="needs the answer"):
        step(order, "answer", SANITATION, t0 + 800)
    order = step(order, "answer", SANITATION, t0 + 900, answer="bins emptied")
    assert order.status is Status.ANSWERED
    assert local(order.revisit_due) == dt.datetime(2026, 11, 26, 9, 45)  # 3 working days
    order = step(order, "revisit", OPERATOR, t0 + 1000, satisfied=True)
    assert order.status is Status.CLOSED and order.satisfied is True
    assert [m.action for m in order.timeline] == [
        "create", "assign", "contact", "handle", "answer", "revisit"]
    assert order.timeline[0].before == "" and order.timeline[-1].after == "closed"
    with pytest.raises(Refused):
        step(order, "revisit", OPERATOR, t0 + 1100, satisfied=False)


def test_dissatisfaction_reopens_once_as_a_warning_order() -> None:
    t0 = at(2026, 11, 23, 10, 0)
    order = new("complaint", t0, department="sanitation")
    order = step(order, "contact", SANITATION, t0 + 60)
    order = step(order, "answer", SANITATION, t0 + 120, answer="we looked")
    out = hotline.act(order, "revisit", OPERATOR, t0 + 180, CLOCK, satisfied=False)
    order = out.order
    assert order.status is Status.ASSIGNED and order.warning and order.reopened == 1
    assert order.limit == "3wd"
    assert local(order.answer_due) == dt.datetime(2026, 11, 26, 10, 3)
    assert [t.kind for t in out.tells] == ["hotline.warning"]
    assert out.tells[0].recipient == "sanitation" and out.tells[0].urgency == "high"
    # The warning order goes through contact and answer again.
    with pytest.raises(Refused, match="contacted first"):
        step(order, "answer", SANITATION, t0 + 240, answer="again")
    with pytest.raises(Refused, match="supervision limit"):
        step(order, "request_extension", SANITATION, t0 + 240, reason="hard")
    order = step(order, "contact", SANITATION, t0 + 300)
    order = step(order, "answer", SANITATION, t0 + 360, answer="fixed properly")
    order = step(order, "revisit", OPERATOR, t0 + 420, satisfied=False)
    # A second dissatisfaction closes it, recorded, without re-opening again.
    assert order.status is Status.CLOSED and order.reopened == 1
    assert order.satisfaction == [False, False] and order.satisfied is False
    assert "re-opened once" in order.timeline[-1].note


def test_complex_cases_get_fifteen_working_days_with_approval() -> None:
    t0 = at(2026, 11, 23, 10, 0)
    order = new("help", t0, department="sanitation")
    consult = new("consultation", t0, department="sanitation")
    with pytest.raises(Refused, match="only help and complaint"):
        step(consult, "request_extension", SANITATION, t0, reason="hard")
    with pytest.raises(Refused, match="needs a reason"):
        step(order, "request_extension", SANITATION, t0)
    with pytest.raises(Refused, match="no extension was requested"):
        step(order, "approve_extension", OPERATOR, t0)
    order = step(order, "request_extension", SANITATION, t0 + 60, reason="three owners")
    with pytest.raises(NotAllowed):
        step(order, "approve_extension", SANITATION, t0 + 120)
    order = step(order, "approve_extension", OPERATOR, t0 + 120)
    assert order.complex and order.limit == "15wd"
    # 15 working days from the call, not from the approval: 23 Nov + 15 = 14 December.
    assert local(order.answer_due) == dt.datetime(2026, 12, 14, 10, 0)
    with pytest.raises(Refused, match="already extended"):
        step(order, "request_extension", SANITATION, t0 + 180, reason="more")
    denied = step(step(new("complaint", t0, department="sanitation"), "request_extension",
                       SANITATION, t0, reason="x"), "deny_extension", OPERATOR, t0 + 10)
    assert not denied.complex and denied.limit == "5wd" and not denied.extension_requested


def test_roles_and_departments() -> None:
    t0 = at(2026, 11, 23, 10, 0)
    with pytest.raises(NotAllowed):
        hotline.new_order("n", "help", "x", now=t0, clock=CLOCK, actor=SANITATION, phone="1")
    with pytest.raises(Refused, match="order type"):
        new("gossip", t0)
    with pytest.raises(Refused, match="phone or citizen id"):
        new("help", t0, phone="")
    order = new("help", t0, department="sanitation")
    with pytest.raises(NotAllowed, match="is with sanitation"):
        step(order, "contact", POLICE, t0)
    with pytest.raises(NotAllowed):
        step(order, "assign", SANITATION, t0, department="police")
    with pytest.raises(Refused, match="unknown action"):
        step(order, "teleport", OPERATOR, t0)
    # Reassigned after contact: the new department must contact the citizen itself.
    order = step(order, "contact", SANITATION, t0 + 60)
    order = step(order, "assign", OPERATOR, t0 + 120, department="police")
    assert order.status is Status.ASSIGNED and order.contacted_at is None
    with pytest.raises(Refused, match="already with police"):
        step(order, "assign", OPERATOR, t0 + 130, department="police")
    order = step(order, "cancel", OPERATOR, t0 + 180, reason="a repeat call")
    assert order.status is Status.CANCELLED and order.reason == "a repeat call"


def test_visibility_by_scope() -> None:
    order = new("help", at(2026, 11, 23, 10, 0), department="sanitation", area="990001001001")
    assert hotline.visible_to(order, Role.OPERATOR, None, None)
    assert hotline.visible_to(order, Role.STATION, "990001001", None)
    assert not hotline.visible_to(order, Role.STATION, "990001002", None)
    assert hotline.visible_to(order, Role.DEPARTMENT, None, "sanitation")
    assert not hotline.visible_to(order, Role.DEPARTMENT, None, "police")
    assert not hotline.visible_to(order, Role.CITIZEN, None, None)


def test_overdue_steps_are_flagged_once_each() -> None:
    t0 = at(2026, 11, 23, 10, 0)
    order = new("consultation", t0, department="sanitation")
    assert hotline.next_due(order) == order.contact_due
    assert hotline.flag_overdue(order, t0 + 60) is None
    late = order.answer_due + 1
    out = hotline.flag_overdue(order, late)
    assert out is not None and out.order.late == ["contact", "answer"]
    assert {t.recipient for t in out.tells} == {"sanitation", hotline.CENTRE_INBOX}
    assert hotline.next_due(out.order) is None  # nothing left to wait for in this step
    assert hotline.flag_overdue(out.order, late + 3600) is None
    assert hotline.is_overdue(out.order, late)
    # Answering late moves the order on to the revisit, with its own deadline.
    order = step(step(out.order, "contact", SANITATION, late), "answer", SANITATION, late,
                 answer="ok")
    assert not hotline.is_overdue(order, late)
    assert hotline.next_due(order) == order.revisit_due
    assert hotline.overdue_steps(order, order.revisit_due) == ["revisit"]


def test_order_numbers_carry_the_date() -> None:
    assert hotline.order_number(dt.date(2026, 11, 23), "K7Q2MX4P") == "20261123-K7Q2MX4P"
