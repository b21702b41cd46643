"""The silence book the detect engine consults: loaded from the store, matching alerts,
telling once of each silence that stopped holding (its end came, it was expired here or on
another node), and reloading only when the store's version changed."""

from __future__ import annotations

import msgspec
import pytest

from cityops.detect import silences as records
from cityops.detect.silences import VERSION_KEY, SilenceBook
from cityops.domain.alerts import Alert
from cityops.domain.city import AreaCodes
from cityops.domain.silences import Matchers, Silence
from cityops.store.memory import MemoryStore
from tests.clock_kit import Clock

T0 = 1_800_000_000.0
TOWN, VILLAGE = "310115001", "310115001002"


def alert(subject: str = "noise-1", rule: str = "noise.night") -> Alert:
    return Alert(id="a", scenario=rule.split(".")[0], rule=rule,
                 category="event.environment.noise", severity="minor", urgency="normal",
                 departments=["environment"], subject=subject, title="Loud",
                 areas=AreaCodes(TOWN[:6], TOWN, VILLAGE), first_seen=T0, last_seen=T0)


def silence(sid: str, start: float, end: float, **matchers) -> Silence:
    return Silence(id=sid, matchers=Matchers(**(matchers or {"area": [TOWN]})),
                   starts_at=start, ends_at=end, comment="works", created_by="k_op",
                   created_at=start)


@pytest.fixture
async def store():
    s = MemoryStore()
    await s.open()
    yield s
    await s.close()


async def test_load_then_match_within_the_span(store) -> None:
    clock = Clock(T0)
    await records.create(store, silence("s1", T0, T0 + 600), now=T0)
    await records.create(store, silence("s2", T0 + 100, T0 + 200, device=["noise-2"]), now=T0)
    book = SilenceBook(store, clock)
    assert book.match(alert()) is None  # not loaded: nothing held
    await book.load()
    assert len(book) == 2
    assert book.match(alert()) == "s1"
    assert book.match(alert("noise-2"), T0 + 50) == "s1"
    assert book.match(alert("noise-2", rule="noise.day"), T0 + 150) == "s1"
    assert book.match(alert(), T0 + 600) is None
    assert book.in_force("s1", T0 + 1) and not book.in_force("s2", T0 + 1)


async def test_kind_is_looked_up_by_the_function_given(store) -> None:
    await records.create(store, silence("k", T0, T0 + 60, kind=["noise"]), now=T0)
    book = SilenceBook(store, Clock(T0), kind_of={"noise-1": "noise"}.get)
    await book.load()
    assert book.match(alert("noise-1")) == "k"
    assert book.match(alert("cell:8a")) is None


async def test_each_end_is_told_once_when_its_time_comes(store) -> None:
    clock = Clock(T0)
    await records.create(store, silence("short", T0, T0 + 60), now=T0)
    await records.create(store, silence("long", T0, T0 + 600), now=T0)
    book = SilenceBook(store, clock)
    await book.load()
    assert book.take_ended(T0 + 59) == []
    assert book.take_ended(T0 + 60) == ["short"]
    assert book.take_ended(T0 + 61) == []
    assert book.match(alert(), T0 + 61) == "long"
    clock.now = T0 + 601
    assert book.take_ended() == ["long"]
    assert len(book) == 0 and book.match(alert()) is None


async def test_expired_here_is_out_at_once_and_told(store) -> None:
    clock = Clock(T0)
    book = SilenceBook(store, clock)
    await book.load()
    await records.create(store, silence("s", T0, T0 + 3600), now=T0, book=book)
    assert book.match(alert()) == "s"
    clock.now = T0 + 10
    done = await records.expire(store, "s", by="k_op", reason="fixed", now=clock.now, book=book)
    assert done is not None and done.expired_at == T0 + 10
    assert book.match(alert()) is None
    assert book.take_ended() == ["s"]


async def test_a_change_made_elsewhere_is_read_when_the_version_moves(store) -> None:
    clock = Clock(T0)
    here, there = SilenceBook(store, clock), SilenceBook(store, clock)
    await here.load()
    await there.load()
    assert await here.refresh_if_changed() is False  # nothing changed: one meta read
    await records.create(store, silence("s", T0, T0 + 3600), now=T0, book=there)
    assert here.match(alert()) is None
    assert await here.refresh_if_changed() is True
    assert here.match(alert()) == "s"
    await records.expire(store, "s", by="k_op", reason="", now=T0 + 5, book=there)
    assert await here.refresh_if_changed() is True
    assert here.match(alert(), T0 + 6) is None
    assert here.take_ended(T0 + 6) == ["s"]  # learnt late, still told
    assert await here.refresh_if_changed() is False


async def test_refresh_loads_a_book_never_loaded(store) -> None:
    await records.create(store, silence("s", T0, T0 + 60), now=T0)
    book = SilenceBook(store, Clock(T0))
    assert await book.refresh_if_changed() is True
    assert book.match(alert()) == "s"


async def test_ended_silences_are_not_loaded_and_a_sweep_retires_them(store) -> None:
    await records.create(store, silence("old", T0 - 7200, T0 - 3600), now=T0 - 7200)
    await records.create(store, silence("now", T0, T0 + 60), now=T0)
    book = SilenceBook(store, Clock(T0))
    await book.load()
    assert len(book) == 1
    assert await records.sweep(store, T0) == 1
    live = await store.find_records(records.KIND, status=records.LIVE)
    assert [r.id for r in live] == ["now"]


class FailingAudit(MemoryStore):
    async def append_audit(self, entries) -> None:
        raise RuntimeError("audit trail unavailable")


async def test_nothing_half_applied_when_the_audit_fails() -> None:
    store = FailingAudit()
    await store.open()
    book = SilenceBook(store, Clock(T0))
    with pytest.raises(RuntimeError):
        await records.create(store, silence("s", T0, T0 + 60), now=T0, book=book)
    assert await store.get_record(records.KIND, "s") is None
    assert book.match(alert()) is None
    # Expiring: the stored silence is back as it was.
    await MemoryStore.put_record(store, records.record_of(silence("t", T0, T0 + 60), T0))
    with pytest.raises(RuntimeError):
        await records.expire(store, "t", by="k", reason="", now=T0 + 1, book=book)
    back = await records.get_silence(store, "t")
    assert back is not None and back.expired_at is None


async def test_the_version_key_changes_on_every_change(store) -> None:
    await records.create(store, silence("s", T0, T0 + 60), now=T0)
    first = await store.get_meta(VERSION_KEY)
    await records.expire(store, "s", by="k", reason="", now=T0 + 1)
    assert first and await store.get_meta(VERSION_KEY) != first


async def test_audit_entries_say_who_and_why(store) -> None:
    await records.create(store, silence("s", T0, T0 + 60), now=T0)
    await records.expire(store, "s", by="k_boss", reason="storm over", now=T0 + 1)
    entries = await store.list_audit(subject="silence:s")
    assert [(e.action, e.actor, e.reason) for e in entries] == [
        ("silence.expire", "k_boss", "storm over"), ("silence.create", "k_op", "works")]
    made = msgspec.json.decode(entries[1].after)
    assert made["matchers"] == {"area": [TOWN]} and made["ends_at"] == T0 + 60


async def test_a_book_of_thousands_matches_quickly_by_count_of_checks(store) -> None:
    many = [silence(f"d{i}", T0, T0 + 60, device=[f"dev-{i}"]) for i in range(3000)]
    for s in many:
        await store.put_record(records.record_of(s, T0))
    book = SilenceBook(store, Clock(T0))
    await book.load()
    assert len(book) == 3000  # read in pages
    assert book.match(alert("dev-2999")) == "d2999"
    assert len(book._set.candidates(alert("dev-7"))) == 1  # noqa: SLF001


async def test_changes_move_with_every_change_taken_in(store) -> None:
    clock = Clock(T0)
    book = SilenceBook(store, clock)
    await book.load()
    seen = book.changes
    await records.create(store, silence("s", T0, T0 + 60), now=T0, book=book)
    assert book.changes > seen
    seen = book.changes
    assert await book.refresh_if_changed() is True  # the store moved on too
    assert book.take_ended(T0 + 1) == [] and book.changes == seen + 1  # reloaded once
    seen = book.changes
    assert book.take_ended(T0 + 60) == ["s"] and book.changes == seen + 1


def test_ids_never_look_like_a_phone_or_id_number() -> None:
    from cityops.domain.privacy import mask_text

    ids = [records.new_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert [i for i in ids if mask_text(i) != i] == []
