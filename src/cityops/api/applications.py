"""Applications, one form at a time:

    POST /api/v1/applications                          submit a form (an item or a bundle)
    GET  /api/v1/submissions[?citizen=&status=]        submissions, with their combined status
    GET  /api/v1/submissions/{id}                      one, with its applications
    GET  /api/v1/applications[?department=&status=&overdue=true]   a department's queue
                                                       (overdue: soonest due first)
    GET  /api/v1/applications/{id}                     one, with its timeline
    POST /api/v1/applications/{id}/actions/{action}    accept, need_more, resubmit, approve,
                                                       reject, issue_result

A citizen submits for themself (an admin or operator at an on-site window for a citizen in
their scope); each department key acts on its own department's applications only, and a
citizen hands in what was asked for. 409 says why a move is not possible now, 403 that the
role may never make it, 404 what the key may not see.

Who sees what, always by the record as stored: a citizen their own; a department key the
applications its department decides (wherever the applicant lives) and the submissions they
belong to, showing only those applications; an area key those of applicants in its area (an
application keeps the applicant's village); an unscoped key everything. Phone and identity
numbers in answers are masked for everyone but the applicant and the deciding department.

`overdue` is true while an application waits for its department past its legal deadline (and
a submission while any of its applications does); `overdue_since`, the deadline missed, stays
once the scheduler has flagged it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

import msgspec

from cityops.api.errors import ApiError
from cityops.api.export import Export
from cityops.api.params import cursor_for, cursor_of
from cityops.api.route import Call, Endpoint, Guard, Reply, Scope, errors_map
from cityops.api.serve_util import covers, in_area_scope, is_citizen
from cityops.api.services import Code, narrowed, onestop
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
from cityops.domain.onestop.licences import MaterialState
from cityops.serve.onestop.desk import FormProblems, NotFound, masked_answers

SUBMIT = frozenset({Role.CITIZEN, Role.ADMIN, Role.OPERATOR})
READ = frozenset({Role.CITIZEN, Role.ADMIN, Role.OPERATOR, Role.DEPARTMENT})
QUEUE = frozenset({Role.ADMIN, Role.OPERATOR, Role.DEPARTMENT})
ACT = frozenset({Role.CITIZEN, Role.ADMIN, Role.DEPARTMENT})  # operators watch; they do not decide

errors_map({NotFound: 404, OutOfScope: 404, NotAllowed: 403, Refused: 409, FormProblems: 400})

Text = Annotated[str, msgspec.Meta(max_length=2000)]
# A form answer is one value: text (an address is the longest), a number, a yes/no, a date.
Answer = (Annotated[str, msgspec.Meta(max_length=2000)]
          | Annotated[int, msgspec.Meta(ge=-(2**53), le=2**53)] | float | bool | None)
Answers = Annotated[dict[Code, Answer], msgspec.Meta(max_length=200)]
Reference = Annotated[str, msgspec.Meta(max_length=500)]  # a file id or an upload's URL
Handed = Annotated[dict[Code, Reference], msgspec.Meta(max_length=100)]
Limit = Annotated[int, msgspec.Meta(ge=1, le=1000)]
Cursor = Annotated[str, msgspec.Meta(max_length=200)]
Combined = Literal["submitted", "in_progress", "need_more", "done"]


class NewApplication(msgspec.Struct, forbid_unknown_fields=True):
    service: Code | None = None  # a service item's code, or
    bundle: Code | None = None  # a bundle's code: one form for all its items
    answers: Answers = {}
    materials: Handed = {}  # material code -> what was handed in (a file id, a URL)
    channel: Literal["online", "window", "kiosk"] | None = None
    citizen: Code | None = None  # whom a window clerk submits for; a citizen key: themself
    key: Annotated[str, msgspec.Meta(max_length=128)] | None = None  # idempotency key: a
    # retry makes nothing twice


class ApplicationAction(msgspec.Struct, forbid_unknown_fields=True):
    reason: Text = ""
    note: Text = ""
    asked: Annotated[list[Code], msgspec.Meta(max_length=100)] = []  # need_more: wanted
    materials: Handed = {}  # resubmit: what is handed in
    answers: Answers = {}  # resubmit: corrected answers


class ApplicationOut(Application, kw_only=True):
    overdue: bool  # waiting for its department past the legal deadline


class SubmissionOut(msgspec.Struct, kw_only=True):
    id: str
    applicant: str
    title: str
    items: list[str]
    applications: list[ApplicationOut]  # those the key may see
    submitted_at: float
    answers: dict[str, Any]
    materials: list[MaterialState]
    channel: str
    bundle: str
    key: str
    status: Combined
    result_notice_at: float | None
    overdue: bool
    overdue_since: float | None
    repeated: bool | msgspec.UnsetType = msgspec.UNSET  # on submitting: a retry's answer


class ApplicationList(msgspec.Struct):
    items: list[ApplicationOut]
    next: str | None


class SubmissionList(msgspec.Struct):
    items: list[SubmissionOut]
    next: str | None


class SubmissionQuery(msgspec.Struct, forbid_unknown_fields=False):
    citizen: Code | None = None
    status: Combined | None = None
    limit: Limit = 100
    cursor: Cursor | None = None


class ApplicationQuery(msgspec.Struct, forbid_unknown_fields=False):
    department: Code | None = None
    status: Status | None = None
    overdue: bool = False
    limit: Limit = 100
    cursor: Cursor | None = None


# -- scope --------------------------------------------------------------------------------------


def unscoped(who: Principal) -> bool:
    """A key that sees every one-stop record: staff with no area or department."""
    return (who.role not in (Role.CITIZEN, Role.DEPARTMENT) and who.scope.area is None
            and who.scope.department is None)


def sees_application(who: Principal, app: Application) -> bool:
    if who.role is Role.CITIZEN:
        return is_citizen(who, app.applicant)
    if who.scope.department is not None:
        return app.department == who.scope.department
    if who.role is Role.DEPARTMENT:
        return False  # a department key names its department
    return in_area_scope(who, app.area)


def sees_submission(who: Principal, sub: Submission, apps: list[Application]) -> bool:
    if who.role is Role.CITIZEN:
        return is_citizen(who, sub.applicant)
    return unscoped(who) or any(sees_application(who, a) for a in apps)


async def load_application(call: Call[Any, Any]) -> Application | None:
    return await onestop(call).desk.find(call.path["application_id"])


async def load_submission(call: Call[Any, Any]
                          ) -> tuple[Submission, list[Application]] | None:
    return await onestop(call).desk.find_submission(call.path["submission_id"])


APPLICATION = Guard("application", "application_id", load_application,
                    lambda call, app: sees_application(call.principal, app))
SUBMISSION = Guard("submission", "submission_id", load_submission,
                   lambda call, held: sees_submission(call.principal, *held))


# -- answers ------------------------------------------------------------------------------------


def actor_of(who: Principal) -> Actor:
    return Actor(who.key_id, who.role, who.scope, who.name)


def application_out(call: Call[Any, Any], app: Application) -> ApplicationOut:
    who = call.principal
    whole = is_citizen(who, app.applicant) or (
        who.role is Role.DEPARTMENT and who.scope.department == app.department)
    fields = msgspec.structs.asdict(app)
    if not whole:
        fields["answers"] = masked_answers(app.answers, onestop(call).catalogue, [app.item])
    return ApplicationOut(**fields, overdue=app.overdue(call.node.clock()))


def submission_out(call: Call[Any, Any], sub: Submission, apps: list[Application]
                   ) -> SubmissionOut:
    who = call.principal
    overdue, since = submission_overdue(apps, call.node.clock())
    answers = sub.answers if is_citizen(who, sub.applicant) else masked_answers(
        sub.answers, onestop(call).catalogue, sub.items)
    return SubmissionOut(
        id=sub.id, applicant=sub.applicant, title=sub.title, items=sub.items,
        applications=[application_out(call, a) for a in apps if sees_application(who, a)
                      or unscoped(who)],
        submitted_at=sub.submitted_at, answers=answers, materials=sub.materials,
        channel=sub.channel, bundle=sub.bundle, key=sub.key,
        status=cast(Combined, combined_status(a.status for a in apps) if apps else sub.status),
        result_notice_at=sub.result_notice_at, overdue=overdue, overdue_since=since)


# -- handlers -----------------------------------------------------------------------------------


async def post_application(call: Call[NewApplication, Any]) -> Reply:
    who = call.principal
    side = onestop(call)
    body = call.body
    if who.role is Role.CITIZEN:
        if body.citizen not in (None, who.name):
            raise ApiError(403, "a citizen key submits for its own citizen only")
        citizen = who.name
        channel = body.channel or "online"
        if not citizen:
            raise ApiError(403, "this citizen key has no citizen id (its name)")
    else:
        if not body.citizen:
            raise ApiError(400, "name the citizen this is submitted for ('citizen')")
        citizen = body.citizen
        held = await side.citizens.get(citizen)
        # One answer for a citizen not registered and one outside the key's scope: the key
        # learns nothing of residents elsewhere.
        if held is None or not covers(call.node, who, held.area):
            raise ApiError(404, f"no citizen {citizen!r} in this key's scope; register them "
                                "first (POST /api/v1/citizens)")
        channel = body.channel or "window"
    sub, apps, created = await side.desk.submit(
        actor_of(who), citizen, service=body.service, bundle=body.bundle,
        answers=body.answers, materials=body.materials, channel=channel, key=body.key)
    out = submission_out(call, sub, apps)
    out.repeated = not created
    return Reply(out, 201 if created else 200, {"Location": f"/api/v1/submissions/{sub.id}"})


async def list_submissions(call: Call[None, SubmissionQuery]) -> SubmissionList:
    who = call.principal
    desk = onestop(call).desk
    q = call.query
    citizen = q.citizen
    if who.role is Role.CITIZEN:
        if citizen not in (None, who.name):
            raise ApiError(403, "a citizen key sees its own submissions only")
        citizen = who.name

    async def fetch(before: tuple[float, str] | None, n: int
                    ) -> list[tuple[tuple[Submission, list[Application]], float, str]]:
        found = await desk.list_submissions(citizen, status=q.status, limit=n, before=before)
        return [((sub, await desk.applications_of(sub)), at, sub.id) for sub, at in found]

    async def keep(held: tuple[Submission, list[Application]]) -> bool:
        return sees_submission(who, *held)

    found, nxt = await narrowed(fetch, None if unscoped(who) else keep, q.limit,
                                cursor_of(q.cursor))
    return SubmissionList([submission_out(call, sub, apps) for sub, apps in found], nxt)


async def get_submission(call: Call[None, Any]) -> SubmissionOut:
    sub, apps = call.record
    return submission_out(call, sub, apps)


async def list_applications(call: Call[None, ApplicationQuery]) -> ApplicationList:
    who = call.principal
    desk = onestop(call).desk
    q = call.query
    department = q.department
    if who.role is Role.DEPARTMENT or who.scope.department is not None:
        own = who.scope.department
        if own is None:
            raise ApiError(403, "a department key needs a department scope to see applications")
        if department not in (None, own):
            raise ApiError(403, f"a {own} key sees {own}'s applications only")
        department = own
    status = q.status.value if q.status is not None else None
    # A department's queue is one store lookup; an area key's is narrowed record by record.
    narrow = who.scope.department is None and not unscoped(who)
    before = cursor_of(q.cursor)
    if q.overdue:
        # Overdue pages go by the deadline, soonest first; the running queue is read whole.
        late = await desk.list_applications(department=department, status=status,
                                            overdue=True, limit=2**31, before=before)
        if narrow:
            late = [(a, due) for a, due in late if sees_application(who, a)]
        page = late[:q.limit]
        nxt = (cursor_for(page[-1][1], page[-1][0].id) if len(late) > q.limit and page
               else None)
        return ApplicationList([application_out(call, a) for a, _ in page], nxt)

    async def fetch(after: tuple[float, str] | None, n: int
                    ) -> list[tuple[Application, float, str]]:
        found = await desk.list_applications(department=department, status=status,
                                             overdue=False, limit=n, before=after)
        return [(a, at, a.id) for a, at in found]

    async def keep(app: Application) -> bool:
        return sees_application(who, app)

    apps, nxt = await narrowed(fetch, keep if narrow else None, q.limit, before)
    return ApplicationList([application_out(call, a) for a in apps], nxt)


async def get_application(call: Call[None, Any]) -> ApplicationOut:
    return application_out(call, call.record)


async def application_action(call: Call[ApplicationAction, Any]) -> ApplicationOut:
    body = call.body
    app = await onestop(call).desk.act(
        call.record.id, call.path["action"], actor_of(call.principal), reason=body.reason,
        note=body.note, asked=body.asked, provided=body.materials, answers=body.answers)
    return application_out(call, app)


ROUTES = [
    Endpoint("POST", "/api/v1/applications", post_application,
             "Submit a form: a service item or a bundle (one application per item)", SUBMIT,
             Scope.CREATE, kind="submission", body=NewApplication, response=SubmissionOut,
             status=201, also_ok=(200,), errors=(404, 409)),
    Endpoint("GET", "/api/v1/applications", list_applications,
             "A department's queue, newest first; overdue ones soonest due first", QUEUE,
             Scope.LIST, kind="application", query=ApplicationQuery, response=ApplicationList,
             export=Export("applications")),
    Endpoint("GET", "/api/v1/applications/{application_id}", get_application,
             "One application, with its timeline", READ, Scope.RECORD, guard=APPLICATION,
             response=ApplicationOut),
    Endpoint("POST", "/api/v1/applications/{application_id}/actions/{action}",
             application_action,
             "Move an application: accept, need_more, resubmit, approve, reject, issue_result",
             ACT, Scope.RECORD, guard=APPLICATION, body=ApplicationAction, body_required=False,
             response=ApplicationOut, errors=(409,), examples={"action": "accept"}),
    Endpoint("GET", "/api/v1/submissions", list_submissions,
             "Submissions with their combined status, newest first",
             frozenset({Role.CITIZEN, Role.ADMIN, Role.OPERATOR}), Scope.LIST,
             kind="submission", query=SubmissionQuery, response=SubmissionList),
    Endpoint("GET", "/api/v1/submissions/{submission_id}", get_submission,
             "One submission, with its applications", READ, Scope.RECORD, guard=SUBMISSION,
             response=SubmissionOut),
]
