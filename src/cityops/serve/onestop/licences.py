"""The e-licence store: one record of kind "licence" per licence, owned by its holder, its
unique key `type:number` (a number is issued once per type), its status active or revoked.
Validity by date is worked out when read, on the city's calendar day.

Each licence has a verification code (`domain/onestop/verification.py`), random, kept in the
licence's document so that every print shows the same one. A second, small record of kind
"licence_code" finds the licence by the code: its id is the code's SHA-256, its document the
licence's id. It is written before the licence, so a crash between the two leaves at most an
index entry whose licence holds another code (or none), which `by_code` answers as not found;
never a licence that its printed code does not find. It names no owner: a citizen's data
erasure unlinks the licence from the person and leaves nothing of theirs here.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import AsyncIterator, Callable

import msgspec

from cityops.domain.onestop import verification
from cityops.domain.onestop.licences import Licence
from cityops.store.base import DuplicateKey, Record, Store
from cityops.store.update import RecordDecision, update_record

KIND = "licence"
CODE_KIND = "licence_code"
_decode = msgspec.json.Decoder(Licence).decode


class CodeEntry(msgspec.Struct, frozen=True):
    licence: str


class LicenceTaken(ValueError):
    """Another licence of the type already has this number (HTTP 409)."""


class LicenceGone(LookupError):
    """The licence was removed while it was being given a code (HTTP 404)."""


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
        """Put a new licence in the store, with a verification code of its own; (the one held,
        False) when this id is there already (a retried issue). Raises LicenceTaken when
        another licence holds the number."""
        code = await self._new_code_entry(lic.id)
        lic = msgspec.structs.replace(lic, verify_code=code)
        try:
            await self.store.put_record(record_of(lic, self.now()))
            return lic, True
        except DuplicateKey:
            await self._drop_code_entry(code)
            held = await self.get(lic.id)
            if held is not None:
                return held, False
            raise LicenceTaken(f"a {lic.type} numbered {lic.number} already exists") from None

    # -- verification codes

    async def _new_code_entry(self, licence_id: str) -> str:
        for _ in range(4):  # 95 random bits: a clash is not expected even once
            code = verification.new_code(secrets.token_bytes(verification.ENTROPY_BYTES))
            entry = Record(kind=CODE_KIND, id=verification.lookup_key(code),
                           doc=msgspec.json.encode(CodeEntry(licence_id)),
                           created=self.now(), updated=self.now())
            try:
                await self.store.put_record(entry)
                return code
            except DuplicateKey:
                continue
        raise RuntimeError("no free licence verification code after 4 tries")

    async def _drop_code_entry(self, code: str) -> None:
        await self.store.delete_record(CODE_KIND, verification.lookup_key(code))

    async def with_code(self, lic: Licence) -> Licence:
        """The licence with its verification code: a licence stored before codes were given
        gets one now (once: two prints at once end up with the same code)."""
        if lic.verify_code:
            return lic
        code = await self._new_code_entry(lic.id)

        def step(rec: Record | None) -> RecordDecision[Licence | None]:
            if rec is None:
                return None, None
            held = _decode(rec.doc)
            if held.verify_code:
                return None, held
            held = msgspec.structs.replace(held, verify_code=code)
            return record_of(held, self.now(), rec.created), held

        held = await update_record(self.store, KIND, lic.id, step, tries=5)
        if held is None or held.verify_code != code:
            await self._drop_code_entry(code)
        if held is None:
            raise LicenceGone(f"licence {lic.id} is no longer in the store")
        return held

    async def by_code(self, code: str) -> Licence | None:
        """The licence whose verification code is `code` (canonical), or None. The index
        entry only says where to look; the licence's own code is what is compared, in
        constant time."""
        entry = await self.store.get_record(CODE_KIND, verification.lookup_key(code))
        if entry is None:
            return None
        lic = await self.get(msgspec.json.decode(entry.doc, type=CodeEntry).licence)
        if lic is None or not hmac.compare_digest(lic.verify_code.encode(), code.encode()):
            return None
        return lic

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
