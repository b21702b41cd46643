"""The app serves exactly the route table: a route added any other way fails here."""

from __future__ import annotations

from starlette.routing import Mount, Route

from cityops.api.app import create_app
from cityops.api.table import TABLE


def test_every_served_route_is_declared(live) -> None:
    app = create_app(live.node, manage_node=False)
    declared = {(e.path, e.method) for e in TABLE}
    served = set()
    strays = []
    for route in app.routes:
        if not isinstance(route, Route) or isinstance(route, Mount):
            strays.append(repr(route))
            continue
        for method in (route.methods or set()) - {"HEAD"}:
            served.add((route.path, method))
    assert strays == []
    assert served - declared == set(), "served but not in the route table"
    assert declared - served == set(), "declared but not served"


def test_no_path_and_method_is_declared_twice() -> None:
    seen = [(e.path, e.method) for e in TABLE]
    assert len(seen) == len(set(seen))
