"""Operations: health, metrics, dead letters, history counts, who am I."""

from __future__ import annotations

import asyncio
import time

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from cityops.api.access import principal
from cityops.api.errors import json_response
from cityops.api.paging import int_cursor, limit_of
from cityops.api.params import time_us
from cityops.domain.access import READ_OPERATIONS, Role


async def healthz(request: Request) -> Response:
    node = request.app.state.node
    return json_response({
        "status": "ok",
        "uptime_s": round(time.time() - node.started_at, 1),
        "devices": len(node.registry),
        "store": node.store.url.split("@")[-1] if "@" in node.store.url else node.store.url,
        "mqtt": None if node.mqtt is None else ("connected" if node.mqtt.connected else "down"),
    })


async def readyz(request: Request) -> Response:
    """Ready to take traffic? Each dependency is checked; any down answers 503 so a load
    balancer sends readings elsewhere while this node reconnects (with backoff)."""
    node = request.app.state.node
    checks = await node.readiness()
    ok = all(c["ok"] for c in checks.values())
    headers = None if ok else {"Retry-After": "5"}
    return json_response({"status": "ready" if ok else "degraded", "checks": checks},
                         200 if ok else 503, headers)


async def metrics(request: Request) -> Response:
    node = request.app.state.node
    return Response(node.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


async def dead_letters(request: Request) -> Response:
    node = request.app.state.node
    await principal(request, READ_OPERATIONS)
    limit = limit_of(request)
    before = int_cursor(request) or None
    letters = await node.store.list_dead_letters(limit=limit + 1, before_id=before)
    more = len(letters) > limit
    letters = letters[:limit]
    return json_response({
        "items": [msgspec.to_builtins(letter) for letter in letters],
        "next": str(letters[-1].id) if more and letters else None,
        "total": await node.store.count_dead_letters(),
    })


async def history_count(request: Request) -> Response:
    """Distinct readings in the history, optionally within [from, to)."""
    node = request.app.state.node
    await principal(request, READ_OPERATIONS)
    q = request.query_params
    from_us = time_us(q.get("from"), "from", 0) if q.get("from") else None
    to_us = time_us(q.get("to"), "to", 0) if q.get("to") else None
    count = await asyncio.to_thread(node.reader.count, from_us, to_us)
    return json_response({"readings": count, "writer": node.history.stats})


async def whoami(request: Request) -> Response:
    who = await principal(request, frozenset(Role))
    return json_response({"key": who.key_id, "role": who.role.value, "scope": str(who.scope)})
