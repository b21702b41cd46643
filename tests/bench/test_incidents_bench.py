"""The incident query benchmark's machinery on a small year (2,000 cases, SQLite): the data
it makes is what the workflow could have made, every kind of query finds something, the JSON
has its shape, and a second run reuses the data. Speed is not asserted here."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from cityops.bench import incidents as bench
from cityops.packs.pudong import generate
from cityops.store.base import IncidentFilter
from cityops.store.incident_rows import columns_of

N = 2_000


@pytest.fixture(scope="module")
def pack():
    return generate(1)


def test_the_cases_look_like_a_year_of_a_city(pack) -> None:
    city = bench.city_tables(pack, 1)
    cases = bench.make_cases(city, N, 1)
    incidents = bench.build(city, cases, 0, N)
    columns = [columns_of(i) for i in incidents]
    statuses = Counter(c.status for c in columns)
    assert statuses["closed"] > 0.85 * N  # most of a year's cases are closed ...
    assert sum(statuses[s] for s in ("dispatched", "accepted", "handled")) > 0  # ... not all
    assert any(c.late_at is not None and c.late_at <= bench.NOW for c in columns)
    assert all(bench.NOW - bench.YEAR <= i.reported_at < bench.NOW for i in incidents)
    assert [i.reported_at for i in incidents] == sorted(i.reported_at for i in incidents)
    assert len({i.id for i in incidents}) == N
    live = [i for i in incidents if i.orders]
    assert all(1 <= len(i.orders) <= bench.MAX_ORDERS for i in live)
    known = {c.code: set(c.departments) | {"greening", "transport"} for c in pack.categories}
    # Each case goes to its category's departments (a cell's keeper standing in for city
    # management), plus at most one wrong department that sent its order back.
    for i in live:
        wrong = [o for o in i.orders if o.department not in known[i.category]]
        assert len(wrong) <= 1
        assert all(o.status in ("returned", "dispatched") for o in wrong)
    # As the escalation scheduler would have left it: nothing is due at "now".
    assert not [c for c in columns if c.next_due is not None and c.next_due <= bench.NOW]
    assert bench.make_cases(city, N, 1).ids.tolist() == cases.ids.tolist()  # same seed, same


def test_the_benchmark_runs_and_reuses_its_data(tmp_path) -> None:
    out = bench.run(count=N, store=None, workdir=tmp_path, rounds=3, http=False)
    assert json.loads(json.dumps(out)) == out
    for key in ("incidents", "backend", "incidents_query_p50_ms", "incidents_query_p99_ms",
                "per_query", "load_s"):
        assert key in out
    assert (out["incidents"], out["backend"], out["reused"]) == (N, "sqlite", False)
    assert out["due_at_now"] == 0
    per = out["per_query"]
    for kind in bench.KINDS:
        assert per[kind]["queries"] == 3
        assert per[kind]["rows"] > 0, kind
        assert {"p50_ms", "p99_ms", "max_ms"} <= set(per[kind])
    for kind in ("recent", "area_district", "scoped_department"):  # these have a page 2
        assert per[f"{kind}:page2"]["rows"] > 0

    again = bench.run(count=N, store=None, workdir=tmp_path, rounds=1, http=False)
    assert again["reused"] is True
    assert again["load_s"] == out["load_s"]
    assert again["per_query"]["recent"]["rows"] == 50

    # What another benchmark calls on a store it filled itself.
    alone = bench.query_benchmark_at(f"sqlite:///{tmp_path}/incidents.db", now=bench.NOW,
                                     rounds=1, limit=10)
    assert alone["queries"] >= len(bench.KINDS)
    assert alone["per_query"]["overdue"]["rows"] == 10


EDGES = (
    IncidentFilter(open=False), IncidentFilter(open=False, status=("accepted",)),
    IncidentFilter(department="police", status=("cancelled",)),
    IncidentFilter(department="police", open=True), IncidentFilter(department="fire", open=False),
    IncidentFilter(department="sanitation", status=("closed", "accepted")),
    IncidentFilter(department="police", overdue_at=bench.NOW, area="310115"),
    IncidentFilter(category="event.sanitation.exposed_garbage", open=True),
    IncidentFilter(status=("verified", "cancelled"), area="310115001"),
    IncidentFilter(area="3101150", open=True),  # a prefix of village codes, not a whole code
    IncidentFilter(scope_areas=("310115001", "310115020003"), scope_departments=("fire",),
                   status=("closed",)),
    IncidentFilter(scope_departments=("police", "transport"), open=True),
)


@pytest.fixture
async def stores(tmp_path, request):
    """The same cases in the memory store (the reference) and in SQLite, and in PostgreSQL
    when it is reachable (a schema of its own, dropped afterwards)."""
    import uuid

    from cityops.store.base import open_store

    urls = ["memory://", f"sqlite:///{tmp_path}/state.db"]
    schema = None
    try:
        postgres = request.getfixturevalue("postgres_url")
    except pytest.skip.Exception:
        postgres = None
    if postgres:
        schema = f"cityops_test_{uuid.uuid4().hex[:16]}"
        urls.append(f"{postgres}?schema={schema}")
    opened = [open_store(url) for url in urls]
    for store in opened:
        await store.open()
    yield opened
    for store in opened:
        await store.close()
    if schema:
        import psycopg

        with psycopg.connect(postgres, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


async def test_every_store_answers_the_query_mix_alike(pack, stores) -> None:
    city = bench.city_tables(pack, 1)
    cases = bench.make_cases(city, N, 1)
    incidents = bench.build(city, cases, 0, N)
    for store in stores:
        await store.insert_incidents(incidents)
    reference, *others = stores
    found = await bench.sample(reference, bench.NOW, probes=40)
    queries = [q.filter for q in bench.plan(found, rounds=4, now=bench.NOW, seed=3)]
    for f in [*queries, *EDGES]:
        want = await reference.list_incidents(f, limit=20)
        after = (want[-1].reported_at, want[-1].id) if want else None
        want_next = await reference.list_incidents(f, limit=20, before=after) if after else []
        for store in others:
            got = await store.list_incidents(f, limit=20)
            assert [i.id for i in got] == [i.id for i in want], (store.url, f)
            if after:
                got = await store.list_incidents(f, limit=20, before=after)
                assert [i.id for i in got] == [i.id for i in want_next], (store.url, f)
