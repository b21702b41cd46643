"""HistoryReader.series: bounded per-series reads over Parquet and the WAL (the NGSI-LD
temporal API's source)."""

import numpy as np
import pytest

from cityops.domain.city import Device
from cityops.domain.kinds import BUILTIN_KINDS
from cityops.domain.readings import ReadingBatch
from cityops.domain.registry import DeviceRegistry
from cityops.history.log import HistoryLog
from cityops.history.query import HistoryReader

T0 = 1_800_000_000_000_000
S = 1_000_000


@pytest.fixture
def registry():
    r = DeviceRegistry(BUILTIN_KINDS)
    r.add([Device(f"n{i}", "noise", 31.2, 121.5) for i in range(4)])
    r.add([Device("aq", "air_quality", 31.2, 121.5)])
    return r


def rows(devices, ts, values, channel=None):
    n = len(devices)
    return ReadingBatch(np.asarray(devices, np.int32),
                        np.zeros(n, np.int8) if channel is None else np.asarray(channel, np.int8),
                        np.asarray(ts, np.int64), np.asarray(values, float))


def triples(batch):
    return list(zip(batch.device.tolist(), batch.channel.tolist(), batch.ts.tolist(),
                    batch.value.tolist()))


async def compact(h):
    _, mark = h.take_dirty_latest()
    h.snapshot_saved(mark)
    h.compact_ready()


async def test_series_reads_both_parquet_and_wal_once_each(tmp_path, registry):
    h = HistoryLog(tmp_path, registry, seal_after_s=0)
    h.open()
    try:
        await h.append(rows([1, 1, 2], [T0, T0 + S, T0], [1.0, 2.0, 9.0]))
        await h.append(rows([1], [T0 + 2 * S], [3.0]))  # seals the first segment
        await compact(h)
        assert list((tmp_path / "parquet").rglob("*.parquet"))
        await h.append(rows([1, 1], [T0 + 3 * S, T0 + S], [4.0, 99.0]))  # T0+S again: a repeat
        reader = HistoryReader(h)
        got = reader.series([1], T0, T0 + 10 * S, 100)
        assert triples(got) == [(1, 0, T0, 1.0), (1, 0, T0 + S, 2.0), (1, 0, T0 + 2 * S, 3.0),
                                (1, 0, T0 + 3 * S, 4.0)]
        assert triples(reader.series([2], T0, T0 + 1, 100)) == [(2, 0, T0, 9.0)]
        # The window is half-open, as everywhere in the history.
        assert triples(reader.series([1], T0 + S, T0 + 3 * S, 100)) == [
            (1, 0, T0 + S, 2.0), (1, 0, T0 + 2 * S, 3.0)]
    finally:
        h.close()


async def test_series_keeps_the_oldest_or_newest_n_of_each_channel(tmp_path, registry):
    h = HistoryLog(tmp_path, registry, seal_after_s=0)
    h.open()
    try:
        aq = registry.index["aq"]
        ts = [T0 + i * S for i in range(5)]
        await h.append(rows([aq] * 5, ts, [10, 11, 12, 13, 14], channel=[0] * 5))
        await h.append(rows([aq] * 5, ts, [20, 21, 22, 23, 24], channel=[1] * 5))
        await compact(h)
        await h.append(rows([aq], [T0 + 5 * S], [15], channel=[0]))  # in the WAL only
        reader = HistoryReader(h)
        oldest = reader.series([aq], 0, 2**62, 2)
        assert triples(oldest) == [(aq, 0, ts[0], 10.0), (aq, 0, ts[1], 11.0),
                                   (aq, 1, ts[0], 20.0), (aq, 1, ts[1], 21.0)]
        newest = reader.series([aq], 0, 2**62, 2, newest=True)
        assert triples(newest) == [(aq, 0, ts[4], 14.0), (aq, 0, T0 + 5 * S, 15.0),
                                   (aq, 1, ts[3], 23.0), (aq, 1, ts[4], 24.0)]
    finally:
        h.close()


async def test_series_of_several_devices_and_of_none(tmp_path, registry):
    h = HistoryLog(tmp_path, registry)
    h.open()
    try:
        await h.append(rows([0, 1, 2, 3], [T0] * 4, [0, 1, 2, 3]))
        reader = HistoryReader(h)
        assert triples(reader.series([3, 1], 0, 2**62, 5)) == [(1, 0, T0, 1.0), (3, 0, T0, 3.0)]
        assert len(reader.series([], 0, 2**62, 5)) == 0
        assert len(reader.series([1], T0 + 1, T0, 5)) == 0
    finally:
        h.close()
