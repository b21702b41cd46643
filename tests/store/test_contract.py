"""The store contract, run unchanged against every backend (see conftest.store_url)."""

from __future__ import annotations

import asyncio
import inspect
import math
import re
import sqlite3
from contextlib import closing

import msgspec
import psycopg
import pytest

from cityops.domain.alerts import Alert
from cityops.domain.city import AreaCodes, Device
from cityops.domain.lifecycle import Lifecycle
from cityops.store.base import AuditEntry, DeadLetter, DuplicateKey, LatestRows, Record, Store
from cityops.store.postgres import split_url
from cityops.store.schema import SCHEMA_VERSION
from cityops.store.sqlite import sqlite_path

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
    assert await store.get_meta("schema_version") == str(SCHEMA_VERSION)


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
    alerts = [samples.alert(n) for n in range(40)]
    await first.upsert_alerts(alerts)
    await first.set_area_state("310115", "emergency", samples.audit(1))
    await first.append_audit([samples.audit(2), samples.audit(3)])
    await first.close()

    again = await open_stores(store_url)
    assert await again.load_devices() == devices
    assert [k.revoked for k in await again.list_keys()] == [True, False]
    assert latest_dict(await again.load_latest()) == {("a", "x"): (1, 1.5), ("b", "y"): (2, 2.5)}
    assert await again.count_dead_letters() == 3
    assert await again.get_meta("k") == "v"
    assert await again.get_meta("schema_version") == str(SCHEMA_VERSION)
    # Ids keep counting after a reopen, so paging by id stays sound.
    old_ids = [d.id for d in await again.list_dead_letters()]
    await again.add_dead_letters([samples.dead_letter(9)])
    (newest,) = await again.list_dead_letters(limit=1)
    assert newest.where == samples.dead_letter(9).where
    assert newest.id > max(old_ids)

    assert await again.list_alerts(limit=100) == expected_alerts(alerts)
    assert await again.get_alert(alerts[7].id) == alerts[7]
    assert await again.list_alerts(area="310116", active=True) == expected_alerts(
        alerts, area="310116", active=True
    )
    assert await again.load_area_states() == {"310115": "emergency"}
    audit = await again.list_audit()
    assert [msgspec.structs.replace(e, id=0) for e in audit] == [
        samples.audit(3),
        samples.audit(2),
        samples.audit(1),
    ]
    await again.append_audit([samples.audit(4)])
    (latest,) = await again.list_audit(limit=1)
    assert latest.reason == samples.audit(4).reason and latest.id > audit[0].id


async def test_many_concurrent_writers_all_commit(store: Store) -> None:
    writers = 200
    devices = samples.devices(writers)
    await store.add_key(samples.key(0))

    async def writer(i: int) -> None:
        await store.set_meta(f"writer-{i}", str(i))
        await store.save_latest(one(f"dev-{i:03d}", "level", i, float(i)))
        await store.add_dead_letters([samples.dead_letter(i)])
        await store.upsert_devices([devices[i]])
        await store.upsert_alerts([samples.alert(i), samples.alert(i + writers)])
        await store.set_area_state(f"310115{i:03d}", "special", samples.audit(i))
        await store.append_audit([samples.audit(i + writers)])

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
    alerts = [samples.alert(n) for n in range(2 * writers)]
    assert await store.list_alerts(limit=1000) == expected_alerts(alerts)
    assert len(await store.load_area_states()) == writers
    assert len(await store.list_audit(limit=1000)) == 2 * writers


async def test_load_devices_returns_device_structs(store: Store) -> None:
    device = Device(id="x", kind="noise", lat=1.0, lon=2.0)
    await store.upsert_devices([device])
    (loaded,) = await store.load_devices()
    assert type(loaded) is Device and loaded == device


async def test_settle_devices_takes_own_changes_only_of_devices_nobody_moved(
        store: Store) -> None:
    a, b, c, d, e, f, g = samples.devices(7)
    life = msgspec.structs.replace
    stamped_b = life(b, lifecycle_at=5.0)
    moved_c = life(c, lifecycle=Lifecycle.MAINTENANCE, lifecycle_at=7.0)
    stamped_e = life(e, lifecycle_at=8.0)
    retired_f = life(f, lifecycle=Lifecycle.DECOMMISSIONED, lifecycle_at=9.0)
    renamed_a = life(a, name="pole 12, moved")  # changed elsewhere, not in lifecycle
    await store.upsert_devices([renamed_a, stamped_b, moved_c, d, stamped_e, retired_f])

    active = Lifecycle.ACTIVE
    mine = [
        life(a, lifecycle=active, lifecycle_at=10.0),  # first reading
        life(b, lifecycle=active, lifecycle_at=11.0),  # first reading after a stamp
        life(c, lifecycle=active, lifecycle_at=12.0),  # moved meanwhile
        life(d, lifecycle_at=20.0),  # a stamp
        life(e, lifecycle_at=20.0),  # stamped elsewhere meanwhile
        life(f, lifecycle=active, lifecycle_at=13.0),  # decommissioned meanwhile
        life(g, lifecycle=active, lifecycle_at=14.0),  # never registered
    ]
    assert await store.settle_devices(mine) == [a.id, b.id, d.id]
    assert await store.load_devices() == [
        life(renamed_a, lifecycle=Lifecycle.ACTIVE, lifecycle_at=10.0),
        life(b, lifecycle=Lifecycle.ACTIVE, lifecycle_at=11.0),
        moved_c,
        life(d, lifecycle_at=20.0),
        stamped_e,
        retired_f,
    ]
    # Once settled, the same changes again are a move of their own no longer: nothing.
    assert await store.settle_devices(mine) == []
    assert await store.settle_devices([]) == []


async def test_settle_devices_in_bulk(store: Store) -> None:
    # More ids than SQLite binds in one statement by default (999).
    devices = samples.devices(2_500)
    await store.upsert_devices(devices)
    heard = [msgspec.structs.replace(d, lifecycle=Lifecycle.ACTIVE, lifecycle_at=100.0 + i)
             for i, d in enumerate(devices)]
    assert await store.settle_devices(heard[::-1]) == [d.id for d in heard[::-1]]
    assert await store.load_devices() == heard


# -- alerts


def expected_alerts(
    alerts: list[Alert],
    *,
    scenario: str | None = None,
    area: str | None = None,
    active: bool | None = None,
) -> list[Alert]:
    """What `list_alerts` must answer, worked out the slow and obvious way."""
    found = [
        a
        for a in alerts
        if (scenario is None or a.scenario == scenario)
        and (area is None or (a.areas is not None and a.areas.village.startswith(area)))
        and (active is None or a.active is active)
    ]
    return sorted(found, key=lambda a: (a.first_seen, a.id), reverse=True)


async def test_alert_upsert_replaces_by_id(store: Store) -> None:
    assert await store.get_alert("missing") is None
    assert await store.list_alerts() == []
    a, b = samples.alert(1), samples.alert(2)
    await store.upsert_alerts([a, b])
    loaded = await store.get_alert(a.id)
    assert type(loaded) is Alert and loaded == a

    # An episode is updated many times, then cleared: each upsert replaces the whole alert.
    a2 = msgspec.structs.replace(
        a, updates=a.updates + 1, last_seen=a.last_seen + 60, evidence=[*a.evidence][:1]
    )
    a3 = msgspec.structs.replace(a2, active=False, cleared_at=a2.last_seen + 5)
    await store.upsert_alerts([a2])
    await store.upsert_alerts([a3])
    assert await store.get_alert(a.id) == a3
    assert await store.list_alerts() == expected_alerts([a3, b])
    assert await store.list_alerts(active=False) == [a3]

    # One batch holding an id twice: the last one given wins.
    b2 = msgspec.structs.replace(b, title="second", areas=None)
    await store.upsert_alerts([b, b2])
    assert await store.get_alert(b.id) == b2
    await store.upsert_alerts([])

    # What was stored is a copy: changing the caller's alert afterwards changes nothing.
    b2.evidence.append(samples.alert(9).evidence[0])
    b2.title = "changed after the upsert"
    assert (await store.get_alert(b.id)).title == "second"  # type: ignore[union-attr]


async def test_alert_filters_each_and_combined(store: Store) -> None:
    alerts = [samples.alert(n) for n in range(90)]
    await store.upsert_alerts(alerts)
    for scenario in (None, "flood", "noise", "nothing"):
        for area in (None, "310115", "310115001", "310115001001", "310116", "310117", "3101"):
            for active in (None, True, False):
                got = await store.list_alerts(
                    scenario=scenario, area=area, active=active, limit=1000
                )
                want = expected_alerts(alerts, scenario=scenario, area=area, active=active)
                assert got == want, (scenario, area, active)
    assert len(await store.list_alerts(scenario="flood", area="310115", active=True)) > 0
    assert len(await store.list_alerts(limit=7)) == 7
    assert await store.list_alerts(limit=0) == []


async def test_alert_area_prefix_at_each_level(store: Store) -> None:
    places = {
        "a": AreaCodes("310115", "310115001", "310115001001"),
        "b": AreaCodes("310115", "310115001", "310115001002"),
        "c": AreaCodes("310115", "310115002", "310115002001"),
        "d": AreaCodes("310116", "310116001", "310116001001"),
        "e": None,  # a city-wide alert, or one whose place is not known
    }
    alerts = [samples.alert(n, id=id, areas=areas) for n, (id, areas) in enumerate(places.items())]
    await store.upsert_alerts(alerts)

    async def ids(area: str | None) -> set[str]:
        return {a.id for a in await store.list_alerts(area=area)}

    assert await ids(None) == {"a", "b", "c", "d", "e"}  # only here do alerts without areas show
    assert await ids("310115") == {"a", "b", "c"}
    assert await ids("310116") == {"d"}
    assert await ids("310115001") == {"a", "b"}
    assert await ids("310115002") == {"c"}
    assert await ids("310115001002") == {"b"}
    assert await ids("310117") == set()
    assert await ids("310115003") == set()
    assert await ids("310115001003") == set()
    # Not a whole code, still a prefix: the same rule, without an index to help.
    assert await ids("3101") == {"a", "b", "c", "d"}
    assert await ids("3101150010") == {"a", "b"}


async def test_alert_paging_by_before(store: Store) -> None:
    alerts = [samples.alert(n) for n in range(250)]  # pairs share first_seen: ties go by id
    for batch in (alerts[:1], alerts[1:120], alerts[120:]):
        await store.upsert_alerts(batch)

    for scenario in (None, "noise"):
        want = expected_alerts(alerts, scenario=scenario)
        seen: list[Alert] = []
        before = None
        sizes = []
        while page := await store.list_alerts(scenario=scenario, limit=70, before=before):
            sizes.append(len(page))
            seen += page
            before = (page[-1].first_seen, page[-1].id)
        assert seen == want
        assert sizes == [70] * (len(want) // 70) + ([len(want) % 70] if len(want) % 70 else [])

    # `before` is exclusive, and falls between two alerts sharing a first_seen.
    newest = expected_alerts(alerts)
    tie = next(i for i in range(1, 250) if newest[i].first_seen == newest[i - 1].first_seen)
    cut = (newest[tie - 1].first_seen, newest[tie - 1].id)
    assert await store.list_alerts(limit=3, before=cut) == newest[tie : tie + 3]


async def test_bulk_alert_upsert(store: Store) -> None:
    alerts = [samples.alert(n) for n in range(10_000)]
    await store.upsert_alerts(alerts)
    assert await store.list_alerts(limit=20_000) == expected_alerts(alerts)

    # The whole lot again, every alert changed: replaced in place, none added.
    again = [
        msgspec.structs.replace(a, active=not a.active, updates=a.updates + 1) for a in alerts
    ]
    await store.upsert_alerts(again)
    assert await store.list_alerts(limit=20_000) == expected_alerts(again)
    want = expected_alerts(again, scenario="air", area="310115001", active=True)[:50]
    assert await store.list_alerts(scenario="air", area="310115001", active=True, limit=50) == want


# -- operating states and the audit trail


async def test_area_state_is_written_with_its_audit_entry(store: Store) -> None:
    assert await store.load_area_states() == {}
    first = samples.audit(1, subject="area:310115", before="daily", after="emergency")
    await store.set_area_state("310115", "emergency", first)
    await store.set_area_state("310116001", "special", samples.audit(2, subject="area:310116001"))
    assert await store.load_area_states() == {"310115": "emergency", "310116001": "special"}
    (newest, oldest) = await store.list_audit()
    assert msgspec.structs.replace(oldest, id=0) == first and oldest.id > 0
    assert newest.subject == "area:310116001" and newest.id > oldest.id

    # Back to daily: the row stays, explicitly daily (forgetting it is the caller's choice).
    await store.set_area_state("310115", "daily", samples.audit(3, subject="area:310115"))
    assert await store.load_area_states() == {"310115": "daily", "310116001": "special"}


async def test_area_state_is_not_changed_when_its_audit_entry_fails(store: Store) -> None:
    await store.set_area_state("310115", "special", samples.audit(1))
    before_audit = await store.list_audit()

    # An audit line must name who did it; refused by the database after the state was written,
    # so only one transaction for both keeps the state as it was.
    with pytest.raises(ValueError):
        await store.set_area_state("310115", "emergency", samples.audit(2, actor=""))
    with pytest.raises(ValueError):
        await store.set_area_state("310116", "emergency", samples.audit(3, action=""))
    assert await store.load_area_states() == {"310115": "special"}
    assert await store.list_audit() == before_audit

    # The store is fine afterwards.
    await store.set_area_state("310115", "emergency", samples.audit(4))
    assert await store.load_area_states() == {"310115": "emergency"}


async def test_audit_newest_first_with_paging_and_subject(store: Store) -> None:
    assert await store.list_audit() == []
    sent = [samples.audit(n) for n in range(250)]
    for batch in (sent[:1], sent[1:120], sent[120:]):
        await store.append_audit(batch)
    await store.append_audit([])

    newest = await store.list_audit()
    assert [msgspec.structs.replace(e, id=0) for e in newest] == sent[::-1][:100]

    for subject in (None, "area:310115001"):
        want = [e for e in sent if subject is None or e.subject == subject][::-1]
        pages: list[list[AuditEntry]] = []
        before = None
        while page := await store.list_audit(subject=subject, limit=70, before_id=before):
            pages.append(page)
            before = page[-1].id
        seen = [e for p in pages for e in p]
        ids = [e.id for e in seen]
        assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(want) and min(ids) > 0
        assert [msgspec.structs.replace(e, id=0) for e in seen] == want
        assert all(len(p) == 70 for p in pages[:-1])
    assert await store.list_audit(subject="area:nowhere") == []
    assert await store.list_audit(limit=0) == []

    # A bad entry refuses its whole batch.
    with pytest.raises(ValueError):
        await store.append_audit([samples.audit(900), samples.audit(901, actor="")])
    assert len(await store.list_audit(limit=1000)) == 250


async def test_audit_rows_can_only_be_appended(store: Store) -> None:
    # The protocol's only audit methods are append and list, and no adapter adds any method
    # beyond the protocol through which rows could be changed or removed.
    protocol = {name for name in dir(Store) if not name.startswith("_")}
    assert {name for name in protocol if "audit" in name} == {"append_audit", "list_audit"}
    extra = {
        name
        for name in dir(store)
        if not name.startswith("_") and name not in protocol and callable(getattr(store, name))
    }
    assert extra == set()

    # Nor does any statement in the adapter's source name the audit table as its target.
    source = inspect.getsource(inspect.getmodule(type(store)))  # type: ignore[arg-type]
    mutation = re.compile(
        r"\b(UPDATE|DELETE\s+FROM|TRUNCATE(\s+TABLE)?|ALTER\s+TABLE|DROP\s+TABLE(\s+IF\s+EXISTS)?"
        r"|INSERT\s+OR\s+REPLACE\s+INTO|REPLACE\s+INTO)\s+(\S+\.)?\"?audit\b",
        re.IGNORECASE,
    )
    assert not mutation.search(source)


# -- schema versions


def run_sql(url: str, statements: list[str]) -> None:
    """Runs statements on a durable store's database from outside the store, committed."""
    if url.startswith("sqlite:"):
        with closing(sqlite3.connect(sqlite_path(url))) as conn, conn:
            for statement in statements:
                conn.execute(statement)
        return
    conninfo, schema = split_url(url)
    with psycopg.connect(conninfo) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        for statement in statements:
            conn.execute(statement)


async def test_version_1_store_gets_the_new_tables(
    durable_store_url: str, open_stores: OpenStore
) -> None:
    first = await open_stores(durable_store_url)
    devices = samples.devices(20)
    await first.upsert_devices(devices)
    await first.add_key(samples.key(1))
    await first.close()
    # What a store made by CityOps with schema version 1 looks like.
    run_sql(
        durable_store_url,
        [
            "DROP TABLE alerts",
            "DROP TABLE area_states",
            "DROP TABLE audit",
            "UPDATE meta SET value = '1' WHERE key = 'schema_version'",
        ],
    )

    again = await open_stores(durable_store_url)
    assert await again.get_meta("schema_version") == str(SCHEMA_VERSION)
    assert await again.load_devices() == devices
    assert await again.list_keys() == [samples.key(1)]
    assert await again.list_alerts() == [] and await again.list_audit() == []
    await again.upsert_alerts([samples.alert(1)])
    await again.set_area_state("310115", "special", samples.audit(1))
    assert await again.list_alerts(area="310115") == [samples.alert(1)]
    assert await again.load_area_states() == {"310115": "special"}
    assert len(await again.list_audit()) == 1


async def test_version_4_store_gives_citizens_their_open311_requests(
    durable_store_url: str, open_stores: OpenStore
) -> None:
    first = await open_stores(durable_store_url)
    keys = {"li": samples.key(1, role="citizen", name="c-1"),
            "li_old": samples.key(2, role="citizen", name="c-1"),
            "anon": samples.key(3, role="citizen", name=""),
            "op": samples.key(4, role="operator", name="c-1")}
    for k in keys.values():
        await first.add_key(k)
    await first.revoke_key(keys["li_old"].id)

    def request(n: int, owner: str, kind: str = "open311.request") -> Record:
        return Record(kind=kind, id=f"1000000000{n:02d}", doc=b"{}", owner=owner,
                      created=float(n), updated=float(n))

    # As CityOps with schema version 4 filed them: owned by the key's id.
    for n, who in enumerate(["li", "anon", "li_old", "op", "li"], start=1):
        await first.put_record(request(n, keys[who].id))
    await first.put_record(request(9, keys["li"].id, kind="citizen.photo"))
    await first.close()
    run_sql(durable_store_url, ["UPDATE meta SET value = '4' WHERE key = 'schema_version'"])

    again = await open_stores(durable_store_url)
    assert await again.get_meta("schema_version") == str(SCHEMA_VERSION)
    mine = await again.find_records("open311.request", owner="citizen:c-1")
    assert [r.id for r in mine] == ["100000000005", "100000000003", "100000000001"]
    # A key naming no citizen, and a staff key (whatever its name), keep their requests.
    assert [r.id for r in await again.find_records("open311.request",
                                                   owner=keys["anon"].id)] == ["100000000002"]
    assert [r.id for r in await again.find_records("open311.request",
                                                   owner=keys["op"].id)] == ["100000000004"]
    assert (await again.get_record("citizen.photo", "100000000009")).owner == keys["li"].id
    await again.close()

    # Opening it again migrates nothing twice.
    third = await open_stores(durable_store_url)
    assert len(await third.find_records("open311.request", owner="citizen:c-1")) == 3
