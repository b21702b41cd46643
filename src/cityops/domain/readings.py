"""Readings as columns: the unit that flows from ingest through the bus to detection."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

DEVICE_DTYPE = np.int32
CHANNEL_DTYPE = np.int8
TS_DTYPE = np.int64  # microseconds since the Unix epoch, UTC
VALUE_DTYPE = np.float64

US = 1_000_000


@dataclass(slots=True)
class ReadingBatch:
    """A batch of readings, one row per (device, channel, ts, value).

    `device` is the index of the device in the registry (stable for the life of the city:
    devices are never removed from the registry, only decommissioned), `channel` the index
    of the channel within the device's kind.
    """

    device: np.ndarray
    channel: np.ndarray
    ts: np.ndarray
    value: np.ndarray
    received_ns: int = 0  # time.monotonic_ns() when the batch arrived, for latency figures
    source: str = "http"
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.device.shape[0])

    @classmethod
    def empty(cls) -> ReadingBatch:
        return cls(
            np.empty(0, DEVICE_DTYPE),
            np.empty(0, CHANNEL_DTYPE),
            np.empty(0, TS_DTYPE),
            np.empty(0, VALUE_DTYPE),
        )

    def take(self, index: np.ndarray) -> ReadingBatch:
        return ReadingBatch(
            self.device[index],
            self.channel[index],
            self.ts[index],
            self.value[index],
            self.received_ns,
            self.source,
            self.meta,
        )

    @classmethod
    def concat(cls, batches: list[ReadingBatch]) -> ReadingBatch:
        if not batches:
            return cls.empty()
        if len(batches) == 1:
            return batches[0]
        return cls(
            np.concatenate([b.device for b in batches]),
            np.concatenate([b.channel for b in batches]),
            np.concatenate([b.ts for b in batches]),
            np.concatenate([b.value for b in batches]),
            min(b.received_ns for b in batches),
            batches[0].source,
        )


def series_ranks(rows: ReadingBatch, newest: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For `rows` ordered by device, channel and time: where each (device, channel) series
    starts, its length, and each reading's place in it counted from its oldest (from its
    newest with `newest`), 0 first."""
    d, c = rows.device, rows.channel
    starts = np.ones(len(rows), bool)
    starts[1:] = (d[1:] != d[:-1]) | (c[1:] != c[:-1])
    first = np.flatnonzero(starts)
    sizes = np.diff(np.append(first, len(rows)))
    rank = np.arange(len(rows)) - np.repeat(first, sizes)
    if newest:
        rank = np.repeat(sizes, sizes) - 1 - rank
    return first, sizes, rank
