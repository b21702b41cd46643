"""Lists as files: `?format=csv` or `?format=xlsx` on a list route (or `Accept: text/csv`, or
the spreadsheet media type, when no format is named) answers the whole list as a download.

A list route declares `export=Export(...)` and nothing else changes: the route layer decodes
the query with the same model, resolves the key, applies the same roles and scope, and then,
instead of calling the handler once, reads the list page after page, the next page being read
while the one before is written out. By default the pages come from the handler itself,
called with the query it was given, `limit` set to the export's page size and `cursor` set to
the `next` the page before answered, so an export holds exactly what the JSON pages hold,
filters and scope narrowing included, and never more than two pages in memory. A list
without such a cursor names its own `pages`.

The columns follow from the item type of the response's `items`: each field one column, a
nested object's fields flattened as `parent.child`, a list of plain values joined with "; ",
anything deeper written as JSON in its cell. Numbers that are times (fields named `at`, `ts`,
`created`, or ending in `_at`, `_due`, `_seen`, `_since`, `due`, unless the export names its
`times`) are written in the city's own zone: ISO 8601 in CSV, date-time cells in XLSX.

CSV is UTF-8 with a byte-order mark (Excel then reads Chinese names right), and text that
starts with = + - @, a tab or a carriage return (and is not a plain number) gets a leading
apostrophe, so a spreadsheet never runs it as a formula (OWASP's CSV injection advice). In
XLSX every text is a text cell (never a formula); such text gets Excel's quote prefix too,
so editing the cell does not turn it into one.

XLSX is a zip whose directory comes last, so it cannot go out row by row: the workbook is
written (xlsxwriter's constant-memory mode: one row in memory) to a temporary file in the
node's data folder, then sent and deleted. Past a sheet's 1,048,576 rows the rows go on in
another sheet.

An export counts as one of its key's requests in progress until its last byte is sent, and a
node streams at most `MAX_EXPORTS` at once (503 and Retry-After beyond). A failure after the
first bytes cuts the connection rather than end the file early: a client never mistakes a part
for the whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import datetime as dt
import enum
import io
import logging
import operator
import os
import re
import tempfile
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import msgspec
import msgspec.inspect as mi
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from cityops.api.errors import ApiError

if TYPE_CHECKING:
    from cityops.api.route import Call, Endpoint

log = logging.getLogger(__name__)

CSV = "text/csv"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMATS = {"csv": CSV, "xlsx": XLSX}
MAX_EXPORTS = 4  # exports a node streams at once: each holds a page, a thread and maybe a file
SHEET_ROWS = 1_048_576  # Excel's rows a sheet, the header row included
CELL_TEXT = 32_767  # Excel's characters a cell
PAGE = 1000
PIECE = 100  # CSV rows a chunk sent
STALE_FILE_S = 3600.0  # an XLSX file this old in the export folder was left by a crash

Pager = Callable[["Call[Any, Any]"], AsyncIterator[Sequence[Any]]]


@dataclass(frozen=True)
class Export:
    """How a list route is written as a file."""

    name: str  # the file's name before its extension
    pages: Pager | None = None  # the list a page after another; None: the handler, by cursor
    item: type | None = None  # the type of a row; None: the item type of `response.items`
    times: tuple[str, ...] | None = None  # columns holding times; None: found by name
    page_size: int | None = None  # rows read a page; None: PAGE


# -- which format ------------------------------------------------------------------------------


def wanted(request: Request) -> str | None:
    """The format asked for: `format=` when given (400 for one not served), else a CSV or
    XLSX media type preferred over JSON in Accept; None for JSON."""
    named = request.query_params.getlist("format")
    if len(named) > 1:
        raise ApiError(400, "query parameter 'format' is given more than once")
    if named:
        fmt = named[0].strip().lower()
        if fmt == "json":
            return None
        if fmt not in FORMATS:
            raise ApiError(400, f"format={named[0]!r} is not one of: json, "
                                f"{', '.join(FORMATS)}")
        return fmt
    return _from_accept(request.headers.get("accept", ""))


def _from_accept(accept: str) -> str | None:
    best: tuple[float, int] = (0.0, 0)  # (q, preference: JSON first on a tie)
    found = None
    rank = {"application/json": (None, 3), CSV: ("csv", 2), XLSX: ("xlsx", 1)}
    for part in accept.split(",")[:32]:
        media, *params = (p.strip() for p in part.split(";"))
        if media.lower() not in rank:
            continue
        q = 1.0
        for p in params:
            name, _, value = p.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        fmt, pref = rank[media.lower()]
        if q > 0 and (q, pref) > best:
            best, found = (q, pref), fmt
    return found


# -- columns -----------------------------------------------------------------------------------

PLAIN, TIME, JOIN, JSON = range(4)
_TIME_NAME = re.compile(r"^(at|ts|due|created)$|_(at|due|seen|since)$")
_SCALARS = (mi.StrType, mi.IntType, mi.FloatType, mi.BoolType, mi.EnumType, mi.LiteralType)
_NUMBERS = (mi.IntType, mi.FloatType)


@dataclass(frozen=True)
class Column:
    header: str  # the JSON's names, parent.child for a nested object's field
    attrs: tuple[str, ...]  # the same as attribute names
    kind: int

    def getter(self) -> Callable[[Any], Any]:
        """The column's value of an item (None where absent or unset)."""
        attrs = self.attrs
        if len(attrs) == 1:
            name = attrs[0]

            def get(item: Any) -> Any:
                value = getattr(item, name, None)
                return None if value is msgspec.UNSET else value
            return get

        def get_nested(item: Any) -> Any:
            value = item
            for name in attrs:
                value = getattr(value, name, None)
                if value is None or value is msgspec.UNSET:
                    return None
            return value
        return get_nested


def _optional(t: mi.Type) -> mi.Type:
    if isinstance(t, mi.UnionType):
        rest = [x for x in t.types if not isinstance(x, mi.NoneType)]
        if len(rest) == 1:
            return rest[0]
    return t


def columns_of(item: type, times: tuple[str, ...] | None = None) -> list[Column]:
    info = mi.type_info(item)
    if not isinstance(info, mi.StructType):
        raise TypeError(f"an export's rows are structs, not {item!r}")
    out: list[Column] = []
    _walk(out, (), (), info, times)
    return out


def _walk(out: list[Column], path: tuple[str, ...], attrs: tuple[str, ...],
          info: mi.StructType, times: tuple[str, ...] | None) -> None:
    for f in info.fields:
        here, names = (*path, f.encode_name), (*attrs, f.name)
        header = ".".join(here)
        t = _optional(f.type)
        if isinstance(t, mi.StructType) and len(here) < 3:
            _walk(out, here, names, t, times)
            continue
        if times is not None:
            is_time = header in times
        else:
            is_time = isinstance(t, _NUMBERS) and bool(_TIME_NAME.search(f.encode_name))
        if is_time:
            kind = TIME
        elif isinstance(t, _SCALARS):
            kind = PLAIN
        elif isinstance(t, (mi.ListType, mi.SetType, mi.FrozenSetType, mi.VarTupleType)) \
                and isinstance(_optional(t.item_type), _SCALARS):
            kind = JOIN
        else:
            kind = JSON
        out.append(Column(header, names, kind))


def _local(value: Any, tz: ZoneInfo) -> dt.datetime | None:
    try:
        if value.__class__ is float or value.__class__ is int:
            return dt.datetime.fromtimestamp(value, tz)
        if isinstance(value, str) and value:
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(tz)
    except (ValueError, OverflowError, OSError):
        pass
    return None


def _iso(when: dt.datetime) -> str:
    return when.isoformat(timespec="milliseconds" if when.microsecond else "seconds")


_RISKY = frozenset("=+-@\t\r")
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def risky(text: str) -> bool:
    """Text a spreadsheet would take for a formula (a plain signed number is only a number)."""
    return bool(text) and text[0] in _RISKY and not _NUMBER.fullmatch(text)


def _text(value: Any, kind: int) -> str | None:
    """A JOIN or JSON cell's text (None when empty)."""
    if value is None or value is msgspec.UNSET or (
            not value and isinstance(value, (list, tuple, set, frozenset, dict))):
        return None
    if kind == JOIN and isinstance(value, (list, tuple, set, frozenset)):
        return "; ".join(_scalar_text(v) for v in value)
    return msgspec.json.encode(value).decode()


def _scalar(value: Any) -> Any:
    """A scalar as a cell holds it: an enum as its value."""
    return value.value if isinstance(value, enum.Enum) else value


def _scalar_text(value: Any) -> str:
    value = _scalar(value)
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


# -- CSV ---------------------------------------------------------------------------------------


class CsvRows:
    """Pages of items to CSV bytes, the header first (after the byte-order mark).

    A row is every top-level attribute fetched at once (one attrgetter call), then only the
    cells that need it changed: nested fields looked up, times written out, lists and objects
    encoded, text that looks like a formula quoted. A million rows pay for every step made
    per cell, so the steps are chosen once per column, here."""

    def __init__(self, columns: Sequence[Column], tz: ZoneInfo) -> None:
        self.columns = columns
        self.tz = tz
        tops = list(dict.fromkeys(c.attrs[0] for c in columns))
        at = {name: i for i, name in enumerate(tops)}
        fetch = operator.attrgetter(*tops)
        self._fetch: Callable[[Any], Any] = (fetch if len(tops) > 1
                                             else lambda item: (fetch(item),))
        self._index = [at[c.attrs[0]] for c in columns]
        self._nested = [(i, c.attrs[1:]) for i, c in enumerate(columns) if len(c.attrs) > 1]
        self._plain = [i for i, c in enumerate(columns) if c.kind == PLAIN]
        self._times = [i for i, c in enumerate(columns) if c.kind == TIME]
        self._other = [(i, c.kind) for i, c in enumerate(columns) if c.kind in (JOIN, JSON)]

    def _row(self, item: Any) -> list[Any]:
        values = self._fetch(item)
        out = [values[i] for i in self._index]
        for i, rest in self._nested:
            value = out[i]
            for name in rest:
                if value is None or value is msgspec.UNSET:
                    break
                value = getattr(value, name, None)
            out[i] = value
        for i in self._plain:
            value = out[i]
            if value.__class__ is str:
                if value and value[0] in _RISKY and risky(value):
                    out[i] = "'" + value
            elif value is None or value.__class__ is int or value.__class__ is float:
                pass  # the csv module writes None as nothing, numbers as repr()
            elif value is True or value is False:
                out[i] = "true" if value else "false"
            elif value is msgspec.UNSET:
                out[i] = None
            else:
                text = _scalar_text(value)  # enums
                out[i] = "'" + text if risky(text) else text
        for i in self._times:
            value = out[i]
            if value is None or value is msgspec.UNSET:
                out[i] = None
                continue
            local = _local(value, self.tz)
            text = _iso(local) if local is not None else _scalar_text(value)
            out[i] = "'" + text if risky(text) else text
        for i, kind in self._other:
            found = _text(out[i], kind)
            out[i] = None if found is None else "'" + found if risky(found) else found
        return out

    def head(self) -> bytes:
        return "\ufeff".encode() + self._write([[c.header for c in self.columns]])

    def page(self, items: Sequence[Any]) -> bytes:
        return b"".join(self.pieces(items))

    def pieces(self, items: Sequence[Any]) -> list[bytes]:
        """The page's CSV in pieces of `PIECE` rows: no allocation of several megabytes for a
        page of long rows, which the allocator would keep (and reuse badly) afterwards."""
        row = self._row
        return [self._write([row(item) for item in items[at:at + PIECE]])
                for at in range(0, len(items), PIECE)]

    @staticmethod
    def _write(rows: list[list[Any]]) -> bytes:
        buffer = io.StringIO()
        csv.writer(buffer).writerows(rows)
        return buffer.getvalue().encode("utf-8")


# -- XLSX --------------------------------------------------------------------------------------


class XlsxBook:
    """A workbook written a page at a time to `path` (xlsxwriter, constant memory)."""

    def __init__(self, path: Path, name: str, columns: Sequence[Column], tz: ZoneInfo) -> None:
        import xlsxwriter

        self.book = xlsxwriter.Workbook(str(path), {
            "constant_memory": True, "tmpdir": str(path.parent),
            # Text stays text: nothing in a cell is taken for a formula, URL or number.
            "strings_to_formulas": False, "strings_to_urls": False,
            "strings_to_numbers": False})
        self.name = re.sub(r"[\[\]:*?/\\]", "_", name)[:25] or "export"
        self.columns = columns
        self.getters = [c.getter() for c in columns]
        self.tz = tz
        self.when = self.book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        self.quoted = self.book.add_format({"quote_prefix": True})
        self.sheets = 0
        self.row = SHEET_ROWS  # a sheet is opened at the first row
        self.rows = 0
        self.sheet: Any = None

    def _next_sheet(self) -> None:
        self.sheets += 1
        self.sheet = self.book.add_worksheet(self.name if self.sheets == 1
                                             else f"{self.name} {self.sheets}")
        for i, c in enumerate(self.columns):
            self.sheet.write_string(0, i, c.header)
        self.row = 1

    def page(self, items: Sequence[Any]) -> None:
        if self.sheet is None:
            self._next_sheet()
        for item in items:
            if self.row >= SHEET_ROWS:
                self._next_sheet()
            self._write(self.row, item)
            self.row += 1
            self.rows += 1

    def _write(self, r: int, item: Any) -> None:
        sheet = self.sheet
        for i, (c, get) in enumerate(zip(self.columns, self.getters, strict=True)):
            value = _scalar(get(item))
            if value is None:
                continue
            if c.kind == TIME:
                when = _local(value, self.tz)
                if when is not None:
                    sheet.write_datetime(r, i, when.replace(tzinfo=None), self.when)
                    continue
            if c.kind in (JOIN, JSON):
                value = _text(value, c.kind)
                if value is None:
                    continue
            if isinstance(value, bool):
                sheet.write_boolean(r, i, value)
            elif isinstance(value, (int, float)):
                sheet.write_number(r, i, value)
            else:
                text = str(value)[:CELL_TEXT]
                if risky(text):
                    sheet.write_string(r, i, text, self.quoted)
                else:
                    sheet.write_string(r, i, text)

    def close(self) -> None:
        if self.sheet is None:
            self._next_sheet()  # an empty list is a sheet with its header
        if self.rows >= 1_000_000:
            # The sheets' XML may pass 4 GiB unzipped; below that Excel is happier without.
            self.book.use_zip64()
        self.book.close()


def _folder(call: Call[Any, Any]) -> Path:
    folder = Path(call.node.settings.data_dir) / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in folder.glob("export-*.xlsx"):
        with contextlib.suppress(OSError):
            if now - old.stat().st_mtime > STALE_FILE_S:
                old.unlink()
    return folder


# -- pages -------------------------------------------------------------------------------------


def _limit_max(kind: type) -> int | None:
    info = mi.type_info(kind)
    if isinstance(info, mi.StructType):
        for f in info.fields:
            t = _optional(f.type)
            if f.encode_name == "limit" and isinstance(t, mi.IntType):
                return t.le if t.le is not None else (t.lt - 1 if t.lt is not None else 2**31)
    return None


async def handler_pages(handler: Callable[[Call[Any, Any]], Awaitable[Any]],
                        call: Call[Any, Any], size: int) -> AsyncIterator[Sequence[Any]]:
    """The list as the JSON route answers it, page after page: the call's query with `limit`
    at `size` (or the route's most) and `cursor` at each page's `next`."""
    kind = type(call.query)
    base = msgspec.to_builtins(call.query)
    most = _limit_max(kind)
    if most is not None:
        base["limit"] = min(size, most)
    pages_by_cursor = "cursor" in {f.encode_name for f in msgspec.structs.fields(kind)}
    seen: set[str] = set()
    while True:
        call.query = msgspec.convert(base, kind, strict=False)
        page = await handler(call)
        yield page.items
        nxt = getattr(page, "next", None)
        if not nxt or not pages_by_cursor:
            return
        if nxt in seen:  # a cursor that does not move on would page for ever
            raise RuntimeError(f"the list's cursor {nxt!r} came twice")
        seen.add(nxt)
        base["cursor"] = nxt


def item_type(endpoint: Endpoint) -> type:
    export = endpoint.export
    assert export is not None
    if export.item is not None:
        return export.item
    info = mi.type_info(endpoint.response)
    if isinstance(info, mi.StructType):
        for f in info.fields:
            if f.encode_name == "items" and isinstance(f.type, mi.ListType) \
                    and isinstance(f.type.item_type, mi.StructType):
                kind: type = f.type.item_type.cls
                return kind
    raise TypeError(f"{endpoint.method} {endpoint.path}: an export needs `item` or a "
                    "response with a list of `items`")


_columns: dict[tuple[type, tuple[str, ...] | None], list[Column]] = {}


def columns_for(endpoint: Endpoint) -> list[Column]:
    assert endpoint.export is not None
    key = (item_type(endpoint), endpoint.export.times)
    found = _columns.get(key)
    if found is None:
        found = _columns[key] = columns_of(*key)
    return found


# -- the answer --------------------------------------------------------------------------------


class _Streamed(StreamingResponse):
    """Releases what the export holds once the last byte is sent, or the client is gone."""

    def __init__(self, chunks: AsyncGenerator[bytes, None], release: Callable[[], None],
                 media_type: str, headers: dict[str, str]) -> None:
        super().__init__(chunks, media_type=media_type, headers=headers)
        self._chunks = chunks
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            try:
                await self._chunks.aclose()
            finally:
                self._release()


def _hold(call: Call[Any, Any]) -> Callable[[], None]:
    """Take a place among the node's exports and the key's requests in progress, for as long
    as the stream runs (the route's own place ends when the handler returns)."""
    from cityops.api.fairshare import share_of

    state = call.request.app.state
    running = getattr(state, "exports_running", 0)
    if running >= MAX_EXPORTS:
        raise ApiError(503, f"{running} exports are being written; try again shortly",
                       headers={"Retry-After": "5"})
    share = share_of(call.request)
    held: contextlib.ExitStack = contextlib.ExitStack()
    if share is not None and call.who is not None:
        held.enter_context(share.hold(call.who.key_id))
    state.exports_running = running + 1
    done = False

    def release() -> None:
        nonlocal done
        if not done:
            done = True
            state.exports_running -= 1
            held.close()

    return release


def _filename(export: Export, call: Call[Any, Any], fmt: str, tz: ZoneInfo) -> str:
    stem = export.name
    if call.record is not None and getattr(call.record, "id", None):
        stem += "-" + str(call.record.id)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem)[:120]
    day = dt.datetime.fromtimestamp(call.node.clock(), tz).date().isoformat()
    return f"{stem}-{day}.{fmt}"


async def start(endpoint: Endpoint, call: Call[Any, Any], fmt: str) -> Response:
    """The export's answer. The first page is read here, so that what the JSON route would
    refuse (a bad filter, a missing service) is refused with its status before anything is
    sent; the rest are read while the answer streams."""
    export = endpoint.export
    assert export is not None
    columns = columns_for(endpoint)
    tz = ZoneInfo(call.node.pack.info.timezone)
    pages = (export.pages(call) if export.pages is not None
             else handler_pages(endpoint.handler, call, export.page_size or PAGE))
    head = call.request.method == "HEAD"
    release = _hold(call) if not head else (lambda: None)
    try:
        first = await anext(aiter(pages), None)
        headers = {"Content-Disposition":
                   f'attachment; filename="{_filename(export, call, fmt, tz)}"',
                   "Cache-Control": "no-store"}
        if head:
            await _close(pages)
            return Response(status_code=200, media_type=FORMATS[fmt], headers=headers)
        if fmt == "csv":
            chunks = _csv_chunks(CsvRows(columns, tz), first, pages)
        else:
            chunks = _xlsx_chunks(_folder(call), export.name, columns, tz, first, pages)
        media = FORMATS[fmt] + ("; charset=utf-8" if fmt == "csv" else "")
        return _Streamed(chunks, release, media, headers)
    except BaseException:
        release()
        await _close(pages)
        raise


async def _rest(first: Sequence[Any] | None, pages: AsyncIterator[Sequence[Any]]
                ) -> AsyncIterator[Sequence[Any]]:
    """`first`, then the other pages, each asked for while the one before is being written
    (in a thread), so the store's query runs beside the writing: two pages in memory at most."""
    if first is None:
        return
    ahead: asyncio.Future[Sequence[Any] | None] = asyncio.ensure_future(anext(pages, None))
    try:
        yield first
        while (page := await ahead) is not None:
            ahead = asyncio.ensure_future(anext(pages, None))
            yield page
    finally:
        if not ahead.done():
            ahead.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ahead


async def _csv_chunks(rows: CsvRows, first: Sequence[Any] | None,
                      pages: AsyncIterator[Sequence[Any]]) -> AsyncGenerator[bytes, None]:
    try:
        yield rows.head()
        async for page in _rest(first, pages):
            if page:
                # Off the event loop: a page of rows is tens of milliseconds of Python.
                for piece in await asyncio.to_thread(rows.pieces, page):
                    yield piece
    except Exception:
        log.exception("an export failed after its first bytes; the connection is cut")
        raise
    finally:
        await _close(pages)


async def _xlsx_chunks(folder: Path, name: str, columns: Sequence[Column], tz: ZoneInfo,
                       first: Sequence[Any] | None, pages: AsyncIterator[Sequence[Any]]
                       ) -> AsyncGenerator[bytes, None]:
    # Made here, not before: a generator never started never runs the `finally` that
    # deletes the file.
    fd, name_of_file = tempfile.mkstemp(prefix="export-", suffix=".xlsx", dir=folder)
    os.close(fd)
    path = Path(name_of_file)
    try:
        book = await asyncio.to_thread(XlsxBook, path, name, columns, tz)
        try:
            async for page in _rest(first, pages):
                if page:
                    await asyncio.to_thread(book.page, page)
        finally:
            await asyncio.to_thread(book.close)
        with open(path, "rb") as f:  # noqa: ASYNC230 (each read is in a thread)
            while chunk := await asyncio.to_thread(f.read, 1 << 16):
                yield chunk
    except Exception:
        log.exception("an XLSX export failed; the connection is cut")
        raise
    finally:
        await _close(pages)
        with contextlib.suppress(OSError):
            os.unlink(path)


async def _close(pages: AsyncIterator[Sequence[Any]]) -> None:
    close = getattr(pages, "aclose", None)
    if close is not None:
        await close()
