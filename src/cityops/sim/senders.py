"""Where simulated readings go: a node's HTTP API or an MQTT broker, chosen by URL.

- `http://host:port` (or https) posts JSON arrays to `/api/v1/readings` with a bearer key,
  keeping connections alive; 429/503 answers are waited out (Retry-After) and the same batch is
  sent again, never dropped.
- `mqtt://[user:pass@]host:port[/topic/prefix][?mode=batch&qos=1]` publishes one reading per
  message to `<prefix>/<device_id>` (the default, as real devices do), or with `mode=batch`
  arrays of readings to `<prefix>/batch`. The prefix defaults to `cityops/readings`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import logging
import socket
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiomqtt
import httpx
import msgspec

from cityops.ingest.mqtt import DEFAULT_TOPIC_PREFIX, MqttAddress, parse_mqtt_url
from cityops.sim.pacing import Sleep
from cityops.sim.simulator import Simulator

log = logging.getLogger(__name__)

READINGS_PATH = "/api/v1/readings"
MAX_RETRY_AFTER_S = 60.0  # a node asking for longer than this is treated as asking for this
MQTT_BATCH_READINGS = 1000  # per batch message: ~80 KB, far below the intake's size limit
# Publishes awaiting their PUBACK at once. aiomqtt's per-publish bookkeeping grows with the
# number pending, so a larger window stops paying off around here (measured on loopback).
MQTT_WINDOW = 500
SAMPLE_REJECTIONS = 5


class TargetError(Exception):
    """The target cannot be used: a bad URL, a server that is not there, a refused key.
    The message is one line meant for the person running the simulator. `outcome`: what the
    attempts at the batch that ran into it came to (retries, errors), when there were any."""

    outcome: Outcome | None = None


class TargetUnreachable(TargetError):
    pass


class TargetRefused(TargetError):
    pass


@dataclass(slots=True)
class Outcome:
    """What became of readings sent (summed over batches)."""

    # Readings delivered and answered for: accepted or rejected one by one (HTTP 2xx), refused
    # whole (HTTP 4xx), or acknowledged by the MQTT broker. sent == accepted + rejected.
    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    failed: int = 0  # readings of batches given up after repeated server errors
    retried: int = 0  # batches sent again after 429/503 or a transient failure
    errors: int = 0  # failed attempts (connection lost, server errors) and batches given up
    rejections: list[str] = field(default_factory=list)  # a few examples, for the operator

    def add(self, other: Outcome) -> None:
        self.sent += other.sent
        self.accepted += other.accepted
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.failed += other.failed
        self.retried += other.retried
        self.errors += other.errors
        room = SAMPLE_REJECTIONS - len(self.rejections)
        if room > 0:
            self.rejections.extend(other.rejections[:room])


class Sender(Protocol):
    url: str
    concurrency: int

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    def payload(self, sim: Simulator, n: int, now_ts: float) -> Any:
        """Make the next `n` readings in the form this target sends."""

    async def send(self, payload: Any, n: int) -> Outcome: ...


class _Accepted(msgspec.Struct):
    accepted: int = 0
    duplicates: int = 0
    rejected: list[dict[str, Any]] = []


_accepted = msgspec.json.Decoder(_Accepted)


def retry_after_s(value: str | None, default: float = 1.0, now: float | None = None) -> float:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return default
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return default
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


class Backoff:
    """Exponential backoff, and the judgement of when to stop trying."""

    def __init__(self, first_s: float = 0.25, max_s: float = 5.0, give_up_s: float = 30.0):
        self.first_s, self.max_s, self.give_up_s = first_s, max_s, give_up_s
        self.delay = first_s
        self.failing_since: float | None = None

    def failed(self, now: float) -> float | None:
        """The delay before the next attempt, or None when it is time to give up."""
        if self.failing_since is None:
            self.failing_since = now
        if now - self.failing_since >= self.give_up_s:
            return None
        delay, self.delay = self.delay, min(self.delay * 2.0, self.max_s)
        return delay

    def succeeded(self) -> None:
        self.delay = self.first_s
        self.failing_since = None


class HttpSender:
    def __init__(
        self,
        url: str,
        key: str | None,
        *,
        concurrency: int = 4,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        give_up_s: float = 30.0,
        timeout_s: float = 30.0,
    ) -> None:
        self.url = url.rstrip("/")
        self.key = key
        self.concurrency = concurrency
        self.sleep = sleep
        self.clock = clock
        self.give_up_s = give_up_s
        self.timeout_s = timeout_s
        self._client: httpx.AsyncClient | None = None
        self._ever_connected = False

    async def open(self) -> None:
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        self._client = httpx.AsyncClient(
            base_url=self.url,
            headers=headers,
            limits=httpx.Limits(
                max_connections=self.concurrency, max_keepalive_connections=self.concurrency
            ),
            timeout=httpx.Timeout(self.timeout_s, connect=5.0),
        )

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def payload(self, sim: Simulator, n: int, now_ts: float) -> bytes:
        return sim.next_batch(n, now_ts)

    async def send(self, payload: bytes, n: int) -> Outcome:
        out = Outcome()
        try:
            return await self._send(payload, n, out)
        except TargetError as exc:
            exc.outcome = out
            raise

    async def _send(self, payload: bytes, n: int, out: Outcome) -> Outcome:
        assert self._client is not None, "open() the sender first"
        backoff = Backoff(give_up_s=self.give_up_s)
        server_errors = 0
        while True:
            try:
                response = await self._client.post(READINGS_PATH, content=payload)
            except httpx.TransportError as exc:
                out.errors += 1
                if not self._ever_connected and isinstance(exc, httpx.ConnectError):
                    raise TargetUnreachable(f"cannot reach {self.url}: {_why(exc)}") from None
                delay = backoff.failed(self.clock())
                if delay is None:
                    raise TargetUnreachable(
                        f"lost {self.url} for {self.give_up_s:g} s: {_why(exc)}"
                    ) from None
                out.retried += 1
                await self.sleep(delay)
                continue
            self._ever_connected = True
            backoff.succeeded()
            status = response.status_code
            if status in (429, 503):
                out.retried += 1
                await self.sleep(retry_after_s(response.headers.get("retry-after")))
                continue
            if 200 <= status < 300:
                return self._count(out, response, n)
            if status in (401, 403):
                raise TargetRefused(
                    f"{self.url} refused the API key ({status}): {_detail(response)}"
                    + ("" if self.key else " (no key given: pass --key or set CITYOPS_KEY)")
                )
            if status in (404, 405):
                raise TargetRefused(
                    f"{self.url}{READINGS_PATH} answered {status}: is this a CityOps node?"
                )
            if status == 413:
                raise TargetRefused(f"{self.url} says the batch is too large (413): lower --batch")
            if 400 <= status < 500:
                # The node read the body and refused it whole; sending it again will not help.
                out.sent += n
                out.rejected += n
                out.rejections.append(f"{status}: {_detail(response)}")
                return out
            server_errors += 1
            out.errors += 1
            if server_errors >= 5:
                log.warning("giving up a batch of %d after %d server errors", n, server_errors)
                out.failed += n
                return out
            out.retried += 1
            await self.sleep(min(0.25 * 2**server_errors, 5.0))

    def _count(self, out: Outcome, response: httpx.Response, n: int) -> Outcome:
        out.sent += n
        try:
            body = _accepted.decode(response.content)
        except msgspec.MsgspecError:
            out.accepted += n  # a 2xx without the usual body still took the batch
            return out
        out.accepted += body.accepted
        out.duplicates += body.duplicates
        out.rejected += len(body.rejected)
        for r in body.rejected[:SAMPLE_REJECTIONS]:
            out.rejections.append(str(r.get("error", r)))
        return out


def _why(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0]


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        for name in ("error", "detail", "message"):
            if name in body:
                return str(body[name])
    text = (response.text or response.reason_phrase or "").strip()
    return text.splitlines()[0][:200] if text else ""


class MqttSender:
    def __init__(
        self,
        url: str,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        give_up_s: float = 30.0,
    ) -> None:
        self.url = url
        self.address: MqttAddress = parse_mqtt_url(url)
        query = urllib.parse.parse_qs(self.address.query)
        self.batch_mode = query.get("mode", ["device"])[0] == "batch"
        self.qos = int(query.get("qos", ["1"])[0])
        if self.qos not in (0, 1, 2):
            raise TargetError(f"qos={self.qos} in {url}: MQTT QoS is 0, 1 or 2")
        self.prefix = self.address.path or DEFAULT_TOPIC_PREFIX
        # One connection, one batch at a time: publishes on one connection go out in order
        # anyway, and more pending publishes only slow aiomqtt down.
        self.concurrency = 1
        self.sleep = sleep
        self.clock = clock
        self.give_up_s = give_up_s
        self._client: aiomqtt.Client | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        try:
            await self._connect()
        except aiomqtt.MqttError as exc:
            raise TargetUnreachable(f"cannot reach the MQTT broker at {self.url}: {exc}") from None

    async def _connect(self) -> None:
        a = self.address
        client = aiomqtt.Client(
            a.host,
            a.port,
            username=a.username,
            password=a.password,
            max_inflight_messages=MQTT_WINDOW,
            timeout=10.0,
            # Small publishes must not wait for Nagle to fill a segment.
            socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)],
        )
        client.pending_calls_threshold = 2 * MQTT_WINDOW
        await client.__aenter__()
        self._client = client

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await client.__aexit__(None, None, None)
            except aiomqtt.MqttError:
                pass

    def payload(self, sim: Simulator, n: int, now_ts: float) -> list[tuple[str, bytes]]:
        if self.batch_mode:
            topic = f"{self.prefix}/batch"
            out = []
            for start in range(0, n, MQTT_BATCH_READINGS):
                size = min(MQTT_BATCH_READINGS, n - start)
                out.append((topic, sim.next_batch(size, now_ts)))
            return out
        return [(f"{self.prefix}/{d}", body) for d, body in sim.next_messages(n, now_ts)]

    async def send(self, payload: list[tuple[str, bytes]], n: int) -> Outcome:
        out = Outcome()
        try:
            return await self._send(payload, n, out)
        except TargetError as exc:
            exc.outcome = out
            raise

    async def _send(self, payload: list[tuple[str, bytes]], n: int, out: Outcome) -> Outcome:
        backoff = Backoff(give_up_s=self.give_up_s)
        while True:
            client = self._client
            try:
                if client is None:
                    raise aiomqtt.MqttError("not connected")
                for start in range(0, len(payload), MQTT_WINDOW):
                    window = payload[start : start + MQTT_WINDOW]
                    await asyncio.gather(
                        *(client.publish(topic, body, qos=self.qos) for topic, body in window)
                    )
            except aiomqtt.MqttError as exc:
                out.errors += 1
                delay = backoff.failed(self.clock())
                if delay is None:
                    raise TargetUnreachable(
                        f"lost the MQTT broker at {self.url} for {self.give_up_s:g} s: {exc}"
                    ) from None
                out.retried += 1
                await self.sleep(delay)
                await self._reconnect(client)
                continue
            out.sent += n
            out.accepted += n  # the broker has them; the node's verdict is not reported back
            return out

    async def _reconnect(self, broken: aiomqtt.Client | None) -> None:
        async with self._lock:
            if self._client is not broken:
                return  # another batch already reconnected
            await self.close()
            try:
                await self._connect()
            except aiomqtt.MqttError as exc:
                log.warning("MQTT reconnect to %s failed: %s", self.url, exc)


def open_sender(url: str, key: str | None = None, *, concurrency: int = 4) -> Sender:
    """The sender for a target URL; a URL with another scheme is a `TargetError`."""
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        if not urllib.parse.urlsplit(url).hostname:
            raise TargetError(f"target {url!r} has no host: use http://HOST:PORT")
        return HttpSender(url, key, concurrency=concurrency)
    if scheme in ("mqtt", "tcp"):
        try:
            return MqttSender(url)
        except ValueError as exc:
            raise TargetError(str(exc)) from None
    raise TargetError(
        f"target {url!r} is not understood: use http://HOST:PORT (a CityOps node) "
        "or mqtt://HOST:PORT (a broker)"
    )
