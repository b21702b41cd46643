"""Wire codecs for the bus: how messages travel as bytes (NATS JetStream).

The in-process bus hands Python objects over as they are; a bus between processes needs bytes.
Each subject has one codec, declared with the subject in `subjects.py`:

- `readings`, `rejections` (ReadingBatch): the columns' raw bytes behind a small msgpack
  header. Decoding wraps the payload with `numpy.frombuffer`, so the arrays share the
  message's memory and nothing is parsed row by row; such arrays are read-only, which is what
  a consumer of a published batch may expect anyway.
- `alerts` (list[AlertEvent]), `incidents` (IncidentChange): msgspec msgpack, typed, so a
  message decodes back into the same structs.

Timestamps taken with `time.monotonic_ns()` (a batch's `received_ns`, an alert event's
`published_ns`) mean nothing in another process, so they travel as wall-clock instants and are
turned back into the receiver's monotonic clock: latency figures then span the hop between
processes (give or take the skew between the machines' clocks).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from typing import Any, Protocol

import msgspec
import numpy as np

from cityops.domain.alerts import AlertEvent
from cityops.domain.readings import (
    CHANNEL_DTYPE,
    DEVICE_DTYPE,
    TS_DTYPE,
    VALUE_DTYPE,
    ReadingBatch,
)


class CodecError(ValueError):
    """A message that cannot be encoded for, or decoded from, its subject."""


class Codec(Protocol):
    def encode(self, message: Any) -> bytes: ...

    def decode(self, data: bytes | memoryview) -> Any: ...


# -- clocks -----------------------------------------------------------------------------------


def monotonic_to_wall(mono_ns: int) -> int:
    """0 stays 0: it means 'not measured'."""
    if not mono_ns:
        return 0
    return time.time_ns() - (time.monotonic_ns() - mono_ns)


def wall_to_monotonic(wall_ns: int) -> int:
    if not wall_ns:
        return 0
    # A sender whose clock runs ahead would otherwise give a negative age.
    age = max(0, time.time_ns() - wall_ns)
    return time.monotonic_ns() - age


# -- ReadingBatch -----------------------------------------------------------------------------

# Columns widest first: with the header padded to a multiple of 8, every column then starts on
# a multiple of its item size and `frombuffer` gives aligned arrays. Little-endian on the wire
# whatever the host, so machines of either order can share a stream.
_COLUMNS: tuple[tuple[str, np.dtype], ...] = (
    ("ts", np.dtype(TS_DTYPE).newbyteorder("<")),
    ("value", np.dtype(VALUE_DTYPE).newbyteorder("<")),
    ("device", np.dtype(DEVICE_DTYPE).newbyteorder("<")),
    ("channel", np.dtype(CHANNEL_DTYPE).newbyteorder("<")),
)
ROW_BYTES = sum(dt.itemsize for _, dt in _COLUMNS)

_BATCH_MAGIC = b"CRB"
_BATCH_VERSION = 1
_PREFIX = struct.Struct("<3sBI")  # magic, version, header length (before the padding)


class _BatchHeader(msgspec.Struct, array_like=True):
    rows: int
    received_wall_ns: int = 0
    source: str = ""
    meta: dict[str, Any] = {}


class ReadingBatchCodec:
    """ReadingBatch as `prefix | msgpack header | pad | ts | value | device | channel`."""

    def __init__(self) -> None:
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(_BatchHeader)

    def encode(self, batch: ReadingBatch) -> bytes:
        if not isinstance(batch, ReadingBatch):
            raise CodecError(f"expected a ReadingBatch, got {type(batch).__name__}")
        rows = len(batch)
        try:
            header = self._encoder.encode(_BatchHeader(
                rows, monotonic_to_wall(batch.received_ns), batch.source, batch.meta or {}))
        except (TypeError, msgspec.EncodeError) as exc:
            raise CodecError(f"batch meta cannot be encoded: {exc}") from exc
        start = _PREFIX.size + len(header)
        pad = -start % 8
        parts = [_PREFIX.pack(_BATCH_MAGIC, _BATCH_VERSION, len(header)), header, b"\0" * pad]
        for name, dtype in _COLUMNS:
            column = getattr(batch, name)
            if column.shape != (rows,):
                raise CodecError(f"column {name} has shape {column.shape}, expected ({rows},)")
            # No copy when the column already has the wire type and is contiguous (the usual
            # case); tobytes() then makes the one copy into the payload.
            parts.append(np.ascontiguousarray(column, dtype=dtype).tobytes())
        return b"".join(parts)

    def decode(self, data: bytes | memoryview) -> ReadingBatch:
        view = memoryview(data)
        if len(view) < _PREFIX.size:
            raise CodecError("reading batch shorter than its prefix")
        magic, version, header_len = _PREFIX.unpack_from(view)
        if magic != _BATCH_MAGIC or version != _BATCH_VERSION:
            raise CodecError(f"not a version {_BATCH_VERSION} reading batch")
        start = _PREFIX.size
        try:
            header = self._decoder.decode(view[start:start + header_len])
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise CodecError(f"bad reading batch header: {exc}") from exc
        rows = header.rows
        offset = start + header_len
        offset += -offset % 8
        if rows < 0 or len(view) != offset + rows * ROW_BYTES:
            raise CodecError(f"reading batch of {len(view)} bytes cannot hold {rows} rows")
        columns = {}
        for name, dtype in _COLUMNS:
            columns[name] = np.frombuffer(data, dtype=dtype, count=rows, offset=offset)
            offset += rows * dtype.itemsize
        return ReadingBatch(columns["device"], columns["channel"], columns["ts"],
                            columns["value"], wall_to_monotonic(header.received_wall_ns),
                            header.source, header.meta)


# -- msgspec structs --------------------------------------------------------------------------


class StructCodec:
    """msgspec msgpack for a typed message; `outgoing`/`incoming` adjust it on the way (the
    monotonic timestamps)."""

    def __init__(self, type_: Any, *, outgoing: Callable[[Any], Any] | None = None,
                 incoming: Callable[[Any], Any] | None = None) -> None:
        self.type = type_
        self._encoder = msgspec.msgpack.Encoder()
        self._decoder = msgspec.msgpack.Decoder(type_)
        self._outgoing = outgoing
        self._incoming = incoming

    def encode(self, message: Any) -> bytes:
        if self._outgoing is not None:
            message = self._outgoing(message)
        try:
            return self._encoder.encode(message)
        except (TypeError, msgspec.EncodeError) as exc:
            raise CodecError(str(exc)) from exc

    def decode(self, data: bytes | memoryview) -> Any:
        try:
            message = self._decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise CodecError(str(exc)) from exc
        return message if self._incoming is None else self._incoming(message)


class AlertEventsCodec(StructCodec):
    """A list of AlertEvent, with `published_ns` crossing as wall-clock time."""

    def __init__(self) -> None:
        replace = msgspec.structs.replace

        def outgoing(events: list) -> list:
            if not isinstance(events, list):
                raise CodecError(
                    f"alerts: expected a list of AlertEvent, got {type(events).__name__}")
            return [replace(e, published_ns=monotonic_to_wall(e.published_ns)) for e in events]

        def incoming(events: list) -> list:
            return [replace(e, published_ns=wall_to_monotonic(e.published_ns)) for e in events]

        super().__init__(list[AlertEvent], outgoing=outgoing, incoming=incoming)
