"""Records, the serve side's documents: the same contract on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import msgspec
import pytest

from cityops.store.base import DuplicateKey, Record, StaleVersion, Store


def rec(n: int, **kw) -> Record:
    fields = {"kind": "order", "id": f"o{n}", "doc": b'{"n":%d}' % n, "owner": "c1",
              "status": "open", "created": float(n), "updated": float(n)}
    fields.update(kw)
    return Record(**fields)


async def test_create_read_update_with_versions(store: Store) -> None:
    saved = await store.put_record(rec(1))
    assert saved.version == 1
    got = await store.get_record("order", "o1")
    assert got == saved and got.doc == b'{"n":1}'
    assert await store.get_record("order", "o2") is None
    assert await store.get_record("application", "o1") is None  # kinds are separate
    with pytest.raises(DuplicateKey):
        await store.put_record(rec(1))
    changed = msgspec.structs.replace(saved, status="closed", doc=b'{"n":9}')
    again = await store.put_record(changed, expect_version=1)
    assert again.version == 2
    with pytest.raises(StaleVersion):
        await store.put_record(changed, expect_version=1)
    assert (await store.get_record("order", "o1")).status == "closed"
    with pytest.raises(ValueError):
        await store.put_record(rec(5, id=""))


async def test_unique_keys_within_a_kind(store: Store) -> None:
    await store.put_record(rec(1, unique="citizen-1:policy-a"))
    with pytest.raises(DuplicateKey):  # a benefit is granted once
        await store.put_record(rec(2, unique="citizen-1:policy-a"))
    assert await store.get_record("order", "o2") is None
    await store.put_record(rec(3, kind="other", unique="citizen-1:policy-a"))
    found = await store.find_records("order", unique="citizen-1:policy-a")
    assert [r.id for r in found] == ["o1"]


async def test_find_by_owner_status_due_and_pages(store: Store) -> None:
    for n in range(1, 7):
        await store.put_record(rec(n, owner="c1" if n % 2 else "c2",
                                   status="open" if n < 5 else "closed",
                                   due=100.0 - n if n % 3 else None))
    ids = lambda rs: [r.id for r in rs]  # noqa: E731
    assert ids(await store.find_records("order")) == ["o6", "o5", "o4", "o3", "o2", "o1"]
    assert ids(await store.find_records("order", owner="c1")) == ["o5", "o3", "o1"]
    assert ids(await store.find_records("order", owner="c2", status="open")) == ["o4", "o2"]
    assert ids(await store.find_records("order", due_before=98.0)) == ["o5", "o4", "o2"]
    page = await store.find_records("order", limit=2)
    rest = await store.find_records("order", before=(page[-1].created, page[-1].id))
    assert ids(page + rest) == ["o6", "o5", "o4", "o3", "o2", "o1"]
