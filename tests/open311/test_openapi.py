"""Every Open311 resource is in the route table, documented in the one OpenAPI document with
the spec's conventions: no key in the security section, answers in JSON or XML, errors as
the spec's `[{"code", "description"}]`."""

from __future__ import annotations

from openapi_spec_validator import validate

from cityops.api.openapi import document
from cityops.api.table import TABLE
from cityops.open311 import PREFIX


def test_every_open311_route_is_documented() -> None:
    spec = document()
    validate(spec)
    resources = [e for e in TABLE if e.path.startswith(PREFIX) and e.include_in_schema]
    assert len(resources) == 6
    for e in resources:
        op = spec["paths"][e.path][e.method.lower()]
        assert op["tags"] == ["Open311 GeoReport v2"] and op["security"] == []
        assert set(op["responses"]["200"]["content"]) == {"application/json", "text/xml"}
        error = op["responses"]["404"]["content"]["application/json"]["schema"]
        assert error["type"] == "array"
    assert sorted(p for p in spec["paths"] if p.startswith(PREFIX)) == sorted(
        {e.path for e in resources})
