"""The roster's stored rows (`StaffStore`): a field person an administrator added or changed,
kept over the city pack's staff by id. The person travels as JSON, as the pack writes them;
`version` counts the person's stored changes (0: nothing stored, the pack's own), so an edit
made from a stale form is refused instead of silently undoing another's."""

from __future__ import annotations

import msgspec

from cityops.domain.city import Staff
from cityops.store.incident_rows import StaleVersion


class StaffRecord(msgspec.Struct, frozen=True):
    person: Staff
    active: bool = True  # False: retired, off the roster; never deleted, their history stays
    version: int = 0
    changed_at: float = 0.0


encode_person = msgspec.json.Encoder().encode
decode_person = msgspec.json.Decoder(Staff).decode


def saved(record: StaffRecord, expect_version: int) -> StaffRecord:
    """The record as stored after a write made at `expect_version`."""
    if expect_version < 0:
        raise ValueError(f"expect_version {expect_version} is below 0")
    return msgspec.structs.replace(record, version=expect_version + 1)


def stale(person_id: str, expect_version: int) -> StaleVersion:
    held = "no stored change" if expect_version == 0 else f"version {expect_version}"
    return StaleVersion(f"staff {person_id} is no longer at {held}: someone changed them "
                        "meanwhile; read them again")


def row(record: StaffRecord) -> tuple[str, int, bool, float, str]:
    return (record.person.id, record.version, record.active, record.changed_at,
            encode_person(record.person).decode())


def from_row(version: int, active: bool | int, changed_at: float, doc: str) -> StaffRecord:
    return StaffRecord(decode_person(doc), bool(active), int(version), float(changed_at))
