"""Records: small versioned documents of the serve side (hotline orders, applications,
licences, reviews, cabinet compartments ...), one generic table instead of a table each.

A record is a JSON document with the few columns it is looked up by: its `owner` (a citizen,
a department), its `status`, the `due` time a scheduler waits for, and an optional `unique`
key that the store keeps unique within the kind (a benefit granted once per citizen and policy,
one review per rated thing). Saves are version-checked like incidents.
"""

from __future__ import annotations

from typing import Protocol

import msgspec


class Record(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    id: str
    doc: bytes  # JSON of the caller's own type
    owner: str = ""
    status: str = ""
    due: float | None = None
    unique: str | None = None
    created: float = 0.0
    updated: float = 0.0
    version: int = 0


def check_record(rec: Record) -> None:
    if not rec.kind or not rec.id:
        raise ValueError(f"a record needs a kind and an id: {rec.kind!r}/{rec.id!r}")


class RecordSealer(Protocol):
    """Encrypts the personal data in a record's document on its way into the store and opens
    it on the way out (`cityops.serve.pii.Pii`)."""

    def seal_record(self, rec: Record) -> Record: ...

    def open_record(self, rec: Record) -> Record: ...


class Sealing:
    """Mixed into each store's records: with a `sealer` set, documents are stored as it seals
    them and read back opened, so callers only ever see clear documents; without one (a store
    opened by a command that needs no records) they pass as they are."""

    sealer: RecordSealer | None = None

    def _sealed(self, rec: Record) -> Record:
        return rec if self.sealer is None else self.sealer.seal_record(rec)

    def _opened(self, rec: Record) -> Record:
        return rec if self.sealer is None else self.sealer.open_record(rec)
