"""Silences in the store, and the book the detect engine consults for every raised alert.

A silence is stored as a record (`kind="silence"`, see store/record_rows.py), so the three
stores keep it with no schema of its own: `status` is `live` until it is expired early (or a
sweep finds its end passed), then `ended`; `due` is when it stops holding, so a sweep finds
the live ones whose end has passed by the `due` index. A node loads only the live ones.

Every change (made, expired) also writes a new value of the store's meta key
`silences.version`: nodes of a cluster, and a single node whose silences were changed by the
command line, reload when it differs from what they loaded (`SilenceBook.refresh_if_changed`,
one meta read). Each change is audited (`silence.create`, `silence.expire`) with who and why;
when the audit entry or the version cannot be written, the record change is undone, so no
silence holds alerts with nothing saying who made it.

`SilenceBook` keeps the silences not yet ended in memory, indexed (domain.silences.SilenceSet):
`match` answers for an alert in microseconds. `take_ended` tells the engine, once each, of the
silences that stopped holding since it last asked (their end came, someone expired them, or
another node did and this one has just read it), so what they held and still fires can be
evaluated as new.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import Literal, Protocol

import msgspec

from cityops.domain.alerts import Alert
from cityops.domain.registry import DeviceRegistry
from cityops.domain.silences import Silence, SilenceSet, expired
from cityops.store.incident_rows import StaleVersion
from cityops.store.protocols import AuditStore, MetaStore, RecordStore
from cityops.store.record_rows import Record
from cityops.store.values import AuditEntry

log = logging.getLogger(__name__)

KIND = "silence"
VERSION_KEY = "silences.version"
LIVE, ENDED = "live", "ended"
PAGE = 500

Clock = Callable[[], float]
KindOf = Callable[[str], str | None]

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Silence).decode


class SilenceStore(RecordStore, MetaStore, AuditStore, Protocol):
    """What silences need of a store: records, meta (the version) and the audit trail."""


def registry_kinds(registry: DeviceRegistry) -> KindOf:
    """A device id's kind from the node's registry (None for a subject that is no device)."""

    def kind_of(device_id: str) -> str | None:
        device = registry.get(device_id)
        return None if device is None else device.kind

    return kind_of


def new_id() -> str:
    """Base32 (letters and 2-7): no run of it can look like a phone or ID number, which the
    store's sealer would seal, leaving the id unreadable to a node without the data key."""
    return "sil-" + base64.b32encode(uuid.uuid4().bytes[:10]).decode().lower()


def record_of(s: Silence, now: float) -> Record:
    ended = s.expired_at is not None or s.end <= now
    return Record(kind=KIND, id=s.id, doc=_encode(s), owner=s.created_by,
                  status=ENDED if ended else LIVE, due=s.end, created=s.created_at,
                  updated=now)


def silence_of(rec: Record) -> Silence:
    return _decode(rec.doc)


async def bump_version(store: MetaStore) -> str:
    version = uuid.uuid4().hex
    await store.set_meta(VERSION_KEY, version)
    return version


async def load_live(store: RecordStore) -> list[Silence]:
    """Every silence stored as live (some may have ended by time since)."""
    out: list[Silence] = []
    before: tuple[float, str] | None = None
    while True:
        page = await store.find_records(KIND, status=LIVE, limit=PAGE, before=before)
        for rec in page:
            try:
                out.append(silence_of(rec))
            except msgspec.ValidationError as error:  # written by a newer CityOps, say
                log.warning("silence %s cannot be read, skipped: %s", rec.id, error)
        if len(page) < PAGE:
            return out
        before = (page[-1].created, page[-1].id)


async def get_silence(store: RecordStore, silence_id: str) -> Silence | None:
    rec = await store.get_record(KIND, silence_id)
    return None if rec is None else silence_of(rec)


def _audit_after(s: Silence) -> str:
    return _encode({"matchers": s.matchers, "starts_at": s.starts_at, "ends_at": s.ends_at,
                    "by_name": s.created_by_name}).decode()


async def create(store: SilenceStore, silence: Silence, *, now: float,
                 book: SilenceBook | None = None) -> Silence:
    """Store a checked silence, tell the nodes, audit it; all of it or none of it."""
    await store.put_record(record_of(silence, now))
    try:
        await bump_version(store)
        await store.append_audit([AuditEntry(
            actor=silence.created_by, action="silence.create", subject=f"silence:{silence.id}",
            before=None, after=_audit_after(silence), reason=silence.comment, at=now)])
    except BaseException:
        with contextlib.suppress(Exception):
            await store.delete_record(KIND, silence.id)
            await bump_version(store)
        raise
    if book is not None:
        book.put(silence)
    return silence


async def expire(store: SilenceStore, silence_id: str, *, by: str, reason: str, now: float,
                 book: SilenceBook | None = None) -> Silence | None:
    """End a silence now (audited); None when there is no such silence, SilenceEnded when
    it holds nothing any more, StaleVersion when someone changed it meanwhile."""
    rec = await store.get_record(KIND, silence_id)
    if rec is None:
        return None
    before = silence_of(rec)
    done = expired(before, by=by, reason=reason, now=now)
    saved = await store.put_record(record_of(done, now), expect_version=rec.version)
    try:
        await bump_version(store)
        await store.append_audit([AuditEntry(
            actor=by, action="silence.expire", subject=f"silence:{silence_id}",
            before=before.state(now), after="ended", reason=done.expired_reason, at=now)])
    except BaseException:
        with contextlib.suppress(Exception):
            await store.put_record(msgspec.structs.replace(rec, updated=now),
                                   expect_version=saved.version)
            await bump_version(store)
        raise
    if book is not None:
        book.put(done)
    return done


async def sweep(store: RecordStore, now: float, limit: int = 100) -> int:
    """Mark up to `limit` live silences whose end has passed as ended, so the live set the
    nodes load stays small. Nothing changes for a node (the end was known), so the version
    stays; a record another sweep changed meanwhile is left to it."""
    done = 0
    for rec in await store.find_records(KIND, status=LIVE, due_before=now, limit=limit):
        if rec.due is None or rec.due > now:
            continue
        try:
            await store.put_record(msgspec.structs.replace(rec, status=ENDED, updated=now),
                                   expect_version=rec.version)
            done += 1
        except StaleVersion:
            continue
    return done


StateFilter = Literal["active", "pending", "ended"]


async def page(store: RecordStore, *, now: float, state: StateFilter | None, limit: int,
               before: tuple[float, str] | None, visible: Callable[[Silence], bool],
               scan_pages: int = 20) -> tuple[list[Silence], tuple[float, str] | None]:
    """Newest first, those in `state` that `visible` admits; with the (created, id) to go on
    from, or None at the end. Active and pending ones are found among the live records
    alone; at most `scan_pages` store pages are read, so a page may come back short with a
    cursor to go on from."""
    status = LIVE if state in ("active", "pending") else None
    items: list[Silence] = []
    last: tuple[float, str] | None = before
    for _ in range(scan_pages):
        recs = await store.find_records(KIND, status=status, limit=PAGE, before=last)
        for rec in recs:
            last = (rec.created, rec.id)
            s = silence_of(rec)
            if (state is None or s.state(now) == state) and visible(s):
                items.append(s)
                if len(items) == limit:
                    return items, last
        if len(recs) < PAGE:
            return items, None
    return items, last


# -- the book ---------------------------------------------------------------------------------


class SilenceBook:
    """The silences not yet ended, in memory, for the detect engine (see the module doc).

    The engine calls `match(alert, now)` for each alert it raises, `take_ended(now)` on each
    tick, and `refresh_if_changed()` every few seconds; `load()` once at start. Before `load`
    the book holds nothing: alerts pass, as they would with no silence."""

    def __init__(self, store: SilenceStore, clock: Clock = time.time,
                 kind_of: KindOf | None = None) -> None:
        self.store = store
        self.clock = clock
        self.kind_of: KindOf = kind_of or (lambda device_id: None)
        self.version: str | None = None  # the store's, as last loaded
        self.changes = 0  # moves on every change the book takes in, loaded or made here
        self.loaded = False
        self._live: dict[str, Silence] = {}
        self._set = SilenceSet((), self.kind_of)
        self._gone: dict[str, None] = {}  # stopped holding, not yet told (insertion order)

    # -- reading the store

    async def load(self) -> None:
        """Read every live silence. The version is read first: a change made while reading
        leaves the version behind, so the next refresh reads again."""
        version = await self.store.get_meta(VERSION_KEY)
        silences = await load_live(self.store)
        now = self.clock()
        fresh = {s.id: s for s in silences if s.state(now) != "ended" or s.id in self._live}
        for sid in self._live:
            if sid not in fresh:
                self._gone[sid] = None  # expired (or removed) elsewhere
        self._replace(fresh)
        self.version = version
        self.loaded = True

    async def refresh_if_changed(self) -> bool:
        """Reload when the store's version differs from the one loaded (one meta read when
        nothing changed); True when it reloaded."""
        version = await self.store.get_meta(VERSION_KEY)
        if self.loaded and version == self.version:
            return False
        await self.load()
        return True

    # -- changes made through this node

    def put(self, silence: Silence) -> None:
        """A silence made or expired here: in force at once, without waiting for a reload."""
        live = dict(self._live)
        if silence.expired_at is not None:
            if live.pop(silence.id, None) is not None:
                self._gone[silence.id] = None
        else:
            live[silence.id] = silence
        self._replace(live)

    # -- what the engine asks

    def match(self, alert: Alert, now: float | None = None) -> str | None:
        """The id of the silence in force that holds `alert`, or None."""
        if not self._live:
            return None
        found = self._set.match(alert, self.clock() if now is None else now)
        return None if found is None else found.id

    def in_force(self, silence_id: str, now: float | None = None) -> bool:
        """Whether a silence still holds (for alerts restored at start that name one)."""
        s = self._live.get(silence_id)
        return s is not None and s.in_force(self.clock() if now is None else now)

    def take_ended(self, now: float | None = None) -> list[str]:
        """Ids of the silences that stopped holding since the last call, each told once: the
        alerts they held that still fire are then to be evaluated as new."""
        at = self.clock() if now is None else now
        ended = [sid for sid, s in self._live.items() if s.end <= at]
        if ended:
            live = dict(self._live)
            for sid in ended:
                del live[sid]
                self._gone[sid] = None
            self._replace(live)
        out = list(self._gone)
        self._gone.clear()
        return out

    def active(self, now: float | None = None) -> list[Silence]:
        at = self.clock() if now is None else now
        return [s for s in self._live.values() if s.in_force(at)]

    def __len__(self) -> int:
        return len(self._live)

    def _replace(self, live: dict[str, Silence]) -> None:
        self.changes += 1
        self._live = live
        self._set = SilenceSet(live.values(), self.kind_of)
