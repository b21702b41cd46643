"""GET /openapi.json: the OpenAPI 3.1 document of the node's HTTP API, generated from the route
table (`cityops.api.openapi_gen`) once per process. Nothing about a route is written here."""

from __future__ import annotations

import functools
from typing import Any

import msgspec
from starlette.responses import Response

from cityops import __version__
from cityops.api.route import PUBLIC, Call, Endpoint, Scope


@functools.cache
def document() -> dict[str, Any]:
    from cityops.api.openapi_gen import document as generate
    from cityops.api.table import TABLE

    return generate(TABLE, title="CityOps API", version=__version__,
                    description="Sense, detect, act, see and serve a city.")


@functools.cache
def _encoded() -> bytes:
    return msgspec.json.encode(document())


async def openapi(call: Call[None, Any]) -> Response:
    return Response(_encoded(), media_type="application/json")


ROUTES = [
    Endpoint("GET", "/openapi.json", openapi, "This document", PUBLIC, Scope.NONE,
             include_in_schema=False),
]
