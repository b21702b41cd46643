"""Records of one kind, named by a content digest and owned by whoever first kept them (photos
uploaded by a field person or a citizen). Kept once: the same thing sent twice at once leaves
one record, its first owner's."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Generic, TypeVar

import msgspec

from cityops.store.protocols import RecordStore
from cityops.store.record_rows import Record
from cityops.store.values import DuplicateKey

T = TypeVar("T")


class OwnedRecords(Generic[T]):
    kind: str
    doc_type: type[T]
    name: re.Pattern[str] | None = None  # names that cannot be one are not looked up

    def __init__(self, store: RecordStore, now: Callable[[], float]) -> None:
        self.store = store
        self.now = now

    async def get(self, name: str) -> tuple[str, T] | None:
        """The owner and the record's document."""
        if self.name is not None and not self.name.match(name):
            return None
        rec = await self.store.get_record(self.kind, name)
        if rec is None:
            return None
        return rec.owner, msgspec.json.decode(rec.doc, type=self.doc_type)

    async def keep(self, owner: str, name: str, doc: T) -> None:
        now = self.now()
        try:
            await self.store.put_record(Record(kind=self.kind, id=name, owner=owner,
                                               doc=msgspec.json.encode(doc), created=now,
                                               updated=now))
        except DuplicateKey:
            pass  # sent twice at once: the first keeps it
