"""Compaction of sealed WAL segments into hourly Parquet files, and reading them with DuckDB.

Layout: `ROOT/parquet/date=YYYY-MM-DD/hour=HH/SEQ.parquet`, one file per WAL segment and hour
of reading time, device and channel stored by name so the files stand on their own.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from cityops.domain.kinds import MAX_CHANNELS
from cityops.domain.readings import US, ReadingBatch
from cityops.domain.registry import DeviceRegistry
from cityops.history.wal import fsync_dir

HOUR_US = 3600 * US
SCHEMA = pa.schema(
    [
        ("device_id", pa.dictionary(pa.int32(), pa.string())),
        ("channel", pa.dictionary(pa.int8(), pa.string())),
        ("ts", pa.timestamp("us", tz="UTC")),
        ("value", pa.float64()),
    ]
)


def to_arrow(batch: ReadingBatch, device_ids: pa.Array, channel_names: pa.Array,
             channel_codes: np.ndarray) -> pa.Table:
    """`channel_codes[device, channel]` is the row's offset into `channel_names`."""
    channel = channel_codes[batch.device, batch.channel].astype(np.int8)
    return pa.Table.from_arrays(
        [
            pa.DictionaryArray.from_arrays(pa.array(batch.device, pa.int32()), device_ids),
            pa.DictionaryArray.from_arrays(pa.array(channel, pa.int8()), channel_names),
            pa.array(batch.ts, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            pa.array(batch.value, pa.float64()),
        ],
        schema=SCHEMA,
    )


def channel_dictionary(registry: DeviceRegistry) -> tuple[pa.Array, np.ndarray]:
    """Unique channel names, and per device the code of each of its kind's channels in them
    (Parquet stores (device, channel) by name, as dictionary codes; a row's code needs the
    kind)."""
    names: list[str] = []
    table = np.zeros((max(len(registry.kinds), 1), MAX_CHANNELS), np.int16)
    for k, kind in enumerate(registry.kinds):
        for c, channel in enumerate(kind.channels):
            if channel.name not in names:
                names.append(channel.name)
            table[k, c] = names.index(channel.name)
    return pa.array(names, pa.string()), table[registry.kind_of]


def dedup(batch: ReadingBatch) -> ReadingBatch:
    """Keep the first row of each (device, channel, ts); order by time for good row groups."""
    order = np.lexsort((batch.channel, batch.device, batch.ts))
    d, c, t = batch.device[order], batch.channel[order], batch.ts[order]
    keep = np.ones(len(order), bool)
    keep[1:] = (d[1:] != d[:-1]) | (c[1:] != c[:-1]) | (t[1:] != t[:-1])
    return batch.take(order[keep])


def partition_dir(root: Path, hour_start_us: int) -> Path:
    import datetime as dt

    when = dt.datetime.fromtimestamp(hour_start_us / US, dt.UTC)
    return root / f"date={when:%Y-%m-%d}" / f"hour={when:%H}"


def write_segment(root: Path, seq: int, batch: ReadingBatch, to_table) -> list[Path]:
    """Write one segment's rows, split by hour. Files are fsync'd before this returns."""
    batch = dedup(batch)
    hours = batch.ts // HOUR_US
    written = []
    for hour in np.unique(hours):
        part = batch.take(np.flatnonzero(hours == hour))
        directory = partition_dir(root, int(hour) * HOUR_US)
        directory.mkdir(parents=True, exist_ok=True)
        final = directory / f"{seq:010d}.parquet"
        tmp = final.with_suffix(".tmp")
        pq.write_table(to_table(part), tmp, compression="zstd")
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, final)
        fsync_dir(directory)
        written.append(final)
    return written


def remove_segment_files(root: Path, seq: int) -> None:
    """Remove what an interrupted compaction of `seq` left, so it can be redone whole."""
    for path in root.glob(f"date=*/hour=*/{seq:010d}.*"):
        path.unlink()
