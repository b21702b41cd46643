"""Every NGSI-LD route, gathered for the node's route table (cityops.api.table)."""

from __future__ import annotations

from cityops.api.route import Endpoint
from cityops.ngsild import api_entities, api_subscriptions, api_temporal

# Temporal and subscription paths are fixed prefixes that never clash with /entities/{id};
# the entity routes list their own fixed paths (/entities/batch ...) before `{entityId}`.
ROUTES: list[Endpoint] = [*api_temporal.ROUTES, *api_subscriptions.ROUTES,
                          *api_entities.ROUTES]
