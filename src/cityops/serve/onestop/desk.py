"""The one-stop desk: forms, submissions and the applications they fan out to.

Records: a submission (kind "submission", owned by the citizen, its status the combined one,
its unique key the client's idempotency key) and one application per item (kind
"application", owned by the item's department so each department's queue is one lookup, `due`
its legal deadline until the scheduler has flagged it overdue, so each tick's scan asks only for
the ones just gone overdue). Saves are version-checked and retried on a concurrent change;
nothing is overwritten, and an application is flagged once however many nodes scan.

What a move sets off happens after its save: the notices; the licence an approved result
issues, attached at once to sibling applications that were waiting for it; the submission's
combined status; and, when the last result is out, the one result notice (whoever saves that
moment sends it, once).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

from cityops.domain.access import Role
from cityops.domain.citizens import Citizen, mask_id_number, mask_phone
from cityops.domain.onestop.applications import (
    Actor,
    Application,
    Event,
    Notice,
    Outcome,
    Refused,
    Status,
    Submission,
    act,
    can_see,
    combined_status,
    flag_overdue,
    new_application,
    next_due,
    with_licence,
)
from cityops.domain.onestop.catalogue import Bundle, Catalogue, ServiceItem
from cityops.domain.onestop.forms import (
    MergedForm,
    check_answers,
    hand_in,
    material_states,
    merge_form,
    prefilled,
)
from cityops.domain.onestop.licences import Licence, MaterialState, attach_issued, issue_licence
from cityops.domain.tell import Tell
from cityops.domain.workclock import WorkClock
from cityops.serve.notices import tell_all
from cityops.serve.onestop.licences import LicenceBook
from cityops.store.base import DuplicateKey, Record, StaleVersion, Store
from cityops.store.update import RecordDecision, UpdateGaveUp, update_record

log = logging.getLogger(__name__)

APPLICATION = "application"
SUBMISSION = "submission"
RETRIES = 8
# Only these can be overdue: need_more stops the clock, and a decision ends it.
RUNNING = (Status.SUBMITTED.value, Status.ACCEPTED.value)
_app = msgspec.json.Decoder(Application).decode
_sub = msgspec.json.Decoder(Submission).decode


class NotFound(LookupError):
    pass


class FormProblems(ValueError):
    """The form cannot be taken as filled in (HTTP 400); every problem, each naming a field or
    material."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems
        # What the client reads (the route layer answers `reason`, with `detail` beside it).
        more = len(problems) - 1
        self.reason = (f"the form cannot be taken: {problems[0]}"
                       + (f" (and {more} more)" if more > 0 else "")) if problems else ""
        self.detail = problems


class CitizenSource:
    """What the desk needs of the citizen registry."""

    async def get(self, citizen_id: str) -> Citizen | None: ...


class ApplicationDesk:
    def __init__(self, store: Store, catalogue: Catalogue, clock: WorkClock,
                 now: Callable[[], float], citizens: CitizenSource, book: LicenceBook,
                 notifier=None) -> None:
        self.store = store
        self.cat = catalogue
        self.clock = clock
        self.now = now
        self.citizens = citizens
        self.book = book
        self.notifier = notifier
        self.stats = {"submissions": 0, "moves": 0, "retries": 0, "licences_issued": 0,
                      "result_notices": 0, "overdue_flagged": 0}

    # -- forms ---------------------------------------------------------------------------------

    def items_of(self, service: str | None = None, bundle: str | None = None
                 ) -> tuple[list[ServiceItem], Bundle | None, str]:
        """The items one form is for, the bundle if it is one, and the form's title."""
        if bool(service) == bool(bundle):
            raise FormProblems(["name either a service item or a bundle"])
        if service:
            item = self.cat.item(service)
            if item is None:
                raise NotFound(f"no service item {service!r}")
            return [item], None, item.name
        b = self.cat.bundle(bundle or "")
        if b is None:
            raise NotFound(f"no bundle {bundle!r}")
        return self.cat.bundle_items(b), b, b.name

    async def form(self, items: list[ServiceItem], citizen_id: str | None) -> dict[str, Any]:
        """The merged form; for a citizen, filled in from the registry and with every material
        marked attached, shared, awaited or asked (with the reason)."""
        form = merge_form(items)
        citizen = await self.citizens.get(citizen_id) if citizen_id else None
        states: list[MaterialState] | None = None
        if citizen_id:
            held = await self.book.of_holder(citizen_id)
            day = self.clock.local_date(self.now())
            states = material_states(form, items, held, citizen, day, self.cat)
        return form_view(form, items, prefilled(form, citizen), states)

    # -- submitting ----------------------------------------------------------------------------

    async def submit(self, actor: Actor, citizen_id: str, *, service: str | None = None,
                     bundle: str | None = None, answers: Mapping[str, Any] | None = None,
                     materials: Mapping[str, str] | None = None, channel: str = "online",
                     key: str | None = None
                     ) -> tuple[Submission, list[Application], bool]:
        """One form, one submission, one application per item; True when new. With `key`, a
        retry returns what the first try made (and makes what it did not finish)."""
        items, b, title = self.items_of(service, bundle)
        off = next((i for i in items if channel not in i.channels), None)
        if off is not None:
            raise Refused(f"'{off.name}' is not offered through {channel}; it is offered "
                          f"{', '.join(off.channels)}")
        citizen = await self.citizens.get(citizen_id)
        if citizen is None:
            raise Refused(f"citizen {citizen_id} is not in the citizen registry; register "
                          "first")
        unique = f"{citizen_id}:{key}" if key else None
        if unique is not None:
            again = await self._by_key(unique, actor)
            if again is not None:
                return (*again, False)
        now = self.now()
        form = merge_form(items)
        clean, problems = check_answers(form, answers or {}, prefilled(form, citizen))
        held = await self.book.of_holder(citizen_id)
        states = material_states(form, items, held, citizen, self.clock.local_date(now),
                                 self.cat)
        states, more = hand_in(states, materials or {}, {m.material.code for m in form.materials})
        if problems or more:
            raise FormProblems(problems + more)
        token = (hashlib.sha256(unique.encode()).hexdigest() if unique
                 else uuid.uuid4().hex)[:16]
        sub = Submission(
            id=f"sub-{token}", applicant=citizen_id, title=title, items=[i.code for i in items],
            applications=[f"app-{token}-{n}" for n in range(1, len(items) + 1)],
            submitted_at=now, answers=clean, materials=states, channel=channel,
            bundle=b.code if b else "", key=key or "")
        try:
            await self.store.put_record(Record(
                kind=SUBMISSION, id=sub.id, doc=msgspec.json.encode(sub), owner=citizen_id,
                status=sub.status, unique=unique, created=now, updated=now))
        except DuplicateKey:  # the same key, at the same moment
            again = await self._by_key(unique or "", actor)
            if again is None:
                raise
            return (*again, False)
        apps = await self._make_applications(sub, citizen, actor)
        self.stats["submissions"] += 1
        depts = sorted({a.department for a in apps})
        tells = [Tell("application.submitted", a.department, f"[{a.item_name}] {a.id}",
                      f"new application, due {self._when(a.due)}", ref=a.id,
                      args={"item": a.item_name, "application": a.id,
                            **({"due": a.due} if a.due is not None else {})})
                 for a in apps]
        tells += self._to_citizen(citizen, "onestop.submitted", f"{title}: received",
                                  f"{len(apps)} application(s) to {', '.join(depts)}; "
                                  f"reference {sub.id}", sub.id,
                                  args={"count": len(apps), "reference": sub.id})
        await tell_all(self.notifier, tells, now, submission=sub.id)
        return sub, apps, True

    async def _by_key(self, unique: str, actor: Actor
                      ) -> tuple[Submission, list[Application]] | None:
        found = await self.store.find_records(SUBMISSION, unique=unique, limit=1)
        if not found:
            return None
        sub = _sub(found[0].doc)
        citizen = await self.citizens.get(sub.applicant)
        return sub, await self._make_applications(sub, citizen, actor)

    async def _make_applications(self, sub: Submission, citizen: Citizen | None,
                                 actor: Actor) -> list[Application]:
        """The submission's applications: made from its own document, so a retry after a
        crash half-way makes exactly the ones missing."""
        by_code = {s.code: s for s in sub.materials}
        out = []
        for n, (code, app_id) in enumerate(zip(sub.items, sub.applications, strict=True)):
            held = await self.store.get_record(APPLICATION, app_id)
            if held is not None:
                out.append(_app(held.doc))
                continue
            item = self.cat.item(code)
            if item is None:  # taken out of the catalogue since; nothing to make
                continue
            materials = [msgspec.structs.replace(by_code[m.code], required=m.required)
                         for m in item.materials if m.code in by_code]
            app = new_application(
                id=app_id, submission=sub.id, item_code=item.code, item_name=item.name,
                department=item.department, applicant=sub.applicant, now=sub.submitted_at,
                limit=item.limit, clock=self.clock,
                answers={f.code: sub.answers[f.code] for f in item.fields
                         if f.code in sub.answers},
                fields=[f.code for f in item.fields], materials=materials,
                channel=sub.channel, bundle=sub.bundle,
                area=citizen.area if citizen else "", actor=actor)
            try:
                await self.store.put_record(_record(app, sub.submitted_at + n * 1e-6,
                                                    sub.submitted_at))
            except DuplicateKey:
                held = await self.store.get_record(APPLICATION, app_id)
                if held is None:
                    raise
                app = _app(held.doc)
            out.append(app)
        return out

    # -- reading -------------------------------------------------------------------------------

    async def get(self, app_id: str, actor: Actor) -> Application:
        rec = await self.store.get_record(APPLICATION, app_id)
        if rec is None:
            raise NotFound(f"no application {app_id!r}")
        app = _app(rec.doc)
        if not can_see(app, actor):
            raise NotFound(f"no application {app_id!r}")
        return app

    async def submission(self, sub_id: str, actor: Actor
                         ) -> tuple[Submission, list[Application]]:
        rec = await self.store.get_record(SUBMISSION, sub_id)
        if rec is None:
            raise NotFound(f"no submission {sub_id!r}")
        sub = _sub(rec.doc)
        apps = await self.applications_of(sub)
        if not _sees_submission(sub, apps, actor):
            raise NotFound(f"no submission {sub_id!r}")
        return sub, apps

    async def find(self, app_id: str) -> Application | None:
        """The application as stored, for a caller that decides itself who may see it."""
        rec = await self.store.get_record(APPLICATION, app_id)
        return None if rec is None else _app(rec.doc)

    async def find_submission(self, sub_id: str
                              ) -> tuple[Submission, list[Application]] | None:
        """The submission as stored with its applications, for a caller that decides itself
        who may see it."""
        rec = await self.store.get_record(SUBMISSION, sub_id)
        if rec is None:
            return None
        sub = _sub(rec.doc)
        return sub, await self.applications_of(sub)

    async def applications_of(self, sub: Submission) -> list[Application]:
        out = []
        for app_id in sub.applications:
            rec = await self.store.get_record(APPLICATION, app_id)
            if rec is not None:
                out.append(_app(rec.doc))
        return out

    async def list_applications(self, *, department: str | None, status: str | None,
                                overdue: bool, limit: int,
                                before: tuple[float, str] | None
                                ) -> list[tuple[Application, float]]:
        """Newest first, with each one's paging key; overdue ones soonest due first, their
        paging key the deadline (`before` is then the last one's (deadline, id))."""
        if overdue:
            return await self.list_overdue(department=department, status=status, limit=limit,
                                           after=before)
        recs = await self.store.find_records(APPLICATION, owner=department, status=status,
                                             limit=limit, before=before)
        return [(_app(r.doc), r.created) for r in recs]

    async def list_overdue(self, *, department: str | None, status: str | None, limit: int,
                           after: tuple[float, str] | None = None
                           ) -> list[tuple[Application, float]]:
        """Applications past their legal deadline, soonest due first, after `after` (a
        (deadline, id) of the previous page). A flagged application's record no longer has
        a `due` to look it up by, so the running queue is read (submitted and accepted: the
        only states that can be overdue), which is bounded by what departments hold open."""
        now = self.now()
        found: list[tuple[Application, float]] = []
        for state in RUNNING:
            if status is not None and status != state:
                continue
            cursor = None
            while True:
                page = await self.store.find_records(APPLICATION, owner=department,
                                                     status=state, limit=500, before=cursor)
                for rec in page:
                    # A deadline still ahead is the common case: no need to decode those.
                    if rec.due is not None and rec.due >= now:
                        continue
                    app = _app(rec.doc)
                    if app.overdue(now) and app.due is not None:
                        key = (app.due, app.id)
                        if after is None or key > after:
                            found.append((app, app.due))
                if len(page) < 500:
                    break
                cursor = (page[-1].created, page[-1].id)
        found.sort(key=lambda pair: (pair[1], pair[0].id))
        return found[:max(0, limit)]

    async def list_submissions(self, citizen_id: str | None, *, status: str | None,
                               limit: int, before: tuple[float, str] | None
                               ) -> list[tuple[Submission, float]]:
        recs = await self.store.find_records(SUBMISSION, owner=citizen_id, status=status,
                                             limit=limit, before=before)
        return [(_sub(r.doc), r.created) for r in recs]

    # -- deadlines -----------------------------------------------------------------------------

    async def scan_overdue(self, now: float | None = None, limit: int = 500) -> int:
        """Flag the applications whose legal deadline has passed; returns how many were
        flagged. Only records with a `due` are asked for, and flagging clears it."""
        now = self.now() if now is None else now
        flagged = 0
        for rec in await self.store.find_records(APPLICATION, due_before=now, limit=limit):
            try:
                flagged += await self._flag(rec.id, now)
            except NotFound:
                continue
        return flagged

    async def _flag(self, app_id: str, now: float) -> bool:
        def step(rec: Record | None) -> RecordDecision[
                tuple[Record, Application, Outcome | None]]:
            if rec is None:
                raise NotFound(f"no application {app_id!r}")
            app = _app(rec.doc)
            out = flag_overdue(app, now, self.clock)
            if out is None:
                return None, (rec, app, None)
            return _record(out.application, rec.created, self.now()), (rec, app, out)

        try:  # a clash: moved, or flagged by another node, so look again
            rec, app, out = await update_record(self.store, APPLICATION, app_id, step,
                                                tries=RETRIES, on_retry=self._retried)
        except UpdateGaveUp:
            log.warning("application %s kept changing while it was flagged overdue; the next "
                        "tick tries again", app_id)
            return False
        if out is None:
            if rec.due != next_due(app):
                # A record saved with a `due` its application no longer has would come
                # back every tick and crowd out the others; set it right once.
                await self._save_quietly(rec, app)
            return False
        self.stats["overdue_flagged"] += 1
        # The department only, once (the ref makes a repeat a duplicate to a receiver
        # that drops them): the delay is theirs to answer for, not the citizen's.
        tells = [Tell(n.kind, n.recipient, f"[{app.item_name}] {app.id} overdue", n.text,
                      urgency="high", ref=f"{app.id}:overdue",
                      args={"item": app.item_name, "application": app.id,
                            **({"due": out.application.overdue_since}
                               if out.application.overdue_since else {})})
                 for n in out.notices]
        await tell_all(self.notifier, tells, now, application=app.id,
                       submission=app.submission)
        return True

    def _retried(self) -> None:
        self.stats["retries"] += 1

    async def _save_quietly(self, rec: Record, app: Application) -> None:
        try:
            await self.store.put_record(_record(app, rec.created, self.now()),
                                        expect_version=rec.version)
        except StaleVersion:
            pass  # whoever changed it saved it through `_record` too

    # -- moves ---------------------------------------------------------------------------------

    async def act(self, app_id: str, action: str, actor: Actor, *, reason: str = "",
                  note: str = "", asked: list[str] | None = None,
                  provided: Mapping[str, str] | None = None,
                  answers: Mapping[str, Any] | None = None) -> Application:
        async def step(rec: Record | None) -> RecordDecision[
                tuple[Application, Outcome, Licence | None, float]]:
            if rec is None:
                raise NotFound(f"no application {app_id!r}")
            app = _app(rec.doc)
            if not can_see(app, actor):
                raise NotFound(f"no application {app_id!r}")
            now = self.now()
            clean = None
            if action == "resubmit" and answers:
                clean = self._check_resubmitted(app, answers)
            out = act(app, action, actor, now, self.clock, reason=reason, note=note,
                      asked=asked or (), provided=provided, answers=clean)
            new = out.application
            issued: Licence | None = None
            if action == "issue_result" and new.decision == "approved":
                new, issued = await self._issue(new, now)
            return _record(new, rec.created, now), (new, out, issued, now)

        try:
            new, out, issued, now = await update_record(
                self.store, APPLICATION, app_id, step, tries=RETRIES, on_retry=self._retried)
        except UpdateGaveUp:
            raise Refused(f"application {app_id} kept changing; try again") from None
        self.stats["moves"] += 1
        await self._tell(new, out.notices, now)
        if issued is not None:
            await self._siblings(new, issued=issued)
        if action == "reject":
            await self._siblings(new, issued=None)
        await self._refresh(new.submission)
        return new

    def _check_resubmitted(self, app: Application, answers: Mapping[str, Any]
                           ) -> dict[str, Any]:
        item = self.cat.item(app.item)
        if item is None:
            raise Refused(f"item {app.item!r} is no longer in the catalogue; ask the "
                          f"department {app.department}")
        # Only what is given now is checked: the rest was taken at submission, registry
        # facts included.
        form = merge_form([item])
        given = MergedForm(form.items, [f for f in form.fields if f.field.code in answers], [])
        clean, problems = check_answers(given, answers)
        if problems:
            raise FormProblems(problems)
        return clean

    async def _issue(self, app: Application, now: float
                     ) -> tuple[Application, Licence | None]:
        item = self.cat.item(app.item)
        if item is None or item.issues is None:
            return app, None
        lic = issue_licence(application_id=app.id, holder=app.applicant,
                            issuer=app.department, type_code=item.issues.type,
                            type_name=self.cat.licence_name(item.issues.type),
                            valid_years=item.issues.valid_years,
                            day=self.clock.local_date(now), now=now)
        held, new = await self.book.issue(lic)
        if new:
            self.stats["licences_issued"] += 1
        return with_licence(app, held.id, held.number), held

    async def _siblings(self, app: Application, issued: Licence | None) -> None:
        """A licence issued: attached to the siblings awaiting it. An application rejected:
        what its siblings awaited from it is asked of the citizen instead."""
        rec = await self.store.get_record(SUBMISSION, app.submission)
        if rec is None:
            return

        def resolve(orec: Record | None) -> RecordDecision[None]:
            if orec is None:
                return None, None
            changed = self._resolve_pending(_app(orec.doc), app, issued)
            if changed is None:
                return None, None
            return _record(changed, orec.created, self.now()), None

        for other_id in _sub(rec.doc).applications:
            if other_id == app.id:
                continue
            try:
                await update_record(self.store, APPLICATION, other_id, resolve,
                                    tries=RETRIES, on_retry=self._retried)
            except UpdateGaveUp:
                continue  # left as it is, like any sibling a later move looks at again

    def _resolve_pending(self, other: Application, app: Application, issued: Licence | None
                         ) -> Application | None:
        materials, events = [], []
        now = self.now()
        for m in other.materials:
            if m.status == "pending" and issued is not None and m.licence == issued.type:
                m = attach_issued(m, issued, self.cat)
                events.append(Event(at=now, action="material.attached", actor="system",
                                    role="admin", reason=m.reason,
                                    data={"material": m.code, "licence": issued.id}))
            elif m.status == "pending" and issued is None and m.pending_item == app.item:
                m = msgspec.structs.replace(
                    m, status="asked", pending_item="",
                    reason=f"'{app.item_name}' was rejected and will not issue it")
                events.append(Event(at=now, action="material.asked", actor="system",
                                    role="admin", reason=m.reason, data={"material": m.code}))
            materials.append(m)
        if not events:
            return None
        return msgspec.structs.replace(other, materials=materials,
                                       timeline=[*other.timeline, *events])

    async def _refresh(self, sub_id: str) -> None:
        """The combined status saved with the submission; the one result notice when the last
        result is out."""
        async def step(rec: Record | None) -> RecordDecision[
                tuple[Submission, list[Application], float] | None]:
            if rec is None:
                return None, None
            sub = _sub(rec.doc)
            apps = await self.applications_of(sub)
            status = combined_status(a.status for a in apps)
            notify = status == "done" and sub.result_notice_at is None
            if status == sub.status and not notify:
                return None, None
            now = self.now()
            changed = msgspec.structs.replace(
                sub, status=status, result_notice_at=now if notify else sub.result_notice_at)
            write = msgspec.structs.replace(
                rec, doc=msgspec.json.encode(changed), status=status, updated=now)
            return write, (changed, apps, now) if notify else None

        try:
            notice = await update_record(self.store, SUBMISSION, sub_id, step, tries=RETRIES,
                                         on_retry=self._retried)
        except UpdateGaveUp:
            return
        if notice is not None:
            await self._result_notice(*notice)

    async def _result_notice(self, sub: Submission, apps: list[Application], now: float
                             ) -> None:
        parts = []
        for a in apps:
            outcome = a.result.outcome if a.result else a.decision
            number = (f" (No. {a.result.licence_number})"
                      if a.result and a.result.licence_number else "")
            parts.append(f"{a.item_name}: {outcome}{number}")
        citizen = await self.citizens.get(sub.applicant)
        tells = self._to_citizen(citizen, "onestop.result", f"{sub.title}: all done",
                                 "; ".join(parts), sub.id, applicant=sub.applicant,
                                 args={"reference": sub.id})
        self.stats["result_notices"] += 1
        await tell_all(self.notifier, tells, now, submission=sub.id)

    async def _tell(self, app: Application, notices: list[Notice], now: float) -> None:
        if not notices:
            return
        citizen = None
        tells = []
        args: dict[str, str | int | float] = {"item": app.item_name, "application": app.id}
        for n in notices:
            ref = f"{app.id}:{len(app.timeline)}"
            if n.recipient.startswith("citizen:"):
                citizen = citizen or await self.citizens.get(app.applicant)
                tells += self._to_citizen(citizen, n.kind, f"[{app.item_name}] {app.id}",
                                          n.text, ref, applicant=app.applicant, args=args)
            else:
                tells.append(Tell(n.kind, n.recipient, f"[{app.item_name}] {app.id}", n.text,
                                  ref=ref, args=args))
        await tell_all(self.notifier, tells, now, application=app.id)

    @staticmethod
    def _to_citizen(citizen: Citizen | None, kind: str, subject: str, body: str, ref: str,
                    applicant: str = "", args: dict[str, str | int | float] | None = None
                    ) -> list[Tell]:
        # To the phone when the registry has one (an SMS gateway routes it), else to the
        # account, where the citizen portal shows it.
        args = args or {}
        if citizen is not None and citizen.phone:
            return [Tell(kind, citizen.phone, subject, body, sms=True, ref=ref, args=args)]
        who = citizen.id if citizen is not None else applicant
        return [Tell(kind, f"citizen:{who}", subject, body, ref=ref, args=args)] if who else []

    def _when(self, ts: float | None) -> str:
        if ts is None:
            return "-"
        return dt.datetime.fromtimestamp(ts, self.clock.zone).strftime("%Y-%m-%d %H:%M")


def _record(app: Application, created: float, updated: float) -> Record:
    return Record(kind=APPLICATION, id=app.id, doc=msgspec.json.encode(app),
                  owner=app.department, status=app.status.value, due=next_due(app),
                  created=created, updated=updated)


def _sees_submission(sub: Submission, apps: list[Application], actor: Actor) -> bool:
    if actor.role is Role.CITIZEN:
        return actor.name == sub.applicant
    if actor.role is Role.DEPARTMENT:
        return any(a.department == actor.scope.department for a in apps)
    return actor.role in (Role.ADMIN, Role.OPERATOR)


# -- views -------------------------------------------------------------------------------------


def form_view(form: MergedForm, items: list[ServiceItem], values: Mapping[str, Any],
              states: list[MaterialState] | None) -> dict[str, Any]:
    by_code = {s.code: s for s in states or []}
    materials = []
    for m in form.materials:
        view = {**msgspec.to_builtins(m.material), "required": m.required, "items": m.items}
        state = by_code.get(m.material.code)
        if state is not None:
            view.update({k: v for k, v in msgspec.to_builtins(state).items()
                         if k in ("status", "reason", "licence_id", "licence_number",
                                  "valid_until", "pending_item")})
        materials.append(view)
    return {
        "items": [{"code": i.code, "name": i.name, "name_zh": i.name_zh,
                   "department": i.department, "time_limit": i.time_limit,
                   "channels": list(i.channels)} for i in items],
        "fields": [{**msgspec.to_builtins(f.field), "required": f.required, "items": f.items,
                    **({"value": values[f.field.code]} if f.field.code in values else {})}
                   for f in form.fields],
        "materials": materials,
        "asked": [m["code"] for m in materials if m.get("status") == "asked"],
    }


SENSITIVE = {"phone": mask_phone, "id_number": mask_id_number}


def masked_answers(answers: Mapping[str, Any], cat: Catalogue, items: list[str]
                   ) -> dict[str, Any]:
    """Answers as an operator sees them: phone and identity numbers masked."""
    kinds = {f.code: f.type for code in items if (i := cat.item(code)) for f in i.fields}
    out = {}
    for code, value in answers.items():
        mask = SENSITIVE.get(kinds.get(code, ""))
        out[code] = mask(value) if mask is not None and isinstance(value, str) else value
    return out
