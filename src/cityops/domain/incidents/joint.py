"""What joint dispatch saved on one case: discovery to done as it happened, against the same
case sent one department after another.

Before the centre could dispatch to several departments at once, a case that needed police,
fire, ambulance and city management went from one to the next: the first unit arrived, sized
up the scene and phoned for the next, which only then set out. The sum below replays a closed
case that way from its own timeline: each unit's own times (taking the job up and travelling,
then working on site) exactly as measured, but each next unit called `relay_s` after the one
before arrived; the end of the case (verification, closing) takes what it took. The units go in
`order` (departments named there first, in that order), else in the order they were dispatched.

Only closed cases with every unit on site and finished have figures; the legs are given
either way, so a screen can show a case in progress.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import msgspec

from cityops.domain.incidents.model import Event, Incident, OrderStatus, WorkOrder

RELAY_S = 600.0  # ten minutes for a unit on site to size up the scene and call the next


class Leg(msgspec.Struct, frozen=True):
    department: str
    order_id: str
    status: str
    progress: str  # en_route, on_site, or "" (see WorkOrder.progress)
    dispatched: float
    on_site: float | None
    done: float | None
    to_site_s: float | None
    work_s: float | None


class Comparison(msgspec.Struct, frozen=True):
    legs: list[Leg]
    relay_s: float
    joint_s: float | None  # discovery to closed, as it happened
    sequential_s: float | None  # the same units one after another (None until closed)
    saved_s: float | None


def _leg(order: WorkOrder, on_site: float | None) -> Leg:
    done = order.done_at
    to_site = None if on_site is None else on_site - order.created
    work = None if done is None or on_site is None else done - on_site
    return Leg(order.department, order.id, order.status.value, order.progress, order.created,
               on_site, done, to_site, work)


def compare(incident: Incident, timeline: Iterable[Event], relay_s: float = RELAY_S,
            order: Sequence[str] = ()) -> Comparison:
    on_site: dict[str, float] = {}
    for event in timeline:
        if event.action == "order.on_site" and event.order_id:
            on_site[event.order_id] = event.at  # the last arrival (a rework goes again)
    rank = {d: i for i, d in enumerate(order)}
    orders = sorted((o for o in incident.orders if o.status is not OrderStatus.WITHDRAWN),
                    key=lambda o: (rank.get(o.department, len(rank)), o.created, o.id))
    legs = [_leg(o, on_site.get(o.id)) for o in orders]
    timed = [(leg, leg.to_site_s, leg.work_s) for leg in legs]
    if incident.closed_at is None or not legs or any(
            to_site is None or work is None for _, to_site, work in timed):
        return Comparison(legs, relay_s, None, None, None)
    joint = incident.closed_at - incident.reported_at
    handled = incident.handled_at or max(leg.done or 0.0 for leg in legs)
    t = finished = legs[0].dispatched
    for k, (_, to_site, work) in enumerate(timed):
        arrived = (t if k == 0 else t + relay_s) + (to_site or 0.0)
        finished = max(finished, arrived + (work or 0.0))
        t = arrived
    sequential = finished + (incident.closed_at - handled) - incident.reported_at
    return Comparison(legs, relay_s, joint, sequential, sequential - joint)
