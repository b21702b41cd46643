"""Splitting a report out of a case, in the store: the report row moves to a new case with
both cases saved in one transaction, version-checked, all or nothing (memory, SQLite and
real PostgreSQL)."""

from __future__ import annotations

import msgspec
import pytest

from cityops.domain.incidents.model import Event, Report
from cityops.store.base import DuplicateKey, StaleVersion, Store
from tests.store.test_incidents_contract import incident


def split_event(n: int, action: str = "split") -> Event:
    return Event(at=2000.0 + n, actor="k_op", action=action, before="collected",
                 after="collected", reason="not the same manhole")


async def merged_case(store: Store):
    saved = await store.save_incident(incident(1), [split_event(0, "collect")],
                                      [Report("r-1", "citizen", 1.0)])
    return await store.save_incident(msgspec.structs.replace(saved, reports=2),
                                     [split_event(1, "merge")],
                                     [Report("alert:a", "sensor", 2.0)], expect_version=1)


async def test_a_report_moves_to_its_own_case(store: Store) -> None:
    case = await merged_case(store)
    kept = msgspec.structs.replace(case, reports=1)
    new = incident(2)
    done_kept, done_new = await store.split_incident(
        kept, [split_event(2)], new, [split_event(3, "collect"), split_event(4)], "alert:a",
        expect_version=case.version)
    assert done_kept.version == case.version + 1 and done_new.version == 1
    assert await store.get_incident(kept.id) == done_kept
    assert await store.get_incident(new.id) == done_new
    assert [r.key for r in await store.incident_reports(kept.id)] == ["r-1"]
    assert [r.key for r in await store.incident_reports(new.id)] == ["alert:a"]
    assert await store.incident_of_report("alert:a") == new.id
    assert [e.action for e in await store.incident_events(kept.id)] == ["collect", "merge",
                                                                      "split"]
    assert [e.action for e in await store.incident_events(new.id)] == ["collect", "split"]


async def test_nothing_lands_unless_all_of_it_does(store: Store) -> None:
    case = await merged_case(store)
    kept = msgspec.structs.replace(case, reports=1)

    async def unchanged() -> None:
        assert await store.get_incident(case.id) == case
        assert [r.key for r in await store.incident_reports(case.id)] == ["r-1", "alert:a"]
        assert await store.incident_of_report("alert:a") == case.id
        assert len(await store.incident_events(case.id)) == 2

    with pytest.raises(StaleVersion):  # the case moved on since it was read
        await store.split_incident(kept, [split_event(2)], incident(2), [], "alert:a",
                                   expect_version=case.version - 1)
    await unchanged()
    assert await store.get_incident(incident(2).id) is None
    with pytest.raises(StaleVersion):  # the report is not (or no longer) this case's
        await store.split_incident(kept, [split_event(2)], incident(2), [], "r-elsewhere",
                                   expect_version=case.version)
    await unchanged()
    assert await store.get_incident(incident(2).id) is None
    await store.save_incident(incident(3))
    with pytest.raises(DuplicateKey):  # the new case's id is taken
        await store.split_incident(kept, [split_event(2)], incident(3), [], "alert:a",
                                   expect_version=case.version)
    await unchanged()
