"""The optimistic-update helpers (store/update.py) against memory, SQLite and real PostgreSQL.

Concurrency is staged with events, not timing: one updater is held between its read and its
write until the other has saved, so the clash happens on every run.
"""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from cityops.domain.incidents.model import Event, Incident
from cityops.domain.incidents.workflow import Outcome
from cityops.store.base import DuplicateKey, Record, StaleVersion, Store
from cityops.store.update import DELETE, UpdateGaveUp, update_incident, update_record
from .test_incidents_contract import incident


class Counter(msgspec.Struct):
    n: int = 0
    by: list[str] = []


def count(rec: Record | None, who: str) -> Record:
    held = Counter() if rec is None else msgspec.json.decode(rec.doc, type=Counter)
    held = Counter(held.n + 1, [*held.by, who])
    return Record(kind="counter", id="c1", doc=msgspec.json.encode(held),
                  created=rec.created if rec else 1.0, updated=2.0)


async def stored(store: Store) -> Counter:
    rec = await store.get_record("counter", "c1")
    assert rec is not None
    return msgspec.json.decode(rec.doc, type=Counter)


async def test_creates_updates_leaves_and_deletes(store: Store) -> None:
    seen: list[Record | None] = []

    def decide(rec: Record | None) -> tuple[Record, str]:
        seen.append(rec)
        return count(rec, "a"), "done"

    assert await update_record(store, "counter", "c1", decide) == "done"
    assert await update_record(store, "counter", "c1", decide) == "done"
    assert seen[0] is None and seen[1] is not None and seen[1].version == 1
    assert (await stored(store)).n == 2
    assert (await store.get_record("counter", "c1")).version == 2

    assert await update_record(store, "counter", "c1", lambda rec: (None, rec.version)) == 2
    assert (await store.get_record("counter", "c1")).version == 2  # nothing was saved

    assert await update_record(store, "counter", "c1", lambda rec: (DELETE, "gone")) == "gone"
    assert await store.get_record("counter", "c1") is None
    # Removing what is not there is no clash.
    assert await update_record(store, "counter", "c1", lambda rec: (DELETE, rec)) is None


async def test_two_concurrent_updaters_lose_nothing(store: Store) -> None:
    await store.put_record(count(None, "seed"))
    b_saved = asyncio.Event()
    a_reads: list[int] = []

    async def slow(rec: Record | None) -> tuple[Record, None]:
        assert rec is not None
        a_reads.append(rec.version)
        await b_saved.wait()  # B saves between A's read and A's write
        return count(rec, "a"), None

    async def fast() -> None:
        while not a_reads:  # A has read before B starts
            await asyncio.sleep(0)
        await update_record(store, "counter", "c1", lambda rec: (count(rec, "b"), None))
        b_saved.set()

    retries: list[int] = []
    await asyncio.gather(
        update_record(store, "counter", "c1", slow, on_retry=lambda: retries.append(1)),
        fast())
    held = await stored(store)
    assert held.n == 3 and held.by == ["seed", "b", "a"]
    assert a_reads == [1, 2] and retries == [1]  # A decided again on B's copy


async def test_many_concurrent_updaters_lose_nothing(store: Store) -> None:
    await asyncio.gather(*(
        update_record(store, "counter", "c1", lambda rec, w=f"w{i}": (count(rec, w), None),
                      tries=50)
        for i in range(6)))
    held = await stored(store)
    assert held.n == 6 and sorted(held.by) == [f"w{i}" for i in range(6)]


async def test_a_concurrent_create_is_a_clash_not_an_error(store: Store) -> None:
    b_created = asyncio.Event()
    a_saw: list[Record | None] = []

    async def slow(rec: Record | None) -> tuple[Record, None]:
        a_saw.append(rec)
        await b_created.wait()
        return count(rec, "a"), None

    async def fast() -> None:
        while not a_saw:
            await asyncio.sleep(0)
        await update_record(store, "counter", "c1", lambda rec: (count(rec, "b"), None))
        b_created.set()

    await asyncio.gather(update_record(store, "counter", "c1", slow), fast())
    assert a_saw[0] is None and a_saw[1] is not None
    assert (await stored(store)).by == ["b", "a"]


async def test_a_unique_key_clash_is_the_callers(store: Store) -> None:
    await store.put_record(Record(kind="counter", id="other", doc=b"{}", unique="u"))
    calls: list[int] = []

    def decide(rec: Record | None) -> tuple[Record, None]:
        calls.append(1)
        return Record(kind="counter", id="c1", doc=b"{}", unique="u"), None

    with pytest.raises(DuplicateKey):
        await update_record(store, "counter", "c1", decide)
    assert calls == [1]
    with pytest.raises(ValueError):  # an update saves the record it read, no other
        await update_record(store, "counter", "c1",
                            lambda rec: (Record(kind="counter", id="c2", doc=b"{}"), None))


async def test_gives_up_after_the_tries_with_a_clear_error(store: Store) -> None:
    await store.put_record(count(None, "seed"))
    decided = 0

    async def overtaken(rec: Record | None) -> tuple[Record, None]:
        nonlocal decided
        decided += 1
        assert rec is not None
        # Another writer saves every time, between this read and this write.
        await store.put_record(count(rec, "other"), expect_version=rec.version)
        return count(rec, "mine"), None

    with pytest.raises(UpdateGaveUp) as gave_up:
        await update_record(store, "counter", "c1", overtaken, tries=3)
    assert decided == 3 and gave_up.value.tries == 3
    assert isinstance(gave_up.value, StaleVersion)  # answered 409 like any clash
    assert "counter c1 kept changing" in str(gave_up.value)
    assert "mine" not in (await stored(store)).by


def retitle(inc: Incident | None, suffix: str) -> Outcome:
    assert inc is not None
    changed = msgspec.structs.replace(inc, title=inc.title + suffix)
    return Outcome(changed, [Event(at=2000.0, actor="k_0001", action=f"edit.{suffix}",
                                   before="", after="")], [])


async def test_incident_updates_concurrent_and_declined(store: Store) -> None:
    await store.save_incident(incident(1))
    b_saved = asyncio.Event()
    a_reads: list[int] = []
    saved_by_a: list[Incident] = []

    async def save_slowly(out: Outcome, version: int) -> Incident:
        a_reads.append(version)
        await b_saved.wait()
        saved = await store.save_incident(out.incident, out.events, expect_version=version)
        saved_by_a.append(saved)
        return saved

    async def fast() -> None:
        while not a_reads:
            await asyncio.sleep(0)
        await update_incident(store, "i00001", lambda inc: retitle(inc, "b"))
        b_saved.set()

    done, _ = await asyncio.gather(
        update_incident(store, "i00001", lambda inc: retitle(inc, "a"), save=save_slowly),
        fast())
    assert done is not None
    saved, out = done
    assert saved.title == "case 1ba" and saved.version == 3 and saved_by_a == [saved]
    assert a_reads == [1, 2] and out.incident.title == "case 1ba"
    assert [e.action for e in await store.incident_events("i00001")] == ["edit.b", "edit.a"]

    assert await update_incident(store, "i00001", lambda inc: None) is None
    assert await update_incident(store, "nothing", lambda inc: None) is None
    assert (await store.get_incident("i00001")).version == 3


async def test_incident_update_gives_up(store: Store) -> None:
    await store.save_incident(incident(1))

    async def overtaken(out: Outcome, version: int) -> Incident:
        await store.save_incident(out.incident, expect_version=version)
        return await store.save_incident(out.incident, expect_version=version)

    with pytest.raises(UpdateGaveUp, match="incident i00001 kept changing"):
        await update_incident(store, "i00001", lambda inc: retitle(inc, "x"), save=overtaken,
                              tries=2)
