"""Where a citizen's senior-care things are: the homes whose lists they joined and the
caregiver days they booked, one small record per citizen ("care_mine").

The homes and days are the truth (each one version-checked record); this only points at them,
so a citizen's view reads their own few records instead of every home's. A pointer is added
before the thing it points at is written: a crash between the two leaves a pointer to nothing
of theirs, which the view skips, never a booking the citizen cannot find."""

from __future__ import annotations

import msgspec

from cityops.store.base import Record, Store
from cityops.store.update import RecordDecision, update_record

KIND = "care_mine"
KEPT = 200  # pointers of each sort a citizen keeps, newest first


class Mine(msgspec.Struct, kw_only=True):
    homes: list[str] = []
    days: list[str] = []


async def read(store: Store, citizen: str) -> Mine:
    rec = await store.get_record(KIND, citizen)
    return Mine() if rec is None else msgspec.json.decode(rec.doc, type=Mine)


async def point(store: Store, citizen: str, now: float, *, home: str | None = None,
                day: str | None = None) -> None:
    def step(rec: Record | None) -> RecordDecision[None]:
        mine = Mine() if rec is None else msgspec.json.decode(rec.doc, type=Mine)
        homes = mine.homes if home is None else [home, *(h for h in mine.homes if h != home)]
        days = mine.days if day is None else [day, *(d for d in mine.days if d != day)]
        if homes == mine.homes and days == mine.days:
            return None, None
        doc = Mine(homes=homes[:KEPT], days=days[:KEPT])
        return Record(kind=KIND, id=citizen, doc=msgspec.json.encode(doc), owner=citizen,
                      created=rec.created if rec else now, updated=now), None

    await update_record(store, KIND, citizen, step)
