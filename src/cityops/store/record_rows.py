"""Records: small versioned documents of the serve side (hotline orders, applications,
licences, reviews, cabinet compartments ...), one generic table instead of a table each.

A record is a JSON document with the few columns it is looked up by: its `owner` (a citizen,
a department), its `status`, the `due` time a scheduler waits for, and an optional `unique`
key that the store keeps unique within the kind (a benefit granted once per citizen and policy,
one review per rated thing). Saves are version-checked like incidents.
"""

from __future__ import annotations

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
