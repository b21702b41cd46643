"""Good/bad reviews and their follow-up tasks on the records store.

A review is a record of kind "review" (id derived from subject and citizen, unique key
"<kind>:<subject>:<citizen>", owner the citizen); each follow-up task one of kind "review_task"
(owner the department, status open/done, due while open and not yet flagged overdue).

Whether a subject is finished, who is responsible for it and who may rate it is asked of the
part of the system that owns it, through `subjects`: one async function per subject kind
(`kind -> (id -> Subject | None)`). Hotline orders and incidents are read here; applications
are read loosely from the one-stop service's records (kind "application"), and that side may
register its own function instead.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import msgspec

from cityops.domain import reviews as rules
from cityops.domain.hotline import HotlineOrder
from cityops.domain.hotline import Status as OrderStatus
from cityops.domain.incidents.model import OrderStatus as WorkOrderStatus
from cityops.domain.incidents.model import Status as IncidentStatus
from cityops.domain.reviews import Actor, Refused, Review, Subject, Task
from cityops.domain.workclock import WorkClock
from cityops.serve.notices import tell_all
from cityops.store.base import DuplicateKey, Record, Store
from cityops.store.update import RecordDecision, UpdateGaveUp, update_record

KIND = "review"
TASK_KIND = "review_task"
RETRIES = 5
FINISHED_ORDERS = frozenset({OrderStatus.ANSWERED, OrderStatus.CLOSED})
FINISHED_INCIDENTS = frozenset({IncidentStatus.VERIFIED, IncidentStatus.CLOSED})
# The one-stop service's application statuses that end an application.
FINISHED_APPLICATIONS = frozenset({"result_issued", "rejected", "approved"})

Resolver = Callable[[str], Awaitable[Subject | None]]


class NotFound(LookupError):
    pass


class ReviewService:
    def __init__(self, store: Store, clock: WorkClock, *, now: Callable[[], float] = time.time,
                 notifier=None, citizens=None, departments: set[str] | None = None) -> None:
        self.store = store
        self.clock = clock
        self.now = now
        self.notifier = notifier
        self.citizens = citizens
        self.departments = departments or set()
        self.subjects: dict[str, Resolver] = {
            "hotline_order": self._hotline_order,
            "incident": self._incident,
            "application": self._application,
        }

    # -- subjects ----------------------------------------------------------------------------

    async def _hotline_order(self, number: str) -> Subject | None:
        rec = await self.store.get_record("hotline_order", number)
        if rec is None:
            return None
        order = msgspec.json.decode(rec.doc, type=HotlineOrder)
        return Subject(kind="hotline_order", id=number, status=order.status.value,
                       finished=order.status in FINISHED_ORDERS,
                       departments=[order.department] if order.department else [],
                       parties=frozenset([order.citizen_id] if order.citizen_id else []),
                       area=order.area, title=order.title)

    async def _incident(self, incident_id: str) -> Subject | None:
        inc = await self.store.get_incident(incident_id)
        if inc is None:
            return None
        done = sorted({o.department for o in inc.orders if o.status is WorkOrderStatus.DONE})
        # Incidents are public problems: anyone affected may rate how they were solved.
        return Subject(kind="incident", id=incident_id, status=inc.status.value,
                       finished=inc.status in FINISHED_INCIDENTS,
                       departments=done or list(inc.default_departments),
                       area=inc.areas.village if inc.areas else "", title=inc.title)

    async def _application(self, application_id: str) -> Subject | None:
        rec = await self.store.get_record("application", application_id)
        if rec is None:
            return None
        try:
            doc = msgspec.json.decode(rec.doc)
        except msgspec.DecodeError:
            doc = {}
        doc = doc if isinstance(doc, dict) else {}
        status = rec.status or str(doc.get("status") or "")
        departments = doc.get("departments") or doc.get("department") or []
        if isinstance(departments, str):
            departments = [departments]
        applicant = (doc.get("citizen_id") or doc.get("applicant") or doc.get("applicant_id")
                     or rec.owner)
        return Subject(kind="application", id=application_id, status=status,
                       finished=status in FINISHED_APPLICATIONS,
                       departments=[str(d) for d in departments if d],
                       parties=frozenset([str(applicant)]) if applicant else None,
                       area=str(doc.get("area") or ""),
                       title=str(doc.get("title") or doc.get("item_name") or ""))

    async def subject(self, kind: str, subject_id: str) -> Subject | None:
        resolve = self.subjects.get(kind)
        if resolve is None:
            raise Refused(f"subject kind {kind!r} is not one of: {', '.join(self.subjects)}")
        return await resolve(subject_id)

    # -- rating ------------------------------------------------------------------------------

    async def rate(self, citizen_id: str, subject_kind: str, subject_id: str, grade: str,
                   comment: str = "") -> rules.Rated:
        subject = await self.subject(subject_kind, subject_id)
        try:
            rules.check_subject(subject, citizen_id)
        except LookupError:
            raise NotFound(f"no {subject_kind} {subject_id!r} for this citizen to rate") from None
        rid = rules.review_id(subject_kind, subject_id, citizen_id)

        async def step(rec: Record | None) -> RecordDecision[tuple[rules.Rated, float]]:
            held = None if rec is None else msgspec.json.decode(rec.doc, type=Review)
            open_tasks = held is not None and await self._any_open(held.tasks)
            now = self.now()
            rated = rules.rate(held, subject, citizen_id, grade, comment, now=now,
                               clock=self.clock, open_tasks=open_tasks)
            review = rated.review
            new = Record(kind=KIND, id=review.id, doc=msgspec.json.encode(review),
                         owner=citizen_id, status="bad" if review.bad else "good",
                         unique=rules.unique_key(subject_kind, subject_id, citizen_id),
                         created=rec.created if rec else now, updated=now)
            return new, (rated, now)

        try:  # rated at the same moment from elsewhere: read it again
            rated, now = await update_record(self.store, KIND, rid, step, tries=RETRIES)
        except UpdateGaveUp:
            raise Refused("the review kept changing while it was being saved; "
                          "try again") from None
        for task in rated.tasks:
            try:
                await self.store.put_record(self._task_record(task, now))
            except DuplicateKey:
                pass  # made by an earlier try of this very rating
        await tell_all(self.notifier, rated.tells, now, review=rated.review.id)
        return rated

    async def _any_open(self, task_ids: list[str]) -> bool:
        for task_id in task_ids:
            rec = await self.store.get_record(TASK_KIND, task_id)
            # A task named by the review but not stored yet is being made by the rating that
            # named it, a moment ago: it is as open as can be.
            if rec is None or rec.status == "open":
                return True
        return False

    async def get(self, review_id: str) -> Review:
        rec = await self.store.get_record(KIND, review_id)
        if rec is None:
            raise NotFound(f"no review {review_id!r}")
        return msgspec.json.decode(rec.doc, type=Review)

    # -- tasks -------------------------------------------------------------------------------

    @staticmethod
    def _task_record(task: Task, now: float) -> Record:
        due = task.due if task.status == "open" and not task.overdue else None
        return Record(kind=TASK_KIND, id=task.id, doc=msgspec.json.encode(task),
                      owner=task.department, status=task.status, due=due,
                      created=task.created, updated=now)

    async def get_task(self, task_id: str) -> Task:
        rec = await self.store.get_record(TASK_KIND, task_id)
        if rec is None:
            raise NotFound(f"no review task {task_id!r}")
        return msgspec.json.decode(rec.doc, type=Task)

    async def _save_task(self, task_id: str, change: Callable[[Task, float], Task | None]
                         ) -> tuple[Task, bool]:
        def step(rec: Record | None) -> RecordDecision[tuple[Task, bool]]:
            if rec is None:
                raise NotFound(f"no review task {task_id!r}")
            task = msgspec.json.decode(rec.doc, type=Task)
            now = self.now()
            changed = change(task, now)
            if changed is None:
                return None, (task, False)
            return self._task_record(changed, now), (changed, True)

        try:
            return await update_record(self.store, TASK_KIND, task_id, step, tries=RETRIES)
        except UpdateGaveUp:
            raise Refused(f"task {task_id} kept changing; try again") from None

    async def finish_task(self, task_id: str, actor: Actor, note: str) -> Task:
        task, _ = await self._save_task(
            task_id, lambda task, now: rules.finish_task(task, actor, now, note))
        return task

    async def list_tasks(self, *, department: str | None = None, status: str | None = None,
                         limit: int = 100, before: tuple[float, str] | None = None
                         ) -> tuple[list[Task], tuple[float, str] | None]:
        page = await self.store.find_records(TASK_KIND, owner=department, status=status,
                                             limit=limit + 1, before=before)
        more = len(page) > limit
        page = page[:limit]
        tasks = [msgspec.json.decode(r.doc, type=Task) for r in page]
        return tasks, ((page[-1].created, page[-1].id) if more and page else None)

    async def scan_overdue(self, now: float | None = None, limit: int = 500) -> int:
        now = self.now() if now is None else now
        flagged = 0
        for rec in await self.store.find_records(TASK_KIND, due_before=now, limit=limit):
            tells = []

            def flag(task: Task, at: float) -> Task | None:
                out = rules.flag_overdue(task, now)
                tells[:] = [out[1]] if out else []  # noqa: B023 (flag runs within this iteration)
                return out[0] if out else None

            try:
                _, changed = await self._save_task(rec.id, flag)
            except (NotFound, Refused):
                continue
            if changed:
                flagged += 1
                await tell_all(self.notifier, tells, now, task=rec.id)
        return flagged

    # -- listing and figures -----------------------------------------------------------------

    async def all_of(self, kind: str, *, owner: str | None = None, max_rows: int = 100_000
                     ) -> list[Record]:
        out: list[Record] = []
        cursor = None
        while len(out) < max_rows:
            page = await self.store.find_records(kind, owner=owner, limit=500, before=cursor)
            out.extend(page)
            if len(page) < 500:
                break
            cursor = (page[-1].created, page[-1].id)
        return out

    async def list(self, *, citizen: str | None = None,
                   keep: Callable[[Review], bool] = lambda r: True, limit: int = 100,
                   before: tuple[float, str] | None = None
                   ) -> tuple[list[Review], tuple[float, str] | None]:
        found: list[Review] = []
        cursor = before
        while True:
            page = await self.store.find_records(KIND, owner=citizen, limit=200, before=cursor)
            for rec in page:
                cursor = (rec.created, rec.id)
                review = msgspec.json.decode(rec.doc, type=Review)
                if keep(review):
                    found.append(review)
                    if len(found) == limit:
                        return found, cursor
            if len(page) < 200:
                return found, None

    async def figures(self, start: float, end: float, area: str | None = None
                      ) -> list[rules.Figures]:
        """Reviews whose current rating was given in [start, end), and the follow-up tasks
        opened in it, per department; `area`: only reviews of subjects in that area."""
        reviews = [msgspec.json.decode(r.doc, type=Review) for r in await self.all_of(KIND)]
        tasks = [msgspec.json.decode(r.doc, type=Task) for r in await self.all_of(TASK_KIND)]
        if area is not None:
            reviews = [r for r in reviews if r.area.startswith(area) and r.area]
            kept = {r.id for r in reviews}
            tasks = [t for t in tasks if t.review_id in kept]
        return rules.figures([r for r in reviews if start <= r.rated_at < end],
                             [t for t in tasks if start <= t.created < end],
                             sorted(self.departments))
