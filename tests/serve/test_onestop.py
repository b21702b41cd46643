"""One-stop services on live nodes: the last two results of a bundle saved at the same moment
send one result notice; a rejected item leaves its siblings asking for what it would have
issued; two policy runs at once grant nothing twice; a restart loses nothing."""

from __future__ import annotations

import asyncio
import datetime as dt

import msgspec
import pytest

from cityops.domain.access import Role, Scope
from cityops.domain.citizens import Citizen
from cityops.domain.city import Department
from cityops.domain.onestop.applications import Actor
from cityops.domain.onestop.catalogue import (
    Bundle,
    Catalogue,
    FormField,
    Issues,
    LicenceType,
    Material,
    ServiceItem,
)
from cityops.domain.onestop.policies import Policy
from cityops.serve.onestop import onestop_of
from tests.clock_kit import Clock

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
MONDAY_10 = dt.datetime(2026, 11, 23, 10, 0, tzinfo=SHANGHAI).timestamp()


NAME = FormField("shop_name", "Shop name")
CATALOGUE = Catalogue(
    licences=[LicenceType("shop_licence", "Shop licence", issuer="trade")],
    items=[
        ServiceItem(code="shop_licence", name="Shop licence", department="trade",
                    fields=[NAME], time_limit="2wd", issues=Issues("shop_licence", 1)),
        ServiceItem(code="shop_sign", name="Shop sign", department="streets",
                    fields=[NAME, FormField("sign_text", "Sign text")],
                    materials=[Material("licence", "Shop licence", licence="shop_licence")],
                    time_limit="3wd"),
    ],
    bundles=[Bundle(code="open_shop", name="Open a shop", items=["shop_licence", "shop_sign"])],
)
TRADE = Actor("k-trade", Role.DEPARTMENT, Scope(department="trade"))
STREETS = Actor("k-streets", Role.DEPARTMENT, Scope(department="streets"))
WANG = Actor("k-wang", Role.CITIZEN, Scope(), "c-wang")


@pytest.fixture
def city(grid_pack):
    return msgspec.structs.replace(
        grid_pack,
        departments=[Department("trade", "Trade", None, ["990001"]),
                     Department("streets", "Streets", None, ["990001"]),
                     Department("civil_affairs", "Civil affairs", None, ["990001"])],
        categories=[], services=CATALOGUE,
        policies=[Policy(id="over_80", name="Over 80", department="civil_affairs",
                         when="age >= 80")])


async def register(live, *people: Citizen) -> None:
    for person in people:
        await live.node.serve.citizens.register(person)


async def open_shop(desk):
    sub, apps, created = await desk.submit(
        WANG, "c-wang", bundle="open_shop", answers={"shop_name": "Wang's", "sign_text": "王"},
        key="k1")
    assert created and [a.department for a in apps] == ["trade", "streets"]
    return sub, apps


async def test_the_last_two_results_at_once_send_one_notice(tmp_path, city, live_node) -> None:
    async with live_node(city, tmp_path / "data", clock=Clock(MONDAY_10),
                         notify_url="memory:") as live:
        await register(live, Citizen(id="c-wang", name="Wang", phone="13900000009"))
        desk = onestop_of(live.node).desk
        sub, (shop, sign) = await open_shop(desk)
        assert sign.materials[0].status == "pending"
        for action in ("accept", "approve", "issue_result"):
            await desk.act(shop.id, action, TRADE)
        assert (await desk.get(sign.id, STREETS)).materials[0].status == "attached"
        # The licence app is done; do sign's last two moves and the licence's re-read at once.
        await desk.act(sign.id, "accept", STREETS)
        await desk.act(sign.id, "approve", STREETS)
        results = await asyncio.gather(
            desk.act(sign.id, "issue_result", STREETS),
            desk.act(sign.id, "issue_result", STREETS),
            return_exceptions=True)
        assert sum(not isinstance(r, BaseException) for r in results) == 1
        sent = [n for n in live.node.act.notifier.sent if n.kind == "onestop.result"]
        assert len(sent) == 1 and "Shop licence: approved (No. " in sent[0].body
        sub, apps = await desk.submission(sub.id, WANG)
        assert [a.status.value for a in apps] == ["result_issued", "result_issued"]
        assert sub.status == "done" and sub.result_notice_at == MONDAY_10


async def test_the_two_siblings_finishing_together_send_one_notice(tmp_path, city,
                                                                   live_node) -> None:
    two = msgspec.structs.replace(CATALOGUE, items=[
        CATALOGUE.items[0],
        msgspec.structs.replace(CATALOGUE.items[1], materials=[])])
    async with live_node(msgspec.structs.replace(city, services=two), tmp_path / "data",
                         clock=Clock(MONDAY_10), notify_url="memory:") as live:
        await register(live, Citizen(id="c-wang", name="Wang"))
        desk = onestop_of(live.node).desk
        sub, (shop, sign) = await open_shop(desk)
        for action in ("accept", "approve"):
            await desk.act(shop.id, action, TRADE)
            await desk.act(sign.id, action, STREETS)
        await asyncio.gather(desk.act(shop.id, "issue_result", TRADE),
                             desk.act(sign.id, "issue_result", STREETS))
        sent = [n for n in live.node.act.notifier.sent if n.kind == "onestop.result"]
        assert len(sent) == 1 and sent[0].recipient == "citizen:c-wang"
        assert (await desk.submission(sub.id, WANG))[0].status == "done"


async def test_a_rejected_item_leaves_its_siblings_asking(tmp_path, city, live_node) -> None:
    async with live_node(city, tmp_path / "data", clock=Clock(MONDAY_10)) as live:
        await register(live, Citizen(id="c-wang", name="Wang"))
        desk = onestop_of(live.node).desk
        _, (shop, sign) = await open_shop(desk)
        await desk.act(shop.id, "reject", TRADE, reason="the premises are residential")
        sign = await desk.get(sign.id, STREETS)
        assert sign.materials[0].status == "asked"
        assert sign.materials[0].reason == "'Shop licence' was rejected and will not issue it"
        assert sign.timeline[-1].action == "material.asked"
        # Streets asks for it; Wang hands in another licence, and the sign goes ahead.
        await desk.act(sign.id, "need_more", STREETS, reason="a shop licence is needed",
                       asked=["licence"])
        sign = await desk.act(sign.id, "resubmit", WANG, provided={"licence": "other.pdf"})
        assert sign.materials[0].status == "provided"
        await desk.act(sign.id, "accept", STREETS)
        assert (await desk.act(sign.id, "approve", STREETS)).decision == "approved"


async def test_two_runs_at_once_grant_nothing_twice(tmp_path, city, live_node) -> None:
    async with live_node(city, tmp_path / "data", clock=Clock(MONDAY_10),
                         notify_url="memory:") as live:
        old = [Citizen(id=f"c-{i:04d}", name="x", birth_date=dt.date(1930 + i % 20, 1, 1))
               for i in range(300)]
        await register(live, *old)
        runner = onestop_of(live.node).benefits
        first, second = await asyncio.gather(runner.run("over_80", "a"),
                                             runner.run("over_80", "b"))
        qualified = sum(1 for c in old if c.birth_date.year <= 1946)
        assert first.qualified == second.qualified == qualified
        assert first.granted + second.granted == qualified
        assert first.already + second.already == qualified
        notices = [n for n in live.node.act.notifier.sent if n.kind == "benefit.granted"]
        assert len(notices) == qualified == len({n.id for n in notices})


async def test_a_restart_loses_nothing(tmp_path, city, live_node) -> None:
    clock = Clock(MONDAY_10)
    async with live_node(city, tmp_path / "data", clock=clock) as live:
        await register(live, Citizen(id="c-wang", name="Wang"))
        desk = onestop_of(live.node).desk
        sub, (shop, sign) = await open_shop(desk)
        for action in ("accept", "approve", "issue_result"):
            await desk.act(shop.id, action, TRADE)
    clock.now = MONDAY_10 + 10 * 86_400  # the sign's 3 working days are long gone
    async with live_node(city, tmp_path / "data", clock=clock) as live:
        side = onestop_of(live.node)
        again, apps = await side.desk.submission(sub.id, WANG)
        assert again.status == "in_progress" and apps[1].materials[0].status == "attached"
        held = await side.book.of_holder("c-wang")
        assert [lic.type for lic in held] == ["shop_licence"]
        overdue = await side.desk.list_applications(department="streets", status=None,
                                                    overdue=True, limit=10, before=None)
        assert [a.id for a, _ in overdue] == [sign.id]
        # A retried submission with the same key makes nothing new.
        _, _, created = await side.desk.submit(
            WANG, "c-wang", bundle="open_shop", answers={"shop_name": "Wang's",
                                                         "sign_text": "王"}, key="k1")
        assert not created
