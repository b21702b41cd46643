"""The roster's changes (StaffStore) on memory, SQLite and PostgreSQL: added and edited at the
version last read (a stale version is refused and changes nothing), retired without being
deleted, each change landing with its audit entry or not at all, and kept across a reopen in
the order people were first stored."""

from __future__ import annotations

import msgspec
import pytest

from cityops.domain.city import Staff
from cityops.store.base import StaffRecord, StaleVersion, Store
from tests.store import samples
from tests.store.conftest import OpenStore

ANN = Staff("san-9", "Ann \u5f20", "sanitation", "gps-9", "310115001001", ["sweeping"])
BO = Staff("pol-3", "Bo", "police", "gps-3", "310115002")


def entry(n: int, person: Staff = ANN, **changes: object):
    fields: dict[str, object] = {"action": "staff.edit", "subject": f"staff:{person.id}",
                                 **changes}
    return samples.audit(n, **fields)


def record(person: Staff, active: bool = True, at: float = 1_700_000_000.5) -> StaffRecord:
    return StaffRecord(person, active, changed_at=at)


async def test_people_are_added_edited_and_retired_at_their_version(store: Store) -> None:
    assert await store.load_staff() == []
    first = await store.put_staff(record(ANN), entry(1), expect_version=0)
    assert first == StaffRecord(ANN, True, 1, 1_700_000_000.5)
    await store.put_staff(record(BO), entry(2, BO), expect_version=0)
    moved = msgspec.structs.replace(ANN, department="police", skills=[])
    second = await store.put_staff(record(moved, at=1_700_000_100.0), entry(3),
                                   expect_version=1)
    assert second.version == 2
    retired = await store.put_staff(record(moved, active=False), entry(4), expect_version=2)
    assert retired.version == 3 and not retired.active
    # Still there (never deleted), in the order first stored, whole.
    assert await store.load_staff() == [
        StaffRecord(moved, False, 3, 1_700_000_000.5), StaffRecord(BO, True, 1, 1_700_000_000.5)]
    assert [e.reason for e in await store.list_audit(subject="staff:san-9")] == [
        entry(n).reason for n in (4, 3, 1)]


async def test_a_stale_version_is_refused_and_changes_nothing(store: Store) -> None:
    await store.put_staff(record(ANN), entry(1), expect_version=0)
    before = await store.list_audit()
    renamed = msgspec.structs.replace(ANN, name="Someone else")
    with pytest.raises(StaleVersion):
        await store.put_staff(record(renamed), entry(2), expect_version=0)  # added twice
    with pytest.raises(StaleVersion):
        await store.put_staff(record(renamed), entry(3), expect_version=7)
    with pytest.raises(StaleVersion):
        await store.put_staff(record(BO), entry(4, BO), expect_version=1)  # nothing stored
    assert await store.load_staff() == [StaffRecord(ANN, True, 1, 1_700_000_000.5)]
    assert await store.list_audit() == before


async def test_a_change_is_not_stored_when_its_audit_entry_fails(store: Store) -> None:
    with pytest.raises(ValueError):
        await store.put_staff(record(ANN), entry(1, actor=""), expect_version=0)
    assert await store.load_staff() == []
    await store.put_staff(record(ANN), entry(2), expect_version=0)
    with pytest.raises(ValueError):
        await store.put_staff(record(ANN, active=False), entry(3, action=""), expect_version=1)
    assert [r.version for r in await store.load_staff()] == [1]


async def test_the_roster_is_kept_across_a_reopen(durable_store_url: str,
                                                  open_stores: OpenStore) -> None:
    first = await open_stores(durable_store_url)
    await first.put_staff(record(BO), entry(1, BO), expect_version=0)
    await first.put_staff(record(ANN), entry(2), expect_version=0)
    await first.put_staff(record(BO, active=False), entry(3, BO), expect_version=1)
    await first.close()
    again = await open_stores(durable_store_url)
    assert await again.load_staff() == [StaffRecord(BO, False, 2, 1_700_000_000.5),
                                        StaffRecord(ANN, True, 1, 1_700_000_000.5)]
    with pytest.raises(StaleVersion):
        await again.put_staff(record(ANN), entry(4), expect_version=0)
