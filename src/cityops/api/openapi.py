"""The OpenAPI 3.1 document of the HTTP API. Body schemas come from the msgspec types the
handlers decode with, so the document cannot drift from what the server accepts."""

from __future__ import annotations

from typing import Any

import msgspec

from cityops import __version__
from cityops.api.devices import DeviceIn
from cityops.api.openapi_act import act_paths
from cityops.api.openapi_parts import CURSOR, LIMIT, list_of, p, q, responses
from cityops.api.openapi_serve import serve_paths
from cityops.api.openapi_services import onestop_paths
from cityops.ingest.decode import Reading

def _json_obj() -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"type": "object"}}}}


def document() -> dict[str, Any]:
    """The hand-written paths for routes not yet in the table, merged under the generated
    document of the table's routes."""
    from cityops.api.openapi_gen import document as generated
    from cityops.api.table import TABLE

    made = generated(TABLE, title="CityOps API", version=__version__,
                     description="Sense, detect, act, see and serve a city.")
    old = _legacy()
    for path, ops in old["paths"].items():
        for method, op in ops.items():
            made["paths"].setdefault(path, {}).setdefault(method, op)
    for name, schema in old["components"]["schemas"].items():
        made["components"]["schemas"].setdefault(name, schema)
    return made


def _legacy() -> dict[str, Any]:
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
            "responses": responses(("202", "Stored; bad readings listed by index",
                                     ref("IngestResult")),
                                    "400", "401", "403", "413", "429", "503"),
        }},
        "/api/v1/areas": {"get": {
            "summary": "The area hierarchy",
            "parameters": [q("level", "district, town or village"),
                           q("parent", "Only the children of this area")],
            "responses": responses(("200", "Areas", list_of(ref("Area"))), "400", "401", "403"),
        }},
        "/api/v1/areas/{code}": {"get": {
            "summary": "One area with its polygon", "parameters": [p("code")],
            "responses": responses(("200", "The area", ref("Area")), "401", "403", "404"),
        }},
        "/api/v1/devices": {
            "get": {"summary": "Devices the key may see",
                    "parameters": [q("kind", "Device kind"), q("area", "Area code"),
                                   LIMIT, CURSOR],
                    "responses": responses(("200", "Devices", list_of(ref("Device"))),
                                            "400", "401", "403")},
            "post": {"summary": "Register a device (or an array of them)",
                     "requestBody": {"required": True, "content": {"application/json": {
                         "schema": {"oneOf": [device_in,
                                              {"type": "array", "items": device_in}]}}}},
                     "responses": responses(("201", "Registered", {}),
                                             "400", "401", "403", "422")},
        },
        "/api/v1/devices/{device_id}": {"get": {
            "summary": "One device with its areas, cell and latest reading",
            "parameters": [p("device_id")],
            "responses": responses(("200", "The device", ref("Device")), "401", "403", "404"),
        }},
        "/api/v1/devices/{device_id}/readings": {"get": {
            "summary": "A device's reading history, oldest first",
            "parameters": [p("device_id"), q("from", "RFC 3339 or epoch seconds"),
                           q("to", "RFC 3339 or epoch seconds (exclusive)"),
                           q("limit", "Page size", {"type": "integer", "minimum": 1,
                                                     "maximum": 10000}), CURSOR],
            "responses": responses(("200", "Readings", list_of({"type": "object"})),
                                    "400", "401", "403", "404"),
        }},
        "/api/v1/dead-letters": {"get": {
            "summary": "Input that could not be taken, with the reason; newest first",
            "parameters": [LIMIT, CURSOR],
            "responses": responses(("200", "Dead letters", list_of({"type": "object"})),
                                    "400", "401", "403"),
        }},
        "/api/v1/history/count": {"get": {
            "summary": "Distinct readings stored",
            "parameters": [q("from", "RFC 3339 or epoch seconds"),
                           q("to", "RFC 3339 or epoch seconds")],
            "responses": responses(("200", "Count", {"type": "object"}), "400", "401", "403"),
        }},
        "/api/v1/me": {"get": {"summary": "The calling key's role and scope",
                               "responses": responses(("200", "Key", {"type": "object"}),
                                                       "401")}},
        "/status.json": {"get": {"summary": "The node's live status for the status page",
                                 "security": [],
                                 "responses": {"200": {"description": "Status", **_json_obj()}}}},
        "/readyz": {"get": {"summary": "Readiness: store, history writer, bus, MQTT",
                            "security": [],
                            "responses": {"200": {"description": "Ready", **_json_obj()},
                                          "503": {"description": "Degraded; see Retry-After",
                                                  **_json_obj()}}}},
        "/healthz": {"get": {"summary": "Liveness", "security": [],
                             "responses": {"200": {"description": "Alive"}}}},
        "/metrics": {"get": {"summary": "Prometheus text format", "security": [],
                             "responses": {"200": {"description": "Metrics"}}}},
        **act_paths(components),
        **serve_paths(components),
        **onestop_paths(components),
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
