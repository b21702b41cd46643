"""One MQTT subscriber connection kept up, for every intake that reads a broker (readings,
Frigate's events): connect, subscribe, hand the connected client to the intake's consumer,
and when the broker is away or the connection drops, try again with a jittered exponential
backoff. `BrokerIntake` is what such an intake is around its own work: started and stopped
in the background, ready while subscribed, counting reconnects and the messages its bounded
local queue turned away. The intake keeps its own decoding, batching and acknowledgement;
this is only the connection's life, written once."""

from __future__ import annotations

import asyncio
import logging
import random
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiomqtt

from cityops.background import Background

log = logging.getLogger(__name__)


async def keep_subscribed(
    what: str,
    url: str,
    make_client: Callable[[], aiomqtt.Client],
    topics: Sequence[str],
    consume: Callable[[aiomqtt.Client], Awaitable[None]],
    ready: asyncio.Event,
    *,
    backoff_s: tuple[float, float] = (0.5, 30.0),
    on_reconnect: Callable[[], None] | None = None,
    qos: int = 1,
) -> None:
    """Runs until cancelled. `ready` is set while subscribed; `make_client` is called for each
    connection (a client cannot be reused after it disconnected); `consume` returns only by
    raising aiomqtt.MqttError when the connection goes."""
    delay = backoff_s[0]
    first = True
    while True:
        if not first and on_reconnect is not None:
            on_reconnect()
        first = False
        try:
            async with make_client() as client:
                for topic in topics:
                    await client.subscribe(topic, qos=qos)
                log.info("%s subscribed to %s on %s", what, ", ".join(topics), _safe(url))
                ready.set()
                delay = backoff_s[0]
                await consume(client)
        except aiomqtt.MqttError as exc:
            was_up = ready.is_set()
            ready.clear()
            log.warning("%s: MQTT broker %s %s (%s); retrying in %.1f s", what, _safe(url),
                        "lost" if was_up else "unreachable", exc, delay)
        # Jitter keeps a fleet of nodes from reconnecting in lockstep after a broker restart.
        await asyncio.sleep(delay * random.uniform(0.8, 1.2))
        delay = min(delay * 2.0, backoff_s[1])


@dataclass(frozen=True, slots=True)
class MqttAddress:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False
    path: str = ""  # without the leading slash
    query: str = ""


def parse_mqtt_url(url: str) -> MqttAddress:
    """`mqtt://[user:pass@]host[:port][/path][?query]` (mqtts:// for TLS)."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("mqtt", "mqtts", "tcp"):
        raise ValueError(f"MQTT URL {url!r} must start with mqtt:// or mqtts://")
    if not parts.hostname:
        raise ValueError(f"MQTT URL {url!r} has no host: use mqtt://HOST:PORT")
    tls = scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise ValueError(f"MQTT URL {url!r} has a bad port") from None
    return MqttAddress(
        host=parts.hostname,
        port=port,
        username=urllib.parse.unquote(parts.username) if parts.username else None,
        password=urllib.parse.unquote(parts.password) if parts.password else None,
        tls=tls,
        path=parts.path.strip("/"),
        query=parts.query,
    )


class CountingQueue(asyncio.Queue):  # type: ignore[type-arg]
    """aiomqtt's incoming queue, bounded, counting what it has to turn away."""

    def __init__(self, maxsize: int, on_drop: Callable[[], None]) -> None:
        super().__init__(maxsize=maxsize)
        self._on_drop = on_drop

    def put_nowait(self, item: Any) -> None:
        if self.full():
            self._on_drop()
        super().put_nowait(item)  # raises QueueFull, which aiomqtt logs and survives


def payload_bytes(message: aiomqtt.Message) -> bytes:
    """A message's payload as bytes, whatever type paho handed it over as."""
    payload = message.payload
    if isinstance(payload, str):
        return payload.encode()
    if not isinstance(payload, bytes | bytearray):
        return b"" if payload is None else str(payload).encode()
    return bytes(payload)


class BrokerIntake:
    """An intake that reads a broker: `_consume` takes a connected client's messages until the
    connection goes; the subscription is kept up in the background by `keep_subscribed`."""

    def __init__(self, what: str, worker: str, url: str, topics: Sequence[str], *,
                 client_id: str | None, backoff_s: tuple[float, float]) -> None:
        self.what = what
        self.url = url
        self.address = parse_mqtt_url(url)
        self.topics = list(topics)
        self.client_id = client_id
        self.backoff_s = backoff_s
        self._worker = Background(worker, self._run)
        self._ready = asyncio.Event()
        self._queue: CountingQueue | None = None  # the connection's, once it has one
        self._reconnects = 0
        self._dropped = 0

    async def start(self) -> None:
        """Start subscribing in the background; a broker that is away is retried, not fatal."""
        self._worker.start()

    async def stop(self) -> None:
        await self._worker.stop()
        self._ready.clear()

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Until the subscription is in place (useful before publishing in tests and demos)."""
        await asyncio.wait_for(self._ready.wait(), timeout)

    @property
    def connected(self) -> bool:
        return self._ready.is_set()

    def _new_client(self, max_queued: int, **options: Any) -> aiomqtt.Client:
        """A client for one connection (aiomqtt's cannot be reused after a disconnect), its
        incoming messages in a CountingQueue of `max_queued`."""
        a = self.address
        return aiomqtt.Client(
            a.host, a.port, username=a.username, password=a.password,
            identifier=self.client_id,
            queue_type=self._make_queue,  # type: ignore[arg-type]
            max_queued_incoming_messages=max_queued,
            tls_params=aiomqtt.TLSParameters() if a.tls else None, timeout=10.0, **options)

    def _client(self) -> aiomqtt.Client:
        raise NotImplementedError

    async def _consume(self, client: aiomqtt.Client) -> None:
        raise NotImplementedError

    def _make_queue(self, maxsize: int) -> CountingQueue:
        self._queue = CountingQueue(maxsize, self._count_drop)
        return self._queue

    def _count_drop(self) -> None:
        self._dropped += 1

    def _count_reconnect(self) -> None:
        self._reconnects += 1

    async def _run(self) -> None:
        await keep_subscribed(self.what, self.url, self._client, self.topics, self._consume,
                              self._ready, backoff_s=self.backoff_s,
                              on_reconnect=self._count_reconnect)


def _safe(url: str) -> str:
    """The URL without its password, for the log."""
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme, _, user = head.partition("://")
    return f"{scheme}://{user.split(':', 1)[0]}:***@{tail}"
