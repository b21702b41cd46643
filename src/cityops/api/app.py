"""The Starlette application of a node."""

from __future__ import annotations

import contextlib
import gc

from starlette.applications import Starlette
from starlette.middleware import Middleware

from cityops.api.errors import HANDLERS
from cityops.api.fairshare import FairShare, Limits
from cityops.api.headers import SecurityHeaders
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
            # A request's objects (a 1,000-entity NGSI-LD batch decodes to some 3,000 dicts)
            # outlive several collections of the default 700-object young generation, so
            # they are promoted and each full pass then walks everything made since start:
            # 8.5 us of CPU per entity update in the NGSI-LD benchmark. With room for a few
            # requests' worth, request garbage dies young; cycles are still collected.
            gc.set_threshold(50_000, 10, 10)
        try:
            yield
        finally:
            hub = getattr(app.state, "live", None)
            if hub is not None:
                await hub.stop()
            if manage_node:
                await node.stop()

    # Every route is declared once, in the table; nothing is added here.
    app = Starlette(routes=starlette_routes(TABLE), exception_handlers=HANDLERS,
                    lifespan=lifespan, middleware=[Middleware(SecurityHeaders)])
    app.state.node = node
    s = node.settings
    app.state.fairshare = FairShare(Limits(
        rate=s.rate_per_key, burst=s.burst_per_key, in_flight=s.in_flight_per_key,
        public_rate=s.public_rate, public_burst=2 * s.public_rate,
        auth_failures=s.auth_failures_per_min),
        count=lambda reason: node.metrics.refused.labels(reason).inc())
    return app
