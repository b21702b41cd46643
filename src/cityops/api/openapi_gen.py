"""The OpenAPI 3.1 document, generated from the route table: each endpoint's query model becomes
its parameters, its body model the request body, its response model the answer's schema, and
its roles and guard the error answers it may give. Nothing about a route is written twice."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from cityops.api.export import CSV, FORMATS, XLSX
from cityops.api.route import Endpoint, NoQuery

REF = "#/components/schemas/{name}"
_PARAM = re.compile(r"{([a-zA-Z_][a-zA-Z0-9_]*)(?::[a-z]+)?}")

ERROR_SCHEMA = {"type": "object", "required": ["error", "code"],
                "properties": {"error": {"type": "string"}, "code": {"type": "string"},
                               "detail": {}}}
TEXTS = {
    "400": "Malformed request (the field at fault is named)",
    "401": "Missing, unknown, expired or revoked API key",
    "403": "The key's role may not do this",
    "404": "Not found, or outside the key's scope",
    "405": "Method not allowed",
    "408": "The body did not arrive in time",
    "409": "Not possible in the present state (the reason is given)",
    "410": "Gone",
    "413": "Body over the route's size limit",
    "415": "Unsupported media type",
    "422": "Valid input that cannot be taken (the reason is given)",
    "423": "Locked for a while after too many wrong tries; see Retry-After",
    "429": "Too many requests; see Retry-After",
    "503": "Overloaded or unavailable; see Retry-After",
}


FORMAT_PARAM = {
    "name": "format", "in": "query", "required": False,
    "schema": {"type": "string", "enum": ["json", *FORMATS]},
    "description": "csv or xlsx: the whole list (every page, the same filters and scope) as "
                   "a download; without it, Accept: text/csv or the XLSX media type does the "
                   "same. limit is then ignored; a cursor says where the file starts."}
EXPORT_CONTENT = {
    CSV: {"schema": {"type": "string", "contentMediaType": CSV}},
    XLSX: {"schema": {"type": "string", "contentMediaType": XLSX, "format": "binary"}},
}


def _operation_id(e: Endpoint) -> str:
    words = re.sub(r"[^a-zA-Z0-9]+", "_", _PARAM.sub(r"by_\1", e.path)).strip("_")
    return f"{e.method.lower()}_{words}"


def _openapi_path(path: str) -> str:
    return _PARAM.sub(lambda m: "{" + m.group(1) + "}", path)


def _any_value(kind: Any) -> dict[str, Any]:
    if kind is object:  # free-form values (attributes, form answers): any JSON
        return {}
    raise NotImplementedError(f"no JSON schema for {kind!r}")


class _Schemas:
    """Collects the components of every type the table names, once each."""

    def __init__(self) -> None:
        self.types: list[Any] = []
        self.index: dict[Any, int] = {}

    def add(self, kind: Any) -> int:
        key = kind
        if key not in self.index:
            self.index[key] = len(self.types)
            self.types.append(kind)
        return self.index[key]

    def build(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        if not self.types:
            return [], {}
        schemas, components = msgspec.json.schema_components(self.types, ref_template=REF,
                                                             schema_hook=_any_value)
        return list(schemas), dict(components)


def _content(media: str, schema: dict[str, Any] | None) -> dict[str, Any]:
    return {media: {"schema": schema} if schema is not None else {}}


def _query_parameters(kind: type, components: Mapping[str, Any],
                      schema: dict[str, Any]) -> list[dict[str, Any]]:
    """A query model's fields, each a parameter with its own schema (ranges and enums kept)."""
    if kind is NoQuery:
        return []
    ref = schema.get("$ref", "")
    body = components[ref.rsplit("/", 1)[-1]] if ref else schema
    required = set(body.get("required", ()))
    out = []
    for name, prop in body.get("properties", {}).items():
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required,
                                 "schema": {k: v for k, v in prop.items()
                                            if k not in ("title", "description")}}
        if "description" in prop:
            param["description"] = prop["description"]
        out.append(param)
    return out


def document(table: Sequence[Endpoint], *, title: str, version: str,
             description: str = "") -> dict[str, Any]:
    collect = _Schemas()
    slots: list[tuple[int | None, int | None, int | None, dict[str, int]]] = []
    for e in table:
        content_slots = {m: collect.add(t) for m, t in e.request_content.items()
                         if not isinstance(t, dict)} if e.request_content else {}
        if e.error_type is not None:
            collect.add(e.error_type)
        slots.append((
            collect.add(e.query) if e.query is not NoQuery else None,
            collect.add(e.body) if e.body is not None else None,
            collect.add(e.response) if e.response is not None else None,
            content_slots,
        ))
    schemas, components = collect.build()
    components["Error"] = ERROR_SCHEMA
    paths: dict[str, dict[str, Any]] = {}
    for e, (q, b, r, content_slots) in zip(table, slots, strict=True):
        if not e.include_in_schema:
            continue
        op: dict[str, Any] = {"summary": e.summary,
                              "operationId": _operation_id(e)}
        if e.description:
            op["description"] = e.description
        if e.tags:
            op["tags"] = list(e.tags)
        if e.public:
            op["security"] = []
        else:
            roles = ", ".join(sorted(r.value for r in e.roles))
            op["description"] = (op.get("description", "") + f"\n\nRoles: {roles}. "
                                 f"Scope: {e.scope.value}.").strip()
        params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string",
                                                                          "minLength": 1}}
                  for n in _PARAM.findall(e.path)]
        if q is not None:
            params += _query_parameters(e.query, components, schemas[q])
        if e.export is not None:
            params.append(FORMAT_PARAM)
        if params:
            op["parameters"] = params
        if b is not None:
            op["requestBody"] = {"required": e.body_required,
                                 "content": _content("application/json", schemas[b])}
        elif e.request_content:
            op["requestBody"] = {"required": True, "content": {
                media: {"schema": kind if isinstance(kind, dict)
                        else schemas[content_slots[media]]}
                for media, kind in e.request_content.items()}}
        responses: dict[str, Any] = {}
        error = ({"$ref": REF.format(name="Error")} if e.error_type is None
                 else schemas[collect.index[e.error_type]])
        for status in e.statuses():
            code = str(status)
            if status == e.status or (status < 300 and status in e.also_ok):
                responses[code] = {"description": e.summary}
                if status != 204:
                    responses[code]["content"] = _content(
                        e.media_type, schemas[r] if r is not None else None)
            else:
                responses[code] = {"description": TEXTS.get(code, "Error"),
                                   "content": _content(
                                       "application/json" if e.error_type is None
                                       else e.media_type, error)}
            for media in e.alt_media:
                responses[code]["content"][media] = {"schema": {"type": "string"}}
            if e.export is not None and status == e.status:
                responses[code]["content"].update(EXPORT_CONTENT)
        op["responses"] = responses
        paths.setdefault(_openapi_path(e.path), {})[e.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "components": {"schemas": components,
                       "securitySchemes": {"key": {"type": "http", "scheme": "bearer"}}},
        "security": [{"key": []}],
        "paths": paths,
    }
