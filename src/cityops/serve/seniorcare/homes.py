"""Nursing-home admission on the records store: one "care_home" record per home (its beds,
residents, offers and waiting list, cityops.domain.seniorcare.admission.Home), saved
version-checked, so a bed is never handed out twice however many moves race for it.

Every move first lets lapsed offers expire (so an answer or a discharge always acts on the list
as it stands now), then makes its own change, then saves; the record's `due` is the earliest
offer deadline, which the serve scheduler's scan waits for, so offers lapse and move on even
when nobody touches the home.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
import weakref
from collections.abc import Callable
from typing import Any

import msgspec

from cityops.domain.seniorcare import admission as rules
from cityops.domain.seniorcare.admission import Entry, Hardship, Home, Resident, Told
from cityops.domain.seniorcare.errors import CareNotFound, CareRefused
from cityops.packs.care import CarePoint
from cityops.serve.seniorcare import mine
from cityops.serve.seniorcare.tell import CitizenTeller
from cityops.store.base import Record, Store
from cityops.store.update import RecordDecision, UpdateGaveUp, update_record

KIND = "care_home"
MAX_HOMES = 10_000

Move = Callable[[Home, float], tuple[Home, list[Told]]]


class HomeService:
    def __init__(self, store: Store, points: Callable[[], Any], *, now: Callable[[], float],
                 zone: dt.tzinfo, teller: CitizenTeller) -> None:
        self.store = store
        self._points = points  # async: {point id: CarePoint}
        self.now = now
        self.zone = zone
        self.teller = teller
        self.stats = {"offers": 0, "expired": 0, "retries": 0}
        # Moves on one home wait for each other within this node, so a busy home's moves do
        # not spend their retries on one another; the version check still decides between
        # nodes.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = \
            weakref.WeakValueDictionary()

    async def point(self, home_id: str) -> CarePoint:
        p = (await self._points()).get(home_id)
        if p is None:
            raise CareNotFound(f"no nursing home {home_id!r}: homes are the city's elderly-care "
                               "service points", "care_unknown_home")
        return p

    async def get(self, home_id: str) -> Home:
        """The home as stored (a service point not set up yet has no beds). An offer past
        its deadline shows until the next move or the scheduler's scan lets it lapse: a view
        never hands a bed on to someone nobody has told."""
        p = await self.point(home_id)
        rec = await self.store.get_record(KIND, home_id)
        return _blank(p) if rec is None else _decode(rec)

    async def list(self, visible: Callable[[CarePoint], bool]) -> list[tuple[CarePoint, Home]]:
        points = await self.points_visible(visible)
        stored = {r.id: _decode(r) for r in await self.store.find_records(KIND,
                                                                          limit=MAX_HOMES)}
        return [(p, stored.get(p.id) or _blank(p)) for p in points]

    async def points_visible(self, visible: Callable[[CarePoint], bool]) -> list[CarePoint]:
        return sorted((p for p in (await self._points()).values() if visible(p)),
                      key=lambda p: p.id)

    # -- moves ------------------------------------------------------------------------------

    async def _move(self, home_id: str, move: Move) -> Home:
        p = await self.point(home_id)

        def step(rec: Record | None) -> RecordDecision[tuple[Home, list[Told]]]:
            now = self.now()
            home = _blank(p) if rec is None else _decode(rec)
            home, lapsed = rules.expire(home, now)
            home, told = move(home, now)
            rules.check(home)
            return _record(home, rec.created if rec else now, now), (home, lapsed + told)

        lock = self._locks.get(home_id)
        if lock is None:
            lock = self._locks[home_id] = asyncio.Lock()
        try:
            async with lock:
                home, told = await update_record(self.store, KIND, home_id, step,
                                                 on_retry=self._retried)
        except UpdateGaveUp:
            raise CareRefused(f"home {home_id} kept changing; try again",
                              "changed_meanwhile") from None
        await self._tell(home, told)
        return home

    def _retried(self) -> None:
        self.stats["retries"] += 1

    async def set_beds(self, home_id: str, beds: int) -> Home:
        return await self._move(home_id, lambda h, now: rules.set_beds(h, beds, now))

    async def apply(self, home_id: str, citizen_id: str, *, care_level: int | None,
                    hardship: Hardship | None, lives_alone: bool | None, note: str = "",
                    trusted: bool) -> tuple[Home, Entry]:
        """Put a citizen on the waiting list. Facts the registry holds are taken from it
        (age always); care level and hardship given by a citizen for themselves are not taken
        (`trusted` False): they set the priority, so they come from the registry, where the
        assessment and the civil-affairs records put them."""
        await self.point(home_id)
        citizen = await self.teller.citizen(citizen_id)
        if citizen is None:
            raise CareRefused(f"citizen {citizen_id} is not in the citizen registry; register "
                              "first", "care_unregistered")
        age = citizen.age_on(dt.datetime.fromtimestamp(self.now(), self.zone).date())
        if age is None:
            raise CareRefused(f"citizen {citizen_id} has no date of birth in the registry; "
                              "the waiting list needs the age", "care_no_age")
        facts = citizen.attributes
        if not trusted or care_level is None:
            care_level = _int(facts.get("care_level"))
        if not trusted or hardship is None:
            hardship = _hardship(facts.get("hardship"))
        if lives_alone is None or not trusted:
            lives_alone = bool(facts.get("lives_alone", False))
        entry = Entry(id=f"adm-{uuid.uuid4().hex[:16]}", citizen=citizen_id,
                      care_level=care_level, age=age, lives_alone=lives_alone,
                      hardship=hardship, since=self.now(), note=note)
        await mine.point(self.store, citizen_id, self.now(), home=home_id)
        home = await self._move(home_id, lambda h, now: rules.apply(h, entry, now))
        return home, home.entry(entry.id)

    async def free_bed(self, home_id: str, bed: int, reason: str = "") -> Home:
        return await self._move(home_id, lambda h, now: rules.free_bed(h, bed, now, reason))

    async def respond(self, home_id: str, entry_id: str, accept: bool) -> Home:
        return await self._move(home_id, lambda h, now: rules.respond(h, entry_id, accept,
                                                                      now))

    async def withdraw(self, home_id: str, entry_id: str) -> Home:
        return await self._move(home_id, lambda h, now: rules.withdraw(h, entry_id, now))

    async def of_citizen(self, citizen_id: str) -> list[tuple[Home, Entry]]:
        """The citizen's entries, newest first, each with its home."""
        out = []
        for home_id in (await mine.read(self.store, citizen_id)).homes:
            try:
                home = await self.get(home_id)
            except CareNotFound:
                continue
            out += [(home, e) for e in home.entries if e.citizen == citizen_id]
        return sorted(out, key=lambda he: he[1].since, reverse=True)

    async def scan_offers(self, now: float | None = None, limit: int = 200) -> int:
        """Offers past their deadline lapse and their beds move on; how many homes moved."""
        now = self.now() if now is None else now
        moved = 0
        for rec in await self.store.find_records(KIND, due_before=now, limit=limit):
            try:
                await self._move(rec.id, lambda h, _now: (h, []))
                moved += 1
            except CareNotFound:  # a point gone from the city's care file
                continue
        self.stats["expired"] += moved
        return moved

    async def _tell(self, home: Home, told: list[Told]) -> None:
        self.stats["offers"] += sum(t.kind == "care.offer" for t in told)
        await self.teller.tell(told, self.now(), home=home.id)


async def forget(store: Store, home_id: str, citizen: str, marker: str, now: float
                 ) -> tuple[Home | None, list[Told], dict[str, int]]:
    """A citizen's data erased from one home (`admission.forget`), saved as every move is:
    lapsed offers expire first, the invariant is checked, the write is version-checked. The
    caller tells the `Told` (new offers to the next in line). (None, [], {}) for a home never
    stored."""
    def step(rec: Record | None) -> RecordDecision[tuple[Home | None, list[Told],
                                                         dict[str, int]]]:
        if rec is None:
            return None, (None, [], {})
        home, lapsed = rules.expire(_decode(rec), now)
        home, told, moved = rules.forget(home, citizen, marker, now)
        rules.check(home)
        return _record(home, rec.created, now), (home, lapsed + told, moved)

    return await update_record(store, KIND, home_id, step)


async def stored(store: Store, home_id: str) -> Home | None:
    rec = await store.get_record(KIND, home_id)
    return None if rec is None else _decode(rec)


def entries_of(home: Home, citizen: str) -> tuple[list[Entry], list[Resident]]:
    return ([e for e in home.entries if e.citizen == citizen],
            [r for r in home.residents if r.citizen == citizen])


def _blank(p: CarePoint) -> Home:
    return Home(id=p.id, name=p.name, area=p.area)


def _decode(rec: Record) -> Home:
    return msgspec.json.decode(rec.doc, type=Home)


def _record(home: Home, created: float, now: float) -> Record:
    return Record(kind=KIND, id=home.id, doc=msgspec.json.encode(home), owner=home.area,
                  status="open", due=home.next_deadline(), created=created, updated=now)


def _int(value: Any) -> int:
    try:
        level = int(value)
    except (TypeError, ValueError):
        return 0
    return level if level in rules.CARE_LEVELS else 0


def _hardship(value: Any) -> Hardship:
    try:
        return Hardship(value)
    except ValueError:
        return Hardship.NONE
