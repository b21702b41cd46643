"""Reading tiles out of the node's PMTiles archive.

The archive is memory-mapped; its header is read once and its directories (root and leaves)
are decoded once each and kept (an LRU of leaves), so a tile costs one binary search and one
slice, where `pmtiles.reader.Reader.get` would decode the root directory again every time.
An archive replaced on disk (a new `cityops map build`) is noticed by its size and mtime and
opened afresh.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from pmtiles.reader import Compression, deserialize_directory, deserialize_header, find_tile
from pmtiles.tile import TileType, zxy_to_tileid

ARCHIVE_NAME = "map.pmtiles"  # in the node's data directory
LEAVES_KEPT = 64


def archive_path(data_dir: str | os.PathLike[str]) -> Path:
    return Path(data_dir) / ARCHIVE_NAME


class TileArchive:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = open(path, "rb")  # noqa: SIM115 - held for the mmap's lifetime
        try:
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError:  # an empty file cannot be mapped
            self._file.close()
            raise
        stat = path.stat()
        self.stamp = (stat.st_size, stat.st_mtime_ns)
        self.header = deserialize_header(self._map[0:127])
        if self.header["tile_type"] is not TileType.MVT:
            raise ValueError(f"{path} holds {self.header['tile_type'].name} tiles, not MVT")
        self.gzipped = self.header["tile_compression"] is Compression.GZIP
        self._root = self._directory(self.header["root_offset"], self.header["root_length"])
        self._leaves: OrderedDict[int, list[Any]] = OrderedDict()
        self._lock = threading.Lock()
        # Tiles change only when the file does: its stamp is every tile's ETag.
        self.etag = hashlib.sha256(repr(self.stamp).encode()).hexdigest()[:16]

    def _directory(self, offset: int, length: int) -> list[Any]:
        # pmtiles' decoder gunzips the directory itself (the compression every writer uses).
        if self.header["internal_compression"] is not Compression.GZIP:
            raise ValueError(f"{self.path}: directories not gzip-compressed")
        return deserialize_directory(self._map[offset:offset + length])

    def metadata(self) -> dict[str, Any]:
        import gzip
        import json

        h = self.header
        raw = self._map[h["metadata_offset"]:h["metadata_offset"] + h["metadata_length"]]
        if h["internal_compression"] is Compression.GZIP:
            raw = gzip.decompress(raw)
        found: dict[str, Any] = json.loads(raw)
        return found

    def tile(self, z: int, x: int, y: int) -> bytes | None:
        """The tile as stored (gzipped when `gzipped`), None when the archive has none."""
        tile_id = zxy_to_tileid(z, x, y)
        directory = self._root
        for _ in range(4):  # the spec's maximum depth
            entry = find_tile(directory, tile_id)
            if entry is None:
                return None
            if entry.run_length > 0:
                start = self.header["tile_data_offset"] + entry.offset
                return bytes(self._map[start:start + entry.length])
            directory = self._leaf(self.header["leaf_directory_offset"] + entry.offset,
                                   entry.length)
        return None

    def _leaf(self, offset: int, length: int) -> list[Any]:
        with self._lock:
            found = self._leaves.get(offset)
            if found is not None:
                self._leaves.move_to_end(offset)
                return found
        leaf = self._directory(offset, length)
        with self._lock:
            self._leaves[offset] = leaf
            while len(self._leaves) > LEAVES_KEPT:
                self._leaves.popitem(last=False)
        return leaf

    def bounds(self) -> list[float]:
        h = self.header
        return [h["min_lon_e7"] / 1e7, h["min_lat_e7"] / 1e7, h["max_lon_e7"] / 1e7,
                h["max_lat_e7"] / 1e7]

    def close(self) -> None:
        self._map.close()
        self._file.close()


class ArchiveSlot:
    """The archive of one data directory, opened on first use and reopened when the file is
    rebuilt; None while there is none (the map then keeps to the pack's polygons)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._open: TileArchive | None = None
        self._lock = threading.Lock()

    def get(self) -> TileArchive | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        stamp = (stat.st_size, stat.st_mtime_ns)
        with self._lock:
            if self._open is not None and self._open.stamp == stamp:
                return self._open
            try:
                fresh = TileArchive(self.path)
            except (OSError, ValueError, KeyError, IndexError):
                # A file being written or not an archive: as if there were none.
                return None
            # The old map may still be read by a request in flight; it is closed by the GC.
            self._open = fresh
            return fresh
