"""What only the PostgreSQL store does: COPY merges at scale, schemas from the URL."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable

import msgspec
import psycopg
import pytest

from cityops.store import record_sql
from cityops.store.base import DeadLetter, LatestRows
from cityops.store.postgres import PostgresStore, alerts_query, split_url
from cityops.store.postgres_incidents import POSTGRES

from . import samples

ROWS = 100_000


@pytest.fixture
async def store(fresh_postgres_url: Callable[[], str]) -> AsyncIterator[PostgresStore]:
    store = PostgresStore(fresh_postgres_url())
    await store.open()
    yield store
    await store.close()


def test_schema_comes_from_the_url() -> None:
    conninfo, schema = split_url("postgresql://u@h:5432/db?sslmode=disable&schema=city_a")
    assert (conninfo, schema) == ("postgresql://u@h:5432/db?sslmode=disable", "city_a")
    assert split_url("postgresql://u@h/db") == ("postgresql://u@h/db", "cityops")
    with pytest.raises(ValueError):
        split_url('postgresql://u@h/db?schema=x";drop')


async def test_copy_merge_of_100k_latest_rows(store: PostgresStore) -> None:
    rng = random.Random(3)
    devices = [f"dev-{i:05d}" for i in range(ROWS // 4)]
    channels = ["level", "temp", "rain", "battery"]
    keys = [(d, c) for d in devices for c in channels]
    rng.shuffle(keys)
    first = LatestRows(
        [d for d, _ in keys],
        [c for _, c in keys],
        [1_000 + i for i in range(ROWS)],
        [float(i) for i in range(ROWS)],
    )
    await store.save_latest(first)
    assert len(await store.load_latest()) == ROWS

    # Second pass: even positions newer, odd positions older; only the newer may land.
    second = LatestRows(
        first.device_id,
        first.channel,
        [ts + 10**9 if i % 2 == 0 else ts - 1 for i, ts in enumerate(first.ts_us)],
        [-v for v in first.value],
    )
    await store.save_latest(second)
    loaded = await store.load_latest()
    assert len(loaded) == ROWS
    assert list(zip(loaded.device_id, loaded.channel)) == sorted(keys)
    stored = dict(zip(zip(loaded.device_id, loaded.channel), zip(loaded.ts_us, loaded.value)))
    for i in range(0, ROWS, 997):
        winner = second if i % 2 == 0 else first
        assert stored[keys[i]] == (winner.ts_us[i], winner.value[i])


async def test_overlapping_concurrent_merges_do_not_deadlock(store: PostgresStore) -> None:
    keys = [(f"dev-{i:04d}", "level") for i in range(2_000)]

    async def save(seed: int) -> None:
        order = keys[:]
        random.Random(seed).shuffle(order)
        n = len(order)
        await store.save_latest(
            LatestRows([d for d, _ in order], [c for _, c in order], [seed] * n, [float(seed)] * n)
        )

    await asyncio.wait_for(asyncio.gather(*(save(seed) for seed in range(1, 9))), timeout=30)
    loaded = await store.load_latest()
    assert set(loaded.ts_us) == {8} and set(loaded.value) == {8.0}


async def test_schemas_are_separate(fresh_postgres_url: Callable[[], str]) -> None:
    a, b = PostgresStore(fresh_postgres_url()), PostgresStore(fresh_postgres_url())
    await a.open()
    await b.open()
    try:
        await a.set_meta("who", "a")
        assert await b.get_meta("who") is None
    finally:
        await a.close()
        await b.close()
    conninfo, _ = split_url(a.url)
    with psycopg.connect(conninfo) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s", (a.schema,)
        ).fetchone()
    # 8 tables of the sense and detect sides, 4 of incidents (cases, departments, timeline,
    # reports), 1 of records, 1 of grid-cell owners, 1 of the staff roster's changes
    assert tables == (15,)


async def test_nul_characters_are_written_out(store: PostgresStore) -> None:
    # PostgreSQL text cannot hold U+0000; the dead letter still lands, NUL spelled as \x00.
    await store.add_dead_letters([DeadLetter("http", "/a\x00b", "bad", "x\x00y", 1.0)])
    (letter,) = await store.list_dead_letters()
    assert (letter.where, letter.payload) == ("/a\\x00b", "x\\x00y")


async def test_alert_lists_are_read_off_an_index(store: PostgresStore) -> None:
    await store.upsert_alerts([samples.alert(n) for n in range(5_000)])
    with psycopg.connect(store.conninfo, autocommit=True) as conn:
        conn.execute(f'ANALYZE "{store.schema}".alerts')
        for filters in samples.LIST_FILTERS:
            sql, params = alerts_query(
                f'"{store.schema}"', **samples.list_filter_args(filters)  # type: ignore[arg-type]
            )
            plan = " / ".join(row[0] for row in conn.execute("EXPLAIN " + sql, params))
            assert "Index Scan" in plan and "Seq Scan" not in plan, (filters, plan)
            if "before" not in filters:  # a narrow `before` may make a small sort cheaper
                assert "Sort" not in plan, (filters, plan)


async def test_overlapping_concurrent_alert_upserts_do_not_deadlock(store: PostgresStore) -> None:
    alerts = [samples.alert(n) for n in range(2_000)]

    async def upsert(seed: int) -> None:
        order = [msgspec.structs.replace(a, updates=seed) for a in alerts]
        random.Random(seed).shuffle(order)
        await store.upsert_alerts(order)

    await asyncio.wait_for(asyncio.gather(*(upsert(seed) for seed in range(1, 9))), timeout=30)
    stored = await store.list_alerts(limit=5_000)
    assert len(stored) == len(alerts)
    assert {a.id for a in stored} == {a.id for a in alerts}


async def test_an_owners_records_are_read_off_an_index(store: PostgresStore) -> None:
    # A citizen's list of reports must not walk every request in the city.
    for n in range(5_000):
        await store.put_record(samples.record(n))
    with psycopg.connect(store.conninfo, autocommit=True) as conn:
        conn.execute(f'ANALYZE "{store.schema}".records')
        for before in (None, (1_000.0, "r01000")):
            sql, params = record_sql.find(POSTGRES, f'"{store.schema}".', "open311.request",
                                          "citizen:c-7", None, None, None, 21, before)
            plan = " / ".join(row[0] for row in conn.execute("EXPLAIN " + sql, params))
            assert "records_owner" in plan and "Seq Scan" not in plan, plan
            assert "Sort" not in plan, plan
    found = await store.find_records("open311.request", owner="citizen:c-7", limit=3,
                                     before=(1_000.0, "r01000"))
    assert [r.id for r in found] == ["r00957", "r00907", "r00857"]
