"""The NGSI-LD notifier against a real HTTP receiver on loopback, on a hand-set clock."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.clock_kit import Clock
from cityops.ngsild.notifier import Health, Notifier
from tests.ngsild.ngsild_kit import dead_url, receiver


@dataclass
class Sub:
    id: str
    uri: str
    throttling: float = 0.0
    health: Health = field(default_factory=Health)

    def render(self, entities: list[dict[str, Any]], notified_at: float
               ) -> tuple[bytes, dict[str, str]]:
        body = {"subscriptionId": self.id, "notifiedAt": notified_at, "data": entities}
        return json.dumps(body).encode(), {"Content-Type": "application/json",
                                           "X-Receiver": "yes"}


def entity(n: int, value: float = 1.0) -> dict[str, Any]:
    return {"id": f"urn:ngsi-ld:Thing:{n}", "type": ["Thing"], "v": value}


@pytest.fixture
async def notifier():
    clock = Clock(1_000.0)
    n = Notifier(clock, workers=2, max_pending=3, retry_base=1.0, retry_max=8.0)
    n.clock_ = clock
    await n.start()
    try:
        yield n
    finally:
        await n.stop()


async def test_a_notification_reaches_its_endpoint_with_its_headers(notifier):
    async with receiver() as server:
        sub = Sub("urn:s:1", server.url("a"))
        notifier.offer(sub, [entity(1), entity(2)])
        [got] = await server.wait_for("a")
        await notifier.idle()
    assert got.headers["content-type"] == "application/json"
    assert got.headers["x-receiver"] == "yes"
    assert [e["id"] for e in got.json()["data"]] == ["urn:ngsi-ld:Thing:1",
                                                     "urn:ngsi-ld:Thing:2"]
    assert (sub.health.status, sub.health.times_sent, sub.health.times_failed) == ("ok", 1, 0)
    assert sub.health.last_notification == sub.health.last_success == 1_000.0
    assert sub.health.last_failure is None


async def test_a_slow_subscriber_gets_the_newest_state_of_each_entity(notifier):
    async with receiver() as server:
        server.hang.add("slow")
        sub = Sub("urn:s:slow", server.url("slow"))
        notifier.offer(sub, [entity(1, 1.0)])
        await server.wait_for("slow")  # the first notification is held by the subscriber
        for value in (2.0, 3.0, 4.0):  # meanwhile entity 1 changes three times ...
            notifier.offer(sub, [entity(1, value)])
        notifier.offer(sub, [entity(2, 9.0)])
        assert notifier.waiting(sub.id) == 2
        server.release.set()
        second = (await server.wait_for("slow", 2))[1]
        await notifier.idle()
    # ... and only its newest state goes out, once, beside the other entity.
    assert [(e["id"], e["v"]) for e in second.json()["data"]] == [
        ("urn:ngsi-ld:Thing:1", 4.0), ("urn:ngsi-ld:Thing:2", 9.0)]
    assert len(server.of("slow")) == 2


async def test_a_lane_is_bounded_and_counts_what_it_dropped(notifier):
    async with receiver() as server:
        sub = Sub("urn:s:bounded", server.url("b"), throttling=60.0)
        notifier.offer(sub, [entity(0)])
        await server.wait_for("b")
        await notifier.idle()
        notifier.offer(sub, [entity(n) for n in range(1, 6)])  # throttled: all wait
        assert notifier.waiting(sub.id) == 3
        assert sub.health.dropped == 2
        notifier.clock_.now += 60
        await notifier.tick()
        second = (await server.wait_for("b", 2))[1]
    # The oldest were dropped, the newest kept.
    assert [e["id"][-1] for e in second.json()["data"]] == ["3", "4", "5"]


async def test_a_body_over_the_bound_is_split_and_the_rest_follows():
    clock = Clock(1_000.0)
    one = len(Sub("urn:s:x", "").render([entity(1)], 0.0)[0])
    # Room for two entities' worth and a little, not for four.
    split = Notifier(clock, workers=1, max_body=2 * one + 20)
    await split.start()
    try:
        async with receiver() as server:
            sub = Sub("urn:s:big", server.url("big"))
            split.offer(sub, [entity(n) for n in range(4)])
            got = await server.wait_for("big", 2)
            await split.idle()
    finally:
        await split.stop()
    assert [[e["id"][-1] for e in r.json()["data"]] for r in got] == [["0", "1"], ["2", "3"]]
    assert all(len(r.body) <= 2 * one + 20 for r in got)
    assert (sub.health.times_sent, sub.health.times_failed) == (2, 0)


async def test_throttling_spaces_notifications_on_the_clock(notifier):
    async with receiver() as server:
        sub = Sub("urn:s:throttled", server.url("t"), throttling=10.0)
        notifier.offer(sub, [entity(1)])
        await server.wait_for("t")
        await notifier.idle()
        notifier.offer(sub, [entity(2)])
        await notifier.tick()
        await notifier.idle()
        assert len(server.of("t")) == 1  # 0 s after the first: held
        assert notifier.next_attempt(sub.id) == 1_010.0
        notifier.clock_.now += 9.5
        await notifier.tick()
        await notifier.idle()
        assert len(server.of("t")) == 1  # 9.5 s after: still held
        notifier.clock_.now += 0.5
        await notifier.tick()
        second = (await server.wait_for("t", 2))[1]
    assert [e["id"] for e in second.json()["data"]] == ["urn:ngsi-ld:Thing:2"]


async def test_an_unreachable_subscriber_is_retried_with_backoff_then_recovers(notifier):
    clock = notifier.clock_
    async with receiver() as server:
        # Down (503, then refused connections), then back.
        server.script["flaky"] = [(503, {}), (503, {})]
        sub = Sub("urn:s:flaky", server.url("flaky"))
        notifier.offer(sub, [entity(1)])
        await server.wait_for("flaky")
        await notifier.idle()
        health = sub.health
        assert (health.status, health.times_sent, health.times_failed) == ("failed", 1, 1)
        assert health.last_failure == 1_000.0 and health.last_success is None
        assert "503" in health.last_error
        first_wait = notifier.next_attempt(sub.id) - clock.now
        assert 0.8 <= first_wait <= 1.0  # the base backoff, less up to a fifth of jitter

        clock.now += first_wait
        notifier.offer(sub, [entity(1, 2.0)])  # changed while the subscriber was down
        await server.wait_for("flaky", 2)
        await notifier.idle()
        assert health.times_failed == 2
        second_wait = notifier.next_attempt(sub.id) - clock.now
        assert 1.6 <= second_wait <= 2.0  # doubled

        clock.now += second_wait
        await notifier.tick()
        third = (await server.wait_for("flaky", 3))[2]
        await notifier.idle()
    assert (health.status, health.times_sent, health.times_failed) == ("ok", 3, 2)
    assert health.last_success == clock.now
    # The retry carries the newest state, once.
    assert [(e["id"], e["v"]) for e in third.json()["data"]] == [("urn:ngsi-ld:Thing:1", 2.0)]
    assert notifier.waiting(sub.id) == 0


async def test_the_backoff_is_capped_and_keeps_trying(notifier):
    clock = notifier.clock_
    sub = Sub("urn:s:dead", dead_url())
    notifier.offer(sub, [entity(1)])
    waits = []
    for _ in range(7):
        await notifier.idle()
        waits.append(notifier.next_attempt(sub.id) - clock.now)
        clock.now += waits[-1]
        await notifier.tick()
    await notifier.idle()
    assert sub.health.status == "failed" and sub.health.times_failed == 8
    assert "Connect" in sub.health.last_error
    for retry, wait in enumerate(waits):  # 1, 2, 4, 8, 8 ... less up to a fifth of jitter
        full = min(8.0, 2.0 ** retry)
        assert 0.8 * full <= wait <= full
    assert notifier.waiting(sub.id) == 1  # still there for when the subscriber returns


async def test_retry_after_is_honoured_within_the_cap(notifier):
    async with receiver() as server:
        server.script["busy"] = [(429, {"Retry-After": "5"})]
        sub = Sub("urn:s:busy", server.url("busy"))
        notifier.offer(sub, [entity(1)])
        await server.wait_for("busy")
        await notifier.idle()
    assert notifier.next_attempt(sub.id) == notifier.clock_.now + 5.0


async def test_a_refusing_subscriber_is_not_retried(notifier):
    async with receiver() as server:
        server.script["no"] = [(400, {})]
        sub = Sub("urn:s:no", server.url("no"))
        notifier.offer(sub, [entity(1)])
        await server.wait_for("no")
        await notifier.idle()
        assert sub.health.status == "failed" and "400" in sub.health.last_error
        assert notifier.waiting(sub.id) == 0
        notifier.offer(sub, [entity(2)])  # the next change is notified as usual
        await server.wait_for("no", 2)
        await notifier.idle()
    assert sub.health.status == "ok"


async def test_a_forgotten_subscription_sends_nothing_more(notifier):
    async with receiver() as server:
        sub = Sub("urn:s:gone", server.url("gone"), throttling=30.0)
        notifier.offer(sub, [entity(1)])
        await server.wait_for("gone")
        await notifier.idle()
        notifier.offer(sub, [entity(2)])
        notifier.forget(sub.id)
        notifier.clock_.now += 30
        await notifier.tick()
        await notifier.idle()
    assert len(server.of("gone")) == 1


def test_two_nodes_figures_merge():
    a = Health("failed", 3, 1, 20.0, 10.0, 20.0, "HTTP 503", 0)
    b = Health("ok", 2, 0, 30.0, 30.0, None, "", 4)
    merged = a.merge(b)
    assert (merged.status, merged.times_sent, merged.times_failed) == ("ok", 5, 1)
    assert (merged.last_notification, merged.last_success, merged.last_failure) == (
        30.0, 30.0, 20.0)
    assert merged.dropped == 4


async def test_proxies_from_the_environment_are_honoured(monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "hooks.internal")
    n = Notifier(Clock(0.0))
    await n.start()
    try:
        assert n._proxy("http://hooks.example/notify") == "http://proxy.example:3128"
        assert n._proxy("http://hooks.internal/notify") is None
        assert n._proxy("https://hooks.example/notify") is None  # no HTTPS_PROXY given
    finally:
        await n.stop()


async def test_a_subscribers_cookie_is_not_sent_back(notifier):
    async with receiver() as server:
        server.script["c"] = [(200, {"Set-Cookie": "session=abc; Path=/"})]
        # By name: a cookie jar keeps no cookies of bare IP addresses.
        sub = Sub("urn:s:cookie", server.url("c").replace("127.0.0.1", "localhost"))
        notifier.offer(sub, [entity(1)])
        await server.wait_for("c")
        await notifier.idle()
        notifier.offer(sub, [entity(2)])
        second = (await server.wait_for("c", 2))[1]
    assert "cookie" not in second.headers
