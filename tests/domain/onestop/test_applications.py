"""The application workflow: who may move it, which moves each state allows (409 reasons),
the legal time limit on the working-hours clock standing still while the citizen is asked for
more, the overdue flag (once, to the department, never while the citizen is asked), and the
combined status of a submission."""

from __future__ import annotations

import datetime as dt

import pytest

from cityops.domain.access import Role, Scope
from cityops.domain.city import WorkCalendar
from cityops.domain.onestop.applications import (
    Actor,
    NotAllowed,
    OutOfScope,
    Refused,
    Status,
    act,
    combined_status,
    flag_overdue,
    late_text,
    new_application,
    next_due,
    submission_overdue,
)
from cityops.domain.onestop.licences import MaterialState
from cityops.domain.workclock import Limit, WorkClock

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
CLOCK = WorkClock(WorkCalendar(timezone="Asia/Shanghai"))
MONDAY_10 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI).timestamp()
DAY = 86_400

MARKET = Actor("k-market", Role.DEPARTMENT, Scope(department="market_regulation"))
FIRE = Actor("k-fire", Role.DEPARTMENT, Scope(department="fire"))
CITIZEN = Actor("k-c1", Role.CITIZEN, Scope(), "c-1")
OTHER = Actor("k-c2", Role.CITIZEN, Scope(), "c-2")
OPERATOR = Actor("k-op", Role.OPERATOR)


def application(materials=(), *, limit="10wd", now=MONDAY_10, id="app-1"):
    return new_application(
        id=id, submission="sub-1", item_code="food_operating_permit",
        item_name="Food operating permit", department="market_regulation", applicant="c-1",
        now=now, limit=Limit.parse(limit), clock=CLOCK, answers={"business_name": "X"},
        fields=["business_name", "floor_area"], materials=list(materials), channel="online")


def test_the_deadline_is_the_legal_limit_in_working_days() -> None:
    app = application()
    assert app.status is Status.SUBMITTED
    # 10 working days from Monday 23 November 2026 10:00 is Monday 7 December 10:00.
    assert app.due == MONDAY_10 + 14 * DAY
    assert app.overdue(app.due + 1) and not app.overdue(app.due)


def test_a_whole_life_accept_approve_issue() -> None:
    app = application()
    app = act(app, "accept", MARKET, MONDAY_10 + 60, CLOCK).application
    app = act(app, "approve", MARKET, MONDAY_10 + 120, CLOCK).application
    assert app.decision == "approved" and app.due is None
    out = act(app, "issue_result", MARKET, MONDAY_10 + 180, CLOCK, note="permit posted")
    assert out.application.status is Status.RESULT_ISSUED
    assert out.application.result.outcome == "approved"
    assert [e.action for e in out.application.timeline] == ["submit", "accept", "approve",
                                                            "issue_result"]
    assert out.event.before == "approved" and out.event.after == "result_issued"


def test_illegal_moves_are_refused_with_the_reason() -> None:
    app = application()
    with pytest.raises(Refused) as caught:
        act(app, "approve", MARKET, MONDAY_10, CLOCK)
    assert caught.value.reason == ("cannot approve application app-1: it is submitted, and "
                                   "approve needs it accepted")
    with pytest.raises(Refused, match="cannot issue result .* needs it approved or rejected"):
        act(app, "issue_result", MARKET, MONDAY_10, CLOCK)
    with pytest.raises(Refused, match="a rejection needs a reason"):
        act(app, "reject", MARKET, MONDAY_10, CLOCK)
    with pytest.raises(Refused, match="unknown action 'close'"):
        act(app, "close", MARKET, MONDAY_10, CLOCK)


def test_only_the_owning_department_decides_and_only_the_citizen_resubmits() -> None:
    app = application()
    with pytest.raises(OutOfScope):
        act(app, "accept", FIRE, MONDAY_10, CLOCK)
    with pytest.raises(NotAllowed):
        act(app, "accept", CITIZEN, MONDAY_10, CLOCK)
    with pytest.raises(OutOfScope):
        act(app, "resubmit", OTHER, MONDAY_10, CLOCK)
    with pytest.raises(NotAllowed):
        act(app, "accept", OPERATOR, MONDAY_10, CLOCK)
    with pytest.raises(NotAllowed):
        act(app, "resubmit", MARKET, MONDAY_10, CLOCK)
    admin = Actor("k-admin", Role.ADMIN)
    assert act(app, "accept", admin, MONDAY_10, CLOCK).application.status is Status.ACCEPTED


def test_need_more_stops_the_clock_until_the_citizen_hands_it_in() -> None:
    layout = MaterialState(code="kitchen_layout", name="Kitchen layout", status="provided",
                           ref="v1.pdf")
    app = application([layout])
    due = app.due
    with pytest.raises(Refused, match="'menu' is not a material or field"):
        act(app, "need_more", MARKET, MONDAY_10, CLOCK, reason="x", asked=["menu"])
    out = act(app, "need_more", MARKET, MONDAY_10 + 3600, CLOCK,
              reason="the layout lacks the kitchen", asked=["kitchen_layout"])
    app = out.application
    assert app.status is Status.NEED_MORE and app.due is None
    assert out.notices[0].recipient == "citizen:c-1"
    assert "the layout lacks the kitchen" in out.notices[0].text
    with pytest.raises(Refused, match="the department asked for kitchen_layout"):
        act(app, "resubmit", CITIZEN, MONDAY_10 + 2 * DAY, CLOCK)
    # Two working days later (Wednesday 11:00) the citizen hands in a new plan.
    out = act(app, "resubmit", CITIZEN, MONDAY_10 + 2 * DAY + 3600, CLOCK,
              provided={"kitchen_layout": "v2.pdf"})
    app = out.application
    assert app.status is Status.SUBMITTED and app.asked == []
    assert app.materials[0].ref == "v2.pdf"
    assert out.notices[0].recipient == "market_regulation"
    # Two working days passed while waiting: the deadline moved by exactly that.
    assert app.due == due + 2 * DAY


def test_approval_waits_for_a_licence_a_sibling_application_will_issue() -> None:
    pending = MaterialState(code="business_licence", name="Business licence", status="pending",
                            pending_item="restaurant_business_licence")
    app = act(application([pending]), "accept", MARKET, MONDAY_10, CLOCK).application
    with pytest.raises(Refused, match="material 'business_licence' is still to be issued by "
                                      "item 'restaurant_business_licence'"):
        act(app, "approve", MARKET, MONDAY_10, CLOCK)


def test_rejection_is_decided_then_its_result_issued() -> None:
    app = act(application(), "reject", MARKET, MONDAY_10, CLOCK,
              reason="premises are residential").application
    assert app.decision == "rejected"
    app = act(app, "issue_result", MARKET, MONDAY_10, CLOCK).application
    assert app.result.outcome == "rejected" and app.result.note == ""


@pytest.mark.parametrize(("statuses", "combined"), [
    (["submitted", "submitted"], "submitted"),
    (["submitted", "accepted"], "in_progress"),
    (["need_more", "result_issued"], "need_more"),
    (["result_issued", "approved"], "in_progress"),
    (["result_issued", "result_issued"], "done"),
])
def test_combined_status(statuses, combined) -> None:
    assert combined_status(statuses) == combined


FRIDAY_15 = MONDAY_10 - 3 * DAY + 5 * 3600  # 20 November 2026, 15:00


def test_overdue_is_flagged_once_on_the_working_hours_clock_across_a_weekend() -> None:
    # 4 working hours from Friday 15:00: 3 on Friday (to 18:00), the 4th on Monday 09:00-10:00.
    app = application(limit="4wh", now=FRIDAY_15)
    assert app.due == MONDAY_10 and next_due(app) == MONDAY_10
    sunday = MONDAY_10 - DAY
    assert flag_overdue(app, sunday, CLOCK) is None  # two days on the wall, 3 working hours
    assert flag_overdue(app, MONDAY_10, CLOCK) is None  # due at, not yet past
    out = flag_overdue(app, MONDAY_10 + 4 * 3600, CLOCK)  # Monday 14:00
    flagged = out.application
    assert flagged.overdue_since == MONDAY_10 and next_due(flagged) is None
    assert flagged.status is Status.SUBMITTED and flagged.overdue(MONDAY_10 + 4 * 3600)
    [notice] = out.notices
    assert (notice.kind, notice.recipient) == ("application.overdue", "market_regulation")
    # 10:00-12:00 and 13:30-14:00 are working time; the lunch break is not.
    assert notice.text == ("Food operating permit: application app-1 is overdue: its time "
                           "limit (4wh) ran out at 2026-11-23 10:00; 2 h 30 min late on the "
                           "working-hours clock (status submitted)")
    assert out.event.action == "overdue" and out.event.data["late_working_s"] == 9000
    assert flagged.timeline[-1] == out.event
    assert flag_overdue(flagged, MONDAY_10 + 5 * DAY, CLOCK) is None  # once


def test_decided_in_time_is_never_overdue_and_a_late_flag_stays_after_the_decision() -> None:
    app = act(application(limit="1wd"), "accept", MARKET, MONDAY_10 + 60, CLOCK).application
    done = act(app, "approve", MARKET, MONDAY_10 + 3600, CLOCK).application
    assert next_due(done) is None and flag_overdue(done, MONDAY_10 + 9 * DAY, CLOCK) is None
    late = flag_overdue(app, MONDAY_10 + DAY + 60, CLOCK).application
    decided = act(late, "reject", MARKET, MONDAY_10 + 2 * DAY, CLOCK, reason="no").application
    assert not decided.overdue(MONDAY_10 + 2 * DAY) and decided.overdue_since == app.due
    assert next_due(decided) is None


def test_the_citizens_time_does_not_count_and_is_never_flagged() -> None:
    # Due Tuesday 10:00; asked for more on Monday 15:00 with 4 working hours left.
    app = application(limit="1wd")
    asked = act(app, "need_more", MARKET, MONDAY_10 + 5 * 3600, CLOCK, reason="a plan",
                asked=["floor_area"]).application
    assert next_due(asked) is None
    assert flag_overdue(asked, MONDAY_10 + 2 * DAY, CLOCK) is None  # Wednesday, still waiting
    # Handed in Wednesday 10:00: the 4 hours left run 10:00-12:00 and 13:30-15:30.
    back = act(asked, "resubmit", CITIZEN, MONDAY_10 + 2 * DAY, CLOCK,
               answers={"floor_area": 90}).application
    assert back.due == next_due(back) == MONDAY_10 + 2 * DAY + 5.5 * 3600
    assert flag_overdue(back, MONDAY_10 + 2 * DAY + 5 * 3600, CLOCK) is None
    out = flag_overdue(back, MONDAY_10 + 2 * DAY + 6 * 3600, CLOCK)
    assert "30 min late" in out.notices[0].text


def test_late_then_asked_for_more_stays_late_and_is_not_flagged_again() -> None:
    app = act(application(limit="1wd"), "accept", MARKET, MONDAY_10, CLOCK).application
    late = flag_overdue(app, MONDAY_10 + DAY + 3600, CLOCK).application
    asked = act(late, "need_more", MARKET, MONDAY_10 + DAY + 7200, CLOCK, reason="a plan",
                asked=["floor_area"]).application
    assert not asked.overdue(MONDAY_10 + 3 * DAY) and asked.overdue_since == app.due
    back = act(asked, "resubmit", CITIZEN, MONDAY_10 + 2 * DAY, CLOCK,
               answers={"floor_area": 1}).application
    # A wait that began after the deadline does not move it: still late, flagged already.
    assert back.due == app.due and back.overdue(MONDAY_10 + 2 * DAY + 1)
    assert next_due(back) is None and flag_overdue(back, MONDAY_10 + 3 * DAY, CLOCK) is None


def test_a_bundle_is_overdue_while_any_of_its_applications_is() -> None:
    quick = application(limit="1wd", id="app-1")
    slow = application(limit="10wd", id="app-2")
    tuesday_noon = MONDAY_10 + DAY + 7200
    assert submission_overdue([quick, slow], MONDAY_10 + 3600) == (False, None)
    assert submission_overdue([quick, slow], tuesday_noon) == (True, None)  # not flagged yet
    flagged = flag_overdue(quick, tuesday_noon, CLOCK).application
    assert submission_overdue([flagged, slow], tuesday_noon) == (True, quick.due)
    decided = act(act(flagged, "accept", MARKET, tuesday_noon, CLOCK).application, "approve",
                  MARKET, tuesday_noon, CLOCK).application
    assert submission_overdue([decided, slow], tuesday_noon) == (False, quick.due)


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "under a minute"), (59.9, "under a minute"), (60, "1 min"), (3600, "1 h"),
    (5400, "1 h 30 min"), (30 * 3600 + 120, "30 h 2 min")])
def test_late_text(seconds, text) -> None:
    assert late_text(seconds) == text
