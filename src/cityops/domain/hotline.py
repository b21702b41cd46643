"""12345 hotline orders (SPEC section 5): the pure rules. No I/O, no "now" of its own.

An order is a citizen's call: a consultation, a suggestion, a request for help or a complaint.
The centre takes it and assigns it to a department; the department contacts the citizen first,
then handles it (opening an incident for a problem in the field if need be) and answers; the
centre then revisits the citizen and asks whether they are satisfied. A dissatisfied answer
re-opens the order once, as a warning order with the supervision time limit; a second
dissatisfied answer closes it (recorded as dissatisfied) instead of re-opening it again.

Time limits, counted on the city's working-hours clock from the moment the call was taken:

| what | limit |
|---|---|
| answer a consultation or suggestion | 1 working day |
| answer a request for help or a complaint | 5 working days (15, complex, once approved) |
| answer a warning order (supervision) | 3 working days from the re-opening |
| revisit after the answer | 3 working days from the answer |
| first contact with the citizen | 1 working day, never later than the answer is due |

SPEC gives no limit for the first contact; one working day is our choice (the answer of a
consultation is due then anyway).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable
from typing import Any

import msgspec

from cityops.domain.access import Role
from cityops.domain.incidents.workflow import Actor, NotAllowed, Refused
from cityops.domain.tell import Tell
from cityops.domain.workclock import Limit, WorkClock

__all__ = ["Actor", "NotAllowed", "Refused"]


class OrderType(enum.StrEnum):
    CONSULTATION = "consultation"
    SUGGESTION = "suggestion"
    HELP = "help"
    COMPLAINT = "complaint"


class Status(enum.StrEnum):
    RECEIVED = "received"  # taken by the hotline, not yet with a department
    ASSIGNED = "assigned"  # with a department, waiting for the first contact
    CONTACTED = "contacted"  # the department has contacted the citizen
    HANDLING = "handling"  # being handled (perhaps through an incident)
    ANSWERED = "answered"  # answered; the centre's revisit is due
    CLOSED = "closed"  # revisited (satisfied, or dissatisfied a second time)
    CANCELLED = "cancelled"  # not an order (a repeat call, a wrong number), reason kept


OPEN = frozenset({Status.RECEIVED, Status.ASSIGNED, Status.CONTACTED, Status.HANDLING,
                  Status.ANSWERED})

ANSWER_LIMITS = {
    OrderType.CONSULTATION: Limit.parse("1wd"),
    OrderType.SUGGESTION: Limit.parse("1wd"),
    OrderType.HELP: Limit.parse("5wd"),
    OrderType.COMPLAINT: Limit.parse("5wd"),
}
COMPLEX_LIMIT = Limit.parse("15wd")
SUPERVISION_LIMIT = Limit.parse("3wd")
REVISIT_LIMIT = Limit.parse("3wd")
FIRST_CONTACT_LIMIT = Limit.parse("1wd")
EXTENSIBLE = frozenset({OrderType.HELP, OrderType.COMPLAINT})
REOPENS = 1  # a dissatisfied revisit re-opens an order this many times, no more

CENTRE = frozenset({Role.ADMIN, Role.OPERATOR})
HANDLERS = frozenset({Role.ADMIN, Role.OPERATOR, Role.DEPARTMENT})
CENTRE_INBOX = "hotline_centre"  # the notifier recipient for the hotline centre itself


class Move(msgspec.Struct, frozen=True, omit_defaults=True):
    """One line of an order's timeline."""

    at: float
    action: str  # create, assign, contact, handle, answer, revisit, reopen, overdue ...
    before: str
    after: str
    actor: str = ""  # key id, "scheduler"
    actor_name: str = ""
    role: str = ""
    note: str = ""
    detail: dict[str, Any] = {}


class HotlineOrder(msgspec.Struct, kw_only=True):
    number: str  # "20261123-K7Q2MX4P": the date taken and 8 random characters
    type: OrderType
    title: str
    content: str = ""
    caller_name: str = ""
    phone: str = ""
    citizen_id: str = ""  # when the caller is a registered citizen
    area: str = ""  # village (or town, district) code of the place concerned
    address: str = ""
    lat: float | None = None
    lon: float | None = None
    department: str = ""
    status: Status = Status.RECEIVED
    created: float
    limit: str  # the answer limit in force ("5wd", "15wd" once extended, "3wd" as a warning)
    contact_due: float | None = None
    answer_due: float | None = None
    revisit_due: float | None = None
    contacted_at: float | None = None
    answered_at: float | None = None
    closed_at: float | None = None
    answer: str = ""
    complex: bool = False
    extension_requested: bool = False
    extension_reason: str = ""
    warning: bool = False  # re-opened after a dissatisfied revisit
    reopened: int = 0
    satisfaction: list[bool] = []  # every revisit's answer, in order
    incident_id: str = ""
    late: list[str] = []  # steps the scheduler flagged overdue in this round
    reason: str = ""  # why cancelled
    timeline: list[Move] = []

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    @property
    def satisfied(self) -> bool | None:
        return self.satisfaction[-1] if self.satisfaction else None


class Outcome(msgspec.Struct):
    order: HotlineOrder
    tells: list[Tell]


# One move on an order (a copy the move may change), with the move's own keyword arguments.
MoveFn = Callable[..., Outcome]


def order_number(day: dt.date, token: str) -> str:
    return f"{day:%Y%m%d}-{token}"


def _copy(order: HotlineOrder) -> HotlineOrder:
    return msgspec.convert(msgspec.to_builtins(order), HotlineOrder)


def _move(order: HotlineOrder, actor: Actor, now: float, action: str, before: Status | None,
          note: str = "", **detail: object) -> None:
    order.timeline = [*order.timeline, Move(
        at=now, action=action, before=before.value if before else "", after=order.status.value,
        actor=actor.key_id, actor_name=actor.name, role=actor.role.value, note=note,
        detail={k: v for k, v in detail.items() if v not in (None, "")})]


def _contact_due(clock: WorkClock, start: float, answer_due: float) -> float:
    return min(answer_due, clock.deadline(start, FIRST_CONTACT_LIMIT))


def new_order(number: str, type: OrderType | str, title: str, *, now: float, clock: WorkClock,
              actor: Actor, content: str = "", caller_name: str = "", phone: str = "",
              citizen_id: str = "", area: str = "", address: str = "",
              lat: float | None = None, lon: float | None = None,
              department: str = "") -> Outcome:
    """The order as the hotline takes the call; assigned at once when `department` is given."""
    if actor.role not in CENTRE:
        raise NotAllowed(f"a {actor.role.value} key may not take hotline calls "
                         "(the hotline centre does: operator, admin)")
    try:
        kind = OrderType(type)
    except ValueError:
        raise Refused(f"order type {type!r} is not one of: "
                      f"{', '.join(t.value for t in OrderType)}") from None
    if not title.strip():
        raise Refused("an order needs a title")
    if not phone and not citizen_id:
        raise Refused("an order needs the caller's phone or citizen id, to contact them")
    limit = ANSWER_LIMITS[kind]
    answer_due = clock.deadline(now, limit)
    order = HotlineOrder(
        number=number, type=kind, title=title.strip(), content=content, caller_name=caller_name,
        phone=phone, citizen_id=citizen_id, area=area, address=address, lat=lat, lon=lon,
        created=now, limit=str(limit), answer_due=answer_due,
        contact_due=_contact_due(clock, now, answer_due))
    _move(order, actor, now, "create", None, type=kind.value)
    out = Outcome(order, [])
    if department:
        out = act(order, "assign", actor, now, clock, department=department)
    return out


def _need(order: HotlineOrder, action: str, allowed: frozenset[Status], why: str) -> None:
    if order.status not in allowed:
        raise Refused(f"cannot {action} order {order.number}: it is {order.status.value}, "
                      f"and {action} needs it {why}")


def _check_role(order: HotlineOrder, action: str, actor: Actor) -> None:
    roles = CENTRE if action in _CENTRE_MOVES else HANDLERS
    if actor.role not in roles:
        who = "the hotline centre" if roles is CENTRE else "the department handling it"
        raise NotAllowed(f"a {actor.role.value} key may not {action} an order ({who} does)")
    if actor.role is Role.DEPARTMENT and actor.scope.department not in (None, order.department):
        raise NotAllowed(f"order {order.number} is with {order.department or 'no department'}, "
                         f"not {actor.scope.department}")


def visible_to(order: HotlineOrder, role: Role, area_scope: str | None,
               department_scope: str | None) -> bool:
    """Whether a staff key sees the order: its area or its department's orders."""
    if role is Role.CITIZEN or role is Role.DEVICE or role is Role.FIELD:
        return False
    if area_scope is not None:
        return order.area.startswith(area_scope) if order.area else False
    if department_scope is not None:
        return order.department == department_scope
    return True


def act(order: HotlineOrder, action: str, actor: Actor, now: float, clock: WorkClock,
        **args: object) -> Outcome:
    """Make one move; `Refused` (409) when the order's state does not allow it, `NotAllowed`
    (403) when the role may never make it."""
    make = _MOVES.get(action)
    if make is None:
        raise Refused(f"unknown action {action!r}: one of {', '.join(sorted(_MOVES))}")
    _check_role(order, action, actor)
    order = _copy(order)
    return make(order, actor, now, clock, **args)


def _assign(order: HotlineOrder, actor: Actor, now: float, clock: WorkClock,
            department: str = "", note: str = "", **_: object) -> Outcome:
    _need(order, "assign", frozenset({Status.RECEIVED, Status.ASSIGNED, Status.CONTACTED,
                                      Status.HANDLING}), "open and not yet answered")
    if not department:
        raise Refused("assign needs a department")
    before, previous = order.status, order.department
    if department == previous and before is not Status.RECEIVED:
        raise Refused(f"order {order.number} is already with {department}")
    order.department = department
    order.status = Status.ASSIGNED
    if before in (Status.CONTACTED, Status.HANDLING):
        order.contacted_at = None  # the new department makes its own first contact
        order.contact_due = _contact_due(clock, now, order.answer_due or now)
        order.late = [s for s in order.late if s != "contact"]
    _move(order, actor, now, "assign", before, note, department=department,
          previous=previous or None)
    tells = [Tell("hotline.assigned", department,
                  f"12345 order {order.number}: {order.title}",
                  f"{order.type.value}; answer due by the {order.limit} limit",
                  urgency="high" if order.warning else "normal",
                  ref=f"{order.number}:assign:{len(order.timeline)}", args=_args(order))]
    return Outcome(order, tells)


def _args(order: HotlineOrder) -> dict[str, str | int | float]:
    """The facts a notice about `order` is written from in the reader's language."""
    args: dict[str, str | int | float] = {"number": order.number, "title": order.title}
    if order.answer_due is not None:
        args["due"] = order.answer_due
    return args


def _contact(order: HotlineOrder, actor: Actor, now: float, clock: WorkClock,
             note: str = "", **_: object) -> Outcome:
    _need(order, "contact", frozenset({Status.ASSIGNED}), "assigned and not yet contacted")
    order.status, order.contacted_at = Status.CONTACTED, now
    _move(order, actor, now, "contact", Status.ASSIGNED, note)
    return Outcome(order, [])


def _handle(order: HotlineOrder, actor: Actor, now: float, clock: WorkClock,
            note: str = "", incident_id: str = "", **_: object) -> Outcome:
    if order.status is Status.ASSIGNED:
        raise Refused(f"cannot handle order {order.number}: the citizen must be contacted "
                      "first (contact)")
    _need(order, "handle", frozenset({Status.CONTACTED, Status.HANDLING}),
          "contacted or already in hand")
    before = order.status
    order.status = Status.HANDLING
    if incident_id:
        order.incident_id = incident_id
    _move(order, actor, now, "handle", before, note, incident=incident_id or None)
    return Outcome(order, [])


def _answer(order: HotlineOrder, actor: Actor, now: float, clock: WorkClock,
            answer: str = "", note: str = "", **_: object) -> Outcome:
    if order.status is Status.ASSIGNED:
        raise Refused(f"cannot answer order {order.number}: the citizen must be contacted "
                      "first (contact)")
    _need(order, "answer", frozenset({Status.CONTACTED, Status.HANDLING}),
          "contacted or in hand")
    text = (answer or note).strip()
    if not text:
        raise Refused("answer needs the answer given to the citizen (answer)")
    before = order.status
    order.status, order.answered_at, order.answer = Status.ANSWERED, now, text
    order.revisit_due = clock.deadline(now, REVISIT_LIMIT)
    order.extension_requested = False
    _move(order, actor, now, "answer", before, text)
    tells = [Tell("hotline.revisit_due", CENTRE_INBOX, f"12345 order {order.number} answered",
                  "revisit the citizen", ref=f"{order.number}:answer:{len(order.timeline)}",
                  args=_args(order))]
    if order.phone:
        tells.append(Tell("hotline.answered", order.phone, "12345",
                          f"Your order {order.number} has been answered", sms=True,
                          ref=f"{order.number}:answered:{len(order.timeline)}",
                          args={"number": order.number}))
    return Outcome(order, tells)


def _revisit(order: HotlineOrder, actor: Actor, now: float, clock: WorkClock,
             satisfied: bool | None = None, note: str = "", **_: object) -> Outcome:
    _need(order, "revisit", frozenset({Status.ANSWERED}), "answered")
    if satisfied is None:
        raise Refused("revisit needs the citizen's answer: satisfied true or false")
    order.satisfaction = [*order.satisfaction, bool(satisfied)]
    order.revisit_due = None
    order.late = []
    if satisfied or order.reopened >= REOPENS:
        order.status, order.closed_at = Status.CLOSED, now
        why = note if satisfied else (note or "dissatisfied again: an order is re-opened once")
        _move(order, actor, now, "revisit", Status.ANSWERED, why, satisfied=bool(satisfied))
        return Outcome(order, [])
    _move(order, actor, now, "revisit", Status.ANSWERED, note, satisfied=False)
    # Re-opened as a warning order: the same department, under supervision, contacts the
    # citizen again and answers within the supervision limit.
    order.warning, order.reopened = True, order.reopened + 1
    order.status = Status.ASSIGNED
    order.limit = str(SUPERVISION_LIMIT)
    order.answer_due = clock.deadline(now, SUPERVISION_LIMIT)
    order.contact_due = _contact_due(clock, now, order.answer_due)
    order.contacted_at = order.answered_at = None
    _move(order, actor, now, "reopen", Status.ANSWERED, "dissatisfied: re-opened as a warning "
          "order", limit=order.limit)
    tells = [Tell("hotline.warning", order.department or CENTRE_INBOX,
                  f"12345 WARNING order {order.number}: {order.title}",
                  f"the citizen is not satisfied; answer within {order.limit}",
                  urgency="high", ref=f"{order.number}:reopen:{order.reopened}",
                  args=_args(order))]
    return Outcome(order, tells)


def _request_extension(order: HotlineOrder, actor: Actor, now: float, clock: WorkClock,
                       reason: str = "", note: str = "", **_: object) -> Outcome:
    _need(order, "request_extension", frozenset({Status.ASSIGNED, Status.CONTACTED,
                                                 Status.HANDLING}), "open and not answered")
    if order.type not in EXTENSIBLE:
        raise Refused(f"a {order.type.value} is answered within {order.limit}: only help and "
                      "complaint orders may be extended as complex cases")
    if order.warning:
        raise Refused("a warning order keeps the supervision limit: it cannot be extended")
    if order.complex:
        raise Refused(f"order {order.number} is already extended to {order.limit}")
    if order.extension_requested:
        raise Refused(f"an extension of order {order.number} is already waiting for approval")
    why = (reason or note).strip()
    if not why:
        raise Refused("request_extension needs a reason (why the case is complex)")
    order.extension_requested, order.extension_reason = True, why
    _move(order, actor, now, "request_extension", order.status, why)
    tells = [Tell("hotline.extension_requested", CENTRE_INBOX,
                  f"12345 order {order.number}: extension requested", why,
                  ref=f"{order.number}:extension:{len(order.timeline)}",
                  args={**_args(order), "reason": why})]
    return Outcome(order, tells)


def _decide_extension(approve: bool) -> MoveFn:
    def decide(order: HotlineOrder, actor: Actor, now: float, clock: WorkClock, note: str = "",
               reason: str = "", **_: object) -> Outcome:
        action = "approve_extension" if approve else "deny_extension"
        if not order.extension_requested:
            raise Refused(f"cannot {action} of order {order.number}: no extension was requested")
        _need(order, action, frozenset({Status.ASSIGNED, Status.CONTACTED, Status.HANDLING}),
              "open and not answered")
        order.extension_requested = False
        if approve:
            order.complex = True
            order.limit = str(COMPLEX_LIMIT)
            order.answer_due = clock.deadline(order.created, COMPLEX_LIMIT)
            if order.contact_due is not None and order.contacted_at is None:
                order.contact_due = _contact_due(clock, order.created, order.answer_due)
            order.late = [s for s in order.late if s != "answer"]
        _move(order, actor, now, action, order.status, note or reason, limit=order.limit)
        tells = [Tell(f"hotline.{action}", order.department or CENTRE_INBOX,
                      f"12345 order {order.number}: extension "
                      f"{'approved' if approve else 'denied'}",
                      f"answer limit {order.limit}",
                      ref=f"{order.number}:{action}:{len(order.timeline)}", args=_args(order))]
        return Outcome(order, tells)
    return decide


def _cancel(order: HotlineOrder, actor: Actor, now: float, clock: WorkClock,
            reason: str = "", note: str = "", **_: object) -> Outcome:
    _need(order, "cancel", frozenset({Status.RECEIVED, Status.ASSIGNED}),
          "received or assigned (before anyone contacted the citizen)")
    why = (reason or note).strip()
    if not why:
        raise Refused("cancel needs a reason (a repeat call, a wrong number ...)")
    before = order.status
    order.status, order.closed_at, order.reason = Status.CANCELLED, now, why
    _move(order, actor, now, "cancel", before, why)
    return Outcome(order, [])


_MOVES: dict[str, MoveFn] = {
    "assign": _assign,
    "contact": _contact,
    "handle": _handle,
    "answer": _answer,
    "revisit": _revisit,
    "request_extension": _request_extension,
    "approve_extension": _decide_extension(True),
    "deny_extension": _decide_extension(False),
    "cancel": _cancel,
}
_CENTRE_MOVES = frozenset({"assign", "revisit", "approve_extension", "deny_extension",
                           "cancel"})
ACTIONS = tuple(_MOVES)


# -- deadlines ---------------------------------------------------------------------------------

def pending_dues(order: HotlineOrder) -> list[tuple[str, float]]:
    """The deadlines the order is waiting on now, by step."""
    out: list[tuple[str, float]] = []
    if order.status in (Status.RECEIVED, Status.ASSIGNED) and order.contact_due is not None:
        out.append(("contact", order.contact_due))
    if order.status in (Status.RECEIVED, Status.ASSIGNED, Status.CONTACTED, Status.HANDLING) \
            and order.answer_due is not None:
        out.append(("answer", order.answer_due))
    if order.status is Status.ANSWERED and order.revisit_due is not None:
        out.append(("revisit", order.revisit_due))
    return out


def next_due(order: HotlineOrder) -> float | None:
    """The deadline the scheduler waits for: the soonest not yet flagged overdue."""
    dues = [due for step, due in pending_dues(order) if step not in order.late]
    return min(dues) if dues else None


def overdue_steps(order: HotlineOrder, now: float) -> list[str]:
    return [step for step, due in pending_dues(order) if due <= now]


def is_overdue(order: HotlineOrder, now: float) -> bool:
    return bool(overdue_steps(order, now))


SCHEDULER = Actor("scheduler", Role.ADMIN, name="hotline scheduler")


def flag_overdue(order: HotlineOrder, now: float) -> Outcome | None:
    """Steps past their deadline that were not flagged yet: flagged, with the department
    and the centre told; None when there is nothing new."""
    new = [s for s in overdue_steps(order, now) if s not in order.late]
    if not new:
        return None
    order = _copy(order)
    order.late = [*order.late, *new]
    _move(order, SCHEDULER, now, "overdue", order.status, ", ".join(new), steps=new)
    tells = []
    for recipient in dict.fromkeys([order.department, CENTRE_INBOX]):
        if recipient:
            tells.append(Tell("hotline.overdue", recipient,
                              f"12345 order {order.number} overdue: {', '.join(new)}",
                              order.title, urgency="high",
                              ref=f"{order.number}:overdue:{order.reopened}:{','.join(new)}",
                              args=_args(order)))
    return Outcome(order, tells)
