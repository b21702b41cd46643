"""The OpenAPI 3.1 document of the HTTP API. Body schemas come from the msgspec types the
handlers decode with, so the document cannot drift from what the server accepts."""

from __future__ import annotations

from typing import Any

import msgspec

from cityops import __version__
from cityops.api.devices import DeviceIn
from cityops.ingest.decode import Reading

ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _responses(ok: tuple[str, str, dict | None], *errors: str) -> dict[str, Any]:
    status, text, schema = ok
    out: dict[str, Any] = {status: {"description": text, **(_json(schema) if schema else {})}}
    texts = {
        "400": "Malformed request", "401": "Missing or unknown API key",
        "403": "The key's role may not do this", "404": "Not found (or outside the key's scope)",
        "413": "Body over the size limit", "422": "Valid JSON that cannot be taken",
        "429": "Too many batches in progress; see Retry-After",
        "503": "Overloaded; see Retry-After",
    }
    for code in errors:
        out[code] = {"description": texts[code], **_json(ERROR)}
    return out


def _list(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": ["items", "next"],
            "properties": {"items": {"type": "array", "items": item},
                           "next": {"type": ["string", "null"]}}}


def _q(name: str, text: str, schema: dict | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": text,
            "schema": schema or {"type": "string"}}


def _p(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


LIMIT = _q("limit", "Page size", {"type": "integer", "minimum": 1, "maximum": 1000})
CURSOR = _q("cursor", "The `next` of the previous page")


def document() -> dict[str, Any]:
    (reading, device_in), components = msgspec.json.schema_components(
        [Reading, DeviceIn], ref_template="#/components/schemas/{name}"
    )
    components["Error"] = {"type": "object", "required": ["error"],
                           "properties": {"error": {"type": "string"}, "detail": {}}}
    components["IngestResult"] = {
        "type": "object", "required": ["accepted", "duplicates", "rejected"],
        "properties": {
            "accepted": {"type": "integer"}, "duplicates": {"type": "integer"},
            "rejected": {"type": "array", "items": {
                "type": "object", "required": ["index", "error"],
                "properties": {"index": {"type": "integer"}, "error": {"type": "string"}}}},
        },
    }
    components["Device"] = {
        "type": "object", "required": ["id", "kind", "lat", "lon", "areas", "cell", "latest"],
        "properties": {
            "id": {"type": "string"}, "kind": {"type": "string"}, "name": {"type": "string"},
            "lat": {"type": "number"}, "lon": {"type": "number"},
            "owner": {"type": ["string", "null"]},
            "areas": {"type": ["object", "null"], "properties": {
                "district": {"type": "string"}, "town": {"type": "string"},
                "village": {"type": "string"}}},
            "cell": {"type": ["string", "null"]}, "meta": {"type": "object"},
            "latest": {"type": ["object", "null"]},
        },
    }
    components["Area"] = {
        "type": "object", "required": ["code", "name", "level", "parent", "children"],
        "properties": {"code": {"type": "string"}, "name": {"type": "string"},
                       "level": {"enum": ["district", "town", "village"]},
                       "parent": {"type": ["string", "null"]},
                       "children": {"type": "array", "items": {"type": "string"}},
                       "ancestors": {"type": "array", "items": {"type": "string"}},
                       "geometry": {"type": "object"}},
    }
    ref = lambda name: {"$ref": f"#/components/schemas/{name}"}  # noqa: E731
    batch = {"oneOf": [{"type": "array", "items": reading}, reading]}
    paths = {
        "/api/v1/readings": {"post": {
            "summary": "Send readings (JSON array, one object, or NDJSON)",
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": batch},
                "application/x-ndjson": {"schema": {"type": "string"}}}},
            "responses": _responses(("202", "Stored; bad readings listed by index",
                                     ref("IngestResult")),
                                    "400", "401", "403", "413", "429", "503"),
        }},
        "/api/v1/areas": {"get": {
            "summary": "The area hierarchy",
            "parameters": [_q("level", "district, town or village"),
                           _q("parent", "Only the children of this area")],
            "responses": _responses(("200", "Areas", _list(ref("Area"))), "400", "401", "403"),
        }},
        "/api/v1/areas/{code}": {"get": {
            "summary": "One area with its polygon", "parameters": [_p("code")],
            "responses": _responses(("200", "The area", ref("Area")), "401", "403", "404"),
        }},
        "/api/v1/devices": {
            "get": {"summary": "Devices the key may see",
                    "parameters": [_q("kind", "Device kind"), _q("area", "Area code"),
                                   LIMIT, CURSOR],
                    "responses": _responses(("200", "Devices", _list(ref("Device"))),
                                            "400", "401", "403")},
            "post": {"summary": "Register a device (or an array of them)",
                     "requestBody": {"required": True, "content": {"application/json": {
                         "schema": {"oneOf": [device_in,
                                              {"type": "array", "items": device_in}]}}}},
                     "responses": _responses(("201", "Registered", {}),
                                             "400", "401", "403", "422")},
        },
        "/api/v1/devices/{device_id}": {"get": {
            "summary": "One device with its areas, cell and latest reading",
            "parameters": [_p("device_id")],
            "responses": _responses(("200", "The device", ref("Device")), "401", "403", "404"),
        }},
        "/api/v1/devices/{device_id}/readings": {"get": {
            "summary": "A device's reading history, oldest first",
            "parameters": [_p("device_id"), _q("from", "RFC 3339 or epoch seconds"),
                           _q("to", "RFC 3339 or epoch seconds (exclusive)"),
                           _q("limit", "Page size", {"type": "integer", "minimum": 1,
                                                     "maximum": 10000}), CURSOR],
            "responses": _responses(("200", "Readings", _list({"type": "object"})),
                                    "400", "401", "403", "404"),
        }},
        "/api/v1/dead-letters": {"get": {
            "summary": "Input that could not be taken, with the reason; newest first",
            "parameters": [LIMIT, CURSOR],
            "responses": _responses(("200", "Dead letters", _list({"type": "object"})),
                                    "400", "401", "403"),
        }},
        "/api/v1/history/count": {"get": {
            "summary": "Distinct readings stored",
            "parameters": [_q("from", "RFC 3339 or epoch seconds"),
                           _q("to", "RFC 3339 or epoch seconds")],
            "responses": _responses(("200", "Count", {"type": "object"}), "400", "401", "403"),
        }},
        "/api/v1/me": {"get": {"summary": "The calling key's role and scope",
                               "responses": _responses(("200", "Key", {"type": "object"}),
                                                       "401")}},
        "/healthz": {"get": {"summary": "Liveness", "security": [],
                             "responses": {"200": {"description": "Alive"}}}},
        "/metrics": {"get": {"summary": "Prometheus text format", "security": [],
                             "responses": {"200": {"description": "Metrics"}}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "CityOps API", "version": __version__,
                 "description": "Sense, detect, act, see and serve a city."},
        "components": {"schemas": components,
                       "securitySchemes": {"key": {"type": "http", "scheme": "bearer"}}},
        "security": [{"key": []}],
        "paths": paths,
    }
