"""Reading the history back: Parquet through DuckDB, plus the not yet compacted WAL in memory.

Repeated (device, channel, ts) rows are dropped here too, so a reading stored twice (a retry
older than the writer's dedup memory) still reads back once.
"""

from __future__ import annotations

import threading

import duckdb
import numpy as np

from cityops.domain.readings import ReadingBatch
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
        root = self.history.parquet_dir
        if not any(root.glob("date=*/hour=*/*.parquet")):
            return None
        glob = str(root / "date=*" / "hour=*" / "*.parquet").replace("'", "''")
        return f"read_parquet('{glob}', hive_partitioning = false)"

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
