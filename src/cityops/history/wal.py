"""Write-ahead log segments: CRC-checked frames of column arrays, appended and fsync'd.

A frame is a 24-byte header (magic, row count, CRC32 of the payload, payload length) and the
columns device (int32), channel (int8), ts (int64 us), value (float64) back to back. A crash can
only leave a torn last frame; reading stops at the first frame that is short or fails its CRC.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np

from cityops.domain.readings import CHANNEL_DTYPE, DEVICE_DTYPE, TS_DTYPE, VALUE_DTYPE, ReadingBatch

MAGIC = b"COW1"
HEADER = struct.Struct("<4sIIQ4x")
ROW_BYTES = 4 + 1 + 8 + 8
SUFFIX = ".wal"


def encode_frame(batch: ReadingBatch) -> bytes:
    payload = b"".join(
        (
            batch.device.astype(DEVICE_DTYPE, copy=False).tobytes(),
            batch.channel.astype(CHANNEL_DTYPE, copy=False).tobytes(),
            batch.ts.astype(TS_DTYPE, copy=False).tobytes(),
            batch.value.astype(VALUE_DTYPE, copy=False).tobytes(),
        )
    )
    return HEADER.pack(MAGIC, len(batch), zlib.crc32(payload), len(payload)) + payload


def decode_frames(data: bytes | memoryview) -> tuple[list[ReadingBatch], int]:
    """Frames in `data`, and the byte offset where the valid prefix ends."""
    frames = []
    offset = 0
    view = memoryview(data)
    while offset + HEADER.size <= len(view):
        magic, rows, crc, length = HEADER.unpack_from(view, offset)
        start = offset + HEADER.size
        if magic != MAGIC or length != rows * ROW_BYTES or start + length > len(view):
            break
        payload = view[start : start + length]
        if zlib.crc32(payload) != crc:
            break
        a = rows * 4
        b = a + rows
        c = b + rows * 8
        frames.append(
            ReadingBatch(
                np.frombuffer(payload[:a], DEVICE_DTYPE),
                np.frombuffer(payload[a:b], CHANNEL_DTYPE),
                np.frombuffer(payload[b:c], TS_DTYPE),
                np.frombuffer(payload[c:], VALUE_DTYPE),
                source="wal",
            )
        )
        offset = start + length
    return frames, offset


def segment_path(directory: Path, seq: int) -> Path:
    return directory / f"{seq:010d}{SUFFIX}"


def list_segments(directory: Path) -> list[tuple[int, Path]]:
    out = []
    for path in directory.glob(f"*{SUFFIX}"):
        try:
            out.append((int(path.stem), path))
        except ValueError:
            continue
    return sorted(out)


def read_segment(path: Path, repair: bool = False) -> list[ReadingBatch]:
    """Read a segment's frames; with `repair`, cut off a torn tail so appends continue cleanly."""
    data = path.read_bytes()
    frames, end = decode_frames(data)
    if repair and end < len(data):
        with open(path, "r+b") as f:
            f.truncate(end)
            os.fsync(f.fileno())
    return frames


class SegmentWriter:
    """Appends frames to one segment file. Used only from the history writer thread."""

    def __init__(self, path: Path, fsync: bool = True) -> None:
        self.path = path
        self.fsync = fsync
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self.size = os.fstat(self._fd).st_size
        if self.size == 0:
            fsync_dir(path.parent)

    def append(self, frames: list[bytes]) -> None:
        data = b"".join(frames)
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        if self.fsync:
            os.fdatasync(self._fd)
        self.size += len(data)

    def close(self) -> None:
        os.close(self._fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
