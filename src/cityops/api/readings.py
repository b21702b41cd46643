"""POST /api/v1/readings (intake) and GET /api/v1/devices/{id}/readings (history)."""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response

from cityops.api.access import principal
from cityops.api.devices import visible_device
from cityops.api.errors import ApiError, json_response
from cityops.api.paging import int_cursor, limit_of
from cityops.api.params import iso, time_us
from cityops.domain.access import READ_DEVICES, WRITE_READINGS, Role
from cityops.ingest.decode import BodyError, Rejection, decode_body


def _declared_length(request: Request, limit: int) -> int:
    """The body's declared length (0 when not declared); 413 at once when over `limit`."""
    declared = request.headers.get("content-length", "")
    if not declared.isdigit():
        return 0
    if int(declared) > limit:
        raise ApiError(413, f"body of {declared} bytes is over the limit of {limit} bytes; "
                            "send smaller batches")
    return int(declared)


async def _read_body(request: Request, limit: int) -> bytes:
    _declared_length(request, limit)
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"body is over the limit of {limit} bytes; send smaller batches")
        chunks.append(chunk)
    return b"".join(chunks)


def _outside_scope(node, who, readings):
    """A scoped device key may write only for devices inside its area."""
    area = who.scope.area
    if area is None:
        return readings, []
    kept, refused = [], []
    for i, reading in readings:
        device = node.registry.get(reading.device_id)
        if device is not None and (device.areas is None or not device.areas.within(area)):
            refused.append(Rejection(i, f"device {reading.device_id!r} is outside this key's "
                                        f"area {area}"))
        else:
            kept.append((i, reading))
    return kept, refused


async def post_readings(request: Request) -> Response:
    node = request.app.state.node
    who = await principal(request, WRITE_READINGS)
    # Refuse before reading a body we could not take; once admitted, the body being read and
    # decoded holds its place among the batches in progress.
    size = _declared_length(request, node.settings.max_body_bytes)
    with node.ingestor.reserve(size) as slot:
        body = await _read_body(request, node.settings.max_body_bytes)
        slot.grow(len(body))
        try:
            readings, rejected = decode_body(body, request.headers.get("content-type", ""))
        except BodyError as exc:
            raise ApiError(400, str(exc)) from None
        del body  # only the decoded readings are needed while the batch waits for the disk
        if who.role is not Role.ADMIN:
            readings, refused = _outside_scope(node, who, readings)
            rejected = rejected + refused
        result = await node.ingestor.ingest(readings, source="http", rejected=rejected,
                                            slot=slot)
    return json_response(
        {
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "rejected": [{"index": r.index, "error": r.error} for r in result.rejected],
        },
        status=202,
    )


async def get_device_readings(request: Request) -> Response:
    node = request.app.state.node
    who = await principal(request, READ_DEVICES)
    device = visible_device(request, who)
    index = node.registry.index[device.id]
    now_us = 2**62
    from_us = time_us(request.query_params.get("from"), "from", 0)
    to_us = time_us(request.query_params.get("to"), "to", now_us)
    if from_us >= to_us:
        raise ApiError(400, "`from` must be before `to`")
    from_us = max(from_us, int_cursor(request))
    limit = limit_of(request, default=1000, maximum=10_000)
    rows = await asyncio.to_thread(node.reader.device_readings, index, from_us, to_us, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    # A page ends between two timestamps, never inside one, so channels of one ts stay together.
    if more and rows:
        last_ts = rows[-1][1]
        head = [r for r in rows if r[1] < last_ts]
        rows = head if head else rows
        next_cursor = str(rows[-1][1] + 1) if head else None
        if not head:
            more = False
    items = [{"ts": iso(t), "channel": c, "value": v} for c, t, v in rows]
    return json_response({"items": items, "next": next_cursor if more else None})
