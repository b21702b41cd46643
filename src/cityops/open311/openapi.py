"""The Open311 GeoReport v2 paths of the OpenAPI document. They keep the spec's conventions,
not the JSON API's: the format is the path's extension, errors are `[{"code", "description"}]`
(or `<errors>`), and the only key, for POST, is the form's `api_key` field."""

from __future__ import annotations

from typing import Any

from cityops.open311 import PREFIX

NULL_STR = {"type": ["string", "null"]}
NULL_NUM = {"type": ["number", "null"]}
STR = {"type": "string"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _schemas() -> dict[str, Any]:
    service = {"type": "object",
               "required": ["service_code", "service_name", "metadata", "type"],
               "properties": {"service_code": STR, "service_name": STR, "description": STR,
                              "metadata": {"type": "boolean"},
                              "type": {"enum": ["realtime", "batch", "blackbox"]},
                              "keywords": STR, "group": STR}}
    value = {"type": "object", "required": ["key", "name"],
             "properties": {"key": STR, "name": STR}}
    attribute = {"type": "object",
                 "required": ["variable", "code", "datatype", "required", "order",
                              "description"],
                 "properties": {"variable": {"type": "boolean"}, "code": STR,
                                "datatype": {"enum": ["string", "number", "datetime", "text",
                                                      "singlevaluelist", "multivaluelist"]},
                                "required": {"type": "boolean"},
                                "datatype_description": NULL_STR,
                                "order": {"type": "integer"}, "description": STR,
                                "values": {"type": "array", "items": value}}}
    definition = {"type": "object", "required": ["service_code", "attributes"],
                  "properties": {"service_code": STR,
                                 "attributes": {"type": "array", "items": attribute}}}
    request = {"type": "object",
               "required": ["service_request_id", "status", "service_code",
                            "requested_datetime"],
               "properties": {
                   "service_request_id": STR, "status": {"enum": ["open", "closed"]},
                   "status_notes": STR, "service_name": STR, "service_code": STR,
                   "description": STR, "agency_responsible": STR, "service_notice": STR,
                   "requested_datetime": {"type": "string", "format": "date-time"},
                   "updated_datetime": {"type": ["string", "null"], "format": "date-time"},
                   "expected_datetime": {"type": ["string", "null"], "format": "date-time"},
                   "address": STR, "address_id": NULL_STR, "zipcode": NULL_STR,
                   "lat": NULL_NUM, "long": NULL_NUM, "media_url": NULL_STR}}
    created = {"type": "object", "required": ["service_request_id"],
               "properties": {"service_request_id": STR, "token": STR,
                              "service_notice": STR, "account_id": NULL_STR}}
    token = {"type": "object", "required": ["service_request_id", "token"],
             "properties": {"service_request_id": STR, "token": STR}}
    errors = {"type": "array", "items": {
        "type": "object", "required": ["code", "description"],
        "properties": {"code": {"type": "integer"}, "description": STR}}}
    new = {"type": "object", "required": ["service_code"], "properties": {
        "api_key": {"type": "string", "description": "A CityOps API key (citizen, field, "
                                                    "operator or admin); or send it as "
                                                    "Authorization: Bearer"},
        "jurisdiction_id": STR, "service_code": STR,
        "lat": {"type": "number", "minimum": -90, "maximum": 90},
        "long": {"type": "number", "minimum": -180, "maximum": 180},
        "address_string": {"type": "string", "description": "A neighbourhood (village) name"},
        "address_id": {"type": "string", "description": "A village area code"},
        "email": STR, "device_id": STR, "account_id": STR, "first_name": STR,
        "last_name": STR, "phone": STR, "description": STR,
        "media_url": {"type": "string", "description": "http(s) URL of a photo; one "
                      "uploaded here (POST /api/v1/citizens/me/photos) must be the poster's "
                      "own"}},
        "additionalProperties": {"type": "string",
                                 "description": "attribute[CODE]=value, attribute[CODE][]=v "
                                                "for a multivaluelist"}}
    return {"Open311Service": {"type": "array", "items": service},
            "Open311ServiceDefinition": definition,
            "Open311Requests": {"type": "array", "items": request},
            "Open311Created": {"type": "array", "items": created},
            "Open311Token": {"type": "array", "items": token},
            "Open311Errors": errors,
            "Open311NewRequest": new}


FMT = {"name": "fmt", "in": "path", "required": True, "description": "json or xml",
       "schema": {"enum": ["json", "xml"]}}
JURISDICTION = {"name": "jurisdiction_id", "in": "query", "required": False,
                "description": "Optional; this city's id, the slug of its name "
                               "(e.g. new-york-city)", "schema": STR}
ERRORS = {"400": "Missing or malformed parameter (the description says which)",
          "403": "Missing, unknown or not permitted api_key",
          "404": "No such service, request, token, format or jurisdiction",
          "413": "Body over 64 KiB", "415": "Body not form-encoded",
          "503": "Overloaded or the incident desk is off; retry"}


def _content(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema},
                        "text/xml": {"schema": {"type": "string"}}}}


def _op(summary: str, ok: str, codes: tuple[str, ...], params: list[dict[str, Any]],
        **extra: Any) -> dict[str, Any]:
    responses = {"200": {"description": "In the format asked for", **_content(_ref(ok))}}
    for code in codes:
        responses[code] = {"description": ERRORS[code], **_content(_ref("Open311Errors"))}
    return {"summary": summary, "tags": ["Open311 GeoReport v2"], "security": [],
            "parameters": [*params, FMT, JURISDICTION], "responses": responses, **extra}


def _path(name: str, text: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": text, "schema": STR}


def _q(name: str, text: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": text,
            "schema": STR}


def open311_paths(components: dict[str, Any]) -> dict[str, Any]:
    components.update(_schemas())
    listing = [
        _q("service_request_id", "Comma-separated ids; overrides every other filter"),
        _q("service_code", "Comma-separated service codes"),
        _q("start_date", "W3C datetime; with end_date at most 90 days apart"),
        _q("end_date", "W3C datetime; default: the most recent 90 days"),
        _q("status", "open, closed or both, comma-separated"),
    ]
    post = {"requestBody": {"required": True, "content": {
        "application/x-www-form-urlencoded": {"schema": _ref("Open311NewRequest")}}}}
    return {
        f"{PREFIX}/services.{{fmt}}": {"get": _op(
            "Open311: the city's categories as services", "Open311Service", ("404",), [])},
        f"{PREFIX}/services/{{service_code}}.{{fmt}}": {"get": _op(
            "Open311: a service definition with its attributes", "Open311ServiceDefinition",
            ("400", "404"), [_path("service_code", "From services.{fmt}")])},
        f"{PREFIX}/requests.{{fmt}}": {
            "get": _op("Open311: requests (newest first, at most 1000)", "Open311Requests",
                       ("400", "404"), listing),
            "post": _op("Open311: post a request; it becomes (or joins) an incident",
                        "Open311Created", ("400", "403", "404", "413", "415", "503"), [],
                        **post)},
        f"{PREFIX}/requests/{{service_request_id}}.{{fmt}}": {"get": _op(
            "Open311: one request", "Open311Requests", ("404",),
            [_path("service_request_id", "The id POST requests returned")])},
        f"{PREFIX}/tokens/{{token}}.{{fmt}}": {"get": _op(
            "Open311: the request id a token names", "Open311Token", ("404",),
            [_path("token", "The token POST requests returned")])},
    }
