"""The service hall's queues on the records store: one record of kind "queue_day" per counter
and day (id `<counter>:<YYYY-MM-DD>`, owner the counter's department), changed only through
`update_record`, so every move is one version-checked write of the counter's day (see
`hall`). Kept in the node's store like the rest of the serve side, so memory, SQLite and
PostgreSQL all hold it, and any node of a cluster serves the same queue.

A counter is a department of the city pack; its letter on the board follows the pack's order of
departments (A for the first). When a clerk calls a number, the citizen is also told by SMS,
if a phone is registered: a person who stepped out of the hall still hears their turn."""

from __future__ import annotations

import datetime as dt
import string
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from cityops.domain.tell import Tell
from cityops.serve.notices import tell_all
from cityops.serve.queue import hall
from cityops.serve.queue.hall import CounterDay, Ticket, TicketStatus
from cityops.store.base import Record, Store
from cityops.store.update import RecordDecision, update_record

KIND = "queue_day"
_HALLS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_decode = msgspec.json.Decoder(CounterDay).decode


class UnknownCounter(LookupError):
    code = "queue_unknown_counter"


class TicketView(msgspec.Struct, kw_only=True):
    counter: str
    counter_name: str
    day: str
    number: int
    label: str
    status: TicketStatus
    channel: str
    taken_at: float
    called_at: float | None
    window: str
    ahead: int  # waiting numbers before this one
    estimated_wait_s: float | None  # from the recent pace of calls; None before any call


class CounterView(msgspec.Struct, kw_only=True):
    counter: str
    name: str
    prefix: str
    day: str
    waiting: int
    serving: list[str]  # the numbers called now, with their windows: "A012 → 3"
    average_wait_s: float | None  # taking a number to its call, over the recent calls
    estimated_wait_s: float | None  # for a number taken now


class ClerkTicket(msgspec.Struct, kw_only=True):
    number: int
    label: str
    status: TicketStatus
    channel: str
    taken_at: float
    called_at: float | None
    window: str
    recalls: int
    done_at: float | None
    wait_s: float | None


class CounterDetail(CounterView, kw_only=True):
    tickets: list[ClerkTicket]  # the day's numbers, oldest first (citizens are not named)


class QueueHall:
    def __init__(self, store: Store, counters: Sequence[tuple[str, str]], *,
                 local_date: Callable[[float], dt.date], now: Callable[[], float] = time.time,
                 citizens: Any = None, notifier: Any = None) -> None:
        self.store = store
        letters = string.ascii_uppercase
        # Past 26 departments the letters double up (AA, AB ...): boards still tell them apart.
        self.counters = {code: (name, letters[i] if i < 26 else
                                letters[i // 26 - 1] + letters[i % 26])
                         for i, (code, name) in enumerate(counters)}
        self.local_date = local_date
        self.now = now
        self.citizens = citizens
        self.notifier = notifier

    def _today(self) -> str:
        return self.local_date(self.now()).isoformat()

    def _check(self, counter: str) -> tuple[str, str]:
        held = self.counters.get(counter)
        if held is None:
            raise UnknownCounter(f"no counter {counter!r} in the service hall "
                                 "(GET /api/v1/queue/counters lists them)")
        return held

    async def day(self, counter: str, day: str | None = None) -> CounterDay:
        _, prefix = self._check(counter)
        day = day or self._today()
        rec = await self.store.get_record(KIND, f"{counter}:{day}")
        return _decode(rec.doc) if rec else CounterDay(counter=counter, day=day, prefix=prefix)

    async def _change(self, counter: str, move: Callable[[CounterDay], tuple[CounterDay, Any]]
                      ) -> Any:
        _, prefix = self._check(counter)
        day = self._today()
        rid = f"{counter}:{day}"

        def step(rec: Record | None) -> RecordDecision[Any]:
            held = _decode(rec.doc) if rec else CounterDay(counter=counter, day=day,
                                                          prefix=prefix)
            changed, result = move(held)
            now = self.now()
            return Record(kind=KIND, id=rid, doc=msgspec.json.encode(changed), owner=counter,
                          status="open", created=rec.created if rec else now,
                          updated=now), result

        return await update_record(self.store, KIND, rid, step, tries=12)

    # -- citizens ------------------------------------------------------------------------------

    async def take(self, citizen: str, counter: str, channel: str) -> TicketView:
        now = self.now()
        ticket = await self._change(counter, lambda d: hall.take(d, citizen, channel, now))
        return await self.ticket_view(counter, ticket.number)

    async def mine(self, citizen: str) -> list[TicketView]:
        out = []
        for counter in self.counters:
            day = await self.day(counter)
            for t in day.tickets:
                if t.citizen == citizen:
                    out.append(self._view(day, t, await self._recent_wait(counter, day)))
        return sorted(out, key=lambda v: v.taken_at, reverse=True)

    async def ticket_view(self, counter: str, number: int) -> TicketView:
        day = await self.day(counter)
        t = day.ticket(number)
        assert t is not None
        return self._view(day, t, await self._recent_wait(counter, day))

    def _view(self, day: CounterDay, t: Ticket, recent: float | None) -> TicketView:
        return TicketView(counter=day.counter, counter_name=self.counters[day.counter][0],
                          day=day.day, number=t.number, label=t.label, status=t.status,
                          channel=t.channel, taken_at=t.taken_at, called_at=t.called_at,
                          window=t.window, ahead=hall.ahead_of(day, t),
                          estimated_wait_s=hall.estimate(day, t, recent))

    async def _recent_wait(self, counter: str, day: CounterDay) -> float | None:
        """Today's recent calls; on a morning with none yet, yesterday's."""
        wait = hall.average_wait([day])
        if wait is None:
            before = dt.date.fromisoformat(day.day) - dt.timedelta(days=1)
            rec = await self.store.get_record(KIND, f"{counter}:{before.isoformat()}")
            if rec is not None:
                wait = hall.average_wait([_decode(rec.doc)])
        return wait

    # -- the board and the clerks --------------------------------------------------------------

    async def board(self) -> list[CounterView]:
        return [await self.counter_view(c) for c in self.counters]

    async def counter_view(self, counter: str) -> CounterView:
        day = await self.day(counter)
        return self._counter(day, await self._recent_wait(counter, day))

    def _counter(self, day: CounterDay, recent: float | None) -> CounterView:
        name, prefix = self.counters[day.counter]
        waiting = day.waiting()
        step = hall.pace(day)
        estimate = (step * (len(waiting) + 1) if step is not None else recent)
        return CounterView(counter=day.counter, name=name, prefix=prefix, day=day.day,
                           waiting=len(waiting),
                           serving=[f"{t.label} → {t.window}" if t.window else t.label
                                    for t in day.called()],
                           average_wait_s=recent, estimated_wait_s=estimate)

    async def detail(self, counter: str) -> CounterDetail:
        day = await self.day(counter)
        view = self._counter(day, await self._recent_wait(counter, day))
        tickets = [ClerkTicket(number=t.number, label=t.label, status=t.status,
                               channel=t.channel, taken_at=t.taken_at, called_at=t.called_at,
                               window=t.window, recalls=t.recalls, done_at=t.done_at,
                               wait_s=t.wait) for t in day.tickets]
        return CounterDetail(**msgspec.structs.asdict(view), tickets=tickets)

    async def call_next(self, counter: str, window: str, by: str) -> ClerkTicket:
        now = self.now()
        called, _closed = await self._change(
            counter, lambda d: _pair(hall.call_next(d, window, by, now)))
        await self._tell_called(counter, called, now)
        return _clerk(called)

    async def close(self, counter: str, number: int, outcome: TicketStatus) -> ClerkTicket:
        now = self.now()
        return _clerk(await self._change(counter, lambda d: hall.close(d, number, outcome,
                                                                       now)))

    async def recall(self, counter: str, number: int) -> ClerkTicket:
        now = self.now()
        ticket = await self._change(counter, lambda d: hall.recall(d, number))
        await self._tell_called(counter, ticket, now)
        return _clerk(ticket)

    async def _tell_called(self, counter: str, t: Ticket, now: float) -> None:
        if self.citizens is None or self.notifier is None:
            return
        citizen = await self.citizens.get(t.citizen)
        if citizen is None or not citizen.phone:
            return
        name = self.counters[counter][0]
        where = f" window {t.window} 号窗口" if t.window else ""
        # The counter is a department's: its name in the reader's language comes from it.
        args: dict[str, str | int | float] = {"label": t.label, "department": counter}
        if t.window:
            args["window"] = t.window
        else:
            args["message"] = "queue.called.counter"
        await tell_all(self.notifier, [Tell(
            "queue.called", citizen.phone, f"{t.label} 请到{name}{where}",
            f"Number {t.label} is called at {name}{where}", sms=True,
            ref=f"{counter}:{t.label}:{t.called_at}:{t.recalls}", args=args)], now,
            counter=counter)

    # -- evaluation ----------------------------------------------------------------------------

    async def waits(self, start: float, end: float, counters: Sequence[str] | None = None
                    ) -> list[tuple[float, bool]]:
        """(wait, no_show) of every number called within [start, end), of these counters."""
        first = self.local_date(start) - dt.timedelta(days=1)
        last = self.local_date(end)
        out = []
        for counter in counters if counters is not None else list(self.counters):
            before = None
            while True:
                recs = await self.store.find_records(KIND, owner=counter, limit=200,
                                                     before=before)
                for rec in recs:
                    day = dt.date.fromisoformat(rec.id.rsplit(":", 1)[1])
                    if not first <= day <= last:
                        continue
                    for t in _decode(rec.doc).tickets:
                        if t.called_at is not None and start <= t.called_at < end:
                            out.append((t.called_at - t.taken_at,
                                        t.status is TicketStatus.NO_SHOW))
                if len(recs) < 200 or (recs and dt.date.fromisoformat(
                        recs[-1].id.rsplit(":", 1)[1]) < first):
                    break
                before = (recs[-1].created, recs[-1].id)
        return out


# -- a citizen's data on request (serve/citizen_data.py) ----------------------------------------

SCAN_PAGE = 200


async def days_of(store: Store, citizen: str) -> list[CounterDay]:
    """Every counter's day holding a number the citizen took, oldest first. The days are
    keyed by counter, not by person, so this reads them all: an export or an erasure is
    rare, and a second index by citizen would be one more copy of who queued where."""
    out: list[CounterDay] = []
    before: tuple[float, str] | None = None
    while True:
        recs = await store.find_records(KIND, limit=SCAN_PAGE, before=before)
        for rec in recs:
            day = _decode(rec.doc)
            if any(t.citizen == citizen for t in day.tickets):
                out.append(day)
        if len(recs) < SCAN_PAGE:
            return sorted(out, key=lambda d: (d.day, d.counter))
        before = (recs[-1].created, recs[-1].id)


async def forget(store: Store, day: CounterDay, citizen: str, marker: str,
                 now: float) -> int:
    """The citizen's numbers in one counter's day no longer naming them (`hall.forget`),
    saved version-checked like every other move of the day; how many there were."""
    rid = f"{day.counter}:{day.day}"

    def step(rec: Record | None) -> RecordDecision[int]:
        if rec is None:
            return None, 0
        changed, hits = hall.forget(_decode(rec.doc), citizen, marker)
        if not hits:
            return None, 0
        return msgspec.structs.replace(rec, doc=msgspec.json.encode(changed),
                                       updated=now), hits

    return await update_record(store, KIND, rid, step, tries=12)


def _pair(result: tuple[CounterDay, Ticket, Ticket | None]
          ) -> tuple[CounterDay, tuple[Ticket, Ticket | None]]:
    day, called, closed = result
    return day, (called, closed)


def _clerk(t: Ticket) -> ClerkTicket:
    return ClerkTicket(number=t.number, label=t.label, status=t.status, channel=t.channel,
                       taken_at=t.taken_at, called_at=t.called_at, window=t.window,
                       recalls=t.recalls, done_at=t.done_at, wait_s=t.wait)


def hall_of(node: Any) -> QueueHall:
    """The node's service hall, made on first use (kept with the node)."""
    held = _HALLS.get(node)
    if held is None:
        serve = node.serve
        held = QueueHall(node.store, [(d.code, d.name) for d in node.pack.departments],
                         local_date=serve.clock.local_date, now=node.clock,
                         citizens=serve.citizens, notifier=serve.notifier)
        _HALLS[node] = held
    return held
