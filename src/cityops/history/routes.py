"""History import over HTTP, for admins: the same import as `cityops history import`.

    POST /api/v1/history/import?format=csv|ndjson|parquet&map=OLD:NEW,...&tz=&replay=
    GET  /api/v1/history/imports
    GET  /api/v1/history/imports/{digest}/rejects.csv

The body is streamed to a spool file under the node's history (never held in memory), bounded
by `Settings.max_import_bytes`; one import runs at a time (a second is 429 with Retry-After).
An upload cut off midway stores nothing; the file imported whole is kept by digest, so a client
that retries after a lost answer is told "already imported".
"""

from __future__ import annotations

import asyncio
import os
import re
import uuid
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from starlette.responses import FileResponse

from cityops.api.errors import ApiError
from cityops.api.route import Call, Endpoint, Scope
from cityops.domain.access import Role
from cityops.history.backfill import Backfill
from cityops.history.imports import ImportRefused, Options, Summary, import_file
from cityops.history.log import HistoryLog
from cityops.settings import MAX_IMPORT_BYTES

ADMIN = frozenset({Role.ADMIN})
MEDIA = {"text/csv": "csv", "text/tab-separated-values": "csv", "application/x-ndjson": "ndjson",
         "application/ndjson": "ndjson", "application/vnd.apache.parquet": "parquet",
         "application/octet-stream": None}
SUFFIX = {"csv": ".csv", "ndjson": ".ndjson", "parquet": ".parquet"}
_busy = asyncio.Lock()


class ImportQuery(msgspec.Struct, forbid_unknown_fields=False):
    format: Literal["csv", "ndjson", "parquet"] | None = None
    map: Annotated[str, msgspec.Meta(max_length=4000, description=(
        "Column renames OLD:NEW separated by commas (device_id, ts, value, a channel or a "
        "device id)"))] | None = None
    tz: Annotated[str, msgspec.Meta(max_length=64)] | None = None
    delimiter: Literal[",", ";", "\t", "|"] | None = None
    replay: bool = False
    name: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class Rejected(msgspec.Struct):
    line: int
    column: str
    value: str
    reason: str


class ImportResult(msgspec.Struct):
    source: str
    digest: str
    rows: int
    stored: int
    rejected: int
    duplicates: int
    already_imported: bool
    first_ts: float | None
    last_ts: float | None
    ignored_columns: list[str]
    first_rejects: list[Rejected]
    rejects: str | None  # where every reject can be downloaded
    historical_alerts: int | None = None


class ImportEntry(msgspec.Struct):
    digest: str
    source: str
    stored: int
    rejected: int
    duplicates: int
    started: str
    finished: str | None
    first_ts: float | None
    last_ts: float | None


class ImportList(msgspec.Struct):
    items: list[ImportEntry]


def _backfill(call: Call) -> Backfill:
    node = call.node
    if not isinstance(node.history, HistoryLog):
        raise ApiError(409, "this node does not keep the history; send the import to a node "
                            "with the history role")
    return Backfill(node.history.root, node.registry, fsync=node.settings.fsync)


def _mapping(text: str | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        old, sep, new = part.partition(":")
        if not sep or not old.strip() or not new.strip():
            raise ApiError(400, f"map: {part!r} is not OLD:NEW")
        out[old.strip()] = new.strip()
    return out


async def import_history(call: Call[None, ImportQuery]) -> ImportResult:
    node, q = call.node, call.query
    backfill = _backfill(call)
    zone = q.tz or node.pack.info.timezone
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ApiError(400, f"tz {zone!r} is not a time zone (like Asia/Shanghai or UTC)") from None
    media = call.request.headers.get("content-type", "").split(";")[0].strip().lower()
    fmt = q.format or MEDIA.get(media)
    if fmt is None:
        raise ApiError(415, "say what the body is: ?format=csv|ndjson|parquet, or Content-Type "
                            "text/csv, application/x-ndjson or application/vnd.apache.parquet")
    options = Options(mapping=_mapping(q.map), timezone=zone, fmt=fmt, delimiter=q.delimiter)
    if _busy.locked():
        raise ApiError(429, "an import is running; try again when it is done",
                       headers={"Retry-After": "30"})
    async with _busy:
        spool = backfill.root / "uploads"
        spool.mkdir(parents=True, exist_ok=True)
        for stale in spool.iterdir():  # left by a node stopped mid-upload: one runs at a time
            stale.unlink(missing_ok=True)
        path = spool / f"{uuid.uuid4().hex}{SUFFIX[fmt]}"
        try:
            await _receive(call, path, node.settings.max_import_bytes)
            label = q.name or f"upload {path.stem[:8]}{SUFFIX[fmt]}"
            rejects = backfill.journals / "rejects"
            rejects.mkdir(parents=True, exist_ok=True)
            digest_path = rejects / f"{path.stem}.csv"
            try:
                summary: Summary = await asyncio.to_thread(
                    import_file, path, backfill, options, rejects_path=digest_path, label=label,
                    live=node.history.recent_frames)
            except ImportRefused as error:
                raise ApiError(400, str(error).replace(str(path), "the body")) from None
            rejects_url = None
            if summary.rejects_path is not None:
                final = rejects / f"{summary.digest}.csv"
                os.replace(digest_path, final)
                rejects_url = f"/api/v1/history/imports/{summary.digest}/rejects.csv"
            found = None
            if q.replay and summary.stored and not summary.already_imported:
                from cityops.detect.past import detect_past

                findings = await detect_past(node.pack, node.detect.scenarios, node.registry,
                                             backfill, node.store, [summary.digest])
                found = findings.alerts
        finally:
            path.unlink(missing_ok=True)
    return ImportResult(
        summary.source, summary.digest, summary.rows, summary.stored, summary.rejected,
        summary.duplicates, summary.already_imported, summary.first_ts, summary.last_ts,
        summary.ignored_columns,
        [Rejected(r.line, r.column, r.value, r.reason) for r in summary.first_rejects],
        rejects_url, found)


async def _receive(call: Call, path: Path, limit: int) -> None:
    """The body to `path`, chunk by chunk; past `limit` bytes the upload is refused (413)."""
    received = 0
    declared = call.request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the body is {int(declared):,} bytes; imports take at most "
                            f"{limit:,} (split the file, or raise max_import_bytes)")
    f = await asyncio.to_thread(open, path, "wb")
    try:
        async for chunk in call.request.stream():
            received += len(chunk)
            if received > limit:
                raise ApiError(413, f"the body is over {limit:,} bytes; split the file, or "
                                    "raise max_import_bytes")
            await asyncio.to_thread(f.write, chunk)
    finally:
        await asyncio.to_thread(f.close)
    if received == 0:
        raise ApiError(400, "the body is empty: send the file's contents")


async def list_imports(call: Call[None, None]) -> ImportList:
    backfill = _backfill(call)
    items = []
    for j in await asyncio.to_thread(backfill.all_journals):
        span = j.span()
        items.append(ImportEntry(j.digest, j.source, j.stored, j.rejected, j.duplicates,
                                 j.started, j.finished, span[0] / 1e6 if span else None,
                                 span[1] / 1e6 if span else None))
    items.sort(key=lambda e: e.started, reverse=True)
    return ImportList(items)


async def import_rejects(call: Call[None, None]) -> FileResponse:
    digest = call.path["digest"]
    if not re.fullmatch(r"[0-9a-f]{32}", digest):
        raise ApiError(404, f"no import {digest!r}")
    path = _backfill(call).journals / "rejects" / f"{digest}.csv"
    if not path.exists():
        raise ApiError(404, f"no rejects of import {digest!r}")
    return FileResponse(path, media_type="text/csv",
                        filename=f"rejects-{digest[:8]}.csv")


ROUTES = [
    Endpoint("POST", "/api/v1/history/import", import_history,
             "Import readings of any age (CSV, NDJSON or Parquet body); idempotent by the "
             "file's digest; bad cells listed with their line and reason, good ones kept",
             ADMIN, Scope.CITY, query=ImportQuery, response=ImportResult, raw_body=True,
             body_limit=MAX_IMPORT_BYTES,  # the default; a node's max_import_bytes applies
             request_content={"text/csv": {"type": "string"},
                              "application/x-ndjson": {"type": "string"},
                              "application/vnd.apache.parquet": {"type": "string",
                                                                 "format": "binary"}},
             errors=(409, 413, 415), tags=("history",)),
    Endpoint("GET", "/api/v1/history/imports", list_imports,
             "Imports of history done on this node, newest first", ADMIN, Scope.CITY,
             response=ImportList, tags=("history",)),
    Endpoint("GET", "/api/v1/history/imports/{digest}/rejects.csv", import_rejects,
             "The rows an import refused: line, column, value, reason", ADMIN, Scope.CITY,
             media_type="text/csv", errors=(404,), examples={"digest": "0" * 32},
             tags=("history",)),
]
