"""Applications, one form at a time:

    POST /api/v1/applications                          submit a form (an item or a bundle)
    GET  /api/v1/submissions[?citizen=&status=]        submissions, with their combined status
    GET  /api/v1/submissions/{id}                      one, with its applications
    GET  /api/v1/applications[?department=&status=&overdue=true]   a department's queue
                                                       (overdue: soonest due first)
    GET  /api/v1/applications/{id}                     one, with its timeline
    POST /api/v1/applications/{id}/actions/{action}    accept, need_more, resubmit, approve,
                                                       reject, issue_result

A citizen submits for themself (an admin or operator at an on-site window for a citizen they
name); each department key acts on its own department's applications only, and a citizen
hands in what was asked for. 409 says why a move is not possible now, 403 that the role may
never make it, 404 what the key may not see. Phone and identity numbers in answers are masked
for everyone but the applicant and the deciding department. `overdue` is true while an
application waits for its department past its legal deadline (and a submission while any of
its applications does); `overdue_since`, the deadline missed, stays once the scheduler has
flagged it.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from cityops.api.access import principal
from cityops.api.errors import ApiError, json_response
from cityops.api.paging import limit_of
from cityops.api.serve_util import body_of, cursor_for, cursor_of, flag
from cityops.api.services import onestop
from cityops.domain.access import Principal, Role
from cityops.domain.onestop.applications import (
    Actor,
    Application,
    NotAllowed,
    OutOfScope,
    Refused,
    Status,
    Submission,
    combined_status,
    submission_overdue,
)
from cityops.serve.onestop.desk import FormProblems, NotFound, masked_answers

SUBMIT = frozenset({Role.CITIZEN, Role.ADMIN, Role.OPERATOR})
READ = frozenset({Role.CITIZEN, Role.ADMIN, Role.OPERATOR, Role.DEPARTMENT})
QUEUE = frozenset({Role.ADMIN, Role.OPERATOR, Role.DEPARTMENT})
ACT = frozenset({Role.CITIZEN, Role.ADMIN, Role.OPERATOR, Role.DEPARTMENT})


class NewApplication(msgspec.Struct, forbid_unknown_fields=True):
    service: str | None = None  # a service item's code, or
    bundle: str | None = None  # a bundle's code: one form for all its items
    answers: dict[str, Any] = {}
    materials: dict[str, str] = {}  # material code -> what was handed in (a file id, a URL)
    channel: Literal["online", "window", "kiosk"] | None = None
    citizen: str | None = None  # whom a window clerk submits for; a citizen key: themself
    key: str | None = None  # idempotency key: a retry makes nothing twice


class ApplicationAction(msgspec.Struct, forbid_unknown_fields=True):
    reason: str = ""
    note: str = ""
    asked: list[str] = []  # need_more: the materials or fields wanted
    materials: dict[str, str] = {}  # resubmit: what is handed in
    answers: dict[str, Any] = {}  # resubmit: corrected answers


def actor_of(who: Principal) -> Actor:
    return Actor(who.key_id, who.role, who.scope, who.name)


def application_json(app: Application, who: Principal, request: Request) -> dict[str, Any]:
    side = onestop(request)
    doc = msgspec.to_builtins(app)
    doc["overdue"] = app.overdue(request.app.state.node.clock())
    whole = (who.role is Role.CITIZEN and who.name == app.applicant) or (
        who.role is Role.DEPARTMENT and who.scope.department == app.department)
    if not whole:
        doc["answers"] = masked_answers(app.answers, side.catalogue, [app.item])
    return doc


def submission_json(sub: Submission, apps: list[Application], who: Principal,
                    request: Request) -> dict[str, Any]:
    side = onestop(request)
    doc = msgspec.to_builtins(sub)
    doc["status"] = combined_status(a.status for a in apps) if apps else sub.status
    doc["overdue"], doc["overdue_since"] = submission_overdue(
        apps, request.app.state.node.clock())
    if not (who.role is Role.CITIZEN and who.name == sub.applicant):
        doc["answers"] = masked_answers(sub.answers, side.catalogue, sub.items)
    doc["applications"] = [application_json(a, who, request) for a in apps]
    return doc


def _problems(error: FormProblems) -> ApiError:
    return ApiError(400, f"the form cannot be taken: {error.problems[0]}"
                         + (f" (and {len(error.problems) - 1} more)"
                            if len(error.problems) > 1 else ""), error.problems)


async def post_application(request: Request) -> Response:
    who = await principal(request, SUBMIT)
    side = onestop(request)
    body: NewApplication = await body_of(request, NewApplication)
    if who.role is Role.CITIZEN:
        if body.citizen not in (None, who.name):
            raise ApiError(403, "a citizen key submits for its own citizen only")
        citizen = who.name
        channel = body.channel or "online"
    else:
        if not body.citizen:
            raise ApiError(400, "name the citizen this is submitted for ('citizen')")
        citizen = body.citizen
        channel = body.channel or "window"
    if not citizen:
        raise ApiError(403, "this citizen key has no citizen id (its name)")
    try:
        sub, apps, created = await side.desk.submit(
            actor_of(who), citizen, service=body.service, bundle=body.bundle,
            answers=body.answers, materials=body.materials, channel=channel, key=body.key)
    except FormProblems as error:
        raise _problems(error) from None
    except NotFound as error:
        raise ApiError(404, str(error)) from None
    except Refused as error:
        raise ApiError(409, error.reason) from None
    doc = submission_json(sub, apps, who, request)
    doc["repeated"] = not created
    return json_response(doc, 201 if created else 200,
                         {"Location": f"/api/v1/submissions/{sub.id}"})


async def list_submissions(request: Request) -> Response:
    who = await principal(request, frozenset({Role.CITIZEN, Role.ADMIN, Role.OPERATOR}))
    side = onestop(request)
    q = request.query_params
    citizen = q.get("citizen") or None
    if who.role is Role.CITIZEN:
        if citizen not in (None, who.name):
            raise ApiError(403, "a citizen key sees its own submissions only")
        citizen = who.name
    limit = limit_of(request)
    found = await side.desk.list_submissions(citizen, status=q.get("status") or None,
                                             limit=limit + 1, before=cursor_of(q.get("cursor")))
    more = len(found) > limit
    found = found[:limit]
    items = []
    for sub, _ in found:
        _, apps = await side.desk.submission(sub.id, actor_of(who))
        items.append(submission_json(sub, apps, who, request))
    nxt = cursor_for(found[-1][1], found[-1][0].id) if more and found else None
    return json_response({"items": items, "next": nxt})


async def get_submission(request: Request) -> Response:
    who = await principal(request, READ)
    side = onestop(request)
    try:
        sub, apps = await side.desk.submission(request.path_params["submission_id"],
                                               actor_of(who))
    except NotFound as error:
        raise ApiError(404, str(error)) from None
    return json_response(submission_json(sub, apps, who, request))


async def list_applications(request: Request) -> Response:
    who = await principal(request, QUEUE)
    side = onestop(request)
    q = request.query_params
    department = q.get("department") or None
    if who.role is Role.DEPARTMENT:
        own = who.scope.department
        if own is None:
            raise ApiError(403, "a department key needs a department scope to see applications")
        if department not in (None, own):
            raise ApiError(403, f"a {own} key sees {own}'s applications only")
        department = own
    status = q.get("status") or None
    if status is not None and status not in {s.value for s in Status}:
        raise ApiError(400, f"status {status!r} is not one of: "
                            f"{', '.join(s.value for s in Status)}")
    overdue = bool(flag(q.get("overdue"), "overdue"))
    limit = limit_of(request)
    # Overdue pages are keyed by the deadline, the others by when the application came in.
    found = await side.desk.list_applications(department=department, status=status,
                                              overdue=overdue, limit=limit + 1,
                                              before=cursor_of(q.get("cursor")))
    more = len(found) > limit
    found = found[:limit]
    nxt = cursor_for(found[-1][1], found[-1][0].id) if more and found else None
    return json_response({"items": [application_json(a, who, request) for a, _ in found],
                          "next": nxt})


async def get_application(request: Request) -> Response:
    who = await principal(request, READ)
    side = onestop(request)
    try:
        app = await side.desk.get(request.path_params["application_id"], actor_of(who))
    except NotFound as error:
        raise ApiError(404, str(error)) from None
    return json_response(application_json(app, who, request))


async def application_action(request: Request) -> Response:
    who = await principal(request, ACT)
    side = onestop(request)
    body: ApplicationAction = await body_of(request, ApplicationAction, empty_ok=True)
    app_id, action = request.path_params["application_id"], request.path_params["action"]
    try:
        app = await side.desk.act(app_id, action, actor_of(who), reason=body.reason,
                                  note=body.note, asked=body.asked, provided=body.materials,
                                  answers=body.answers)
    except (NotFound, OutOfScope) as error:
        raise ApiError(404, str(error)) from None
    except NotAllowed as error:
        raise ApiError(403, str(error)) from None
    except FormProblems as error:
        raise _problems(error) from None
    except Refused as error:
        raise ApiError(409, error.reason) from None
    return json_response(application_json(app, who, request))
