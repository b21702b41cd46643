"""The closed loop on a real node (SQLite store, incident desk, ingest) and a fake clock:
a case goes accept -> en route -> on site -> done -> verified (or back for rework) -> closed,
people travel at urban speeds and their trackers show it, the seed's joint case beats the
same case dispatched one department after another, and a tick's work stays bounded."""

from __future__ import annotations

import math

import pytest

from tests.clock_kit import Clock
from cityops.domain.incidents.model import Report
from cityops.sim import fieldplan, jointcase
from cityops.sim.fieldwork import CENTRE, Fieldwork
from tests.loop_kit import START, loop_city

STEP_S = 15.0


async def _report(node, key: str, lat: float, lon: float,
                  category: str = "event.sanitation.exposed_garbage") -> str:
    report = Report(key=f"test:{key}", source="inspector", at=node.clock(), lat=lat, lon=lon,
                    reporter="tester")
    result = await node.act.desk.async_report(report, category, actor=CENTRE,
                                              auto_register=False)
    return result.incident.id


async def _run_until(work: Fieldwork, clock: Clock, done, limit_s: float = 4 * 3600.0):
    end = clock.now + limit_s
    while clock.now < end:
        clock.now += STEP_S
        await work.tick()
        if await done():
            return
    raise AssertionError(f"not done after {limit_s / 60:.0f} simulated minutes: "
                         f"{dict(work.phases())}")


def _actions(events, order_id: str | None = None) -> list[str]:
    return [e.action for e in events if order_id is None or e.order_id in ("", order_id)]


@pytest.fixture
async def served(tmp_path, live_node):
    clock = Clock(START)
    async with live_node(loop_city(), tmp_path / "data", clock=clock,
                         notify_url="memory:") as live:
        yield live, clock


@pytest.fixture
async def loop(served):
    live, clock = served
    return live.node, clock


def test_speeds_and_paths_are_urban():
    assert fieldplan.speed_mps("sanitation", 200.0) == fieldplan.WALK_MPS == 1.3
    assert 4.0 <= fieldplan.speed_mps("city_management", 2000.0) <= 5.0
    assert 8.0 <= fieldplan.speed_mps("transport", 2000.0) <= 12.0
    assert fieldplan.speed_mps("fire", 100.0) == fieldplan.EMERGENCY_MPS  # never on foot
    start, end = (31.12, 121.42), (31.14, 121.45)
    path = fieldplan.street_path(start, end)
    straight = fieldplan.polyline([start, end]).metres
    # One corner: longer than the crow flies, never more than sqrt(2) times it.
    assert straight < path.metres <= math.sqrt(2) * straight + 1.0
    assert path.at(0.0) == pytest.approx(start) and path.at(path.metres) == pytest.approx(end)
    # Work times are the category's, and the same for the same seed.
    minutes = fieldplan.work_s(1, "event.street_order.street_vending", "city_management",
                               "o-1") / 60
    assert 10 <= minutes <= 30
    assert fieldplan.work_s(1, "event.street_order.street_vending", "city_management",
                            "o-1") == minutes * 60


async def test_a_case_runs_the_whole_loop(loop):
    node, clock = loop
    work = Fieldwork(node, seed=3, rework_share=0.0)
    await work.tick()  # the trackers' first fixes: everyone is on the board
    case = await _report(node, "garbage", 31.135, 121.44)
    statuses: set[str] = set()
    fixes: list[tuple[float, float, float]] = []

    async def closed() -> bool:
        for person, key in work.busy.items():
            if work.jobs[key].kind == "order":
                statuses.add(node.act.staff.status[person].value)
                if work.jobs[key].phase == "arrive":
                    fixes.append((clock.now, *work.where[person]))
        return (await node.act.desk.get(case)).status == "closed"

    await _run_until(work, clock, closed)
    inc = await node.act.desk.get(case)
    events = list(await node.store.incident_events(case))
    order = inc.orders[0]
    assert order.department == "sanitation" and order.assignee is not None
    assert _actions(events, order.id) == [
        "collect", "register", "dispatch", "order.assign", "order.acknowledge",
        "order.en_route", "order.on_site", "order.finish", "verify", "close"]
    assert {"en_route", "on_site"} <= statuses  # offered, the person is still available
    # Evidence: a photo kept on this node for the order, cited by the finish.
    assert order.photos and order.photos[0].startswith(f"/api/v1/work-orders/{order.id}/photos/")
    # The trip took as long as its length at an urban speed, and the tracker moved on it.
    at = {e.action: e.at for e in events}
    travel_s = at["order.on_site"] - at["order.en_route"]
    assert travel_s > 0
    assert len({(lat, lon) for _, lat, lon in fixes}) >= 2
    inspector = next(e.actor_name for e in events if e.action == "verify")
    assert inspector != order.assignee  # not checked by the person who did it
    assert node.act.staff.status[order.assignee].value == "available"
    assert not work.busy


async def test_a_failed_check_sends_the_work_back(loop):
    node, clock = loop
    work = Fieldwork(node, seed=3, rework_share=1.0)
    await work.tick()
    case = await _report(node, "again", 31.13, 121.43)

    async def closed() -> bool:
        return (await node.act.desk.get(case)).status == "closed"

    await _run_until(work, clock, closed)
    inc = await node.act.desk.get(case)
    events = list(await node.store.incident_events(case))
    actions = _actions(events)
    assert inc.reworks == 1 and inc.orders[0].reworks == 1
    rework = actions.index("rework")
    # Back to the same person, out again, finished again, then verified and closed.
    assert actions[rework + 1:] == ["order.en_route", "order.on_site", "order.finish", "verify",
                                    "close"]


async def test_joint_dispatch_beats_one_department_after_another(served):
    live, clock = served
    node = live.node
    work = Fieldwork(node, seed=1)
    await work.tick()
    case = await jointcase.stage(work, key="joint")

    async def closed() -> bool:
        return (await node.act.desk.get(case)).status == "closed"

    await _run_until(work, clock, closed)
    inc = await node.act.desk.get(case)
    assert inc.titles == jointcase.TITLES  # the demo's screen shows it in Chinese too
    events = list(await node.store.incident_events(case))
    result = jointcase.compare(inc, events)
    assert sorted(leg.department for leg in result.legs) == sorted(jointcase.DEPARTMENTS)
    assert len({leg.dispatched for leg in result.legs}) == 1  # all at the same time
    assert result.joint_s is not None and result.sequential_s is not None
    # At least the three relays longer, and the joint run about the seed's 40 minutes.
    assert result.sequential_s >= result.joint_s + 3 * jointcase.RELAY_S - 1e-6
    assert 25 * 60 <= result.joint_s <= 60 * 60
    # The same seed stages the same case at the same spot.
    assert jointcase.site(node, 1) == (inc.lat, inc.lon)
    # The screen reads the same sum from the API, for a key that may see the case.
    order = ",".join(jointcase.DEPARTMENTS)
    async with live.client(await live.key("operator")) as c:
        r = await c.get(f"/api/v1/incidents/{case}/joint", params={"order": order})
        assert r.status_code == 200, r.text
        assert (r.json()["joint_s"], r.json()["sequential_s"]) == (result.joint_s,
                                                                  result.sequential_s)
        assert [leg["department"] for leg in r.json()["legs"]] == jointcase.DEPARTMENTS
        r = await c.get(f"/api/v1/incidents/{case}/joint", params={"relay_s": -1})
        assert r.status_code == 400 and "relay_s" in r.json()["error"]


async def test_a_tick_does_bounded_work(loop):
    node, clock = loop
    work = Fieldwork(node, seed=2, max_moves=5, page=20)
    await work.tick()
    for k in range(60):
        await _report(node, f"many-{k}", 31.11 + 0.003 * (k % 20), 121.41 + 0.05 * (k // 20))
    moves_before = node.act.desk.stats["moves"]
    clock.now += 3600.0  # every check long due
    await work.tick()
    assert node.act.desk.stats["moves"] - moves_before <= 5
    assert work.stats["deferred"] >= 1
    # The scan read one page: 20 of the 60 new cases have a job so far.
    assert sum(1 for j in work.jobs.values() if j.kind == "centre") == 20
