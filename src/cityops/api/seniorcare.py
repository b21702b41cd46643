"""Senior care ("Pulaohui"): nursing-home admission, caregiver booking, aging-friendly home
retrofits.

    GET  /api/v1/seniorcare/homes                           homes (the care service points)
    GET  /api/v1/seniorcare/homes/{home}                    beds, residents, offers, waiting list
    PUT  /api/v1/seniorcare/homes/{home}/beds               beds in service
    POST /api/v1/seniorcare/homes/{home}/waiting            join the waiting list
    POST /api/v1/seniorcare/homes/{home}/beds/{bed}/free    a resident leaves: the bed moves on
    POST /api/v1/seniorcare/homes/{home}/entries/{entry}    accept, decline or withdraw
    GET  /api/v1/seniorcare/caregivers                      caregivers
    POST /api/v1/seniorcare/caregivers                      add or change one
    GET  /api/v1/seniorcare/caregivers/{caregiver}          schedule, free time, bookings
    POST /api/v1/seniorcare/bookings                        book a visit
    GET  /api/v1/seniorcare/bookings/{booking}              one booking
    POST /api/v1/seniorcare/bookings/{booking}/cancel       cancel it
    GET  /api/v1/seniorcare/mine                            a citizen's entries and bookings
    POST /api/v1/seniorcare/retrofits/{application}/assessment   the on-site assessment
    GET  /api/v1/seniorcare/retrofits/{application}         its findings, works and subsidy

Who sees what is cityops.domain.seniorcare.access, checked on the record as stored (a home's
community, a caregiver's area) before anything else; outside it, 404 as for no record.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import msgspec

from cityops.api.errors import ApiError
from cityops.api.route import Call, Endpoint, Guard, Reply, Scope, errors_map
from cityops.api.serve_util import Note, Short, actor_of
from cityops.domain.access import Principal, Role
from cityops.domain.onestop.applications import Application, can_see
from cityops.domain.seniorcare import access
from cityops.domain.seniorcare.admission import (
    Entry,
    Hardship,
    Home,
    Resident,
    need_points,
    position,
)
from cityops.domain.seniorcare.caregivers import (
    SKILLS,
    Booking,
    Caregiver,
    Shift,
    free_slots,
    hhmm,
    minutes,
)
from cityops.domain.seniorcare.errors import CareInvalid, CareNotFound, CareRefused
from cityops.domain.seniorcare.retrofit import WORKS, Assessment, Finding
from cityops.packs.care import CarePoint
from cityops.serve.seniorcare import SeniorCare, seniorcare_of
from cityops.serve.seniorcare.bookings import parse_day
from cityops.serve.seniorcare.points import care_points
from cityops.serve.seniorcare.retrofits import ASSESSMENT_ITEM

errors_map({CareRefused: 409, CareInvalid: 400, CareNotFound: 404})

SEE = frozenset({Role.ADMIN, Role.OPERATOR, Role.DEPARTMENT, Role.STATION})
RUN = frozenset({Role.ADMIN, Role.DEPARTMENT, Role.STATION})  # home staff, civil affairs
SEE_OR_CITIZEN = SEE | {Role.CITIZEN}
RUN_OR_CITIZEN = RUN | {Role.CITIZEN}
BODY = 64 << 10

Id = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_.-]{0,63}$",
                                 description="Lower-case letters, digits, _ . -")]
AreaCode = Annotated[str, msgspec.Meta(pattern=r"^\d{6}(\d{3}){0,2}$")]
HHMM = Annotated[str, msgspec.Meta(pattern=r"^\d{2}:\d{2}$", description="HH:MM, local")]
Skill = Annotated[str, msgspec.Meta(max_length=32, description=", ".join(SKILLS))]


def side(call: Call[Any, Any]) -> SeniorCare:
    return seniorcare_of(call.node)


async def citizen_area(call: Call[Any, Any]) -> str | None:
    who = call.principal
    if who.role is not Role.CITIZEN or not who.name:
        return None
    found = await side(call).homes.teller.citizen(who.name)
    return found.area if found is not None else None


def served(call: Call[Any, Any]) -> dict[str, list[str]]:
    return call.node.department_areas


# -- homes ------------------------------------------------------------------------------------


class HomeSummary(msgspec.Struct):
    id: str
    name: str
    area: str
    lat: float
    lon: float
    beds: int
    occupied: int
    offered: int
    free: int
    waiting: int


class WaitingEntry(msgspec.Struct, omit_defaults=True):
    entry: Entry
    position: int | None = None
    points: int | None = None


class HomeView(msgspec.Struct, omit_defaults=True):
    home: HomeSummary
    residents: list[Resident] | None = None  # staff only
    waiting: list[WaitingEntry] | None = None  # staff: the list in priority order
    offers: list[Entry] | None = None  # staff
    mine: list[WaitingEntry] | None = None  # a citizen: their own entries here


def summary(p: CarePoint, h: Home) -> HomeSummary:
    free = len(h.free_beds())
    return HomeSummary(p.id, p.name, p.area, p.lat, p.lon, h.beds, len(h.residents),
                       len(h.offers()), free, len(h.waiting()))


async def _sees_home(call: Call[Any, Any], p: CarePoint) -> bool:
    ids = frozenset(await _home_ids(call))
    return access.sees_home(call.principal, p.id, p.area, served(call),
                            await citizen_area(call), ids)


async def _home_ids(call: Call[Any, Any]) -> list[str]:
    return list(await care_points(call.node))


async def _load_home(call: Call[Any, Any]) -> tuple[CarePoint, Home] | None:
    s = side(call)
    try:
        p = await s.homes.point(call.path["home"])
    except CareNotFound:
        return None
    return p, await s.homes.get(p.id)


async def _guard_home(call: Call[Any, Any], rec: tuple[CarePoint, Home]) -> bool:
    return await _sees_home(call, rec[0])


HOME = Guard("care_home", "home", _load_home, _guard_home)


def view(who: Principal, p: CarePoint, h: Home) -> HomeView:
    if who.role is Role.CITIZEN:
        mine = [WaitingEntry(e, position(h, e.id)) for e in h.entries if e.citizen == who.name]
        return HomeView(summary(p, h), mine=mine)
    line = [WaitingEntry(e, n, need_points(e)) for n, e in enumerate(h.waiting(), start=1)]
    return HomeView(summary(p, h), residents=sorted(h.residents, key=lambda r: r.bed),
                    waiting=line, offers=h.offers())


class HomesQuery(msgspec.Struct, forbid_unknown_fields=False):
    area: AreaCode | None = None


class HomeList(msgspec.Struct):
    homes: list[HomeSummary]


async def get_homes(call: Call[None, HomesQuery]) -> HomeList:
    s = side(call)
    ids = frozenset(await _home_ids(call))
    home_of = await citizen_area(call)
    want = call.query.area
    rows = await s.homes.list(lambda p: (want is None or p.area.startswith(want))
                              and access.sees_home(call.principal, p.id, p.area, served(call),
                                                   home_of, ids))
    return HomeList([summary(p, h) for p, h in rows])


async def get_home(call: Call[None, Any]) -> HomeView:
    p, h = call.record
    return view(call.principal, p, h)


class Beds(msgspec.Struct, forbid_unknown_fields=True):
    beds: Annotated[int, msgspec.Meta(ge=0, le=5000)]


def _runs(call: Call[Any, Any]) -> None:
    """Running a home (beds, discharges, answers on someone's behalf) is for its own staff, civil
    affairs and an admin: a station key that sees the home by its area only may look."""
    who = call.principal
    if who.role is Role.STATION and who.name != call.record[0].id:
        raise ApiError(403, "only the home's own staff, civil affairs or an admin run a home",
                       code="care_not_home_staff")


async def put_beds(call: Call[Beds, Any]) -> HomeView:
    _runs(call)
    p, _ = call.record
    h = await side(call).homes.set_beds(p.id, call.body.beds)
    return view(call.principal, p, h)


class Apply(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    citizen: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    care_level: Annotated[int, msgspec.Meta(ge=0, le=6)] | None = None
    hardship: Hardship | None = None
    lives_alone: bool | None = None
    note: Note = ""


class Applied(msgspec.Struct):
    entry: Entry
    position: int | None
    home: HomeSummary


async def post_waiting(call: Call[Apply, Any]) -> Applied:
    who, b = call.principal, call.body
    p, _ = call.record
    if who.role is Role.CITIZEN:
        if b.citizen not in (None, who.name):
            raise ApiError(403, "a citizen key applies for its own citizen only")
        citizen = who.name
    else:
        if not b.citizen:
            raise ApiError(400, "citizen: whom the entry is for")
        citizen = b.citizen
    h, entry = await side(call).homes.apply(
        p.id, citizen, care_level=b.care_level, hardship=b.hardship, lives_alone=b.lives_alone,
        note=b.note, trusted=who.role is not Role.CITIZEN)
    return Applied(entry, position(h, entry.id), summary(p, h))


class Free(msgspec.Struct, forbid_unknown_fields=True):
    reason: Note = ""


async def post_free(call: Call[Free, Any]) -> HomeView:
    _runs(call)
    p, _ = call.record
    try:
        bed = int(call.path["bed"])
    except ValueError:
        raise ApiError(400, f"bed: a bed number, not {call.path['bed']!r}") from None
    h = await side(call).homes.free_bed(p.id, bed, call.body.reason)
    return view(call.principal, p, h)


class Answer(msgspec.Struct, forbid_unknown_fields=True):
    action: Annotated[str, msgspec.Meta(pattern="^(accept|decline|withdraw)$",
                                        description="accept, decline or withdraw")]


async def post_entry(call: Call[Answer, Any]) -> HomeView:
    who = call.principal
    p, h = call.record
    entry_id = call.path["entry"]
    e = next((x for x in h.entries if x.id == entry_id), None)
    if e is None or (who.role is Role.CITIZEN and e.citizen != who.name):
        raise ApiError(404, f"no entry {entry_id!r} in home {p.id}")
    if who.role is not Role.CITIZEN:
        _runs(call)
    homes = side(call).homes
    if call.body.action == "withdraw":
        new = await homes.withdraw(p.id, entry_id)
    else:
        new = await homes.respond(p.id, entry_id, call.body.action == "accept")
    return view(who, p, new)


# -- caregivers -------------------------------------------------------------------------------


class ShiftIn(msgspec.Struct, forbid_unknown_fields=True):
    weekday: Annotated[int, msgspec.Meta(ge=1, le=7, description="1 Monday .. 7 Sunday")]
    start: HHMM
    end: HHMM


class CaregiverIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    id: Id
    name: Short
    area: AreaCode
    skills: Annotated[list[Skill], msgspec.Meta(min_length=1, max_length=len(SKILLS))]
    schedule: Annotated[list[ShiftIn], msgspec.Meta(max_length=21)]
    phone: Annotated[str, msgspec.Meta(max_length=20)] = ""
    active: bool = True


class ShiftOut(msgspec.Struct):
    weekday: int
    start: str
    end: str


class CaregiverOut(msgspec.Struct, omit_defaults=True):
    id: str
    name: str
    area: str
    skills: list[str]
    schedule: list[ShiftOut]
    active: bool
    phone: str | None = None  # staff only


def caregiver_out(who: Principal, c: Caregiver) -> CaregiverOut:
    return CaregiverOut(c.id, c.name, c.area, c.skills,
                        [ShiftOut(s.weekday, hhmm(s.start), hhmm(s.end)) for s in c.schedule],
                        c.active, None if who.role is Role.CITIZEN else c.phone)


async def _sees_caregiver(call: Call[Any, Any], area: str) -> bool:
    return access.sees_caregiver(call.principal, area, served(call), await citizen_area(call))


def _sees_visit(call: Call[Any, Any], b: Booking) -> bool:
    return access.sees_booking(call.principal, b.citizen, b.area, b.citizen_area, served(call))


async def _load_caregiver(call: Call[Any, Any]) -> Caregiver | None:
    try:
        return await side(call).caregivers.get(call.path["caregiver"])
    except CareNotFound:
        return None


CAREGIVER = Guard("caregiver", "caregiver", _load_caregiver,
                  lambda call, c: _sees_caregiver(call, c.area))


class CaregiverQuery(msgspec.Struct, forbid_unknown_fields=False):
    skill: Skill | None = None
    area: AreaCode | None = None


class CaregiverList(msgspec.Struct):
    caregivers: list[CaregiverOut]
    skills: list[str]


async def get_caregivers(call: Call[None, CaregiverQuery]) -> CaregiverList:
    q = call.query
    home_of = await citizen_area(call)
    rows = [c for c in await side(call).caregivers.list()
            if access.sees_caregiver(call.principal, c.area, served(call), home_of)
            and (q.skill is None or q.skill in c.skills)
            and (q.area is None or c.area.startswith(q.area) or q.area.startswith(c.area))]
    return CaregiverList([caregiver_out(call.principal, c) for c in rows], list(SKILLS))


async def post_caregiver(call: Call[CaregiverIn, Any]) -> Reply:
    who, b = call.principal, call.body
    if b.area not in call.node.city:
        raise ApiError(400, f"area: no area {b.area!r} in this city")
    if who.role is Role.CITIZEN or not access.covers(who, b.area, served(call)):
        raise ApiError(403, f"area {b.area} lies outside this key's scope {who.scope}")
    s = side(call).caregivers
    held: Caregiver | None
    try:
        held = await s.get(b.id)
    except CareNotFound:
        held = None
    if held is not None and not access.covers(who, held.area, served(call)):
        raise ApiError(404, f"no caregiver {b.id!r}")  # someone else's: as if none
    shifts = [Shift(x.weekday, minutes(x.start, f"schedule[{n}].start"),
                    minutes(x.end, f"schedule[{n}].end")) for n, x in enumerate(b.schedule)]
    c = Caregiver(id=b.id, name=b.name, area=b.area, skills=sorted(set(b.skills)),
                  schedule=shifts, phone=b.phone, active=b.active)
    saved, new = await s.register(c, replace=held is not None)
    return Reply(caregiver_out(who, saved), status=201 if new else 200)


class DaysQuery(msgspec.Struct, forbid_unknown_fields=False):
    start: Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}$")] | None = None
    days: Annotated[int, msgspec.Meta(ge=1, le=31)] = 7


class Slot(msgspec.Struct):
    start: str
    end: str


class BusySlot(msgspec.Struct, omit_defaults=True):
    start: str
    end: str
    booking: str | None = None  # staff, and the citizen's own
    citizen: str | None = None  # staff


class DayOut(msgspec.Struct):
    day: str
    free: list[Slot]
    busy: list[BusySlot]


class CaregiverDays(msgspec.Struct):
    caregiver: CaregiverOut
    days: list[DayOut]


async def get_caregiver(call: Call[None, DaysQuery]) -> CaregiverDays:
    who, c = call.principal, call.record
    s = side(call)
    start = parse_day(call.query.start) if call.query.start else \
        dt.datetime.fromtimestamp(call.node.clock(), s.zone).date()
    out = []
    for d in await s.caregivers.days(c.id, start, call.query.days):
        date = dt.date.fromisoformat(d.day)
        busy = []
        for b in sorted(d.active(), key=lambda b: b.start):
            # Whose visit it is only for those who may see the visit; others see busy time.
            seen = _sees_visit(call, b)
            busy.append(BusySlot(hhmm(b.start), hhmm(b.end), b.id if seen else None,
                                 b.citizen if seen and who.role is not Role.CITIZEN else None))
        out.append(DayOut(d.day, [Slot(hhmm(a), hhmm(z)) for a, z in free_slots(c, d, date)],
                          busy))
    return CaregiverDays(caregiver_out(who, c), out)


# -- bookings ---------------------------------------------------------------------------------


class BookIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    caregiver: Id
    citizen: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    day: Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}$")]
    start: HHMM
    end: HHMM
    skills: Annotated[list[Skill], msgspec.Meta(max_length=len(SKILLS))] = []
    address: Short = ""
    note: Note = ""


class BookingOut(msgspec.Struct):
    id: str
    caregiver: str
    citizen: str
    day: str
    start: str
    end: str
    skills: list[str]
    area: str
    status: str
    address: str
    note: str


def booking_out(b: Booking) -> BookingOut:
    return BookingOut(b.id, b.caregiver, b.citizen, b.day, hhmm(b.start), hhmm(b.end),
                      b.skills, b.area, b.status.value, b.address, b.note)


async def post_booking(call: Call[BookIn, Any]) -> BookingOut:
    who, b = call.principal, call.body
    if who.role is Role.CITIZEN:
        if b.citizen not in (None, who.name):
            raise ApiError(403, "a citizen key books for its own citizen only")
        citizen = who.name
    else:
        if not b.citizen:
            raise ApiError(400, "citizen: whom the visit is for")
        citizen = b.citizen
    s = side(call).caregivers
    try:
        c = await s.get(b.caregiver)
    except CareNotFound:
        c = None
    if c is None or not await _sees_caregiver(call, c.area):
        raise ApiError(404, f"no caregiver {b.caregiver!r}", code="care_unknown_caregiver")
    if who.role is not Role.CITIZEN:
        # Staff book for their residents, or with the caregivers they run; a community's
        # station may not book the town's caregiver for someone who lives elsewhere.
        held = await side(call).homes.teller.citizen(citizen)
        if held is not None and not access.sees_booking(who, citizen, c.area, held.area,
                                                        served(call)):
            raise ApiError(403, f"citizen {citizen} lives outside this key's scope "
                                f"{who.scope}, and caregiver {c.id} serves beyond it")
    booked = await s.book(c.id, citizen, b.day, minutes(b.start, "start"),
                          minutes(b.end, "end"), b.skills, by=who.key_id, address=b.address,
                          note=b.note)
    return booking_out(booked)


async def _load_booking(call: Call[Any, Any]) -> Booking | None:
    try:
        return await side(call).caregivers.find(call.path["booking"])
    except CareNotFound:
        return None


BOOKING = Guard("care_booking", "booking", _load_booking, _sees_visit)


async def get_booking(call: Call[None, Any]) -> BookingOut:
    return booking_out(call.record)


class Cancel(msgspec.Struct, forbid_unknown_fields=True):
    reason: Note = ""


async def post_cancel(call: Call[Cancel, Any]) -> BookingOut:
    return booking_out(await side(call).caregivers.cancel(call.record.id, call.body.reason))


# -- a citizen's own --------------------------------------------------------------------------


class MyEntry(msgspec.Struct):
    home: str
    home_name: str
    entry: Entry
    position: int | None


class Mine(msgspec.Struct):
    entries: list[MyEntry]
    bookings: list[BookingOut]


async def get_mine(call: Call[None, Any]) -> Mine:
    who = call.principal
    s = side(call)
    entries = [MyEntry(h.id, h.name, e, position(h, e.id))
               for h, e in await s.homes.of_citizen(who.name)]
    bookings = [booking_out(b) for b in await s.caregivers.of_citizen(who.name)]
    return Mine(entries, bookings)


# -- retrofits --------------------------------------------------------------------------------


async def _load_application(call: Call[Any, Any]) -> Application | None:
    try:
        return await side(call).retrofits.application(call.path["application"])
    except CareNotFound:
        return None


APPLICATION = Guard("application", "application", _load_application,
                    lambda call, app: can_see(app, actor_of(call.principal)))


class FindingIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    hazard: Annotated[str, msgspec.Meta(max_length=40, description=", ".join(WORKS))]
    room: Short = ""
    quantity: Annotated[int, msgspec.Meta(ge=1, le=20)] = 1
    note: Note = ""


class AssessIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    findings: Annotated[list[FindingIn], msgspec.Meta(min_length=1, max_length=40)]
    hardship: Hardship | None = None
    note: Note = ""


async def post_assessment(call: Call[AssessIn, Any]) -> Assessment:
    b = call.body
    findings = [Finding(hazard=f.hazard, room=f.room, quantity=f.quantity, note=f.note)
                for f in b.findings]
    return await side(call).retrofits.assess(call.record, actor_of(call.principal), findings,
                                              hardship=b.hardship, note=b.note)


class RetrofitView(msgspec.Struct):
    application: str
    submission: str
    status: str
    assessment: Assessment | None


async def get_retrofit(call: Call[None, Any]) -> RetrofitView:
    app: Application = call.record
    done = await side(call).retrofits.get(app.submission)
    return RetrofitView(app.id, app.submission, app.status.value, done)


ASSESSORS = frozenset({Role.ADMIN, Role.DEPARTMENT})
P = "/api/v1/seniorcare"

ROUTES = [
    Endpoint("GET", f"{P}/homes", get_homes,
             "Nursing homes (the elderly-care service points): beds, occupied, offered, free, "
             "waiting", SEE_OR_CITIZEN, Scope.LIST, kind="care_home", query=HomesQuery,
             response=HomeList,
             description="A citizen sees the homes of the town they live in; staff those "
                         "their scope covers; a home's own staff (a station key named with "
                         "the home's id) that home."),
    Endpoint("GET", f"{P}/homes/{{home}}", get_home,
             "One home: staff see residents, open offers and the waiting list in priority "
             "order; a citizen their own entries", SEE_OR_CITIZEN, Scope.RECORD, guard=HOME,
             response=HomeView),
    Endpoint("PUT", f"{P}/homes/{{home}}/beds", put_beds,
             "Beds in service (fewer may not strand a resident or an offer; more are offered "
             "to the waiting list at once)", RUN, Scope.RECORD, guard=HOME, body=Beds,
             body_limit=1024, response=HomeView, errors=(409,)),
    Endpoint("POST", f"{P}/homes/{{home}}/waiting", post_waiting,
             "Join the waiting list (a citizen for themselves: care level and hardship from "
             "the registry; staff may state them)", RUN_OR_CITIZEN, Scope.RECORD, guard=HOME,
             body=Apply, body_limit=BODY, body_required=False, response=Applied, status=201,
             errors=(409,)),
    Endpoint("POST", f"{P}/homes/{{home}}/beds/{{bed}}/free", post_free,
             "A resident leaves: the bed is offered to the next in line by priority, with a "
             "response deadline", RUN, Scope.RECORD, guard=HOME, body=Free, body_limit=BODY,
             body_required=False, response=HomeView, errors=(409,), examples={"bed": "1"}),
    Endpoint("POST", f"{P}/homes/{{home}}/entries/{{entry}}", post_entry,
             "Answer an offer (accept, decline) or leave the list (withdraw)", RUN_OR_CITIZEN,
             Scope.RECORD, guard=HOME, body=Answer, body_limit=1024, response=HomeView,
             errors=(409,), examples={"entry": "adm-x"}),
    Endpoint("GET", f"{P}/caregivers", get_caregivers,
             "Caregivers with skills and weekly schedules", SEE_OR_CITIZEN, Scope.LIST,
             kind="caregiver", query=CaregiverQuery, response=CaregiverList),
    Endpoint("POST", f"{P}/caregivers", post_caregiver,
             "Add a caregiver (201) or change one (200)", RUN, Scope.CREATE, kind="caregiver",
             body=CaregiverIn, body_limit=BODY, response=CaregiverOut, status=201,
             also_ok=(200,), errors=(409,)),
    Endpoint("GET", f"{P}/caregivers/{{caregiver}}", get_caregiver,
             "A caregiver's free time and bookings, day by day", SEE_OR_CITIZEN, Scope.RECORD,
             guard=CAREGIVER, query=DaysQuery, response=CaregiverDays),
    Endpoint("POST", f"{P}/bookings", post_booking,
             "Book a caregiver's visit: within a shift of the schedule, with the skills asked, "
             "overlapping no other booking (409 with code care_double_booked)",
             RUN_OR_CITIZEN, Scope.CREATE, kind="care_booking", body=BookIn, body_limit=BODY,
             response=BookingOut, status=201, errors=(404, 409)),
    Endpoint("GET", f"{P}/bookings/{{booking}}", get_booking, "One booking",
             SEE_OR_CITIZEN, Scope.RECORD, guard=BOOKING, response=BookingOut),
    Endpoint("POST", f"{P}/bookings/{{booking}}/cancel", post_cancel,
             "Cancel a booking: its time is free again", RUN_OR_CITIZEN, Scope.RECORD,
             guard=BOOKING, body=Cancel, body_limit=BODY, body_required=False,
             response=BookingOut, errors=(409,)),
    Endpoint("GET", f"{P}/mine", get_mine,
             "A citizen's waiting-list entries (with their place) and bookings",
             frozenset({Role.CITIZEN}), Scope.OWN, response=Mine),
    Endpoint("POST", f"{P}/retrofits/{{application}}/assessment", post_assessment,
             "Record the on-site assessment of an aging-friendly retrofit: findings, then the "
             "works and the subsidy; the assessment application's result is issued",
             ASSESSORS, Scope.RECORD, guard=APPLICATION, body=AssessIn, body_limit=BODY,
             response=Assessment, status=201, errors=(409,),
             description=f"Only on an application of the '{ASSESSMENT_ITEM}' item (the "
                         "aging_friendly_retrofit bundle); by its department. Hazards: "
                         + ", ".join(WORKS)),
    Endpoint("GET", f"{P}/retrofits/{{application}}", get_retrofit,
             "A retrofit's assessment: findings, works, subsidy, own share",
             SEE_OR_CITIZEN, Scope.RECORD, guard=APPLICATION, response=RetrofitView),
]
