"""Building blocks of the OpenAPI document, shared by its parts."""

from __future__ import annotations

from typing import Any

ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def responses(ok: tuple[str, str, dict | None], *errors: str) -> dict[str, Any]:
    status, text, schema = ok
    out: dict[str, Any] = {status: {"description": text, **(_json(schema) if schema else {})}}
    texts = {
        "400": "Malformed request", "401": "Missing or unknown API key",
        "403": "The key's role may not do this", "404": "Not found (or outside the key's scope)",
        "409": "Not possible in the present state (the reason is given)",
        "413": "Body over the size limit", "422": "Valid JSON that cannot be taken",
        "429": "Too many batches in progress; see Retry-After",
        "503": "Overloaded; see Retry-After",
    }
    for code in errors:
        out[code] = {"description": texts[code], **_json(ERROR)}
    return out


def list_of(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": ["items", "next"],
            "properties": {"items": {"type": "array", "items": item},
                           "next": {"type": ["string", "null"]}}}


def q(name: str, text: str, schema: dict | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": text,
            "schema": schema or {"type": "string"}}


def p(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}


LIMIT = q("limit", "Page size", {"type": "integer", "minimum": 1, "maximum": 1000})
CURSOR = q("cursor", "The `next` of the previous page")


def json_body(schema: dict[str, Any], *, required: bool = True) -> dict[str, Any]:
    return {"required": required, **_json(schema)}
