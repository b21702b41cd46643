"""Field staff as the city runs them: the city pack's people with the changes administrators
made since (api/roster.py), which the store keeps (`StaffStore`).

Everything that works with people reads this one roster (the staff board that proposes who
goes, the live screen, the field page, the staff list), so a change takes effect everywhere
as soon as it is stored: at start from the store, on this node at once, and on the other
nodes of a cluster when they next follow the store (cluster/compose.py).

Each person keeps one index for the node's life: the pack's people first, in the pack's order,
then the people added since, in the order the store first kept them. A retired person keeps
their index, marked inactive, so arrays laid out by index (the live screen's positions, its
viewers' masks) stay aligned; nobody is ever removed, since their cases and history name them.
`revision` counts the changes applied, for readers that cache something built from the roster.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import msgspec

from cityops.domain.city import CityPack, Level, Staff
from cityops.store.base import AuditEntry, StaffRecord, StaffStore, StaleVersion

GPS_KIND = "gps"  # what a person carries: the staff board reads its lat and lon channels


class BadStaff(ValueError):
    """A person the roster cannot take: `code` says which rule, the message how to fix it."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class StaffIdTaken(ValueError):
    code = "staff_id_taken"

    def __init__(self, person_id: str) -> None:
        super().__init__(f"a field person with id {person_id!r} is already on the roster "
                         "(retired people keep their id too)")


class StaffConflict(ValueError):
    """The person is not as the caller last read them (another change came first), or is
    retired and so takes no more changes."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class Member:
    person: Staff
    index: int
    active: bool
    version: int  # of the stored change; 0: as the city pack has them, nothing stored
    added: bool  # not in the city pack: added by an administrator


@dataclass(frozen=True)
class RosterRules:
    """What a person must be: of a known department, with a beat (home area) that is one of
    the city's towns or villages, carrying a registered GPS device nobody else active carries."""

    departments: frozenset[str]
    areas: frozenset[str]
    device_kind: Callable[[str], str | None]  # a registered device's kind; None: unknown

    @classmethod
    def of(cls, pack: CityPack, device_kind: Callable[[str], str | None]) -> RosterRules:
        return cls(frozenset(d.code for d in pack.departments),
                   frozenset(a.code for a in pack.areas
                             if a.level in (Level.TOWN, Level.VILLAGE)),
                   device_kind)

    def check(self, person: Staff, roster: Roster) -> None:
        if not person.id.strip() or not person.name.strip():
            raise BadStaff("staff_invalid", "a field person needs an id and a name")
        if person.department not in self.departments:
            known = ", ".join(sorted(self.departments)) or "none"
            raise BadStaff("staff_department_unknown", f"department {person.department!r} is "
                           f"not one of the city's ({known})")
        if person.home_area not in self.areas:
            raise BadStaff("staff_area_unknown", f"home area {person.home_area!r} is not one "
                           "of the city's towns or villages")
        kind = self.device_kind(person.device_id)
        if kind is None:
            raise BadStaff("staff_device_unknown", f"device {person.device_id!r} is not "
                           "registered: register the person's GPS tracker first")
        if kind != GPS_KIND:
            raise BadStaff("staff_device_not_gps", f"device {person.device_id!r} is a {kind}, "
                           "not a GPS tracker")
        holder = roster.carrier(person.device_id)
        if holder is not None and holder.person.id != person.id:
            raise BadStaff("staff_device_taken", f"device {person.device_id!r} is carried by "
                           f"{holder.person.id} ({holder.person.name})")


def _describe(person: Staff) -> str:
    """A person in one audit line."""
    skills = ",".join(person.skills) or "-"
    return (f"{person.name} | {person.department} | {person.home_area} | {person.device_id} "
            f"| {skills}")


class Roster:
    def __init__(self, pack_staff: Sequence[Staff], rules: RosterRules | None = None) -> None:
        """`rules`: what an added or edited person is checked against (a roster only read,
        as in a test of the staff board, needs none)."""
        self.rules = rules
        self.people: list[Staff] = list(pack_staff)
        self.active: list[bool] = [True] * len(self.people)
        self.versions: list[int] = [0] * len(self.people)
        self._pack_size = len(self.people)
        self._index = {s.id: i for i, s in enumerate(self.people)}
        self.revision = 0

    def __len__(self) -> int:
        return len(self.people)

    def get(self, person_id: str) -> Member | None:
        """A person on the roster, retired ones too (their history names them)."""
        i = self._index.get(person_id)
        if i is None:
            return None
        return Member(self.people[i], i, self.active[i], self.versions[i], i >= self._pack_size)

    def person(self, person_id: str) -> Staff | None:
        """An active person, or None (unknown or retired)."""
        i = self._index.get(person_id)
        return self.people[i] if i is not None and self.active[i] else None

    def members(self) -> list[Member]:
        return [Member(s, i, self.active[i], self.versions[i], i >= self._pack_size)
                for i, s in enumerate(self.people)]

    def current(self) -> list[Staff]:
        """The active people, in index order."""
        return [s for s, on in zip(self.people, self.active) if on]

    def carrier(self, device_id: str) -> Member | None:
        """The active person carrying a device."""
        for i, s in enumerate(self.people):
            if self.active[i] and s.device_id == device_id:
                return self.get(s.id)
        return None

    # -- following the store ---------------------------------------------------------------------

    def _apply(self, records: Iterable[StaffRecord]) -> bool:
        changed = False
        for rec in records:
            i = self._index.get(rec.person.id)
            if i is None:
                self._index[rec.person.id] = len(self.people)
                self.people.append(rec.person)
                self.active.append(rec.active)
                self.versions.append(rec.version)
                changed = True
            elif rec.version > self.versions[i]:  # an older copy never undoes a newer one
                self.people[i], self.active[i], self.versions[i] = (rec.person, rec.active,
                                                                    rec.version)
                changed = True
        if changed:
            self.revision += 1
        return changed

    async def load(self, store: StaffStore) -> None:
        self._apply(await store.load_staff())

    async def refresh(self, store: StaffStore) -> bool:
        """Take what other nodes stored; whether anything changed."""
        return self._apply(await store.load_staff())

    # -- changes ---------------------------------------------------------------------------------

    def _rules(self) -> RosterRules:
        if self.rules is None:
            raise RuntimeError("this roster was made without rules: it is read only")
        return self.rules

    async def _store(self, store: StaffStore, record: StaffRecord, expect_version: int,
                     entry: AuditEntry) -> Member:
        try:
            saved = await store.put_staff(record, entry, expect_version=expect_version)
        except StaleVersion:
            await self.refresh(store)  # what the caller should read again
            raise StaffConflict("staff_changed", f"{record.person.id} was changed meanwhile "
                                "(on this or another node): read them again") from None
        self._apply([saved])
        found = self.get(saved.person.id)
        assert found is not None
        return found

    async def add(self, store: StaffStore, person: Staff, *, actor: str, reason: str = "",
                  at: float | None = None) -> Member:
        """A new person, appended to the roster, stored with its audit entry."""
        if self.get(person.id) is not None:
            raise StaffIdTaken(person.id)
        self._rules().check(person, self)
        at = time.time() if at is None else at
        entry = AuditEntry(actor=actor, action="staff.add", subject=f"staff:{person.id}",
                           before=None, after=_describe(person), reason=reason, at=at)
        try:
            return await self._store(store, StaffRecord(person, True, changed_at=at), 0, entry)
        except StaffConflict:
            raise StaffIdTaken(person.id) from None  # added on another node meanwhile

    def _held(self, person_id: str, expect_version: int) -> Member:
        member = self.get(person_id)
        if member is None:
            raise KeyError(person_id)
        if member.version != expect_version:
            raise StaffConflict("staff_changed", f"{person_id} is at version {member.version}, "
                                f"not {expect_version}: someone changed them meanwhile; read "
                                "them again")
        if not member.active:
            raise StaffConflict("staff_retired", f"{person_id} is retired: off the roster")
        return member

    async def edit(self, store: StaffStore, person_id: str, expect_version: int, *,
                   actor: str, reason: str = "", at: float | None = None,
                   **changes: object) -> Member:
        """Change some of a person's fields (name, department, home_area, device_id,
        skills), at the version the caller read."""
        member = self._held(person_id, expect_version)
        unknown = set(changes) - {"name", "department", "home_area", "device_id", "skills"}
        if unknown:
            raise BadStaff("staff_invalid", f"no such field: {', '.join(sorted(unknown))}")
        person = msgspec.structs.replace(member.person, **changes)
        self._rules().check(person, self)
        at = time.time() if at is None else at
        entry = AuditEntry(actor=actor, action="staff.edit", subject=f"staff:{person_id}",
                           before=_describe(member.person), after=_describe(person),
                           reason=reason, at=at)
        return await self._store(store, StaffRecord(person, True, changed_at=at),
                                 expect_version, entry)

    async def retire(self, store: StaffStore, person_id: str, expect_version: int, *,
                     actor: str, reason: str = "", at: float | None = None) -> Member:
        """Off the roster: never offered work again; their cases and history stay theirs."""
        member = self._held(person_id, expect_version)
        at = time.time() if at is None else at
        entry = AuditEntry(actor=actor, action="staff.retire", subject=f"staff:{person_id}",
                           before=_describe(member.person), after="retired", reason=reason,
                           at=at)
        return await self._store(store, StaffRecord(member.person, False, changed_at=at),
                                 expect_version, entry)
