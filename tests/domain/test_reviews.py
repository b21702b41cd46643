"""Reviews: five grades, one re-rating, follow-ups of a bad review with their deadlines, and
the figures per department."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import msgspec
import pytest

from cityops.domain import reviews
from cityops.domain.access import Role, Scope
from cityops.domain.city import WorkCalendar
from cityops.domain.reviews import Actor, Grade, NotAllowed, Refused, Subject, TaskKind
from cityops.domain.workclock import WorkClock

SH = ZoneInfo("Asia/Shanghai")
CLOCK = WorkClock(WorkCalendar(timezone="Asia/Shanghai"))
FRIDAY_16 = dt.datetime(2026, 11, 20, 16, 0, tzinfo=SH).timestamp()
ORDER = Subject(kind="hotline_order", id="20261120-AAAA", finished=True, status="closed",
                departments=["sanitation"], parties=frozenset({"c-1"}), area="990001001001")
INCIDENT = Subject(kind="incident", id="inc-1", finished=True, status="closed",
                   departments=["sanitation", "police"])


def local(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, SH).replace(tzinfo=None)


def rate(held, grade, subject=ORDER, citizen="c-1", now=FRIDAY_16, open_tasks=False):
    return reviews.rate(held, subject, citizen, grade, "", now=now, clock=CLOCK,
                        open_tasks=open_tasks)


def test_five_grades_two_of_them_bad() -> None:
    assert [g.value for g in reviews.GRADES] == [
        "very_satisfied", "satisfied", "basically_satisfied", "dissatisfied",
        "very_dissatisfied"]
    assert reviews.BAD == {Grade.DISSATISFIED, Grade.VERY_DISSATISFIED}
    with pytest.raises(Refused, match="grade 'meh'"):
        rate(None, "meh")


def test_a_good_review_opens_nothing_and_may_be_changed_once() -> None:
    first = rate(None, "satisfied")
    assert first.created and not first.tasks and not first.tells
    review = first.review
    assert review.id == reviews.review_id("hotline_order", ORDER.id, "c-1")
    assert review.departments == ["sanitation"] and not review.rerated
    second = rate(review, "very_satisfied", now=FRIDAY_16 + 60)
    assert not second.created and second.review.rerated
    assert [r.grade for r in second.review.ratings] == [Grade.SATISFIED, Grade.VERY_SATISFIED]
    with pytest.raises(Refused, match="changed once"):
        rate(second.review, "satisfied", now=FRIDAY_16 + 120)


def test_a_bad_review_opens_a_callback_and_a_rectification_per_department() -> None:
    out = rate(None, "very_dissatisfied", subject=INCIDENT, citizen="c-9")
    kinds = sorted((t.department, t.kind.value) for t in out.tasks)
    assert kinds == [("police", "callback"), ("police", "rectification"),
                     ("sanitation", "callback"), ("sanitation", "rectification")]
    callback = next(t for t in out.tasks if t.kind is TaskKind.CALLBACK)
    rectify = next(t for t in out.tasks if t.kind is TaskKind.RECTIFICATION)
    # Friday 16:00 + 1 working day = Monday 16:00; 15 calendar days for the rectification.
    assert local(callback.due) == dt.datetime(2026, 11, 23, 16, 0)
    assert local(rectify.due) == dt.datetime(2026, 12, 5, 16, 0)
    assert out.review.tasks == [t.id for t in out.tasks] and len(set(out.review.tasks)) == 4
    assert {t.recipient for t in out.tells} == {"sanitation", "police"}


def test_a_bad_rerating_opens_follow_ups_only_when_none_is_open() -> None:
    first = rate(None, "dissatisfied")
    assert len(first.tasks) == 2
    again = rate(first.review, "very_dissatisfied", now=FRIDAY_16 + 60, open_tasks=True)
    assert again.tasks == [] and again.review.tasks == first.review.tasks
    good_then_bad = rate(rate(None, "satisfied").review, "dissatisfied", now=FRIDAY_16 + 60)
    assert len(good_then_bad.tasks) == 2
    after_done = rate(first.review, "dissatisfied", now=FRIDAY_16 + 60, open_tasks=False)
    assert len(after_done.tasks) == 2
    assert after_done.review.tasks[:2] == first.review.tasks
    assert len(set(after_done.review.tasks)) == 4  # new ids, none reused


def test_only_finished_subjects_of_ones_own_are_rated() -> None:
    open_order = msgspec.structs.replace(ORDER, finished=False, status="handling")
    with pytest.raises(Refused, match="it is handling, and only a finished one"):
        rate(None, "satisfied", subject=open_order)
    with pytest.raises(LookupError, match="not this citizen's"):
        rate(None, "satisfied", citizen="c-2")
    with pytest.raises(LookupError):
        reviews.check_subject(None, "c-1")
    # Anyone may rate an incident (a public problem).
    assert rate(None, "satisfied", subject=INCIDENT, citizen="c-2").created
    no_one = msgspec.structs.replace(INCIDENT, departments=[])
    assert rate(None, "satisfied", subject=no_one).review.departments == [reviews.NO_DEPARTMENT]


def test_a_task_is_done_with_a_note_by_its_department() -> None:
    task = rate(None, "dissatisfied").tasks[0]
    police = Actor("k_p", Role.DEPARTMENT, Scope(department="police"))
    sanitation = Actor("k_s", Role.DEPARTMENT, Scope(department="sanitation"), "Li")
    citizen = Actor("k_c", Role.CITIZEN, Scope(), "c-1")
    with pytest.raises(NotAllowed):
        reviews.finish_task(task, police, FRIDAY_16, "called")
    with pytest.raises(NotAllowed):
        reviews.finish_task(task, citizen, FRIDAY_16, "called")
    with pytest.raises(Refused, match="needs a note"):
        reviews.finish_task(task, sanitation, FRIDAY_16, " ")
    done = reviews.finish_task(task, sanitation, FRIDAY_16 + 60, "called, apologised")
    assert done.status == "done" and done.on_time and done.done_by == "Li"
    with pytest.raises(Refused, match="done already"):
        reviews.finish_task(done, sanitation, FRIDAY_16 + 120, "again")


def test_overdue_tasks_are_flagged_once() -> None:
    task = rate(None, "dissatisfied").tasks[0]
    assert reviews.flag_overdue(task, task.due - 1) is None
    flagged, tell = reviews.flag_overdue(task, task.due)
    assert flagged.overdue and tell.recipient == "sanitation"
    assert reviews.flag_overdue(flagged, task.due + 10) is None


def test_figures_per_department() -> None:
    rated = [rate(None, g, subject=INCIDENT, citizen=f"c-{i}")
             for i, g in enumerate(["very_satisfied", "satisfied", "basically_satisfied",
                                    "dissatisfied"])]
    rated.append(rate(None, "very_dissatisfied", citizen="c-1"))  # sanitation only
    tasks = [t for r in rated for t in r.tasks]
    sanitation = Actor("k_s", Role.DEPARTMENT, Scope(department="sanitation"))
    tasks = [reviews.finish_task(t, sanitation, t.due + 1, "late") if
             t.department == "sanitation" and t.kind is TaskKind.CALLBACK else t for t in tasks]
    rows = {r.department: r for r in reviews.figures([r.review for r in rated], tasks,
                                                     ["fire", "police", "sanitation"])}
    assert rows["fire"].reviews == 0 and rows["fire"].satisfaction_rate is None
    police, san = rows["police"], rows["sanitation"]
    assert police.reviews == 4 and police.satisfied == 3 and police.satisfaction_rate == 0.75
    assert san.reviews == 5 and san.bad == 2 and san.satisfaction_rate == 0.6
    assert san.grades == {"very_satisfied": 1, "satisfied": 1, "basically_satisfied": 1,
                          "dissatisfied": 1, "very_dissatisfied": 1}
    assert san.callbacks == 2 and san.callbacks_done == 2 and san.callbacks_on_time == 0
    assert police.callbacks == 1 and police.callbacks_done == 0
    assert san.rectifications == 2
