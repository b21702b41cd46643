"""A report as kept: its metadata is a store record (kind `report`, owner the area's code, so
a list can be narrowed by area), the PDF bytes a file under the node's data dir.

A scheduled report carries the unique key `scheduled/<area>/<period>`, so two web nodes of a
cluster (or a restart mid-run) never make the same month's report twice; a report asked for
through the API has none, and may be asked for again (the figures of a month still open
change)."""

from __future__ import annotations

import msgspec

from cityops.store.record_rows import Record

KIND = "report"
READY, FAILED = "ready", "failed"


class ReportDoc(msgspec.Struct, kw_only=True, frozen=True):
    id: str
    area: str
    area_name: str
    level: str
    period: str  # as asked: 2026-11, 2026-W47, 2026-11-01..2026-11-15 ...
    first: str  # first day, ISO
    last: str  # last day, ISO (inclusive)
    timezone: str
    status: str  # ready | failed
    made_by: str  # the key's id, or "schedule"
    scheduled: bool = False
    created: float
    size: int = 0  # bytes of the PDF
    sha256: str = ""
    error: str | None = None


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(ReportDoc).decode


def record_of(doc: ReportDoc) -> Record:
    unique = f"scheduled/{doc.area}/{doc.period}" if doc.scheduled else None
    return Record(kind=KIND, id=doc.id, doc=_encode(doc), owner=doc.area, status=doc.status,
                  unique=unique, created=doc.created, updated=doc.created)


def doc_of(rec: Record) -> ReportDoc:
    return _decode(rec.doc)
