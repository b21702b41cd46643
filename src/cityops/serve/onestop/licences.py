"""The e-licence store: one record of kind "licence" per licence, owned by its holder, its
unique key `type:number` (a number is issued once per type), its status active or revoked.
Validity by date is worked out when read, on the city's calendar day."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import msgspec

from cityops.domain.onestop.licences import Licence
from cityops.store.base import DuplicateKey, Record, Store
from cityops.store.update import RecordDecision, update_record

KIND = "licence"
_decode = msgspec.json.Decoder(Licence).decode


class LicenceTaken(ValueError):
    """Another licence of the type already has this number (HTTP 409)."""


def record_of(lic: Licence, now: float, created: float | None = None) -> Record:
    return Record(kind=KIND, id=lic.id, doc=msgspec.json.encode(lic), owner=lic.holder,
                  status="revoked" if lic.revoked_at is not None else "active",
                  unique=f"{lic.type}:{lic.number}",
                  created=created if created is not None else now, updated=now)


class LicenceBook:
    def __init__(self, store: Store, now: Callable[[], float]) -> None:
        self.store = store
        self.now = now

    async def get(self, licence_id: str) -> Licence | None:
        rec = await self.store.get_record(KIND, licence_id)
        return None if rec is None else _decode(rec.doc)

    async def issue(self, lic: Licence) -> tuple[Licence, bool]:
        """Put a new licence in the store; (the one held, False) when this id is there already
        (a retried issue). Raises LicenceTaken when another licence holds the number."""
        try:
            await self.store.put_record(record_of(lic, self.now()))
            return lic, True
        except DuplicateKey:
            held = await self.get(lic.id)
            if held is not None:
                return held, False
            raise LicenceTaken(f"a {lic.type} numbered {lic.number} already exists") from None

    async def revoke(self, licence_id: str, reason: str) -> Licence | None:
        def step(rec: Record | None) -> RecordDecision[Licence | None]:
            if rec is None:
                return None, None
            lic = _decode(rec.doc)
            if lic.revoked_at is not None:
                return None, lic
            lic = msgspec.structs.replace(lic, revoked_at=self.now(), revoked_reason=reason)
            return record_of(lic, self.now(), rec.created), lic

        # Gives up with UpdateGaveUp, a StaleVersion: answered 409, to be tried again.
        return await update_record(self.store, KIND, licence_id, step, tries=5)

    async def of_holder(self, holder: str, limit: int = 1000) -> list[Licence]:
        return [_decode(r.doc) for r in
                await self.store.find_records(KIND, owner=holder, limit=limit)]

    async def page(self, *, holder: str | None = None, limit: int = 100,
                   before: tuple[float, str] | None = None) -> list[Record]:
        return await self.store.find_records(KIND, owner=holder, limit=limit, before=before)

    async def every(self, types: set[str], page: int = 2000) -> AsyncIterator[Licence]:
        """Every active licence of these types, for a batch."""
        before: tuple[float, str] | None = None
        while True:
            recs = await self.store.find_records(KIND, status="active", limit=page,
                                                 before=before)
            for r in recs:
                lic = _decode(r.doc)
                if lic.type in types:
                    yield lic
            if len(recs) < page:
                return
            before = (recs[-1].created, recs[-1].id)
