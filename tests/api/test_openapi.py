"""The OpenAPI document is generated from the route table and covers the whole API: every
route and method the table declares for machines is in it, and it is valid OpenAPI 3.1."""

from __future__ import annotations

from openapi_spec_validator import validate

from cityops.api.openapi import document
from cityops.api.openapi_gen import _openapi_path
from cityops.api.table import TABLE


def test_every_route_and_method_is_documented() -> None:
    spec = document()
    validate(spec)
    missing = [f"{e.method} {e.path}" for e in TABLE if e.include_in_schema
               and e.method.lower() not in spec["paths"].get(_openapi_path(e.path), {})]
    assert missing == []


def test_keyed_routes_document_their_refusals() -> None:
    spec = document()
    for e in TABLE:
        if not e.include_in_schema or e.public:
            continue
        op = spec["paths"][_openapi_path(e.path)][e.method.lower()]
        assert {"401", "403", "429"} <= set(op["responses"]), (e.method, e.path)
        if e.guard is not None:
            assert "404" in op["responses"], (e.method, e.path)
        if e.body is not None:
            assert {"400", "413"} <= set(op["responses"]), (e.method, e.path)


def test_the_temporal_queries_document_their_unsupported_parameters() -> None:
    # pick, omit, lang and datasetId are refused with 422 OperationNotSupported (the schema
    # fuzzer found the answer undocumented).
    paths = document()["paths"]
    for path in ("/ngsi-ld/v1/temporal/entities", "/ngsi-ld/v1/temporal/entities/{entityId}"):
        assert "422" in paths[path]["get"]["responses"], path
