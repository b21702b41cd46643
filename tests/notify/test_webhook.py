"""The webhook notifier against a real HTTP receiver on loopback (see conftest.py)."""

import asyncio
import email.utils
import random

import httpx
import msgspec
import pytest

from cityops.notify import Notification, NotifierFull, NotifyError, RetryPolicy
from cityops.notify.delivery import parse_retry_after
from cityops.notify.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookNotifier,
    signature,
    verify_signature,
)

SECRET = "s3cret-shared-with-the-receiver"
FAST = RetryPolicy(attempts=4, base=0.001, max_delay=0.01)
FOREVER = RetryPolicy(attempts=1_000_000, base=0.005, max_delay=0.02)


async def wait_until(check, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.005)


def webhook(url=None, **options):
    options.setdefault("retry", FAST)
    return WebhookNotifier(url, secret=SECRET, **options)


def test_signature_good_tampered_and_stale():
    body = b'{"id":"n_1","subject":"Manhole cover missing"}'
    now = 1_760_000_000
    stamp = str(now)
    header = signature(SECRET, body, stamp)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify_signature(SECRET, body, header, stamp, 300, now=now + 10)
    assert verify_signature(SECRET.encode(), body, header, stamp, 300, now=now - 10)
    assert not verify_signature(SECRET, body.replace(b"Manhole", b"manhole"), header, stamp,
                                300, now=now)
    assert not verify_signature("other secret", body, header, stamp, 300, now=now)
    assert not verify_signature(SECRET, body, header, stamp, 300, now=now + 301)  # stale
    assert not verify_signature(SECRET, body, header, stamp, 300, now=now - 301)  # from the future
    # The timestamp is signed too: re-stamping a captured request does not make it fresh.
    later = str(now + 3600)
    assert not verify_signature(SECRET, body, header, later, 300, now=now + 3600)
    assert not verify_signature(SECRET, body, None, stamp, now=now)
    assert not verify_signature(SECRET, body, header, "yesterday", now=now)


async def test_delivers_signed_json_with_delivery_id(hooks, note):
    n = note()
    notifier = webhook(hooks.url("ops"))
    await notifier.async_start()
    await notifier.async_send(n)
    [got] = await hooks.wait_for("ops")
    await notifier.async_stop()
    assert msgspec.json.decode(got.body, type=Notification) == n
    assert got.headers["content-type"] == "application/json"
    assert got.headers["x-cityops-delivery"] == n.id
    assert verify_signature(SECRET, got.body, got.headers[SIGNATURE_HEADER.lower()],
                            got.headers[TIMESTAMP_HEADER.lower()])
    assert notifier.stats()["endpoints"][hooks.url("ops")] == {
        "sent": 1, "retried": 0, "failed": 0, "queued": 0, "in_flight": 0}


async def test_retries_on_5xx_then_succeeds(hooks, note):
    hooks.script["flaky"] = [(500, {}), (503, {})]
    n = note()
    notifier = webhook(hooks.url("flaky"))
    await notifier.async_start()
    await notifier.async_send(n)
    attempts = await hooks.wait_for("flaky", 3)
    await notifier.async_stop()
    assert hooks.count("flaky") == 3
    assert {a.headers["x-cityops-delivery"] for a in attempts} == {n.id}
    assert {a.body for a in attempts} == {msgspec.json.encode(n)}  # the same bytes every time
    stats = notifier.stats()
    assert (stats["sent"], stats["retried"], stats["failed"], stats["dead"]) == (1, 2, 0, 0)


async def test_retries_exhausted_go_to_the_dead_list_with_the_reason(hooks, note):
    hooks.script["down"] = [(503, {})] * 10
    n = note()
    notifier = webhook(hooks.url("down"), retry=RetryPolicy(attempts=3, base=0.001))
    await notifier.async_start()
    await notifier.async_send(n)
    await notifier.async_stop()  # drains: returns once the delivery has given up
    assert hooks.count("down") == 3
    [dead] = notifier.dead
    assert (dead.id, dead.notification_id, dead.attempts) == (n.id, n.id, 3)
    assert dead.endpoint == hooks.url("down")
    assert dead.reason.startswith("HTTP 503") and "scripted 503" in dead.reason
    assert dead.reason.endswith("(after 3 attempts)")
    stats = notifier.stats()
    assert (stats["sent"], stats["retried"], stats["failed"]) == (0, 2, 1)


async def test_no_retry_on_400(hooks, note):
    hooks.script["picky"] = [(400, {})]
    notifier = webhook(hooks.url("picky"))
    await notifier.async_start()
    await notifier.async_send(note())
    await notifier.async_stop()
    assert hooks.count("picky") == 1
    [dead] = notifier.dead
    assert dead.reason.startswith("HTTP 400") and dead.attempts == 1
    assert notifier.stats()["retried"] == 0


async def test_retry_after_on_429_is_honoured(hooks, note):
    hooks.script["busy"] = [(429, {"Retry-After": "1"}), (429, {"Retry-After": "9999"})]
    waited: list[float] = []

    async def sleep(seconds: float) -> None:
        waited.append(seconds)

    # The backoff alone would be about a minute; the receiver's Retry-After wins, capped.
    policy = RetryPolicy(attempts=5, base=60, max_delay=60, jitter=0, max_retry_after=2)
    notifier = webhook(hooks.url("busy"), retry=policy, sleep=sleep)
    await notifier.async_start()
    await notifier.async_send(note())
    await notifier.async_stop()
    assert waited == [1.0, 2.0]
    assert hooks.count("busy") == 3
    assert notifier.stats()["sent"] == 1


async def test_connection_refused_is_retried_then_dead(dead_url, note):
    notifier = webhook(dead_url, retry=RetryPolicy(attempts=2, base=0.001))
    await notifier.async_start()
    await notifier.async_send(note())
    await notifier.async_stop()
    [dead] = notifier.dead
    assert dead.reason.startswith("ConnectError") and dead.attempts == 2
    assert notifier.stats()["retried"] == 1


async def test_a_hanging_and_a_dead_endpoint_do_not_hold_up_a_healthy_one(hooks, dead_url, note):
    hooks.hang.add("slow")
    routes = {"slow-unit": hooks.url("slow"), "gone-unit": dead_url, "ok-unit": hooks.url("ok")}
    notifier = webhook(routes=routes, retry=FOREVER, timeout=60.0)
    await notifier.async_start()
    for i in range(3):
        await notifier.async_send(note(f"slow-{i}", "slow-unit"))
        await notifier.async_send(note(f"gone-{i}", "gone-unit"))
    await hooks.wait_for("slow")  # its one worker is now stuck in a request that never ends
    await notifier.async_send(note("ok-1", "ok-unit"))

    [got] = await hooks.wait_for("ok")
    assert msgspec.json.decode(got.body)["id"] == note("ok-1", "ok-unit").id
    # The receiver has it; the sender counts it once the 200 is back.
    await wait_until(lambda: notifier.stats()["endpoints"][hooks.url("ok")]["sent"] == 1)
    await wait_until(lambda: notifier.stats()["endpoints"][dead_url]["retried"] >= 2)
    endpoints = notifier.stats()["endpoints"]
    for stuck in (hooks.url("slow"), dead_url):
        assert endpoints[stuck]["sent"] == endpoints[stuck]["failed"] == 0
        assert endpoints[stuck]["in_flight"] + endpoints[stuck]["queued"] == 3

    await notifier.async_stop(drain=False)
    assert hooks.count("slow") == 1
    assert len(notifier.dead) == 6
    assert all(d.reason.startswith("not sent: notifier stopped") for d in notifier.dead)
    gone = [d for d in notifier.dead if d.endpoint == dead_url and d.attempts]
    assert gone and "ConnectError" in gone[0].reason  # it was still retrying when stopped


async def test_a_full_endpoint_queue_refuses_without_blocking_the_others(hooks, note):
    hooks.hang.add("slow")
    routes = {"slow-unit": hooks.url("slow"), "ok-unit": hooks.url("ok")}
    notifier = webhook(routes=routes, queue_size=2, timeout=60.0)
    await notifier.async_start()
    await notifier.async_send(note("s0", "slow-unit"))
    await hooks.wait_for("slow")  # taken off the queue by the worker, which now hangs
    await notifier.async_send(note("s1", "slow-unit"))
    await notifier.async_send(note("s2", "slow-unit"))
    with pytest.raises(NotifierFull) as full:
        await notifier.async_send(note("s3", "slow-unit"))
    assert full.value.target == hooks.url("slow")
    await notifier.async_send(note("ok", "ok-unit"))
    await wait_until(lambda: notifier.stats()["endpoints"][hooks.url("ok")]["sent"] == 1)
    assert notifier.stats()["endpoints"][hooks.url("slow")]["queued"] == 2
    await notifier.async_stop(timeout=0.05)
    assert len(notifier.dead) == 3  # the hanging one and the two queued behind it


async def test_stop_drains_what_is_queued(hooks, note):
    notifier = webhook(hooks.url("ops"))
    await notifier.async_start()
    for i in range(5):
        await notifier.async_send(note(f"wo-{i}"))
    await notifier.async_stop()
    assert hooks.count("ops") == 5
    stats = notifier.stats()
    assert (stats["sent"], stats["queued"], stats["dead"]) == (5, 0, 0)
    with pytest.raises(NotifyError):
        await notifier.async_send(note("late"))
    await notifier.async_stop()  # a second stop is harmless
    with pytest.raises(NotifyError, match="cannot be started again"):
        await notifier.async_start()


async def test_a_notification_for_two_urls_is_queued_whole_or_not_at_all(note):
    a, b = "http://127.0.0.1:9/a", "http://127.0.0.1:9/b"
    notifier = webhook(routes={"both": [a, b], "b-only": b}, queue_size=1)
    await notifier.async_send(note("1", "b-only"))  # not started: it stays queued
    with pytest.raises(NotifierFull) as full:
        await notifier.async_send(note("2", "both"))
    assert full.value.target == b
    endpoints = notifier.stats()["endpoints"]
    assert (endpoints[a]["queued"], endpoints[b]["queued"]) == (0, 1)
    await notifier.async_stop()  # never started: what was queued is recorded, not lost
    [dead] = notifier.dead
    assert dead.endpoint == b and dead.reason == "not sent: notifier stopped"


async def test_unroutable_recipients_are_recorded(note):
    notifier = webhook(routes={"310115-cg": "http://127.0.0.1:9/cg"})
    await notifier.async_send(note(recipient="nobody"))
    [dead] = notifier.dead
    assert "no webhook URL for recipient 'nobody'" in dead.reason
    assert notifier.stats()["unrouted"] == 1


async def test_injected_transport_and_redirects_are_not_followed(note):
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/moved":
            return httpx.Response(301, headers={"Location": "http://elsewhere/"})
        return httpx.Response(204)

    transport = httpx.MockTransport(answer)
    routes = {"a": "https://hooks.test/ok", "b": "https://hooks.test/moved"}
    notifier = webhook(routes=routes, transport=transport)
    await notifier.async_start()
    await notifier.async_send(note(recipient="a"))
    await notifier.async_send(note(recipient="b"))
    await notifier.async_stop()
    assert sorted(r.url.path for r in seen) == ["/moved", "/ok"]
    [dead] = notifier.dead
    assert dead.reason == "HTTP 301" and dead.attempts == 1


def test_credentials_in_urls_stay_out_of_stats():
    notifier = webhook("https://user:pw@hooks.test/in?token=abc")
    assert list(notifier.stats()["endpoints"]) == ["https://hooks.test/in?..."]


def test_backoff_doubles_up_to_the_cap_with_bounded_jitter():
    policy = RetryPolicy(base=0.5, max_delay=4.0, jitter=0.5)
    rng = random.Random(7)
    for retry, full in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0), (40, 4.0)]:
        delays = [policy.backoff(retry, rng) for _ in range(50)]
        assert all(full * 0.5 <= d <= full for d in delays)
        assert len(set(delays)) > 1  # jittered, so failures together do not retry together
    assert RetryPolicy(base=1, jitter=0).backoff(3, rng) == 4.0
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(jitter=1.5)


def test_retry_after_forms():
    now = 1_760_000_000.0
    assert parse_retry_after("3", now) == 3.0
    assert parse_retry_after(" 0.25 ", now) == 0.25
    assert parse_retry_after("-5", now) == 0.0
    assert parse_retry_after(email.utils.formatdate(now + 20, usegmt=True), now) == 20.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None
    assert parse_retry_after("nan", now) is None


async def test_send_only_enqueues(note):
    # Not started: no worker, no network; the caller still returns at once.
    notifier = webhook("http://127.0.0.1:9/hook")
    await asyncio.wait_for(notifier.async_send(note()), 1)
    assert notifier.stats()["queued"] == 1
    await notifier.async_stop()
