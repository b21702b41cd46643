"""The storm guard on a desk with the in-memory store and a hand-set clock: above the rate a
category's new cases in one town wait in one storm case; other towns, other categories and
urgent cases go out as before; the storm ends with hysteresis; a supervisor decides the case;
a restarted desk carries on the storm it was in."""

from __future__ import annotations

import datetime as dt

import msgspec
import pytest

from cityops.act.desk import IncidentDesk
from cityops.act.storm import KIND, StormGuard
from cityops.domain.access import Role, Scope
from cityops.domain.city import AreaCodes, WorkCalendar
from cityops.domain.incidents.categories import CategoryTable
from cityops.domain.incidents.model import Report, Status
from cityops.domain.incidents.workflow import Actor, OutOfScope, Refused, Rules
from cityops.domain.workclock import WorkClock
from cityops.notify.memory import MemoryNotifier
from cityops.packs.categories_file import default_categories
from cityops.store.base import IncidentFilter
from cityops.store.memory import MemoryStore
from tests.clock_kit import Clock

TZ = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=TZ).timestamp()
TOWN_A = AreaCodes("310115", "310115001", "310115001001")
TOWN_A2 = AreaCodes("310115", "310115001", "310115001002")  # another village, same town
TOWN_B = AreaCodes("310115", "310115002", "310115002001")
OP = Actor("k_op", Role.OPERATOR, Scope())
GARBAGE = "event.sanitation.exposed_garbage"
OTHER = "event.street_order.street_vending"
FIRE = "event.emergency.fire"
FLOOD = "event.emergency.waterlogging"
DEPARTMENTS = ["sanitation", "police", "fire", "ambulance", "city_management", "water_affairs",
               "transport"]


def rules() -> Rules:
    table = default_categories(DEPARTMENTS)
    # A city that rated flooding merely "high" still never has it held: it is an emergency.
    table = [msgspec.structs.replace(c, urgency="high") if c.code == FLOOD else c
             for c in table]
    return Rules(CategoryTable(table), WorkClock(WorkCalendar(timezone="Asia/Shanghai")),
                 district="310115")


def make_desk(store, clock, notifier=None, **guard) -> IncidentDesk:
    desk = IncidentDesk(store, rules(), notifier or MemoryNotifier(), clock=clock)
    desk.storm = StormGuard(desk, **{"cases": 10, "window_s": 600.0, **guard})
    return desk


@pytest.fixture
def world():
    clock = Clock(T0)
    store = MemoryStore()
    notifier = MemoryNotifier()
    return make_desk(store, clock, notifier), clock, notifier


class Filer:
    """Reports with no point (so none merges into another) filed as alerts would be."""

    def __init__(self, desk: IncidentDesk, clock: Clock) -> None:
        self.desk, self.clock, self.n = desk, clock, 0

    async def file(self, category=GARBAGE, areas=TOWN_A, urgency=None, at=None):
        self.n += 1
        at = self.clock.now if at is None else at
        self.clock.now = max(self.clock.now, at)
        report = Report(f"alert:{self.n}", "sensor", at, text=f"alert {self.n}")
        return await self.desk.async_report(report, category, areas=areas, urgency=urgency,
                                            auto_register=True, title=f"bin {self.n} full",
                                            titles={"zh-CN": f"{self.n}号垃圾桶已满"},
                                            alert_id=f"a-{self.n}")


async def cases(desk) -> list:
    return await desk.store.list_incidents(IncidentFilter(), limit=1000)


def dispatched_notices(notifier) -> list:
    return [n for n in notifier.sent if n.kind == "order.dispatched"]


async def test_above_the_rate_new_cases_wait_in_one_storm_case(world):
    desk, clock, notifier = world
    f = Filer(desk, clock)
    first = [await f.file(at=T0 + i) for i in range(10)]
    assert all(r.incident.status is Status.DISPATCHED for r in first)
    assert len(dispatched_notices(notifier)) == 10
    held = [await f.file(at=T0 + 10 + i) for i in range(5)]
    storm_case = held[0].incident
    assert {r.incident.id for r in held} == {storm_case.id}
    assert storm_case.id.startswith("storm-")
    case = await desk.get(storm_case.id)
    assert case.status is Status.COLLECTED and case.orders == [] and case.reports == 5
    assert case.title == "storm: 5 Exposed garbage cases in 310115001 held"
    # In Chinese too, with the category's Chinese name (this desk has no map: the area's code).
    assert case.titles == {"zh-CN": "310115001暴露垃圾案件激增，5件暂挂待研判"}
    assert case.areas == AreaCodes("310115", "310115001", "310115001")
    # No work order beyond the first ten, no department told again, one supervisor notice.
    assert sum(len(c.orders) for c in await cases(desk)) == 10
    assert len(dispatched_notices(notifier)) == 10
    storm_notices = [n for n in notifier.sent if n.kind == "storm.started"]
    assert [n.recipient for n in storm_notices] == ["centre:310115"]
    # The held reports are listed with the case, and the timeline says why each is there.
    reports = await desk.store.incident_reports(case.id)
    assert [r.key for r in reports] == [f"alert:{i}" for i in range(11, 16)]
    holds = [e for e in await desk.store.incident_events(case.id) if e.action == "storm.hold"]
    assert [e.detail["title"] for e in holds] == [f"bin {i} full" for i in range(11, 16)]
    assert "Storm guard" in holds[0].reason
    # A repeat of a held report files nothing.
    again = await desk.async_report(Report("alert:12", "sensor", T0 + 11), GARBAGE,
                                    areas=TOWN_A, auto_register=True)
    assert again.repeated and (await desk.get(case.id)).reports == 5
    [storm] = await desk.storm.active(clock.now)
    assert (storm.category, storm.area, storm.held, storm.incident, storm.threshold) == (
        GARBAGE, "310115001", 5, case.id, 10)


async def test_another_village_of_the_town_joins_the_storm_another_town_does_not(world):
    desk, clock, _ = world
    f = Filer(desk, clock)
    for i in range(10):
        await f.file(at=T0 + i)
    assert (await f.file(areas=TOWN_A2, at=T0 + 20)).incident.id.startswith("storm-")
    other_town = await f.file(areas=TOWN_B, at=T0 + 21)
    other_kind = await f.file(category=OTHER, at=T0 + 22)
    assert other_town.incident.status is Status.DISPATCHED
    assert other_kind.incident.status is Status.DISPATCHED


@pytest.mark.parametrize("category,urgency", [(FIRE, None), (FLOOD, None),
                                              ("event.emergency.traffic_accident", None),
                                              ("event.pack.new_thing", "urgent")])
async def test_urgent_cases_are_never_held(world, category, urgency):
    desk, clock, notifier = world
    f = Filer(desk, clock)
    done = [await f.file(category=category, urgency=urgency, at=T0 + i) for i in range(25)]
    assert all(r.incident.status is Status.DISPATCHED for r in done)
    assert await desk.storm.active(clock.now) == []
    assert not [n for n in notifier.sent if n.kind == "storm.started"]


async def test_the_storm_ends_with_hysteresis(world):
    desk, clock, _ = world
    f = Filer(desk, clock)
    for i in range(10):
        assert (await f.file(at=T0 + 10 * i)).incident.status is Status.DISPATCHED
    for t in (100, 110, 120):
        assert (await f.file(at=T0 + t)).incident.status is Status.COLLECTED
    # Seven in the last window: under the threshold, above half of it: still a storm.
    held = await f.file(at=T0 + 650)
    assert held.incident.id.startswith("storm-") and held.incident.reports == 4
    # Unless more come, fewer than half are left in the window once 90 s + 600 s have passed.
    assert len(await desk.storm.active(T0 + 689)) == 1
    assert await desk.storm.active(T0 + 690) == []
    after = await f.file(at=T0 + 720)
    assert after.incident.status is Status.DISPATCHED
    record = await desk.store.get_record(KIND, held.incident.id)
    assert record is not None and record.status == "ended"
    # Counted as before: with 650 and 720 in the window, eight more go out, the next waits.
    more = [await f.file(at=T0 + 721 + i) for i in range(8)]
    assert all(r.incident.status is Status.DISPATCHED for r in more)
    new = await f.file(at=T0 + 740)
    assert new.incident.status is Status.COLLECTED and new.incident.id != held.incident.id


async def test_a_supervisor_dispatches_the_storm_case_as_one_job_or_cancels_it(world):
    desk, clock, notifier = world
    f = Filer(desk, clock)
    for i in range(10):
        await f.file(at=T0 + i)
    storm_id = (await f.file(at=T0 + 10)).incident.id
    await f.file(at=T0 + 11)
    clock.now = T0 + 30
    await desk.async_act(storm_id, "register", OP)
    job = await desk.async_act(storm_id, "dispatch", OP)
    assert job.status is Status.DISPATCHED and [o.department for o in job.orders] == \
        ["sanitation"]
    assert job.orders[0].unit == "subcentre:310115001"
    assert len(dispatched_notices(notifier)) == 11  # ten cases and the one job
    # The storm goes on: the next held report waits in a new case, which is cancelled.
    nxt = await f.file(at=T0 + 40)
    assert nxt.incident.id == f"{storm_id}-2" and nxt.incident.status is Status.COLLECTED
    with pytest.raises(Refused):
        await desk.async_act(nxt.incident.id, "cancel", OP)  # a reason is required
    gone = await desk.async_act(nxt.incident.id, "cancel", OP, reason="gateway fault, not bins")
    assert gone.status is Status.CANCELLED and gone.orders == []
    [storm] = await desk.storm.active(clock.now)
    assert storm.cases == [storm_id, f"{storm_id}-2"] and storm.held == 3
    assert len([n for n in notifier.sent if n.kind == "storm.started"]) == 1


async def test_release_files_the_held_reports_as_separate_cases(world):
    desk, clock, notifier = world
    f = Filer(desk, clock)
    for i in range(10):
        await f.file(at=T0 + i)
    storm_id = (await f.file(at=T0 + 10)).incident.id
    await f.file(areas=TOWN_A2, at=T0 + 11)
    clock.now = T0 + 60
    scoped = Actor("k_b", Role.OPERATOR, Scope(area="310115002"))
    with pytest.raises(OutOfScope):
        await desk.storm.release(storm_id, scoped)
    doc, released = await desk.storm.release(storm_id, OP)
    assert doc.id == storm_id and len(released) == 2
    assert [r.status for r in released] == [Status.DISPATCHED] * 2
    assert [r.areas for r in released] == [TOWN_A, TOWN_A2]  # where each was reported
    assert [r.title for r in released] == ["bin 11 full", "bin 12 full"]
    assert [r.titles for r in released] == [{"zh-CN": "11号垃圾桶已满"},
                                            {"zh-CN": "12号垃圾桶已满"}]
    assert len(dispatched_notices(notifier)) == 12
    assert (await desk.get(storm_id)).status is Status.CANCELLED
    with pytest.raises(Refused):
        await desk.storm.release(storm_id, OP)


async def test_a_restarted_desk_carries_on_the_storm_and_the_count(world):
    desk, clock, notifier = world
    store = desk.store
    f = Filer(desk, clock)
    for i in range(9):
        await f.file(at=T0 + i)
    await f.file(areas=TOWN_B, at=T0 + 9)
    for i in range(10):
        await f.file(category=OTHER, areas=TOWN_B, at=T0 + 10 + i)
    storm_id = (await f.file(category=OTHER, areas=TOWN_B, at=T0 + 20)).incident.id

    clock.now = T0 + 30
    desk2 = make_desk(store, clock, notifier)
    await desk2.storm.restore()
    f2 = Filer(desk2, clock)
    f2.n = f.n
    # Town A had nine: the tenth goes out, the eleventh is held.
    assert (await f2.file(at=T0 + 31)).incident.status is Status.DISPATCHED
    assert (await f2.file(at=T0 + 32)).incident.status is Status.COLLECTED
    # Town B's storm goes on in the same case, with no second notice.
    held = await f2.file(category=OTHER, areas=TOWN_B, at=T0 + 33)
    assert held.incident.id == storm_id and held.incident.reports == 2
    starts = [n for n in notifier.sent if n.kind == "storm.started"]
    assert len(starts) == 2  # town B's storm, then town A's
    [b] = [s for s in await desk2.storm.active(clock.now) if s.area == "310115002"]
    assert b.held == 2

    # Restarted after the storm is over: it is marked ended, and nothing is held.
    clock.now = T0 + 2000
    desk3 = make_desk(store, clock, notifier)
    await desk3.storm.restore()
    assert await desk3.storm.active(clock.now) == []
    assert (await store.get_record(KIND, storm_id)).status == "ended"
    f3 = Filer(desk3, clock)
    f3.n = f2.n
    assert (await f3.file(category=OTHER, areas=TOWN_B)).incident.status is Status.DISPATCHED


async def test_the_guard_can_be_turned_off(world):
    desk, clock, _ = world
    desk.storm = StormGuard(desk, cases=0)
    f = Filer(desk, clock)
    done = [await f.file(at=T0 + i) for i in range(30)]
    assert all(r.incident.status is Status.DISPATCHED for r in done)


def test_bad_settings_are_refused(world):
    desk, _, _ = world
    with pytest.raises(ValueError, match="storm level"):
        StormGuard(desk, level="street")
    with pytest.raises(ValueError):
        StormGuard(desk, cases=-1)
