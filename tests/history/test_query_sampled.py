"""history.query.sampled: values as they stood at regular steps (the screen's replay), over
Parquet and the WAL alike."""

import numpy as np
import pytest

from cityops.domain.city import Device
from cityops.domain.kinds import BUILTIN_KINDS
from cityops.domain.readings import ReadingBatch
from cityops.domain.registry import DeviceRegistry
from cityops.history.log import HistoryLog
from cityops.history.query import HistoryReader, sampled

T0 = 1_800_000_000_000_000
S = 1_000_000


@pytest.fixture
def registry():
    r = DeviceRegistry(BUILTIN_KINDS)
    r.add([Device("noise", "noise", 31.2, 121.5)])
    r.add([Device(f"gps{i}", "gps", 31.2, 121.5) for i in range(2)])
    return r


def fixes(device, ts, lats, lons):
    n = len(ts)
    return ReadingBatch(np.full(2 * n, device, np.int32),
                        np.repeat(np.array([[0, 1]], np.int8), n, 0).ravel(),
                        np.repeat(np.asarray(ts, np.int64), 2),
                        np.column_stack([lats, lons]).ravel().astype(float))


async def test_steps_hold_the_latest_value_from_parquet_and_the_wal(tmp_path, registry):
    h = HistoryLog(tmp_path, registry, seal_after_s=0)
    h.open()
    try:
        # gps0 (device 1): before the window, at 10 s, and at 20 s (in Parquet), then at 35 s
        # (still in the WAL); gps1 (device 2): one fix at 5 s.
        await h.append(fixes(1, [T0 - 20 * S, T0 + 10 * S, T0 + 20 * S], [1.0, 2.0, 3.0],
                             [11.0, 12.0, 13.0]))
        await h.append(fixes(2, [T0 + 5 * S], [7.0], [17.0]))  # seals the first segment
        _, mark = h.take_dirty_latest()
        h.snapshot_saved(mark)
        h.compact_ready()
        assert list((tmp_path / "parquet").rglob("*.parquet"))
        await h.append(fixes(1, [T0 + 35 * S], [4.0], [14.0]))
        reader = HistoryReader(h)

        got = sampled(reader, [1, 2], ["lat", "lon"], T0, 10 * S, 6, 30 * S)
        assert got.shape == (2, 2, 6)
        # Frames at 0, 10, ... 50 s. A fix at a frame's moment is in it; 35 s shows from 40.
        assert got[0, 0].tolist()[:5] == [1.0, 2.0, 3.0, 3.0, 4.0]
        assert got[0, 1].tolist()[:5] == [11.0, 12.0, 13.0, 13.0, 14.0]
        # Held for 30 s at most: the fix of 5 s is gone at 40 s; nothing before 5 s.
        assert np.isnan(got[1, 0, 0]) and got[1, 0, 1:4].tolist() == [7.0, 7.0, 7.0]
        assert np.isnan(got[1, 0, 4:]).all()
        # A device of another kind has no such channels: all NaN, no error.
        assert np.isnan(sampled(reader, [0], ["lat"], T0, 10 * S, 3, 30 * S)).all()
        # The fix before the window is the first frame's only within the hold.
        assert np.isnan(sampled(reader, [1], ["lat"], T0, 5 * S, 1, 10 * S)).all()
        assert sampled(reader, [1], ["lat"], T0, 5 * S, 1, 30 * S)[0, 0, 0] == 1.0
    finally:
        h.close()
