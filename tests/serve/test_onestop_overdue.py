"""Applications past their legal time limit, on live nodes with an injected clock: the serve
scheduler flags each once (across ticks, a restart and two nodes on one store), tells the
department and not the citizen, leaves alone what was decided in time or waits for the citizen,
and a bundle is overdue while any of its applications is."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import msgspec
import pytest

from cityops.domain.access import Role, Scope
from cityops.domain.citizens import Citizen
from cityops.domain.city import Department
from cityops.domain.onestop.applications import Actor, submission_overdue
from cityops.domain.onestop.catalogue import Bundle, Catalogue, FormField, ServiceItem
from tests.clock_kit import Clock

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
FRIDAY_15 = dt.datetime(2026, 11, 20, 15, 0, tzinfo=SHANGHAI).timestamp()
MONDAY_10 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI).timestamp()
HOUR, DAY = 3600, 86_400

NAME = FormField("shop_name", "Shop name")
CATALOGUE = Catalogue(
    items=[
        # 4 working hours from Friday 15:00 run out on Monday at 10:00.
        ServiceItem(code="sign_permit", name="Sign permit", department="streets",
                    fields=[NAME], time_limit="4wh"),
        ServiceItem(code="shop_licence", name="Shop licence", department="trade",
                    fields=[NAME], time_limit="2wd"),
    ],
    bundles=[Bundle(code="open_shop", name="Open a shop", items=["shop_licence", "sign_permit"])],
)
STREETS = Actor("k-streets", Role.DEPARTMENT, Scope(department="streets"))
TRADE = Actor("k-trade", Role.DEPARTMENT, Scope(department="trade"))
WANG = Actor("k-wang", Role.CITIZEN, Scope(), "c-wang")
PHONE = "13900000009"


@pytest.fixture
def city(grid_pack):
    return msgspec.structs.replace(
        grid_pack, categories=[], services=CATALOGUE, policies=[],
        departments=[Department("trade", "Trade", None, ["990001"]),
                     Department("streets", "Streets", None, ["990001"])])


def node_settings(**more):
    # One start-up tick and then none for an hour: the test's own ticks are the only ones.
    return {"notify_url": "memory:", "escalate_tick_s": 3600.0, **more}


async def apply(live, service="sign_permit", key="k1"):
    if await live.node.serve.citizens.get("c-wang") is None:
        await live.node.serve.citizens.register(Citizen(id="c-wang", name="Wang", phone=PHONE))
    _, apps, _ = await live.node.serve.onestop.desk.submit(
        WANG, "c-wang", service=service, answers={"shop_name": "Wang's"}, key=key)
    return apps[0]


def overdue_notices(live) -> list:
    return [n for n in live.node.act.notifier.sent if n.kind == "application.overdue"]


async def test_flagged_once_after_the_deadline_on_the_working_hours_clock(
        tmp_path, city, live_node) -> None:
    clock = Clock(FRIDAY_15)
    async with live_node(city, tmp_path / "data", clock=clock, **node_settings()) as live:
        app = await apply(live)
        assert app.due == MONDAY_10
        scheduler, desk = live.node.serve.scheduler, live.node.serve.onestop.desk
        to_citizen = sum(n.recipient == PHONE for n in live.node.act.notifier.sent)
        for now in (FRIDAY_15 + 3 * HOUR, MONDAY_10 - DAY, MONDAY_10 - HOUR, MONDAY_10):
            clock.now = now  # the wall clock ran for days; the working-hours clock did not
            assert (await scheduler.tick())["applications_overdue"] == 0
        assert overdue_notices(live) == []

        clock.now = MONDAY_10 + 4 * HOUR  # Monday 14:00
        assert (await scheduler.tick())["applications_overdue"] == 1
        assert (await scheduler.tick())["applications_overdue"] == 0
        clock.now += DAY
        assert (await scheduler.tick())["applications_overdue"] == 0

        flagged = await desk.get(app.id, STREETS)
        assert flagged.overdue_since == MONDAY_10 and flagged.overdue(clock.now)
        assert [e.action for e in flagged.timeline] == ["submit", "overdue"]
        [notice] = overdue_notices(live)
        assert notice.recipient == "streets" and notice.urgency == "high"
        assert notice.subject == f"[Sign permit] {app.id} overdue"
        assert notice.body == (f"Sign permit: application {app.id} is overdue: its time limit "
                               "(4wh) ran out at 2026-11-23 10:00; 2 h 30 min late on the "
                               "working-hours clock (status submitted)")
        assert notice.data["application"] == app.id
        # The citizen heard of the submission, and of nothing since.
        assert sum(n.recipient == PHONE for n in live.node.act.notifier.sent) == to_citizen
        # Flagged, it no longer has a deadline for the scan to find, and still lists as late.
        rec = await live.node.store.get_record("application", app.id)
        assert rec.due is None
        late = await desk.list_applications(department="streets", status=None, overdue=True,
                                            limit=10, before=None)
        assert [(a.id, key) for a, key in late] == [(app.id, MONDAY_10)]


async def test_a_restart_neither_loses_nor_repeats_a_flag(tmp_path, city, live_node) -> None:
    clock = Clock(FRIDAY_15)
    async with live_node(city, tmp_path / "data", clock=clock, **node_settings()) as live:
        app = await apply(live)
    clock.now = MONDAY_10 + HOUR  # the deadline passed while the node was down
    async with live_node(city, tmp_path / "data", clock=clock, **node_settings()) as live:
        await live.node.serve.scheduler.tick()  # the start-up tick may have got there first
        assert [n.data["application"] for n in overdue_notices(live)] == [app.id]
        assert "1 h late" in overdue_notices(live)[0].body
    clock.now += DAY
    async with live_node(city, tmp_path / "data", clock=clock, **node_settings()) as live:
        assert (await live.node.serve.scheduler.tick())["applications_overdue"] == 0
        assert overdue_notices(live) == []
        held = await live.node.serve.onestop.desk.get(app.id, STREETS)
        assert held.overdue_since == MONDAY_10
        assert [e.action for e in held.timeline] == ["submit", "overdue"]


async def test_decided_in_time_or_waiting_for_the_citizen_is_not_flagged(
        tmp_path, city, live_node) -> None:
    clock = Clock(FRIDAY_15)
    async with live_node(city, tmp_path / "data", clock=clock, **node_settings()) as live:
        desk, scheduler = live.node.serve.onestop.desk, live.node.serve.scheduler
        done = await apply(live, key="done")
        waiting = await apply(live, key="waiting")
        for action in ("accept", "approve"):
            await desk.act(done.id, action, STREETS)
        # Asked for more on Friday 17:00 with 2 hours left: 17:00-18:00 and Monday 09:00-10:00.
        clock.now = FRIDAY_15 + 2 * HOUR
        await desk.act(waiting.id, "need_more", STREETS, reason="the sign's size",
                       asked=["shop_name"])
        clock.now = MONDAY_10 + 2 * DAY  # Wednesday: both would be late by the first limit
        assert (await scheduler.tick())["applications_overdue"] == 0
        # Wang answers on Wednesday 10:00; the two hours left run out at 12:00.
        back = await desk.act(waiting.id, "resubmit", WANG, answers={"shop_name": "Wang's Shop"})
        assert back.due == MONDAY_10 + 2 * DAY + 2 * HOUR
        clock.now += 1.5 * HOUR
        assert (await scheduler.tick())["applications_overdue"] == 0
        clock.now = MONDAY_10 + 2 * DAY + 4 * HOUR  # 14:00: 13:30-14:00 late, lunch is not
        assert (await scheduler.tick())["applications_overdue"] == 1
        assert "30 min late" in overdue_notices(live)[0].body
        assert (await desk.get(done.id, STREETS)).overdue_since is None
        late = await desk.list_applications(department=None, status=None, overdue=True,
                                            limit=10, before=None)
        assert [a.id for a, _ in late] == [waiting.id]


async def test_a_bundle_is_overdue_while_any_of_its_departments_is(
        tmp_path, city, live_node) -> None:
    clock = Clock(FRIDAY_15)
    async with live_node(city, tmp_path / "data", clock=clock, **node_settings()) as live:
        desk, scheduler = live.node.serve.onestop.desk, live.node.serve.scheduler
        await live.node.serve.citizens.register(Citizen(id="c-wang", name="Wang", phone=PHONE))
        sub, (shop, sign), _ = await desk.submit(
            WANG, "c-wang", bundle="open_shop", answers={"shop_name": "Wang's"}, key="b1")
        for action in ("accept", "approve", "issue_result"):
            await desk.act(shop.id, action, TRADE)  # trade in time
        clock.now = MONDAY_10 + HOUR
        assert (await scheduler.tick())["applications_overdue"] == 1
        _, apps = await desk.submission(sub.id, WANG)
        assert submission_overdue(apps, clock.now) == (True, MONDAY_10)
        assert [n.recipient for n in overdue_notices(live)] == ["streets"]
        for action in ("accept", "approve"):
            await desk.act(sign.id, action, STREETS)
        _, apps = await desk.submission(sub.id, WANG)
        assert submission_overdue(apps, clock.now) == (False, MONDAY_10)  # decided, late


async def test_overdue_pages_go_by_the_deadline(tmp_path, city, live_node) -> None:
    clock = Clock(FRIDAY_15)
    async with live_node(city, tmp_path / "data", clock=clock, **node_settings()) as live:
        desk = live.node.serve.onestop.desk
        made = []
        for n in range(5):
            clock.now = FRIDAY_15 + n * 60
            made.append((await apply(live, key=f"p{n}")).id)
        clock.now = MONDAY_10 + HOUR
        await live.node.serve.scheduler.tick()
        page = await desk.list_applications(department="streets", status="submitted",
                                            overdue=True, limit=2, before=None)
        seen = [a.id for a, _ in page]
        while page:
            app, key = page[-1]
            page = await desk.list_applications(department="streets", status="submitted",
                                                overdue=True, limit=2, before=(key, app.id))
            seen += [a.id for a, _ in page]
        assert seen == made  # soonest due first, each once
        assert await desk.list_applications(department="trade", status=None, overdue=True,
                                            limit=10, before=None) == []
        assert await desk.list_applications(department="streets", status="need_more",
                                            overdue=True, limit=10, before=None) == []


def _shared_store(backend: str, tmp_path, request) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/shared.db"
    url = request.getfixturevalue("postgres_url")
    schema = f"cityops_overdue_{uuid.uuid4().hex[:8]}"
    request.addfinalizer(lambda: _drop(url, schema))
    return f"{url}?schema={schema}"


def _drop(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_two_nodes_on_one_store_flag_it_once(tmp_path, city, live_node, backend,
                                                   request) -> None:
    store_url = _shared_store(backend, tmp_path, request)
    clock = Clock(FRIDAY_15)
    # Nodes on one store share one data key (docs/deploy.md); they refuse to start otherwise.
    shared = node_settings(store_url=store_url, data_key_file=tmp_path / "data.key")
    async with live_node(city, tmp_path / "a", clock=clock, **shared) as a, \
            live_node(city, tmp_path / "b", clock=clock, **shared) as b:
        apps = [await apply(a, key=f"k{n}") for n in range(20)]
        clock.now = MONDAY_10 + HOUR
        counts = await asyncio.gather(*(node.node.serve.scheduler.tick()
                                        for node in (a, b, a, b)))
        assert sum(c["applications_overdue"] for c in counts) == len(apps)
        sent = overdue_notices(a) + overdue_notices(b)
        assert sorted(n.data["application"] for n in sent) == sorted(app.id for app in apps)
