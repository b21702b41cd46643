"""The citizen registry: one record of kind "citizen" per person, its id the citizen's account
id (a citizen key's name), its unique key the keyed hash of the resident ID number
(`Pii.lookup`), so one person cannot be registered twice under two accounts while the store
never holds the number itself. The phone and ID number in the record's document are sealed at
rest by the store's sealer (`cityops.serve.pii`); `get` returns them clear.

Other parts of the serve side (hotline orders, reviews, cabinets, eligibility) read citizens
through `get`; what they show of them to staff goes through `citizens.masked`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import msgspec

from cityops.domain.citizens import Citizen
from cityops.serve.pii import Pii
from cityops.store.base import DuplicateKey, Record, Store
from cityops.store.update import RecordDecision, UpdateGaveUp, update_record

KIND = "citizen"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ()-]{2,24}$")
_ID_NUMBER = re.compile(r"^(\d{17}[\dXx]|\d{15})$")


class Invalid(ValueError):
    """What the caller sent cannot be a citizen (HTTP 400)."""


class Taken(ValueError):
    """The ID number belongs to another account (HTTP 409)."""


def check(citizen: Citizen) -> None:
    if not _ID.match(citizen.id):
        raise Invalid(f"citizen id {citizen.id!r} must be 1-64 letters, digits, '.', '_', ':' "
                      "or '-'")
    if not citizen.name.strip():
        raise Invalid("a citizen needs a name")
    if citizen.phone and not _PHONE.match(citizen.phone):
        raise Invalid("phone is not a phone number (digits, an optional +, spaces, dashes)")
    if citizen.id_number and not _ID_NUMBER.match(citizen.id_number):
        raise Invalid("id_number is not a resident ID number (18 characters or 15 digits)")
    if citizen.area and (not citizen.area.isdigit() or len(citizen.area) not in (6, 9, 12)):
        raise Invalid(f"area {citizen.area!r} is not an area code (6, 9 or 12 digits)")


class CitizenRegistry:
    def __init__(self, store: Store, pii: Pii, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.pii = pii
        self.clock = clock

    async def get(self, citizen_id: str) -> Citizen | None:
        rec = await self.store.get_record(KIND, citizen_id)
        return None if rec is None else msgspec.json.decode(rec.doc, type=Citizen)

    async def register(self, citizen: Citizen) -> tuple[Citizen, bool]:
        """Create the citizen, or replace what is held about them; True when created."""
        check(citizen)
        now = self.clock()
        def step(held: Record | None) -> RecordDecision[bool]:
            rec = Record(kind=KIND, id=citizen.id, doc=msgspec.json.encode(citizen),
                         owner=citizen.id, status="active",
                         unique=self.pii.lookup(citizen.id_number) if citizen.id_number else None,
                         created=held.created if held else now, updated=now)
            return rec, held is None

        # Registered meanwhile by a concurrent call is a clash: that record is updated instead.
        try:
            created = await update_record(self.store, KIND, citizen.id, step, tries=5)
        except DuplicateKey:
            raise Taken("this ID number is registered to another citizen account") from None
        except UpdateGaveUp:
            raise Taken(f"citizen {citizen.id} kept changing while it was being saved; "
                        "try again") from None
        return citizen, created

    async def by_id_number(self, id_number: str) -> Citizen | None:
        """The citizen registered with this ID number, found by its keyed hash."""
        found = await self.store.find_records(KIND, unique=self.pii.lookup(id_number), limit=1)
        return msgspec.json.decode(found[0].doc, type=Citizen) if found else None
