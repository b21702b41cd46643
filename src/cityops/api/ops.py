"""Operations: health, readiness, metrics, dead letters, history counts, who am I."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

import msgspec
from starlette.responses import Response

from cityops.api.access import principal
from cityops.api.params import time_us
from cityops.api.fairshare import charge_key
from cityops.api.route import ALL_ROLES, PUBLIC, Call, Endpoint, Reply, Scope, refuse_scoped
from cityops.domain.access import READ_OPERATIONS
from cityops.store.base import DeadLetter

Limit = Annotated[int, msgspec.Meta(ge=1, le=1000)]
TimeParam = Annotated[str, msgspec.Meta(max_length=40, description="RFC 3339 or epoch seconds")]


class Health(msgspec.Struct):
    status: str
    uptime_s: float
    devices: int
    store: str
    mqtt: str | None


class Readiness(msgspec.Struct):
    status: str
    checks: dict[str, dict[str, Any]]


class Page(msgspec.Struct):
    limit: Limit = 100
    cursor: Annotated[int, msgspec.Meta(ge=0, le=2**62)] | None = None


class DeadLetters(msgspec.Struct):
    items: list[DeadLetter]
    next: str | None
    total: int


class Span(msgspec.Struct):
    from_: TimeParam | None = msgspec.field(default=None, name="from")
    to: TimeParam | None = None


class HistoryCount(msgspec.Struct):
    readings: int
    writer: dict[str, float]


class Me(msgspec.Struct):
    key: str
    role: str
    scope: str
    name: str
    expires_at: float | None = None


def _store_name(url: str) -> str:
    return url.split("@")[-1] if "@" in url else url


async def healthz(call: Call[None, Any]) -> Health:
    node = call.node
    return Health("ok", round(time.time() - node.started_at, 1), len(node.registry),
                  _store_name(node.store.url),
                  None if node.mqtt is None else ("connected" if node.mqtt.connected else "down"))


async def readyz(call: Call[None, Any]) -> Reply:
    """Ready to take traffic? Each dependency is checked; any down answers 503 so a load
    balancer sends readings elsewhere while this node reconnects (with backoff)."""
    checks = await call.node.readiness()
    ok = all(c["ok"] for c in checks.values())
    return Reply(Readiness("ready" if ok else "degraded", checks), 200 if ok else 503,
                 None if ok else {"Retry-After": "5"})


async def guard_open(call: Call[Any, Any]) -> None:
    """The node's figures are for unscoped operators unless the city chose to publish them
    (they are the whole node's, so a key of one town or department may not read them)."""
    if not call.node.settings.open_status:
        who = await principal(call.request, READ_OPERATIONS)
        refuse_scoped(who)
        charge_key(call.request, who)


async def metrics(call: Call[None, Any]) -> Response:
    await guard_open(call)
    return Response(call.node.metrics.render(),
                    media_type="text/plain; version=0.0.4; charset=utf-8")


async def dead_letters(call: Call[None, Page]) -> DeadLetters:
    node = call.node
    limit = call.query.limit
    letters = await node.store.list_dead_letters(limit=limit + 1,
                                                 before_id=call.query.cursor or None)
    more = len(letters) > limit
    letters = letters[:limit]
    return DeadLetters(letters, str(letters[-1].id) if more and letters else None,
                       await node.store.count_dead_letters())


async def history_count(call: Call[None, Span]) -> HistoryCount:
    """Distinct readings in the history, optionally within [from, to)."""
    node = call.node
    q = call.query
    from_us = time_us(q.from_, "from", 0) if q.from_ else None
    to_us = time_us(q.to, "to", 0) if q.to else None
    count = await asyncio.to_thread(node.reader.count, from_us, to_us)
    return HistoryCount(count, node.history.stats)


async def whoami(call: Call[None, Any]) -> Me:
    who = call.principal
    return Me(who.key_id, who.role.value, str(who.scope), who.name,
              getattr(who, "expires_at", None))


ROUTES = [
    Endpoint("GET", "/healthz", healthz, "Liveness", PUBLIC, Scope.NONE, response=Health),
    Endpoint("GET", "/readyz", readyz, "Readiness: store, history writer, bus, MQTT", PUBLIC,
             Scope.NONE, response=Readiness, errors=(503,)),
    Endpoint("GET", "/metrics", metrics, "Prometheus text format (a key unless open_status)",
             PUBLIC, Scope.NONE, media_type="text/plain", errors=(401, 403)),
    Endpoint("GET", "/api/v1/me", whoami, "The calling key's role, scope and expiry",
             ALL_ROLES, Scope.NONE, response=Me),
    Endpoint("GET", "/api/v1/dead-letters", dead_letters,
             "Input that could not be taken, with the reason; newest first",
             READ_OPERATIONS, Scope.CITY, query=Page, response=DeadLetters),
    Endpoint("GET", "/api/v1/history/count", history_count, "Distinct readings stored",
             READ_OPERATIONS, Scope.CITY, query=Span, response=HistoryCount),
]
