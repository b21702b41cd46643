"""Garbage-sorting accuracy per community, from the bin inspections stored as records.

An inspection (domain.sorting.Inspection) is kept as one record of kind `sorting_inspection`:
its community is the record's `owner`, its stream the `status`, its time `created`, so a
period is read newest first by the store's (created, id) order and paging stops at the
period's start. The ranking reads the period asked for and the one of equal length before it
(for the trend) and leaves the arithmetic to domain.sorting.

`demo_inspections` makes a few weeks of daily inspections for a city with none (`cityops
demo`): most communities sort 93-99 % right, about one in twenty below 90 %, hazardous waste
inspected least often and sorted a little worse, each community drifting slowly over time.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

from cityops.domain import sorting as core
from cityops.domain.city import Level
from cityops.domain.sorting import STREAMS, Inspection
from cityops.store.protocols import RecordStore
from cityops.store.record_rows import Record

KIND = "sorting_inspection"
PAGE = 500
WRITE_CHUNK = 64
MAX_READ = 500_000  # inspections read for one ranking: a bound, far above a city's year


class StoredInspection(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    area: str
    stream: str
    checked: int
    correct: int
    at: float
    by: str = ""  # the key (inspector) that posted it
    note: str = ""


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(StoredInspection).decode


@dataclass(slots=True)
class CommunityAccuracy:
    area: str  # the community's (village's) code
    name: str
    town: str  # its town's code
    inspections: int
    accuracy: float | None  # correct / inspected over every stream; None with no inspection
    by_stream: dict[str, float] = field(default_factory=dict)
    rank: int = 0  # within its town, 1 = best
    below_target: bool = False
    trend: float | None = None  # accuracy change against the previous period of equal length
    best: bool = False  # above the best-community mark (98 %)
    previous: float | None = None  # the previous period's accuracy


def new_id() -> str:
    # base32: no run of digits the store's sealer could take for a phone or ID number
    return "insp-" + base64.b32encode(uuid.uuid4().bytes[:10]).decode().lower()


def record_of(s: StoredInspection, rid: str, now: float) -> Record:
    return Record(kind=KIND, id=rid, doc=_encode(s), owner=s.area, status=s.stream,
                  created=s.at, updated=now)


async def add(store: RecordStore, items: list[StoredInspection], now: float) -> list[str]:
    """Store checked inspections (all are checked before any is written); their ids."""
    for s in items:
        core.check_inspection(Inspection(s.area, s.stream, s.checked, s.correct, s.at))
    ids = [new_id() for _ in items]
    # A few dozen at once: the embedded store commits what waits together, one fsync for all.
    for first in range(0, len(items), WRITE_CHUNK):
        await asyncio.gather(*(store.put_record(record_of(s, rid, now)) for s, rid in
                               zip(items[first:first + WRITE_CHUNK],
                                   ids[first:first + WRITE_CHUNK], strict=True)))
    return ids


async def read(store: RecordStore, start: float, end: float) -> list[StoredInspection]:
    """The inspections made in [start, end)."""
    out: list[StoredInspection] = []
    before: tuple[float, str] | None = (end, "")
    while len(out) < MAX_READ:
        page = await store.find_records(KIND, limit=PAGE, before=before)
        for rec in page:
            if rec.created < start:
                return out
            try:
                out.append(_decode(rec.doc))
            except msgspec.ValidationError:
                continue  # written by a newer CityOps: not counted rather than misread
        if len(page) < PAGE:
            break
        before = (page[-1].created, page[-1].id)
    return out


async def any_stored(store: RecordStore) -> bool:
    return bool(await store.find_records(KIND, limit=1))


def communities(city: Any, within: str | None) -> list[core.Community]:
    return [core.Community(a.code, a.name, a.parent or "")
            for a in sorted(city.areas_at(Level.VILLAGE), key=lambda a: a.code)
            if within is None or a.code.startswith(within)]


def _plain(s: StoredInspection) -> Inspection:
    return Inspection(s.area, s.stream, s.checked, s.correct, s.at)


async def ranking(node: Any, *, start: float, end: float, area: str | None = None
                  ) -> tuple[list[CommunityAccuracy], list[core.TownAverage]]:
    length = max(end - start, 1.0)
    rows = await read(node.store, start - length, end)
    inside = [r for r in rows if area is None or r.area.startswith(area)]
    rows_now = [_plain(r) for r in inside if r.at >= start]
    rows_before = [_plain(r) for r in inside if r.at < start]
    ranked, towns = core.rank(communities(node.city, area), rows_now, rows_before)
    return [CommunityAccuracy(r.code, r.name, r.town, r.inspections, r.accuracy, r.by_stream,
                              r.rank, r.below_target, r.trend, r.best, r.previous)
            for r in ranked], towns


async def sorting_ranking(node, *, start: float, end: float,
                          area: str | None = None) -> list[CommunityAccuracy]:
    """Per community inside `area` (any level; None: the city), over [start, end) (epoch s)."""
    return (await ranking(node, start=start, end=end, area=area))[0]


# -- demo data --------------------------------------------------------------------------------

STREAM_WEIGHTS = np.array([0.34, 0.30, 0.26, 0.10])  # hazardous bins are fewer, seen less
STREAM_OFFSET = np.array([-0.010, 0.0, 0.006, -0.030])  # wet waste is the hardest to keep clean


def demo_inspections(city_codes: list[str], *, seed: int, end: float, days: int = 28,
                     per_day: float = 0.8) -> list[StoredInspection]:
    """About `per_day` inspections a community a day over the `days` before `end`."""
    rng = np.random.default_rng([seed, zlib.crc32(b"sorting")])
    out: list[StoredInspection] = []
    for code in city_codes:
        weak = rng.random() < 0.05
        level = rng.uniform(0.84, 0.895) if weak else float(np.clip(rng.normal(0.962, 0.016),
                                                                    0.925, 0.992))
        drift = rng.normal(0.0, 0.0004)  # a day: a community improving or slipping
        for day in range(days):
            if rng.random() >= per_day:
                continue
            s = int(rng.choice(len(STREAMS), p=STREAM_WEIGHTS))
            checked = int(rng.integers(20, 80))
            p = float(np.clip(level + STREAM_OFFSET[s] + drift * (day - days), 0.5, 0.999))
            at = end - (days - day) * 86400.0 + float(rng.uniform(8 * 3600, 17 * 3600))
            out.append(StoredInspection(area=code, stream=STREAMS[s], checked=checked,
                                        correct=int(rng.binomial(checked, p)), at=round(at, 1),
                                        by="demo"))
    return out


async def seed_demo(node: Any, *, days: int = 28) -> int:
    """Store demo inspections when the city has none; how many were stored."""
    if await any_stored(node.store):
        return 0
    now = node.clock()
    codes = [c.code for c in communities(node.city, None)]
    seed = int(node.pack.info.generator.get("seed", 0) or 0)
    items = demo_inspections(codes, seed=seed, end=now, days=days)
    await add(node.store, items, now)
    return len(items)
