"""Applications and their workflow, as pure functions.

    submitted -> accepted | need_more | rejected
    need_more -> submitted        (the citizen hands in what was asked; the clock resumes)
    accepted  -> approved | rejected | need_more
    approved | rejected -> result_issued

Each application belongs to one department (the item's owner), which alone may act on it (and
an admin); the citizen may only hand in more. The legal time limit runs on the working-hours
clock from submission and stands still while the department waits for the citizen.
Once it has run out on an application still waiting for the department's decision, the
scheduler flags it overdue once (`flag_overdue`) and tells the department.

A move checks the actor first (`NotAllowed` 403, `OutOfScope` 404), then the state
(`Refused` 409, with a reason a person can act on), and returns the changed application with
its new timeline event and the notices it causes. A submission's combined status is derived
from its applications.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import msgspec

from cityops.domain.access import Role, Scope
from cityops.domain.onestop.licences import EXEMPT, MaterialState
from cityops.domain.workclock import Limit, WorkClock


class Status(enum.StrEnum):
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    NEED_MORE = "need_more"
    APPROVED = "approved"
    REJECTED = "rejected"
    RESULT_ISSUED = "result_issued"


OPEN = frozenset({Status.SUBMITTED, Status.ACCEPTED, Status.NEED_MORE, Status.APPROVED,
                  Status.REJECTED})

# action -> (states it may start from, the state it leads to)
MOVES: dict[str, tuple[frozenset[Status], Status]] = {
    "accept": (frozenset({Status.SUBMITTED}), Status.ACCEPTED),
    "need_more": (frozenset({Status.SUBMITTED, Status.ACCEPTED}), Status.NEED_MORE),
    "resubmit": (frozenset({Status.NEED_MORE}), Status.SUBMITTED),
    "approve": (frozenset({Status.ACCEPTED}), Status.APPROVED),
    "reject": (frozenset({Status.SUBMITTED, Status.ACCEPTED}), Status.REJECTED),
    "issue_result": (frozenset({Status.APPROVED, Status.REJECTED}), Status.RESULT_ISSUED),
}
DEPARTMENT_MOVES = frozenset({"accept", "need_more", "approve", "reject", "issue_result"})
CITIZEN_MOVES = frozenset({"resubmit"})


class Refused(Exception):
    """Not possible in the application's present state (HTTP 409)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotAllowed(Exception):
    """The actor's role may never make this move (HTTP 403)."""


class OutOfScope(Exception):
    """Not the actor's application to see (HTTP 404)."""


class Actor(msgspec.Struct, frozen=True):
    key_id: str
    role: Role
    scope: Scope = Scope()
    name: str = ""  # a citizen key's name is the citizen id


class Event(msgspec.Struct, frozen=True, omit_defaults=True):
    at: float
    action: str
    actor: str  # key id
    role: str
    before: str = ""
    after: str = ""
    reason: str = ""
    data: dict[str, Any] = {}


class Result(msgspec.Struct, frozen=True):
    outcome: str  # approved or rejected
    note: str = ""
    licence_id: str = ""
    licence_number: str = ""


class Application(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    submission: str
    item: str
    item_name: str
    department: str
    applicant: str  # the citizen's id
    status: Status
    submitted_at: float
    time_limit: str
    due: float | None  # None while the clock stands still or once decided
    answers: dict[str, Any] = {}
    fields: list[str] = []  # the codes of the item's form fields
    materials: list[MaterialState] = []
    channel: str = "online"
    bundle: str = ""
    area: str = ""  # the applicant's village, for area-scoped views
    asked: list[str] = []  # what the department asked for in need_more
    paused_at: float | None = None
    decision: str = ""  # approved / rejected, once decided
    decided_at: float | None = None
    result: Result | None = None
    # The deadline that passed, set once when the scheduler flags the application overdue.
    # Kept after the decision: it records that the limit was missed.
    overdue_since: float | None = None
    timeline: list[Event] = []

    @property
    def open(self) -> bool:
        return self.status in OPEN

    def overdue(self, now: float) -> bool:
        return self.due is not None and self.decided_at is None and now > self.due


class Notice(msgspec.Struct, frozen=True, omit_defaults=True):
    kind: str  # application.submitted, application.need_more ...
    recipient: str  # department code or "citizen:<id>"
    text: str


class Outcome(msgspec.Struct):
    application: Application
    event: Event
    notices: list[Notice]


def citizen_recipient(citizen_id: str) -> str:
    return f"citizen:{citizen_id}"


def new_application(*, id: str, submission: str, item_code: str, item_name: str,
                    department: str, applicant: str, now: float, limit: Limit, clock: WorkClock,
                    answers: Mapping[str, Any], fields: list[str],
                    materials: list[MaterialState], channel: str, bundle: str = "",
                    area: str = "", actor: Actor | None = None) -> Application:
    event = Event(at=now, action="submit", actor=actor.key_id if actor else applicant,
                  role=(actor.role if actor else Role.CITIZEN).value,
                  after=Status.SUBMITTED.value)
    return Application(
        id=id, submission=submission, item=item_code, item_name=item_name,
        department=department, applicant=applicant, status=Status.SUBMITTED, submitted_at=now,
        time_limit=str(limit), due=clock.deadline(now, limit), answers=dict(answers),
        fields=list(fields), materials=materials, channel=channel, bundle=bundle, area=area,
        timeline=[event])


def check_actor(app: Application, actor: Actor, action: str) -> None:
    if action not in MOVES:
        raise Refused(f"unknown action {action!r}; one of: {', '.join(MOVES)}")
    if actor.role is Role.CITIZEN:
        if actor.name != app.applicant:
            raise OutOfScope(f"no application {app.id!r}")
        if action not in CITIZEN_MOVES:
            raise NotAllowed(f"a citizen may not {action} an application; the department "
                             f"{app.department} decides")
        return
    if actor.role is Role.DEPARTMENT:
        if actor.scope.department != app.department:
            raise OutOfScope(f"no application {app.id!r}")
        if action not in DEPARTMENT_MOVES:
            raise NotAllowed(f"only the citizen may {action} an application")
        return
    if actor.role is Role.ADMIN:
        return
    raise NotAllowed(f"a {actor.role.value} key may not act on applications (the department "
                     f"{app.department} decides)")


def can_see(app: Application, actor: Actor) -> bool:
    if actor.role is Role.CITIZEN:
        return actor.name == app.applicant
    if actor.role is Role.DEPARTMENT:
        return actor.scope.department == app.department
    return actor.role in (Role.ADMIN, Role.OPERATOR)


def act(app: Application, action: str, actor: Actor, now: float, clock: WorkClock, *,
        reason: str = "", note: str = "", asked: Iterable[str] = (),
        provided: Mapping[str, str] | None = None, answers: Mapping[str, Any] | None = None
        ) -> Outcome:
    """One move. For `resubmit`, `provided` are the materials handed in ({code: reference})
    and `answers` replace earlier answers of the same fields (already checked by the caller).
    `issue_result` does not issue licences itself: the serve side puts the licence in the
    store and records it with `with_licence`."""
    check_actor(app, actor, action)
    sources, target = MOVES[action]
    if app.status not in sources:
        allowed = " or ".join(s.value for s in sorted(sources))
        raise Refused(f"cannot {action.replace('_', ' ')} application {app.id}: it is "
                      f"{app.status.value}, and {action} needs it {allowed}")
    changes: dict[str, Any] = {"status": target}
    notices: list[Notice] = []
    data: dict[str, Any] = {}
    citizen = citizen_recipient(app.applicant)
    if action == "need_more":
        asked = [a for a in asked if a]
        if not reason.strip():
            raise Refused("need_more needs a reason: tell the citizen what is missing")
        codes = {m.code for m in app.materials} | set(app.fields)
        unknown = [a for a in asked if a not in codes]
        if unknown:
            raise Refused(f"{unknown[0]!r} is not a material or field of this application")
        changes.update(asked=list(asked), paused_at=now, due=None)
        data["asked"] = list(asked)
        notices.append(Notice("application.need_more", citizen,
                              f"{app.item_name}: more is needed: {reason}"))
    elif action == "resubmit":
        provided = dict(provided or {})
        materials = []
        for m in app.materials:
            ref = provided.get(m.code)
            # What the government holds is never taken from the citizen, unless the department
            # asked for it (an awaited licence that will not come).
            if ref and (m.status not in EXEMPT or m.code in app.asked):
                m = msgspec.structs.replace(m, status="provided", ref=ref, pending_item="",
                                            reason="")
            materials.append(m)
        missing = [a for a in app.asked
                   if a in {m.code for m in app.materials}
                   and not provided.get(a)]
        if missing:
            raise Refused(f"the department asked for {', '.join(missing)}; hand "
                          f"{'it' if len(missing) == 1 else 'them'} in to resubmit")
        new_answers = {**app.answers, **(answers or {})}
        due = _resume(app, now, clock)
        changes.update(materials=materials, answers=new_answers, asked=[], paused_at=None,
                       due=due)
        data["provided"] = sorted(provided)
        notices.append(Notice("application.resubmitted", app.department,
                              f"{app.item_name}: the citizen handed in what was asked"))
    elif action == "approve":
        waiting = [m for m in app.materials if m.status == "pending"]
        if waiting:
            m = waiting[0]
            raise Refused(f"cannot approve application {app.id}: material {m.code!r} is still "
                          f"to be issued by item {m.pending_item!r} of the same submission")
        changes.update(decision="approved", decided_at=now, due=None)
    elif action == "reject":
        if not reason.strip():
            raise Refused("a rejection needs a reason the citizen can read")
        changes.update(decision="rejected", decided_at=now, due=None, paused_at=None)
    elif action == "issue_result":
        changes["result"] = Result(outcome=app.decision, note=note or reason)
    event = Event(at=now, action=action, actor=actor.key_id, role=actor.role.value,
                  before=app.status.value, after=target.value, reason=reason or note,
                  data=data)
    changes["timeline"] = [*app.timeline, event]
    return Outcome(msgspec.structs.replace(app, **changes), event, notices)


def _resume(app: Application, now: float, clock: WorkClock) -> float | None:
    """The deadline once the citizen answers: the time spent waiting for them is added."""
    if app.decided_at is not None:
        return None
    limit = Limit.parse(app.time_limit)
    due = clock.deadline(app.submitted_at, limit)
    pauses = [(e.at, nxt.at) for e, nxt in _pairs(app.timeline, now)]
    return clock.deadline_with_pauses(app.submitted_at, limit, pauses) if pauses else due


def _pairs(timeline: list[Event], now: float) -> Iterator[tuple[Event, Event]]:
    """(need_more event, the resubmit that ended it) pairs; the open one ends now."""
    start: Event | None = None
    for e in timeline:
        if e.action == "need_more":
            start = e
        elif e.action == "resubmit" and start is not None:
            yield start, e
            start = None
    if start is not None:
        yield start, Event(at=now, action="resubmit", actor="", role="")


def next_due(app: Application) -> float | None:
    """The instant the overdue scan waits for, stored as the record's `due`: the deadline while
    it is running and not yet flagged. Lateness is never undone (a need_more pause that begins
    after the deadline does not move it), so a flagged application needs no second flag and
    drops out of the scan for good."""
    if app.overdue_since is not None or app.status is Status.RESULT_ISSUED:
        return None
    return app.due


SCHEDULER = "scheduler"


def flag_overdue(app: Application, now: float, clock: WorkClock) -> Outcome | None:
    """The application flagged overdue, with the one notice to its department; None when it
    is not overdue or was flagged already.

    `overdue` is false while the department waits for the citizen (need_more clears `due`: the
    legal clock stands still then, and resubmission moves the deadline on by the time waited),
    so an application is never flagged for the citizen's delay. The citizen is not told: the
    late answer is the department's to give, and the citizen sees `overdue` on the application.
    """
    if app.overdue_since is not None or not app.overdue(now):
        return None
    due = app.due
    assert due is not None  # overdue() said so
    late = clock.working_seconds(due, now)
    event = Event(at=now, action="overdue", actor=SCHEDULER, role=Role.ADMIN.value,
                  before=app.status.value, after=app.status.value,
                  reason=f"{late_text(late)} late on the working-hours clock",
                  data={"due": due, "late_working_s": round(late, 3)})
    when = dt.datetime.fromtimestamp(due, clock.zone).strftime("%Y-%m-%d %H:%M")
    notice = Notice("application.overdue", app.department,
                    f"{app.item_name}: application {app.id} is overdue: its time limit "
                    f"({app.time_limit}) ran out at {when}; {late_text(late)} late on the "
                    f"working-hours clock (status {app.status.value})")
    flagged = msgspec.structs.replace(app, overdue_since=due, timeline=[*app.timeline, event])
    return Outcome(flagged, event, [notice])


def late_text(seconds: float) -> str:
    """Working time as people say it: '2 h 30 min', '45 min', 'under a minute'."""
    minutes = int(max(seconds, 0.0) // 60)
    if minutes == 0:
        return "under a minute"
    hours, minutes = divmod(minutes, 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def submission_overdue(apps: Iterable[Application], now: float) -> tuple[bool, float | None]:
    """A submission (a bundle's several departments) is overdue while any of its applications
    is; `overdue_since` is the earliest deadline any of them missed."""
    apps = list(apps)
    missed = [a.overdue_since for a in apps if a.overdue_since is not None]
    return any(a.overdue(now) for a in apps), min(missed) if missed else None


def with_licence(app: Application, licence_id: str, number: str) -> Application:
    result = app.result or Result(outcome=app.decision)
    return msgspec.structs.replace(
        app, result=msgspec.structs.replace(result, licence_id=licence_id,
                                            licence_number=number))


def combined_status(statuses: Iterable[Status | str]) -> str:
    """One status for a submission: done when every result is issued; need_more when any
    department waits for the citizen; submitted while none has started; else in_progress."""
    got = [Status(s) for s in statuses]
    if not got:
        return "submitted"
    if all(s is Status.RESULT_ISSUED for s in got):
        return "done"
    if any(s is Status.NEED_MORE for s in got):
        return "need_more"
    if all(s is Status.SUBMITTED for s in got):
        return "submitted"
    return "in_progress"


class Submission(msgspec.Struct, frozen=True, kw_only=True):
    """One submission of one form: a single item, or a bundle's items (one application per
    item, each with its department). Its status is derived from theirs."""

    id: str
    applicant: str
    title: str  # the item's or the bundle's name
    items: list[str]
    applications: list[str]  # ids, in the order of `items`
    submitted_at: float
    answers: dict[str, Any] = {}
    materials: list[MaterialState] = []
    channel: str = "online"
    bundle: str = ""
    key: str = ""  # the client's idempotency key
    status: str = "submitted"
    result_notice_at: float | None = None  # the one result notice, once every result is out
