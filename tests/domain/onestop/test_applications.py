"""The application workflow: who may move it, which moves each state allows (409 reasons),
the legal time limit on the working-hours clock standing still while the citizen is asked for
more, and the combined status of a submission."""

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
    new_application,
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


def application(materials=()):
    return new_application(
        id="app-1", submission="sub-1", item_code="food_operating_permit",
        item_name="Food operating permit", department="market_regulation", applicant="c-1",
        now=MONDAY_10, limit=Limit.parse("10wd"), clock=CLOCK, answers={"business_name": "X"},
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
