"""Good/bad reviews and their follow-ups:

    POST /api/v1/reviews                       a citizen rates a finished application, hotline
                                               order or incident (201), or re-rates it once (200)
    GET  /api/v1/reviews?subject_kind=&subject_id=&department=&grade=&cursor=&limit=
    GET  /api/v1/reviews/{id}
    GET  /api/v1/review-tasks?department=&status=&kind=&overdue=&cursor=&limit=
    POST /api/v1/review-tasks/{id}/actions/done {"note"}
    GET  /api/v1/evaluation/reviews?period=    review figures per department

Staff see reviews of what their key covers (a department key its department's, an area key
its area's) with the citizen's phone masked; a citizen sees their own.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from cityops.api.access import principal
from cityops.api.errors import ApiError, json_response
from cityops.api.evaluation import parse_period
from cityops.api.incidents import actor_of
from cityops.api.paging import limit_of
from cityops.api.serve_util import (
    STAFF,
    body_of,
    cursor_for,
    cursor_of,
    flag,
    is_citizen,
    serve_of,
)
from cityops.domain import reviews as rules
from cityops.domain.access import Principal, Role
from cityops.domain.citizens import mask_phone
from cityops.domain.privacy import mask_text
from cityops.domain.reviews import Grade, NotAllowed, Refused, Review, Task, TaskKind
from cityops.serve.reviews import NotFound

EVALUATE = frozenset({Role.ADMIN, Role.OPERATOR, Role.DEPARTMENT, Role.STATION})


class NewReview(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    subject_kind: str
    subject_id: str
    grade: Grade
    comment: str = ""


class DoneBody(msgspec.Struct, forbid_unknown_fields=True):
    note: str = ""


def _sees(who: Principal, departments: list[str], area: str) -> bool:
    if who.scope.department is not None:
        return who.scope.department in departments
    if who.scope.area is not None:
        return bool(area) and area.startswith(who.scope.area)
    return True


async def _phone_of(request: Request, citizen_id: str) -> str:
    citizen = await serve_of(request).citizens.get(citizen_id)
    return citizen.phone if citizen is not None else ""


async def review_view(request: Request, review: Review, who: Principal) -> dict:
    doc = msgspec.to_builtins(review)
    doc["rerated"] = review.rerated
    doc["rerate_left"] = max(0, rules.RERATES + 1 - len(review.ratings))
    doc["bad"] = review.bad
    if is_citizen(who, review.citizen_id):
        return doc
    doc["comment"] = mask_text(review.comment)
    for rating in doc["ratings"]:
        if "comment" in rating:
            rating["comment"] = mask_text(rating["comment"])
    doc["citizen_phone"] = mask_phone(await _phone_of(request, review.citizen_id))
    return doc


async def task_view(request: Request, task: Task, now: float) -> dict:
    doc = msgspec.to_builtins(task)
    doc["note"] = mask_text(task.note)
    doc["overdue"] = task.overdue or (task.status == "open" and task.due <= now)
    # The department calls the citizen through the hotline by account; it needs no number.
    doc["citizen_phone"] = mask_phone(await _phone_of(request, task.citizen_id))
    return doc


async def post_review(request: Request) -> Response:
    who = await principal(request, {Role.CITIZEN})
    side = serve_of(request)
    if not who.name:
        raise ApiError(403, "this citizen key names no citizen: it cannot rate")
    body: NewReview = await body_of(request, NewReview)
    if body.subject_kind not in side.reviews.subjects:
        raise ApiError(400, f"subject_kind {body.subject_kind!r} is not one of: "
                            f"{', '.join(side.reviews.subjects)}")
    if len(body.comment) > 2000:
        raise ApiError(400, "comment is over 2000 characters")
    try:
        rated = await side.reviews.rate(who.name, body.subject_kind, body.subject_id,
                                        body.grade.value, body.comment)
    except NotFound as error:
        raise ApiError(404, str(error)) from None
    except Refused as error:
        raise ApiError(409, error.reason) from None
    doc = await review_view(request, rated.review, who)
    doc["follow_ups_opened"] = [t.id for t in rated.tasks]
    return json_response(doc, 201 if rated.created else 200,
                         {"Location": f"/api/v1/reviews/{rated.review.id}"})


async def list_reviews(request: Request) -> Response:
    who = await principal(request, STAFF | {Role.CITIZEN})
    side = serve_of(request)
    q = request.query_params
    grade = q.get("grade") or None
    if grade is not None and grade not in {g.value for g in Grade}:
        raise ApiError(400, f"grade {grade!r} is not one of: {', '.join(g.value for g in Grade)}")
    kind, subject = q.get("subject_kind") or None, q.get("subject_id") or None
    department = q.get("department") or None
    citizen = who.name if who.role is Role.CITIZEN else None
    if who.role is Role.CITIZEN and not citizen:
        raise ApiError(403, "this citizen key names no citizen")

    def keep(r: Review) -> bool:
        return ((citizen is not None or _sees(who, r.departments, r.area))
                and (kind is None or r.subject_kind == kind)
                and (subject is None or r.subject_id == subject)
                and (department is None or department in r.departments)
                and (grade is None or r.grade.value == grade))

    found, more = await side.reviews.list(citizen=citizen, keep=keep, limit=limit_of(request),
                                          before=cursor_of(q.get("cursor")))
    items = [await review_view(request, r, who) for r in found]
    return json_response({"items": items, "next": cursor_for(*more) if more else None})


async def get_review(request: Request) -> Response:
    who = await principal(request, STAFF | {Role.CITIZEN})
    side = serve_of(request)
    review_id = request.path_params["review_id"]
    try:
        review = await side.reviews.get(review_id)
    except NotFound:
        raise ApiError(404, f"no review {review_id!r}") from None
    if (who.role is Role.CITIZEN and not is_citizen(who, review.citizen_id)) or \
            (who.role is not Role.CITIZEN and not _sees(who, review.departments, review.area)):
        raise ApiError(404, f"no review {review_id!r}")
    return json_response(await review_view(request, review, who))


async def list_tasks(request: Request) -> Response:
    node = request.app.state.node
    who = await principal(request, STAFF)
    side = serve_of(request)
    q = request.query_params
    department = q.get("department") or None
    if who.scope.department is not None:
        if department not in (None, who.scope.department):
            return json_response({"items": [], "next": None})
        department = who.scope.department
    status = q.get("status") or None
    if status is not None and status not in ("open", "done"):
        raise ApiError(400, f"status {status!r} is not open or done")
    kind = q.get("kind") or None
    if kind is not None and kind not in {k.value for k in TaskKind}:
        raise ApiError(400, f"kind {kind!r} is not one of: "
                            f"{', '.join(k.value for k in TaskKind)}")
    overdue = flag(q.get("overdue"), "overdue")
    limit = limit_of(request)
    tasks, more = await side.reviews.list_tasks(department=department, status=status,
                                                limit=limit, before=cursor_of(q.get("cursor")))
    now = node.clock()
    items = []
    for task in tasks:
        view = await task_view(request, task, now)
        if (kind is None or task.kind.value == kind) and \
                (overdue is None or view["overdue"] == overdue):
            items.append(view)
    return json_response({"items": items, "next": cursor_for(*more) if more else None})


async def task_done(request: Request) -> Response:
    node = request.app.state.node
    who = await principal(request, STAFF)
    side = serve_of(request)
    task_id = request.path_params["task_id"]
    body: DoneBody = await body_of(request, DoneBody, empty_ok=True)
    try:
        task = await side.reviews.get_task(task_id)
        if who.scope.department not in (None, task.department):
            raise NotFound(task_id)
        task = await side.reviews.finish_task(task_id, actor_of(who), body.note)
    except NotFound:
        raise ApiError(404, f"no review task {task_id!r}") from None
    except NotAllowed as error:
        raise ApiError(403, str(error)) from None
    except Refused as error:
        raise ApiError(409, error.reason) from None
    return json_response(await task_view(request, task, node.clock()))


async def review_figures(request: Request) -> Response:
    node = request.app.state.node
    who = await principal(request, EVALUATE)
    side = serve_of(request)
    tz = ZoneInfo(node.pack.info.timezone)
    now = dt.datetime.fromtimestamp(node.clock(), tz)
    first, after = parse_period(request.query_params.get("period") or now.strftime("%Y-%m"),
                                tz)
    start = dt.datetime.combine(first, dt.time(), tz).timestamp()
    end = dt.datetime.combine(after, dt.time(), tz).timestamp()
    rows = await side.reviews.figures(start, end, who.scope.area)
    department = request.query_params.get("department") or None
    if who.scope.department is not None:
        department = who.scope.department
    if department is not None:
        rows = [r for r in rows if r.department == department]
    return json_response({
        "period": {"from": first.isoformat(), "to": (after - dt.timedelta(days=1)).isoformat(),
                   "timezone": node.pack.info.timezone},
        "grades": [g.value for g in Grade],
        "items": [msgspec.to_builtins(r) for r in rows],
    })
