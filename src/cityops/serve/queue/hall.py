"""One counter's day of queue numbers, as pure functions on one document.

The whole day of a counter is one document (a few hundred tickets at most, capped by
`MAX_TICKETS`), so every move (taking a number, calling the next, closing one) is a single
version-checked write of it: two citizens taking a number at once get two different numbers,
two clerks pressing "next" at once call two different people, and a refusal leaves nothing
half-done. Numbers restart each day, prefixed with the counter's letter as the hall's boards
show them (A001, B014 ...).

    waiting -> called -> served | no_show        (called by a window; "next" at a window
                                                   closes the one it had called as served)
"""

from __future__ import annotations

import enum
import statistics

import msgspec

MAX_TICKETS = 999  # a three-digit number on the board
RECENT = 20  # calls the average wait is taken over
INTERVALS = 10  # calls the pace (seconds between calls) is taken over


class TicketStatus(enum.StrEnum):
    WAITING = "waiting"
    CALLED = "called"
    SERVED = "served"
    NO_SHOW = "no_show"


LIVE = (TicketStatus.WAITING, TicketStatus.CALLED)


class Ticket(msgspec.Struct, kw_only=True):
    number: int
    label: str  # as the board shows it: A012
    citizen: str
    channel: str  # kiosk or portal
    taken_at: float
    status: TicketStatus = TicketStatus.WAITING
    called_at: float | None = None
    called_by: str = ""  # the clerk's key id
    window: str = ""
    recalls: int = 0
    done_at: float | None = None

    @property
    def wait(self) -> float | None:
        return None if self.called_at is None else self.called_at - self.taken_at


class CounterDay(msgspec.Struct, kw_only=True):
    counter: str  # a department code
    day: str  # YYYY-MM-DD in the city's time zone
    prefix: str
    tickets: list[Ticket] = []

    def waiting(self) -> list[Ticket]:
        return [t for t in self.tickets if t.status is TicketStatus.WAITING]

    def called(self) -> list[Ticket]:
        return [t for t in self.tickets if t.status is TicketStatus.CALLED]

    def ticket(self, number: int) -> Ticket | None:
        return next((t for t in self.tickets if t.number == number), None)

    def live_of(self, citizen: str) -> Ticket | None:
        return next((t for t in self.tickets if t.citizen == citizen and t.status in LIVE),
                    None)


class QueueRefused(Exception):
    """Not possible now (HTTP 409); `code` is the stable reason, `detail` what to act on."""

    code = "queue_refused"

    def __init__(self, reason: str, detail: object = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


class AlreadyWaiting(QueueRefused):
    code = "queue_already_waiting"


class QueueFull(QueueRefused):
    code = "queue_full"


class NobodyWaiting(QueueRefused):
    code = "queue_nobody_waiting"


class NotCalled(QueueRefused):
    code = "queue_not_called"


def take(day: CounterDay, citizen: str, channel: str, now: float) -> tuple[CounterDay, Ticket]:
    held = day.live_of(citizen)
    if held is not None:
        raise AlreadyWaiting(f"you already hold number {held.label} for this counter "
                             f"({held.status.value}); one number per person",
                             detail={"label": held.label, "number": held.number})
    number = len(day.tickets) + 1
    if number > MAX_TICKETS:
        raise QueueFull(f"the counter has given out all {MAX_TICKETS} numbers today; come back "
                        "tomorrow or apply online")
    ticket = Ticket(number=number, label=f"{day.prefix}{number:03d}", citizen=citizen,
                    channel=channel, taken_at=now)
    return msgspec.structs.replace(day, tickets=[*day.tickets, ticket]), ticket


def call_next(day: CounterDay, window: str, by: str, now: float
              ) -> tuple[CounterDay, Ticket, Ticket | None]:
    """The first waiting number called to `window`; the number that window had called before
    is closed as served. Returns the day, the called ticket and the one closed (if any)."""
    waiting = day.waiting()
    if not waiting:
        raise NobodyWaiting(f"nobody is waiting at counter {day.counter}")
    nxt = waiting[0]
    closed = None
    tickets = []
    for t in day.tickets:
        if t.status is TicketStatus.CALLED and t.window == window:
            t = closed = msgspec.structs.replace(t, status=TicketStatus.SERVED, done_at=now)
        elif t.number == nxt.number:
            t = nxt = msgspec.structs.replace(t, status=TicketStatus.CALLED, called_at=now,
                                              called_by=by, window=window)
        tickets.append(t)
    return msgspec.structs.replace(day, tickets=tickets), nxt, closed


def close(day: CounterDay, number: int, outcome: TicketStatus, now: float
          ) -> tuple[CounterDay, Ticket]:
    """A called number done (served) or passed over because nobody came (no_show)."""
    if outcome not in (TicketStatus.SERVED, TicketStatus.NO_SHOW):
        raise QueueRefused(f"a called number ends served or no_show, not {outcome.value}")
    return _change_called(day, number, lambda t: msgspec.structs.replace(
        t, status=outcome, done_at=now))


def recall(day: CounterDay, number: int) -> tuple[CounterDay, Ticket]:
    """Announce a called number again (the person has not come to the window yet)."""
    return _change_called(day, number, lambda t: msgspec.structs.replace(
        t, recalls=t.recalls + 1))


def _change_called(day: CounterDay, number: int, change) -> tuple[CounterDay, Ticket]:
    t = day.ticket(number)
    if t is None:
        raise NotCalled(f"counter {day.counter} gave out no number {number} today")
    if t.status is not TicketStatus.CALLED:
        raise NotCalled(f"number {t.label} is {t.status.value}, not called")
    changed = change(t)
    tickets = [changed if x.number == number else x for x in day.tickets]
    return msgspec.structs.replace(day, tickets=tickets), changed


def forget(day: CounterDay, citizen: str, marker: str) -> tuple[CounterDay, int]:
    """The day with the citizen's numbers no longer naming them (their erasure), and how many.

    Every ticket stays, with its number, times, window and outcome: the day's counts, waits
    and no-shows still add up, later numbers keep their places, and a number still waiting
    is called in its turn (the paper in the person's hand still works; nobody is named on
    the board). Only who took it goes."""
    hits = sum(t.citizen == citizen for t in day.tickets)
    if not hits:
        return day, 0
    tickets = [msgspec.structs.replace(t, citizen=marker) if t.citizen == citizen else t
               for t in day.tickets]
    return msgspec.structs.replace(day, tickets=tickets), hits


def average_wait(days: list[CounterDay]) -> float | None:
    """Mean time from taking a number to its call, over the most recent calls."""
    calls = sorted((t for d in days for t in d.tickets if t.called_at is not None),
                   key=lambda t: t.called_at or 0.0)[-RECENT:]
    return statistics.fmean(t.wait or 0.0 for t in calls) if calls else None


def pace(day: CounterDay) -> float | None:
    """Seconds between calls lately (all windows together), None before two calls."""
    times = sorted(t.called_at for t in day.tickets if t.called_at is not None)[-INTERVALS - 1:]
    if len(times) < 2:
        return None
    return (times[-1] - times[0]) / (len(times) - 1)


def estimate(day: CounterDay, ticket: Ticket, recent_wait: float | None) -> float | None:
    """How long a waiting number still waits: the people before it at the recent pace; before
    the counter has a pace, the recent average wait less the time already waited."""
    if ticket.status is not TicketStatus.WAITING:
        return 0.0 if ticket.status is TicketStatus.CALLED else None
    ahead = sum(1 for t in day.waiting() if t.number < ticket.number)
    step = pace(day)
    if step is not None:
        return step * (ahead + 1)
    return recent_wait


def ahead_of(day: CounterDay, ticket: Ticket) -> int:
    return sum(1 for t in day.waiting() if t.number < ticket.number)
