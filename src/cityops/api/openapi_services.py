"""The one-stop paths of the OpenAPI document: the service catalogue and its forms,
submissions and applications, the e-licence store, eligibility policies and benefits;
`openapi.document` merges them with the others."""

from __future__ import annotations

from typing import Any

import msgspec

from cityops.api.applications import ApplicationAction, NewApplication
from cityops.api.licences import LicenceIn, RevokeIn
from cityops.api.openapi_parts import CURSOR, LIMIT, json_body, list_of, p, q, responses
from cityops.domain.onestop.applications import MOVES, Status
from cityops.domain.onestop.catalogue import CHANNELS

OBJ = {"type": "object"}
STR = {"type": "string"}
NUM = {"type": "number"}
NULLABLE_NUM = {"type": ["number", "null"]}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(required: list[str], /, **props: Any) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": props}


def _components(components: dict[str, Any]) -> list[dict[str, Any]]:
    schemas, more = msgspec.json.schema_components(
        [NewApplication, ApplicationAction, LicenceIn, RevokeIn],
        ref_template="#/components/schemas/{name}")
    components.update(more)
    material = _obj(["code", "name", "status"], code=STR, name=STR,
                    status={"enum": ["attached", "shared", "pending", "provided", "asked"]},
                    reason=STR, licence=STR, licence_id=STR, licence_number=STR)
    components["MaterialState"] = material
    components["Application"] = _obj(
        ["id", "submission", "item", "department", "applicant", "status", "submitted_at",
         "time_limit", "due", "overdue", "timeline"],
        id=STR, submission=STR, item=STR, item_name=STR, department=STR, applicant=STR,
        status={"enum": [s.value for s in Status]}, submitted_at=NUM, time_limit=STR,
        due=NULLABLE_NUM, overdue={"type": "boolean"}, overdue_since=NULLABLE_NUM,
        answers=OBJ,
        materials={"type": "array", "items": _ref("MaterialState")},
        decision=STR, result={"type": ["object", "null"]},
        timeline={"type": "array", "items": OBJ})
    components["Submission"] = _obj(
        ["id", "applicant", "title", "items", "status", "applications"],
        id=STR, applicant=STR, title=STR, bundle=STR, items={"type": "array", "items": STR},
        status={"enum": ["submitted", "in_progress", "need_more", "done"]},
        answers=OBJ, materials={"type": "array", "items": _ref("MaterialState")},
        applications={"type": "array", "items": _ref("Application")},
        repeated={"type": "boolean"}, result_notice_at=NULLABLE_NUM,
        overdue={"type": "boolean"}, overdue_since=NULLABLE_NUM)
    components["ServiceEntry"] = _obj(
        ["kind", "code", "name"], kind={"enum": ["item", "bundle"]}, code=STR, name=STR,
        name_zh=STR, department=STR, time_limit=STR,
        channels={"type": "array", "items": {"enum": list(CHANNELS)}},
        materials={"type": "array", "items": OBJ}, fields={"type": "array", "items": OBJ},
        items={"type": "array", "items": OBJ}, score={"type": "integer"})
    components["Form"] = _obj(
        ["title", "items", "fields", "materials", "asked"], service={"type": ["string", "null"]},
        bundle={"type": ["string", "null"]}, title=STR,
        items={"type": "array", "items": OBJ},
        fields={"type": "array", "items": _obj(["code", "label", "type", "required", "items"],
                                                code=STR, label=STR, type=STR,
                                                required={"type": "boolean"},
                                                items={"type": "array", "items": STR})},
        materials={"type": "array", "items": OBJ}, asked={"type": "array", "items": STR})
    components["Licence"] = _obj(
        ["id", "holder", "issuer", "type", "number", "valid_from", "state"],
        id=STR, holder=STR, issuer=STR, type=STR, type_name=STR, number=STR,
        valid_from={"type": "string", "format": "date"},
        valid_until={"type": ["string", "null"], "format": "date"},
        state={"enum": ["valid", "expired", "not_yet_valid", "revoked"]})
    components["Policy"] = _obj(["id", "name", "department", "when"], id=STR, name=STR,
                                department=STR, when=STR, benefit=OBJ,
                                runs={"type": "array", "items": OBJ})
    components["PolicyRun"] = _obj(
        ["id", "policy", "citizens", "qualified", "granted", "already", "notices"],
        id=STR, policy=STR, citizens={"type": "integer"}, qualified={"type": "integer"},
        granted={"type": "integer"}, already={"type": "integer"},
        notices={"type": "integer"}, granted_to={"type": "array", "items": STR})
    components["Benefit"] = _obj(
        ["id", "policy", "citizen", "granted_at", "audit"], id=STR, policy=STR, citizen=STR,
        granted_at=NUM, benefit=OBJ,
        audit={"type": "array", "items": _obj(["condition", "held", "values"], condition=STR,
                                                held={"type": ["boolean", "null"]},
                                                values=OBJ)})
    return schemas


def onestop_paths(components: dict[str, Any]) -> dict[str, Any]:
    new_app, action_body, licence_in, revoke_in = _components(components)
    app, sub, lic = _ref("Application"), _ref("Submission"), _ref("Licence")
    read = ("401", "403", "404", "503")
    action = {"name": "action", "in": "path", "required": True,
              "schema": {"enum": list(MOVES)}}
    return {
        "/api/v1/services": {"get": {
            "summary": "Search the service catalogue: items and one-thing bundles",
            "parameters": [q("q", "Words to find in names (English or Chinese), keywords, "
                                  "department"),
                           q("department", "Only this department's items"),
                           q("channel", "Only what is offered through this channel",
                             {"enum": list(CHANNELS)})],
            "responses": responses(("200", "Matches, best first",
                                    list_of(_ref("ServiceEntry"))), "400", "401", "403", "503"),
        }},
        "/api/v1/services/{code}": {"get": {
            "summary": "One service item: conditions, materials, fields, time limit, channels",
            "parameters": [p("code")],
            "responses": responses(("200", "The item", _ref("ServiceEntry")), *read)}},
        "/api/v1/services/{code}/form": {"get": {
            "summary": "The item's form; for a citizen filled in from the registry, with each "
                       "material attached, shared or asked (and why)",
            "parameters": [p("code")],
            "responses": responses(("200", "The form", _ref("Form")), *read)}},
        "/api/v1/bundles/{code}": {"get": {
            "summary": "One 'one thing, done once' bundle and its items",
            "parameters": [p("code")],
            "responses": responses(("200", "The bundle", _ref("ServiceEntry")), *read)}},
        "/api/v1/bundles/{code}/form": {"get": {
            "summary": "The bundle's merged form: each field and material asked once",
            "parameters": [p("code")],
            "responses": responses(("200", "The form", _ref("Form")), *read)}},
        "/api/v1/applications": {
            "post": {"summary": "Submit a form (an item or a bundle): one application per item, "
                                "each to its department",
                     "requestBody": json_body(new_app),
                     "responses": {**responses(("201", "Submitted", sub), "400", "401", "403",
                                               "404", "409", "503"),
                                   "200": {"description": "Already submitted with this key",
                                           "content": {"application/json": {"schema": sub}}}}},
            "get": {"summary": "A department's applications (admin, operator: any)",
                    "parameters": [q("department", "Department code"),
                                   q("status", "One status", {"enum": [s.value for s in Status]}),
                                   q("overdue", "Only those past their legal deadline, soonest "
                                                "due first (the cursor then follows the "
                                                "deadline)", {"type": "boolean"}),
                                   LIMIT, CURSOR],
                    "responses": responses(("200", "Applications", list_of(app)), "400", "401",
                                           "403", "503")}},
        "/api/v1/applications/{application_id}": {"get": {
            "summary": "One application with its materials and timeline",
            "parameters": [p("application_id")],
            "responses": responses(("200", "The application", app), *read)}},
        "/api/v1/applications/{application_id}/actions/{action}": {"post": {
            "summary": "accept, need_more (reason, asked), resubmit (materials, answers: the "
                       "citizen), approve, reject (reason), issue_result (note)",
            "parameters": [p("application_id"), action],
            "requestBody": json_body(action_body, required=False),
            "responses": responses(("200", "The application after the move", app), "400",
                                   "401", "403", "404", "409", "503")}},
        "/api/v1/submissions": {"get": {
            "summary": "Submissions with their combined status (a citizen's own)",
            "parameters": [q("citizen", "Citizen id (staff)"),
                           q("status", "Combined status"), LIMIT, CURSOR],
            "responses": responses(("200", "Submissions", list_of(sub)), "400", "401", "403",
                                   "503")}},
        "/api/v1/submissions/{submission_id}": {"get": {
            "summary": "One submission, its combined status and its applications",
            "parameters": [p("submission_id")],
            "responses": responses(("200", "The submission", sub), *read)}},
        "/api/v1/licences": {
            "post": {"summary": "Put an e-licence in the store (its issuing department, admin)",
                     "requestBody": json_body(licence_in),
                     "responses": {**responses(("201", "Issued", lic), "400", "401", "403",
                                               "409", "503"),
                                   "200": {"description": "Already in the store",
                                           "content": {"application/json": {"schema": lic}}}}},
            "get": {"summary": "A holder's e-licences with their state today (a citizen's own)",
                    "parameters": [q("holder", "Citizen id (staff must name it)"), LIMIT,
                                   CURSOR],
                    "responses": responses(("200", "Licences", list_of(lic)), "400", "401",
                                           "403", "503")}},
        "/api/v1/licences/{licence_id}": {"get": {
            "summary": "One e-licence", "parameters": [p("licence_id")],
            "responses": responses(("200", "The licence", lic), *read)}},
        "/api/v1/licences/{licence_id}/revoke": {"post": {
            "summary": "Withdraw an e-licence (its issuer, admin)",
            "parameters": [p("licence_id")], "requestBody": json_body(revoke_in),
            "responses": responses(("200", "The licence, revoked", lic), "400", "401", "403",
                                   "404", "503")}},
        "/api/v1/policies": {"get": {
            "summary": "Eligibility policies: benefits granted without applying",
            "responses": responses(("200", "Policies", list_of(_ref("Policy"))), "401", "403",
                                   "503")}},
        "/api/v1/policies/{policy_id}": {"get": {
            "summary": "One policy (with its recent runs for admin and operator)",
            "parameters": [p("policy_id")],
            "responses": responses(("200", "The policy", _ref("Policy")), *read)}},
        "/api/v1/policies/{policy_id}/run": {"post": {
            "summary": "Evaluate the policy over every citizen; grant each who qualifies once, "
                       "with a notice and the audit of why",
            "parameters": [p("policy_id")],
            "responses": responses(("200", "What the run did", _ref("PolicyRun")), "401", "403",
                                   "404", "409", "503")}},
        "/api/v1/benefits": {"get": {
            "summary": "Benefits granted to a citizen, each with its audit (a citizen's own)",
            "parameters": [q("citizen", "Citizen id (staff must name it)")],
            "responses": responses(("200", "Benefits", list_of(_ref("Benefit"))), "400", "401",
                                   "403", "503")}},
    }
