"""The Open311 routes sit under a Mount, which tests/api/test_openapi.py does not walk: each of
them is documented here, in its own section of the one OpenAPI document."""

from __future__ import annotations

from openapi_spec_validator import validate
from starlette.routing import Mount

from cityops.api.app import create_app
from cityops.api.openapi import document
from cityops.open311 import PREFIX
from cityops.open311.routes import RESOURCES, not_here


def test_every_open311_route_is_documented(live) -> None:
    spec = document()
    validate(spec)
    app = create_app(live.node, manage_node=False)
    (mount,) = [r for r in app.routes if isinstance(r, Mount) and r.path == PREFIX]
    documented = []
    for route in mount.routes:
        if route.endpoint is not_here:  # the spec-format 404/405 for everything else
            continue
        for method in route.methods - {"HEAD"}:
            op = spec["paths"][PREFIX + route.path][method.lower()]
            assert op["tags"] == ["Open311 GeoReport v2"] and op["security"] == []
            documented.append(f"{method} {route.path}")
    assert len(documented) == len(RESOURCES) == 6
    assert sorted(p for p in spec["paths"] if p.startswith(PREFIX)) == sorted(
        {PREFIX + r.path for r in RESOURCES})
