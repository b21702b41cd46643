"""Readings:

    POST /api/v1/readings                        intake: a JSON array, one object, or NDJSON
    GET  /api/v1/devices/{device_id}/readings    a device's history, oldest first, paged

The intake is the node's hot path: the route layer costs it one key look-up and the fair-share
counters per request, never anything per reading. A batch takes its ingest slot before its
body is read (see `Ingestor.reserve`), so the slots are what a slow sender holds. Three things
keep one key from holding them all: the route layer's in-flight cap per key, the body deadline
(408 when a body stalls), and the ingestor's share per key (`Ingestor.reserve`): a key holds at
most half of the node's ingest slots and three quarters of its bytes in progress, whatever its
in-flight cap.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import msgspec

from cityops.api.devices import DEVICE, may_see
from cityops.api.errors import ApiError
from cityops.api.export import Export
from cityops.api.limits import INGEST_BODY, declared_length
from cityops.api.params import iso, time_us
from cityops.api.route import Call, Endpoint, Scope
from cityops.domain.access import READ_DEVICES, WRITE_READINGS, Principal
from cityops.ingest.decode import BodyError, Reading, Rejection, decode_body


class IngestResult(msgspec.Struct):
    accepted: int
    duplicates: int
    rejected: list[Rejection]


def _outside_scope(node: Any, who: Principal, readings: list[tuple[int, Reading]]
                   ) -> tuple[list[tuple[int, Reading]], list[Rejection]]:
    """A scoped key writes only for devices it may see (its area's, its department's)."""
    kept, refused = [], []
    registry = node.registry
    where = f"{'area' if who.scope.area is not None else 'scope'} {who.scope}"
    for i, reading in readings:
        device = registry.get(reading.device_id)
        if device is not None and not may_see(node, who, device):
            refused.append(Rejection(i, f"device {reading.device_id!r} is outside this key's "
                                        f"{where}"))
        else:
            kept.append((i, reading))
    return kept, refused


async def post_readings(call: Call[None, Any]) -> IngestResult:
    node, who = call.node, call.principal
    ingestor = node.ingestor
    call.body_limit = limit = node.settings.max_body_bytes
    # Refuse before reading a body we could not take; once admitted, the body being read and
    # decoded holds its place among the batches in progress.
    size = declared_length(call.request, limit)
    with ingestor.reserve(size, who.key_id) as slot:
        body = await call.raw_body()
        slot.grow(len(body))
        try:
            readings, rejected = decode_body(body, call.request.headers.get("content-type", ""))
        except BodyError as exc:
            raise ApiError(400, str(exc)) from None
        del body  # only the decoded readings are needed while the batch waits for the disk
        if who.scope.area is not None or who.scope.department is not None:
            readings, refused = _outside_scope(node, who, readings)
            rejected = rejected + refused
        result = await ingestor.ingest(readings, source="http", rejected=rejected, slot=slot)
    return IngestResult(result.accepted, result.duplicates, list(result.rejected))


TimeParam = Annotated[str, msgspec.Meta(max_length=40, description="RFC 3339 or epoch seconds")]


class HistoryQuery(msgspec.Struct, forbid_unknown_fields=False):
    from_: TimeParam | None = msgspec.field(default=None, name="from")
    to: Annotated[str, msgspec.Meta(max_length=40,
                                    description="RFC 3339 or epoch seconds (exclusive)")] \
        | None = None
    limit: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 1000
    cursor: Annotated[int, msgspec.Meta(ge=0, le=2**62,
                                        description="`next` of the previous page")] = 0


class Point(msgspec.Struct):
    ts: str
    channel: str
    value: float


class History(msgspec.Struct):
    items: list[Point]
    next: str | None


async def get_device_readings(call: Call[None, HistoryQuery]) -> History:
    node, q = call.node, call.query
    index = node.registry.index[call.record.id]
    from_us = time_us(q.from_, "from", 0)
    to_us = time_us(q.to, "to", 2**62)
    if from_us >= to_us:
        raise ApiError(400, "`from` must be before `to`")
    from_us = max(from_us, q.cursor)
    limit = q.limit
    rows = await asyncio.to_thread(node.reader.device_readings, index, from_us, to_us, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    # A page ends between two timestamps, never inside one, so channels of one ts stay together.
    if more and rows:
        last_ts = rows[-1][1]
        head = [r for r in rows if r[1] < last_ts]
        rows = head if head else rows
        next_cursor = str(rows[-1][1] + 1) if head else None
    return History([Point(iso(t), c, float(v)) for c, t, v in rows], next_cursor)


ROUTES = [
    Endpoint("POST", "/api/v1/readings", post_readings,
             "Send readings (JSON array, one object, or NDJSON); bad readings are listed by "
             "index and the good ones kept",
             WRITE_READINGS, Scope.LIST, kind="device", raw_body=True, body_limit=INGEST_BODY,
             request_content={"application/json": list[Reading] | Reading,
                              "application/x-ndjson": {"type": "string"}},
             response=IngestResult, status=202, errors=(503,),
             description="A scoped key's readings of devices outside its scope are refused "
                         "one by one, as bad readings are. The body limit is the node's "
                         "`max_body_bytes` (16 MiB unless configured)."),
    Endpoint("GET", "/api/v1/devices/{device_id}/readings", get_device_readings,
             "A device's reading history, oldest first",
             READ_DEVICES, Scope.RECORD, guard=DEVICE, query=HistoryQuery, response=History,
             export=Export("readings", times=("ts",))),
]
