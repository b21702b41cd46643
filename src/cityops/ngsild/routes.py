"""Every NGSI-LD route, gathered for the node's route table (cityops.api.table)."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

from cityops.api.route import Call, Endpoint, Handler
from cityops.ngsild import api_entities, api_subscriptions, api_temporal
from cityops.ngsild.contexts import using
from cityops.ngsild.errors import NgsiError

TENANT = "NGSILD-Tenant"


def _with_contexts(handler: Handler) -> Handler:
    """`handler` run with its node's JSON-LD contexts in force (contexts.current), so a
    context resolved anywhere below it is that node's. A node is one tenant: a request naming
    another is refused rather than served from (or written into) the city's own data."""

    @functools.wraps(handler)
    async def run(call: Call[Any, Any]) -> Any:
        tenant = call.request.headers.get(TENANT)
        if tenant:
            raise NgsiError("NoMultiTenantSupport",
                            f"{TENANT}: {tenant[:80]!r}: this broker keeps one tenant, the "
                            "city's; send no tenant")
        with using(call.node.ngsild.contexts):
            return await handler(call)

    return run


# Temporal and subscription paths are fixed prefixes that never clash with /entities/{id};
# the entity routes list their own fixed paths (/entities/batch ...) before `{entityId}`.
ROUTES: list[Endpoint] = [
    dataclasses.replace(e, handler=_with_contexts(e.handler))
    for e in (*api_temporal.ROUTES, *api_subscriptions.ROUTES, *api_entities.ROUTES)]
