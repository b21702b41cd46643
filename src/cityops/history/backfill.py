"""Where imported history is kept: Parquet chunks beside the live history, and a journal.

An import is known by the digest of what it reads (a file's SHA-256, or a generator's own key),
so the same file imported twice stores nothing the second time. It is stored in chunks of a
fixed number of source rows; each chunk is one Parquet file written to a temporary name,
fsync'd and renamed, then recorded in the import's journal (itself replaced atomically). An
import killed midway resumes after the last chunk its journal records: a chunk whose file was
renamed but not yet recorded is simply written again under the same name, byte for byte the
same rows, so nothing is stored twice.

Rows already stored (by the live intake, another import, an earlier chunk of this one) are
dropped before a chunk is written: each chunk is checked against what overlaps its time span,
which costs nothing when nothing does (the usual backfill of a past nobody has stored yet).

Layout: `ROOT/imported/<digest>/<chunk>.parquet` and `ROOT/imports/<digest>.json`, with ROOT the
history's root (the node's data dir `history/`). Readers find the chunks with the live Parquet
files (cityops.history.query).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import threading
import zlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cityops.domain.readings import US, ReadingBatch
from cityops.domain.registry import DeviceRegistry
from cityops.history import parquet, wal
from cityops.history.wal import fsync_dir

IMPORTED = "imported"
JOURNALS = "imports"
CHUNK_ROWS = 1_000_000  # source rows per chunk: the unit of resumption


@dataclass
class Chunk:
    index: int
    stored: int  # rows written
    rejected: int
    duplicates: int  # rows already stored, or repeated within the import
    min_ts: int | None  # of the rows written, epoch microseconds
    max_ts: int | None
    rejects_bytes: int = 0  # length of the rejects file once this chunk's rejects were added
    devices: int = 0  # distinct devices; their id hashes are kept beside the chunk's file
    # (CHUNK.devices.npy): two chunks of one time span but no device in common (a file
    # ordered by device) are not compared


@dataclass
class Journal:
    digest: str
    source: str  # what was imported: a file name, or a generator's description
    size: int = 0
    chunk_rows: int = CHUNK_ROWS
    started: str = ""
    finished: str | None = None
    chunks: list[Chunk] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.finished is not None

    @property
    def stored(self) -> int:
        return sum(c.stored for c in self.chunks)

    @property
    def rejected(self) -> int:
        return sum(c.rejected for c in self.chunks)

    @property
    def duplicates(self) -> int:
        return sum(c.duplicates for c in self.chunks)

    def span(self) -> tuple[int, int] | None:
        lows = [c.min_ts for c in self.chunks if c.min_ts is not None]
        highs = [c.max_ts for c in self.chunks if c.max_ts is not None]
        return (min(lows), max(highs)) if lows else None

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Journal:
        chunks = [Chunk(**c) for c in data.pop("chunks", [])]
        return cls(**data, chunks=chunks)


class Backfill:
    """The imported part of one history root. Thread-safe for one import at a time per digest;
    two imports of different digests may run at once (each writes its own files)."""

    def __init__(self, root: Path, registry: DeviceRegistry, *, fsync: bool = True) -> None:
        self.root = Path(root)
        self.dir = self.root / IMPORTED
        self.journals = self.root / JOURNALS
        self.registry = registry
        self.fsync = fsync
        self._lock = threading.Lock()
        self._device_ids: tuple[int, pa.Array] | None = None
        self._device_bits: np.ndarray | None = None
        # Read once per import (from `begin`), not per chunk: other imports' journals and the
        # live WAL on disk do not change what an import of the past overlaps while it runs.
        self._other_journals: list[Journal] | None = None
        self._disk_wal: list[ReadingBatch] | None = None

    # -- journals ----------------------------------------------------------------------------

    def journal(self, digest: str) -> Journal | None:
        path = self.journals / f"{digest}.json"
        try:
            return Journal.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError):
            return None  # torn by a crash before the rename: start that import again

    def begin(self, digest: str, source: str, size: int, chunk_rows: int = CHUNK_ROWS) -> Journal:
        """The journal to continue, or a new one. A journal from a run with another chunk size
        cannot be continued chunk by chunk: its files are dropped and the import redone."""
        self._other_journals = self._disk_wal = None  # read afresh for each import
        found = self.journal(digest)
        if found is not None and found.chunk_rows == chunk_rows:
            return found
        if found is not None:
            self.forget(digest)
        now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        journal = Journal(digest, source, size, chunk_rows, started=now)
        self.save(journal)
        return journal

    def save(self, journal: Journal) -> None:
        self.journals.mkdir(parents=True, exist_ok=True)
        final = self.journals / f"{journal.digest}.json"
        _write_atomic(final, json.dumps(journal.to_json()).encode(), self.fsync)

    def finish(self, journal: Journal) -> None:
        journal.finished = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        self.save(journal)

    def forget(self, digest: str) -> None:
        for path in (self.dir / digest).glob("*"):
            path.unlink()
        (self.journals / f"{digest}.json").unlink(missing_ok=True)

    def all_journals(self) -> list[Journal]:
        out = []
        for path in sorted(self.journals.glob("*.json")):
            found = self.journal(path.stem)
            if found is not None:
                out.append(found)
        return out

    # -- chunks ------------------------------------------------------------------------------

    def chunk_path(self, digest: str, index: int) -> Path:
        return self.dir / digest / f"{index:06d}.parquet"

    def store_chunk(self, journal: Journal, index: int, batch: ReadingBatch,
                    live: Iterable[ReadingBatch] | None = None) -> Chunk:
        """Write chunk `index` of `journal`: its rows less those already stored. Durable when
        it returns; the caller adds the chunk it answers (rejects left to the caller) to the
        journal. `live` are the readings a running node holds outside Parquet (its WAL in
        memory); None: read the WAL from disk (an import from the command line runs beside,
        not inside, the node that owns it)."""
        unique = _sorted_unique(batch)
        duplicates = len(batch) - len(unique)
        devices = _device_hashes(self._hashes(), unique.device)
        if len(unique):
            seen = self._already_stored(journal, index, unique, devices, live)
            if seen.any():
                duplicates += int(seen.sum())
                unique = unique.take(np.flatnonzero(~seen))
        path = self.chunk_path(journal.digest, index)
        hashes = path.with_suffix(".devices.npy")
        if not len(unique):
            path.unlink(missing_ok=True)
            hashes.unlink(missing_ok=True)
            return Chunk(index, 0, 0, duplicates, None, None)
        path.parent.mkdir(parents=True, exist_ok=True)
        # The device set first: a chunk file never stands without it (one without is
        # compared with every chunk of its time span, which is slower but still right).
        _write_atomic(hashes, _npy(devices), self.fsync)
        table = self._table(unique)
        tmp = path.with_suffix(".tmp")
        pq.write_table(table, tmp, compression="zstd", row_group_size=256 * 1024)
        if self.fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
        if self.fsync:
            fsync_dir(path.parent)
        return Chunk(index, len(unique), 0, duplicates, int(unique.ts.min()),
                     int(unique.ts.max()), devices=len(devices))

    def _hashes(self) -> np.ndarray:
        """Per registered device, a hash of its id (so a chunk's device set means the same to
        a node whose registry numbers devices otherwise)."""
        n = len(self.registry)
        if self._device_bits is None or self._device_bits.shape[0] != n:
            self._device_bits = np.array([zlib.crc32(d.id.encode()) for d in
                                          self.registry.devices], np.uint32)
        return self._device_bits

    def _table(self, batch: ReadingBatch) -> pa.Table:
        names, codes = parquet.channel_dictionary(self.registry)
        return parquet.to_arrow(batch, self._ids(), names, codes)

    def _ids(self) -> pa.Array:
        n = len(self.registry)
        if self._device_ids is None or self._device_ids[0] != n:
            self._device_ids = (n, pa.array([d.id for d in self.registry.devices], pa.string()))
        return self._device_ids[1]

    # -- what is stored already ---------------------------------------------------------------

    def _already_stored(self, journal: Journal, index: int, batch: ReadingBatch,
                        devices: np.ndarray, live: Iterable[ReadingBatch] | None
                        ) -> np.ndarray:
        lo, hi = int(batch.ts.min()), int(batch.ts.max())
        files = self._overlapping_files(journal, index, lo, hi, devices)
        seen = np.zeros(len(batch), bool)
        frames = list(live) if live is not None else self._wal_frames()
        for frame in frames:
            inside = frame.take(np.flatnonzero((frame.ts >= lo) & (frame.ts <= hi)))
            if len(inside):
                seen |= _member(batch, inside)
        if files:
            seen |= self._seen_in(files, batch, lo, hi)
        return seen

    def _wal_frames(self) -> list[ReadingBatch]:
        """Readings of the live WAL not compacted yet, read from disk once."""
        if self._disk_wal is None:
            out = []
            for _, path in wal.list_segments(self.root / "wal"):
                try:
                    out += wal.read_segment(path)
                except OSError:
                    continue
            self._disk_wal = out
        return self._disk_wal

    def _overlapping_files(self, current: Journal, index: int, lo: int, hi: int,
                           devices: np.ndarray) -> list[Path]:
        files: list[Path] = []
        if self._other_journals is None:
            self._other_journals = [j for j in self.all_journals() if j.digest != current.digest]
        journals = [*self._other_journals, current]
        for journal in journals:
            for chunk in journal.chunks:
                if journal.digest == current.digest and chunk.index >= index:
                    continue  # this chunk's own earlier write is about to be replaced
                if chunk.min_ts is None or chunk.max_ts < lo or chunk.min_ts > hi:
                    continue
                path = self.chunk_path(journal.digest, chunk.index)
                try:
                    theirs = np.load(path.with_suffix(".devices.npy"))
                except (OSError, ValueError):
                    theirs = None
                if theirs is not None and not np.isin(devices, theirs,
                                                      assume_unique=True).any():
                    continue  # the same time, other devices
                if path.exists():
                    files.append(path)
        live = self.root / "parquet"
        first, last = lo // parquet.HOUR_US, hi // parquet.HOUR_US
        if last - first <= 24 * 31:
            for hour in range(first, last + 1):
                files += sorted(parquet.partition_dir(live, hour * parquet.HOUR_US)
                                .glob("*.parquet"))
        else:  # a long span: look at the days that exist rather than every hour of it
            for day in live.glob("date=*"):
                try:
                    start = dt.datetime.strptime(day.name[5:], "%Y-%m-%d").replace(tzinfo=dt.UTC)
                except ValueError:
                    continue
                day_us = int(start.timestamp()) * US
                if day_us + 24 * parquet.HOUR_US > lo and day_us <= hi:
                    files += sorted(day.glob("hour=*/*.parquet"))
        return files

    def _seen_in(self, files: list[Path], batch: ReadingBatch, lo: int, hi: int) -> np.ndarray:
        table = self._table(batch)
        table = table.append_column("i", pa.array(np.arange(len(batch), dtype=np.int64)))
        con = duckdb.connect(config={"threads": 2})
        try:
            con.register("chunk", table)
            query = (
                "SELECT c.i FROM chunk c SEMI JOIN ("
                "SELECT device_id::VARCHAR AS d, channel::VARCHAR AS ch, epoch_us(ts) AS t "
                "FROM read_parquet($files) WHERE ts BETWEEN make_timestamp($lo) "
                "AND make_timestamp($hi)) s "
                "ON c.device_id::VARCHAR = s.d AND c.channel::VARCHAR = s.ch "
                "AND epoch_us(c.ts) = s.t"
            )
            found = con.execute(query, {"files": [str(f) for f in files], "lo": lo,
                                        "hi": hi}).fetchnumpy()["i"]
        finally:
            con.close()
        seen = np.zeros(len(batch), bool)
        seen[np.asarray(found, np.int64)] = True
        return seen


def _sorted_unique(batch: ReadingBatch) -> ReadingBatch:
    """The batch ordered by device, channel and time (a reader's filter on either then skips
    most row groups), each (device, channel, ts) once. A file already in that order (most
    exports are) is only checked, not sorted."""
    if not len(batch):
        return batch
    d, c, t = batch.device, batch.channel, batch.ts
    step = (d[1:] > d[:-1]) | ((d[1:] == d[:-1]) & ((c[1:] > c[:-1]) | ((c[1:] == c[:-1])
                                                                       & (t[1:] >= t[:-1]))))
    if not step.all():
        order = np.lexsort((t, c, d))
        batch = batch.take(order)
        d, c, t = batch.device, batch.channel, batch.ts
    repeat = (d[1:] == d[:-1]) & (c[1:] == c[:-1]) & (t[1:] == t[:-1])
    if repeat.any():
        batch = batch.take(np.flatnonzero(~np.r_[False, repeat]))
    return batch


def _device_hashes(hashes: np.ndarray, devices: np.ndarray) -> np.ndarray:
    """The hashes of the distinct devices of a batch ordered by device, sorted."""
    if not len(devices):
        return np.empty(0, np.uint32)
    first = devices[np.r_[True, devices[1:] != devices[:-1]]]
    out: np.ndarray = np.unique(hashes[first])
    return out


def _npy(array: np.ndarray) -> bytes:
    sink = io.BytesIO()
    np.save(sink, array)
    return sink.getvalue()


def _member(batch: ReadingBatch, other: ReadingBatch) -> np.ndarray:
    """Per row of `batch`: is its (device, channel, ts) among `other`'s rows."""
    def keys(b: ReadingBatch) -> np.ndarray:
        out = np.empty(len(b), dtype=[("d", np.int32), ("c", np.int8), ("t", np.int64)])
        out["d"], out["c"], out["t"] = b.device, b.channel, b.ts
        return out

    return np.isin(keys(batch), keys(other))


def _write_atomic(path: Path, data: bytes, fsync: bool) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        if fsync:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)
    if fsync:
        fsync_dir(path.parent)
