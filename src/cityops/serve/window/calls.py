"""Which video calls a citizen made, one small record per citizen ("window_calls"): the ids
of their calls, newest first.

A call itself lives in the node's memory while it rings and talks, and what is kept of it is
its entries in the audit trail (subject `window_call:<id>`: started, accepted, the form's
fields answered, ended and how long it took). The trail is by call, not by person, so this is
what lets a citizen's export find their calls without reading the whole trail; it is written
before the call's first audit entry, so no call of theirs is missing from it."""

from __future__ import annotations

import msgspec

from cityops.store.base import Record, Store
from cityops.store.update import RecordDecision, update_record

KIND = "window_calls"
KEPT = 500  # calls a citizen's record points at, newest first


class Calls(msgspec.Struct, kw_only=True):
    calls: list[str] = []


async def read(store: Store, citizen: str) -> list[str]:
    rec = await store.get_record(KIND, citizen)
    return [] if rec is None else msgspec.json.decode(rec.doc, type=Calls).calls


async def note(store: Store, citizen: str, call_id: str, now: float) -> None:
    def step(rec: Record | None) -> RecordDecision[None]:
        held = Calls() if rec is None else msgspec.json.decode(rec.doc, type=Calls)
        if call_id in held.calls:
            return None, None
        doc = Calls(calls=[call_id, *held.calls][:KEPT])
        return Record(kind=KIND, id=citizen, doc=msgspec.json.encode(doc), owner=citizen,
                      created=rec.created if rec else now, updated=now), None

    await update_record(store, KIND, citizen, step)
