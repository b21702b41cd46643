"""Silences kept as records: the same on memory, SQLite and PostgreSQL (made, loaded in pages,
listed by state, expired with a version check, swept once ended)."""

from __future__ import annotations

import pytest

from cityops.detect import silences as records
from cityops.detect.silences import SilenceBook
from cityops.domain.silences import Matchers, Silence, SilenceEnded
from cityops.store.base import StaleVersion, Store
from tests.clock_kit import Clock

T0 = 1_800_000_000.0


def silence(n: int, start: float, end: float) -> Silence:
    return Silence(id=f"sil-{n:05d}", matchers=Matchers(area=["310115001"]), starts_at=start,
                   ends_at=end, comment="call 13800138000 for details", created_by="k_op",
                   created_at=T0 + n)


async def test_made_loaded_listed_expired_and_swept(store: Store) -> None:
    for n in range(records.PAGE + 20):  # more than one page of live ones
        await store.put_record(records.record_of(silence(n, T0, T0 + 3600), T0))
    await records.create(store, silence(90000, T0 + 600, T0 + 900), now=T0)
    await records.create(store, silence(90001, T0 - 100, T0 + 50), now=T0 - 100)
    book = SilenceBook(store, Clock(T0))
    await book.load()
    assert len(book) == records.PAGE + 22

    async def listed(state, limit=1000, before=None):
        return await records.page(store, now=T0 + 60, state=state, limit=limit, before=before,
                                  visible=lambda s: True)

    pending, _ = await listed("pending")
    assert [s.id for s in pending] == ["sil-90000"]
    ended, _ = await listed("ended")
    assert [s.id for s in ended] == ["sil-90001"]
    first, cursor = await listed("active", limit=7)
    assert len(first) == 7 and cursor is not None
    rest, end = await listed("active", before=cursor)
    assert end is None and len(first) + len(rest) == records.PAGE + 20
    assert first[0].id == "sil-00519"  # newest first

    done = await records.expire(store, "sil-00003", by="k_op", reason="", now=T0 + 1)
    assert done is not None and done.state(T0 + 1) == "ended"
    assert (await store.get_record(records.KIND, "sil-00003")).status == records.ENDED
    with pytest.raises(SilenceEnded):
        await records.expire(store, "sil-00003", by="k_op", reason="", now=T0 + 2)
    assert await records.expire(store, "nope", by="k_op", reason="", now=T0) is None

    assert await records.sweep(store, T0 + 60) == 1  # sil-90001 ended by its time
    assert await records.sweep(store, T0 + 60) == 0
    again = SilenceBook(store, Clock(T0 + 60))
    await again.load()
    assert len(again) == records.PAGE + 19 + 1  # the expired and the swept are not read


async def test_expiring_a_silence_changed_meanwhile_is_refused(store: Store) -> None:
    await records.create(store, silence(1, T0, T0 + 60), now=T0)
    rec = await store.get_record(records.KIND, "sil-00001")
    await records.expire(store, "sil-00001", by="k_a", reason="", now=T0 + 1)
    with pytest.raises(StaleVersion):
        await store.put_record(rec, expect_version=rec.version)
