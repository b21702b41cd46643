"""One MQTT subscriber connection kept up, for every intake that reads a broker (readings,
Frigate's events): connect, subscribe, hand the connected client to the intake's consumer,
and when the broker is away or the connection drops, try again with a jittered exponential
backoff. The intake keeps its own decoding, batching and acknowledgement; this is only the
connection's life, written once."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence

import aiomqtt

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


def _safe(url: str) -> str:
    """The URL without its password, for the log."""
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme, _, user = head.partition("://")
    return f"{scheme}://{user.split(':', 1)[0]}:***@{tail}"
