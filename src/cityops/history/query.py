"""Reading the history back: Parquet through DuckDB, plus the not yet compacted WAL in memory.

Repeated (device, channel, ts) rows are dropped here too, so a reading stored twice (a retry
older than the writer's dedup memory) still reads back once.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import duckdb
import numpy as np

from cityops.domain.kinds import MAX_CHANNELS
from cityops.domain.readings import ReadingBatch, series_ranks
from cityops.history.backfill import IMPORTED
from cityops.history.log import HistoryLog


class HistoryReader:
    def __init__(self, history: HistoryLog) -> None:
        self.history = history
        self._local = threading.local()

    def _con(self) -> duckdb.DuckDBPyConnection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = duckdb.connect(config={"threads": 1})
            self._local.con = con
        return con

    def _parquet_source(self) -> str | None:
        """The live history's compacted files and the imported ones (cityops.history.backfill)
        as one DuckDB source; None while there are none."""
        globs = []
        for root, pattern in ((self.history.parquet_dir, "date=*/hour=*/*.parquet"),
                              (self.history.root / IMPORTED, "*/*.parquet")):
            if any(root.glob(pattern)):
                globs.append("'" + str(root / pattern).replace("'", "''") + "'")
        if not globs:
            return None
        return f"read_parquet([{', '.join(globs)}], hive_partitioning = false)"

    def _recent(self, device: int | None = None) -> ReadingBatch:
        frames = self.history.recent_frames()
        if device is not None:
            frames = [f.take(np.flatnonzero(f.device == device)) for f in frames]
        return ReadingBatch.concat([f for f in frames if len(f)])

    def device_readings(
        self, device: int, from_us: int, to_us: int, limit: int
    ) -> list[tuple[str, int, float]]:
        """(channel, ts_us, value) of one device with from_us <= ts < to_us, oldest first."""
        con = self._con()
        rows: dict[tuple[str, int], float] = {}
        source = self._parquet_source()
        device_id = self.history.registry.devices[device].id
        if source is not None:
            query = (
                f"SELECT channel, epoch_us(ts) AS t, first(value) FROM {source} "
                "WHERE device_id = $d AND ts >= make_timestamp($f) AND ts < make_timestamp($t) "
                "GROUP BY ALL ORDER BY t LIMIT $n"
            )
            params = {"d": device_id, "f": from_us, "t": to_us, "n": limit}
            for channel, t, value in con.execute(query, params).fetchall():
                rows.setdefault((channel, t), value)
        recent = self._recent(device)
        if len(recent):
            names = self.history.registry.channel_names()[self.history.registry.kind_of[device]]
            inside = (recent.ts >= from_us) & (recent.ts < to_us)
            for c, t, v in zip(recent.channel[inside].tolist(), recent.ts[inside].tolist(),
                               recent.value[inside].tolist()):
                rows.setdefault((names[c], t), v)
        ordered = sorted(rows.items(), key=lambda item: (item[0][1], item[0][0]))[:limit]
        return [(channel, t, v) for (channel, t), v in ordered]

    def series(self, devices: Sequence[int], from_us: int, to_us: int, per_series: int,
               *, newest: bool = False) -> ReadingBatch:
        """Readings of `devices` with from_us <= ts < to_us, at most `per_series` of each
        (device, channel): the oldest ones, or the newest with `newest`. Ordered by device,
        channel and time. The NGSI-LD temporal API reads attribute histories through this; the
        per-series bound is applied in DuckDB, so a long history is never read whole."""
        if not devices or per_series <= 0 or from_us >= to_us:
            return ReadingBatch.empty()
        order = "DESC" if newest else "ASC"
        parts = self._window(
            devices, from_us, to_us, "channel::VARCHAR AS c, epoch_us(ts) AS t, first(value)",
            "GROUP BY d, c, t QUALIFY row_number() OVER (PARTITION BY d, c ORDER BY t "
            f"{order}) <= $n", {"n": per_series})
        return _head_per_series(ReadingBatch.concat(parts), per_series, newest)

    def hourly(self, devices: Sequence[int], from_us: int, to_us: int) -> ReadingBatch:
        """The last reading of each hour of each (device, channel) of `devices` with
        from_us <= ts < to_us, in time order: what hour-of-week baselines learn from when a
        node starts (a year of a minute-by-minute meter is 8,760 rows, not half a million)."""
        if not len(devices) or from_us >= to_us:
            return ReadingBatch.empty()
        parts = self._window(devices, from_us, to_us,
                             "channel::VARCHAR AS c, max(epoch_us(ts)) AS t, arg_max(value, ts)",
                             "GROUP BY d, c, epoch_us(ts) // 3600000000", {})
        rows = ReadingBatch.concat(parts)
        if not len(rows):
            return rows
        # One per (device, channel, hour), the newest; Parquet and the WAL may both hold it.
        hour = rows.ts // (3600 * 1_000_000)
        order = np.lexsort((rows.ts, hour, rows.channel, rows.device))
        d, c, h = rows.device[order], rows.channel[order], hour[order]
        last = np.r_[(d[1:] != d[:-1]) | (c[1:] != c[:-1]) | (h[1:] != h[:-1]), True]
        rows = rows.take(order[last])
        return rows.take(np.argsort(rows.ts, kind="stable"))

    def _window(self, devices: Sequence[int], from_us: int, to_us: int, select: str,
                rest: str, params: dict) -> list[ReadingBatch]:
        """Rows of `devices` with from_us <= ts < to_us: from Parquet, `SELECT device_id AS d,
        {select}` (channel c, time t and a value, in that order) and `rest` (grouping) over
        the window; and the WAL's rows still in memory, as they are."""
        registry = self.history.registry
        wanted = np.unique(np.asarray(devices, dtype=np.int64))
        parts = []
        source = self._parquet_source()
        if source is not None:
            query = (
                f"SELECT device_id::VARCHAR AS d, {select} AS v FROM {source} "
                "WHERE device_id::VARCHAR IN (SELECT unnest($ids)) "
                f"AND ts >= make_timestamp($f) AND ts < make_timestamp($t) {rest}"
            )
            found = self._con().execute(query, {
                "ids": [registry.devices[int(i)].id for i in wanted], "f": from_us,
                "t": to_us, **params}).fetchnumpy()
            if len(found["t"]):
                parts.append(self._indexed(found["d"], found["c"], found["t"], found["v"]))
        for frame in self.history.recent_frames():
            inside = np.isin(frame.device, wanted) & (frame.ts >= from_us) & (frame.ts < to_us)
            if inside.any():
                parts.append(frame.take(np.flatnonzero(inside)))
        return parts

    def _indexed(self, device_ids: np.ndarray, channels: np.ndarray, ts: np.ndarray,
                 values: np.ndarray) -> ReadingBatch:
        """Rows read back from Parquet (devices and channels by name) as registry indices.
        A channel its kind no longer lists is dropped: it has no attribute to stand under."""
        registry = self.history.registry
        names = registry.channel_names()
        device = np.empty(len(ts), np.int32)
        channel = np.full(len(ts), -1, np.int8)
        for i, (d, c) in enumerate(zip(device_ids.tolist(), channels.tolist())):
            index = registry.index[d]
            device[i] = index
            kind_channels = names[int(registry.kind_of[index])]
            if c in kind_channels:
                channel[i] = kind_channels.index(c)
        keep = channel >= 0
        return ReadingBatch(device[keep], channel[keep], np.asarray(ts, np.int64)[keep],
                            np.asarray(values, np.float64)[keep])

    def count(self, from_us: int | None = None, to_us: int | None = None) -> int:
        """Distinct readings stored, optionally within [from_us, to_us)."""
        con = self._con()
        parts = []
        source = self._parquet_source()
        where = []
        if from_us is not None:
            where.append(f"epoch_us(ts) >= {int(from_us)}")
        if to_us is not None:
            where.append(f"epoch_us(ts) < {int(to_us)}")
        cond = f"WHERE {' AND '.join(where)}" if where else ""
        if source is not None:
            parts.append(f"SELECT device_id::VARCHAR AS d, channel::VARCHAR AS c, ts FROM {source}")
        recent = self._recent()
        if len(recent):
            table = self.history._to_table(recent)
            con.register("recent_rows", table)
            parts.append("SELECT device_id::VARCHAR AS d, channel::VARCHAR AS c, ts FROM recent_rows")
        if not parts:
            return 0
        union = " UNION ALL ".join(parts)
        query = f"SELECT count(*) FROM (SELECT DISTINCT d, c, ts FROM ({union}) {cond})"
        try:
            return int(con.execute(query).fetchall()[0][0])
        finally:
            if len(recent):
                con.unregister("recent_rows")


def _head_per_series(rows: ReadingBatch, n: int, newest: bool) -> ReadingBatch:
    """`rows` without repeats of a (device, channel, ts) (the first one read is kept: Parquet
    before the WAL, as everywhere here), ordered by device, channel and time, keeping the first
    `n` of each (device, channel), or the last `n` with `newest`."""
    if not len(rows):
        return rows
    order = np.lexsort((np.arange(len(rows)), rows.ts, rows.channel, rows.device))
    rows = rows.take(order)
    d, c, t = rows.device, rows.channel, rows.ts
    fresh = np.ones(len(rows), bool)
    fresh[1:] = (d[1:] != d[:-1]) | (c[1:] != c[:-1]) | (t[1:] != t[:-1])
    rows = rows.take(np.flatnonzero(fresh))
    _, _, rank = series_ranks(rows, newest)
    return rows.take(np.flatnonzero(rank < n))



# -- sampled at regular steps (the screen's replay) ---------------------------------------------


def sampled(reader: HistoryReader, devices: Sequence[int], channels: Sequence[str],
            from_us: int, step_us: int, steps: int, hold_us: int) -> np.ndarray:
    """Each device's channels as they stood at `from_us + k * step_us` for k < `steps`: the
    latest reading at or before that moment and no older than `hold_us`, else NaN. A float
    array shaped (devices, channels, steps).

    A replay needs values at its frames, not every reading: DuckDB keeps only the last reading
    of each (device, channel) per step over the Parquet files, numpy does the same over the
    WAL rows still in memory, and the gaps are filled forward column-wise, so a day of a
    tracker reporting every 10 s costs one row per frame, never one per reading in Python."""
    n_dev, n_ch = len(devices), len(channels)
    out = np.full((n_dev, n_ch, steps), np.nan)
    if not n_dev or not n_ch or steps <= 0 or step_us <= 0:
        return out
    wanted = np.asarray(devices, np.int64)
    lo, hi = from_us - hold_us, from_us + (steps - 1) * step_us
    parts = [_sampled_parquet(reader, wanted, channels, from_us, step_us, lo, hi),
             _sampled_recent(reader, wanted, channels, from_us, step_us, lo, hi)]
    row = np.concatenate([p[0] for p in parts])
    col = np.concatenate([p[1] for p in parts])
    bucket = np.concatenate([p[2] for p in parts])
    ts = np.concatenate([p[3] for p in parts])
    value = np.concatenate([p[4] for p in parts])
    if not len(ts):
        return out
    # The newest reading wins a step (Parquet and the WAL may both have one for it).
    cell = (row * n_ch + col) * steps + bucket
    order = np.lexsort((ts, cell))
    cell, ts, value = cell[order], ts[order], value[order]
    newest = np.ones(len(cell), bool)
    newest[:-1] = cell[1:] != cell[:-1]
    flat_ts = np.full(n_dev * n_ch * steps, np.iinfo(np.int64).min, np.int64)
    flat_v = np.full(n_dev * n_ch * steps, np.nan)
    flat_ts[cell[newest]] = ts[newest]
    flat_v[cell[newest]] = value[newest]
    last_ts = flat_ts.reshape(n_dev, n_ch, steps)
    last_v = flat_v.reshape(n_dev, n_ch, steps)
    have = last_ts != np.iinfo(np.int64).min
    source = np.where(have, np.arange(steps), -1)
    np.maximum.accumulate(source, axis=2, out=source)
    found = source >= 0
    take = np.where(found, source, 0)
    held_ts = np.take_along_axis(last_ts, take, axis=2)
    held_v = np.take_along_axis(last_v, take, axis=2)
    at = from_us + np.arange(steps, dtype=np.int64) * step_us
    fresh = found & (at - held_ts <= hold_us)
    out[fresh] = held_v[fresh]
    return out


_EMPTY = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64),
          np.empty(0, np.int64), np.empty(0, np.float64))


def _bucket(ts: np.ndarray, from_us: int, step_us: int) -> np.ndarray:
    """The first step at or after each reading (a reading at a step's moment is in it)."""
    return np.where(ts <= from_us, 0, (ts - from_us + step_us - 1) // step_us)


def _sampled_parquet(reader: HistoryReader, wanted: np.ndarray, channels: Sequence[str],
                     from_us: int, step_us: int, lo: int, hi: int):
    source = reader._parquet_source()
    if source is None:
        return _EMPTY
    registry = reader.history.registry
    ids = [registry.devices[int(i)].id for i in wanted.tolist()]
    # The answer's row and column of each reading by a hash join on small tables of the
    # wanted names (an IN list or list_position would be looked through row by row).
    query = (
        "WITH w AS (SELECT unnest($ids) AS id, generate_subscripts($ids, 1) - 1 AS r), "
        "ch AS (SELECT unnest($chs) AS name, generate_subscripts($chs, 1) - 1 AS k) "
        "SELECT w.r AS r, ch.k AS k, "
        "CASE WHEN epoch_us(ts) <= $f THEN 0 ELSE (epoch_us(ts) - $f + $s - 1) // $s END "
        "AS b, max(epoch_us(ts)) AS t, arg_max(value, ts) AS v "
        f"FROM {source} JOIN w ON device_id::VARCHAR = w.id "
        "JOIN ch ON channel::VARCHAR = ch.name "
        "WHERE ts > make_timestamp($lo) AND ts <= make_timestamp($hi) GROUP BY r, k, b"
    )
    found = reader._con().execute(query, {"ids": ids, "chs": list(channels), "f": from_us,
                                          "s": step_us, "lo": lo, "hi": hi}).fetchnumpy()
    if not len(found["t"]):
        return _EMPTY
    row = np.asarray(found["r"], np.int64)
    col = np.asarray(found["k"], np.int64)
    return (row, col, np.asarray(found["b"], np.int64), np.asarray(found["t"], np.int64),
            np.asarray(found["v"], np.float64))


def _sampled_recent(reader: HistoryReader, wanted: np.ndarray, channels: Sequence[str],
                    from_us: int, step_us: int, lo: int, hi: int):
    registry = reader.history.registry
    names = registry.channel_names()
    frames = reader.history.recent_frames()
    if not frames:
        return _EMPTY
    # Each wanted device's row in the answer, and its kind's channel numbers as columns.
    size = max(int(wanted.max()) + 1, 1)
    row_at = np.full(size, -1, np.int64)
    row_at[wanted] = np.arange(len(wanted))
    col_at = np.full((size, MAX_CHANNELS), -1, np.int64)
    for d in wanted.tolist():
        kind_channels = names[int(registry.kind_of[d])]
        for k, c in enumerate(channels):
            if c in kind_channels:
                col_at[d, kind_channels.index(c)] = k
    parts = []
    for f in frames:
        keep = (f.device < size) & (f.ts > lo) & (f.ts <= hi)
        if not keep.any():
            continue
        d = f.device[keep].astype(np.int64)
        c = col_at[d, f.channel[keep].astype(np.int64)]
        ok = (row_at[d] >= 0) & (c >= 0)
        if ok.any():
            t = f.ts[keep][ok].astype(np.int64)
            parts.append((row_at[d[ok]], c[ok], _bucket(t, from_us, step_us), t,
                          f.value[keep][ok].astype(np.float64)))
    if not parts:
        return _EMPTY
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(5))
