"""Caregivers and their bookings on the records store: "caregiver" (skills, weekly schedule,
the area served) and "care_day" (one caregiver's bookings of one day, id "<caregiver>@<date>").

A booking is decided on the day as read and saved against that version: of two bookings of
one slot sent at once, one saves and the other is decided again on the new day and refused as
double-booked. A booking's id names its day ("<caregiver>@<date>@<token>"), so one read finds
it again.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

import msgspec

from cityops.domain.seniorcare import caregivers as rules
from cityops.domain.seniorcare.admission import Told
from cityops.domain.seniorcare.caregivers import Booking, Caregiver, Day
from cityops.domain.seniorcare.errors import CareInvalid, CareNotFound, CareRefused
from cityops.serve.seniorcare import mine
from cityops.serve.seniorcare.tell import CitizenTeller
from cityops.store.base import DuplicateKey, Record, Store
from cityops.store.update import RecordDecision, UpdateGaveUp, update_record

CAREGIVER = "caregiver"
DAY = "care_day"
MAX_CAREGIVERS = 10_000
MAX_DAYS_LISTED = 31


def day_id(caregiver: str, day: str) -> str:
    return f"{caregiver}@{day}"


def parse_booking_id(booking_id: str) -> tuple[str, str]:
    parts = booking_id.split("@")
    if len(parts) != 3 or not all(parts):
        raise CareNotFound(f"no booking {booking_id!r}")
    return parts[0], parts[1]


def parse_day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise CareInvalid(f"day: a date as YYYY-MM-DD, not {text!r}") from None


class CaregiverService:
    def __init__(self, store: Store, *, now: Callable[[], float], zone: dt.tzinfo,
                 teller: CitizenTeller) -> None:
        self.store = store
        self.now = now
        self.zone = zone
        self.teller = teller
        self.stats = {"bookings": 0, "conflicts": 0, "cancelled": 0}

    # -- caregivers -------------------------------------------------------------------------

    async def register(self, c: Caregiver, *, replace: bool) -> tuple[Caregiver, bool]:
        """Add a caregiver, or (with `replace`) change one; True when new. Bookings already
        made stay: a schedule changed later does not cancel a visit someone counts on."""
        rules.check_caregiver(c)
        now = self.now()
        rec = await self.store.get_record(CAREGIVER, c.id)
        if rec is not None and not replace:
            raise CareRefused(f"caregiver {c.id} exists", "care_duplicate")
        new = Record(kind=CAREGIVER, id=c.id, doc=msgspec.json.encode(c), owner=c.area,
                     status="active" if c.active else "inactive",
                     created=rec.created if rec else now, updated=now)
        try:
            await self.store.put_record(new, expect_version=rec.version if rec else None)
        except DuplicateKey:
            raise CareRefused(f"caregiver {c.id} exists", "care_duplicate") from None
        return c, rec is None

    async def get(self, caregiver_id: str) -> Caregiver:
        rec = await self.store.get_record(CAREGIVER, caregiver_id)
        if rec is None:
            raise CareNotFound(f"no caregiver {caregiver_id!r}", "care_unknown_caregiver")
        return msgspec.json.decode(rec.doc, type=Caregiver)

    async def list(self) -> list[Caregiver]:
        recs = await self.store.find_records(CAREGIVER, limit=MAX_CAREGIVERS)
        return sorted((msgspec.json.decode(r.doc, type=Caregiver) for r in recs),
                      key=lambda c: c.id)

    async def day(self, caregiver_id: str, day: str) -> Day:
        rec = await self.store.get_record(DAY, day_id(caregiver_id, day))
        return Day(caregiver=caregiver_id, day=day) if rec is None else \
            msgspec.json.decode(rec.doc, type=Day)

    async def days(self, caregiver_id: str, start: dt.date, count: int) -> list[Day]:
        count = max(1, min(count, MAX_DAYS_LISTED))
        return [await self.day(caregiver_id, (start + dt.timedelta(days=n)).isoformat())
                for n in range(count)]

    # -- bookings ---------------------------------------------------------------------------

    async def book(self, caregiver_id: str, citizen_id: str, day: str, start: int, end: int,
                   skills: list[str], *, by: str, address: str = "", note: str = ""
                   ) -> Booking:
        c = await self.get(caregiver_id)
        date = parse_day(day)
        citizen = await self.teller.citizen(citizen_id)
        if citizen is None:
            raise CareRefused(f"citizen {citizen_id} is not in the citizen registry; register "
                              "first", "care_unregistered")
        did = day_id(caregiver_id, date.isoformat())
        booking = Booking(id=f"{did}@{uuid.uuid4().hex[:12]}", caregiver=caregiver_id,
                          citizen=citizen_id, day=date.isoformat(), start=start, end=end,
                          skills=sorted(set(skills)), area=c.area, citizen_area=citizen.area,
                          address=address, note=note, created=self.now(), by=by)
        await mine.point(self.store, citizen_id, self.now(), day=did)

        def step(rec: Record | None) -> RecordDecision[Booking]:
            now = self.now()
            local = dt.datetime.fromtimestamp(now, self.zone)
            held = Day(caregiver=caregiver_id, day=date.isoformat()) if rec is None else \
                msgspec.json.decode(rec.doc, type=Day)
            try:
                new = rules.book(c, held, booking, date, local.date(),
                                 local.hour * 60 + local.minute)
            except CareRefused as refused:
                if refused.code == "care_double_booked":
                    self.stats["conflicts"] += 1
                raise
            return _day_record(new, c.area, rec, now), booking

        await self._update_day(did, step)
        self.stats["bookings"] += 1
        await self.teller.tell([Told("care.booked", citizen_id,
                                     f"{c.name} visits on {booking.day} "
                                     f"{rules.hhmm(start)}-{rules.hhmm(end)}",
                                     f"{booking.id}:booked",
                                     {"caregiver": c.name, "day": str(booking.day),
                                      "start": rules.hhmm(start), "end": rules.hhmm(end)})],
                               self.now(), booking=booking.id)
        return booking

    async def find(self, booking_id: str) -> Booking | None:
        caregiver, day = parse_booking_id(booking_id)
        d = await self.day(caregiver, day)
        return next((b for b in d.bookings if b.id == booking_id), None)

    async def cancel(self, booking_id: str, reason: str = "") -> Booking:
        caregiver, day = parse_booking_id(booking_id)
        c = await self.get(caregiver)

        def step(rec: Record | None) -> RecordDecision[Booking]:
            if rec is None:
                raise CareNotFound(f"no booking {booking_id!r}")
            now = self.now()
            new = rules.cancel(msgspec.json.decode(rec.doc, type=Day), booking_id, now, reason)
            gone = next(b for b in new.bookings if b.id == booking_id)
            return _day_record(new, c.area, rec, now), gone

        gone = await self._update_day(day_id(caregiver, day), step)
        self.stats["cancelled"] += 1
        await self.teller.tell([Told("care.cancelled", gone.citizen,
                                     f"the visit of {c.name} on {gone.day} "
                                     f"{rules.hhmm(gone.start)} is cancelled"
                                     + (f": {reason}" if reason else ""),
                                     f"{gone.id}:cancelled",
                                     {"caregiver": c.name, "day": str(gone.day),
                                      "start": rules.hhmm(gone.start)})],
                               self.now(), booking=gone.id)
        return gone

    async def of_citizen(self, citizen_id: str) -> list[Booking]:
        out: list[Booking] = []
        for did in (await mine.read(self.store, citizen_id)).days:
            caregiver, _, day = did.partition("@")
            out += [b for b in (await self.day(caregiver, day)).bookings
                    if b.citizen == citizen_id]
        return sorted(out, key=lambda b: (b.day, b.start), reverse=True)

    async def _update_day(self, did: str, step: Callable[[Record | None],
                                                         RecordDecision[Booking]]) -> Booking:
        try:
            return await update_record(self.store, DAY, did, step)
        except UpdateGaveUp:
            raise CareRefused(f"the day {did} kept changing; try again",
                              "changed_meanwhile") from None


async def forget(store: Store, did: str, citizen: str, marker: str, now: float,
                 zone: dt.tzinfo | None, keys: frozenset[str]) -> tuple[Day | None, int, int]:
    """A citizen's data erased from one caregiver's day (`caregivers.forget`: visits to come
    cancelled, every visit of theirs anonymised), saved version-checked. `zone` is the
    city's (None: this machine's own), for what is still to come."""
    def step(rec: Record | None) -> RecordDecision[tuple[Day | None, int, int]]:
        if rec is None:
            return None, (None, 0, 0)
        local = dt.datetime.fromtimestamp(now, zone)
        day, cancelled, kept = rules.forget(msgspec.json.decode(rec.doc, type=Day), citizen,
                                            marker, now, local.date(),
                                            local.hour * 60 + local.minute, keys)
        if not kept:
            return None, (day, 0, 0)
        return msgspec.structs.replace(rec, doc=msgspec.json.encode(day), updated=now), \
            (day, cancelled, kept)

    return await update_record(store, DAY, did, step)


async def day_of(store: Store, did: str) -> Day | None:
    rec = await store.get_record(DAY, did)
    return None if rec is None else msgspec.json.decode(rec.doc, type=Day)


def _day_record(day: Day, area: str, rec: Record | None, now: float) -> Record:
    return Record(kind=DAY, id=day_id(day.caregiver, day.day), doc=msgspec.json.encode(day),
                  owner=area, status="open", created=rec.created if rec else now, updated=now)
