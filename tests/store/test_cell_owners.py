"""Grid-cell owners (CellOwnerStore) on memory, SQLite and PostgreSQL: set, dropped and kept
across a reopen, each change landing with its audit entry or not at all."""

from __future__ import annotations

import pytest

from cityops.store.base import Store
from tests.store import samples
from tests.store.conftest import OpenStore

A, B = "89309b94dd7ffff", "89309b94dcbffff"


def entry(n: int, cell: str = A, **changes: object):
    fields: dict[str, object] = {"action": "cell.owner", "subject": f"cell:{cell}", **changes}
    return samples.audit(n, **fields)


async def test_owners_are_set_replaced_and_dropped(store: Store) -> None:
    assert await store.load_cell_owners() == {}
    await store.set_cell_owner(B, "transport", entry(1, B))
    await store.set_cell_owner(A, "sanitation", entry(2))
    await store.set_cell_owner(A, "", entry(3))  # its village station, said explicitly
    assert await store.load_cell_owners() == {B: "transport", A: ""}
    assert list(await store.load_cell_owners()) == sorted([A, B])
    await store.set_cell_owner(A, None, entry(4))  # back to the pack's owner
    await store.set_cell_owner(A, None, entry(5))  # dropping nothing is fine
    assert await store.load_cell_owners() == {B: "transport"}
    assert [e.action for e in await store.list_audit(subject=f"cell:{A}")] == ["cell.owner"] * 4


async def test_an_owner_is_not_changed_when_its_audit_entry_fails(store: Store) -> None:
    await store.set_cell_owner(A, "sanitation", entry(1))
    before = await store.list_audit()
    with pytest.raises(ValueError):
        await store.set_cell_owner(A, "police", entry(2, actor=""))
    with pytest.raises(ValueError):
        await store.set_cell_owner(A, None, entry(3, action=""))
    assert await store.load_cell_owners() == {A: "sanitation"}
    assert await store.list_audit() == before


async def test_owners_are_kept_across_a_reopen(durable_store_url: str,
                                               open_stores: OpenStore) -> None:
    first = await open_stores(durable_store_url)
    await first.set_cell_owner(A, "water_affairs", entry(1))
    await first.close()
    again = await open_stores(durable_store_url)
    assert await again.load_cell_owners() == {A: "water_affairs"}
