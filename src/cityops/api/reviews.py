"""Good/bad reviews and their follow-ups:

    POST /api/v1/reviews                       a citizen rates a finished application, hotline
                                               order or incident (201), or re-rates it once (200)
    GET  /api/v1/reviews?subject_kind=&subject_id=&department=&grade=&cursor=&limit=
    GET  /api/v1/reviews/{id}
    GET  /api/v1/review-tasks?department=&status=&kind=&overdue=&cursor=&limit=
    POST /api/v1/review-tasks/{id}/actions/done {"note"}
    GET  /api/v1/evaluation/reviews?period=    review figures per department

Staff see reviews of what their key covers (a department key its department's, an area key
its area's) with the citizen's phone masked; a citizen sees their own. A follow-up task is its
department's; an area key reaches it through the area of the review it follows up, as stored.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, get_args
from zoneinfo import ZoneInfo

import msgspec

from cityops.api.errors import ApiError
from cityops.api.evaluation import parse_period
from cityops.api.route import Call, Endpoint, Guard, NoQuery, Reply, Scope, errors_map
from cityops.api.serve_util import (
    STAFF,
    Code,
    Cursor,
    Limit,
    Note,
    actor_of,
    cursor_for,
    cursor_of,
    in_area_scope,
    is_citizen,
    serve_of,
)
from cityops.domain import reviews as rules
from cityops.domain.access import Principal, Role
from cityops.domain.citizens import mask_phone
from cityops.domain.privacy import mask_text
from cityops.domain.reviews import (
    Figures,
    Grade,
    NotAllowed,
    Rating,
    Refused,
    Review,
    Task,
    TaskKind,
)
from cityops.serve.reviews import NotFound

EVALUATE = frozenset({Role.ADMIN, Role.OPERATOR, Role.DEPARTMENT, Role.STATION})
UNSET = msgspec.UNSET
Unset = msgspec.UnsetType

errors_map({NotFound: 404, Refused: 409, NotAllowed: 403})

SubjectKind = Literal["application", "hotline_order", "incident"]
assert set(get_args(SubjectKind)) == set(rules.SUBJECT_KINDS)


class NewReview(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    subject_kind: SubjectKind
    subject_id: Code
    grade: Grade
    comment: Annotated[str, msgspec.Meta(max_length=2000)] = ""


class DoneBody(msgspec.Struct, forbid_unknown_fields=True):
    note: Note = ""


class ReviewList(msgspec.Struct):
    subject_kind: SubjectKind | None = None
    subject_id: Code | None = None
    department: Code | None = None
    grade: Grade | None = None
    cursor: Cursor | None = None
    limit: Limit = 100


class TaskList(msgspec.Struct):
    department: Code | None = None
    status: Literal["open", "done"] | None = None
    kind: TaskKind | None = None
    overdue: bool | None = None
    cursor: Cursor | None = None
    limit: Limit = 100


class FiguresQuery(msgspec.Struct):
    period: Annotated[str, msgspec.Meta(
        max_length=40, description="2026, 2026-11, 2026-W48, 2026-11-23 or "
                                   "2026-11-01..2026-11-30; this month if not given")] | None = None
    department: Code | None = None


class ReviewView(msgspec.Struct, kw_only=True):
    id: str
    subject_kind: str
    subject_id: str
    citizen_id: str
    departments: list[str]
    area: str
    title: str
    grade: Grade
    comment: str
    rated_at: float
    ratings: list[Rating]
    tasks: list[str]
    rerated: bool
    rerate_left: int
    bad: bool
    citizen_phone: str | Unset = UNSET  # staff: the rater's phone, masked
    follow_ups_opened: list[str] | Unset = UNSET  # the answer of a rating


class ReviewPage(msgspec.Struct):
    items: list[ReviewView]
    next: str | None


class TaskView(Task, kw_only=True):
    citizen_phone: str  # masked: the department calls the citizen back through the hotline


class TaskPage(msgspec.Struct):
    items: list[TaskView]
    next: str | None


class Period(msgspec.Struct):
    from_: str = msgspec.field(name="from")
    to: str
    timezone: str


class ReviewFigures(msgspec.Struct):
    period: Period
    grades: list[str]
    items: list[Figures]


def _sees(who: Principal, departments: list[str], area: str) -> bool:
    if who.scope.department is not None:
        return who.scope.department in departments
    return in_area_scope(who, area)


async def _phone_of(call: Call[Any, Any], citizen_id: str) -> str:
    citizen = await serve_of(call.request).citizens.get(citizen_id)
    return citizen.phone if citizen is not None else ""


async def review_view(call: Call[Any, Any], review: Review) -> ReviewView:
    view = ReviewView(
        id=review.id, subject_kind=review.subject_kind, subject_id=review.subject_id,
        citizen_id=review.citizen_id, departments=review.departments, area=review.area,
        title=review.title, grade=review.grade, comment=review.comment,
        rated_at=review.rated_at, ratings=review.ratings, tasks=review.tasks,
        rerated=review.rerated, rerate_left=max(0, rules.RERATES + 1 - len(review.ratings)),
        bad=review.bad)
    if is_citizen(call.principal, review.citizen_id):
        return view
    view.comment = mask_text(review.comment)
    view.ratings = [msgspec.structs.replace(r, comment=mask_text(r.comment))
                    for r in review.ratings]
    view.citizen_phone = mask_phone(await _phone_of(call, review.citizen_id))
    return view


async def task_view(call: Call[Any, Any], task: Task, now: float) -> TaskView:
    doc = msgspec.structs.asdict(task)
    doc["note"] = mask_text(task.note)
    doc["overdue"] = task.overdue or (task.status == "open" and task.due <= now)
    return TaskView(**doc, citizen_phone=mask_phone(await _phone_of(call, task.citizen_id)))


async def load_review(call: Call[Any, Any]) -> Review | None:
    try:
        return await serve_of(call.request).reviews.get(call.path["review_id"])
    except NotFound:
        return None


def sees_review(call: Call[Any, Any], review: Review) -> bool:
    who = call.principal
    if who.role is Role.CITIZEN:
        return is_citizen(who, review.citizen_id)
    return _sees(who, review.departments, review.area)


REVIEW = Guard("review", "review_id", load_review, sees_review)


class _Areas:
    """The area of each task's review, read once per call however many tasks follow it up."""

    def __init__(self, call: Call[Any, Any]) -> None:
        self.reviews = serve_of(call.request).reviews
        self.known: dict[str, str | None] = {}

    async def of(self, task: Task) -> str | None:
        if task.review_id not in self.known:
            try:
                self.known[task.review_id] = (await self.reviews.get(task.review_id)).area
            except NotFound:
                self.known[task.review_id] = None
        return self.known[task.review_id]


async def _sees_task(who: Principal, task: Task, areas: _Areas) -> bool:
    if who.scope.department is not None:
        return task.department == who.scope.department
    if who.scope.area is None:
        return True
    area = await areas.of(task)
    return area is not None and in_area_scope(who, area)


async def load_task(call: Call[Any, Any]) -> Task | None:
    try:
        return await serve_of(call.request).reviews.get_task(call.path["task_id"])
    except NotFound:
        return None


async def sees_task(call: Call[Any, Any], task: Task) -> bool:
    return await _sees_task(call.principal, task, _Areas(call))


TASK = Guard("review_task", "task_id", load_task, sees_task)


async def post_review(call: Call[NewReview, NoQuery]) -> Reply:
    who = call.principal
    if not who.name:
        raise ApiError(403, "this citizen key names no citizen: it cannot rate")
    body = call.body
    rated = await serve_of(call.request).reviews.rate(
        who.name, body.subject_kind, body.subject_id, body.grade.value, body.comment)
    view = await review_view(call, rated.review)
    view.follow_ups_opened = [t.id for t in rated.tasks]
    return Reply(view, 201 if rated.created else 200,
                 {"Location": f"/api/v1/reviews/{rated.review.id}"})


async def list_reviews(call: Call[None, ReviewList]) -> ReviewPage:
    who = call.principal
    q = call.query
    citizen = who.name if who.role is Role.CITIZEN else None
    if who.role is Role.CITIZEN and not citizen:
        raise ApiError(403, "this citizen key names no citizen")

    def keep(r: Review) -> bool:
        return ((citizen is not None or _sees(who, r.departments, r.area))
                and (q.subject_kind is None or r.subject_kind == q.subject_kind)
                and (q.subject_id is None or r.subject_id == q.subject_id)
                and (q.department is None or q.department in r.departments)
                and (q.grade is None or r.grade is q.grade))

    found, more = await serve_of(call.request).reviews.list(
        citizen=citizen, keep=keep, limit=q.limit, before=cursor_of(q.cursor))
    return ReviewPage([await review_view(call, r) for r in found],
                      cursor_for(*more) if more else None)


async def get_review(call: Call[None, NoQuery]) -> ReviewView:
    return await review_view(call, call.record)


async def list_tasks(call: Call[None, TaskList]) -> TaskPage:
    who = call.principal
    q = call.query
    department = q.department
    if who.scope.department is not None:
        if department not in (None, who.scope.department):
            return TaskPage([], None)
        department = who.scope.department
    tasks, more = await serve_of(call.request).reviews.list_tasks(
        department=department, status=q.status, limit=q.limit, before=cursor_of(q.cursor))
    now = call.node.clock()
    areas = _Areas(call)
    items = []
    for task in tasks:
        if not await _sees_task(who, task, areas):
            continue
        view = await task_view(call, task, now)
        if (q.kind is None or task.kind is q.kind) and \
                (q.overdue is None or view.overdue == q.overdue):
            items.append(view)
    return TaskPage(items, cursor_for(*more) if more else None)


async def task_done(call: Call[DoneBody, NoQuery]) -> TaskView:
    task = await serve_of(call.request).reviews.finish_task(
        call.record.id, actor_of(call.principal), call.body.note)
    return await task_view(call, task, call.node.clock())


async def review_figures(call: Call[None, FiguresQuery]) -> ReviewFigures:
    node = call.node
    who = call.principal
    tz = ZoneInfo(node.pack.info.timezone)
    now = dt.datetime.fromtimestamp(node.clock(), tz)
    first, after = parse_period(call.query.period or now.strftime("%Y-%m"), tz)
    start = dt.datetime.combine(first, dt.time(), tz).timestamp()
    end = dt.datetime.combine(after, dt.time(), tz).timestamp()
    rows = await serve_of(call.request).reviews.figures(start, end, who.scope.area)
    department = call.query.department
    if who.scope.department is not None:
        department = who.scope.department
    if department is not None:
        rows = [r for r in rows if r.department == department]
    return ReviewFigures(
        Period(first.isoformat(), (after - dt.timedelta(days=1)).isoformat(),
               node.pack.info.timezone),
        [g.value for g in Grade], rows)


ROUTES = [
    Endpoint("POST", "/api/v1/reviews", post_review,
             "Rate a finished application, hotline order or incident (re-rate once: 200)",
             frozenset({Role.CITIZEN}), Scope.CREATE, kind="review", body=NewReview,
             response=ReviewView, status=201, also_ok=(200,), errors=(409,)),
    Endpoint("GET", "/api/v1/reviews", list_reviews,
             "Reviews the key covers (a citizen: their own), newest first",
             STAFF | {Role.CITIZEN}, Scope.LIST, kind="review", query=ReviewList,
             response=ReviewPage),
    Endpoint("GET", "/api/v1/reviews/{review_id}", get_review, "One review",
             STAFF | {Role.CITIZEN}, Scope.RECORD, guard=REVIEW, response=ReviewView),
    Endpoint("GET", "/api/v1/review-tasks", list_tasks,
             "Follow-ups of bad reviews the key covers", STAFF, Scope.LIST,
             kind="review_task", query=TaskList, response=TaskPage),
    Endpoint("POST", "/api/v1/review-tasks/{task_id}/actions/done", task_done,
             "Report a follow-up done, with a note of what it found or changed", STAFF,
             Scope.RECORD, guard=TASK, body=DoneBody, body_required=False,
             response=TaskView, errors=(409,)),
    Endpoint("GET", "/api/v1/evaluation/reviews", review_figures,
             "Review figures per department in a period", EVALUATE, Scope.LIST,
             kind="review", query=FiguresQuery, response=ReviewFigures),
]
