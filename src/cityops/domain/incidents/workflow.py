"""The case workflow (SPEC section 4) as pure functions: collect, register or cancel, dispatch,
accept, handle (feedback), verify, close; with return, re-dispatch, park, rework and reopen.

Every move checks the actor's role and scope first (`NotAllowed`, `OutOfScope`), then whether
the case's state allows it (`Refused`, with the reason a person can act on), and returns the
changed incident with the timeline events and the notices it causes. Nothing here does I/O:
the act service stores the result (refusing a stale version) and hands the notices on.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from types import MethodType

import msgspec

from cityops.domain.access import Principal, Role, Scope, can_see_place
from cityops.domain.city import AreaCodes
from cityops.domain.geo import local_authority
from cityops.domain.incidents.categories import Category, CategoryTable
from cityops.domain.incidents.merge import with_marks
from cityops.domain.incidents.model import (
    LEVELS,
    LIVE_ORDERS,
    Event,
    Incident,
    Level,
    Offer,
    OrderStatus,
    Report,
    Status,
    WorkOrder,
)
from cityops.domain.workclock import Limit, WorkClock

CENTRE = frozenset({Role.ADMIN, Role.OPERATOR})
UNIT = frozenset({Role.ADMIN, Role.OPERATOR, Role.DEPARTMENT, Role.STATION, Role.FIELD})
CREATE = frozenset({Role.ADMIN, Role.OPERATOR, Role.FIELD})
INSPECT = frozenset({Role.ADMIN, Role.OPERATOR, Role.FIELD})

INCIDENT_ACTIONS: dict[str, frozenset[Role]] = {
    "register": CENTRE,
    "cancel": CENTRE,
    "dispatch": CENTRE,
    "redispatch": CENTRE,
    "verify": INSPECT,
    "rework": INSPECT,
    "close": CENTRE,
    "reopen": CENTRE,
}
ORDER_ACTIONS: dict[str, frozenset[Role]] = {
    "accept": UNIT,
    "return": UNIT,
    "request_park": UNIT,
    "approve_park": CENTRE,
    "deny_park": CENTRE,
    "resume": UNIT,
    "progress": UNIT,
    "finish": UNIT,
    "escalate": CENTRE,
    "assign": frozenset({Role.ADMIN, Role.OPERATOR, Role.DEPARTMENT, Role.STATION}),
    "acknowledge": frozenset({Role.FIELD}),
}
PROGRESS = ("en_route", "on_site")


class Refused(Exception):
    """The move is not possible in the case's present state (HTTP 409)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotAllowed(Exception):
    """The actor's role may not make this move at all (HTTP 403)."""


class OutOfScope(Exception):
    """The case (or order) lies outside what the actor's key covers (HTTP 404: a scoped key
    must not learn that it exists)."""


class Actor(msgspec.Struct, frozen=True):
    key_id: str
    role: Role
    scope: Scope = Scope()
    name: str = ""  # for a field key: the staff id


SYSTEM = Actor("system", Role.ADMIN, Scope(), "CityOps")
SCHEDULER = Actor("scheduler", Role.ADMIN, Scope(), "escalation scheduler")


class Notice(msgspec.Struct, frozen=True, omit_defaults=True):
    """Someone must be told: the act service turns it into a notification."""

    kind: str  # order.dispatched, order.escalated, order.overdue, incident.handled ...
    recipient: str  # department code, unit ("station:..."), or staff id
    incident_id: str
    order_id: str = ""
    text: str = ""


class Outcome(msgspec.Struct):
    incident: Incident
    events: list[Event]
    notices: list[Notice]
    reoffer: list[str] = []  # orders whose field assignment timed out: propose the next person


# What a work-order move returns: the changed order, the timeline action, the reason shown on
# the event, the notices it causes and the changes it makes to the incident itself.
OrderStep = tuple["WorkOrder", str, str, list[Notice], dict[str, object]]


class Rules:
    """The workflow with a city's categories, working calendar and territory.

    `cell_owner(cell)` answers who keeps a grid cell: a department code, or a local authority
    such as "station:<village>" (see `CityMap.owner_of_cell`); `district` is the centre a
    case with no known place goes to.
    """

    def __init__(
        self,
        categories: CategoryTable,
        clock: WorkClock,
        *,
        district: str,
        cell_owner: Callable[[str], str | None] | None = None,
        departments: set[str] | None = None,
    ) -> None:
        self.categories = categories
        self.clock = clock
        self.district = district
        self.cell_owner = cell_owner
        self.departments = departments

    # -- helpers ---------------------------------------------------------------------------

    def category(self, incident: Incident) -> Category:
        return self.categories.resolve(incident.category, urgency=incident.urgency)

    def due(self, start: float, text: str) -> float:
        return self.clock.deadline(start, Limit.parse(text))

    def route(self, incident: Incident, departments: list[str]) -> list[tuple[str, Level, str]]:
        """(department, level, area code) per order. City management stands for whoever keeps
        the piece of ground: where the grid cell has an owning department (a park, a main road)
        that department takes its place. Urgent cases start at the district centre."""
        owner = None
        if self.cell_owner is not None and incident.cell:
            try:
                found = self.cell_owner(incident.cell)
            except ValueError:
                found = None
            if found and ":" not in found:
                owner = found
        chosen: list[str] = []
        for dept in departments:
            if dept == "city_management" and owner is not None:
                dept = owner
            if self.departments is not None and dept not in self.departments:
                continue
            if dept not in chosen:
                chosen.append(dept)
        start = Level.DISTRICT if self.category(incident).urgent else Level.VILLAGE
        return [(d, start, self._area_at(incident, start)) for d in chosen]

    def _area_at(self, incident: Incident, level: Level) -> str:
        if incident.areas is None:
            return self.district
        code: str = getattr(incident.areas, level.value)
        return code

    # -- creation and merging ----------------------------------------------------------------

    def open_incident(
        self,
        incident_id: str,
        report: Report,
        category: Category,
        *,
        title: str,
        actor: Actor,
        titles: Mapping[str, str] | None = None,
        areas: AreaCodes | None = None,
        cell: str | None = None,
        description: str = "",
        severity: str = "",
        alert_id: str | None = None,
        group: str = "",
    ) -> Outcome:
        """A new case of one report; with `group`, the case the group's later alerts join.
        `titles` translates `title`; a case titled with its category's name gets the
        category's names."""
        if actor.role not in CREATE and actor is not SYSTEM:
            raise NotAllowed(f"role {actor.role} may not report incidents")
        if not title:
            title, titles = category.name, category.names
        incident = Incident(
            id=incident_id,
            category=category.code,
            kind=category.kind,
            title=title,
            titles=dict(titles) if titles else msgspec.UNSET,
            description=description or report.text,
            source=report.source,
            urgency=category.urgency,
            severity=severity,
            lat=report.lat,
            lon=report.lon,
            areas=areas,
            cell=cell,
            reported_at=report.at,
            updated_at=report.at,
            last_report_at=report.at,
            dispatch_due=self.due(report.at, category.limits.dispatch),
            alert_id=alert_id,
            default_departments=list(category.departments),
            group=group,
            grouped=1 if group else 0,
            group_at=report.at if group else None,
            components=with_marks([], report) if self._tracks(category.code) else [],
        )
        if not can_see_place(_as_principal(actor), areas) and actor is not SYSTEM:
            raise OutOfScope("the place lies outside the area of this key")
        event = _event(report.at, actor, "collect", "", Status.COLLECTED,
                       detail={"source": report.source, "report": report.key})
        return Outcome(incident, [event], [])

    def merge(self, incident: Incident, report: Report, *, reason: str = "",
              grouped: bool = False) -> Outcome:
        """Fold a repeat report into an open case: it is counted, not opened again. `reason`
        says why it is the same problem when that is not plain (a related category, a group);
        `grouped`: an alert of the case's group, counted as such."""
        if not incident.is_open:
            raise Refused(f"incident {incident.id} is {incident.status}; it takes no reports")
        changes: dict[str, object] = {}
        if grouped:
            changes.update(grouped=incident.grouped + 1,
                           group_at=max(incident.group_at or report.at, report.at))
        if self._tracks(incident.category):
            changes["components"] = with_marks(incident.components, report)
        merged = msgspec.structs.replace(
            incident,
            reports=incident.reports + 1,
            last_report_at=max(incident.last_report_at or report.at, report.at),
            updated_at=max(incident.updated_at, report.at),
            **changes,
        )
        detail: dict[str, object] = {"report": report.key, "source": report.source,
                                     "reports": merged.reports}
        if report.category and report.category != incident.category:
            detail["category"] = report.category
        if grouped:
            detail["alerts"] = merged.grouped
        event = Event(at=report.at, actor="system", action="merge", before=incident.status,
                      after=incident.status, reason=reason, detail=detail)
        return Outcome(merged, [event], [])

    def _tracks(self, code: str) -> bool:
        """Whether a case keeps what its reports are about: only a related group's
        categories need it, to find a case by its component."""
        found = self.categories.get(code)
        return found is not None and bool(found.related)

    def split(self, incident: Incident, report: Report, rest: list[Report], *, opening: str,
              new_id: str, actor: Actor, now: float, reason: str,
              areas: AreaCodes | None, cell: str | None) -> tuple[Outcome, Outcome]:
        """Take a wrongly merged report out of a case into a case of its own (of the category
        it was filed under). `rest` are the case's other reports; `opening` is the key of the
        report that opened it, which stays: that report is the case. Returns the changed case
        and the new one, each with its timeline event."""
        if actor.role not in CENTRE:
            raise NotAllowed(f"role {actor.role} may not split a report out of an incident")
        self.check_scope(incident, actor)
        _reason_required("split", reason)
        if not incident.is_open:
            raise Refused(f"incident {incident.id} is {incident.status}; its reports stay")
        if report.key == opening:
            raise Refused(f"report {report.key} opened incident {incident.id}: split the other "
                          "reports out instead (or cancel the case)")
        category = self.categories.resolve(report.category or incident.category)
        opened = self.open_incident(new_id, report, category, title=category.name,
                                    titles=category.names, actor=actor, areas=areas, cell=cell,
                                    alert_id=_alert_of(report))
        new = msgspec.structs.replace(opened.incident, updated_at=now)
        moved = {"report": report.key, "reports": incident.reports - 1}
        old_was = incident.status
        kept = msgspec.structs.replace(
            incident,
            reports=max(1, incident.reports - 1),
            last_report_at=max((r.at for r in rest), default=incident.reported_at),
            updated_at=now,
            components=_marks_of_all(rest) if self._tracks(incident.category) else [],
            grouped=incident.grouped - (1 if _in_group(report, incident) else 0),
        )
        out_old = Outcome(kept, [_event(now, actor, "split", old_was, old_was, reason,
                                        detail={**moved, "to": new_id})], [])
        out_new = Outcome(new, [*opened.events,
                                _event(now, actor, "split", "", new.status, reason,
                                       detail={"report": report.key, "from": incident.id})],
                          [])
        return out_old, out_new

    # -- incident actions ----------------------------------------------------------------------

    def act(self, incident: Incident, action: str, actor: Actor, now: float,
            **args: object) -> Outcome:
        roles = INCIDENT_ACTIONS.get(action)
        if roles is None:
            if action in ORDER_ACTIONS:
                raise Refused(f"'{action}' is an action on a work order, not on an incident")
            raise Refused(f"unknown action '{action}'; incident actions: "
                          + ", ".join(INCIDENT_ACTIONS))
        self.check_scope(incident, actor)
        if actor.role not in roles:
            raise NotAllowed(f"role {actor.role} may not {action} an incident")
        handler = getattr(self, f"_do_{action}")
        outcome: Outcome = handler(incident, actor, now, **_fitting(handler, args))
        return outcome

    def check_scope(self, incident: Incident, actor: Actor) -> None:
        """OutOfScope unless the actor's key covers the case: one of its orders, or its place."""
        if actor.role in (Role.DEPARTMENT, Role.STATION, Role.FIELD):
            if any(self.covers(o, actor) for o in incident.orders):
                return
        if not can_see_place(_as_principal(actor), incident.areas):
            raise OutOfScope(f"incident {incident.id} is outside the scope of this key")

    def _do_register(self, inc: Incident, actor: Actor, now: float, category: str | None = None,
                     title: str | None = None, reason: str = "") -> Outcome:
        _need(inc, "register", Status.COLLECTED)
        changes: dict[str, object] = {"status": Status.REGISTERED, "registered_at": now,
                                      "updated_at": now}
        if category and category != inc.category:
            cat = self.categories.get(category)
            if cat is None:
                raise Refused(f"unknown category '{category}'")
            changes.update(category=cat.code, kind=cat.kind, urgency=cat.urgency,
                           default_departments=list(cat.departments))
        if title and title != inc.title:
            changes.update(title=title, titles=msgspec.UNSET)
        new = msgspec.structs.replace(inc, **changes)
        return Outcome(new, [_event(now, actor, "register", inc.status, new.status, reason,
                                    detail={"category": new.category})], [])

    def _do_cancel(self, inc: Incident, actor: Actor, now: float, reason: str = "") -> Outcome:
        _reason_required("cancel", reason)
        if inc.status in (Status.CLOSED, Status.CANCELLED, Status.VERIFIED, Status.HANDLED):
            raise Refused(f"incident {inc.id} is {inc.status}; only a case not yet handled can be "
                          "cancelled")
        orders, notices = [], []
        for o in inc.orders:
            if o.status in LIVE_ORDERS and o.status is not OrderStatus.DONE:
                o = _order(o, status=OrderStatus.WITHDRAWN, reason=f"case cancelled: {reason}")
                notices.append(Notice("order.withdrawn", o.department, inc.id, o.id, reason))
            orders.append(o)
        new = msgspec.structs.replace(
            inc, status=Status.CANCELLED, cancelled_at=now, updated_at=now, reason=reason,
            voided=inc.registered_at is not None, orders=orders, dispatch_due=None)
        return Outcome(new, [_event(now, actor, "cancel", inc.status, new.status, reason)], notices)

    def _do_dispatch(self, inc: Incident, actor: Actor, now: float,
                     departments: list[str] | None = None, reason: str = "") -> Outcome:
        _need(inc, "dispatch", Status.REGISTERED)
        return self._send(inc, actor, now, departments, "dispatch", reason)

    def _do_redispatch(self, inc: Incident, actor: Actor, now: float,
                       departments: list[str] | None = None, reason: str = "") -> Outcome:
        """Send the case to (more) units: after a return as the wrong unit, or when it turns
        out to need another department too."""
        _need(inc, "redispatch", Status.REGISTERED, Status.DISPATCHED, Status.ACCEPTED)
        if not departments:
            raise Refused("redispatch needs the departments to send the case to")
        return self._send(inc, actor, now, departments, "redispatch", reason)

    def _send(self, inc: Incident, actor: Actor, now: float, departments: list[str] | None,
              action: str, reason: str) -> Outcome:
        cat = self.category(inc)
        wanted = list(departments or inc.default_departments or cat.departments)
        if self.departments is not None:
            unknown = [d for d in wanted if d not in self.departments]
            if unknown:
                raise Refused(f"unknown department '{unknown[0]}'")
        busy = {o.department for o in inc.orders
                if o.status in LIVE_ORDERS and o.status is not OrderStatus.DONE}
        routes = [r for r in self.route(inc, wanted) if r[0] not in busy]
        if not routes:
            raise Refused("every department named already has a live work order for this case")
        accept_due = self.due(now, cat.limits.accept)
        finish_due = self.due(now, cat.limits.finish)
        orders = list(inc.orders)
        notices = []
        for dept, level, area in routes:
            order = WorkOrder(
                id=f"{inc.id}-{len(orders) + 1}",
                department=dept,
                level=level,
                area=area,
                unit=local_authority(area),
                created=now,
                accept_due=accept_due,
                finish_due=finish_due,
            )
            orders.append(order)
            notices.append(Notice("order.dispatched", dept, inc.id, order.id,
                                  f"{inc.title} ({order.unit})"))
        close_due = self.due(max(o.finish_due or now for o in orders if o.status in LIVE_ORDERS),
                             cat.limits.verify)
        new = msgspec.structs.replace(
            inc, orders=orders, dispatched_at=inc.dispatched_at or now, updated_at=now,
            close_due=close_due, dispatch_due=None,
            registered_at=inc.registered_at or now)
        new = _settle(new, now)
        event = _event(now, actor, action, inc.status, new.status, reason,
                       detail={"orders": [o.id for o in orders[len(inc.orders):]],
                               "departments": [r[0] for r in routes]})
        return Outcome(new, [event], notices)

    def _do_verify(self, inc: Incident, actor: Actor, now: float, note: str = "") -> Outcome:
        _need(inc, "verify", Status.HANDLED)
        new = msgspec.structs.replace(inc, status=Status.VERIFIED, verified_at=now, updated_at=now)
        return Outcome(new, [_event(now, actor, "verify", inc.status, new.status, note)], [])

    def _do_rework(self, inc: Incident, actor: Actor, now: float, reason: str = "",
                   orders: list[str] | None = None) -> Outcome:
        """Failed verification: the named orders (all, by default) go back to their units."""
        _need(inc, "rework", Status.HANDLED, Status.VERIFIED)
        _reason_required("rework", reason)
        cat = self.category(inc)
        targets = set(orders or [o.id for o in inc.orders if o.status is OrderStatus.DONE])
        unknown = targets - {o.id for o in inc.orders if o.status is OrderStatus.DONE}
        if unknown:
            raise Refused(f"work order {sorted(unknown)[0]} is not a finished order of this case")
        finish_due = self.due(now, cat.limits.finish)
        new_orders, notices = [], []
        for o in inc.orders:
            if o.id in targets:
                o = _order(o, status=OrderStatus.ACCEPTED, done_at=None, finish_due=finish_due,
                           reworks=o.reworks + 1, reason=reason, overdue=False, progress="")
                notices.append(Notice("order.rework", o.department, inc.id, o.id, reason))
            new_orders.append(o)
        new = msgspec.structs.replace(
            inc, orders=new_orders, reworks=inc.reworks + 1, verified_at=None, handled_at=None,
            updated_at=now, status=Status.ACCEPTED,
            close_due=self.due(finish_due, cat.limits.verify))
        new = _settle(new, now)
        return Outcome(new, [_event(now, actor, "rework", inc.status, new.status, reason,
                                    detail={"orders": sorted(targets)})], notices)

    def _do_close(self, inc: Incident, actor: Actor, now: float, note: str = "") -> Outcome:
        _need(inc, "close", Status.VERIFIED)
        new = msgspec.structs.replace(inc, status=Status.CLOSED, closed_at=now, updated_at=now)
        notices = [Notice("incident.closed", o.department, inc.id, o.id)
                   for o in inc.orders if o.status is OrderStatus.DONE]
        return Outcome(new, [_event(now, actor, "close", inc.status, new.status, note)], notices)

    def _do_reopen(self, inc: Incident, actor: Actor, now: float, reason: str = "") -> Outcome:
        _need(inc, "reopen", Status.CLOSED)
        _reason_required("reopen", reason)
        cat = self.category(inc)
        new = msgspec.structs.replace(
            inc, status=Status.REGISTERED, closed_at=None, verified_at=None, handled_at=None,
            reopened=inc.reopened + 1, updated_at=now, reason=reason,
            dispatch_due=self.due(now, cat.limits.dispatch), dispatch_overdue=False)
        return Outcome(new, [_event(now, actor, "reopen", inc.status, new.status, reason)], [])

    # -- work-order actions --------------------------------------------------------------------

    def act_on_order(self, incident: Incident, order_id: str, action: str, actor: Actor,
                     now: float, **args: object) -> Outcome:
        roles = ORDER_ACTIONS.get(action)
        if roles is None:
            raise Refused(f"unknown action '{action}'; work-order actions: "
                          + ", ".join(ORDER_ACTIONS))
        try:
            order = incident.order(order_id)
        except KeyError:
            raise OutOfScope(f"work order {order_id} does not exist") from None
        if actor.role in CENTRE:
            if not can_see_place(_as_principal(actor), incident.areas):
                raise OutOfScope(f"work order {order_id} is outside the scope of this key")
        elif not self.covers(order, actor):
            raise OutOfScope(f"work order {order_id} is outside the scope of this key")
        if actor.role not in roles:
            raise NotAllowed(f"role {actor.role} may not {action.replace('_', ' ')} a work order")
        if incident.status in (Status.CANCELLED, Status.CLOSED):
            raise Refused(f"incident {incident.id} is {incident.status}")
        handler = getattr(self, f"_order_{action}")
        step: OrderStep = handler(incident, order, actor, now, **_fitting(handler, args))
        new_order, event_action, reason, notices, extra = step
        orders = [new_order if o.id == order.id else o for o in incident.orders]
        new = msgspec.structs.replace(incident, orders=orders, updated_at=now, **extra)
        new = _settle(new, now)
        event = _event(now, actor, event_action, f"{order.status}", f"{new_order.status}", reason,
                       order_id=order.id, detail={"incident": f"{incident.status}->{new.status}"})
        if new.status is Status.HANDLED and incident.status is not Status.HANDLED:
            notices = [*notices, Notice("incident.handled", f"centre:{self._district(new)}",
                                        new.id, text="every unit reported done: verify on site")]
        return Outcome(new, [event], notices)

    def covers(self, order: WorkOrder, actor: Actor) -> bool:
        """Whether a unit's key speaks for this order: a department key for its department, a
        station or sub-centre key for orders at its area's level, a field key for its own."""
        if actor.role is Role.FIELD:
            if order.assignee == actor.name:
                return True
            return order.offer is not None and order.offer.staff_id == actor.name
        if actor.role is Role.DEPARTMENT:
            return actor.scope.department == order.department or actor.scope.department is None \
                and actor.scope.area is None
        if actor.role is Role.STATION:
            scope = actor.scope.area
            return scope is None or order.area.startswith(scope)
        return True

    def _district(self, inc: Incident) -> str:
        return inc.areas.district if inc.areas else self.district

    def _order_accept(self, inc: Incident, o: WorkOrder, actor: Actor, now: float,
                      note: str = "") -> OrderStep:
        _need_order(o, "accept", OrderStatus.DISPATCHED)
        changes: dict[str, object] = {"status": OrderStatus.ACCEPTED, "accepted_at": now}
        if actor.role is Role.FIELD:
            changes.update(assignee=actor.name, offer=None)
        return _order(o, **changes), "order.accept", note, [], {}

    def _order_acknowledge(self, inc: Incident, o: WorkOrder, actor: Actor,
                           now: float) -> OrderStep:
        """The proposed field person takes the job; a dispatched order is accepted with it."""
        if o.offer is None or o.offer.staff_id != actor.name:
            raise Refused(f"work order {o.id} is not offered to {actor.name or 'this key'}")
        _need_order(o, "acknowledge", OrderStatus.DISPATCHED, OrderStatus.ACCEPTED)
        changes = {"assignee": actor.name, "offer": None, "status": OrderStatus.ACCEPTED,
                   "accepted_at": o.accepted_at or now}
        return _order(o, **changes), "order.acknowledge", "", [], {}

    def _order_return(self, inc: Incident, o: WorkOrder, actor: Actor, now: float,
                      reason: str = "") -> OrderStep:
        _need_order(o, "return", OrderStatus.DISPATCHED, OrderStatus.ACCEPTED)
        _reason_required("return", reason)
        cat = self.category(inc)
        notice = Notice("order.returned", f"centre:{self._district(inc)}", inc.id, o.id, reason)
        extra: dict[str, object] = {"returns": inc.returns + 1}
        others = [x for x in inc.orders if x.id != o.id and x.status in LIVE_ORDERS]
        if not others:
            extra["dispatch_due"] = self.due(now, cat.limits.dispatch)
            extra["dispatch_overdue"] = False
        return (_order(o, status=OrderStatus.RETURNED, reason=reason, offer=None), "order.return",
                reason, [notice], extra)

    def _order_request_park(self, inc: Incident, o: WorkOrder, actor: Actor, now: float,
                            reason: str = "") -> OrderStep:
        _need_order(o, "request_park", OrderStatus.ACCEPTED)
        _reason_required("request_park", reason)
        notice = Notice("order.park_requested", f"centre:{self._district(inc)}", inc.id, o.id,
                        reason)
        return _order(o, status=OrderStatus.PARK_REQUESTED, reason=reason), \
            "order.request_park", reason, [notice], {}

    def _order_approve_park(self, inc: Incident, o: WorkOrder, actor: Actor, now: float,
                            reason: str = "") -> OrderStep:
        _need_order(o, "approve_park", OrderStatus.PARK_REQUESTED)
        notice = Notice("order.parked", o.department, inc.id, o.id, reason)
        return _order(o, status=OrderStatus.PARKED, parked_at=now), "order.approve_park", \
            reason, [notice], {}

    def _order_deny_park(self, inc: Incident, o: WorkOrder, actor: Actor, now: float,
                         reason: str = "") -> OrderStep:
        _need_order(o, "deny_park", OrderStatus.PARK_REQUESTED)
        _reason_required("deny_park", reason)
        notice = Notice("order.park_denied", o.department, inc.id, o.id, reason)
        return _order(o, status=OrderStatus.ACCEPTED), "order.deny_park", reason, [notice], {}

    def _order_resume(self, inc: Incident, o: WorkOrder, actor: Actor, now: float,
                      note: str = "") -> OrderStep:
        """Back to work after a postponement: the clock restarts where it stopped, so the
        deadline moves by the (working or wall-clock) time the order stood parked."""
        _need_order(o, "resume", OrderStatus.PARKED)
        cat = self.category(inc)
        paused_from = o.parked_at if o.parked_at is not None else now
        finish_due = self._shift(o.finish_due, paused_from, now, cat.limits.finish)
        extra: dict[str, object] = {"parked_s": inc.parked_s + max(0.0, now - paused_from)}
        if inc.close_due is not None:
            extra["close_due"] = self._shift(inc.close_due, paused_from, now, cat.limits.verify)
        return (_order(o, status=OrderStatus.ACCEPTED, parked_at=None, finish_due=finish_due),
                "order.resume", note, [], extra)

    def _shift(self, due: float | None, paused_from: float, now: float, text: str) -> float | None:
        if due is None:
            return None
        return self.clock.extend(due, paused_from, now, Limit.parse(text).unit)

    def _order_progress(self, inc: Incident, o: WorkOrder, actor: Actor, now: float,
                        progress: str = "", note: str = "") -> OrderStep:
        _need_order(o, "progress", OrderStatus.ACCEPTED)
        if progress not in PROGRESS:
            raise Refused(f"progress must be one of {', '.join(PROGRESS)}, not {progress!r}")
        return _order(o, progress=progress), f"order.{progress}", note, [], {}

    def _order_finish(self, inc: Incident, o: WorkOrder, actor: Actor, now: float,
                      note: str = "", photos: list[str] | None = None) -> OrderStep:
        _need_order(o, "finish", OrderStatus.ACCEPTED)
        if not note.strip() and not photos:
            raise Refused("finishing a work order needs evidence: a note or a photo")
        done = _order(o, status=OrderStatus.DONE, done_at=now, note=note,
                      photos=[*o.photos, *(photos or [])], progress="")
        return done, "order.finish", note, [], {}

    def _order_escalate(self, inc: Incident, o: WorkOrder, actor: Actor, now: float,
                        reason: str = "") -> OrderStep:
        _reason_required("escalate", reason)
        new, action, why, notices = self._escalated(inc, o, now, reason)
        return new, action, why, notices, {}

    def _order_assign(self, inc: Incident, o: WorkOrder, actor: Actor, now: float,
                      staff_id: str = "", distance_m: float = 0.0,
                      ack_timeout_s: float = 300.0) -> OrderStep:
        _need_order(o, "assign", OrderStatus.DISPATCHED, OrderStatus.ACCEPTED)
        if not staff_id:
            raise Refused("no available qualified person to propose")
        offer = Offer(staff_id, now, now + ack_timeout_s, distance_m)
        tried = o.offers_tried if staff_id in o.offers_tried else [*o.offers_tried, staff_id]
        notice = Notice("order.offered", staff_id, inc.id, o.id, inc.title)
        return _order(o, offer=offer, offers_tried=tried), "order.assign", staff_id, [notice], {}

    # -- deadlines -----------------------------------------------------------------------------

    def _escalated(self, inc: Incident, o: WorkOrder, now: float,
                   reason: str) -> tuple[WorkOrder, str, str, list[Notice]]:
        """One level up; at the district centre there is no one above: mark it overdue."""
        cat = self.category(inc)
        index = LEVELS.index(o.level)
        if index + 1 >= len(LEVELS):
            notice = Notice("order.overdue", f"centre:{self._district(inc)}", inc.id, o.id, reason)
            return _order(o, overdue=True), "order.overdue", reason, [notice]
        level = LEVELS[index + 1]
        area = self._area_at(inc, level)
        grace = self.due(now, cat.limits.accept)
        changes: dict[str, object] = {"level": level, "area": area, "unit": local_authority(area),
                         "escalations": o.escalations + 1}
        if o.status is OrderStatus.DISPATCHED:
            changes["accept_due"] = grace
        else:  # the higher level gets the accept limit to push the unit over the line
            changes["finish_due"] = grace
        new = _order(o, **changes)
        notices = [Notice("order.escalated", new.unit, inc.id, o.id, reason),
                   Notice("order.escalated", o.department, inc.id, o.id, reason)]
        return new, "order.escalate", reason, notices

    def escalate_due(self, incident: Incident, now: float) -> Outcome | None:
        """Everything the scheduler owes this case at `now`: expired field offers, orders not
        accepted or not finished in time (one level up each), a case left undispatched."""
        if not incident.is_open:
            return None
        orders, events, notices, reoffer = [], [], [], []
        for o in incident.orders:
            if o.offer is not None and o.offer.ack_due <= now:
                events.append(_event(now, SCHEDULER, "order.offer_expired", o.status, o.status,
                                     f"{o.offer.staff_id} did not acknowledge", order_id=o.id))
                o = _order(o, offer=None)
                if o.assignee is None:
                    reoffer.append(o.id)
            due = o.next_due
            if due is not None and due <= now:
                reason = ("not accepted in time" if o.status is OrderStatus.DISPATCHED
                          else "not finished in time")
                moved, action, why, more = self._escalated(incident, o, now, reason)
                events.append(_event(now, SCHEDULER, action, o.status, moved.status, why,
                                     order_id=o.id,
                                     detail={"level": moved.level, "unit": moved.unit}))
                notices += more
                o = moved
            orders.append(o)
        extra: dict[str, object] = {}
        if (incident.status in (Status.COLLECTED, Status.REGISTERED)
                and not incident.dispatch_overdue
                and incident.dispatch_due is not None and incident.dispatch_due <= now):
            # Told once; the deadline itself stays, so the case stays on the overdue list.
            extra["dispatch_overdue"] = True
            notices.append(Notice("incident.dispatch_overdue", f"centre:{self._district(incident)}",
                                  incident.id, text="not dispatched in time"))
            events.append(_event(now, SCHEDULER, "dispatch_overdue", incident.status,
                                 incident.status, "not dispatched in time"))
        if not events:
            return None
        new = msgspec.structs.replace(incident, orders=orders, updated_at=now, **extra)
        return Outcome(new, events, notices, reoffer)


# -- module helpers ------------------------------------------------------------------------------


def _alert_of(report: Report) -> str | None:
    return report.key.split(":", 1)[1] if report.key.startswith("alert:") else None


def _in_group(report: Report, incident: Incident) -> bool:
    return bool(incident.group) and report.data.get("group") == incident.group


def _marks_of_all(reports: list[Report]) -> list[str]:
    marks: list[str] = []
    for r in reports:
        marks = with_marks(marks, r)
    return marks


def _fitting(handler: MethodType, args: Mapping[str, object]) -> dict[str, object]:
    """The arguments this move takes: one request form serves every action, so a field that
    another action needs (a reason given to `verify`, say) is left out, not an error."""
    names = _parameters(handler.__func__)
    return {k: v for k, v in args.items() if k in names and v is not None}


@functools.cache
def _parameters(function: Callable[..., object]) -> frozenset[str]:
    return frozenset(inspect.signature(function).parameters)


def _settle(inc: Incident, now: float) -> Incident:
    """The case's state follows its orders once it is with the units."""
    if inc.status not in (Status.REGISTERED, Status.DISPATCHED, Status.ACCEPTED, Status.HANDLED):
        return inc
    live = inc.live_orders()
    if not live:
        status = Status.REGISTERED
    elif all(o.status is OrderStatus.DONE for o in live):
        status = Status.HANDLED
    elif all(o.status is not OrderStatus.DISPATCHED for o in live):
        status = Status.ACCEPTED
    else:
        status = Status.DISPATCHED
    if inc.status is Status.REGISTERED and not live:
        return inc
    changes: dict[str, object] = {"status": status}
    if status is Status.ACCEPTED and inc.accepted_at is None:
        changes["accepted_at"] = now
    if status is Status.HANDLED:
        changes["handled_at"] = inc.handled_at or now
    elif inc.handled_at is not None:
        changes["handled_at"] = None
    return msgspec.structs.replace(inc, **changes)


def _order(o: WorkOrder, **changes: object) -> WorkOrder:
    return msgspec.structs.replace(o, **changes)


def _need(inc: Incident, action: str, *allowed: Status) -> None:
    if inc.status not in allowed:
        wanted = " or ".join(s.value for s in allowed)
        raise Refused(f"cannot {action} incident {inc.id}: it is {inc.status.value}, "
                      f"and {action} needs it {wanted}")


def _need_order(o: WorkOrder, action: str, *allowed: OrderStatus) -> None:
    if o.status not in allowed:
        wanted = " or ".join(s.value for s in allowed)
        raise Refused(f"cannot {action.replace('_', ' ')} work order {o.id}: it is "
                      f"{o.status.value}, and that needs it {wanted}")


def _reason_required(action: str, reason: str) -> None:
    if not (reason or "").strip():
        raise Refused(f"{action.replace('_', ' ')} needs a reason")


def _event(at: float, actor: Actor, action: str, before: object, after: object,
           reason: str = "", *, order_id: str = "",
           detail: dict[str, object] | None = None) -> Event:
    return Event(at=at, actor=actor.key_id, action=action, before=str(before), after=str(after),
                 reason=reason, order_id=order_id, actor_name=actor.name, detail=detail or {})


def _as_principal(actor: Actor) -> Principal:
    return Principal(actor.key_id, actor.role, actor.scope, actor.name)
