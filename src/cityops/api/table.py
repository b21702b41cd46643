"""The route table: every HTTP route of a node, gathered from the features that declare them.

There is no other way to add a route: `create_app` serves exactly this table, the OpenAPI
document is generated from it, and tests/api/test_route_table.py fails for any route the app
serves that is not here. Order matters only where a fixed path and a `{param}` path share a
prefix (`/citizens/me` before `/citizens/{citizen_id}`)."""

from __future__ import annotations

from cityops.api import citizens, ops
from cityops.api.route import Endpoint

TABLE: list[Endpoint] = [
    *ops.ROUTES,
    *citizens.ROUTES,
]
