"""Per-series memory of what was stored: the latest value, and recent timestamps for dedup.

A series is one channel of one device (index device * MAX_CHANNELS + channel). A reading newer
than the series' latest is new by construction; an older one is a duplicate only if its
timestamp is among the last RING stored for that series (a retried batch). Older duplicates
than that are still harmless: history reads and compaction drop repeated (series, ts).
"""

from __future__ import annotations

import numpy as np

from cityops.domain.kinds import MAX_CHANNELS
from cityops.domain.readings import ReadingBatch

RING = 8
NEVER = np.iinfo(np.int64).min


class SeriesState:
    def __init__(self, devices: int = 0) -> None:
        self.capacity = 0
        self.latest_ts = np.empty(0, np.int64)
        self.latest_value = np.empty(0, np.float64)
        self.ring = np.empty((0, RING), np.int64)
        self.ring_next = np.empty(0, np.int64)
        self.dirty = np.empty(0, bool)
        self.reserve(devices)

    def reserve(self, devices: int) -> None:
        n = max(devices, 1) * MAX_CHANNELS
        if n <= self.capacity:
            return
        n = max(n, self.capacity * 2)
        grow = n - self.capacity
        self.latest_ts = np.concatenate([self.latest_ts, np.full(grow, NEVER, np.int64)])
        self.latest_value = np.concatenate([self.latest_value, np.full(grow, np.nan)])
        self.ring = np.concatenate([self.ring, np.full((grow, RING), NEVER, np.int64)])
        self.ring_next = np.concatenate([self.ring_next, np.zeros(grow, np.int64)])
        self.dirty = np.concatenate([self.dirty, np.zeros(grow, bool)])
        self.capacity = n

    @staticmethod
    def series(batch: ReadingBatch) -> np.ndarray:
        return batch.device.astype(np.int64) * MAX_CHANNELS + batch.channel

    def new_rows(self, batch: ReadingBatch) -> tuple[np.ndarray, np.ndarray]:
        """Mask of rows not stored before (first of any repeats within the batch) and the
        order that sorts the batch by (series, ts), reused by `commit`."""
        s = self.series(batch)
        ts = batch.ts
        order = np.lexsort((ts, s))
        ss, tt = s[order], ts[order]
        repeat = np.zeros(len(order), bool)
        repeat[1:] = (ss[1:] == ss[:-1]) & (tt[1:] == tt[:-1])
        fresh = np.empty(len(order), bool)
        fresh[order] = ~repeat
        older = ts <= self.latest_ts[s]
        if older.any():
            rows = np.flatnonzero(older)
            seen = (self.ring[s[rows]] == ts[rows, None]).any(axis=1)
            fresh[rows[seen]] = False
        return fresh, order

    def commit(self, batch: ReadingBatch) -> None:
        """Remember rows that are now stored (all new, as returned by `new_rows`)."""
        if not len(batch):
            return
        s = self.series(batch)
        order = np.lexsort((batch.ts, s))
        ss, tt, vv = s[order], batch.ts[order], batch.value[order]
        first = np.ones(len(ss), bool)
        first[1:] = ss[1:] != ss[:-1]
        starts = np.flatnonzero(first)
        rank = np.arange(len(ss)) - np.repeat(starts, np.diff(np.append(starts, len(ss))))
        self.ring[ss, (self.ring_next[ss] + rank) % RING] = tt
        counts = np.diff(np.append(starts, len(ss)))
        self.ring_next[ss[starts]] += counts
        last = np.append(starts[1:] - 1, len(ss) - 1)
        head, head_ts, head_value = ss[last], tt[last], vv[last]
        newer = head_ts > self.latest_ts[head]
        self.latest_ts[head[newer]] = head_ts[newer]
        self.latest_value[head[newer]] = head_value[newer]
        self.dirty[head[newer]] = True

    def restore_latest(self, series: np.ndarray, ts: np.ndarray, value: np.ndarray) -> None:
        newer = ts > self.latest_ts[series]
        self.latest_ts[series[newer]] = ts[newer]
        self.latest_value[series[newer]] = value[newer]

    def take_dirty(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Series whose latest changed since the last call: (series, ts, value)."""
        series = np.flatnonzero(self.dirty)
        self.dirty[series] = False
        return series, self.latest_ts[series].copy(), self.latest_value[series].copy()

    def latest(self, device: int) -> tuple[np.ndarray, np.ndarray]:
        base = device * MAX_CHANNELS
        if base >= self.capacity:  # registered after the last reserve: nothing stored yet
            return np.full(MAX_CHANNELS, NEVER, np.int64), np.full(MAX_CHANNELS, np.nan)
        return self.latest_ts[base : base + MAX_CHANNELS], self.latest_value[base : base + MAX_CHANNELS]
