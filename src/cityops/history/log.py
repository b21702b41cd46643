"""The history log: where a reading becomes durable.

One writer thread takes batches from a bounded queue, drops readings already stored, appends
the rest to the open WAL segment and fsyncs once for everything it took (group commit); only
then are the callers' awaits resolved, so an acknowledged reading survives a crash. Segments are
sealed by size or age and compacted to Parquet once the latest values they carry are in the
state store's snapshot, which is what a restart starts from before replaying the WAL.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from cityops.domain.kinds import MAX_CHANNELS
from cityops.domain.readings import ReadingBatch
from cityops.domain.registry import DeviceRegistry
from cityops.history import parquet, wal
from cityops.history.state import SeriesState
from cityops.ingest.pipeline import Overloaded
from cityops.store.base import LatestRows

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Appended:
    stored: ReadingBatch  # the rows that were new, now durable
    duplicates: int  # rows already stored
    fresh: np.ndarray  # per row of the appended batch: was it new


@dataclass(slots=True)
class _Job:
    batch: ReadingBatch
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future


class HistoryLog:
    def __init__(
        self,
        root: Path,
        registry: DeviceRegistry,
        *,
        fsync: bool = True,
        queue_batches: int = 256,
        group_rows: int = 500_000,
        segment_bytes: int = 32 << 20,
        seal_after_s: float = 60.0,
    ) -> None:
        self.root = Path(root)
        self.wal_dir = self.root / "wal"
        self.parquet_dir = self.root / "parquet"
        self.registry = registry
        self.fsync = fsync
        self.group_rows = group_rows
        self.segment_bytes = segment_bytes
        self.seal_after_s = seal_after_s
        self.state = SeriesState(len(registry))
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=queue_batches)
        self._lock = threading.Lock()  # guards state commits, frames and segment bookkeeping
        self._frames: dict[int, list[ReadingBatch]] = {}  # uncompacted segments, by seq
        self._sealed: list[int] = []
        self._seq = 0
        self._segment: wal.SegmentWriter | None = None
        self._opened_at = 0.0
        self._snapshot_mark = -1
        self._writer: threading.Thread | None = None
        self._compactor: threading.Thread | None = None
        self._wake_compactor = threading.Event()
        self._compacting = threading.Lock()  # the compactor thread and close() may both try
        self._closing = False
        self._channel_code: np.ndarray | None = None
        self._names_cache: tuple[int, pa.Array] | None = None
        self.stats = {"rows": 0, "duplicates": 0, "groups": 0, "fsync_s": 0.0, "compacted": 0}

    # -- lifecycle -------------------------------------------------------------------------

    def open(self, snapshot: LatestRows | None = None) -> None:
        """Recover: the stored latest values, then every WAL segment not yet compacted."""
        self.wal_dir.mkdir(parents=True, exist_ok=True)
        self.parquet_dir.mkdir(parents=True, exist_ok=True)
        self.state.reserve(len(self.registry))
        if snapshot is not None and len(snapshot):
            self._restore_snapshot(snapshot)
        segments = wal.list_segments(self.wal_dir)
        for seq, path in segments:
            parquet.remove_segment_files(self.parquet_dir, seq)
            frames = wal.read_segment(path, repair=True)
            for frame in frames:
                self._reserve_for(frame)
                self.state.commit(frame)
            self._frames[seq] = frames
            self._sealed.append(seq)
        self._seq = segments[-1][0] + 1 if segments else 1
        self._open_segment()
        self._writer = threading.Thread(target=self._write_loop, name="history-writer", daemon=True)
        self._writer.start()
        self._compactor = threading.Thread(target=self._compact_loop, name="history-compactor",
                                           daemon=True)
        self._compactor.start()

    def close(self) -> None:
        if self._writer is None:
            return
        self._queue.put(None)
        self._writer.join()
        self._writer = None
        with self._lock:
            self._seal()
        self._closing = True
        self._wake_compactor.set()
        if self._compactor is not None:
            self._compactor.join()

    # -- writing ---------------------------------------------------------------------------

    async def append(self, batch: ReadingBatch) -> Appended:
        """Store `batch` durably; resolves once it is fsync'd. Raises Overloaded when full."""
        loop = asyncio.get_running_loop()
        job = _Job(batch, loop, loop.create_future())
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise Overloaded("history writer queue is full", retry_after=1.0) from None
        return await job.future

    def queue_depth(self) -> int:
        return self._queue.qsize()

    def _write_loop(self) -> None:
        while True:
            job = self._queue.get()
            if job is None:
                return
            jobs = [job]
            rows = len(job.batch)
            stop = False
            while rows < self.group_rows:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                jobs.append(more)
                rows += len(more.batch)
            self._write_group(jobs)
            if stop:
                return

    def _write_group(self, jobs: list[_Job]) -> None:
        try:
            batch = ReadingBatch.concat([j.batch for j in jobs])
            self._reserve_for(batch)
            fresh, _ = self.state.new_rows(batch)
            stored = batch.take(np.flatnonzero(fresh))
            if len(stored):
                started = time.perf_counter()
                self._segment.append([wal.encode_frame(stored)])
                self.stats["fsync_s"] += time.perf_counter() - started
            with self._lock:
                self.state.commit(stored)
                if len(stored):
                    self._frames[self._seq].append(stored)
                if self._segment.size >= self.segment_bytes or (
                    time.monotonic() - self._opened_at >= self.seal_after_s and self._segment.size
                ):
                    self._seal()
                    self._open_segment()
            self.stats["rows"] += len(stored)
            self.stats["duplicates"] += len(batch) - len(stored)
            self.stats["groups"] += 1
        except BaseException as exc:  # the disk failed: every caller in the group must know
            log.exception("history write failed")
            for job in jobs:
                job.loop.call_soon_threadsafe(_fail, job.future, exc)
            return
        offset = 0
        for job in jobs:
            n = len(job.batch)
            mask = fresh[offset : offset + n]
            offset += n
            result = Appended(job.batch.take(np.flatnonzero(mask)), int(n - mask.sum()), mask)
            result.stored.received_ns = job.batch.received_ns
            result.stored.source = job.batch.source
            job.loop.call_soon_threadsafe(_resolve, job.future, result)

    def _reserve_for(self, batch: ReadingBatch) -> None:
        if len(batch) and int(batch.device.max()) >= self.state.capacity // MAX_CHANNELS:
            # Growing swaps the arrays; a commit must not write into the old ones meanwhile.
            with self._lock:
                self.state.reserve(max(len(self.registry), int(batch.device.max()) + 1))

    def _open_segment(self) -> None:
        self._segment = wal.SegmentWriter(wal.segment_path(self.wal_dir, self._seq), self.fsync)
        self._frames.setdefault(self._seq, [])
        self._opened_at = time.monotonic()

    def _seal(self) -> None:
        if self._segment is None:
            return
        self._segment.close()
        self._segment = None
        if self._frames.get(self._seq):
            self._sealed.append(self._seq)
        else:
            self._frames.pop(self._seq, None)
            wal.segment_path(self.wal_dir, self._seq).unlink(missing_ok=True)
        self._seq += 1

    # -- latest values and the snapshot that lets segments be compacted --------------------

    def take_dirty_latest(self) -> tuple[LatestRows, int]:
        """Latest values changed since the last call, and a mark: once they are saved in the
        store, every segment sealed up to the mark can be compacted (`snapshot_saved`)."""
        with self._lock:
            series, ts, value = self.state.take_dirty()
            mark = self._sealed[-1] if self._sealed else -1
        device = series // MAX_CHANNELS
        channel = series % MAX_CHANNELS
        devices = self.registry.devices
        names = self.registry.channel_names()
        kind_of = self.registry.kind_of
        rows = LatestRows(
            device_id=[devices[d].id for d in device.tolist()],
            channel=[names[kind_of[d]][c] for d, c in zip(device.tolist(), channel.tolist())],
            ts_us=ts.tolist(),
            value=value.tolist(),
        )
        return rows, mark

    def snapshot_saved(self, mark: int) -> None:
        self._snapshot_mark = max(self._snapshot_mark, mark)
        self._wake_compactor.set()

    def restore_dirty(self, rows: LatestRows) -> None:
        """A snapshot save failed: mark its series dirty again so the next one carries them."""
        series = self._series_of(rows)
        with self._lock:
            self.state.dirty[series[series >= 0]] = True

    def _series_of(self, rows: LatestRows) -> np.ndarray:
        index = self.registry.index
        names = self.registry.channel_names()
        kind_of = self.registry.kind_of
        out = np.full(len(rows), -1, np.int64)
        for i, (device_id, channel) in enumerate(zip(rows.device_id, rows.channel)):
            d = index.get(device_id)
            if d is None:
                continue
            try:
                c = names[kind_of[d]].index(channel)
            except ValueError:
                continue
            out[i] = d * MAX_CHANNELS + c
        return out

    def _restore_snapshot(self, rows: LatestRows) -> None:
        series = self._series_of(rows)
        known = series >= 0
        self.state.restore_latest(
            series[known],
            np.asarray(rows.ts_us, np.int64)[known],
            np.asarray(rows.value, np.float64)[known],
        )

    # -- compaction ------------------------------------------------------------------------

    def _compact_loop(self) -> None:
        while True:
            self._wake_compactor.wait(timeout=1.0)
            self._wake_compactor.clear()
            self.compact_ready()
            if self._closing:
                return

    def compact_ready(self) -> int:
        """Compact every sealed segment the last snapshot covers; returns how many."""
        with self._compacting:
            return self._compact_covered()

    def _compact_covered(self) -> int:
        done = 0
        while True:
            with self._lock:
                ready = [s for s in self._sealed if s <= self._snapshot_mark]
                if not ready:
                    return done
                seq = ready[0]
                frames = list(self._frames.get(seq, []))
            try:
                batch = ReadingBatch.concat(frames)
                if len(batch):
                    parquet.write_segment(self.parquet_dir, seq, batch, self._to_table)
            except Exception:
                log.exception("compaction of WAL segment %s failed; will retry", seq)
                return done
            with self._lock:
                self._sealed.remove(seq)
                self._frames.pop(seq, None)
            wal.segment_path(self.wal_dir, seq).unlink(missing_ok=True)
            self.stats["compacted"] += 1
            done += 1

    def _to_table(self, batch: ReadingBatch) -> pa.Table:
        names, code = self._channel_dictionary()
        return parquet.to_arrow(batch, self._device_ids(), names, code)

    def _device_ids(self) -> pa.Array:
        n = len(self.registry)
        if self._names_cache is None or self._names_cache[0] != n:
            self._names_cache = (n, pa.array([d.id for d in self.registry.devices], pa.string()))
        return self._names_cache[1]

    def _channel_dictionary(self) -> tuple[pa.Array, np.ndarray]:
        return parquet.channel_dictionary(self.registry)

    # -- reading ---------------------------------------------------------------------------

    def recent_frames(self) -> list[ReadingBatch]:
        with self._lock:
            return [f for seq in sorted(self._frames) for f in self._frames[seq]]


def _resolve(future: asyncio.Future, result) -> None:
    if not future.done():
        future.set_result(result)


def _fail(future: asyncio.Future, exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
