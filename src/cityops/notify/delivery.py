"""HTTP delivery shared by the webhook and SMS notifiers.

Every endpoint gets its own bounded queue, its own workers and its own HTTP client (so its own
connection pool): an endpoint that hangs or refuses connections ties up only its own workers,
never the deliveries to the others. Failed attempts are retried with capped exponential
backoff and jitter (spreading the retries of many deliveries that failed together); a delivery
that runs out of attempts, or that the endpoint rejected outright, goes to a bounded dead list
with the reason.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import random
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec

from cityops.notify.base import NotifierFull, NotifyError

log = logging.getLogger("cityops.notify")

DELIVERY_HEADER = "X-CityOps-Delivery"
_SNIPPET = 200  # bytes of an error answer kept in the reason


class RetryPolicy(msgspec.Struct, frozen=True):
    attempts: int = 5  # tries in all, the first included
    base: float = 0.5  # seconds before the first retry; doubled for each one after
    max_delay: float = 60.0
    jitter: float = 0.5  # share of each delay drawn at random, 0 (none) to 1 (full jitter)
    max_retry_after: float = 300.0  # a Retry-After beyond this is cut to it

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"retry attempts must be at least 1, not {self.attempts}")
        if self.base < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("retry delays must not be negative")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"retry jitter must be between 0 and 1, not {self.jitter}")

    def backoff(self, retry: int, rng: random.Random) -> float:
        """Seconds to wait before retry number `retry` (1 for the first)."""
        delay = min(self.max_delay, self.base * 2.0 ** min(retry - 1, 60))
        return delay * (1.0 - self.jitter * rng.random())


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent or
    unreadable. Fractions are accepted, beyond the RFC, as some gateways send them."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


class Delivery(msgspec.Struct, frozen=True):
    id: str  # sent as X-CityOps-Delivery; the same on every attempt, so receivers can dedupe
    notification_id: str
    url: str
    body: bytes
    headers: dict[str, str] = {}


class DeadDelivery(msgspec.Struct, frozen=True):
    id: str
    notification_id: str
    endpoint: str  # the endpoint's label (no credentials)
    reason: str
    attempts: int
    at: float  # epoch seconds


class _Verdict(msgspec.Struct, frozen=True):
    ok: bool
    retry: bool = False
    reason: str = ""
    retry_after: float | None = None


def endpoint_label(url: str) -> str:
    """The URL as shown in stats and dead letters: without user info or query, which is where
    tokens tend to live."""
    parts = urlsplit(url)
    label = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"
    return label + ("?..." if parts.query else "")


class _Lane:
    def __init__(self, url: str, label: str, maxsize: int) -> None:
        self.url = url
        self.label = label
        self.queue: asyncio.Queue[Delivery] = asyncio.Queue(maxsize)
        self.client: httpx.AsyncClient | None = None
        self.workers: list[asyncio.Task[None]] = []
        self.sent = self.retried = self.failed = self.in_flight = 0

    def stats(self) -> dict[str, int]:
        return {
            "sent": self.sent,
            "retried": self.retried,
            "failed": self.failed,
            "queued": self.queue.qsize(),
            "in_flight": self.in_flight,
        }


Signer = Callable[[bytes], dict[str, str]]


class Deliverer:
    """The queues, workers and retry loop behind one notifier, for a fixed set of endpoint URLs.

    `sign`, if given, makes extra headers from the body on every attempt (so a timestamp in
    them is fresh on a retry). `transport` replaces the network for unit tests; `sleep` and
    `rng` make the backoff observable and repeatable.
    """

    def __init__(
        self,
        urls: Iterable[str],
        *,
        queue_size: int = 256,
        workers: int = 1,
        retry: RetryPolicy | None = None,
        timeout: float | httpx.Timeout = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        sign: Signer | None = None,
        dead_max: int = 1000,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if queue_size < 1 or workers < 1 or dead_max < 1:
            raise ValueError("queue_size, workers and dead_max must each be at least 1")
        self.retry = retry or RetryPolicy()
        self._timeout = timeout
        self._transport = transport
        self._sign = sign
        self._workers = workers
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._clock = clock
        self._lanes: dict[str, _Lane] = {}
        labels: set[str] = set()
        for url in urls:
            if url in self._lanes:
                continue
            label = endpoint_label(url)
            if label in labels:  # two URLs differing only in their query: keep both apart
                label = f"{label}#{len(labels)}"
            labels.add(label)
            self._lanes[url] = _Lane(url, label, queue_size)
        self.dead: deque[DeadDelivery] = deque(maxlen=dead_max)
        self.unrouted = 0
        self._started = False
        self._stopped = False

    def offer(self, deliveries: Sequence[Delivery]) -> None:
        """Queue all of `deliveries` or none of them: a notification bound for two endpoints
        is never half taken, so the caller can simply retry it after `NotifierFull`."""
        if self._stopped:
            raise NotifyError("notifier is stopped")
        # Slots are counted, not just checked: an SMS to two numbers needs two in one lane.
        for url, needed in Counter(d.url for d in deliveries).items():
            lane = self._lanes[url]
            if lane.queue.maxsize - lane.queue.qsize() < needed:
                raise NotifierFull(lane.label)
        for delivery in deliveries:
            self._lanes[delivery.url].queue.put_nowait(delivery)

    def bury(self, delivery_id: str, notification_id: str, endpoint: str, reason: str,
             attempts: int = 0) -> None:
        self.dead.append(
            DeadDelivery(delivery_id, notification_id, endpoint, reason, attempts, self._clock())
        )
        log.warning("notification %s to %s failed: %s", delivery_id, endpoint, reason)

    def unroutable(self, notification_id: str, reason: str) -> None:
        """A notification nobody is configured to receive: recorded, never queued."""
        self.unrouted += 1
        self.bury(notification_id, notification_id, "", reason)

    async def start(self) -> None:
        if self._stopped:
            raise NotifyError("a stopped notifier cannot be started again; make a new one")
        if self._started:
            return
        self._started = True
        for lane in self._lanes.values():
            lane.client = httpx.AsyncClient(
                timeout=self._timeout, transport=self._transport, follow_redirects=False,
                headers={"User-Agent": "cityops-notify"},
            )
            lane.workers = [
                asyncio.create_task(self._work(lane), name=f"notify {lane.label} #{i}")
                for i in range(self._workers)
            ]

    async def stop(self, *, drain: bool = True, timeout: float = 5.0) -> None:
        """Refuse new deliveries; with `drain`, give the queued ones up to `timeout` seconds
        (retries included); then cancel the rest, recording each in the dead list."""
        if self._stopped:
            return
        self._stopped = True
        lanes = list(self._lanes.values())
        if drain and self._started:
            try:
                async with asyncio.timeout(timeout):
                    await asyncio.gather(*(lane.queue.join() for lane in lanes))
            except TimeoutError:
                pass
        workers = [task for lane in lanes for task in lane.workers]
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        for lane in lanes:
            while not lane.queue.empty():
                d = lane.queue.get_nowait()
                lane.failed += 1
                self.bury(d.id, d.notification_id, lane.label, "not sent: notifier stopped")
            if lane.client is not None:
                await lane.client.aclose()

    def stats(self) -> dict[str, Any]:
        endpoints = {lane.label: lane.stats() for lane in self._lanes.values()}
        totals = {
            key: sum(e[key] for e in endpoints.values())
            for key in ("sent", "retried", "failed", "queued")
        }
        return {**totals, "unrouted": self.unrouted, "dead": len(self.dead),
                "endpoints": endpoints}

    async def _work(self, lane: _Lane) -> None:
        while True:
            delivery = await lane.queue.get()
            lane.in_flight += 1
            try:
                await self._deliver(lane, delivery)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug must not kill the worker and strand the queue
                log.exception("delivering %s to %s", delivery.id, lane.label)
                lane.failed += 1
                self.bury(delivery.id, delivery.notification_id, lane.label, repr(exc))
            finally:
                lane.in_flight -= 1
                lane.queue.task_done()

    async def _deliver(self, lane: _Lane, d: Delivery) -> None:
        attempt = 0
        reason = ""
        try:
            while True:
                attempt += 1
                verdict = await self._attempt(lane, d)
                if verdict.ok:
                    lane.sent += 1
                    return
                reason = verdict.reason
                if not verdict.retry or attempt >= self.retry.attempts:
                    lane.failed += 1
                    suffix = f" (after {attempt} attempts)" if verdict.retry else ""
                    self.bury(d.id, d.notification_id, lane.label, reason + suffix, attempt)
                    return
                lane.retried += 1
                log.debug("retrying %s to %s: %s", d.id, lane.label, reason)
                if verdict.retry_after is not None:
                    delay = min(verdict.retry_after, self.retry.max_retry_after)
                else:
                    delay = self.retry.backoff(attempt, self._rng)
                await self._sleep(delay)
        except asyncio.CancelledError:
            lane.failed += 1
            why = "not sent: notifier stopped" + (f" (last: {reason})" if reason else "")
            self.bury(d.id, d.notification_id, lane.label, why, attempt)
            raise

    async def _attempt(self, lane: _Lane, d: Delivery) -> _Verdict:
        assert lane.client is not None
        headers = {**d.headers, DELIVERY_HEADER: d.id}
        if self._sign is not None:
            headers.update(self._sign(d.body))
        try:
            async with lane.client.stream("POST", d.url, content=d.body, headers=headers) as r:
                if r.is_success:
                    return _Verdict(ok=True)
                snippet = await _read_some(r)
        except httpx.TransportError as exc:  # refused, reset, timed out: worth another try
            detail = str(exc)
            return _Verdict(False, True, type(exc).__name__ + (f": {detail}" if detail else ""))
        reason = f"HTTP {r.status_code}" + (f": {snippet}" if snippet else "")
        if r.status_code == 429 or r.status_code >= 500:
            after = parse_retry_after(r.headers.get("retry-after"), self._clock())
            return _Verdict(False, True, reason, after)
        # Any other answer (400, 401, 404, 3xx ...) will not change by asking again.
        return _Verdict(False, False, reason)


async def _read_some(response: httpx.Response) -> str:
    """The start of an error answer, for the reason; a huge body is not read in full."""
    data = b""
    async for chunk in response.aiter_bytes():
        data += chunk
        if len(data) >= _SNIPPET:
            break
    return data[:_SNIPPET].decode("utf-8", "replace").strip()


class DeliveringNotifier:
    """What a notifier delivering over HTTP through a `Deliverer` (`self._deliverer`) does the
    same whatever it sends: start, stop (draining within a bound), stats and dead deliveries.
    `kind` names it in the stats."""

    kind = "http"
    _deliverer: Any

    @property
    def dead(self) -> list[DeadDelivery]:
        return list(self._deliverer.dead)

    async def async_start(self) -> None:
        await self._deliverer.start()

    async def async_stop(self, *, drain: bool = True, timeout: float = 5.0) -> None:
        await self._deliverer.stop(drain=drain, timeout=timeout)

    def stats(self) -> dict[str, Any]:
        return {"kind": self.kind, **self._deliverer.stats()}
