"""The serve-side paths of the OpenAPI document: citizens and their report photos, 12345
hotline orders, reviews and their follow-ups, smart filing cabinets; `openapi.document` merges
them with the others."""

from __future__ import annotations

from typing import Any

import msgspec

from cityops.api.cabinets import DropOff, NewCabinet, PickUp, ReturnBody
from cityops.api.citizens import CitizenIn
from cityops.api.hotline import NewOrder, OrderAction
from cityops.api.images import TYPES as IMAGE_TYPES
from cityops.api.openapi_parts import CURSOR, ERROR, LIMIT, json_body, list_of, p, q
from cityops.api.reviews import DoneBody, NewReview
from cityops.domain.cabinets import ItemStatus
from cityops.domain.hotline import ACTIONS, OrderType, Status
from cityops.domain.reviews import Grade, TaskKind

OBJ = {"type": "object"}
_TEXTS = {
    "400": "Malformed request, or one the service cannot take (the reason is given)",
    "401": "Missing or unknown API key",
    "403": "The key's role may not do this (for a pickup: a wrong or used code)",
    "404": "Not found (or not the key's to see)",
    "409": "Not possible in the present state (the reason is given)",
    "410": "The code is right but the item waited over 7 days: it is kept for return",
    "413": "Body over the size limit",
    "415": "Not a JPEG, PNG or WebP image",
    "429": "Too many wrong tries; see Retry-After",
    "503": "Overloaded, or this node runs no citizen services; see Retry-After",
}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def responses(*ok: tuple[str, str, dict[str, Any]], errors: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {code: {"description": text, **_json(schema)}
                           for code, text, schema in ok}
    for code in ("401", "503", *errors.split()):
        out[code] = {"description": _TEXTS[code], **_json(ERROR)}
    return out


def _enum(name: str, values, text: str) -> dict[str, Any]:
    return q(name, text, {"enum": [v.value for v in values]})


def serve_paths(components: dict[str, Any]) -> dict[str, Any]:
    schemas, more = msgspec.json.schema_components(
        [CitizenIn, NewOrder, OrderAction, NewReview, DoneBody, NewCabinet, DropOff, PickUp,
         ReturnBody], ref_template="#/components/schemas/{name}")
    components.update(more)
    citizen_in, new_order, order_action, new_review, done, new_cabinet, drop, pick, ret = \
        schemas
    citizen = {"type": "object", "required": ["id", "name"],
               "properties": {"id": {"type": "string"}, "name": {"type": "string"},
                              "phone": {"type": "string"}, "id_number": {"type": "string"}}}
    order = {"type": "object", "required": ["number", "type", "status"],
             "properties": {"number": {"type": "string"},
                            "type": {"enum": [t.value for t in OrderType]},
                            "status": {"enum": [s.value for s in Status]},
                            "timeline": {"type": "array", "items": OBJ}}}
    review = {"type": "object", "required": ["id", "subject_kind", "subject_id", "grade"],
              "properties": {"id": {"type": "string"}, "grade": {"enum": [
                  g.value for g in Grade]}}}
    item = {"type": "object", "required": ["id", "cabinet_id", "compartment", "status"],
            "properties": {"id": {"type": "string"}, "cabinet_id": {"type": "string"},
                           "compartment": {"type": "integer"},
                           "status": {"enum": [s.value for s in ItemStatus]},
                           "code": {"type": "string", "pattern": "^[0-9]{6}$"}}}
    components.update(Citizen=citizen, HotlineOrder=order, Review=review, CabinetItem=item)
    ref = lambda name: {"$ref": f"#/components/schemas/{name}"}  # noqa: E731
    photo = {"type": "object", "required": ["url", "bytes", "type"],
             "properties": {"url": {"type": "string", "format": "uri"},
                            "bytes": {"type": "integer"}, "type": {"type": "string"}}}
    images = {m: {"schema": {"type": "string", "format": "binary"}} for m in IMAGE_TYPES}
    action = {"name": "action", "in": "path", "required": True, "schema": {"enum": list(ACTIONS)}}
    return {
        "/api/v1/citizens": {"post": {
            "summary": "Register a citizen, or update what is held about them (admin, "
                       "operator); the answer masks phone and ID number",
            "requestBody": json_body(citizen_in),
            "responses": responses(("201", "Registered", ref("Citizen")),
                                   ("200", "Updated", ref("Citizen")),
                                   errors="400 403 409")}},
        "/api/v1/citizens/me": {"get": {
            "summary": "The calling citizen, phone and ID number whole (citizen keys)",
            "responses": responses(("200", "The citizen", ref("Citizen")),
                                   errors="403 404")}},
        "/api/v1/citizens/me/photos": {"post": {
            "summary": "Upload a photo of a problem to report (citizen keys): JPEG, PNG or WebP "
                       "as the body, checked by content, at most 8 MiB, 20 a day; send the "
                       "answer's absolute url as the Open311 request's media_url",
            "requestBody": {"required": True, "content": images},
            "responses": responses(("201", "Stored", photo),
                                   errors="400 403 409 413 415")}},
        "/api/v1/citizen-photos/{name}": {"get": {
            "summary": "A citizen's report photo: for the citizen who took it, and for staff "
                       "who may see a case it was reported with",
            "parameters": [p("name")],
            "responses": {**responses(("200", "The photo", OBJ), errors="403 404"),
                          "200": {"description": "The photo", "content": images}}}},
        "/api/v1/citizens/{citizen_id}": {"get": {
            "summary": "One citizen: masked for staff, whole for the citizen's own key",
            "parameters": [p("citizen_id")],
            "responses": responses(("200", "The citizen", ref("Citizen")),
                                   errors="403 404")}},
        "/api/v1/hotline/orders": {
            "get": {"summary": "12345 orders the key covers, newest first (a citizen key: "
                               "its own)",
                    "parameters": [_enum("status", Status, "Order status"),
                                   _enum("type", OrderType, "Order type"),
                                   q("department", "Department code"),
                                   q("overdue", "true or false", {"type": "boolean"}),
                                   LIMIT, CURSOR],
                    "responses": responses(("200", "Orders", list_of(ref("HotlineOrder"))),
                                           errors="400 403")},
            "post": {"summary": "Take a 12345 call (operator, admin); 5 working days for help "
                                "and complaints, 1 for consultations and suggestions",
                     "requestBody": json_body(new_order),
                     "responses": responses(("201", "The order", ref("HotlineOrder")),
                                            errors="400 403")}},
        "/api/v1/hotline/orders/{number}": {"get": {
            "summary": "One order with its timeline. A citizen key sees its own; other citizen "
                       "keys give phone_last4 (5 wrong tries, then 15 minutes' wait)",
            "parameters": [p("number"),
                           q("phone_last4", "The last 4 digits of the caller's phone",
                             {"type": "string"})],
            "responses": responses(("200", "The order", ref("HotlineOrder")),
                                   errors="400 403 404 429")}},
        "/api/v1/hotline/orders/{number}/actions/{action}": {"post": {
            "summary": "A move: assign, contact, handle (optionally opening an incident), "
                       "answer, revisit (satisfied true/false), request/approve/deny an "
                       "extension, cancel",
            "parameters": [p("number"), action],
            "requestBody": json_body(order_action, required=False),
            "responses": responses(("200", "The order after the move", ref("HotlineOrder")),
                                   errors="400 403 404 409")}},
        "/api/v1/reviews": {
            "get": {"summary": "Reviews the key covers (a citizen key: its own)",
                    "parameters": [q("subject_kind", "application, hotline_order or incident"),
                                   q("subject_id", "The rated thing's id"),
                                   q("department", "Department code"),
                                   _enum("grade", Grade, "Grade"), LIMIT, CURSOR],
                    "responses": responses(("200", "Reviews", list_of(ref("Review"))),
                                           errors="400 403")},
            "post": {"summary": "Rate a finished application, hotline order or incident "
                                "(citizen keys; 201), or re-rate it once (200); a bad grade "
                                "opens a callback and a rectification",
                     "requestBody": json_body(new_review),
                     "responses": responses(("201", "Rated", ref("Review")),
                                            ("200", "Re-rated", ref("Review")),
                                            errors="400 403 404 409")}},
        "/api/v1/reviews/{review_id}": {"get": {
            "summary": "One review", "parameters": [p("review_id")],
            "responses": responses(("200", "The review", ref("Review")), errors="403 404")}},
        "/api/v1/review-tasks": {"get": {
            "summary": "Follow-ups of bad reviews (a department key: its own)",
            "parameters": [q("department", "Department code"),
                           q("status", "open or done", {"enum": ["open", "done"]}),
                           _enum("kind", TaskKind, "callback or rectification"),
                           q("overdue", "true or false", {"type": "boolean"}), LIMIT, CURSOR],
            "responses": responses(("200", "Tasks", list_of(OBJ)), errors="400 403")}},
        "/api/v1/review-tasks/{task_id}/actions/done": {"post": {
            "summary": "Report a callback made or a rectification done, with a note",
            "parameters": [p("task_id")], "requestBody": json_body(done, required=False),
            "responses": responses(("200", "The task", OBJ), errors="400 403 404 409")}},
        "/api/v1/evaluation/reviews": {"get": {
            "summary": "Review figures per department: counts per grade, satisfaction rate, "
                       "follow-ups done and on time",
            "parameters": [q("period", "YYYY, YYYY-MM, YYYY-MM-DD, YYYY-Www or a range of days"),
                           q("department", "Department code")],
            "responses": responses(("200", "Figures", OBJ), errors="400 403")}},
        "/api/v1/cabinets": {
            "get": {"summary": "Filing cabinets and their free compartments",
                    "responses": responses(("200", "Cabinets", list_of(OBJ)), errors="403")},
            "post": {"summary": "Add a cabinet with its compartments (admin)",
                     "requestBody": json_body(new_cabinet),
                     "responses": responses(("201", "The cabinet", OBJ),
                                            errors="400 403 409")}},
        "/api/v1/cabinets/{cabinet_id}": {"get": {
            "summary": "One cabinet (staff also see which item is in which compartment)",
            "parameters": [p("cabinet_id")],
            "responses": responses(("200", "The cabinet", OBJ), errors="403 404")}},
        "/api/v1/cabinets/{cabinet_id}/dropoff": {"post": {
            "summary": "Drop materials off: a free compartment and a 6-digit pickup code, "
                       "shown once and sent by SMS",
            "parameters": [p("cabinet_id")], "requestBody": json_body(drop),
            "responses": responses(("201", "The item, with its code", ref("CabinetItem")),
                                   errors="400 403 404 409")}},
        "/api/v1/cabinets/{cabinet_id}/pickup": {"post": {
            "summary": "Open the compartment holding the item with this code, once",
            "parameters": [p("cabinet_id")], "requestBody": json_body(pick),
            "responses": responses(("200", "Opened", OBJ),
                                   errors="400 403 404 409 410 429")}},
        "/api/v1/cabinet-items": {"get": {
            "summary": "Items in cabinets (a citizen key: those for it)",
            "parameters": [q("cabinet", "Cabinet id"),
                           _enum("status", ItemStatus, "Item status"), LIMIT, CURSOR],
            "responses": responses(("200", "Items", list_of(ref("CabinetItem"))),
                                   errors="400 403")}},
        "/api/v1/cabinet-items/{item_id}": {"get": {
            "summary": "One item", "parameters": [p("item_id")],
            "responses": responses(("200", "The item", ref("CabinetItem")),
                                   errors="403 404")}},
        "/api/v1/cabinet-items/{item_id}/actions/return": {"post": {
            "summary": "Take an item out and return it (staff)",
            "parameters": [p("item_id")], "requestBody": json_body(ret, required=False),
            "responses": responses(("200", "The item", ref("CabinetItem")),
                                   errors="400 403 404 409")}},
    }
