"""The OpenAPI document covers the whole API: every route and method the server answers."""

from __future__ import annotations

from openapi_spec_validator import validate
from starlette.routing import Route

from cityops.api.app import create_app
from cityops.api.openapi import document

# Served for people or for the document itself, not part of the machine API.
UNDOCUMENTED = {"/", "/openapi.json"}


def test_every_route_and_method_is_documented(live) -> None:
    spec = document()
    validate(spec)
    app = create_app(live.node, manage_node=False)
    missing = []
    for route in app.routes:
        if not isinstance(route, Route) or route.path in UNDOCUMENTED:
            continue
        for method in route.methods - {"HEAD"}:
            if method.lower() not in spec["paths"].get(route.path, {}):
                missing.append(f"{method} {route.path}")
    assert missing == []
