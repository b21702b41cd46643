"""Incidents (cases) and their work orders: plain data, no behaviour beyond derived views.

One incident is one problem at one place; it fans out into work orders, one per department
(joint dispatch), each with its own clock and state. Reports that turn out to be the same
problem are merged into the incident and counted, not opened again.
"""

from __future__ import annotations

from typing import Any

import enum

import msgspec

from cityops.domain.city import AreaCodes


class Status(enum.StrEnum):
    COLLECTED = "collected"  # reported, waiting for the supervision centre's check
    REGISTERED = "registered"  # a real case, classified, not (or no longer) with any unit
    CANCELLED = "cancelled"  # not a case (duplicate, false report); reason kept
    DISPATCHED = "dispatched"  # with one or more units, not all of them have accepted
    ACCEPTED = "accepted"  # every unit has accepted and is working on it
    HANDLED = "handled"  # every unit reported it done (feedback), waiting for verification
    VERIFIED = "verified"  # an inspector found it solved on site
    CLOSED = "closed"


OPEN = frozenset({Status.COLLECTED, Status.REGISTERED, Status.DISPATCHED, Status.ACCEPTED,
                  Status.HANDLED, Status.VERIFIED})


class OrderStatus(enum.StrEnum):
    DISPATCHED = "dispatched"  # sent to the unit, not accepted yet
    ACCEPTED = "accepted"
    PARK_REQUESTED = "park_requested"  # the unit cannot finish in time and asks to postpone
    PARKED = "parked"  # postponement approved: its clock is stopped
    DONE = "done"  # the unit reported it finished, with evidence
    RETURNED = "returned"  # sent back by the unit: not theirs (reason kept)
    WITHDRAWN = "withdrawn"  # the centre took it back (case cancelled or re-dispatched)


LIVE_ORDERS = frozenset({OrderStatus.DISPATCHED, OrderStatus.ACCEPTED, OrderStatus.PARK_REQUESTED,
                         OrderStatus.PARKED, OrderStatus.DONE})


class Level(enum.StrEnum):
    VILLAGE = "village"  # village / community station
    TOWN = "town"  # street or town sub-centre
    DISTRICT = "district"  # district centre


LEVELS = (Level.VILLAGE, Level.TOWN, Level.DISTRICT)


class Report(msgspec.Struct, frozen=True, omit_defaults=True):
    """One report of the problem: an alert, an inspector's note, a citizen's request."""

    key: str  # unique per report: alert id, request id ... (a repeat is ignored)
    source: str  # sensor, video, inspector, citizen, hotline, open311, operator, higher_level
    at: float  # epoch seconds when it was reported
    text: str = ""
    lat: float | None = None
    lon: float | None = None
    reporter: str = ""
    data: dict[str, Any] = {}
    # The category it was filed under, when it joined a case of another (related) category:
    # what it becomes again if an operator splits it out.
    category: str = ""


class Offer(msgspec.Struct, frozen=True):
    """A field person proposed for an order, waiting for them to acknowledge."""

    staff_id: str
    offered_at: float
    ack_due: float
    distance_m: float = 0.0


class WorkOrder(msgspec.Struct, kw_only=True):
    id: str  # "<incident id>-<n>"
    department: str
    level: Level
    area: str  # the code of the area the unit holds: its village, town or district
    unit: str  # "station:<village>", "subcentre:<town>", "centre:<district>"
    status: OrderStatus = OrderStatus.DISPATCHED
    created: float
    accept_due: float | None = None
    finish_due: float | None = None
    accepted_at: float | None = None
    done_at: float | None = None
    assignee: str | None = None  # staff id
    offer: Offer | None = None
    offers_tried: list[str] = []
    progress: str = ""  # field progress: en_route, on_site
    note: str = ""
    photos: list[str] = []
    reason: str = ""  # why returned, parked or withdrawn
    parked_at: float | None = None
    escalations: int = 0
    overdue: bool = False  # past a deadline at the top level: nobody left to escalate to
    reworks: int = 0

    @property
    def next_due(self) -> float | None:
        """The deadline the escalation scheduler waits for, if any."""
        if self.overdue:
            return None
        if self.offer is not None and self.status in (OrderStatus.DISPATCHED, OrderStatus.ACCEPTED):
            due = self.accept_due if self.status is OrderStatus.DISPATCHED else self.finish_due
            return min(x for x in (self.offer.ack_due, due) if x is not None)
        if self.status is OrderStatus.DISPATCHED:
            return self.accept_due
        if self.status in (OrderStatus.ACCEPTED, OrderStatus.PARK_REQUESTED):
            return self.finish_due
        return None


class Incident(msgspec.Struct, kw_only=True):
    id: str
    category: str
    kind: str  # component or event
    title: str
    description: str = ""
    source: str
    status: Status = Status.COLLECTED
    urgency: str = "normal"
    severity: str = ""
    lat: float | None = None
    lon: float | None = None
    areas: AreaCodes | None = None
    cell: str | None = None
    reported_at: float
    updated_at: float
    registered_at: float | None = None
    dispatched_at: float | None = None
    accepted_at: float | None = None
    handled_at: float | None = None
    verified_at: float | None = None
    closed_at: float | None = None
    cancelled_at: float | None = None
    dispatch_due: float | None = None
    dispatch_overdue: bool = False  # the centre was told it missed dispatch_due
    close_due: float | None = None
    reports: int = 1
    last_report_at: float | None = None
    orders: list[WorkOrder] = []
    # Who the case goes to when the centre names no one: the category's departments, as the
    # report's source (a scenario pack, say) gave them when the category table lacks it.
    default_departments: list[str] = []
    reworks: int = 0  # failed verifications
    returns: int = 0  # orders returned as the wrong unit
    reopened: int = 0
    voided: bool = False  # registered, then cancelled: counts against registration accuracy
    parked_s: float = 0.0  # time the case's clock stood still while parked
    alert_id: str | None = None
    # Alerts of one group join one case (see Alert.group): the group's key, its alerts so far
    # and when the latest came; a later alert of the group joins while that is recent enough.
    group: str = ""
    grouped: int = 0
    group_at: float | None = None
    # What its reports are about, as "device:<id>" or "component:<id>": a report naming one of
    # them joins this case even when filed under a related category (kept for the categories
    # of a related group only, and only the first few).
    components: list[str] = []
    reason: str = ""  # last cancellation / reopening reason
    version: int = 0  # bumped on every save; a save with a stale version is refused
    # `title` in other languages ({"zh-CN": ...}): the scenario rule's translations, or the
    # category's names when its name is the title. `title` stays the API's stable text; a page
    # shows these in the reader's language. Dropped when an operator retitles the case (they no
    # longer translate what was written), and unset rather than empty so that a case without
    # any encodes as before (stores, the bus's pinned wire format).
    titles: dict[str, str] | msgspec.UnsetType = msgspec.UNSET

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    @property
    def departments(self) -> list[str]:
        return sorted({o.department for o in self.orders if o.status in LIVE_ORDERS})

    @property
    def parked(self) -> bool:
        return any(o.status is OrderStatus.PARKED for o in self.orders)

    def order(self, order_id: str) -> WorkOrder:
        for o in self.orders:
            if o.id == order_id:
                return o
        raise KeyError(order_id)

    def live_orders(self) -> list[WorkOrder]:
        return [o for o in self.orders if o.status in LIVE_ORDERS]

    @property
    def next_due(self) -> float | None:
        """The earliest deadline the scheduler must act on: an unit's, or the centre's own
        (a case still waiting to be dispatched)."""
        dues = [d for o in self.orders if (d := o.next_due) is not None]
        if (self.status in (Status.COLLECTED, Status.REGISTERED) and self.dispatch_due is not None
                and not self.dispatch_overdue):
            dues.append(self.dispatch_due)
        return min(dues) if dues else None


class Event(msgspec.Struct, frozen=True, omit_defaults=True):
    """One line of a case's timeline: who did what, from which key, what it changed."""

    at: float
    actor: str  # key id ("k_..."), "system", or "scheduler"
    action: str  # register, dispatch, order.accept, escalate ...
    before: str  # status before ("" when created)
    after: str
    reason: str = ""
    order_id: str = ""
    actor_name: str = ""
    detail: dict[str, Any] = {}
