"""The detect- and act-side paths of the OpenAPI document (alerts, states, incidents, work
orders, staff, evaluation); `openapi.document` merges them with the sense-side paths."""

from __future__ import annotations

from typing import Any

import msgspec

from cityops.api.field import PositionIn
from cityops.api.incidents import ActionBody, NewIncident
from cityops.api.openapi_parts import CURSOR, LIMIT, json_body, list_of, p, q, responses
from cityops.api.staff import StatusBody
from cityops.api.states import StateIn
from cityops.domain.incidents.model import Status

OBJ = {"type": "object"}
INCIDENT_ACTIONS = ["register", "cancel", "dispatch", "redispatch", "verify", "rework", "close",
                    "reopen"]
ORDER_ACTIONS = ["accept", "return", "request_park", "approve_park", "deny_park", "resume",
                 "progress", "finish", "escalate", "assign", "acknowledge"]

_TEXT, _NULLABLE = {"type": "string"}, {"type": ["string", "null"]}
# An Open311 request as Open311 shows it, with the case it joined: what a citizen's own list of
# reports gives.
MY_REPORT = {"type": "object",
             "required": ["service_request_id", "status", "service_code", "service_name",
                          "requested_datetime", "incident_id", "incident_status", "title",
                          "finished", "media_url"],
             "properties": {"service_request_id": _TEXT,
                            "status": {"enum": ["open", "closed"]},
                            "status_notes": _TEXT, "service_code": _TEXT,
                            "service_name": _TEXT, "description": _TEXT, "address": _TEXT,
                            "requested_datetime": _TEXT, "updated_datetime": _TEXT,
                            "expected_datetime": _NULLABLE, "media_url": _NULLABLE,
                            "incident_id": _TEXT,
                            "incident_status": {"enum": [*(s.value for s in Status), None]},
                            "title": _TEXT, "finished": {"type": "boolean"}}}


def act_paths(components: dict[str, Any]) -> dict[str, Any]:
    schemas, more = msgspec.json.schema_components(
        [NewIncident, ActionBody, StatusBody, StateIn], ref_template="#/components/schemas/{name}")
    components.update(more)
    new_incident, action_body, status_body, state_in = schemas
    ref = {"$ref": "#/components/schemas/Incident"}
    components["Incident"] = {"type": "object", "required": ["id", "status", "category"],
                              "properties": {"id": {"type": "string"},
                                             "status": {"enum": [s.value for s in Status]},
                                             "category": {"type": "string"},
                                             "orders": {"type": "array", "items": OBJ}}}
    action = {"name": "action", "in": "path", "required": True,
              "schema": {"enum": INCIDENT_ACTIONS}}
    order_action = {"name": "action", "in": "path", "required": True,
                    "schema": {"enum": ORDER_ACTIONS}}
    moves = ("400", "401", "403", "404", "409", "503")
    return {
        **see_paths(components),
        "/api/v1/alerts": {"get": {
            "summary": "Alerts raised by detection, newest first",
            "parameters": [q("scenario", "Scenario pack name"), q("area", "Area code"),
                           q("active", "true or false", {"type": "boolean"}), LIMIT, CURSOR],
            "responses": responses(("200", "Alerts", list_of(OBJ)), "400", "401", "403")}},
        "/api/v1/alerts/{alert_id}": {"get": {
            "summary": "One alert with its evidence", "parameters": [p("alert_id")],
            "responses": responses(("200", "The alert", OBJ), "401", "403", "404")}},
        "/api/v1/areas/{code}/state": {
            "get": {"summary": "The operating state in force in an area",
                    "parameters": [p("code")],
                    "responses": responses(("200", "State", OBJ), "401", "403", "404")},
            "put": {"summary": "Switch an area's operating state (audited)",
                    "parameters": [p("code")], "requestBody": json_body(state_in),
                    "responses": responses(("200", "State", OBJ), "400", "401", "403", "404")}},
        "/api/v1/state": {
            "get": {"summary": "The city's operating state and every area's",
                    "responses": responses(("200", "States", OBJ), "401", "403")},
            "put": {"summary": "Switch the whole city's operating state (audited)",
                    "requestBody": json_body(state_in),
                    "responses": responses(("200", "State", OBJ), "400", "401", "403")}},
        "/api/v1/scenarios": {"get": {
            "summary": "Scenario packs loaded, with their rules",
            "responses": responses(("200", "Packs", OBJ), "401", "403")}},
        "/api/v1/vital-signs": {"get": {
            "summary": "City KPI series: value, baseline, status",
            "responses": responses(("200", "Vital signs", OBJ), "401", "403")}},
        "/api/v1/audit": {"get": {
            "summary": "The audit trail, newest first",
            "parameters": [q("subject", "e.g. area:310115001"), LIMIT, CURSOR],
            "responses": responses(("200", "Entries", list_of(OBJ)), "400", "401", "403")}},
        "/api/v1/detect/stats": {"get": {
            "summary": "Detection counters and alert latency",
            "responses": responses(("200", "Stats", OBJ), "401", "403")}},
        "/api/v1/incidents": {
            "get": {"summary": "Incidents the key may see, newest report first",
                    "parameters": [q("status", "Comma-separated statuses"),
                                   q("category", "Category code"), q("area", "Area code"),
                                   q("department", "Department code"),
                                   q("overdue", "true: open cases past a deadline",
                                     {"type": "boolean"}),
                                   q("open", "true or false", {"type": "boolean"}),
                                   LIMIT, CURSOR],
                    "responses": responses(("200", "Incidents", list_of(ref)),
                                           "400", "401", "403", "503")},
            "post": {"summary": "Report an incident (merged into a nearby open one if any)",
                     "requestBody": json_body(new_incident),
                     "responses": responses(("201", "Opened", ref), "400", "401", "403",
                                            "503")}},
        "/api/v1/incidents/{incident_id}": {"get": {
            "summary": "An incident with its work orders, reports and timeline",
            "parameters": [p("incident_id")],
            "responses": responses(("200", "The incident", ref), "401", "403", "404", "503")}},
        "/api/v1/incidents/{incident_id}/actions/{action}": {"post": {
            "summary": "Move an incident on (refused with 409 and the reason)",
            "parameters": [p("incident_id"), action],
            "requestBody": json_body(action_body, required=False),
            "responses": responses(("200", "The incident after the move", ref), *moves)}},
        "/api/v1/incidents/{incident_id}/cap": {"get": {
            "summary": "The incident as an OASIS CAP 1.2 public warning (emergencies)",
            "parameters": [p("incident_id")],
            "responses": {**responses(("200", "CAP 1.2 XML", None), "401", "403", "404", "409",
                                      "503"),
                          "200": {"description": "CAP 1.2 XML", "content": {
                              "application/cap+xml": {"schema": {"type": "string"}}}}}}},
        "/api/v1/work-orders": {"get": {
            "summary": "Live work orders (a field key: its own)",
            "parameters": [q("mine", "true: assigned or offered to me", {"type": "boolean"}),
                           q("department", "Department code"), q("status", "Order status"),
                           LIMIT],
            "responses": responses(("200", "Work orders", list_of(OBJ)), "400", "401", "403",
                                   "503")}},
        "/api/v1/work-orders/{order_id}/actions/{action}": {"post": {
            "summary": "Move a work order on (refused with 409 and the reason)",
            "parameters": [p("order_id"), order_action],
            "requestBody": json_body(action_body, required=False),
            "responses": responses(("200", "The incident after the move", ref), *moves)}},
        "/api/v1/work-orders/{order_id}/assign": {"post": {
            "summary": "Propose the nearest available qualified person (or the one named)",
            "parameters": [p("order_id")],
            "requestBody": json_body(action_body, required=False),
            "responses": responses(("200", "The incident with the offer", ref), *moves)}},
        "/api/v1/staff": {"get": {
            "summary": "Field staff with their latest position and status",
            "responses": responses(("200", "Staff", list_of(OBJ)), "401", "403", "503")}},
        "/api/v1/staff/{staff_id}/status": {"put": {
            "summary": "Set a field person's status", "parameters": [p("staff_id")],
            "requestBody": json_body(status_body),
            "responses": responses(("200", "Status", OBJ), "400", "401", "403", "404")}},
        "/api/v1/act/stats": {"get": {
            "summary": "Incident desk counters and dispatch latency p50/p99",
            "responses": responses(("200", "Stats", OBJ), "401", "403", "503")}},
        "/api/v1/categories": {"get": {
            "summary": "The city's case categories",
            "responses": responses(("200", "Categories", OBJ), "401", "403", "503")}},
        "/api/v1/evaluation": {"get": {
            "summary": "Closure, on-time, rework, dispatch and registration figures",
            "parameters": [q("period", "YYYY, YYYY-MM, YYYY-MM-DD, YYYY-Www or A..B"),
                           q("group_by", "department, area or category",
                             {"enum": ["department", "area", "category"]})],
            "responses": responses(("200", "Figures", OBJ), "400", "401", "403")}},
    }


def _page(summary: str) -> dict[str, Any]:
    return {"get": {"summary": summary, "security": [], "responses": {
        "200": {"description": "The page (it asks for a key and reads the API with it)",
                "content": {"text/html": {"schema": {"type": "string"}}}},
        "503": {"description": "The pinned browser libraries are not installed "
                               "(run make install)",
                "content": {"text/html": {"schema": {"type": "string"}}}}}}}


def see_paths(components: dict[str, Any]) -> dict[str, Any]:
    """The views: the live feed, the field page's position and photos, and the pages."""
    (position_in,), more = msgspec.json.schema_components(
        [PositionIn], ref_template="#/components/schemas/{name}")
    components.update(more)
    photo = {"type": "object", "required": ["url"],
             "properties": {"url": {"type": "string"}, "bytes": {"type": "integer"},
                            "type": {"type": "string"}}}
    images = {m: {"schema": {"type": "string", "format": "binary"}}
              for m in ("image/jpeg", "image/png", "image/webp")}
    return {
        "/api/v1/live": {"get": {
            "summary": "Live updates as server-sent events: a `snapshot` of everything in the "
                       "key's scope, then `delta` events with only what changed (incidents, "
                       "alerts raised and cleared, positions that moved as integers of 1e-5 "
                       "degree, staff statuses, KPI values), at most a few per second; a "
                       "client too slow to keep up is sent a new snapshot, and the updates "
                       "it lost are counted in the snapshot's `dropped`",
            "responses": {**responses(("200", "The event stream", None), "401", "403", "503"),
                          "200": {"description": "The event stream (when the request accepts "
                                                 "text/event-stream), else the snapshot once",
                                  "content": {
                                      "text/event-stream": {"schema": {"type": "string"}},
                                      "application/json": {"schema": OBJ}}}}}},
        "/api/v1/areas.geojson": {"get": {
            "summary": "Every area the key may see, as one GeoJSON FeatureCollection (polygons "
                       "simplified for display; `label` is a point inside each)",
            "parameters": [q("level", "district, town or village")],
            "responses": responses(("200", "FeatureCollection", OBJ), "400", "401", "403")}},
        "/api/v1/staff/me": {"get": {
            "summary": "The field person behind the calling field key: id, name, department, "
                       "status and latest position",
            "responses": responses(("200", "The person", OBJ), "401", "403", "404")}},
        "/api/v1/staff/me/position": {"post": {
            "summary": "A field key reports its person's position (from the phone): stored as "
                       "a reading of the person's GPS device",
            "requestBody": json_body(position_in),
            "responses": responses(("202", "Stored", OBJ), "400", "401", "403", "404", "422",
                                   "429", "503")}},
        "/api/v1/work-orders/{order_id}/photos": {"post": {
            "summary": "Upload an evidence photo (JPEG, PNG or WebP, at most 8 MiB); pass the "
                       "answer's url in `finish` photos",
            "parameters": [p("order_id")],
            "requestBody": {"required": True, "content": images},
            "responses": {**responses(("201", "Stored", photo), "400", "401", "403", "404",
                                      "409", "413"),
                          "415": {"description": "Not a JPEG, PNG or WebP image"}}}},
        "/api/v1/work-orders/{order_id}/photos/{name}": {"get": {
            "summary": "One evidence photo of a work order",
            "parameters": [p("order_id"), p("name")],
            "responses": {**responses(("200", "The photo", None), "401", "403", "404"),
                          "200": {"description": "The photo", "content": images}}}},
        "/screen": _page("The big screen (1920x1080 wall)"),
        "/console": _page("The operator console"),
        "/field": _page("The field staff page (phones)"),
        "/citizen": _page("The citizen portal (phones)"),
        "/api/v1/citizens/me/reports": {"get": {
            "summary": "For a citizen key: its own Open311 requests, newest first (every key "
                       "of the citizen it names; a key naming no citizen, that key's), each as "
                       "Open311 shows it with the case it joined (`incident_id`, "
                       "`incident_status`, `title`, `finished`)",
            "parameters": [q("limit", "Page size (20 unless given)",
                             {"type": "integer", "minimum": 1, "maximum": 100}), CURSOR],
            "responses": responses(("200", "Requests", list_of(MY_REPORT)), "400", "401",
                                   "403")}},
        "/api/v1/citizens/me/reports/{service_request_id}": {"get": {
            "summary": "For a citizen key: the case an Open311 request joined (`incident_id`, "
                       "`incident_status`, `title`, `finished`), to rate it once finished",
            "parameters": [p("service_request_id")],
            "responses": responses(("200", "The case", OBJ), "401", "403", "404")}},
    }
