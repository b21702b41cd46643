"""The Starlette application of a node."""

from __future__ import annotations

import contextlib
import gc

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route

from cityops.api import (
    live,
    ops,
)
from cityops.api.errors import HANDLERS, json_response
from cityops.api.fairshare import FairShare, Limits
from cityops.api.headers import SecurityHeaders
from cityops.api.openapi import document
from cityops.api.route import starlette_routes
from cityops.api.table import TABLE


def create_app(node, *, manage_node: bool = True) -> Starlette:
    """`manage_node`: start and stop the node with the app (off when the caller does it)."""

    @contextlib.asynccontextmanager
    async def lifespan(app):
        if manage_node:
            await node.start()
            # Everything built at start (the city map, registry, rules) lives as long as the
            # process: keep it out of the collector's full passes, whose pauses otherwise
            # show as 100+ ms tails in request latency.
            gc.freeze()
        try:
            yield
        finally:
            hub = getattr(app.state, "live", None)
            if hub is not None:
                await hub.stop()
            if manage_node:
                await node.stop()

    spec = document()

    async def openapi(request):
        return json_response(spec)

    declared = {(e.path, e.method) for e in TABLE}
    legacy = [
        Route("/healthz", ops.healthz),
        Route("/readyz", ops.readyz),
        Route("/metrics", ops.metrics),
        Route("/openapi.json", openapi),
        Route("/api/v1/me", ops.whoami),
        Route("/api/v1/dead-letters", ops.dead_letters),
        Route("/api/v1/history/count", ops.history_count),
        Route("/api/v1/live", live.live),
    ]
    legacy = [r for r in legacy if not (isinstance(r, Route) and any(
        (r.path, m) in declared for m in (r.methods or ())))]
    routes = [*starlette_routes(TABLE), *legacy]
    app = Starlette(routes=routes, exception_handlers=HANDLERS, lifespan=lifespan,
                    middleware=[Middleware(SecurityHeaders)])
    app.state.node = node
    s = node.settings
    app.state.fairshare = FairShare(Limits(
        rate=s.rate_per_key, burst=s.burst_per_key, in_flight=s.in_flight_per_key,
        public_rate=s.public_rate, public_burst=2 * s.public_rate,
        auth_failures=s.auth_failures_per_min),
        count=lambda reason: node.metrics.refused.labels(reason).inc())
    return app
