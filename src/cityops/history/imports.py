"""Importing a city's existing history: CSV, NDJSON and Parquet files into the history store.

A file is read in Arrow record batches (never whole), cut into chunks of a fixed number of
source rows (the unit an interrupted import resumes from), and each chunk is checked column-wise:
the timestamp (ISO 8601, with or without a zone, or epoch seconds; a time without a zone is
the city's local time), the device (a registered one), the value (a number inside the kind's
physical range). A bad cell or row goes to the rejects file with its line and the reason; the
good rows of the same line are kept. Any age is accepted (this is the past, not a late
delivery); only the future is refused.

A line the reader cannot make a row of (a CSV line with more or fewer fields than the header,
an NDJSON line that is not a JSON object) is a reject too, with its text: a several-GB export
with one stray delimiter is imported, not refused. Arrow's CSV reader skips such lines itself
(`invalid_row_handler`), so where they are is kept as "after how many good rows", which places
each in the chunk of the row before it (resumption rejects it once) and numbers the rows after
it. Only a file where no line fits (a header short of a name) is refused.

Layouts, after `--map OLD=NEW` renamed columns:
- long: `device_id`, `ts`, and `value` (the device's primary channel, or the one a `channel`
  column names) and/or one column per channel named as the channel (`lat`, `lon`, `laeq` ...);
- wide: `ts` and one column per device, named as the device (a monitor network's export: the
  Dublin noise monitors' hourly file is one), each the device's primary channel.
Columns that are none of these are ignored and listed in the summary.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import math
import time
from concurrent.futures import Future, ThreadPoolExecutor
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from cityops.domain.readings import CHANNEL_DTYPE, DEVICE_DTYPE, US, ReadingBatch
from cityops.domain.registry import DeviceRegistry
from cityops.history.backfill import CHUNK_ROWS, Backfill, Chunk, Journal

FORMATS = ("csv", "ndjson", "parquet")
SUFFIXES = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".ndjson": "ndjson", ".jsonl": "ndjson",
            ".json": "ndjson", ".parquet": "parquet", ".pq": "parquet"}
NUMBER = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"
ZONED = r"([Zz]|[+-]\d\d:?\d\d)\s*$"
REJECT_COLUMNS = ("line", "column", "value", "reason")
MAX_FUTURE_S = 300.0
RAW_LIMIT = 200  # characters of a rejected line's text kept in the rejects file
# This many lines from the first that make no row: the header (or the format) is wrong, and the
# file is refused before it is read on.
MISFIT_LIMIT = 1000


class ImportRefused(Exception):
    """The file cannot be imported at all (unreadable, no timestamp column ...): a mistake in
    what was asked, said plainly; nothing was stored."""


@dataclass
class Options:
    mapping: dict[str, str] = field(default_factory=dict)  # source column -> CityOps name
    timezone: str = "UTC"  # of timestamps written without a zone: the city's
    fmt: str | None = None  # csv, ndjson or parquet; None: from the file's suffix
    delimiter: str | None = None  # CSV; None: tab for .tsv or a tab-separated header
    chunk_rows: int = CHUNK_ROWS
    now_us: int | None = None  # what "the future" is measured from (a test's clock)


@dataclass
class Reject:
    line: int
    column: str
    value: str
    reason: str


@dataclass
class Summary:
    source: str
    digest: str
    rows: int = 0  # source rows read in this run
    stored: int = 0  # readings stored (over the whole import, resumed runs included)
    rejected: int = 0
    duplicates: int = 0
    ignored_columns: list[str] = field(default_factory=list)
    already_imported: bool = False  # the same file was imported whole before: nothing done
    resumed_at_chunk: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    rejects_path: str | None = None
    first_rejects: list[Reject] = field(default_factory=list)
    seconds: float = 0.0


# -- the whole import ---------------------------------------------------------------------------


def digest_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()[:32]


def import_file(path: Path, backfill: Backfill, options: Options, *,
                rejects_path: Path | None = None, label: str | None = None,
                progress: Callable[[int, int], None] | None = None,
                live: Callable[[], Iterable[ReadingBatch]] | None = None,
                stop_after_chunks: int | None = None) -> Summary:
    """Import one file (see the module). `progress(bytes_done, bytes_total)` is called as it
    goes; `live` gives the readings a running node holds outside Parquet (its WAL); without
    it the WAL is read from disk, once.
    `stop_after_chunks` ends the run early, as a crash would (the resumption tests)."""
    path = Path(path)
    if not path.is_file():
        raise ImportRefused(f"{path}: no such file")
    started = time.perf_counter()
    fmt = options.fmt or SUFFIXES.get(path.suffix.lower())
    if fmt not in FORMATS:
        raise ImportRefused(f"{path}: cannot tell the format from {path.suffix!r}; give "
                            f"--format ({', '.join(FORMATS)})")
    size = path.stat().st_size
    digest = digest_of(path)
    source = label or path.name
    rejects_path = rejects_path or path.with_name(path.name + ".rejects.csv")
    summary = Summary(source, digest, rejects_path=str(rejects_path))
    journal = backfill.journal(digest)
    if journal is not None and journal.complete:
        summary.already_imported = True
        _totals(summary, journal)
        summary.rejects_path = None
        summary.seconds = time.perf_counter() - started
        return summary
    journal = backfill.begin(digest, source, size, options.chunk_rows)
    done = len(journal.chunks)
    summary.resumed_at_chunk = done
    rejects = _RejectsFile(rejects_path, journal.chunks[-1].rejects_bytes if done else 0)
    reader = _reader(path, fmt, options)
    layout: _Layout | None = None
    now_us = options.now_us if options.now_us is not None else int(time.time() * US)
    writer = ThreadPoolExecutor(1, thread_name_prefix="history-import")
    pending: tuple[Future, list[Reject]] | None = None

    def record(future: Future, bad: list[Reject]) -> None:
        chunk: Chunk = future.result()
        rejects.write(bad)
        if len(summary.first_rejects) < 100:
            summary.first_rejects += bad[: 100 - len(summary.first_rejects)]
        chunk.rejected = len(bad)
        chunk.rejects_bytes = rejects.size
        journal.chunks.append(chunk)
        backfill.save(journal)

    try:
        for index, table, last in _chunked(reader.batches(), options.chunk_rows):
            # The lines no row was made of, up to this chunk's last row or, when another
            # follows, up to its first: each chunk's share, the same in every run.
            misfits = reader.misfits(None if last else (index + 1) * options.chunk_rows)
            summary.rows += table.num_rows + len(misfits)
            if progress is not None:
                progress(reader.position(), size)
            if index < done:
                continue  # stored by an earlier run, recorded in the journal
            if layout is None:
                layout = _Layout.of(table.schema.names, options.mapping, backfill.registry)
                journal.ignored_columns = layout.ignored
            lines = reader.lines(index * options.chunk_rows, table.num_rows)
            batch, bad = normalise(table, layout, backfill.registry, options.timezone, lines,
                                   now_us)
            if misfits:
                bad = sorted(bad + misfits, key=lambda r: (r.line, r.column))
            # The chunk is written in the writer thread (Parquet encoding and fsync release
            # the GIL) while this one reads and checks the next; the journal records chunks
            # in order, each once its file is durable.
            if pending is not None:
                waiting, pending = pending, None
                record(*waiting)
            pending = (writer.submit(backfill.store_chunk, journal, index, batch,
                                     live() if live is not None else None), bad)
            if stop_after_chunks is not None and index + 1 >= stop_after_chunks:
                waiting, pending = pending, None
                record(*waiting)
                rejects.close()
                _totals(summary, journal)
                summary.seconds = time.perf_counter() - started
                return summary
        if pending is not None:
            waiting, pending = pending, None
            record(*waiting)
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as error:
        raise ImportRefused(f"{path}: cannot be read as {fmt}: {_short(error)}") from None
    finally:
        if pending is not None:  # a read failed: what was read before it is kept
            try:
                record(*pending)
            except Exception:  # the read's error is the one to report
                pass
        writer.shutdown()
        rejects.close()
    if reader.misfits(None):  # lines, none of which made a row
        raise ImportRefused(f"{path}: {reader.nothing_fits()}")
    if layout is None:  # an empty file: nothing to learn its columns from
        layout = _Layout.of(reader.names(), options.mapping, backfill.registry)
        journal.ignored_columns = layout.ignored
    backfill.finish(journal)
    if progress is not None:
        progress(size, size)
    _totals(summary, journal)
    if not journal.rejected:
        Path(rejects_path).unlink(missing_ok=True)
        summary.rejects_path = None
    summary.seconds = time.perf_counter() - started
    return summary


def import_batch(batch: ReadingBatch, backfill: Backfill, key: str, source: str) -> Journal:
    """Store readings made in memory (the demo's history) as one import known by `key`: done
    once, nothing stored again when called again with the same key."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    journal = backfill.journal(digest)
    if journal is not None and journal.complete:
        return journal
    journal = backfill.begin(digest, source, 0, max(len(batch), 1))
    if not journal.chunks:
        journal.chunks.append(backfill.store_chunk(journal, 0, batch))
    backfill.finish(journal)
    return journal


def _totals(summary: Summary, journal: Journal) -> None:
    summary.stored = journal.stored
    summary.rejected = journal.rejected
    summary.duplicates = journal.duplicates
    summary.ignored_columns = list(journal.ignored_columns)
    span = journal.span()
    if span is not None:
        summary.first_ts, summary.last_ts = span[0] / US, span[1] / US


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


# -- reading the formats -------------------------------------------------------------------------


class _Reader:
    first_line = 1  # the source line (Parquet: the row number) of the first data row

    def __init__(self) -> None:
        # Per line no row was made of (a misfit, or a blank NDJSON line), how many rows came
        # before it, ascending: what numbers the rows after it.
        self._gaps: list[int] = []
        self._misfits: list[tuple[int, Reject]] = []  # (rows before, reject), not yet taken

    def batches(self) -> Iterator[pa.RecordBatch]:
        raise NotImplementedError

    def position(self) -> int:
        return 0

    def names(self) -> list[str]:
        return []

    def lines(self, start: int, n: int) -> np.ndarray:
        """The source lines of rows start .. start + n - 1 (all of them read)."""
        rows = np.arange(start, start + n, dtype=np.int64)
        if not self._gaps:
            return rows + self.first_line
        return rows + self.first_line + np.searchsorted(np.asarray(self._gaps, np.int64), rows,
                                                        side="right")

    def misfits(self, through: int | None) -> list[Reject]:
        """Takes the rejected lines that lie before row `through` (counted from 0 over the
        file; None: all met so far)."""
        pending = self._misfits
        if not pending:
            return []
        if through is None:
            cut = len(pending)
        else:
            cut = 0
            while cut < len(pending) and pending[cut][0] <= through:
                cut += 1
        taken = [reject for _, reject in pending[:cut]]
        del pending[:cut]
        return taken

    def nothing_fits(self) -> str:
        first = self._misfits[0][1] if self._misfits else None
        return "no line could be read" + (f" (line {first.line}: {first.reason})" if first
                                          else "")

    def _misfit(self, rows_before: int, line: int, text: str, reason: str) -> None:
        if len(text) > RAW_LIMIT:
            text = text[:RAW_LIMIT] + "\u2026"
        self._gaps.append(rows_before)
        self._misfits.append((rows_before, Reject(line, "", text, reason)))


class _Csv(_Reader):
    first_line = 2  # after the header; a quoted field spanning lines shifts later numbers

    def __init__(self, path: Path, delimiter: str | None) -> None:
        super().__init__()
        self.path = path
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            header = f.readline()
        if delimiter is None:
            delimiter = "\t" if path.suffix.lower() == ".tsv" or header.count("\t") > \
                header.count(",") else ","
        self.delimiter = delimiter
        self._names = next(csv.reader([header], delimiter=delimiter), [])
        self._file: io.BufferedReader | None = None
        self._pos = 0  # bytes Arrow has read so far (it reads ahead of the batches)
        self._met = 0  # the last misfit's line: a second read (as text) meets them again
        self._first_misfit: tuple[int, int] | None = None  # (line, fields)

    def names(self) -> list[str]:
        return self._names

    def position(self) -> int:
        return self._pos

    def nothing_fits(self) -> str:
        line, fields = self._first_misfit or (self.first_line, 0)
        n = len(self._names)
        return (f"the header names {n} columns ({', '.join(self._names)}) but no "
                f"line has {n} fields (line {line} has {fields}); a header missing a name, or "
                "separated by another delimiter than the rows?")

    def _on_invalid(self, row: pacsv.InvalidRow) -> str:
        # Arrow numbers the rows it parses (the header is 1) when it reads in one thread;
        # a quoted line break counts as none, as in first_line.
        number = row.number
        if number is None:
            return "error"
        if number <= self._met:
            return "skip"
        self._met = number
        rows_before = number - self.first_line - len(self._gaps)
        if self._first_misfit is None:
            self._first_misfit = (number, row.actual_columns)
        self._misfit(rows_before, number, row.text,
                     f"expected {row.expected_columns} fields, found {row.actual_columns}")
        if rows_before == 0 and len(self._gaps) >= MISFIT_LIMIT:
            return "error"  # nothing fits the header: refused before reading on (see _read)
        return "skip"

    def batches(self) -> Iterator[pa.RecordBatch]:
        try:
            yield from self._read(strings=False)
        except _Retype as retry:
            # A later block did not fit the types guessed from the first (a word in a number
            # column): read again with every column as text, skipping what was yielded.
            skip = retry.rows
            for batch in self._read(strings=True):
                if skip >= batch.num_rows:
                    skip -= batch.num_rows
                    continue
                yield batch.slice(skip)
                skip = 0

    def _read(self, strings: bool) -> Iterator[pa.RecordBatch]:
        self._file = open(self.path, "rb")  # noqa: SIM115 - closed below, read by Arrow
        names = [n or f"column{i + 1}" for i, n in enumerate(self._names)]
        convert = pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names} if strings else None,
            # Only an empty cell is missing: "n/a" or "-" is a value that is not a number,
            # and the rejects file says so rather than calling it empty.
            null_values=[""], strings_can_be_null=True, quoted_strings_can_be_null=False)
        try:
            # One thread: only then does Arrow tell the invalid row handler the row's number
            # (the streaming reader parses one block at a time either way: no slower).
            reader = pacsv.open_csv(
                self._file,
                read_options=pacsv.ReadOptions(block_size=8 << 20, column_names=names,
                                               skip_rows=1, use_threads=False),
                parse_options=pacsv.ParseOptions(delimiter=self.delimiter,
                                                 invalid_row_handler=self._on_invalid),
                convert_options=convert)
            rows = 0
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    return
                except pa.ArrowInvalid as error:
                    if strings or "conversion error" not in str(error).lower() and \
                            "In CSV column" not in str(error):
                        raise
                    raise _Retype(rows) from None
                rows += batch.num_rows
                self._pos = self._file.tell()
                yield batch
        except pa.ArrowInvalid:
            if len(self._gaps) >= MISFIT_LIMIT and self._gaps[-1] == 0:
                raise ImportRefused(f"{self.path}: {self.nothing_fits()}") from None
            raise
        finally:
            self._file.close()


class _Retype(Exception):
    def __init__(self, rows: int) -> None:
        super().__init__(rows)
        self.rows = rows


class _Ndjson(_Reader):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self._file: io.BufferedReader | None = None
        self._pos = 0

    def position(self) -> int:
        return self._pos

    def batches(self) -> Iterator[pa.RecordBatch]:
        # Arrow's JSON reader fixes each field's type from the first block; a file whose
        # later lines disagree (a number written as text), or with a line that is not a JSON
        # object, is read with msgspec instead. (Arrow skips blank lines unseen: until then
        # they are not counted in the lines of the rows after them.)
        try:
            yield from self._arrow()
        except _Retype as retry:
            yield from self._lines(skip=retry.rows)

    def _arrow(self) -> Iterator[pa.RecordBatch]:
        self._file = open(self.path, "rb")  # noqa: SIM115 - closed below
        rows = 0
        try:
            reader = pajson.open_json(self._file,
                                      read_options=pajson.ReadOptions(block_size=8 << 20))
            while True:
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    return
                except pa.ArrowInvalid:
                    raise _Retype(rows) from None
                rows += batch.num_rows
                self._pos = self._file.tell()
                yield batch
        except pa.ArrowInvalid:
            raise _Retype(rows) from None
        finally:
            self._file.close()

    def _lines(self, skip: int) -> Iterator[pa.RecordBatch]:
        import msgspec

        decoder = msgspec.json.Decoder()
        self._file = open(self.path, "rb")  # noqa: SIM115 - closed below
        try:
            rows: list[dict] = []
            count = 0  # rows made, Arrow's included
            for number, line in enumerate(self._file, start=1):
                if not line.strip():
                    if count >= skip:
                        self._gaps.append(count)
                    continue
                if count < skip:  # Arrow read these lines (all of them objects) already
                    count += 1
                    continue
                try:
                    value = decoder.decode(line)
                except msgspec.DecodeError:
                    value = None
                    reason = "not JSON"
                else:
                    reason = "not a JSON object"
                if not isinstance(value, dict):
                    text = line.decode("utf-8", errors="replace").rstrip("\r\n")
                    self._misfit(count, number, text, reason)
                    if count == 0 and len(self._misfits) >= MISFIT_LIMIT:
                        raise ImportRefused(f"{self.path}: {self.nothing_fits()}")
                    continue
                count += 1
                rows.append({k: None if v is None else str(v) for k, v in value.items()})
                if len(rows) >= 65536:
                    self._pos = self._file.tell()
                    yield pa.RecordBatch.from_pylist(rows)
                    rows = []
            if rows:
                yield pa.RecordBatch.from_pylist(rows)
        finally:
            self._file.close()


class _Parquet(_Reader):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.file = pq.ParquetFile(path)
        self.size = path.stat().st_size
        self._rows = 0

    def names(self) -> list[str]:
        return list(self.file.schema_arrow.names)

    def position(self) -> int:
        # Rows read as a share of the file's bytes: the progress bar counts bytes.
        return int(self._rows / max(self.file.metadata.num_rows, 1) * self.size)

    def batches(self) -> Iterator[pa.RecordBatch]:
        for batch in self.file.iter_batches(batch_size=256 * 1024):
            self._rows += batch.num_rows
            yield batch


def _reader(path: Path, fmt: str, options: Options) -> _Reader:
    try:
        if fmt == "csv":
            return _Csv(path, options.delimiter)
        if fmt == "ndjson":
            return _Ndjson(path)
        return _Parquet(path)
    except (pa.ArrowInvalid, OSError) as error:
        raise ImportRefused(f"{path}: cannot be read as {fmt}: {_short(error)}") from None


def _chunked(batches: Iterator[pa.RecordBatch], rows: int
             ) -> Iterator[tuple[int, pa.Table, bool]]:
    """Tables of exactly `rows` source rows (the last may be shorter), numbered from 0, and
    whether each is the last. A full table is given once the row after it is read (or the
    file ended), so that every line before that row has been parsed."""
    held: list[pa.RecordBatch] = []
    full: pa.Table | None = None
    count = 0
    index = 0
    for batch in batches:
        while batch.num_rows:
            if full is not None:
                yield index, full, False
                index += 1
                full = None
            take = min(rows - count, batch.num_rows)
            held.append(batch.slice(0, take))
            count += take
            batch = batch.slice(take)
            if count == rows:
                full = _table(held)
                held, count = [], 0
    if full is not None:
        yield index, full, True
    elif count:
        yield index, _table(held), True


def _table(batches: list[pa.RecordBatch]) -> pa.Table:
    # A CSV read again as text after a later block did not fit the types guessed from the
    # first (see _Csv.batches) can change its batches' types inside a chunk: the typed ones
    # become text too, which every check reads as it would have read the source.
    schema = batches[-1].schema
    return pa.Table.from_batches([b if b.schema == schema else b.cast(schema) for b in batches])


class _RejectsFile:
    """The rejects CSV: created on the first reject, cut back to where the journal says it
    ended when an import resumes (a killed run may have written past its last recorded chunk)."""

    def __init__(self, path: Path, resume_at: int) -> None:
        self.path = Path(path)
        self.size = resume_at
        self._file: io.TextIOWrapper | None = None
        if resume_at:
            with open(self.path, "r+b") as f:
                f.truncate(resume_at)

    def write(self, rejects: list[Reject]) -> None:
        if not rejects:
            return
        if self._file is None:
            # A fresh import replaces what an earlier one left at this path ("w"); a resumed
            # one appends to what its journal counted.
            new = self.size == 0
            self._file = open(self.path, "w" if new else "a", newline="",  # noqa: SIM115
                              encoding="utf-8")
            if new:
                csv.writer(self._file).writerow(REJECT_COLUMNS)
        writer = csv.writer(self._file)
        writer.writerows((r.line, r.column, r.value, r.reason) for r in rejects)
        self._file.flush()
        self.size = self._file.tell()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


# -- columns to readings ------------------------------------------------------------------------


@dataclass
class _Layout:
    ts: str
    device: str | None  # the device_id column (long layout)
    value: str | None  # the `value` column (long layout)
    channel: str | None  # the `channel` column naming value's channel (long layout)
    channels: list[tuple[str, str]]  # (column, channel name) of a long layout
    devices: list[tuple[str, int]]  # (column, device index) of a wide layout
    ignored: list[str]

    @classmethod
    def of(cls, names: list[str], mapping: dict[str, str], registry: DeviceRegistry) -> _Layout:
        unknown = [old for old in mapping if old not in names]
        if unknown:
            raise ImportRefused(f"--map names {', '.join(map(repr, unknown))}, which the file "
                                f"does not have (its columns: {', '.join(names)})")
        renamed = {name: mapping.get(name, name) for name in names}
        by_new = {new: old for old, new in renamed.items()}
        if "ts" not in by_new:
            raise ImportRefused(f"no `ts` column (the file has {', '.join(names)}); name the "
                                "timestamp column with --map COLUMN=ts")
        channel_names = {c.name for k in registry.kinds for c in k.channels}
        taken = {by_new["ts"]}
        if "device_id" in by_new:
            device = by_new["device_id"]
            taken.add(device)
            value = by_new.get("value")
            channel = by_new.get("channel") if value is not None else None
            taken |= {c for c in (value, channel) if c is not None}
            channels = [(old, new) for old, new in renamed.items()
                        if old not in taken and new in channel_names]
            taken |= {old for old, _ in channels}
            if value is None and not channels:
                raise ImportRefused("a file with a `device_id` column needs a `value` column or "
                                    "columns named after channels (" +
                                    ", ".join(sorted(channel_names)) + ")")
            ignored = [n for n in names if n not in taken]
            return cls(by_new["ts"], device, value, channel, channels, [], ignored)
        devices = [(old, registry.index[new]) for old, new in renamed.items()
                   if old not in taken and new in registry.index]
        if not devices:
            raise ImportRefused("no `device_id` column and no column named after a registered "
                                "device; rename columns with --map COLUMN=DEVICE_ID")
        taken |= {old for old, _ in devices}
        ignored = [n for n in names if n not in taken]
        return cls(by_new["ts"], None, None, None, [], devices, ignored)


def normalise(table: pa.Table, layout: _Layout, registry: DeviceRegistry, timezone: str,
              lines: np.ndarray, now_us: int) -> tuple[ReadingBatch, list[Reject]]:
    """One chunk of source rows as readings, and what was refused in it. `lines` gives each
    row's source line in a text file, its row number (from 1) in a Parquet file."""
    n = table.num_rows
    rejects: list[Reject] = []
    ts_col = table.column(layout.ts)
    ts, ts_ok, ts_why = _timestamps(ts_col, timezone)
    future = ts_ok & (ts > now_us + int(MAX_FUTURE_S * US))
    row_ok = ts_ok & ~future
    for i in np.flatnonzero(~row_ok).tolist():
        raw = _raw(ts_col, i)
        reason = ts_why(i) if not ts_ok[i] else (
            f"timestamp {raw} is {(ts[i] - now_us) / US:.0f} s in the future")
        rejects.append(Reject(int(lines[i]), layout.ts, raw, reason))

    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # dev, ch, row, val
    if layout.device is not None:
        dev_col = table.column(layout.device)
        dev = _device_indices(dev_col, registry)
        known = dev >= 0
        for i in np.flatnonzero(row_ok & ~known).tolist():
            raw = _raw(dev_col, i)
            rejects.append(Reject(int(lines[i]), layout.device, raw,
                                  "empty device_id" if raw == "" else f"unknown device {raw!r}"))
        rows_ok = row_ok & known
        kind = registry.kind_of[np.where(known, dev, 0)] if len(registry) else np.zeros(n, int)
        if layout.value is not None:
            if layout.channel is not None:
                ch = _channel_indices(table.column(layout.channel), kind, registry)
                bad_ch = rows_ok & (ch < 0)
                for i in np.flatnonzero(bad_ch).tolist():
                    k = registry.kinds[int(kind[i])]
                    rejects.append(Reject(int(lines[i]), layout.channel,
                                          _raw(table.column(layout.channel), i),
                                          f"a {k.name} has channels "
                                          f"{', '.join(c.name for c in k.channels)}"))
                ok = rows_ok & (ch >= 0)
            else:
                ch = np.zeros(n, np.int64)
                ok = rows_ok
            parts.append(_cells(table.column(layout.value), layout.value, ok, dev, ch, lines,
                                rejects))
        for column, name in layout.channels:
            per_kind = np.array([[c.name for c in k.channels].index(name)
                                 if name in [c.name for c in k.channels] else -1
                                 for k in registry.kinds], np.int64)
            ch = per_kind[kind]
            col = table.column(column)
            applies = rows_ok & (ch >= 0)
            stray = rows_ok & (ch < 0) & _present(col)
            for i in np.flatnonzero(stray).tolist():
                k = registry.kinds[int(kind[i])]
                rejects.append(Reject(int(lines[i]), column, _raw(col, i),
                                      f"a {k.name} has no channel {name!r}"))
            parts.append(_cells(col, column, applies, dev, ch, lines, rejects))
    else:
        for column, d in layout.devices:
            dev = np.full(n, d, np.int64)
            parts.append(_cells(table.column(column), column, row_ok, dev, np.zeros(n, np.int64),
                                lines, rejects))

    if parts:
        dev = np.concatenate([p[0] for p in parts])
        ch = np.concatenate([p[1] for p in parts])
        rows = np.concatenate([p[2] for p in parts])
        val = np.concatenate([p[3] for p in parts])
    else:
        dev = ch = rows = np.empty(0, np.int64)
        val = np.empty(0, np.float64)
    # The kind's physical range, as the live intake checks it.
    if len(dev):
        k = registry.kind_of[dev]
        kinds = np.unique(k[:: max(1, len(k) // 64)])
        if len(kinds) == 1 and (k == kinds[0]).all() and not ch.any():
            # One kind's primary channel (the usual file): two numbers, no gather per row.
            lo = registry.ch_min[kinds[0], 0]
            hi = registry.ch_max[kinds[0], 0]
        else:
            lo, hi = registry.ch_min[k, ch], registry.ch_max[k, ch]
        inside = (val >= lo) & (val <= hi)
        for j in np.flatnonzero(~inside).tolist():
            kind_spec = registry.kinds[int(k[j])]
            spec = kind_spec.channels[int(ch[j])]
            rejects.append(Reject(int(lines[rows[j]]), _column_of(layout, int(dev[j]), spec.name),
                                  f"{val[j]:g}", f"value {val[j]:g} is outside the valid range "
                                  f"{spec.min:g}..{spec.max:g} {spec.unit} of a "
                                  f"{kind_spec.name} {spec.name}"))
        if not inside.all():
            keep = np.flatnonzero(inside)
            dev, ch, rows, val = dev[keep], ch[keep], rows[keep], val[keep]
    rejects.sort(key=lambda r: (r.line, r.column))
    # Rows come out of _cells ascending; all n of them (the usual chunk) are ts as it is.
    times = ts if len(rows) == n and len(parts) == 1 else ts[rows]
    batch = ReadingBatch(dev.astype(DEVICE_DTYPE), ch.astype(CHANNEL_DTYPE), times,
                         val.astype(np.float64), source="import")
    return batch, rejects


def _column_of(layout: _Layout, device: int, channel: str) -> str:
    for column, d in layout.devices:
        if d == device:
            return column
    for column, name in layout.channels:
        if name == channel:
            return column
    return layout.value or ""


def _cells(col: pa.ChunkedArray, name: str, ok: np.ndarray, dev: np.ndarray, ch: np.ndarray,
           lines: np.ndarray, rejects: list[Reject]
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The numbers of one value column on the rows `ok`; empty and non-numeric cells of
    those rows become rejects."""
    values, valid, is_empty = _numbers(col)
    bad = ok & ~valid
    for i in np.flatnonzero(bad).tolist():
        raw = _raw(col, i)
        reason = "empty cell" if is_empty[i] else f"value {raw!r} is not a number"
        rejects.append(Reject(int(lines[i]), name, raw, reason))
    take = np.flatnonzero(ok & valid)
    return dev[take], ch[take], take, values[take]


def _numbers(col: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values, valid, empty) of a column: numbers as they are, text parsed where it is a
    number; nulls and blank text are empty, anything else (and NaN, infinities) invalid."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    empty = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), bool)
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type) or \
            pa.types.is_decimal(arr.type):
        values = np.asarray(arr.cast(pa.float64()).fill_null(math.nan).to_numpy(
            zero_copy_only=False), np.float64)
    elif pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        text = pc.utf8_trim_whitespace(arr)
        blank = np.asarray(pc.equal(text, "").fill_null(True).to_numpy(zero_copy_only=False),
                           bool)
        empty |= blank
        number = np.asarray(pc.match_substring_regex(text, NUMBER).fill_null(False)
                            .to_numpy(zero_copy_only=False), bool)
        values = np.full(len(arr), math.nan)
        if number.any():
            picked = pc.filter(text, pa.array(number))
            values[number] = np.asarray(picked.cast(pa.float64()).to_numpy(
                zero_copy_only=False), np.float64)
    else:
        values = np.full(len(arr), math.nan)
    valid = np.isfinite(values) & ~empty
    return values, valid, empty


def _timestamps(col: pa.ChunkedArray, timezone: str
                ) -> tuple[np.ndarray, np.ndarray, Callable[[int], str]]:
    """(epoch microseconds, valid, reason for row i) of a timestamp column."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    n = len(arr)

    def why(i: int) -> str:
        raw = _raw(arr, i)
        if raw == "":
            return "empty timestamp"
        return f"timestamp {raw!r} is neither ISO 8601 nor epoch seconds"

    if pa.types.is_timestamp(arr.type):
        return _from_arrow_ts(arr, timezone) + (why,)
    if pa.types.is_date(arr.type):
        return _from_arrow_ts(arr.cast(pa.timestamp("s")), timezone) + (why,)
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
        seconds = np.asarray(arr.cast(pa.float64()).fill_null(math.nan).to_numpy(
            zero_copy_only=False), np.float64)
        ok = np.isfinite(seconds) & (np.abs(seconds) < 1e11)
        us = np.where(ok, np.round(np.nan_to_num(seconds) * US), 0).astype(np.int64)
        return us, ok, why
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type):
        text = pc.utf8_trim_whitespace(arr)
        numeric = np.asarray(pc.match_substring_regex(text, NUMBER).fill_null(False)
                             .to_numpy(zero_copy_only=False), bool)
        zoned = np.asarray(pc.match_substring_regex(text, ZONED).fill_null(False)
                           .to_numpy(zero_copy_only=False), bool) & ~numeric
        us = np.zeros(n, np.int64)
        ok = np.zeros(n, bool)
        plain = ~numeric & ~zoned & np.asarray(text.is_valid().to_numpy(
            zero_copy_only=False), bool)
        for mask, target in ((zoned, pa.timestamp("us", "UTC")), (plain, pa.timestamp("us"))):
            if not mask.any():
                continue
            rows = np.flatnonzero(mask)
            part = pc.take(text, pa.array(rows))
            try:
                parsed = part.cast(target)
                got, valid = _from_arrow_ts(parsed, timezone)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                got, valid = _one_by_one(part.to_pylist(), timezone)
            us[rows], ok[rows] = got, valid
        if numeric.any():
            rows = np.flatnonzero(numeric)
            seconds = np.asarray(pc.take(text, pa.array(rows)).cast(pa.float64()).to_numpy(
                zero_copy_only=False), np.float64)
            fine = np.abs(seconds) < 1e11
            us[rows] = np.where(fine, np.round(seconds * US), 0).astype(np.int64)
            ok[rows] = fine
        return us, ok, why
    return np.zeros(n, np.int64), np.zeros(n, bool), lambda i: (
        f"a {arr.type} column cannot hold timestamps")


def _from_arrow_ts(arr: pa.Array, timezone: str) -> tuple[np.ndarray, np.ndarray]:
    if arr.type.tz is None:
        # A time with no zone is the city's wall clock; of the hour that autumn's change
        # repeats, the first is taken, and a time spring's change skips moves forward.
        arr = pc.assume_timezone(arr.cast(pa.timestamp("us")), timezone,
                                 ambiguous="earliest", nonexistent="earliest")
    us = arr.cast(pa.timestamp("us", arr.type.tz)).cast(pa.int64())
    ok = np.asarray(us.is_valid().to_numpy(zero_copy_only=False), bool)
    values = np.asarray(us.fill_null(0).to_numpy(zero_copy_only=False), np.int64)
    return values, ok


def _one_by_one(texts: list[str | None], timezone: str) -> tuple[np.ndarray, np.ndarray]:
    """The slow path, for a chunk with a malformed timestamp somewhere: each parsed alone."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(timezone)
    us = np.zeros(len(texts), np.int64)
    ok = np.zeros(len(texts), bool)
    for i, text in enumerate(texts):
        if not text:
            continue
        try:
            when = dt.datetime.fromisoformat(text.strip().replace("z", "Z"))
        except ValueError:
            continue
        if when.tzinfo is None:
            when = when.replace(tzinfo=zone)
        us[i] = round(when.timestamp() * US)
        ok[i] = True
    return us, ok


def _device_indices(col: pa.ChunkedArray, registry: DeviceRegistry) -> np.ndarray:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if not pa.types.is_dictionary(arr.type):
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            arr = arr.cast(pa.string())
        arr = pc.dictionary_encode(arr)
    names = arr.dictionary.cast(pa.string()).to_pylist()
    index = registry.index
    lookup = np.array([index.get(name, -1) if name is not None else -1 for name in names]
                      + [-1], np.int64)
    codes = np.asarray(arr.indices.fill_null(len(names)).to_numpy(zero_copy_only=False),
                       np.int64)
    return lookup[codes]


def _channel_indices(col: pa.ChunkedArray, kind: np.ndarray,
                     registry: DeviceRegistry) -> np.ndarray:
    """Per row the index of the named channel in the row's device kind; -1 where it has none.
    An empty channel cell means the primary channel."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_dictionary(arr.type):
        arr = arr.cast(arr.type.value_type)
    names = arr.cast(pa.string()).to_pylist()
    out = np.full(len(names), -1, np.int64)
    per_kind = [[c.name for c in k.channels] for k in registry.kinds]
    for i, name in enumerate(names):
        channels = per_kind[int(kind[i])] if per_kind else []
        if not name:
            out[i] = 0
        elif name in channels:
            out[i] = channels.index(name)
    return out


def _present(col: pa.ChunkedArray) -> np.ndarray:
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    present = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), bool)
    if pa.types.is_string(arr.type):
        present &= np.asarray(pc.not_equal(pc.utf8_trim_whitespace(arr), "").fill_null(False)
                              .to_numpy(zero_copy_only=False), bool)
    return present


def _raw(col: pa.Array | pa.ChunkedArray, i: int) -> str:
    value = col[i].as_py()
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    return str(value)
