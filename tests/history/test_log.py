import asyncio
import os

import numpy as np
import pytest

from cityops.domain.city import Device
from cityops.domain.kinds import BUILTIN_KINDS
from cityops.domain.readings import ReadingBatch
from cityops.domain.registry import DeviceRegistry
from cityops.history import wal
from cityops.history.log import HistoryLog
from cityops.history.query import HistoryReader
from cityops.ingest.pipeline import Overloaded

T0 = 1_800_000_000_000_000


@pytest.fixture
def registry():
    r = DeviceRegistry(BUILTIN_KINDS)
    r.add([Device(f"n{i}", "noise", 31.2, 121.5) for i in range(100)])
    r.add([Device("aq", "air_quality", 31.2, 121.5)])
    return r


def rows(devices, ts, values=None, channel=None):
    n = len(devices)
    return ReadingBatch(np.asarray(devices, np.int32),
                        np.zeros(n, np.int8) if channel is None else np.asarray(channel, np.int8),
                        np.asarray(ts, np.int64),
                        np.full(n, 50.0) if values is None else np.asarray(values, float))


@pytest.fixture
def history(tmp_path, registry):
    h = HistoryLog(tmp_path, registry, seal_after_s=3600)
    h.open()
    yield h
    h.close()


async def test_an_acknowledged_batch_is_on_disk(history, tmp_path):
    result = await history.append(rows([1, 2, 3], [T0, T0, T0]))
    assert len(result.stored) == 3 and result.duplicates == 0
    # What the writer acknowledged is readable by a fresh reader of the file, CRC-checked.
    segments = wal.list_segments(tmp_path / "wal")
    frames = [f for _, path in segments for f in wal.read_segment(path)]
    assert sum(len(f) for f in frames) == 3


async def test_duplicates_are_counted_and_not_written_twice(history):
    b = rows([1, 2, 3], [T0, T0 + 1, T0 + 2])
    await history.append(b)
    again = await history.append(b)
    assert again.duplicates == 3 and len(again.stored) == 0
    assert HistoryReader(history).count() == 3


async def test_concurrent_appends_are_group_committed(history):
    batches = [rows(list(range(100)), [T0 + k] * 100) for k in range(50)]
    results = await asyncio.gather(*(history.append(b) for b in batches))
    assert sum(len(r.stored) for r in results) == 5000
    assert history.stats["groups"] <= 50
    assert HistoryReader(history).count() == 5000


async def test_reopen_recovers_latest_and_dedup_memory(tmp_path, registry):
    h = HistoryLog(tmp_path, registry)
    h.open()
    b = rows([4, 5], [T0, T0 + 10], values=[61.0, 62.0])
    await h.append(b)
    h.close()
    h2 = HistoryLog(tmp_path, registry)
    h2.open()
    try:
        ts, value = h2.state.latest(5)
        assert ts[0] == T0 + 10 and value[0] == 62.0
        again = await h2.append(b)
        assert again.duplicates == 2
        assert HistoryReader(h2).count() == 2
    finally:
        h2.close()


async def test_a_torn_tail_is_cut_off_and_the_rest_kept(tmp_path, registry):
    h = HistoryLog(tmp_path, registry)
    h.open()
    await h.append(rows([1, 2], [T0, T0]))
    await h.append(rows([3], [T0]))
    h.close()
    (seq, path), = wal.list_segments(tmp_path / "wal")
    size = path.stat().st_size
    with open(path, "r+b") as f:  # a crash in the middle of the second frame
        f.truncate(size - 5)
    h2 = HistoryLog(tmp_path, registry)
    h2.open()
    try:
        assert HistoryReader(h2).count() == 2
        await h2.append(rows([9], [T0]))  # appends continue after the repaired prefix
        assert HistoryReader(h2).count() == 3
    finally:
        h2.close()


async def test_sealed_segments_compact_to_hourly_parquet_after_a_snapshot(tmp_path, registry):
    h = HistoryLog(tmp_path, registry, seal_after_s=0)
    h.open()
    try:
        hour = 3600 * 1_000_000
        await h.append(rows([1, 2, 3], [T0, T0 + hour, T0 + 2 * hour]))
        await h.append(rows([7], [T0]))  # seals the first segment
        _, mark = h.take_dirty_latest()
        assert mark >= 1
        assert not list((tmp_path / "parquet").rglob("*.parquet"))  # not before the snapshot
        h.snapshot_saved(mark)
        assert h.compact_ready() >= 1
        files = sorted((tmp_path / "parquet").rglob("*.parquet"))
        # Both segments were sealed (seal_after_s=0); the first spans three hours.
        assert len(files) == 4
        assert len({f.parent for f in files}) == 3
        assert all("date=" in str(f.parent.parent) and "hour=" in f.parent.name for f in files)
        reader = HistoryReader(h)
        assert reader.count() == 4
        readings = reader.device_readings(2, 0, 2**62, 10)
        assert readings == [("laeq", T0 + hour, 50.0)]
    finally:
        h.close()


async def test_reads_merge_parquet_and_wal_without_repeats(tmp_path, registry):
    h = HistoryLog(tmp_path, registry, seal_after_s=0)
    h.open()
    try:
        await h.append(rows([1, 1], [T0, T0 + 1], values=[1.0, 2.0]))
        await h.append(rows([1], [T0 + 2], values=[3.0]))
        _, mark = h.take_dirty_latest()
        h.snapshot_saved(mark)
        h.compact_ready()
        reader = HistoryReader(h)
        got = reader.device_readings(1, T0, T0 + 3, 100)
        assert [v for _, _, v in got] == [1.0, 2.0, 3.0]
        assert reader.device_readings(1, T0 + 1, T0 + 2, 100) == [("laeq", T0 + 1, 2.0)]
        assert reader.count(T0 + 1, T0 + 3) == 2
    finally:
        h.close()


async def test_multichannel_rows_read_back_by_channel_name(history, registry):
    aq = registry.index["aq"]
    await history.append(rows([aq, aq], [T0, T0], values=[12.0, 40.0], channel=[0, 1]))
    got = HistoryReader(history).device_readings(aq, 0, 2**62, 10)
    assert sorted(got) == [("pm10", T0, 40.0), ("pm25", T0, 12.0)]


async def test_a_full_writer_queue_refuses_at_once(tmp_path, registry):
    h = HistoryLog(tmp_path, registry, queue_batches=2)
    # Not opened: nobody drains the queue, as when the disk stalls.
    pending = [asyncio.ensure_future(h.append(rows([1], [T0 + i]))) for i in range(2)]
    await asyncio.sleep(0)
    with pytest.raises(Overloaded, match="queue is full"):
        await h.append(rows([1], [T0 + 5]))
    for p in pending:
        p.cancel()


async def test_a_failed_write_fails_every_caller_in_the_group(history, monkeypatch):
    def broken(frames):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(history._segment, "append", broken)
    with pytest.raises(OSError, match="No space"):
        await history.append(rows([1], [T0]))
    # Nothing was remembered as stored, so the client's retry is not taken for a duplicate.
    monkeypatch.undo()
    again = await history.append(rows([1], [T0]))
    assert again.duplicates == 0 and len(again.stored) == 1
    assert os.path.exists(history._segment.path)
