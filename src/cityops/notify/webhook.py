"""Webhooks: each notification POSTed as JSON to the URL(s) its recipient is routed to.

Every request carries
  X-CityOps-Delivery:  the notification id, the same on every retry (receivers dedupe on it)
  X-CityOps-Timestamp: integer epoch seconds of this attempt
  X-CityOps-Signature: sha256=<hex HMAC-SHA256 with the shared secret>
The MAC covers the timestamp, a ".", then the exact body bytes as sent. Binding the timestamp
in is what makes the receiver's freshness check mean anything: were only the body signed, a
captured request could be replayed forever under a new timestamp. Receivers call
`verify_signature` on the raw body, before parsing it.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import msgspec

from cityops.notify.base import Notification
from cityops.notify.delivery import Deliverer, DeliveringNotifier, Delivery

SIGNATURE_HEADER = "X-CityOps-Signature"
TIMESTAMP_HEADER = "X-CityOps-Timestamp"


def signature(secret: str | bytes, body: bytes, timestamp: str) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    mac = hmac.new(key, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(
    secret: str | bytes,
    body: bytes,
    header: str | None,
    timestamp: str | None,
    tolerance: float = 300.0,
    *,
    now: float | None = None,
) -> bool:
    """Whether `header` (X-CityOps-Signature) signs `body` at `timestamp` (X-CityOps-Timestamp)
    with `secret`, and the timestamp is within `tolerance` seconds of now, either way (clocks
    drift). Use the body bytes exactly as received."""
    if not header or not timestamp:
        return False
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - sent_at) > tolerance:
        return False
    try:
        expected = signature(secret, body, timestamp)
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(expected.encode(), header.strip().encode())


def _check_url(url: str, what: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{what} {url!r} is not an http:// or https:// URL with a host")
    return url


def _as_list(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


class WebhookNotifier(DeliveringNotifier):
    """`routes` maps a recipient to one URL or several; recipients not in it go to
    `default_url`; with neither, the notification is recorded as unroutable in `dead`.
    The other options are those of `Deliverer` (queue_size and workers are per endpoint)."""

    kind = "webhook"

    def __init__(
        self,
        default_url: str | None = None,
        *,
        secret: str | bytes,
        routes: Mapping[str, str | Sequence[str]] | None = None,
        clock: Callable[[], float] = time.time,
        **delivery: Any,
    ) -> None:
        if not secret:
            raise ValueError("a webhook notifier needs a non-empty secret to sign with")
        self._secret = secret
        self._clock = clock
        self._default = [_check_url(default_url, "default webhook URL")] if default_url else []
        self._routes = {
            recipient: [_check_url(u, f"webhook URL for {recipient!r}")
                        for u in dict.fromkeys(_as_list(urls))]
            for recipient, urls in (routes or {}).items()
        }
        every = self._default + [u for urls in self._routes.values() for u in urls]
        self._deliverer = Deliverer(every, sign=self._headers, clock=clock, **delivery)

    def _headers(self, body: bytes) -> dict[str, str]:
        stamp = str(int(self._clock()))
        return {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: signature(self._secret, body, stamp)}

    async def async_send(self, n: Notification) -> None:
        urls = self._routes.get(n.recipient) or self._default
        if not urls:
            self._deliverer.unroutable(n.id, f"no webhook URL for recipient {n.recipient!r}")
            return
        body = msgspec.json.encode(n)
        headers = {"Content-Type": "application/json"}
        self._deliverer.offer([Delivery(n.id, n.id, url, body, headers) for url in urls])

