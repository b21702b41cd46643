"""The incident desk on the in-memory store: concurrent moves, offers passed on when not
acknowledged, a full notifier that does not undo a dispatch."""

from __future__ import annotations

import asyncio
import datetime as dt

import msgspec
import numpy as np
import pytest

from cityops.act.desk import IncidentDesk, incident_id_for
from cityops.act.staff import StaffBoard
from cityops.domain.access import Role, Scope
from cityops.domain.city import AreaCodes, Staff, WorkCalendar
from cityops.domain.incidents.categories import CategoryTable
from cityops.domain.incidents.model import Report, Status
from cityops.domain.incidents.workflow import Actor, Rules
from cityops.domain.kinds import MAX_CHANNELS
from cityops.domain.workclock import WorkClock
from cityops.notify.base import NotifierFull
from cityops.notify.memory import MemoryNotifier
from cityops.packs.categories_file import default_categories
from cityops.store.memory import MemoryStore

TZ = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=TZ).timestamp()
PLACE = AreaCodes("310115", "310115001", "310115001001")
OP = Actor("k_op", Role.OPERATOR, Scope())
GARBAGE = "event.sanitation.exposed_garbage"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def staff_board() -> StaffBoard:
    staff = [Staff(f"s-{i}", f"P{i}", "sanitation", f"d-{i}", "310115001001") for i in range(3)]
    ts = np.full(3 * MAX_CHANNELS, int(T0 * 1e6), np.int64)
    value = np.full(3 * MAX_CHANNELS, np.nan)
    for i, (lat, lon) in enumerate([(31.2001, 121.5), (31.2010, 121.5), (31.2100, 121.5)]):
        value[i * MAX_CHANNELS:i * MAX_CHANNELS + 2] = (lat, lon)
    index = {f"d-{i}": i for i in range(3)}
    return StaffBoard(staff, index.get, lambda s: (ts[s], value[s]))


@pytest.fixture
def setup():
    clock = Clock()
    store = MemoryStore()
    notifier = MemoryNotifier()
    rules = Rules(CategoryTable(default_categories(["sanitation", "police", "fire",
                                                    "city_management"])),
                  WorkClock(WorkCalendar(timezone="Asia/Shanghai")), district="310115")
    desk = IncidentDesk(store, rules, notifier, staff=staff_board(), clock=clock,
                        ack_timeout_s=60)
    return desk, clock, notifier


async def dispatched(desk) -> str:
    report = Report("r-1", "inspector", T0, lat=31.2, lon=121.5)
    res = await desk.async_report(report, GARBAGE, actor=OP, areas=PLACE, auto_register=True)
    assert res.incident.status is Status.DISPATCHED
    return res.incident.id


async def test_an_unacknowledged_offer_passes_to_the_next_nearest(setup):
    desk, clock, notifier = setup
    incident_id = await dispatched(desk)
    order = f"{incident_id}-1"
    inc = await desk.async_act_on_order(order, "assign", OP)
    assert inc.orders[0].offer.staff_id == "s-0"
    clock.now += 59
    assert await desk.async_escalate_due() == 0
    clock.now += 1
    assert await desk.async_escalate_due() == 1
    inc = await desk.get(incident_id)
    assert inc.orders[0].offer.staff_id == "s-1" and inc.orders[0].offers_tried == ["s-0", "s-1"]
    clock.now += 60
    await desk.async_escalate_due()
    clock.now += 60
    await desk.async_escalate_due()  # s-2 timed out too: nobody left, no offer
    inc = await desk.get(incident_id)
    assert inc.orders[0].offer is None and inc.orders[0].offers_tried == ["s-0", "s-1", "s-2"]
    offered = [n.recipient for n in notifier.sent if n.kind == "order.offered"]
    assert offered == ["s-0", "s-1", "s-2"]


async def test_concurrent_moves_both_land_or_are_refused_never_lost(setup):
    desk, clock, _ = setup
    incident_id = await dispatched(desk)
    inc = await desk.async_act(incident_id, "redispatch", OP, departments=["police", "fire"])
    orders = [o.id for o in inc.orders]
    # Three units accept at the same moment: each save sees the others' versions.
    await asyncio.gather(*(desk.async_act_on_order(o, "accept", OP) for o in orders))
    inc = await desk.get(incident_id)
    assert {o.status for o in inc.orders} == {"accepted"} and inc.status is Status.ACCEPTED
    events = await desk.store.incident_events(incident_id)
    assert [e.action for e in events].count("order.accept") == 3


async def test_a_full_notifier_does_not_undo_a_dispatch(setup):
    desk, clock, notifier = setup
    notifier.fail_next(5, NotifierFull("sanitation"))
    incident_id = await dispatched(desk)
    inc = await desk.get(incident_id)
    assert inc.status is Status.DISPATCHED
    assert desk.stats["notify_refused"] >= 1


async def test_report_ids_are_deterministic_and_repeats_file_nothing(setup):
    desk, clock, _ = setup
    report = Report("alert:abc", "sensor", T0, lat=31.2, lon=121.5)
    first = await desk.async_report(report, GARBAGE, areas=PLACE)
    again = await desk.async_report(report, GARBAGE, areas=PLACE)
    assert first.incident.id == incident_id_for("alert:abc") == again.incident.id
    assert again.repeated and again.incident.reports == 1
    merged = await desk.async_report(msgspec.structs.replace(report, key="alert:def"), GARBAGE,
                                     areas=PLACE)
    assert merged.merged is False  # no city map: no place to merge by (merging needs cells)
