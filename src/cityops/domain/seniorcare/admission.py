"""Nursing-home admission: a home's beds, its waiting list, and who gets a bed when one frees.

A home is one of the elderly-care service points the 15-minute circle measures (same id, name
and community); what admission adds is its beds, the people in them, the offers outstanding
and the waiting list. All of that is one value, `Home`, changed only by the moves here, so the
store can save it with one version-checked write: two moves that both saw bed 3 free cannot
both hand it out, because the second save is refused and decided again on the new copy.

Priority (who is offered the next bed), in this order:
  1. Hardship class: special-hardship persons (特困), then low-income households (低保/低收入),
     then everyone else. Public and subsidised homes are where the city guarantees care for
     those with no one and nothing else (Shanghai's "保基本" beds), so need of that kind is not
     weighed against frailty: it goes first.
  2. Need, as points: the assessed care level (Shanghai's unified needs assessment, levels
     1-6) counts 10 a level; 90 or older adds 20, 80 or older 10; living alone adds 10. A
     level-4 person of 85 living alone (40 + 10 + 10 = 60) is ahead of a level-5 person of 70
     with family (50): age and being alone stand for the help at home that is missing.
  3. Waiting since: earlier first, so equal need is served in turn.
  4. The entry id, only so the order is total and every node decides the same.

An offer holds one bed for the person for `RESPONSE_S` (three days, time to visit and talk
with the family). Accepted: they become a resident of that bed. Declined or let expire: the
entry leaves the list (they may apply again, from the back) and the bed is offered to the next
in line at once. Every move that may free a bed ends by allocating, so a free bed never waits
while someone is waiting.
"""

from __future__ import annotations

import enum

import msgspec

from cityops.domain.seniorcare.errors import CareInvalid, CareNotFound, CareRefused

RESPONSE_S = 3 * 86_400.0
MAX_BEDS = 5000
MAX_WAITING = 5000  # open entries a home's list holds (a city-run home has a few hundred)
CLOSED_KEPT = 200  # closed entries kept for the citizens to see how theirs ended
CARE_LEVELS = range(0, 7)  # 0: not assessed; 1-6 the unified assessment's levels


class Hardship(enum.StrEnum):
    NONE = "none"
    LOW_INCOME = "low_income"
    SPECIAL = "special_hardship"


HARDSHIP_RANK = {Hardship.SPECIAL: 2, Hardship.LOW_INCOME: 1, Hardship.NONE: 0}


class EntryStatus(enum.StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"
    ADMITTED = "admitted"
    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"


OPEN = frozenset({EntryStatus.WAITING, EntryStatus.OFFERED})


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    citizen: str
    care_level: int
    age: int
    lives_alone: bool = False
    hardship: Hardship = Hardship.NONE
    since: float
    status: EntryStatus = EntryStatus.WAITING
    bed: int | None = None  # the bed offered or taken
    offered_at: float | None = None
    deadline: float | None = None  # of the offer
    closed_at: float | None = None
    note: str = ""


class Resident(msgspec.Struct, frozen=True, kw_only=True):
    bed: int
    citizen: str
    entry: str
    since: float


class Home(msgspec.Struct, frozen=True, kw_only=True):
    id: str  # the care service point's id
    name: str
    area: str  # its community's code
    beds: int = 0
    residents: list[Resident] = []
    entries: list[Entry] = []  # open entries, then the last closed ones
    updated: float = 0.0

    def waiting(self) -> list[Entry]:
        """The waiting list in the order beds are offered."""
        return sorted((e for e in self.entries if e.status is EntryStatus.WAITING),
                      key=priority)

    def offers(self) -> list[Entry]:
        return [e for e in self.entries if e.status is EntryStatus.OFFERED]

    def held_beds(self) -> set[int]:
        return {r.bed for r in self.residents} | {e.bed for e in self.offers()
                                                   if e.bed is not None}

    def free_beds(self) -> list[int]:
        held = self.held_beds()
        return [b for b in range(1, self.beds + 1) if b not in held]

    def entry(self, entry_id: str) -> Entry:
        for e in self.entries:
            if e.id == entry_id:
                return e
        raise CareNotFound(f"home {self.id} has no entry {entry_id!r}")

    def next_deadline(self) -> float | None:
        """When the earliest offer runs out: the instant the expiry scan waits for."""
        times = [e.deadline for e in self.offers() if e.deadline is not None]
        return min(times) if times else None


class Told(msgspec.Struct, frozen=True):
    """A citizen to tell something (the serve side finds their phone)."""

    kind: str  # care.offer, care.admitted, care.expired ...
    citizen: str
    text: str
    ref: str  # what makes the notice unique: the entry and its step
    # The facts the citizen's text is written from in their language (notify/texts.py).
    args: dict[str, str | int | float] = {}


def need_points(e: Entry) -> int:
    age = 20 if e.age >= 90 else 10 if e.age >= 80 else 0
    return e.care_level * 10 + age + (10 if e.lives_alone else 0)


def priority(e: Entry) -> tuple[int, int, float, str]:
    """Sort key: smaller goes first (see the module's docstring for the rules)."""
    return (-HARDSHIP_RANK[e.hardship], -need_points(e), e.since, e.id)


def position(home: Home, entry_id: str) -> int | None:
    """1-based place on the waiting list; None for an entry not waiting."""
    for n, e in enumerate(home.waiting(), start=1):
        if e.id == entry_id:
            return n
    return None


# -- moves ------------------------------------------------------------------------------------


def _replace(home: Home, entry: Entry, now: float) -> Home:
    entries = [entry if e.id == entry.id else e for e in home.entries]
    return msgspec.structs.replace(home, entries=_pruned(entries), updated=now)


def _pruned(entries: list[Entry]) -> list[Entry]:
    """Open entries, then the newest closed ones; older closed ones drop off."""
    open_ = [e for e in entries if e.status in OPEN]
    closed = sorted((e for e in entries if e.status not in OPEN),
                    key=lambda e: e.closed_at or 0.0, reverse=True)[:CLOSED_KEPT]
    return open_ + closed


def set_beds(home: Home, beds: int, now: float) -> tuple[Home, list[Told]]:
    """Beds in service. Fewer beds may not strand a resident or an offer: those beds must be
    freed first. More beds are offered at once."""
    if not 0 <= beds <= MAX_BEDS:
        raise CareInvalid(f"beds: 0 to {MAX_BEDS}, not {beds}")
    over = sorted(b for b in home.held_beds() if b > beds)
    if over:
        raise CareRefused(f"bed {over[0]} of home {home.id} is taken or offered; free it "
                          f"before cutting the home to {beds} beds", "care_bed_in_use")
    return allocate(msgspec.structs.replace(home, beds=beds, updated=now), now)


def apply(home: Home, entry: Entry, now: float) -> tuple[Home, list[Told]]:
    """A citizen joins the waiting list (and is offered a bed at once if one is free and
    nobody is ahead)."""
    if entry.care_level not in CARE_LEVELS:
        raise CareInvalid(f"care_level: 0 to 6, not {entry.care_level}")
    if not 0 <= entry.age <= 130:
        raise CareInvalid(f"age: 0 to 130, not {entry.age}")
    if any(r.citizen == entry.citizen for r in home.residents):
        raise CareRefused(f"citizen {entry.citizen} lives in home {home.id} already",
                          "care_already_resident")
    if any(e.citizen == entry.citizen and e.status in OPEN for e in home.entries):
        raise CareRefused(f"citizen {entry.citizen} is on the waiting list of home {home.id} "
                          "already", "care_already_waiting")
    if any(e.id == entry.id for e in home.entries):
        raise CareRefused(f"entry {entry.id} exists", "care_duplicate")
    if sum(e.status in OPEN for e in home.entries) >= MAX_WAITING:
        raise CareRefused(f"the waiting list of home {home.id} is full ({MAX_WAITING})",
                          "care_list_full")
    fresh = msgspec.structs.replace(entry, status=EntryStatus.WAITING, since=now, bed=None,
                                    offered_at=None, deadline=None, closed_at=None)
    home = msgspec.structs.replace(home, entries=_pruned([*home.entries, fresh]), updated=now)
    return allocate(home, now)


def allocate(home: Home, now: float, response_s: float = RESPONSE_S
             ) -> tuple[Home, list[Told]]:
    """Offer every free bed to the next in line, lowest bed to the first."""
    told: list[Told] = []
    free = home.free_beds()
    line = home.waiting()
    for bed, e in zip(free, line, strict=False):
        offered = msgspec.structs.replace(e, status=EntryStatus.OFFERED, bed=bed,
                                          offered_at=now, deadline=now + response_s)
        home = _replace(home, offered, now)
        told.append(Told("care.offer", e.citizen,
                         f"{home.name}: bed {bed} is offered to you; please accept or decline "
                         "before the deadline", f"{e.id}:offer:{bed}:{now:.0f}",
                         {"home_name": home.name, "bed": bed, "deadline": now + response_s}))
    return home, told


def free_bed(home: Home, bed: int, now: float, reason: str = "") -> tuple[Home, list[Told]]:
    """A resident leaves (discharged, moved, died): the bed goes to the next in line."""
    held = next((r for r in home.residents if r.bed == bed), None)
    if held is None:
        if 1 <= bed <= home.beds and bed in home.held_beds():
            raise CareRefused(f"bed {bed} of home {home.id} is offered, not taken; the offer "
                              "is answered or expires", "care_bed_offered")
        raise CareRefused(f"bed {bed} of home {home.id} is not taken", "care_bed_free")
    home = msgspec.structs.replace(home, residents=[r for r in home.residents if r.bed != bed],
                                   updated=now)
    return allocate(home, now)


def respond(home: Home, entry_id: str, accept: bool, now: float
            ) -> tuple[Home, list[Told]]:
    """The citizen's answer to an offer. A late answer is refused: the offer has expired
    (the expiry scan may not have run yet, but the deadline is the deadline)."""
    e = home.entry(entry_id)
    if e.status is EntryStatus.EXPIRED or (e.status is EntryStatus.OFFERED
                                           and e.deadline is not None and now > e.deadline):
        raise CareRefused(f"the offer of bed {e.bed} ran out before the answer",
                          "care_offer_expired")
    if e.status is not EntryStatus.OFFERED or e.bed is None:
        raise CareRefused(f"entry {entry_id} has no offer open (it is {e.status.value})",
                          "care_no_offer")
    if accept:
        taken = msgspec.structs.replace(e, status=EntryStatus.ADMITTED, closed_at=now,
                                        deadline=None)
        resident = Resident(bed=e.bed, citizen=e.citizen, entry=e.id, since=now)
        home = msgspec.structs.replace(_replace(home, taken, now),
                                       residents=[*home.residents, resident])
        return home, [Told("care.admitted", e.citizen,
                           f"{home.name}: welcome; bed {e.bed} is yours", f"{e.id}:admitted",
                           {"home_name": home.name, "bed": e.bed})]
    gone = msgspec.structs.replace(e, status=EntryStatus.DECLINED, closed_at=now, deadline=None)
    return allocate(_replace(home, gone, now), now)


def expire(home: Home, now: float) -> tuple[Home, list[Told]]:
    """Offers past their deadline lapse; their beds go to the next in line."""
    told: list[Told] = []
    for e in home.offers():
        if e.deadline is not None and now > e.deadline:
            gone = msgspec.structs.replace(e, status=EntryStatus.EXPIRED, closed_at=now)
            home = _replace(home, gone, now)
            told.append(Told("care.expired", e.citizen,
                             f"{home.name}: the offer of bed {e.bed} has lapsed unanswered; "
                             "apply again to rejoin the list", f"{e.id}:expired",
                             {"home_name": home.name, "bed": e.bed or 0}))
    home, offered = allocate(home, now)
    return home, told + offered


def withdraw(home: Home, entry_id: str, now: float) -> tuple[Home, list[Told]]:
    """The citizen leaves the list (or turns down an open offer by withdrawing)."""
    e = home.entry(entry_id)
    if e.status not in OPEN:
        raise CareRefused(f"entry {entry_id} is {e.status.value} already", "care_closed")
    gone = msgspec.structs.replace(e, status=EntryStatus.WITHDRAWN, closed_at=now,
                                   deadline=None)
    return allocate(_replace(home, gone, now), now)


def forget(home: Home, citizen: str, marker: str, now: float
           ) -> tuple[Home, list[Told], dict[str, int]]:
    """The home once the citizen's data is erased: their open entries withdrawn and their bed
    freed by the same moves as any other (so every offer and bed this lets go is offered to the
    next in line at once, by priority), then every entry of theirs no longer naming them.
    Returns the home, whom to tell of new offers (never the erased person), and counts of
    what moved ("entries": how many of theirs the home keeps, anonymised).

    The entries stay, anonymised, with their care level, age band and hardship class: they
    are the ordering the list was decided by, which an appeal by someone passed over needs
    to see. The note goes: it is free text about the person."""
    moved = {"entries_withdrawn": 0, "offers_withdrawn": 0, "beds_freed": 0, "entries": 0}
    told: list[Told] = []
    # Open entries first: the bed a resident frees must not be offered back to their own
    # waiting entry (none can exist today; this keeps it so if the rules ever allow one).
    for e in [e for e in home.entries if e.citizen == citizen and e.status in OPEN]:
        moved["offers_withdrawn" if e.status is EntryStatus.OFFERED
              else "entries_withdrawn"] += 1
        home, more = withdraw(home, e.id, now)
        told += more
    for r in [r for r in home.residents if r.citizen == citizen]:
        moved["beds_freed"] += 1
        home, more = free_bed(home, r.bed, now, "the resident's data was erased")
        told += more
    moved["entries"] = sum(e.citizen == citizen for e in home.entries)
    if moved["entries"]:
        entries = [msgspec.structs.replace(e, citizen=marker, note=marker if e.note else "")
                   if e.citizen == citizen else e for e in home.entries]
        home = msgspec.structs.replace(home, entries=entries, updated=now)
    return home, [t for t in told if t.citizen != citizen], moved


def check(home: Home) -> None:
    """The invariant every save keeps: a bed is held by one resident or one offer at most,
    and only beds the home has are held."""
    held = [r.bed for r in home.residents] + [e.bed for e in home.offers() if e.bed is not None]
    if len(held) != len(set(held)):
        raise AssertionError(f"home {home.id}: a bed held twice: {sorted(held)}")
    if any(not 1 <= b <= home.beds for b in held):
        raise AssertionError(f"home {home.id}: a bed beyond its {home.beds}")
