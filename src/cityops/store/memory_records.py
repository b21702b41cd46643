"""Records in memory: the twin of the SQL stores' `records` table."""

from __future__ import annotations

import msgspec

from cityops.store.base import DuplicateKey
from cityops.store.incident_rows import StaleVersion
from cityops.store.record_rows import Record, Sealing, check_record


class MemoryRecords(Sealing):
    def __init__(self) -> None:
        self._records: dict[tuple[str, str], Record] = {}
        self._unique: dict[tuple[str, str], str] = {}

    async def put_record(self, rec: Record, *, expect_version: int | None = None) -> Record:
        check_record(rec)
        key = (rec.kind, rec.id)
        stored = self._records.get(key)
        if expect_version is None:
            if stored is not None:
                raise DuplicateKey(f"{rec.kind} {rec.id} exists")
        elif stored is None or stored.version != expect_version:
            raise StaleVersion(f"{rec.kind} {rec.id} was changed by someone else; read it again")
        if rec.unique is not None:
            holder = self._unique.get((rec.kind, rec.unique))
            if holder is not None and holder != rec.id:
                raise DuplicateKey(f"{rec.kind} with unique key {rec.unique!r} exists")
        if stored is not None and stored.unique is not None and stored.unique != rec.unique:
            self._unique.pop((rec.kind, stored.unique), None)
        saved = msgspec.structs.replace(rec, version=(expect_version or 0) + 1,
                                        doc=bytes(rec.doc))
        # Kept as the SQL stores keep it, so the twin opens what it reads as they do.
        self._records[key] = msgspec.structs.replace(saved, doc=bytes(self._sealed(rec).doc))
        if rec.unique is not None:
            self._unique[(rec.kind, rec.unique)] = rec.id
        return saved

    async def get_record(self, kind: str, record_id: str) -> Record | None:
        rec = self._records.get((kind, record_id))
        return None if rec is None else self._opened(rec)

    async def delete_record(self, kind: str, record_id: str, *,
                            expect_version: int | None = None) -> bool:
        rec = self._records.get((kind, record_id))
        if rec is None or (expect_version is not None and rec.version != expect_version):
            return False
        del self._records[(kind, record_id)]
        if rec.unique is not None:
            self._unique.pop((kind, rec.unique), None)
        return True

    async def find_records(
        self, kind: str, *, owner: str | None = None, status: str | None = None,
        due_before: float | None = None, unique: str | None = None, limit: int = 100,
        before: tuple[float, str] | None = None,
    ) -> list[Record]:
        found = [
            r for (k, _), r in self._records.items()
            if k == kind and (owner is None or r.owner == owner)
            and (status is None or r.status == status)
            and (due_before is None or (r.due is not None and r.due <= due_before))
            and (unique is None or r.unique == unique)
            and (before is None or (r.created, r.id) < before)
        ]
        if due_before is not None:
            found.sort(key=lambda r: (r.due, r.id))
        else:
            found.sort(key=lambda r: (r.created, r.id), reverse=True)
        return [self._opened(r) for r in found[: max(0, limit)]]
