"""The store contract, run unchanged against every backend (see conftest.store_url)."""

from __future__ import annotations

import asyncio
import math

import msgspec
import pytest

from cityops.domain.city import Device
from cityops.store.base import DeadLetter, DuplicateKey, LatestRows, Store

from . import samples
from .conftest import OpenStore


def latest_dict(rows: LatestRows) -> dict[tuple[str, str], tuple[int, float]]:
    return {
        (d, c): (t, v) for d, c, t, v in zip(rows.device_id, rows.channel, rows.ts_us, rows.value)
    }


def one(device_id: str, channel: str, ts_us: int, value: float) -> LatestRows:
    return LatestRows([device_id], [channel], [ts_us], [value])


async def test_is_a_store(store: Store) -> None:
    assert isinstance(store, Store)
    assert store.queue_depth() == 0
    assert await store.get_meta("schema_version") == "1"


async def test_devices_keep_first_registration_order_and_update_in_place(store: Store) -> None:
    a, b, c, d, e = samples.devices(5)
    await store.upsert_devices([a, b, c])
    b2 = msgspec.structs.replace(b, name="moved", lat=b.lat + 0.01)
    await store.upsert_devices([b2, d])
    assert await store.load_devices() == [a, b2, c, d]

    # Inside one batch too: position of first sight, content of last sight.
    e2 = msgspec.structs.replace(e, name="second")
    a2 = msgspec.structs.replace(a, kind="rainfall", areas=None)
    await store.upsert_devices([e, a2, e2])
    assert await store.load_devices() == [a2, b2, c, d, e2]

    await store.upsert_devices([])
    assert len(await store.load_devices()) == 5


async def test_bulk_devices_round_trip(store: Store) -> None:
    devices = samples.devices(40_000)
    await store.upsert_devices(devices)
    assert await store.load_devices() == devices

    # Re-registering everything in reverse changes contents, never the order.
    renamed = [msgspec.structs.replace(dev, name=dev.name + "!") for dev in reversed(devices)]
    await store.upsert_devices(renamed)
    assert await store.load_devices() == renamed[::-1]


async def test_keys_add_find_list_revoke(store: Store) -> None:
    assert await store.list_keys() == []
    assert await store.find_key(samples.key(1).hash) is None
    first, second = samples.key(3), samples.key(1)
    third = samples.key(2, role="viewer", scope="310115")
    for record in (first, second, third):
        await store.add_key(record)

    assert await store.find_key(third.hash) == third
    assert await store.list_keys() == [first, second, third]

    assert await store.revoke_key(second.id) is True
    assert await store.revoke_key(second.id) is True  # revoking twice is harmless
    assert await store.revoke_key("k_missing") is False
    revoked = msgspec.structs.replace(second, revoked=True)
    assert await store.find_key(second.hash) == revoked  # still found: the caller checks it
    assert await store.list_keys() == [first, revoked, third]


async def test_key_hash_and_id_are_unique(store: Store) -> None:
    await store.add_key(samples.key(1))
    with pytest.raises(DuplicateKey):
        await store.add_key(samples.key(2, hash=samples.key(1).hash))
    with pytest.raises(DuplicateKey):
        await store.add_key(samples.key(1, hash="f" * 64))
    assert await store.list_keys() == [samples.key(1)]
    assert await store.find_key("f" * 64) is None


async def test_latest_newer_wins(store: Store) -> None:
    assert len(await store.load_latest()) == 0
    await store.save_latest(one("a", "level", 100, 1.0))
    await store.save_latest(one("a", "level", 50, 2.0))  # older: ignored
    await store.save_latest(one("a", "level", 100, 3.0))  # same ts: what is stored stays
    assert latest_dict(await store.load_latest()) == {("a", "level"): (100, 1.0)}

    await store.save_latest(one("a", "level", 200, 4.0))
    assert latest_dict(await store.load_latest()) == {("a", "level"): (200, 4.0)}

    # Several rows for one key in one batch: the newest wins, wherever it sits.
    await store.save_latest(
        LatestRows(["b", "b", "b", "a"], ["x", "x", "x", "level"], [10, 30, 20, 150], [1, 3, 2, 9])
    )
    assert latest_dict(await store.load_latest()) == {
        ("a", "level"): (200, 4.0),
        ("b", "x"): (30, 3.0),
    }
    await store.save_latest(LatestRows([], [], [], []))


async def test_latest_equal_ts_is_idempotent(store: Store) -> None:
    rows = LatestRows(["a", "b"], ["x", "x"], [5, 6], [0.5, 0.25])
    await store.save_latest(rows)
    before = latest_dict(await store.load_latest())
    await store.save_latest(rows)
    await store.save_latest(LatestRows(["a", "b"], ["x", "x"], [5, 6], [7.0, 8.0]))
    assert latest_dict(await store.load_latest()) == before


async def test_latest_order_and_odd_values(store: Store) -> None:
    # Order is by code point, whatever the database's locale would say.
    ids = ["b", "B", "a", "é", "中", "a-1", "a_1", "Z"]
    values = [math.inf, -math.inf, 0.1, -0.0, 1e300, 5e-324, 2.5, math.nan]
    await store.save_latest(LatestRows(ids, ["c"] * len(ids), list(range(len(ids))), values))
    loaded = await store.load_latest()
    assert loaded.device_id == sorted(ids)
    by_id = dict(zip(loaded.device_id, loaded.value))
    for device_id, value in zip(ids, values):
        if math.isnan(value):
            assert math.isnan(by_id[device_id])
        else:
            assert by_id[device_id] == value


async def test_dead_letters_newest_first_with_paging(store: Store) -> None:
    assert await store.count_dead_letters() == 0
    assert await store.list_dead_letters() == []
    sent = [samples.dead_letter(n) for n in range(250)]
    for batch in (sent[:1], sent[1:120], sent[120:]):
        await store.add_dead_letters(batch)
    await store.add_dead_letters([])
    assert await store.count_dead_letters() == 250

    newest = await store.list_dead_letters()
    assert len(newest) == 100
    assert [msgspec.structs.replace(d, id=0) for d in newest] == sent[::-1][:100]

    pages: list[list[DeadLetter]] = []
    before = None
    while page := await store.list_dead_letters(limit=70, before_id=before):
        pages.append(page)
        before = page[-1].id
    assert [len(p) for p in pages] == [70, 70, 70, 40]
    seen = [d for p in pages for d in p]
    ids = [d.id for d in seen]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 250 and min(ids) > 0
    assert [msgspec.structs.replace(d, id=0) for d in seen] == sent[::-1]
    assert await store.list_dead_letters(limit=5, before_id=min(ids)) == []


async def test_meta(store: Store) -> None:
    assert await store.get_meta("last_snapshot") is None
    await store.set_meta("last_snapshot", "1700000000.5")
    await store.set_meta("city", "浦东")
    await store.set_meta("last_snapshot", "1700000001.0")
    assert await store.get_meta("last_snapshot") == "1700000001.0"
    assert await store.get_meta("city") == "浦东"


async def test_reopen_keeps_everything(durable_store_url: str, open_stores: OpenStore) -> None:
    store_url = durable_store_url
    first = await open_stores(store_url)
    devices = samples.devices(300)
    await first.upsert_devices(devices)
    await first.add_key(samples.key(1))
    await first.revoke_key(samples.key(1).id)
    await first.add_key(samples.key(2))
    await first.save_latest(LatestRows(["a", "b"], ["x", "y"], [1, 2], [1.5, 2.5]))
    await first.add_dead_letters([samples.dead_letter(n) for n in range(3)])
    await first.set_meta("k", "v")
    await first.close()

    again = await open_stores(store_url)
    assert await again.load_devices() == devices
    assert [k.revoked for k in await again.list_keys()] == [True, False]
    assert latest_dict(await again.load_latest()) == {("a", "x"): (1, 1.5), ("b", "y"): (2, 2.5)}
    assert await again.count_dead_letters() == 3
    assert await again.get_meta("k") == "v"
    assert await again.get_meta("schema_version") == "1"
    # Ids keep counting after a reopen, so paging by id stays sound.
    old_ids = [d.id for d in await again.list_dead_letters()]
    await again.add_dead_letters([samples.dead_letter(9)])
    (newest,) = await again.list_dead_letters(limit=1)
    assert newest.where == samples.dead_letter(9).where
    assert newest.id > max(old_ids)


async def test_many_concurrent_writers_all_commit(store: Store) -> None:
    writers = 200
    devices = samples.devices(writers)
    await store.add_key(samples.key(0))

    async def writer(i: int) -> None:
        await store.set_meta(f"writer-{i}", str(i))
        await store.save_latest(one(f"dev-{i:03d}", "level", i, float(i)))
        await store.add_dead_letters([samples.dead_letter(i)])
        await store.upsert_devices([devices[i]])

    clash = store.add_key(samples.key(1, hash=samples.key(0).hash))
    results = await asyncio.gather(
        clash, *(writer(i) for i in range(writers)), return_exceptions=True
    )
    assert isinstance(results[0], DuplicateKey)
    assert results[1:] == [None] * writers  # one failing write spoils nothing else

    assert store.queue_depth() == 0
    for i in range(0, writers, 17):
        assert await store.get_meta(f"writer-{i}") == str(i)
    latest = latest_dict(await store.load_latest())
    assert latest == {(f"dev-{i:03d}", "level"): (i, float(i)) for i in range(writers)}
    assert await store.count_dead_letters() == writers
    assert sorted(d.id for d in await store.load_devices()) == sorted(d.id for d in devices)
    assert await store.list_keys() == [samples.key(0)]


async def test_load_devices_returns_device_structs(store: Store) -> None:
    device = Device(id="x", kind="noise", lat=1.0, lon=2.0)
    await store.upsert_devices([device])
    (loaded,) = await store.load_devices()
    assert type(loaded) is Device and loaded == device
