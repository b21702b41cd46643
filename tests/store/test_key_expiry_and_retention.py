"""Key expiry and dead-letter retention in every store, and old databases kept readable."""

from __future__ import annotations

import msgspec
import pytest

from cityops.store.base import Store
from cityops.store.schema import SCHEMA_VERSION

from . import samples
from .conftest import OpenStore
from .test_contract import run_sql


async def test_expiry_round_trips_and_can_be_set_later(store: Store) -> None:
    lasting = samples.key(1)
    dated = samples.key(2, expires_at=1_800_000_000.5)
    for record in (lasting, dated):
        await store.add_key(record)
    assert await store.find_key(dated.hash) == dated
    assert (await store.find_key(lasting.hash)).expires_at is None

    assert await store.set_key_expiry(lasting.id, 1_700_000_100.0) is True
    assert await store.set_key_expiry(dated.id, None) is True
    assert await store.set_key_expiry("k_missing", 1.0) is False
    assert await store.list_keys() == [
        msgspec.structs.replace(lasting, expires_at=1_700_000_100.0),
        msgspec.structs.replace(dated, expires_at=None),
    ]


def test_a_key_is_active_until_it_expires_or_is_revoked() -> None:
    dated = samples.key(1, expires_at=100.0)
    assert dated.active_at(99.9) and not dated.active_at(100.0)
    assert samples.key(2).active_at(1e12)
    assert not samples.key(3, revoked=True).active_at(0.0)


async def test_retention_deletes_old_letters_in_pieces(store: Store) -> None:
    letters = [samples.dead_letter(n) for n in range(30)]  # received 0.1 s apart
    await store.add_dead_letters(letters)
    cutoff = letters[20].received_at
    assert await store.delete_dead_letters(cutoff, limit=8) == 8
    assert await store.delete_dead_letters(cutoff, limit=8) == 8
    assert await store.delete_dead_letters(cutoff, limit=8) == 4
    assert await store.delete_dead_letters(cutoff, limit=8) == 0
    assert await store.count_dead_letters() == 10
    kept = await store.list_dead_letters()
    assert [d.where for d in kept] == [d.where for d in letters[20:]][::-1]
    # Paging still works across the gap the sweep left, and new ids keep growing.
    page = await store.list_dead_letters(limit=3, before_id=kept[4].id)
    assert [d.id for d in page] == [d.id for d in kept[5:8]]
    await store.add_dead_letters([samples.dead_letter(99)])
    (newest,) = await store.list_dead_letters(limit=1)
    assert newest.id > kept[0].id


async def test_a_version_5_store_gets_key_expiry(
    durable_store_url: str, open_stores: OpenStore
) -> None:
    first = await open_stores(durable_store_url)
    await first.add_key(samples.key(1))
    await first.revoke_key(samples.key(1).id)
    await first.add_key(samples.key(2))
    await first.close()
    # What a store made by CityOps with schema version 5 looks like: no expiry column.
    run_sql(durable_store_url, ["ALTER TABLE api_keys DROP COLUMN expires_at",
                                "UPDATE meta SET value = '5' WHERE key = 'schema_version'"])

    again = await open_stores(durable_store_url)
    assert await again.get_meta("schema_version") == str(SCHEMA_VERSION)
    assert await again.list_keys() == [samples.key(1, revoked=True), samples.key(2)]
    assert await again.set_key_expiry(samples.key(2).id, 1_800_000_000.0)
    assert (await again.find_key(samples.key(2).hash)).expires_at == 1_800_000_000.0


@pytest.mark.parametrize("version", ["1", "4"])
async def test_older_versions_that_already_have_the_column_open(
    version: str, durable_store_url: str, open_stores: OpenStore
) -> None:
    """A migration step must be safe to meet a column that is already there."""
    first = await open_stores(durable_store_url)
    await first.add_key(samples.key(1, expires_at=5.0))
    await first.close()
    run_sql(durable_store_url, [f"UPDATE meta SET value = '{version}' WHERE key = "
                                "'schema_version'"])
    again = await open_stores(durable_store_url)
    assert await again.list_keys() == [samples.key(1, expires_at=5.0)]
