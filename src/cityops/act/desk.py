"""The incident desk: where reports become cases and every move on a case is made.

It reads the case, lets the domain workflow decide (`cityops.domain.incidents.workflow`),
saves the result with an optimistic version check (a concurrent move makes it read again and
retry, never overwrite), then hands the notices to the notifier and the change to the bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence

import msgspec

from cityops.act.staff import StaffBoard
from cityops.bus.messages import IncidentChange
from cityops.bus.subjects import INCIDENTS
from cityops.domain.city import AreaCodes
from cityops.domain.geo import CityMap
from cityops.domain.incidents.categories import URGENCIES, Category
from cityops.domain.incidents.merge import merge_target, related_target, search_cells
from cityops.domain.incidents.model import Incident, Report, WorkOrder
from cityops.domain.incidents.workflow import (
    SYSTEM,
    Actor,
    Notice,
    Outcome,
    OutOfScope,
    Refused,
    Rules,
)
from cityops.notify.base import Notification, Notifier, NotifyError, notification_id
from cityops.store.base import DuplicateKey, StaleVersion, Store
from cityops.store.record_rows import Record
from cityops.store.update import UpdateGaveUp, update_incident

log = logging.getLogger(__name__)

RETRIES = 5
GROUP_RETRIES = 20  # a group's case is where every node's alerts of the group land
GROUP_KIND = "incident_group"  # the record naming an alert group's case
DEFAULT_GROUP_WITHIN_S = 600.0
# How far a related category's case is looked for when the reports name the same device or
# component: they stand at it, so a street's width or two (or the group's within_m if wider).
RELATED_SEARCH_M = 250.0
NOTIFY_URGENCY = {"low": "low", "normal": "normal", "high": "high", "urgent": "critical"}


def _facts(inc: Incident, n: Notice, order: WorkOrder | None) -> dict[str, object]:
    facts: dict[str, object] = {"category": inc.category, "title": inc.title}
    if order is not None:
        facts["department"] = order.department
        # The deadline the reader must meet: to acknowledge an offer, to accept a new order,
        # else to finish.
        due = (order.offer.ack_due if n.kind == "order.offered" and order.offer is not None
               else order.accept_due if n.kind == "order.dispatched" else order.finish_due)
        if due is not None:
            facts["due"] = due
    if n.text and n.kind not in ("order.dispatched", "order.offered"):
        facts["reason"] = n.text
    return facts


class ReportResult(msgspec.Struct, frozen=True):
    incident: Incident
    merged: bool  # joined an open case instead of opening one
    repeated: bool = False  # this report was already filed (a retry): nothing changed


class NotFound(LookupError):
    pass


def incident_id_for(report_key: str) -> str:
    """Deterministic: the same first report always names the same case, so a redelivered
    alert or a retried request can never open a second one."""
    return "inc-" + hashlib.blake2b(report_key.encode(), digest_size=6).hexdigest()


def group_case_id(group: str, previous: str) -> str:
    """The case an alert group opens after `previous` (its last case, or ""): everyone
    filing the group's alerts names it alike, so only one of them can open it."""
    return "inc-" + hashlib.blake2b(f"group|{group}|{previous}".encode(),
                                    digest_size=6).hexdigest()


def group_record_id(group: str) -> str:
    return "grp-" + hashlib.blake2b(group.encode(), digest_size=10).hexdigest()


def _pointed(pointer: Record) -> str:
    case: str = msgspec.json.decode(pointer.doc)["case"]
    return case


def _grouped_reason(case: Incident, report: Report, areas: AreaCodes | None) -> str:
    rule = report.data.get("rule") or "its rule"
    where = areas or case.areas
    place = f" in {where.village}" if where is not None else ""
    n = case.grouped
    return f"grouped with {n} alert{'s' if n != 1 else ''} of {rule}{place}"


class IncidentDesk:
    def __init__(
        self,
        store: Store,
        rules: Rules,
        notifier: Notifier,
        *,
        city: CityMap | None = None,
        bus=None,
        staff: StaffBoard | None = None,
        clock: Callable[[], float] = time.time,
        ack_timeout_s: float = 90.0,
    ) -> None:
        self.store = store
        self.rules = rules
        self.notifier = notifier
        self.city = city
        self.bus = bus
        self.staff = staff
        self.clock = clock
        self.ack_timeout_s = ack_timeout_s
        self.stats = {"reports": 0, "merged": 0, "repeated": 0, "created": 0, "moves": 0,
                      "retries": 0, "escalations": 0, "notices": 0, "notify_refused": 0,
                      "grouped": 0, "related": 0, "split": 0}
        self.storm = None  # the storm guard (cityops.act.storm), set by the act side
        self._group_locks: dict[str, list] = {}  # group key -> [lock, users]

    # -- intake ------------------------------------------------------------------------------

    async def async_report(
        self,
        report: Report,
        category_code: str,
        *,
        actor: Actor = SYSTEM,
        title: str = "",
        titles: Mapping[str, str] | None = None,
        description: str = "",
        severity: str = "",
        alert_id: str | None = None,
        departments: Sequence[str] | None = None,
        urgency: str | None = None,
        auto_register: bool | None = None,
        areas: AreaCodes | None = None,
    ) -> ReportResult:
        """File a report: merged into an open case of the same category close by (or of a
        related category, about the same component), or a new case (registered and
        dispatched at once when the category or the alert says so); `titles` translates
        `title` (see `Rules.open_incident`). A report carrying an
        alert group (`data.group`, see `AlertIntake`) joins its group's case instead while
        that is recent enough."""
        self.stats["reports"] += 1
        known = await self.store.incident_of_report(report.key)
        if known is not None:
            self.stats["repeated"] += 1
            found = await self.store.get_incident(known)
            return ReportResult(found, merged=False, repeated=True)
        category = self.rules.categories.resolve(
            category_code, departments=list(departments or []), urgency=urgency)
        # What it was filed as: what it becomes again if it is split out of a case.
        report = msgspec.structs.replace(report, category=category.code)
        cell = None
        if report.lat is not None and report.lon is not None and self.city is not None:
            if areas is None:
                areas = self.city.resolve(report.lat, report.lon)
            cell = self.city.cell_of(report.lat, report.lon)
        group = report.data.get("group") if actor is SYSTEM else None
        group = group if isinstance(group, str) and group else ""
        if not group:
            return await self._file(report, category, actor, title, titles, description,
                                    severity, alert_id, auto_register, urgency, areas, cell, "")
        # A group's alerts all land on one case: filed here one at a time, they do not
        # spend their retries on each other's version bumps (another node's filings still
        # can; the version check and the group record keep that right).
        async with self._group_lock(group):
            return await self._file(report, category, actor, title, titles, description,
                                    severity, alert_id, auto_register, urgency, areas, cell,
                                    group)

    @contextlib.asynccontextmanager
    async def _group_lock(self, group: str) -> AsyncIterator[None]:
        entry = self._group_locks.setdefault(group, [asyncio.Lock(), 0])
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if not entry[1]:
                del self._group_locks[group]

    async def _file(self, report: Report, category: Category, actor: Actor, title: str,
                    titles: Mapping[str, str] | None, description: str, severity: str,
                    alert_id: str | None,
                    auto_register: bool | None, urgency: str | None, areas: AreaCodes | None,
                    cell: str | None, group: str) -> ReportResult:
        tries = GROUP_RETRIES if group else RETRIES
        for attempt in range(tries):
            try:
                pointer: Record | None = None
                new_id = incident_id_for(report.key)
                if group:
                    pointer, case = await self._group_case(group)
                    if case is not None and self._joins_group(case, report, actor):
                        out = self.rules.merge(case, report, grouped=True,
                                               reason=_grouped_reason(case, report, areas))
                        saved = await self._save(out, case.version, [report])
                        self.stats["merged"] += 1
                        self.stats["grouped"] += 1
                        return ReportResult(saved, merged=True)
                    if pointer is not None and case is None:
                        # The group's next case is named but not saved: its opener is under
                        # way, or died first. Opening it under that name is safe either way.
                        new_id = _pointed(pointer)
                    else:
                        new_id = group_case_id(group, _pointed(pointer) if pointer else "")
                found = await self._merge_target(report, category, actor)
                if found is not None:
                    target, reason = found
                    if group:
                        await self._point(group, pointer, target.id, report.at)
                    out = self.rules.merge(target, report, reason=reason, grouped=bool(group))
                    saved = await self._save(out, target.version, [report])
                    self.stats["merged"] += 1
                    if reason:
                        self.stats["related"] += 1
                    return ReportResult(saved, merged=True)
                if group and (pointer is None or _pointed(pointer) != new_id):
                    await self._point(group, pointer, new_id, report.at)
                out = self.rules.open_incident(
                    new_id, report, category, title=title, titles=titles, actor=actor,
                    areas=areas, cell=cell, description=description, severity=severity,
                    alert_id=alert_id, group=group)
                if auto_register if auto_register is not None else category.auto_register:
                    # Too many of these in one area lately: held for a supervisor instead.
                    held = None if self.storm is None else await self.storm.hold(
                        report, category, out.incident, urgency)
                    if held is not None:
                        return held
                    out = self._chain(out, "register", report.at)
                    out = self._chain(out, "dispatch", report.at)
                saved = await self._save(out, None, [report])
                self.stats["created"] += 1
                return ReportResult(saved, merged=False)
            except (StaleVersion, DuplicateKey):
                self.stats["retries"] += 1
                known = await self.store.incident_of_report(report.key)
                if known is not None:  # filed meanwhile by a concurrent delivery
                    self.stats["repeated"] += 1
                    return ReportResult(await self.store.get_incident(known), False, True)
                if group:
                    # Another node files the same group's alerts: step aside a moment, a
                    # little longer each time, so the two stop landing on one version.
                    await asyncio.sleep(random.uniform(0, 0.002) * (attempt + 1))
        raise Refused(f"report {report.key} could not be filed: the case kept changing")

    # -- alert groups ------------------------------------------------------------------------
    # A group's case is named by a small record (kind GROUP_KIND, one per group key) that
    # says which case the group's alerts join now. It changes only when the group starts a
    # new case, by a version-checked write, and the new case's id follows from the group and
    # the case before it: two lanes or two nodes filing the group's alerts at once agree on
    # the name, one of them opens the case and the other's save is refused and joins it.

    async def _group_case(self, group: str) -> tuple[Record | None, Incident | None]:
        pointer = await self.store.get_record(GROUP_KIND, group_record_id(group))
        if pointer is None:
            return None, None
        return pointer, await self.store.get_incident(_pointed(pointer))

    def _joins_group(self, case: Incident, report: Report, actor: Actor) -> bool:
        within = report.data.get("group_within_s", DEFAULT_GROUP_WITHIN_S)
        within = float(within) if isinstance(within, int | float) else DEFAULT_GROUP_WITHIN_S
        last = case.group_at if case.group_at is not None else case.last_report_at
        return case.is_open and report.at - (last or case.reported_at) <= within \
            and self._seen_by(case, actor)

    async def _point(self, group: str, pointer: Record | None, case_id: str, now: float) -> None:
        """Name the group's case; StaleVersion or DuplicateKey when another filer moved it
        first (the caller reads it again)."""
        doc = msgspec.json.encode({"group": group, "case": case_id})
        if pointer is None:
            await self.store.put_record(Record(kind=GROUP_KIND, id=group_record_id(group),
                                               doc=doc, created=now, updated=now))
        else:
            await self.store.put_record(msgspec.structs.replace(pointer, doc=doc, updated=now),
                                        expect_version=pointer.version)

    def _chain(self, out: Outcome, action: str, now: float) -> Outcome:
        nxt = self.rules.act(out.incident, action, SYSTEM, now)
        return Outcome(nxt.incident, out.events + nxt.events, out.notices + nxt.notices)

    async def _merge_target(self, report: Report, category: Category,
                            actor: Actor) -> tuple[Incident, str] | None:
        """The open case the report joins, and why when that is not plain: a case of its own
        category close by and recent, else one of a related category about the same
        component (never a less urgent one: the report would lose its urgency)."""
        if report.lat is None or report.lon is None or self.city is None:
            return None
        if category.merge_radius_m > 0:
            cells = search_cells(report.lat, report.lon, self.city.h3_resolution,
                                 category.merge_radius_m)
            candidates = await self.store.open_incidents_in_cells(
                category.code, cells, report.at - category.merge_window_s)
            # A scoped key's report near its area's edge would otherwise join (and answer
            # with) the neighbour's case, which that key may neither see nor change.
            candidates = [c for c in candidates if self._seen_by(c, actor)]
            same = merge_target(candidates, report.lat, report.lon, report.at,
                                radius_m=category.merge_radius_m,
                                window_s=category.merge_window_s)
            if same is not None:
                return same, ""
        rule = report.data.get("rule")
        rank = URGENCIES.index(category.urgency) if category.urgency in URGENCIES else 1
        for group, others in self.rules.categories.related_to(category.code):
            if not group.takes(rule if isinstance(rule, str) else None):
                continue
            radius = max(group.same.within_m, RELATED_SEARCH_M)
            cells = search_cells(report.lat, report.lon, self.city.h3_resolution, radius)
            found: list[Incident] = []
            for other in others:
                if URGENCIES.index(other.urgency) < rank:
                    continue
                found += await self.store.open_incidents_in_cells(
                    other.code, cells, report.at - category.merge_window_s)
            found = [c for c in found if self._seen_by(c, actor)]
            hit = related_target(found, report, group, window_s=category.merge_window_s)
            if hit is not None:
                return hit
        return None

    def _seen_by(self, incident: Incident, actor: Actor) -> bool:
        try:
            self.rules.check_scope(incident, actor)
        except OutOfScope:
            return False
        return True

    # -- moves ---------------------------------------------------------------------------------

    async def get(self, incident_id: str) -> Incident:
        found = await self.store.get_incident(incident_id)
        if found is None:
            raise NotFound(f"incident {incident_id} does not exist")
        return found

    async def async_act(self, incident_id: str, action: str, actor: Actor, **args) -> Incident:
        return await self._move(incident_id, lambda inc, now: self.rules.act(
            inc, action, actor, now, **args))

    async def async_act_on_order(self, order_id: str, action: str, actor: Actor,
                                 **args) -> Incident:
        incident_id = order_id.rsplit("-", 1)[0]
        if action == "assign":
            return await self._move(incident_id, lambda inc, now: self._assign(
                inc, order_id, actor, now, args.get("staff_id")))
        return await self._move(incident_id, lambda inc, now: self.rules.act_on_order(
            inc, order_id, action, actor, now, **args))

    def _assign(self, inc: Incident, order_id: str, actor: Actor, now: float,
                staff_id: str | None) -> Outcome:
        """Propose the nearest available qualified person not yet tried (or the one named)."""
        order = inc.order(order_id) if any(o.id == order_id for o in inc.orders) else None
        distance = 0.0
        if order is not None and not staff_id and self.staff is not None \
                and inc.lat is not None and inc.lon is not None:
            # Ten by air, so that street routing (when configured) has some to choose from.
            found = self.staff.candidates(inc.lat, inc.lon, order.department, now,
                                          exclude=order.offers_tried, limit=10)
            if found:
                staff_id, distance = found[0].staff_id, found[0].distance_m
        if staff_id and self.staff is not None and staff_id not in self.staff:
            raise Refused(f"no field person {staff_id!r} in this city")
        return self.rules.act_on_order(inc, order_id, "assign", actor, now,
                                       staff_id=staff_id or "", distance_m=distance,
                                       ack_timeout_s=self.ack_timeout_s)

    async def _move(self, incident_id: str, decide: Callable[[Incident, float], Outcome]
                    ) -> Incident:
        def step(inc: Incident | None) -> Outcome:
            if inc is None:
                raise NotFound(f"incident {incident_id} does not exist")
            return decide(inc, self.clock())

        try:
            done = await update_incident(self.store, incident_id, step, save=self._save,
                                         tries=RETRIES, on_retry=self._retried)
        except UpdateGaveUp:
            raise Refused(f"incident {incident_id} kept changing; try again") from None
        assert done is not None  # `step` always decides a move
        self.stats["moves"] += 1
        return done[0]

    def _retried(self) -> None:
        self.stats["retries"] += 1

    async def async_split(self, incident_id: str, report_key: str, actor: Actor,
                          reason: str) -> tuple[Incident, Incident]:
        """Take a wrongly merged report out of a case into a case of its own, routed as a
        report of its category is (a sensor's alert of an auto-registered category is
        dispatched at once; a person's report waits for the centre's check). All or nothing,
        and version-checked: a case changed meanwhile is read again."""
        for _ in range(RETRIES):
            inc = await self.get(incident_id)
            self.rules.check_scope(inc, actor)
            reports = await self.store.incident_reports(inc.id)
            report = next((r for r in reports if r.key == report_key), None)
            if report is None:
                raise Refused(f"report {report_key!r} is not filed in incident {inc.id} "
                              "(its detail lists the reports filed)")
            events = await self.store.incident_events(inc.id)
            opening = next((str(e.detail.get("report")) for e in events
                            if e.action == "collect" and e.detail.get("report")),
                           reports[0].key)
            now = self.clock()
            areas, cell = inc.areas, inc.cell
            if report.lat is not None and report.lon is not None and self.city is not None:
                areas = self.city.resolve(report.lat, report.lon) or areas
                cell = self.city.cell_of(report.lat, report.lon)
            rest = [r for r in reports if r.key != report_key]
            new_id = incident_id_for(report.key)
            kept_out, new_out = self.rules.split(
                inc, report, rest, opening=opening, new_id=new_id, actor=actor, now=now,
                reason=reason, areas=areas, cell=cell)
            category = self.rules.categories.resolve(report.category or inc.category)
            if report.source == "sensor" and category.auto_register:
                new_out = self._chain(new_out, "register", now)
                new_out = self._chain(new_out, "dispatch", now)
            try:
                kept, new = await self.store.split_incident(
                    kept_out.incident, kept_out.events, new_out.incident, new_out.events,
                    report.key, expect_version=inc.version)
            except StaleVersion:
                self.stats["retries"] += 1
                continue
            except DuplicateKey:
                raise Refused(f"report {report.key} cannot be split out: incident {new_id} "
                              "already exists") from None
            self.stats["split"] += 1
            await self._follow_split(report, kept.id, new.id, now)
            await self._announce(kept, kept_out)
            await self._announce(new, new_out)
            return kept, new
        raise Refused(f"incident {incident_id} kept changing; try again")

    async def _follow_split(self, report: Report, old_id: str, new_id: str, now: float) -> None:
        """A grouped alert split out of a case takes its group along: the group's later
        alerts join the alert's own case, not the one it was wrongly merged into."""
        group = report.data.get("group")
        if not isinstance(group, str) or not group:
            return
        pointer, _ = await self._group_case(group)
        if pointer is None or _pointed(pointer) != old_id:
            return
        try:
            await self._point(group, pointer, new_id, now)
        except (StaleVersion, DuplicateKey):
            pass  # the group moved on meanwhile: where it went stands

    # -- the scheduler's work ------------------------------------------------------------------

    async def async_escalate_due(self, now: float | None = None, limit: int = 200) -> int:
        """Escalate everything due at `now`; returns how many cases changed. Deadlines live in
        the store, so a restarted node picks up exactly where the last one stopped."""
        now = self.clock() if now is None else now
        changed = 0
        for incident_id in await self.store.due_incidents(now, limit):
            try:
                done = await update_incident(
                    self.store, incident_id,
                    lambda inc: None if inc is None else self.rules.escalate_due(inc, now),
                    save=self._save, tries=RETRIES, on_retry=self._retried)
            except UpdateGaveUp:
                continue  # still due: the next tick tries again
            if done is None:
                continue
            saved, out = done
            changed += 1
            self.stats["escalations"] += sum(e.action == "order.escalate" for e in out.events)
            for order_id in out.reoffer:
                await self._reoffer(saved, order_id, now)
        return changed

    async def _reoffer(self, inc: Incident, order_id: str, now: float) -> None:
        try:
            await self._move(inc.id, lambda i, t: self._assign(i, order_id, SYSTEM, now, None))
        except Refused as refused:  # nobody left to propose: the unit assigns by hand
            log.info("no next person for %s: %s", order_id, refused.reason)

    # -- saving and telling --------------------------------------------------------------------

    async def _save(self, out: Outcome, version: int | None,
                    reports: Sequence[Report] = ()) -> Incident:
        saved = await self.store.save_incident(out.incident, out.events, reports,
                                               expect_version=version)
        await self._announce(saved, out)
        return saved

    async def _announce(self, saved: Incident, out: Outcome) -> None:
        await self._tell(saved, out.notices)
        if self.bus is not None and self.bus.has_room(INCIDENTS):
            change = out.events[-1].action if out.events else "update"
            await self.bus.publish(INCIDENTS, IncidentChange(change, saved))

    async def _tell(self, inc: Incident, notices: Sequence[Notice]) -> None:
        now = self.clock()
        for n in notices:
            order = next((o for o in inc.orders if o.id == n.order_id), None)
            note = Notification(
                id=notification_id(n.kind, n.recipient, f"{inc.id}:{n.order_id}:{inc.version}"),
                kind=n.kind,
                recipient=n.recipient,
                subject=f"[{inc.category}] {inc.title}",
                body=n.text or inc.title,
                data={"incident": inc.id, "order": n.order_id, "status": inc.status.value,
                      "areas": msgspec.to_builtins(inc.areas) if inc.areas else None,
                      # The title in other languages, for a receiver that writes to people
                      # in theirs (the subject and body stay English, as the API's text).
                      **({"titles": dict(inc.titles)} if inc.titles else {}),
                      # The facts a person's text is written from (notify/texts.py).
                      **_facts(inc, n, order)},
                created=now,
                urgency=NOTIFY_URGENCY.get(inc.urgency, "normal"),
            )
            try:
                await self.notifier.async_send(note)
                self.stats["notices"] += 1
            except NotifyError as error:
                # The case is saved and its timeline says what happened; a full or stopped
                # notifier must not undo a dispatch. Counted, and visible in the metrics.
                self.stats["notify_refused"] += 1
                log.warning("notification %s not taken: %s", note.id, error)
