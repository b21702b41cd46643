"""The serve side's services on live nodes: what happens when two people act at once, what
survives a restart, and the scheduler driven by an injected clock."""

from __future__ import annotations

import asyncio
import datetime as dt

import msgspec
import pytest

from cityops.domain.access import Role, Scope
from cityops.domain.citizens import Citizen
from cityops.domain.city import Department
from cityops.domain.incidents.workflow import Actor, Refused
from cityops.serve.cabinets import WrongCode
from tests.clock_kit import Clock

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
MONDAY_10 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI).timestamp()
OPERATOR = Actor("k_op", Role.OPERATOR, Scope(), "agent")


@pytest.fixture
def city(grid_pack):
    return msgspec.structs.replace(grid_pack, departments=[
        Department("sanitation", "Sanitation", None, ["990001"])])


async def test_one_code_opens_one_compartment_even_at_once(tmp_path, city, live_node) -> None:
    async with live_node(city, tmp_path / "data", notify_url="memory:") as live:
        cabinets = live.node.serve.cabinets
        await cabinets.create("cab-1", "Lobby", "Centre", 1)
        _, code = await cabinets.drop_off("cab-1", by="k", role="operator", phone="13812345678")
        results = await asyncio.gather(
            *(cabinets.pick_up("cab-1", code, caller=f"k{i}") for i in range(4)),
            return_exceptions=True)
        opened = [r for r in results if not isinstance(r, BaseException)]
        assert len(opened) == 1, results
        assert all(isinstance(r, WrongCode) for r in results if r not in opened)
        # Two drop-offs racing for the one compartment freed: one gets it.
        results = await asyncio.gather(
            *(cabinets.drop_off("cab-1", by="k", role="operator", phone="13812345678")
              for _ in range(2)), return_exceptions=True)
        assert sorted(type(r).__name__ for r in results) == ["Refused", "tuple"]
        cabinet, _ = await cabinets.get("cab-1")
        item = next(r for r in results if isinstance(r, tuple))[0]
        assert cabinet.compartments[0].item == item.id


async def test_a_citizen_rating_twice_at_once_makes_one_review(tmp_path, city,
                                                               live_node) -> None:
    async with live_node(city, tmp_path / "data", notify_url="memory:") as live:
        side = live.node.serve
        await side.citizens.register(Citizen(id="c-1", name="Li", phone="13812345678"))
        order = await side.hotline.create(OPERATOR, type="consultation", title="Opening hours",
                                          citizen_id="c-1", department="sanitation")
        await side.hotline.act(order.number, "contact", OPERATOR)
        await side.hotline.act(order.number, "answer", OPERATOR, answer="9 to 5")
        results = await asyncio.gather(
            *(side.reviews.rate("c-1", "hotline_order", order.number, "dissatisfied")
              for _ in range(3)), return_exceptions=True)
        # One first rating, one re-rating; the third is over the limit.
        kinds = sorted("first" if getattr(r, "created", False) else type(r).__name__
                       if isinstance(r, BaseException) else "again" for r in results)
        assert kinds == ["Refused", "again", "first"], results
        reviews, _ = await side.reviews.list()
        assert len(reviews) == 1 and len(reviews[0].ratings) == 2
        tasks, _ = await side.reviews.list_tasks()
        assert len(tasks) == 2  # the bad re-rating opened none while these are open


async def test_deadlines_survive_a_restart(tmp_path, city, live_node) -> None:
    clock = Clock(MONDAY_10)
    async with live_node(city, tmp_path / "data", clock=clock, notify_url="memory:") as live:
        side = live.node.serve
        order = await side.hotline.create(OPERATOR, type="consultation", title="Bus times",
                                          phone="13812345678", department="sanitation")
        await side.cabinets.create("cab-1", "Lobby", "Centre", 2)
        item, _ = await side.cabinets.drop_off("cab-1", by="k", role="operator",
                                               phone="13812345678")
    clock.now = MONDAY_10 + 8 * 86400
    async with live_node(city, tmp_path / "data", clock=clock, notify_url="memory:") as live:
        side = live.node.serve
        await side.scheduler.tick()  # the node's own loop may have got there first
        assert await side.scheduler.tick() == {"hotline_overdue": 0, "review_tasks_overdue": 0,
                                               "applications_overdue": 0,
                                               "cabinet_items_flagged": 0,
                                               "care_homes_offers_lapsed": 0}
        assert (await side.hotline.get(order.number)).late == ["contact", "answer"]
        flagged, _ = await side.cabinets.get_item(item.id)
        assert flagged.status.value == "return_due"
        kinds = {n.kind for n in live.node.act.notifier.sent}
        assert {"hotline.overdue", "cabinet.return_due", "cabinet.expired"} <= kinds


async def test_the_scheduler_runs_on_its_own(tmp_path, city, live_node) -> None:
    clock = Clock(MONDAY_10)
    async with live_node(city, tmp_path / "data", clock=clock, notify_url="memory:",
                         escalate_tick_s=0.05) as live:
        side = live.node.serve
        order = await side.hotline.create(OPERATOR, type="consultation", title="Bus times",
                                          phone="13812345678")
        clock.now += 3 * 86400
        for _ in range(100):
            if (await side.hotline.get(order.number)).late:
                break
            await asyncio.sleep(0.05)
        assert (await side.hotline.get(order.number)).late == ["contact", "answer"]
        assert side.scheduler.ticks > 1


async def test_applications_are_rated_when_the_one_stop_service_says_they_are_done(
        tmp_path, city, live_node) -> None:
    """Read loosely from the one-stop service's records (kind "application")."""
    from cityops.store.base import Record

    async with live_node(city, tmp_path / "data", notify_url="memory:") as live:
        store, reviews = live.node.store, live.node.serve.reviews
        for n, status in enumerate(("accepted", "result_issued")):
            await store.put_record(Record(
                kind="application", id=f"ap-{n}", owner="c-1", status=status,
                doc=msgspec.json.encode({"department": "sanitation", "citizen_id": "c-1"})))
        with pytest.raises(Refused, match="only a finished one"):
            await reviews.rate("c-1", "application", "ap-0", "satisfied")
        rated = await reviews.rate("c-1", "application", "ap-1", "very_dissatisfied")
        assert rated.review.departments == ["sanitation"] and len(rated.tasks) == 2
        with pytest.raises(LookupError):
            await reviews.rate("c-2", "application", "ap-1", "satisfied")  # not theirs
