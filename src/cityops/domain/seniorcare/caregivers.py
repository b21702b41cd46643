"""Caregiver booking: caregivers with skills and weekly schedules, and visits booked into them.

A caregiver's bookings of one day are one value, `Day`, saved with one version-checked write:
a booking is checked against the day as read (the schedule, the skills, every booking already
there) and the save fails if anyone booked that day meanwhile, so two bookings of one slot
cannot both land; the loser is decided again on the fresh day and refused.

Times are minutes after local midnight in the city's time zone; a visit lies within one shift
of the caregiver's weekly schedule (ISO weekday, 1 Monday to 7 Sunday). Visits are whole
quarter hours, at least half an hour (less is not worth the trip) and at most a shift's
eight hours.
"""

from __future__ import annotations

import datetime as dt
import enum
import re

import msgspec

from cityops.domain.seniorcare.errors import CareInvalid, CareNotFound, CareRefused

# What home-care services in Shanghai's long-term care insurance catalogue are grouped into:
# daily living, nursing and rehabilitation, plus the companionship and dementia care
# community services add.
SKILLS = ("personal_care", "bathing", "meal_assist", "housekeeping", "nursing",
          "rehabilitation", "dementia_care", "companionship")
STEP_MIN = 15
MIN_VISIT = 30
MAX_VISIT = 8 * 60
BOOK_AHEAD_DAYS = 60
MAX_SHIFTS = 21
DAY_KEPT = 200  # bookings a day's record keeps, cancelled ones dropped first
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")


def minutes(text: str, where: str) -> int:
    """'08:30' as 510; '24:00' as 1440 (a shift's end at midnight)."""
    m = _HHMM.match(text)
    if m is None:
        raise CareInvalid(f"{where}: a time as HH:MM, not {text!r}")
    if text == "24:00":
        return 1440
    return int(m.group(1)) * 60 + int(m.group(2))


def hhmm(value: int) -> str:
    return f"{value // 60:02d}:{value % 60:02d}"


class Shift(msgspec.Struct, frozen=True):
    weekday: int  # ISO: 1 Monday .. 7 Sunday
    start: int  # minutes after midnight
    end: int


class Caregiver(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    name: str
    area: str  # the area (town or community) the caregiver serves
    skills: list[str]
    schedule: list[Shift]
    phone: str = ""
    active: bool = True


class BookingStatus(enum.StrEnum):
    BOOKED = "booked"
    CANCELLED = "cancelled"


class Booking(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    caregiver: str
    citizen: str
    day: str  # ISO date
    start: int
    end: int
    skills: list[str]
    area: str = ""  # the caregiver's, for scoped views
    citizen_area: str = ""  # where the citizen lives (the registry's village), likewise
    address: str = ""
    note: str = ""
    status: BookingStatus = BookingStatus.BOOKED
    created: float = 0.0
    by: str = ""  # the key that booked
    cancelled_at: float | None = None
    cancel_reason: str = ""


class Day(msgspec.Struct, frozen=True, kw_only=True):
    caregiver: str
    day: str
    bookings: list[Booking] = []

    def active(self) -> list[Booking]:
        return [b for b in self.bookings if b.status is BookingStatus.BOOKED]


def check_caregiver(c: Caregiver) -> None:
    unknown = [s for s in c.skills if s not in SKILLS]
    if unknown:
        raise CareInvalid(f"skills: {unknown[0]!r} is not one of {', '.join(SKILLS)}")
    if not c.skills:
        raise CareInvalid("skills: at least one")
    if len(c.schedule) > MAX_SHIFTS:
        raise CareInvalid(f"schedule: at most {MAX_SHIFTS} shifts a week")
    for n, s in enumerate(c.schedule):
        if not 1 <= s.weekday <= 7:
            raise CareInvalid(f"schedule[{n}].weekday: 1 (Monday) to 7 (Sunday)")
        if not 0 <= s.start < s.end <= 1440:
            raise CareInvalid(f"schedule[{n}]: the start comes before the end, within a day")
    for a in c.schedule:
        for b in c.schedule:
            if a is not b and a.weekday == b.weekday and a.start < b.end and b.start < a.end:
                raise CareInvalid(f"schedule: two shifts overlap on weekday {a.weekday}")


def free_slots(c: Caregiver, day: Day, date: dt.date) -> list[tuple[int, int]]:
    """The caregiver's open time that day: the shifts less the bookings."""
    out: list[tuple[int, int]] = []
    taken = sorted((b.start, b.end) for b in day.active())
    for s in sorted((s for s in c.schedule if s.weekday == date.isoweekday()),
                    key=lambda s: s.start):
        at = s.start
        for b0, b1 in taken:
            if b1 <= at or b0 >= s.end:
                continue
            if b0 > at:
                out.append((at, b0))
            at = max(at, b1)
        if at < s.end:
            out.append((at, s.end))
    return out


def book(c: Caregiver, day: Day, b: Booking, date: dt.date, today: dt.date,
         now_min: int) -> Day:
    """The day with `b` booked, or the reason it cannot be. `today` and `now_min` are the
    city's local date and minute now: a visit starts in the future."""
    if not c.active:
        raise CareRefused(f"caregiver {c.id} takes no bookings now", "care_caregiver_inactive")
    if b.start % STEP_MIN or b.end % STEP_MIN:
        raise CareInvalid(f"start, end: whole quarter hours ({hhmm(b.start)}-{hhmm(b.end)})")
    length = b.end - b.start
    if not MIN_VISIT <= length <= MAX_VISIT:
        raise CareInvalid(f"a visit lasts {MIN_VISIT} minutes to {MAX_VISIT // 60} hours, "
                          f"not {length} minutes")
    if date < today or (date == today and b.start <= now_min):
        raise CareInvalid("the visit would start in the past")
    if (date - today).days > BOOK_AHEAD_DAYS:
        raise CareInvalid(f"bookings open {BOOK_AHEAD_DAYS} days ahead")
    unknown = [s for s in b.skills if s not in SKILLS]
    if unknown:
        raise CareInvalid(f"skills: {unknown[0]!r} is not one of {', '.join(SKILLS)}")
    lacking = [s for s in b.skills if s not in c.skills]
    if lacking:
        raise CareRefused(f"caregiver {c.id} does not offer {', '.join(lacking)} (offers "
                          f"{', '.join(c.skills)})", "care_skill_mismatch")
    if not any(s.weekday == date.isoweekday() and s.start <= b.start and b.end <= s.end
               for s in c.schedule):
        shifts = ", ".join(f"{hhmm(s.start)}-{hhmm(s.end)}" for s in c.schedule
                           if s.weekday == date.isoweekday()) or "none"
        raise CareRefused(f"caregiver {c.id} does not work {hhmm(b.start)}-{hhmm(b.end)} on "
                          f"{date.isoformat()} (shifts that day: {shifts})",
                          "care_outside_schedule")
    clash = next((x for x in day.active() if x.start < b.end and b.start < x.end), None)
    if clash is not None:
        raise CareRefused(f"caregiver {c.id} is booked {hhmm(clash.start)}-{hhmm(clash.end)} "
                          f"on {date.isoformat()}: the visit overlaps it",
                          "care_double_booked")
    if any(x.id == b.id for x in day.bookings):
        raise CareRefused(f"booking {b.id} exists", "care_duplicate")
    return msgspec.structs.replace(day, bookings=_kept([*day.bookings, b]))


def cancel(day: Day, booking_id: str, now: float, reason: str = "") -> Day:
    b = next((x for x in day.bookings if x.id == booking_id), None)
    if b is None:
        raise CareNotFound(f"no booking {booking_id!r}")
    if b.status is BookingStatus.CANCELLED:
        raise CareRefused(f"booking {booking_id} is cancelled already", "care_closed")
    gone = msgspec.structs.replace(b, status=BookingStatus.CANCELLED, cancelled_at=now,
                                   cancel_reason=reason)
    return msgspec.structs.replace(day, bookings=[gone if x.id == booking_id else x
                                                  for x in day.bookings])


def forget(day: Day, citizen: str, marker: str, now: float, today: dt.date, now_min: int,
           keys: frozenset[str] = frozenset()) -> tuple[Day, int, int]:
    """The day once the citizen's data is erased: their visits still to come cancelled (the
    caregiver's time goes back to others: nobody is left to visit at an address no longer
    held), and every visit of theirs no longer naming them. `keys` are the person's own key
    ids, cleared where they booked. Returns the day, visits cancelled, visits anonymised.

    Past visits stay, booked as they were, with their times, skills and the village: they
    are the caregiver's worked hours, which care-insurance claims and pay are settled on.
    The address and notes go."""
    date = dt.date.fromisoformat(day.day)
    cancelled = 0
    reason = "the citizen's data was erased"
    for b in day.bookings:
        if b.citizen != citizen or b.status is not BookingStatus.BOOKED:
            continue
        if date > today or (date == today and b.start > now_min):
            day = cancel(day, b.id, now, reason)
            cancelled += 1
    mine = [b for b in day.bookings if b.citizen == citizen]
    if not mine:
        return day, cancelled, 0

    def anonymised(b: Booking) -> Booking:
        return msgspec.structs.replace(
            b, citizen=marker, address="", note=marker if b.note else "",
            by="" if b.by in keys else b.by,
            # A reason given before is free text (maybe the person's own words).
            cancel_reason=b.cancel_reason if b.cancel_reason in ("", reason) else marker)

    bookings = [anonymised(b) if b.citizen == citizen else b for b in day.bookings]
    return msgspec.structs.replace(day, bookings=bookings), cancelled, len(mine)


def _kept(bookings: list[Booking]) -> list[Booking]:
    """Active bookings always; cancelled ones while room is left (a day cannot grow without
    end by booking and cancelling)."""
    if len(bookings) <= DAY_KEPT:
        return bookings
    active = [b for b in bookings if b.status is BookingStatus.BOOKED]
    cancelled = sorted((b for b in bookings if b.status is not BookingStatus.BOOKED),
                       key=lambda b: b.cancelled_at or 0.0, reverse=True)
    return active + cancelled[:max(0, DAY_KEPT - len(active))]
