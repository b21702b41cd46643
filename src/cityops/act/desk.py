"""The incident desk: where reports become cases and every move on a case is made.

It reads the case, lets the domain workflow decide (`cityops.domain.incidents.workflow`),
saves the result with an optimistic version check (a concurrent move makes it read again and
retry, never overwrite), then hands the notices to the notifier and the change to the bus.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence

import msgspec

from cityops.act.staff import StaffBoard
from cityops.bus.messages import IncidentChange
from cityops.bus.subjects import INCIDENTS
from cityops.domain.city import AreaCodes
from cityops.domain.geo import CityMap
from cityops.domain.incidents.categories import Category
from cityops.domain.incidents.merge import merge_target, search_cells
from cityops.domain.incidents.model import Incident, Report
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
from cityops.store.update import UpdateGaveUp, update_incident

log = logging.getLogger(__name__)

RETRIES = 5
NOTIFY_URGENCY = {"low": "low", "normal": "normal", "high": "high", "urgent": "critical"}


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
                      "retries": 0, "escalations": 0, "notices": 0, "notify_refused": 0}
        self.storm = None  # the storm guard (cityops.act.storm), set by the act side

    # -- intake ------------------------------------------------------------------------------

    async def async_report(
        self,
        report: Report,
        category_code: str,
        *,
        actor: Actor = SYSTEM,
        title: str = "",
        description: str = "",
        severity: str = "",
        alert_id: str | None = None,
        departments: Sequence[str] | None = None,
        urgency: str | None = None,
        auto_register: bool | None = None,
        areas: AreaCodes | None = None,
    ) -> ReportResult:
        """File a report: merged into an open case of the same category close by, or a new case
        (registered and dispatched at once when the category or the alert says so)."""
        self.stats["reports"] += 1
        known = await self.store.incident_of_report(report.key)
        if known is not None:
            self.stats["repeated"] += 1
            found = await self.store.get_incident(known)
            return ReportResult(found, merged=False, repeated=True)
        category = self.rules.categories.resolve(
            category_code, departments=list(departments or []), urgency=urgency)
        cell = None
        if report.lat is not None and report.lon is not None and self.city is not None:
            if areas is None:
                areas = self.city.resolve(report.lat, report.lon)
            cell = self.city.cell_of(report.lat, report.lon)
        for _ in range(RETRIES):
            target = await self._merge_target(report, category, actor)
            try:
                if target is not None:
                    out = self.rules.merge(target, report)
                    saved = await self._save(out, target.version, [report])
                    self.stats["merged"] += 1
                    return ReportResult(saved, merged=True)
                out = self.rules.open_incident(
                    incident_id_for(report.key), report, category, title=title, actor=actor,
                    areas=areas, cell=cell, description=description, severity=severity,
                    alert_id=alert_id)
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
        raise Refused(f"report {report.key} could not be filed: the case kept changing")

    def _chain(self, out: Outcome, action: str, now: float) -> Outcome:
        nxt = self.rules.act(out.incident, action, SYSTEM, now)
        return Outcome(nxt.incident, out.events + nxt.events, out.notices + nxt.notices)

    async def _merge_target(self, report: Report, category: Category,
                            actor: Actor) -> Incident | None:
        if report.lat is None or report.lon is None or self.city is None \
                or category.merge_radius_m <= 0:
            return None
        cells = search_cells(report.lat, report.lon, self.city.h3_resolution,
                             category.merge_radius_m)
        candidates = await self.store.open_incidents_in_cells(
            category.code, cells, report.at - category.merge_window_s)
        # A scoped key's report near its area's edge would otherwise join (and answer with)
        # the neighbour's case, which that key may neither see nor change.
        candidates = [c for c in candidates if self._seen_by(c, actor)]
        return merge_target(candidates, report.lat, report.lon, report.at,
                            radius_m=category.merge_radius_m, window_s=category.merge_window_s)

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
        await self._tell(saved, out.notices)
        if self.bus is not None and self.bus.has_room(INCIDENTS):
            change = out.events[-1].action if out.events else "update"
            await self.bus.publish(INCIDENTS, IncidentChange(change, saved))
        return saved

    async def _tell(self, inc: Incident, notices: Sequence[Notice]) -> None:
        now = self.clock()
        for n in notices:
            note = Notification(
                id=notification_id(n.kind, n.recipient, f"{inc.id}:{n.order_id}:{inc.version}"),
                kind=n.kind,
                recipient=n.recipient,
                subject=f"[{inc.category}] {inc.title}",
                body=n.text or inc.title,
                data={"incident": inc.id, "order": n.order_id, "status": inc.status.value,
                      "areas": msgspec.to_builtins(inc.areas) if inc.areas else None},
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
