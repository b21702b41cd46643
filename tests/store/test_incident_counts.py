"""Counting cases in the store (memory, SQLite, PostgreSQL): the counts the screen and the
console show, equal to what a list without a limit returns, for every filter; and cheap, an
index's count in SQLite rather than a read of the cases."""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing

import pytest

from cityops.domain.incidents.model import Status
from cityops.store.base import IncidentFilter, Store
from cityops.store.incident_sql import count_query
from cityops.store.sqlite import sqlite_path

from .test_incidents_contract import incident

FILTERS = [
    IncidentFilter(),
    IncidentFilter(open=True),
    IncidentFilter(open=False),
    IncidentFilter(status=("collected", "closed")),
    IncidentFilter(status=("dispatched",), open=True),
    IncidentFilter(category="event.emergency.fire"),
    IncidentFilter(department="fire"),
    IncidentFilter(department="fire", open=True),
    IncidentFilter(area="310116"),
    IncidentFilter(area="310115002"),
    IncidentFilter(area="3101150"),
    IncidentFilter(overdue_at=100.0),
    IncidentFilter(overdue_at=100.0, scope_areas=("310115",)),
    IncidentFilter(overdue_at=10.0),
    IncidentFilter(open=True, scope_areas=("310116",), scope_departments=("police",)),
    IncidentFilter(scope_areas=("310115002",)),
]


async def test_counts_equal_the_unlimited_lists(store: Store) -> None:
    await store.insert_incidents([
        incident(1, status=Status.COLLECTED, depts=()),
        incident(2, depts=("police", "fire"), village="310115002003"),
        incident(3, status=Status.CLOSED, category="event.emergency.fire", depts=("fire",)),
        incident(4, village="310116001001", depts=("sanitation",), due=50.0),
        incident(5, status=Status.CANCELLED),
        *(incident(10 + k, due=60.0 + k) for k in range(7)),
    ])
    for f in FILTERS:
        listed = await store.list_incidents(f, limit=10_000)
        assert await store.count_incidents(f) == len(listed), f
    assert await store.count_incidents(IncidentFilter(open=True)) == 10


async def test_counting_the_open_backlog_reads_an_index(tmp_path) -> None:
    """The live hub counts every few seconds: the open, overdue and per-status counts are
    answered from the open-case indexes, never by reading the cases' documents."""
    from cityops.store.base import open_store

    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = open_store(url)
    await store.open()
    try:
        await store.insert_incidents([incident(k, due=50.0) for k in range(50)])
    finally:
        await store.close()
    from cityops.store.sqlite_incidents import SQLITE

    with closing(sqlite3.connect(sqlite_path(url))) as conn:
        for f in (IncidentFilter(open=True), IncidentFilter(overdue_at=100.0),
                  IncidentFilter(status=("dispatched",)),
                  IncidentFilter(open=True, scope_areas=("310115",))):
            sql, params = count_query(SQLITE, "", f)
            plan = " ".join(row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            # An index searched, or the open cases' covering index walked: never a bare
            # "SCAN i", which reads every case ever filed.
            assert "INDEX" in plan and not re.search(r"SCAN i(?! USING)", plan), (f, plan)


@pytest.mark.parametrize("f", FILTERS[:3])
def test_the_count_is_one_statement(f) -> None:
    from cityops.store.sqlite_incidents import SQLITE

    sql, _ = count_query(SQLITE, "", f)
    assert sql.startswith("SELECT COUNT(*)") and ";" not in sql
