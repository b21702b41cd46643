"""Escalation: an order not accepted or not finished in time goes one level up, village
station -> street/town sub-centre -> district centre, with the supervisor told; at the top it is
marked overdue. Time is injected: no sleeps."""

from __future__ import annotations

import datetime as dt

from cityops.domain.incidents.model import Level, OrderStatus, Status
from cityops.domain.incidents.workflow import Rules
from cityops.store.incident_rows import late_at

from .conftest import OPERATOR, PLACE, SANITATION, at, report


def dispatched(rules: Rules, category: str = "event.sanitation.exposed_garbage"):
    cat = rules.categories.resolve(category)
    inc = rules.open_incident("inc-9", report(), cat, title="", actor=OPERATOR,
                              areas=PLACE).incident
    inc = rules.act(inc, "register", OPERATOR, at(0)).incident
    return rules.act(inc, "dispatch", OPERATOR, at(0)).incident


def test_not_accepted_climbs_all_three_levels(rules: Rules) -> None:
    inc = dispatched(rules)
    order = inc.orders[0]
    assert (order.level, order.accept_due) == (Level.VILLAGE, at(1))
    assert rules.escalate_due(inc, at(0.99)) is None  # nothing due yet

    out = rules.escalate_due(inc, at(1))
    inc = out.incident
    order = inc.orders[0]
    assert (order.level, order.unit) == (Level.TOWN, "subcentre:310115001")
    assert order.escalations == 1 and order.accept_due == at(1) + 3600  # one more working hour
    assert [(n.kind, n.recipient) for n in out.notices] == [
        ("order.escalated", "subcentre:310115001"), ("order.escalated", "sanitation")]
    assert out.events[0].actor == "scheduler" and out.events[0].reason == "not accepted in time"

    inc = rules.escalate_due(inc, at(2)).incident
    assert (inc.orders[0].level, inc.orders[0].unit) == (Level.DISTRICT, "centre:310115")

    out = rules.escalate_due(inc, at(3.5))  # 12:00 + lunch: due 14:30 is at(4.5)
    assert out is None
    out = rules.escalate_due(inc, at(4.5))
    assert out.incident.orders[0].overdue
    assert [(n.kind, n.recipient) for n in out.notices] == [("order.overdue", "centre:310115")]
    assert out.incident.next_due is None  # nobody above the district centre: stop asking
    assert rules.escalate_due(out.incident, at(50)) is None


def test_not_finished_in_time_escalates_too(rules: Rules) -> None:
    inc = dispatched(rules)
    oid = inc.orders[0].id
    inc = rules.act_on_order(inc, oid, "accept", SANITATION, at(0.5)).incident
    finish_due = inc.orders[0].finish_due
    assert rules.escalate_due(inc, finish_due - 1) is None
    out = rules.escalate_due(inc, finish_due)
    assert out.events[0].reason == "not finished in time"
    assert out.incident.orders[0].level is Level.TOWN
    assert out.incident.orders[0].status is OrderStatus.ACCEPTED  # still the unit's job


def test_urgent_cases_start_at_the_district_centre_on_wall_clock_minutes(rules: Rules) -> None:
    inc = dispatched(rules, "event.emergency.waterlogging")
    assert {o.level for o in inc.orders} == {Level.DISTRICT}
    first = inc.orders[0]
    assert first.accept_due == at(0) + 600  # 10 minutes, whatever the office hours
    out = rules.escalate_due(inc, at(0) + 600)
    assert all(o.overdue for o in out.incident.orders)
    assert {n.kind for n in out.notices} == {"order.overdue"}


def test_escalation_waits_for_office_hours(rules: Rules) -> None:
    """Dispatched Friday 17:30 (30 working minutes left that day): accept due Monday 09:30."""
    tz = dt.timezone(dt.timedelta(hours=8))
    friday_1730 = dt.datetime(2026, 11, 20, 17, 30, tzinfo=tz).timestamp()
    monday_0930 = dt.datetime(2026, 11, 23, 9, 30, tzinfo=tz).timestamp()
    cat = rules.categories.resolve("event.sanitation.exposed_garbage")
    inc = rules.open_incident("inc-f", report(when=friday_1730), cat, title="", actor=OPERATOR,
                              areas=PLACE).incident
    inc = rules.act(inc, "register", OPERATOR, friday_1730).incident
    inc = rules.act(inc, "dispatch", OPERATOR, friday_1730).incident
    assert inc.orders[0].accept_due == monday_0930
    assert rules.escalate_due(inc, monday_0930 - 60) is None  # the weekend does not count


def test_an_undispatched_case_tells_the_centre_once(rules: Rules) -> None:
    cat = rules.categories.resolve("event.sanitation.exposed_garbage")
    inc = rules.open_incident("inc-u", report(), cat, title="", actor=OPERATOR,
                              areas=PLACE).incident
    out = rules.escalate_due(inc, at(1))
    assert [n.kind for n in out.notices] == ["incident.dispatch_overdue"]
    assert out.incident.status is Status.COLLECTED and out.incident.next_due is None
    assert rules.escalate_due(out.incident, at(2)) is None
    # Still overdue for the lists: the deadline is kept, only the notice is not repeated.
    assert late_at(out.incident) == at(1)


def test_an_unacknowledged_offer_times_out_to_the_next_person(rules: Rules) -> None:
    inc = dispatched(rules)
    oid = inc.orders[0].id
    inc = rules.act_on_order(inc, oid, "assign", OPERATOR, at(0.1), staff_id="s-1",
                             ack_timeout_s=120).incident
    assert inc.orders[0].offer.staff_id == "s-1" and inc.orders[0].next_due == at(0.1) + 120
    out = rules.escalate_due(inc, at(0.1) + 120)
    assert out.reoffer == [oid]
    assert out.incident.orders[0].offer is None
    assert out.incident.orders[0].offers_tried == ["s-1"]
    assert out.incident.orders[0].level is Level.VILLAGE  # an expired offer is not escalation
