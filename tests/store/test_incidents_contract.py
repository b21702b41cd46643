"""The incident part of the store contract, against memory, SQLite and real PostgreSQL."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import msgspec
import psycopg
import pytest

from cityops.domain.city import AreaCodes
from cityops.domain.incidents.model import (
    Event,
    Incident,
    Level,
    OrderStatus,
    Report,
    Status,
    WorkOrder,
)
from cityops.store.base import DuplicateKey, IncidentFilter, StaleVersion, Store
from cityops.store.postgres import split_url
from cityops.store.sqlite import sqlite_path


def incident(n: int, *, status: Status = Status.DISPATCHED, village: str = "310115001001",
             category: str = "event.sanitation.exposed_garbage", depts=("sanitation",),
             cell: str | None = "8930e1d8c03ffff", due: float | None = None) -> Incident:
    orders = [
        WorkOrder(id=f"i{n}-{k + 1}", department=d, level=Level.VILLAGE, area=village,
                  unit=f"station:{village}", created=1000.0 + n, accept_due=due,
                  finish_due=None if due is None else due + 100)
        for k, d in enumerate(depts)
    ]
    return Incident(
        id=f"i{n:05d}", category=category, kind="event", title=f"case {n}", source="inspector",
        status=status, areas=AreaCodes(village[:6], village[:9], village), cell=cell,
        reported_at=1000.0 + n, updated_at=1000.0 + n, orders=orders,
    )


def event(n: int, action: str = "collect") -> Event:
    return Event(at=1000.0 + n, actor="k_0001", action=action, before="", after="collected")


async def test_save_get_and_version_check(store: Store) -> None:
    first = incident(1)
    saved = await store.save_incident(first, [event(1)], [Report("alert-1", "sensor", 1001.0)])
    assert saved.version == 1
    assert await store.get_incident("i00001") == saved
    assert await store.incident_of_report("alert-1") == "i00001"
    with pytest.raises(DuplicateKey):
        await store.save_incident(first)

    changed = msgspec.structs.replace(saved, status=Status.ACCEPTED)
    again = await store.save_incident(changed, [event(2, "order.accept")], expect_version=1)
    assert again.version == 2
    with pytest.raises(StaleVersion):  # someone else's move already landed on version 1
        await store.save_incident(changed, [event(3, "x")], expect_version=1)
    assert (await store.get_incident("i00001")).status is Status.ACCEPTED
    assert [e.action for e in await store.incident_events("i00001")] == ["collect",
                                                                       "order.accept"]


async def test_a_cases_translated_title_round_trips_and_a_retitle_drops_it(store: Store) -> None:
    # Kept inside the case's JSON document: no column, no migration; a case without any keeps
    # its stored bytes.
    named = msgspec.structs.replace(incident(1), titles={"zh-CN": "路面积水深度超限"})
    saved = await store.save_incident(named)
    assert (await store.get_incident("i00001")).titles == {"zh-CN": "路面积水深度超限"}
    [listed] = await store.list_incidents(IncidentFilter())
    assert listed.titles == {"zh-CN": "路面积水深度超限"}
    retitled = msgspec.structs.replace(saved, title="Underpass flooded", titles=msgspec.UNSET)
    await store.save_incident(retitled, expect_version=1)
    again = await store.get_incident("i00001")
    assert (again.title, again.titles) == ("Underpass flooded", msgspec.UNSET)
    plain = await store.save_incident(incident(2))
    assert plain.titles is msgspec.UNSET and b"titles" not in msgspec.json.encode(plain)


async def test_a_report_is_filed_once(store: Store) -> None:
    saved = await store.save_incident(incident(1), [], [Report("r-1", "citizen", 1.0)])
    with pytest.raises(DuplicateKey):
        await store.save_incident(incident(2), [], [Report("r-1", "citizen", 2.0)])
    assert await store.get_incident("i00002") is None  # nothing of the refused save landed
    with pytest.raises(DuplicateKey):
        await store.save_incident(saved, [event(5)], [Report("r-1", "citizen", 3.0)],
                                  expect_version=1)
    assert (await store.get_incident("i00001")).version == 1
    assert await store.incident_events("i00001") == []
    merged = await store.save_incident(saved, [event(6, "merge")],
                                       [Report("r-2", "citizen", 4.0)], expect_version=1)
    assert [r.key for r in await store.incident_reports(merged.id)] == ["r-1", "r-2"]


async def test_list_filters_and_pages(store: Store) -> None:
    cases = [
        incident(1, status=Status.COLLECTED, depts=()),
        incident(2, depts=("police", "fire"), village="310115002003"),
        incident(3, status=Status.CLOSED, category="event.emergency.fire", depts=("fire",)),
        incident(4, village="310116001001", depts=("sanitation",), due=50.0),
        incident(5, status=Status.CANCELLED),
    ]
    await store.insert_incidents(cases)

    async def ids(**kw) -> list[str]:
        return [i.id for i in await store.list_incidents(IncidentFilter(**kw))]

    assert await ids() == ["i00005", "i00004", "i00003", "i00002", "i00001"]
    assert await ids(status=("collected", "closed")) == ["i00003", "i00001"]
    assert await ids(category="event.emergency.fire") == ["i00003"]
    assert await ids(department="fire") == ["i00003", "i00002"]
    assert await ids(department="fire", status=("dispatched",)) == ["i00002"]
    assert await ids(area="310116") == ["i00004"]
    assert await ids(area="310115002") == ["i00002"]
    assert await ids(area="310115002003") == ["i00002"]
    assert await ids(area="3101150") == ["i00005", "i00003", "i00002", "i00001"]
    assert await ids(overdue_at=100.0) == ["i00004"]
    assert await ids(overdue_at=10.0) == []
    assert await ids(open=True) == ["i00004", "i00002", "i00001"]
    assert await ids(open=False) == ["i00005", "i00003"]
    assert await ids(scope_areas=("310116",), scope_departments=("police",)) == ["i00004",
                                                                                "i00002"]
    page = await store.list_incidents(IncidentFilter(), limit=2)
    rest = await store.list_incidents(IncidentFilter(), limit=10,
                                      before=(page[-1].reported_at, page[-1].id))
    assert [i.id for i in page + rest] == await ids()
    rest = await store.list_incidents(IncidentFilter(department="fire"), limit=10,
                                      before=(1003.0, "i00003"))
    assert [i.id for i in rest] == ["i00002"]


async def test_departments_follow_the_saved_orders(store: Store) -> None:
    saved = await store.save_incident(incident(1, depts=("police", "fire")))
    orders = [msgspec.structs.replace(saved.orders[0], status=OrderStatus.RETURNED),
              saved.orders[1]]
    await store.save_incident(msgspec.structs.replace(saved, orders=orders), expect_version=1)
    assert await store.list_incidents(IncidentFilter(department="police")) == []
    assert len(await store.list_incidents(IncidentFilter(department="fire"))) == 1


async def test_merge_candidates_and_due_cases(store: Store) -> None:
    await store.insert_incidents([
        incident(1, cell="a"), incident(2, cell="b"), incident(3, cell="a", status=Status.CLOSED),
        incident(4, cell="a", category="event.emergency.fire"),
        incident(5, cell="a", due=2000.0), incident(6, cell="c", due=1500.0),
    ])
    near = await store.open_incidents_in_cells("event.sanitation.exposed_garbage", ["a", "b"],
                                               since=1001.5)
    assert sorted(i.id for i in near) == ["i00002", "i00005"]
    assert await store.due_incidents(1999.0) == ["i00006"]
    assert await store.due_incidents(5000.0) == ["i00006", "i00005"]
    assert await store.due_incidents(5000.0, limit=1) == ["i00006"]
    period = await store.incidents_for_period(1002.5, 1004.5)
    assert sorted(i.id for i in period) == ["i00001", "i00002", "i00003", "i00004"]


async def test_timeline_cannot_be_rewritten_in_sql(durable_store_url: str, open_stores) -> None:
    store = await open_stores(durable_store_url)
    await store.save_incident(incident(1), [event(1)])
    if durable_store_url.startswith("sqlite"):
        with closing(sqlite3.connect(sqlite_path(durable_store_url))) as conn:
            for sql in ("UPDATE incident_events SET doc = '{}'", "DELETE FROM incident_events"):
                with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                    conn.execute(sql)
    else:
        conninfo, schema = split_url(durable_store_url)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            for sql in ("UPDATE {}.incident_events SET at = 0", "DELETE FROM {}.incident_events"):
                with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                    conn.execute(sql.format(f'"{schema}"'))
    assert len(await store.incident_events("i00001")) == 1
