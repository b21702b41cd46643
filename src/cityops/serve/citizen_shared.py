"""A citizen's part of records kept for many people at once, for `citizen_data`: the numbers
they took in a counter's day of the service hall, their entries on nursing homes' waiting
lists and the beds they hold, the caregiver visits booked for them, and their video calls.

Each of those records is one version-checked document shared with other people (a counter's
day, a home, a caregiver's day), so nothing of it is deleted: the citizen's part is taken out
by the feature's own moves (`hall.forget`, `admission.forget`, `caregivers.forget`), which
keep the record whole for everyone else, and the erasure goes through the same save path as
every other move, so it cannot lose a move that raced it.

| section | found by | on erasure |
|---|---|---|
| `queue_tickets` | every `queue_day` (the days are by counter) | kept for the day's counts and waits, no longer naming them |
| `care_waiting_list` | the homes of their `care_mine` | open entries withdrawn (the offer's bed goes to the next in line), all kept anonymised for the list's history |
| `care_beds` | likewise | bed freed (the resident leaves the home's register) and offered to the next in line |
| `caregiver_visits` | the days of their `care_mine` | visits to come cancelled; past visits kept as the caregiver's worked hours, anonymised |
| `window_calls` | their `window_calls` | the audit trail's entries kept (it is append-only, and they hold key ids and an application id, no name or number) |

Homes and caregiver days are found through the citizen's `care_mine` index, which is written
before the entry it points at (so none of theirs is missing) and keeps their latest 200 homes
and 200 days: reading every home's whole list for every export would cost more than the rare
201st could find.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import msgspec

from cityops.domain.seniorcare.admission import Told, position
from cityops.serve.queue import service as queue
from cityops.serve.seniorcare import bookings, homes, mine
from cityops.serve.window import calls as window_calls
from cityops.store.base import Store

SECTIONS = ("queue_tickets", "care_waiting_list", "care_beds", "caregiver_visits",
            "window_calls")
# Pointer records: what finds the citizen's part of the shared records, deleted once that
# part is erased (not exported: they hold nothing the sections above do not show).
POINTERS = (("care_index", mine.KIND), ("window_call_index", window_calls.KIND))
CALL_ENTRIES = 50  # audit entries one call has at most: start, accept, forms, end

_plain = msgspec.to_builtins


def _view(kind: str, rid: str, status: str, created: float, updated: float,
          doc: dict[str, Any]) -> dict[str, Any]:
    # The shape of every record of the export (citizen_data._record_view).
    return {"kind": kind, "id": rid, "status": status, "created": created, "updated": updated,
            "doc": doc}


class Shared:
    def __init__(self, store: Store, clock: Callable[[], float],
                 zone: dt.tzinfo | None) -> None:
        self.store = store
        self.clock = clock
        self.zone = zone

    # -- export ---------------------------------------------------------------------------

    async def find(self, citizen: str) -> dict[str, list[dict[str, Any]]]:
        """The citizen's part of each shared record, as records of the export."""
        out: dict[str, list[dict[str, Any]]] = {s: [] for s in SECTIONS}
        for day in await queue.days_of(self.store, citizen):
            for t in day.tickets:
                if t.citizen == citizen:
                    doc = {"counter": day.counter, "day": day.day,
                           **_plain(t)}
                    doc.pop("citizen")
                    out["queue_tickets"].append(_view(
                        queue.KIND, f"{day.counter}:{day.day}:{t.label}", t.status.value,
                        t.taken_at, t.done_at or t.called_at or t.taken_at, doc))
        pointers = await mine.read(self.store, citizen)
        for home_id in pointers.homes:
            home = await homes.stored(self.store, home_id)
            if home is None:
                continue
            entries, residents = homes.entries_of(home, citizen)
            for e in entries:
                doc = {"home": home.id, "home_name": home.name, **_plain(e),
                       "position": position(home, e.id)}
                doc.pop("citizen")
                out["care_waiting_list"].append(_view(
                    homes.KIND, e.id, e.status.value, e.since,
                    e.closed_at or e.offered_at or e.since, doc))
            for r in residents:
                out["care_beds"].append(_view(
                    homes.KIND, f"{home.id}:bed:{r.bed}", "resident", r.since, r.since,
                    {"home": home.id, "home_name": home.name, "bed": r.bed, "since": r.since,
                     "entry": r.entry}))
        for did in pointers.days:
            visits = await bookings.day_of(self.store, did)
            for b in visits.bookings if visits is not None else ():
                if b.citizen == citizen:
                    doc = _plain(b)
                    doc.pop("citizen")
                    out["caregiver_visits"].append(_view(
                        bookings.DAY, b.id, b.status.value, b.created,
                        b.cancelled_at or b.created, doc))
        for call in await window_calls.read(self.store, citizen):
            # The trail reads newest first; the call's story, oldest first.
            trail = (await self.store.list_audit(subject=f"window_call:{call}",
                                                 limit=CALL_ENTRIES))[::-1]
            if not trail:
                continue
            out["window_calls"].append(_view(
                "window_call", call, trail[-1].action.removeprefix("window."),
                trail[0].at, trail[-1].at,
                {"application": trail[0].reason.removeprefix("application "),
                 "events": [{"action": a.action.removeprefix("window."), "at": a.at,
                             "what": a.after} for a in trail]}))
        return out

    # -- erasure --------------------------------------------------------------------------

    async def erase(self, citizen: str, marker: str, keys: frozenset[str]) -> Erased:
        """The citizen's part taken out of every shared record (see the module's table)."""
        now = self.clock()
        done = Erased()
        for day in await queue.days_of(self.store, citizen):
            done.count("anonymised", "queue_tickets",
                       await queue.forget(self.store, day, citizen, marker, now))
        pointers = await mine.read(self.store, citizen)
        for home_id in pointers.homes:
            home, owed, counts = await homes.forget(self.store, home_id, citizen, marker, now)
            if home is None:
                continue
            done.count("anonymised", "care_waiting_list", counts["entries"])
            done.count("moved", "care_entries_withdrawn", counts["entries_withdrawn"])
            done.count("moved", "care_offers_withdrawn", counts["offers_withdrawn"])
            done.count("moved", "care_beds_freed", counts["beds_freed"])
            if owed:
                done.told.append((home_id, owed))
        for did in pointers.days:
            _, cancelled, visits = await bookings.forget(self.store, did, citizen, marker, now,
                                                         self.zone, keys)
            done.count("anonymised", "caregiver_visits", visits)
            done.count("moved", "caregiver_visits_cancelled", cancelled)
        for call in await window_calls.read(self.store, citizen):
            if await self.store.list_audit(subject=f"window_call:{call}", limit=1):
                done.count("kept", "window_calls", 1)
        return done


class Erased:
    """What an erasure did to the shared records: per section the records kept anonymised
    ("anonymised") or kept as they are ("kept": the audit trail's), what moved on for other
    people ("moved": offers, beds, visits), and the notices those moves owe them (new bed
    offers, by home) for the caller to send."""

    def __init__(self) -> None:
        self.buckets: dict[str, dict[str, int]] = {"anonymised": {}, "kept": {}, "moved": {}}
        self.told: list[tuple[str, list[Told]]] = []

    def count(self, bucket: str, what: str, n: int) -> None:
        if n:
            held = self.buckets[bucket]
            held[what] = held.get(what, 0) + n
