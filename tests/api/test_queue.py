"""Queue numbers through the HTTP API: taken at the kiosk or on the portal (one live number
per person and counter), called by that department's clerks only (another department's
counter is not found for them), the previous number closed when a window calls the next,
no-shows and recalls, the estimated wait from the pace of recent calls, the average wait in
the evaluation; and the queue kept on PostgreSQL, where numbers taken and called at once by
many never collide."""

from __future__ import annotations

import asyncio
import datetime as dt

import msgspec
import pytest

from cityops.domain.city import Department
from cityops.packs.categories_file import default_categories
from cityops.serve.queue.service import QueueHall
from cityops.store.base import open_store
from tests.store.conftest import fresh_postgres_url  # noqa: F401  (a fixture)

from .conftest import MONDAY_10, SHANGHAI, Clock

DEPARTMENTS = ["police", "market_regulation", "civil_affairs"]


@pytest.fixture
def hall_city(grid_pack):
    departments = [Department(code, code.replace("_", " ").title(), None, ["990001"])
                   for code in DEPARTMENTS]
    return msgspec.structs.replace(grid_pack, departments=departments,
                                   categories=default_categories(DEPARTMENTS))


async def citizens(live, n: int) -> list:
    out = []
    async with live.client(await live.key("operator")) as op:
        for i in range(n):
            cid = f"c-{i:03d}"
            r = await op.post("/api/v1/citizens", json={
                "id": cid, "name": f"Resident {i}", "phone": f"1380000{i:04d}",
                "area": "990001001001"})
            assert r.status_code == 201, r.text
            out.append(live.client(await live.key("citizen", name=cid)))
    return out


async def test_take_call_and_close_numbers(tmp_path, hall_city, live_node) -> None:
    clock = Clock(MONDAY_10)
    async with live_node(hall_city, tmp_path / "data", clock=clock,
                         notify_url="memory:") as live:
        a, b, c = await citizens(live, 3)
        market = live.client(await live.key("department", "market_regulation"))
        police = live.client(await live.key("department", "police"))
        operator = live.client(await live.key("operator"))

        board = (await a.get("/api/v1/queue/counters")).json()["items"]
        assert [(x["counter"], x["prefix"]) for x in board] == [
            ("police", "A"), ("market_regulation", "B"), ("civil_affairs", "C")]
        r = await a.post("/api/v1/queue/tickets", json={"counter": "market_regulation",
                                                        "channel": "kiosk"})
        assert r.status_code == 201, r.text
        first = r.json()
        assert (first["label"], first["ahead"], first["estimated_wait_s"]) == ("B001", 0, None)
        # Twice: refused, naming the number already held; another counter is fine.
        r = await a.post("/api/v1/queue/tickets", json={"counter": "market_regulation"})
        assert r.status_code == 409 and r.json()["code"] == "queue_already_waiting"
        assert r.json()["detail"]["label"] == "B001"
        r = await a.post("/api/v1/queue/tickets", json={"counter": "nowhere"})
        assert r.status_code == 404 and r.json()["code"] == "queue_unknown_counter"
        assert (await a.post("/api/v1/queue/tickets", json={"counter": "police"})).status_code \
            == 201
        clock.now += 60
        assert (await b.post("/api/v1/queue/tickets",
                             json={"counter": "market_regulation"})).json()["label"] == "B002"
        clock.now += 60
        third = (await c.post("/api/v1/queue/tickets",
                              json={"counter": "market_regulation"})).json()
        assert (third["label"], third["ahead"]) == ("B003", 2)

        # Only market regulation's clerks (and an admin) call its numbers.
        r = await police.post("/api/v1/queue/counters/market_regulation/call", json={})
        assert r.status_code == 404
        assert (await police.get("/api/v1/queue/counters/market_regulation")).status_code == 404
        r = await operator.post("/api/v1/queue/counters/market_regulation/call", json={})
        assert r.status_code == 403
        assert (await a.post("/api/v1/queue/counters/market_regulation/call")).status_code \
            == 403
        clock.now += 180  # 10:05
        r = await market.post("/api/v1/queue/counters/market_regulation/call",
                              json={"window": "3"})
        assert r.status_code == 200, r.text
        assert (r.json()["label"], r.json()["status"], r.json()["window"]) == ("B001", "called",
                                                                               "3")
        assert r.json()["wait_s"] == 300
        called = [n for n in live.node.act.notifier.sent if n.kind == "queue.called"]
        assert [n.recipient for n in called] == ["13800000000"]
        mine = (await a.get("/api/v1/queue/tickets")).json()["items"]
        assert {t["label"]: t["status"] for t in mine} == {"B001": "called", "A001": "waiting"}
        clock.now += 120  # 10:07: the window calls the next, B001 is done
        r = await market.post("/api/v1/queue/counters/market_regulation/call",
                              json={"window": "3"})
        assert r.json()["label"] == "B002"
        # The pace (2 min between calls) estimates the wait of the number still waiting.
        left = (await c.get("/api/v1/queue/tickets")).json()["items"][0]
        assert (left["ahead"], left["estimated_wait_s"]) == (0, 120)
        day = (await market.get("/api/v1/queue/counters/market_regulation")).json()
        assert [t["status"] for t in day["tickets"]] == ["served", "called", "waiting"]
        assert day["serving"] == ["B002 → 3"] and day["waiting"] == 1
        assert day["average_wait_s"] == (300 + 360) / 2
        assert "c-001" not in str(day)  # clerks see numbers, not people

        # Nobody came for B002: a no-show. A number not called cannot be closed.
        r = await market.post("/api/v1/queue/counters/market_regulation/actions/no_show",
                              json={"number": 2})
        assert r.status_code == 200 and r.json()["status"] == "no_show"
        r = await market.post("/api/v1/queue/counters/market_regulation/actions/served",
                              json={"number": 3})
        assert r.status_code == 409 and r.json()["code"] == "queue_not_called"
        r = await market.post("/api/v1/queue/counters/market_regulation/actions/cancel",
                              json={"number": 3})
        assert r.status_code == 409
        clock.now += 60
        r = await market.post("/api/v1/queue/counters/market_regulation/call", json={})
        assert r.json()["label"] == "B003"
        r = await market.post("/api/v1/queue/counters/market_regulation/actions/recall",
                              json={"number": 3})
        assert r.status_code == 200 and r.json()["recalls"] == 1
        r = await market.post("/api/v1/queue/counters/market_regulation/call", json={})
        assert r.status_code == 409 and r.json()["code"] == "queue_nobody_waiting"
        # Having been called, a citizen may take a new number once theirs is done.
        r = await market.post("/api/v1/queue/counters/market_regulation/actions/served",
                              json={"number": 3})
        assert r.json()["status"] == "served"
        assert (await c.post("/api/v1/queue/tickets",
                             json={"counter": "market_regulation"})).json()["label"] == "B004"

        # The evaluation of the day: three numbers called, one no-show, their mean wait.
        admin = live.client(await live.key("admin"))
        day_text = dt.datetime.fromtimestamp(MONDAY_10, SHANGHAI).date().isoformat()
        r = await admin.get("/api/v1/evaluation", params={"period": day_text})
        assert r.status_code == 200, r.text
        queue = r.json()["queue"]
        assert (queue["called"], queue["no_shows"]) == (3, 1)
        assert queue["mean_wait_s"] == pytest.approx((300 + 360 + 360) / 3)
        r = await police.get("/api/v1/evaluation", params={"period": day_text})
        assert r.json()["queue"]["called"] == 0  # police called none of its numbers


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_numbers_taken_and_called_at_once_never_collide(
        tmp_path, backend, request) -> None:
    url = (f"sqlite:///{tmp_path / 'q.db'}" if backend == "sqlite"
           else request.getfixturevalue("fresh_postgres_url")())
    store = open_store(url)
    await store.open()
    clock = Clock(MONDAY_10)
    try:
        hall = QueueHall(store, [("market_regulation", "Market regulation")],
                         local_date=lambda t: dt.datetime.fromtimestamp(t, SHANGHAI).date(),
                         now=clock)
        taken = await asyncio.gather(*(hall.take(f"c-{i}", "market_regulation", "kiosk")
                                       for i in range(12)))
        assert sorted(t.number for t in taken) == list(range(1, 13))
        again = await asyncio.gather(*(hall.take("c-0", "market_regulation", "portal")
                                       for _ in range(3)), return_exceptions=True)
        assert all(type(e).__name__ == "AlreadyWaiting" for e in again)
        called = await asyncio.gather(*(hall.call_next("market_regulation", str(w), "k")
                                        for w in range(1, 5)))
        assert sorted(t.number for t in called) == [1, 2, 3, 4]
        assert len({t.window for t in called}) == 4
        # Another hall on the same store (another node of a cluster) sees the same queue.
        other = QueueHall(store, [("market_regulation", "Market regulation")],
                          local_date=hall.local_date, now=clock)
        view = await other.counter_view("market_regulation")
        assert view.waiting == 8 and len(view.serving) == 4
        clock.now += 86_400  # the next day starts at 1 again
        assert (await other.take("c-0", "market_regulation", "kiosk")).label == "A001"
    finally:
        await store.close()


async def test_a_call_in_a_zh_cn_city_is_a_chinese_sms(tmp_path, hall_city, live_node) -> None:
    zh = {"police": "公安", "market_regulation": "市场监管", "civil_affairs": "民政"}
    city = msgspec.structs.replace(
        hall_city, info=msgspec.structs.replace(hall_city.info, language="zh-CN"),
        departments=[msgspec.structs.replace(d, names={"zh-CN": zh[d.code]})
                     for d in hall_city.departments])
    async with live_node(city, tmp_path / "data", clock=Clock(MONDAY_10),
                         notify_url="memory:") as live:
        a, b = await citizens(live, 2)
        market = live.client(await live.key("department", "market_regulation"))
        for who in (a, b):
            r = await who.post("/api/v1/queue/tickets", json={"counter": "market_regulation"})
            assert r.status_code == 201, r.text
        await market.post("/api/v1/queue/counters/market_regulation/call", json={"window": "3"})
        await market.post("/api/v1/queue/counters/market_regulation/call", json={})
        called = [n for n in live.node.act.notifier.sent if n.kind == "queue.called"]
        assert [(n.lang, n.text) for n in called] == [  # window 1 when the clerk names none
            ("zh-CN", "请B001号到市场监管3号窗口办理。"), ("zh-CN", "请B002号到市场监管1号窗口办理。")]
