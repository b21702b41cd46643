"""Good/bad reviews (SPEC section 5): the pure rules. No I/O, no "now" of its own.

A citizen rates a finished application, hotline order or incident with one of five grades,
once, and may re-rate it once. A bad grade (dissatisfied or worse) opens two follow-up tasks
for each responsible department: a callback to the citizen within 1 working day (on the
working-hours clock) and a rectification within 15 days. SPEC says "within 15 days", not
working days, so the rectification is counted in calendar days (15 x 24 hours).

A bad re-rating opens follow-ups again only when none of the review's are still open; a good
re-rating closes none (the department still reports what it did).
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Sequence

import msgspec

from cityops.domain.access import Role
from cityops.domain.incidents.workflow import Actor, NotAllowed, Refused
from cityops.domain.tell import Tell
from cityops.domain.workclock import Limit, WorkClock

__all__ = ["Actor", "NotAllowed", "Refused"]


class Grade(enum.StrEnum):
    VERY_SATISFIED = "very_satisfied"
    SATISFIED = "satisfied"
    BASICALLY_SATISFIED = "basically_satisfied"
    DISSATISFIED = "dissatisfied"
    VERY_DISSATISFIED = "very_dissatisfied"


GRADES = tuple(Grade)
GOOD = frozenset({Grade.VERY_SATISFIED, Grade.SATISFIED, Grade.BASICALLY_SATISFIED})
BAD = frozenset({Grade.DISSATISFIED, Grade.VERY_DISSATISFIED})
SUBJECT_KINDS = ("application", "hotline_order", "incident")
RERATES = 1  # after the first rating, this many more
CALLBACK_LIMIT = Limit.parse("1wd")
RECTIFY_DAYS = 15
NO_DEPARTMENT = "service_centre"  # who follows up when the subject names no department
STAFF = frozenset({Role.ADMIN, Role.OPERATOR, Role.DEPARTMENT})


class TaskKind(enum.StrEnum):
    CALLBACK = "callback"
    RECTIFICATION = "rectification"


class Rating(msgspec.Struct, frozen=True, omit_defaults=True):
    grade: Grade
    at: float
    comment: str = ""


class Subject(msgspec.Struct, frozen=True, kw_only=True):
    """What is rated, as the part of the system that owns it describes it."""

    kind: str
    id: str
    finished: bool
    status: str = ""
    departments: list[str] = []  # responsible for it: they follow a bad review up
    # Citizens who may rate it (the applicant, the caller); None: any citizen may.
    parties: frozenset[str] | None = None
    area: str = ""
    title: str = ""


class Review(msgspec.Struct, kw_only=True):
    id: str
    subject_kind: str
    subject_id: str
    citizen_id: str
    departments: list[str]
    area: str = ""
    title: str = ""
    grade: Grade
    comment: str = ""
    rated_at: float
    ratings: list[Rating] = []
    tasks: list[str] = []  # ids of the follow-up tasks opened for it

    @property
    def rerated(self) -> bool:
        return len(self.ratings) > 1

    @property
    def bad(self) -> bool:
        return self.grade in BAD


class Task(msgspec.Struct, kw_only=True):
    id: str
    kind: TaskKind
    review_id: str
    department: str
    subject_kind: str
    subject_id: str
    citizen_id: str
    grade: Grade
    created: float
    due: float
    status: str = "open"  # open, done
    done_at: float | None = None
    done_by: str = ""
    note: str = ""
    overdue: bool = False  # flagged by the scheduler once the due time passed while open

    @property
    def on_time(self) -> bool | None:
        if self.done_at is None:
            return None
        return self.done_at <= self.due


class Rated(msgspec.Struct):
    review: Review
    tasks: list[Task]
    tells: list[Tell]
    created: bool  # the first rating (else a re-rating)


def review_id(subject_kind: str, subject_id: str, citizen_id: str) -> str:
    """Derived, so a retried rating finds the review it made instead of making another."""
    text = f"{subject_kind}\x1f{subject_id}\x1f{citizen_id}"
    return "rv-" + hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def unique_key(subject_kind: str, subject_id: str, citizen_id: str) -> str:
    return f"{subject_kind}:{subject_id}:{citizen_id}"


def check_subject(subject: Subject | None, citizen_id: str) -> Subject:
    if subject is None:
        raise LookupError("no such subject")
    if subject.parties is not None and citizen_id not in subject.parties:
        raise LookupError(f"{subject.kind} {subject.id} is not this citizen's to rate")
    if not subject.finished:
        raise Refused(f"cannot rate {subject.kind} {subject.id}: it is {subject.status or 'open'}"
                      ", and only a finished one may be rated")
    return subject


def rate(held: Review | None, subject: Subject, citizen_id: str, grade: Grade | str,
         comment: str, *, now: float, clock: WorkClock, open_tasks: bool = False) -> Rated:
    """A first rating, or the one re-rating; `open_tasks`: follow-ups of this review are still
    open (a bad re-rating then opens no more)."""
    try:
        grade = Grade(grade)
    except ValueError:
        raise Refused(f"grade {grade!r} is not one of: {', '.join(g.value for g in Grade)}") \
            from None
    check_subject(subject, citizen_id)
    rating = Rating(grade, now, comment)
    if held is None:
        review = Review(
            id=review_id(subject.kind, subject.id, citizen_id), subject_kind=subject.kind,
            subject_id=subject.id, citizen_id=citizen_id,
            departments=sorted(set(subject.departments)) or [NO_DEPARTMENT], area=subject.area,
            title=subject.title, grade=grade, comment=comment, rated_at=now, ratings=[rating])
    else:
        if len(held.ratings) > RERATES:
            raise Refused(f"{subject.kind} {subject.id} was rated and re-rated already: "
                          "a review may be changed once")
        review = msgspec.structs.replace(held, grade=grade, comment=comment, rated_at=now,
                                         ratings=[*held.ratings, rating])
    tasks: list[Task] = []
    tells: list[Tell] = []
    if grade in BAD and not open_tasks:
        callback_due = clock.deadline(now, CALLBACK_LIMIT)
        rectify_due = now + RECTIFY_DAYS * 86_400.0
        n = len(review.tasks)
        for department in review.departments:
            for kind, due in ((TaskKind.CALLBACK, callback_due),
                              (TaskKind.RECTIFICATION, rectify_due)):
                n += 1
                tasks.append(Task(
                    id=f"{review.id}-{n}", kind=kind, review_id=review.id, department=department,
                    subject_kind=subject.kind, subject_id=subject.id, citizen_id=citizen_id,
                    grade=grade, created=now, due=due))
            tells.append(Tell(
                "review.bad", department,
                f"Bad review ({grade.value}) of {subject.kind} {subject.id}",
                "call the citizen back within 1 working day; rectify within 15 days",
                urgency="high", ref=f"{review.id}:{len(review.ratings)}:{department}",
                args={"subject": subject.id}))
        review.tasks = [*review.tasks, *(t.id for t in tasks)]
    return Rated(review, tasks, tells, created=held is None)


def finish_task(task: Task, actor: Actor, now: float, note: str) -> Task:
    """The department reports the callback made or the rectification done."""
    if actor.role not in STAFF:
        raise NotAllowed(f"a {actor.role.value} key may not close review follow-ups")
    if actor.role is Role.DEPARTMENT and actor.scope.department not in (None, task.department):
        raise NotAllowed(f"task {task.id} is {task.department}'s, not "
                         f"{actor.scope.department}'s")
    if task.status == "done":
        raise Refused(f"task {task.id} is done already")
    if not note.strip():
        raise Refused(f"done needs a note: what the {task.kind.value} found or changed")
    return msgspec.structs.replace(task, status="done", done_at=now, note=note.strip(),
                                   done_by=actor.name or actor.key_id)


def flag_overdue(task: Task, now: float) -> tuple[Task, Tell] | None:
    if task.status != "open" or task.overdue or task.due > now:
        return None
    flagged = msgspec.structs.replace(task, overdue=True)
    return flagged, Tell("review.task_overdue", task.department,
                         f"Review {task.kind.value} overdue: {task.subject_kind} "
                         f"{task.subject_id}", urgency="high", ref=f"{task.id}:overdue",
                         args={"subject": task.subject_id,
                               "message": f"review.task_overdue.{task.kind.value}"})


# -- figures ---------------------------------------------------------------------------------

class Figures(msgspec.Struct):
    """One department's reviews in a period: counts per grade, the satisfaction rate (the
    three good grades over all), and how its follow-ups went."""

    department: str
    reviews: int = 0
    grades: dict[str, int] = {}
    satisfied: int = 0
    bad: int = 0
    satisfaction_rate: float | None = None
    rerated: int = 0
    callbacks: int = 0
    callbacks_done: int = 0
    callbacks_on_time: int = 0
    rectifications: int = 0
    rectifications_done: int = 0
    rectifications_on_time: int = 0
    overdue_tasks: int = 0


def figures(reviews: Iterable[Review], tasks: Iterable[Task],
            departments: Sequence[str] = ()) -> list[Figures]:
    """Per department (each review counts for every department responsible for its subject);
    `departments` are listed even with nothing to show."""
    rows: dict[str, Figures] = {d: Figures(d, grades={g.value: 0 for g in Grade})
                                for d in departments}

    def row(department: str) -> Figures:
        if department not in rows:
            rows[department] = Figures(department, grades={g.value: 0 for g in Grade})
        return rows[department]

    for review in reviews:
        for department in review.departments:
            r = row(department)
            r.reviews += 1
            r.grades[review.grade.value] += 1
            r.satisfied += review.grade in GOOD
            r.bad += review.grade in BAD
            r.rerated += review.rerated
    for task in tasks:
        r = row(task.department)
        done = task.status == "done"
        if task.kind is TaskKind.CALLBACK:
            r.callbacks += 1
            r.callbacks_done += done
            r.callbacks_on_time += bool(task.on_time)
        else:
            r.rectifications += 1
            r.rectifications_done += done
            r.rectifications_on_time += bool(task.on_time)
        r.overdue_tasks += task.overdue
    for r in rows.values():
        r.satisfaction_rate = round(r.satisfied / r.reviews, 4) if r.reviews else None
    return sorted(rows.values(), key=lambda r: r.department)
