"""GET /api/v1/live/objects: the moving objects of the big screen, as binary frames.

A million vehicles cannot travel as JSON lists every second, nor be drawn one by one on a
city-wide view. A screen opens this stream for the part of the map it shows (`bbox`, already
padded by the page so small pans need no new stream) at its zoom, and gets:

- `bins` while the view holds more than `POINTS_MAX` objects: H3 cells at a resolution that
  suits the zoom (`hexbins.resolution_for_zoom`), each with its count and, the first time it
  is sent, its hexagon; later frames carry only the cells whose count changed or that emptied;
- `points` once the view holds few enough: each object's number, position (integers of 1e-5
  degree) and role, and later only the objects that moved, came into view or left it.

Frames are binary: a little-endian u32 length, a u32 header length, a JSON header that names
the arrays that follow (name, type, length), then the arrays, each padded to 4 bytes, so the
page reads them as typed arrays without parsing text.

Nothing is queued per stream. Each stream remembers what it last sent and, when the hub has
moved objects (a new `version`) and the client has taken the previous frame, works out the
difference against the latest state. A slow client therefore never piles frames up: it skips
versions and gets their sum in one frame (counted in the hub's `objects_coalesced`).
A request that does not accept `application/octet-stream` gets one full answer as JSON.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Any

import msgspec
import numpy as np

from cityops.api.errors import ApiError
from cityops.domain.access import Principal
from cityops.domain.hexbins import CellIndex, lookup, resolution_for_zoom

Q = 100_000
NEVER = np.iinfo(np.int64).min
# Objects in view drawn one by one; more are binned. 100,000 points moving every second took
# a software-rendered screen a second per update (p95 3 s); their hexagons take 76 ms.
POINTS_MAX = 50_000
POINTS_BACK = 45_000  # ... and once binned, points again only under this (no flicker)
MAX_STREAMS = 64  # every stream costs a pass over the objects per update
BUILD_CHUNK = 100_000  # objects placed in cells between two turns of the event loop
MEDIA = "application/octet-stream"
LOOKUP_ASIDE_MIN = 2_000  # H3 look-ups worth a thread (about 2 ms of them on the loop)


class ObjectsQuery(msgspec.Struct, forbid_unknown_fields=False):
    bbox: str | None = None  # west,south,east,north in degrees; the whole city when absent
    zoom: Annotated[float, msgspec.Meta(ge=0, le=24)] = 9.0


def parse_bbox(text: str | None) -> tuple[int, int, int, int] | None:
    """(west, south, east, north) as integers of 1e-5 degree, or None for no bbox."""
    if text is None:
        return None
    parts = text.split(",")
    try:
        w, s, e, n = (float(p) for p in parts)
    except ValueError:
        raise ApiError(400, f"bbox {text[:80]!r} must be four numbers: west,south,east,north",
                       code="invalid_bbox") from None
    if not (-180 <= w < e <= 180 and -90 <= s < n <= 90):
        raise ApiError(400, f"bbox {text[:80]!r}: want -180 <= west < east <= 180 and "
                            "-90 <= south < north <= 90", code="invalid_bbox")
    return round(w * Q), round(s * Q), round(e * Q), round(n * Q)


def encode_frame(header: dict[str, Any], arrays: list[tuple[str, np.ndarray]]) -> bytes:
    kinds = {np.dtype("<u4"): "u4", np.dtype("<i4"): "i4", np.dtype("u1"): "u1"}
    header = {**header, "arrays": [[name, kinds[a.dtype], len(a)] for name, a in arrays]}
    head = msgspec.json.encode(header)
    head += b" " * (-len(head) % 4)
    parts = [head]
    for _, a in arrays:
        raw = a.tobytes()
        parts.append(raw + b"\0" * (-len(raw) % 4))
    body = b"".join(parts)
    return struct.pack("<II", len(body) + 4, len(head)) + body


def decode_frame(frame: bytes) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The reverse of `encode_frame` (the tests' and the JSON answer's reader)."""
    total, head_len = struct.unpack_from("<II", frame)
    if total + 4 != len(frame):
        raise ValueError(f"frame of {len(frame)} bytes says {total + 4}")
    header = msgspec.json.decode(frame[8:8 + head_len])
    at = 8 + head_len
    arrays = {}
    for name, kind, n in header["arrays"]:
        dtype = np.dtype({"u4": "<u4", "i4": "<i4", "u1": "u1"}[kind])
        arrays[name] = np.frombuffer(frame, dtype, n, at)
        at += n * dtype.itemsize + (-(n * dtype.itemsize) % 4)
    return header, arrays


class ObjectsFeed:
    """The hub's side: each object's H3 cell, a version bumped when objects move, and the
    bin counts per scope and resolution, worked out once per version however many streams
    ask."""

    def __init__(self, roles: list[str]) -> None:
        self.role_names = sorted(set(roles))
        code = {r: i for i, r in enumerate(self.role_names)}
        self.role = np.array([code[r] for r in roles], np.uint8)
        self.cells = CellIndex(len(roles))
        self.version = 0
        self.ready = asyncio.Event()
        self._moved = asyncio.Event()
        self.streams: set[ObjectsStream] = set()
        self.closing = False
        self._bins: dict[tuple, tuple[int, np.ndarray, np.ndarray]] = {}
        self.stats = {"objects_frames": 0, "objects_coalesced": 0, "objects_streams": 0,
                      "objects_cell_lookups": 0}

    async def build(self, lat: np.ndarray, lon: np.ndarray) -> None:
        """Every placed object's cell, a chunk at a time so the loop keeps serving."""
        placed = np.flatnonzero(lat != NEVER)
        for at in range(0, len(placed), BUILD_CHUNK):
            part = placed[at:at + BUILD_CHUNK]
            self.cells.update(part, lat[part] / Q, lon[part] / Q)
            await asyncio.sleep(0)
        placed = np.flatnonzero(lat != NEVER)  # what moved meanwhile: mostly within slack
        self.cells.update(placed, lat[placed] / Q, lon[placed] / Q)
        self.ready.set()
        self._bump()

    def advance(self, moved: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> None:
        """Objects `moved` are now at (lat, lon) (the hub's whole arrays)."""
        if not self.ready.is_set() or not len(moved):
            return
        self.cells.update(moved, lat[moved] / Q, lon[moved] / Q)
        self._moved_on()

    async def advance_aside(self, moved: np.ndarray, lat: np.ndarray, lon: np.ndarray) -> None:
        """`advance`, with a large batch's H3 look-ups in a worker thread. At a million
        trucks some 30,000 leave their slack each second, and asking H3 for them on the
        loop held it for a few hundred milliseconds a tick, which every request (a page's
        scripts, a sign-in) waited out. The thread lets the loop in between; the index is
        only read and changed here, on the loop, before and after it."""
        if not self.ready.is_set() or not len(moved):
            return
        far = self.cells.beyond_slack(moved, lat[moved] / Q, lon[moved] / Q)
        if far is not None:
            aside = len(far.who) >= LOOKUP_ASIDE_MIN
            cells = await asyncio.to_thread(lookup, far.lat, far.lon) if aside \
                else lookup(far.lat, far.lon)
            self.cells.place(far, cells)
        self._moved_on()

    def _moved_on(self) -> None:
        self.stats["objects_cell_lookups"] = self.cells.asked
        self._bump()

    def close(self) -> None:
        """End every stream (the server is shutting down; pages reconnect elsewhere)."""
        self.closing = True
        self._bump()

    def _bump(self) -> None:
        self.version += 1
        self._bins.clear()
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()

    async def wait(self, version: int, timeout: float) -> None:
        if self.version == version:
            event = self._moved
            try:
                await asyncio.wait_for(event.wait(), timeout)
            except TimeoutError:
                pass

    def bins(self, key: tuple, res: int, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cached = self._bins.get((key, res))
        if cached is not None and cached[0] == self.version:
            return cached[1], cached[2]
        rows, counts = self.cells.counts(res, visible)
        self._bins[(key, res)] = (self.version, rows, counts)
        return rows, counts


def _none() -> np.ndarray:
    return np.empty(0, np.int64)


@dataclass(eq=False)
class ObjectsStream:
    """What one client has been sent, so the next frame carries only the difference."""

    who: Principal
    key: tuple
    bbox: tuple[int, int, int, int] | None
    zoom: float
    mode: str | None = None
    res: int = 0
    version: int = -1
    sent_i: np.ndarray = field(default_factory=_none)
    sent_lat: np.ndarray = field(default_factory=_none)
    sent_lon: np.ndarray = field(default_factory=_none)
    sent_rows: np.ndarray = field(default_factory=_none)
    sent_counts: np.ndarray = field(default_factory=_none)

    def frame(self, feed: ObjectsFeed, lat: np.ndarray, lon: np.ndarray,
              visible: np.ndarray, now: float) -> bytes | None:
        """The next frame for the state (lat, lon, visible); None when nothing changed."""
        if self.version >= 0 and feed.version > self.version + 1:
            feed.stats["objects_coalesced"] += feed.version - self.version - 1
        self.version = feed.version
        shown = visible & (lat != NEVER)
        inview = shown
        if self.bbox is not None:
            w, s, e, n = self.bbox
            inview = shown & (lat >= s) & (lat <= n) & (lon >= w) & (lon <= e)
        in_view = int(np.count_nonzero(inview))
        limit = POINTS_MAX if self.mode != "bins" else POINTS_BACK
        mode = "points" if in_view <= limit else "bins"
        full = mode != self.mode
        self.mode = mode
        header = {"kind": mode, "full": full, "v": feed.version, "t": now, "q": Q,
                  "in_view": in_view, "total": int(np.count_nonzero(shown)),
                  "roles": dict(zip(feed.role_names, np.bincount(
                      feed.role[shown], minlength=len(feed.role_names)).tolist())),
                  "role_names": feed.role_names}
        if mode == "points":
            arrays = self._points(feed, np.flatnonzero(inview), lat, lon, full)
        else:
            res = resolution_for_zoom(self.zoom)
            full = full or res != self.res
            self.res = header["res"] = res
            header["full"] = full
            arrays = self._bins(feed, res, shown, full)
        if arrays is None:
            return None
        feed.stats["objects_frames"] += 1
        return encode_frame(header, arrays)

    def _points(self, feed: ObjectsFeed, idx: np.ndarray, lat: np.ndarray, lon: np.ndarray,
                full: bool) -> list[tuple[str, np.ndarray]] | None:
        la, lo = lat[idx], lon[idx]
        if full:
            send = np.ones(len(idx), bool)
            gone = np.empty(0, np.int64)
        else:
            at = np.searchsorted(self.sent_i, idx)
            safe = np.minimum(at, max(len(self.sent_i) - 1, 0))
            known = (at < len(self.sent_i)) & (self.sent_i[safe] == idx) if len(self.sent_i) \
                else np.zeros(len(idx), bool)
            send = ~known | (self.sent_lat[safe] != la) | (self.sent_lon[safe] != lo) \
                if len(self.sent_i) else np.ones(len(idx), bool)
            gone = self.sent_i[~np.isin(self.sent_i, idx, assume_unique=True)]
        self.sent_i, self.sent_lat, self.sent_lon = idx, la, lo
        if not full and not send.any() and not len(gone):
            return None
        return [("i", idx[send].astype("<u4")), ("lat", la[send].astype("<i4")),
                ("lon", lo[send].astype("<i4")), ("role", feed.role[idx[send]]),
                ("gone", gone.astype("<u4"))]

    def _bins(self, feed: ObjectsFeed, res: int, shown: np.ndarray,
              full: bool) -> list[tuple[str, np.ndarray]] | None:
        rows, counts = feed.bins(self.key, res, shown)
        cells = feed.cells.cells(res)
        if self.bbox is not None and len(rows):
            w, s, e, n = self.bbox
            centre = cells.centers(rows) * Q
            keep = ((centre[:, 0] >= s) & (centre[:, 0] <= n) & (centre[:, 1] >= w)
                    & (centre[:, 1] <= e))
            rows, counts = rows[keep], counts[keep]
        if full:
            new = np.ones(len(rows), bool)
            send = new
            gone = np.empty(0, np.int64)
        else:
            at = np.searchsorted(self.sent_rows, rows)
            safe = np.minimum(at, max(len(self.sent_rows) - 1, 0))
            if len(self.sent_rows):
                new = ~((at < len(self.sent_rows)) & (self.sent_rows[safe] == rows))
                send = new | (self.sent_counts[safe] != counts)
            else:
                new = send = np.ones(len(rows), bool)
            gone = self.sent_rows[~np.isin(self.sent_rows, rows, assume_unique=True)]
        self.sent_rows, self.sent_counts = rows, counts
        if not full and not send.any() and not len(gone):
            return None
        fresh = rows[new]
        shape = np.zeros((len(fresh), 14), np.int64)
        if len(fresh):
            shape[:, :2] = np.round(cells.centers(fresh) * Q)
            shape[:, 2:] = np.round(np.stack([cells.boundary(r) for r in fresh.tolist()])
                                    .reshape(len(fresh), 12) * Q)
        return [("cell", rows[send].astype("<u4")), ("count", counts[send].astype("<u4")),
                ("new", fresh.astype("<u4")), ("shape", shape.reshape(-1).astype("<i4")),
                ("gone", gone.astype("<u4"))]


async def frames(feed: ObjectsFeed, stream: ObjectsStream, state, recheck,
                 ping_s: float) -> AsyncIterator[bytes]:
    """The stream's frames: one now, then one per version the client is ready for.
    `state()` answers (lat, lon, visible, now); `recheck()` False ends the stream."""
    await feed.ready.wait()
    feed.streams.add(stream)
    feed.stats["objects_streams"] = len(feed.streams)
    try:
        while True:
            lat, lon, visible, now = state()
            frame = stream.frame(feed, lat, lon, visible, now)
            if frame is not None:
                yield frame
            await feed.wait(stream.version, ping_s)
            if feed.closing:
                return
            if not await recheck():
                yield encode_frame({"kind": "closed", "reason": "the key was revoked or has "
                                    "expired"}, [])
                return
            if feed.version == stream.version:
                yield encode_frame({"kind": "ping"}, [])
    finally:
        feed.streams.discard(stream)
        feed.stats["objects_streams"] = len(feed.streams)


def check_room(feed: ObjectsFeed) -> None:
    if len(feed.streams) >= MAX_STREAMS:
        raise ApiError(503, f"{MAX_STREAMS} object streams are open on this node; try again "
                            "shortly", headers={"Retry-After": "5"}, code="too_many_streams")


def as_json(frame: bytes) -> dict[str, Any]:
    """One frame as plain lists, for a client that does not read the binary stream."""
    header, arrays = decode_frame(frame)
    out = {k: v for k, v in header.items() if k != "arrays"}
    for name, a in arrays.items():
        out[name] = a.tolist()
    return out
