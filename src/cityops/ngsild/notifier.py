"""Sending NGSI-LD notifications over HTTP: one lane per subscription, a shared pool.

Matching (cityops.ngsild.subscriptions) only offers entities here; nothing in this module runs
inside ingest or a request. Each subscription has a lane holding the entities waiting to be
sent, keyed by entity id, so a slow or unreachable subscriber gets the newest state of each
entity rather than a backlog of stale ones, and the lane is bounded (beyond `max_pending` the
oldest waiting entity is dropped and counted). A fixed set of workers sends for the lanes that
are due, through one aiohttp client session whose pool is as large as the set: a subscriber
that hangs ties up at most the workers sending to it while they wait for its timeout. aiohttp
rather than httpx, which the rest of CityOps uses: a notification is the hot path of a busy
node (1,000 subscriptions notified at 50,000 entity updates/s), and one POST costs about
0.1 ms of CPU through aiohttp against 0.7-1.6 ms through httpx (its connection pool's
bookkeeping grows with the concurrent requests) on the benchmark machine.

A send takes at most `max_batch` waiting entities (the oldest first), and a rendered body
larger than `max_body` bytes is split: its newer half goes back to the lane for the next
send, so a subscriber never gets a body beyond the bound whatever its entities weigh.

A lane is due when it holds entities and its next allowed time has come: `throttling` spaces
sends at least that far apart, and after a failure (no connection, a timeout, 408, 429 or a
5xx) the entities stay in the lane and the next try waits a backoff that doubles up to a cap
(a Retry-After the subscriber sends is honoured within the cap). The lane keeps retrying at the
capped pace for as long as the subscription lasts, so a subscriber that comes back gets the
newest state of everything it missed. Another 4xx means the subscriber refuses these
notifications: they are dropped, and the failure shows in the status like any other.

Times come from the node's clock (`node.clock`), so tests drive throttling, backoff and
periodic notifications by setting it and calling `tick`; a background loop calls `tick` every
`tick_s` of real time in a running node.
"""

from __future__ import annotations

import asyncio
import logging
import random
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from cityops.background import cancel_all
from cityops.notify.delivery import parse_retry_after

log = logging.getLogger("cityops.ngsild.notify")

_SNIPPET = 200  # characters of a refusal's body kept as the reason
_ANSWER_READ = 64 * 1024  # bytes of an answer read (the rest closes the connection)


@dataclass
class Health:
    """A subscription's notification status fields (GS CIM 009 5.2.12's NotificationParams):
    what this node sent for it. Epoch seconds; None until it happened."""

    status: str = "ok"  # "failed" from a failed notification until the next success
    times_sent: int = 0  # notifications attempted, a retry included
    times_failed: int = 0
    last_notification: float | None = None
    last_success: float | None = None
    last_failure: float | None = None
    last_error: str = ""  # why the last failure failed (not a spec field: shown to admins)
    dropped: int = 0  # entities dropped from a full lane (a subscriber far behind)

    def merge(self, other: Health) -> Health:
        """The figures of two nodes' sends for one subscription, as one."""

        def latest(a: float | None, b: float | None) -> float | None:
            return b if a is None else a if b is None else max(a, b)

        failure = latest(self.last_failure, other.last_failure)
        success = latest(self.last_success, other.last_success)
        failed = failure is not None and (success is None or failure > success)
        error = self.last_error if self.last_failure == failure else other.last_error
        return Health("failed" if failed else "ok", self.times_sent + other.times_sent,
                      self.times_failed + other.times_failed,
                      latest(self.last_notification, other.last_notification), success,
                      failure, error, self.dropped + other.dropped)


class Recipient(Protocol):
    """What the notifier needs of a subscription."""

    @property
    def id(self) -> str: ...

    @property
    def uri(self) -> str: ...

    @property
    def throttling(self) -> float: ...

    health: Health

    def render(self, entities: list[dict[str, Any]], notified_at: float
               ) -> tuple[bytes, dict[str, str]]:
        """The notification's body and headers (content type, Link, receiverInfo)."""
        ...


@dataclass
class _Lane:
    recipient: Recipient
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)  # insertion = age
    next_at: float = 0.0  # no send before this (throttling, backoff)
    failures: int = 0  # consecutive failed attempts
    busy: bool = False  # a worker is sending for it
    queued: bool = False  # it is in the ready queue
    closed: bool = False  # its subscription is gone


class Notifier:
    """Lanes, workers and the retry clock for every subscription of a node."""

    def __init__(self, clock: Callable[[], float], *, workers: int = 16,
                 max_pending: int = 10_000, max_batch: int = 1_000,
                 max_body: int = 4 << 20, timeout: float = 10.0,
                 retry_base: float = 1.0, retry_max: float = 300.0, tick_s: float = 0.25,
                 rng: random.Random | None = None) -> None:
        if workers < 1 or max_pending < 1 or max_batch < 1 or max_body < 1:
            raise ValueError("workers, max_pending, max_batch and max_body must each be at "
                             "least 1")
        self.clock = clock
        self.workers = workers
        self.max_pending = max_pending
        self.max_batch = max_batch
        self.max_body = max_body
        self.timeout = timeout
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.tick_s = tick_s
        self._rng = rng or random.Random()
        self._lanes: dict[str, _Lane] = {}
        self._ready: asyncio.Queue[_Lane] = asyncio.Queue()  # each lane at most once
        self._tasks: list[asyncio.Task[None]] = []
        self._client: aiohttp.ClientSession | None = None
        # Proxies from the environment (HTTP(S)_PROXY, NO_PROXY) are honoured, as CityOps's
        # other outgoing requests (httpx) honour them: worked out once per endpoint, as
        # aiohttp's own trust_env reads ~/.netrc in a thread for every request.
        self._proxies: dict[str, str] = {}
        self._proxy_of: dict[str, str | None] = {}
        self._idle = asyncio.Condition()
        self.sent = 0  # notifications answered 2xx, all subscriptions
        self.failed = 0

    async def start(self) -> None:
        # No cookie jar: one subscriber's cookies are not for the next notification.
        self._client = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self.workers),
            timeout=aiohttp.ClientTimeout(total=self.timeout),
            cookie_jar=aiohttp.DummyCookieJar())
        self._proxies = urllib.request.getproxies()
        self._proxy_of.clear()
        self._tasks = [asyncio.create_task(self._work(), name=f"ngsild-notify-{i}")
                       for i in range(self.workers)]
        self._tasks.append(asyncio.create_task(self._ticking(), name="ngsild-notify-tick"))

    async def stop(self) -> None:
        await cancel_all(self._tasks)
        if self._client is not None:
            await self._client.close()
            self._client = None

    # -- what matching calls ------------------------------------------------------------------

    def offer(self, recipient: Recipient, entities: list[dict[str, Any]]) -> None:
        """Queue `entities` (already rendered for matching: filtered, not compacted) for the
        recipient; never waits. An entity already waiting is replaced by this newer state."""
        lane = self._lanes.get(recipient.id)
        if lane is None or lane.closed:
            lane = self._lanes[recipient.id] = _Lane(recipient)
        lane.recipient = recipient  # the subscription as last updated
        pending = lane.pending
        for entity in entities:
            key = str(entity.get("id", ""))
            pending.pop(key, None)  # to the back: it is the newest now
            pending[key] = entity
        over = len(pending) - self.max_pending
        if over > 0:
            for key in list(pending)[:over]:
                del pending[key]
            recipient.health.dropped += over
            if recipient.health.dropped == over:
                log.warning("NGSI-LD subscription %s is far behind: dropping its oldest "
                            "waiting entities (counted in its status)", recipient.id)
        self._consider(lane, self.clock())

    def rebind(self, recipient: Recipient) -> None:
        """The subscription was changed: what waits is sent as it now says. A new endpoint
        starts afresh, without the old one's backoff."""
        lane = self._lanes.get(recipient.id)
        if lane is None:
            return
        if lane.recipient.uri != recipient.uri:
            lane.failures = 0
            lane.next_at = min(lane.next_at, self.clock())
        lane.recipient = recipient
        self._consider(lane, self.clock())

    def forget(self, subscription_id: str) -> None:
        """The subscription is gone: nothing more is sent for it."""
        lane = self._lanes.pop(subscription_id, None)
        if lane is not None:
            lane.closed = True
            lane.pending.clear()

    def waiting(self, subscription_id: str) -> int:
        lane = self._lanes.get(subscription_id)
        return 0 if lane is None else len(lane.pending)

    def next_attempt(self, subscription_id: str) -> float | None:
        """When the lane may send next (epoch seconds on the node's clock), if it waits."""
        lane = self._lanes.get(subscription_id)
        if lane is None or not lane.pending:
            return None
        return lane.next_at

    async def tick(self) -> None:
        """Hand the lanes whose throttling or backoff has run out to the workers."""
        now = self.clock()
        for lane in list(self._lanes.values()):
            self._consider(lane, now)

    async def idle(self, timeout: float = 10.0) -> None:
        """Wait until no lane is due or being sent (for tests and orderly stops)."""
        async with asyncio.timeout(timeout), self._idle:
            await self._idle.wait_for(self._quiet)

    def _quiet(self) -> bool:
        now = self.clock()
        return not any(lane.busy or lane.queued or (lane.pending and lane.next_at <= now)
                       for lane in self._lanes.values())

    # -- sending -----------------------------------------------------------------------------

    def _consider(self, lane: _Lane, now: float) -> None:
        if lane.pending and not lane.busy and not lane.queued and not lane.closed \
                and lane.next_at <= now:
            lane.queued = True
            self._ready.put_nowait(lane)

    async def _ticking(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            await self.tick()

    async def _work(self) -> None:
        while True:
            lane = await self._ready.get()
            lane.queued = False
            if lane.closed or not lane.pending:
                continue
            lane.busy = True
            try:
                await self._send(lane)
            except Exception:  # a bug must not end the worker; the lane is retried later
                log.exception("NGSI-LD notification for %s failed unexpectedly",
                              lane.recipient.id)
                lane.next_at = self.clock() + self.retry_max
            finally:
                lane.busy = False
                self._consider(lane, self.clock())
                async with self._idle:
                    self._idle.notify_all()

    async def _send(self, lane: _Lane) -> None:
        recipient = lane.recipient
        keys = list(lane.pending)[:self.max_batch]
        taken = {key: lane.pending.pop(key) for key in keys}
        now = self.clock()
        health = recipient.health
        try:
            body, headers = self._render(lane, taken, now)
        except Exception as error:
            # Nothing the subscriber did: the entities cannot be shown with the subscription's
            # context. Retrying would fail the same way.
            log.exception("rendering a notification for %s failed", recipient.id)
            self._failed(lane, health, now, f"rendering failed: {error}"[:_SNIPPET], None,
                         retry=False)
            return
        health.times_sent += 1
        health.last_notification = now
        assert self._client is not None, "the notifier is not started"
        retry_after: float | None = None
        try:
            async with self._client.post(recipient.uri, data=body, headers=headers,
                                         allow_redirects=False,
                                         proxy=self._proxy(recipient.uri)) as answer:
                # Read (a bounded part of) the answer: a connection is reused only once its
                # answer has been read.
                text = (await answer.content.read(_ANSWER_READ)).decode("utf-8", "replace")
                status = answer.status
                retry_header = answer.headers.get("retry-after")
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as error:
            # ValueError: a URI aiohttp cannot send to (checked at subscription time as an
            # http(s) URI, but a host may still be malformed).
            reason = f"{type(error).__name__}: {error}"[:_SNIPPET]
            retry = True
        else:
            if 200 <= status < 300:
                health.status = "ok"
                health.last_success = self.clock()
                lane.failures = 0
                lane.next_at = now + recipient.throttling
                self.sent += 1
                return
            reason = f"HTTP {status}: {text[:_SNIPPET]}"
            retry = status in (408, 425, 429) or status >= 500
            retry_after = parse_retry_after(retry_header, now)
        if retry and not lane.closed:
            # Back in the lane, behind nothing: whatever arrived meanwhile is newer and wins.
            lane.pending = {**{k: v for k, v in taken.items() if k not in lane.pending},
                            **lane.pending}
        self._failed(lane, health, now, reason, retry_after, retry=retry)

    def _proxy(self, uri: str) -> str | None:
        found = self._proxy_of.get(uri, "")
        if found == "":
            parts = urllib.parse.urlsplit(uri)
            found = None if not self._proxies or urllib.request.proxy_bypass(
                parts.hostname or "") else self._proxies.get(parts.scheme)
            if len(self._proxy_of) >= 10_000:  # endpoints come and go with subscriptions
                self._proxy_of.clear()
            self._proxy_of[uri] = found
        return found

    def _render(self, lane: _Lane, taken: dict[str, dict[str, Any]], now: float
                ) -> tuple[bytes, dict[str, str]]:
        """The body for `taken`, halved until it fits `max_body`: what is left out goes back
        to the front of the lane (older than whatever arrived meanwhile) for the next send."""
        entities = list(taken.values())
        while True:
            body, headers = lane.recipient.render(entities, now)
            if len(body) <= self.max_body or len(entities) == 1:
                break
            entities = entities[:len(entities) // 2]
        if len(entities) < len(taken):
            keys = list(taken)
            left = {k: taken.pop(k) for k in keys[len(entities):]}
            lane.pending = {**{k: v for k, v in left.items() if k not in lane.pending},
                            **lane.pending}
        return body, headers

    def _failed(self, lane: _Lane, health: Health, now: float, reason: str,
                retry_after: float | None, *, retry: bool) -> None:
        self.failed += 1
        health.status = "failed"
        health.times_failed += 1
        health.last_failure = now
        health.last_error = reason
        lane.failures += 1
        if retry:
            delay = min(self.retry_max, self.retry_base * 2.0 ** min(lane.failures - 1, 30))
            delay *= 1.0 - 0.2 * self._rng.random()  # spread the retries of many at once
            if retry_after is not None:
                delay = max(delay, min(retry_after, self.retry_max))
            lane.next_at = now + delay
        else:
            lane.next_at = now + lane.recipient.throttling
        if lane.failures == 1:
            log.warning("NGSI-LD notification for %s to %s failed: %s", lane.recipient.id,
                        lane.recipient.uri, reason)
