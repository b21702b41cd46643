"""SMS through a generic HTTP gateway: POST {"to": phone, "text": text} with a bearer token.

Recipients (departments, staff, supervisor units) are looked up in a phone table; one request
per number, each with its own delivery id (`<notification id>:<phone>`), so a gateway that
dedupes will not drop the second number as a repeat of the first. Queueing, retries and the
dead list are the webhook's (`Deliverer`); the gateway is one endpoint with its own queue.

Texts are cut to `max_chars`, counted in UTF-16 code units as the SMS encoding counts them.
The default, 70, is one UCS-2 segment: any Chinese character forces UCS-2, where a segment
holds 70 units (not GSM-7's 160), and a longer text is split into 67-unit parts, each billed,
sometimes delivered out of order or only in part. A notification SMS is a pointer to the
work order, so one segment is the safe default; the catalogs' messages put what matters first
(what, where, by when) so that a cut loses the least.
"""

from __future__ import annotations

import re

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import msgspec

from cityops.notify.base import Notification
from cityops.notify.delivery import Deliverer, DeliveringNotifier, Delivery

_ELLIPSIS = "…"


def _units(text: str) -> int:
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def trim_text(text: str, max_units: int) -> str:
    """`text` cut to at most `max_units` UTF-16 code units, ending in "…" when cut."""
    if _units(text) <= max_units:
        return text
    kept, used = [], _units(_ELLIPSIS)
    for ch in text:
        used += _units(ch)
        if used > max_units:
            break
        kept.append(ch)
    return "".join(kept).rstrip() + _ELLIPSIS


def sms_text(n: Notification, max_units: int, prefix: str = "") -> str:
    """`prefix` is for the sender signature some carriers require (e.g. "【浦东城运】").
    The localized `text` when the notification has one (`notify.texts`), else subject and
    body as they are."""
    text = n.text or (f"{n.subject}: {n.body}" if n.body else n.subject)
    return trim_text(prefix + " ".join(text.split()), max_units)


_PHONE = re.compile(r"\+?\d{6,15}")


class SmsGatewayNotifier(DeliveringNotifier):
    kind = "sms"

    def __init__(
        self,
        url: str,
        *,
        phones: Mapping[str, str | Sequence[str]],
        token: str | None = None,
        max_chars: int = 70,
        prefix: str = "",
        **delivery: Any,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"SMS gateway URL {url!r} is not an http:// or https:// URL")
        if max_chars <= _units(prefix) + _units(_ELLIPSIS):
            raise ValueError(f"max_chars {max_chars} leaves no room after the prefix")
        self._url = url
        self._phones = {
            recipient: [numbers] if isinstance(numbers, str) else list(numbers)
            for recipient, numbers in phones.items()
        }
        self._max = max_chars
        self._prefix = prefix
        self._headers = {"Content-Type": "application/json"}
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        self._deliverer = Deliverer([url], **delivery)

    async def async_send(self, n: Notification) -> None:
        numbers = self._phones.get(n.recipient)
        if not numbers and _PHONE.fullmatch(n.recipient):
            # A citizen's notice names the number itself (the citizen is no unit with a table
            # entry): send to it.
            numbers = [n.recipient]
        if not numbers:
            self._deliverer.unroutable(n.id, f"no phone number for recipient {n.recipient!r}")
            return
        text = sms_text(n, self._max, self._prefix)
        self._deliverer.offer([
            Delivery(f"{n.id}:{phone}", n.id, self._url,
                     msgspec.json.encode({"to": phone, "text": text}), self._headers)
            for phone in numbers
        ])

