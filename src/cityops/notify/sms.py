"""SMS through a generic HTTP gateway: POST {"to": phone, "text": text} with a bearer token.

Recipients (departments, staff, supervisor units) are looked up in a phone table; one request
per number, each with its own delivery id (`<notification id>:<phone>`), so a gateway that
dedupes will not drop the second number as a repeat of the first. Queueing, retries and the
dead list are the webhook's (`Deliverer`); the gateway is one endpoint with its own queue.

Texts are cut to one segment, as the SMS encoding counts it. A text the GSM 7-bit alphabet
can carry (English without curly quotes or dashes, say) is cut to `gsm_chars` septets, 160 by
default, an extension-table character (`€ [ ] { } ~ ^ | \\`) counting two, and marked "..." when
cut (the single "…" is not in that alphabet and would make the whole text UCS-2). Any other
text is UCS-2, cut to `max_chars` UTF-16 code units, 70 by default: any Chinese character
forces UCS-2, where a segment holds 70 units, and a longer text is split into 67-unit parts,
each billed, sometimes delivered out of order or only in part. A notification SMS is a
pointer to the work order, so one segment is the safe default; the catalogs' messages put what
matters first (what, where, by when) so that a cut loses the least.
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
_GSM_ELLIPSIS = "..."
# GSM 03.38: the default alphabet (a septet each) and its extension table (an escape septet
# and the character: two).
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
_GSM_EXTENDED = frozenset("^{}\\[~]|€\f")


def _units(text: str) -> int:
    return sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)


def _septet(ch: str) -> int:
    return 1 if ch in _GSM_BASIC else 2


def gsm_septets(text: str) -> int | None:
    """The septets `text` takes in the GSM 7-bit alphabet, or None when it cannot be sent in
    it (and goes as UCS-2)."""
    if not all(ch in _GSM_BASIC or ch in _GSM_EXTENDED for ch in text):
        return None
    return sum(map(_septet, text))


def _cut(text: str, limit: int, size, mark: str) -> str:
    if sum(map(size, text)) <= limit:
        return text
    kept, used = [], sum(map(size, mark))
    for ch in text:
        used += size(ch)
        if used > limit:
            break
        kept.append(ch)
    return "".join(kept).rstrip() + mark


def trim_text(text: str, max_units: int, gsm_max: int | None = None) -> str:
    """`text` cut to one segment: at most `gsm_max` septets ending in "..." when the GSM
    alphabet carries it (and `gsm_max` is given), else at most `max_units` UTF-16 code units
    ending in "…"."""
    if gsm_max is not None and gsm_septets(text) is not None:
        return _cut(text, gsm_max, _septet, _GSM_ELLIPSIS)
    return _cut(text, max_units, lambda ch: 2 if ord(ch) > 0xFFFF else 1, _ELLIPSIS)


def sms_text(n: Notification, max_units: int, prefix: str = "",
             gsm_max: int | None = None) -> str:
    """`prefix` is for the sender signature some carriers require (e.g. "【浦东城运】").
    The localized `text` when the notification has one (`notify.texts`), else subject and
    body as they are."""
    text = n.text or (f"{n.subject}: {n.body}" if n.body else n.subject)
    return trim_text(prefix + " ".join(text.split()), max_units, gsm_max)


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
        gsm_chars: int = 160,
        prefix: str = "",
        **delivery: Any,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"SMS gateway URL {url!r} is not an http:// or https:// URL")
        if max_chars <= _units(prefix) + _units(_ELLIPSIS):
            raise ValueError(f"max_chars {max_chars} leaves no room after the prefix")
        if gsm_chars <= (gsm_septets(prefix) or 0) + len(_GSM_ELLIPSIS):
            raise ValueError(f"gsm_chars {gsm_chars} leaves no room after the prefix")
        self._url = url
        self._phones = {
            recipient: [numbers] if isinstance(numbers, str) else list(numbers)
            for recipient, numbers in phones.items()
        }
        self._max = max_chars
        self._gsm_max = gsm_chars
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
        text = sms_text(n, self._max, self._prefix, self._gsm_max)
        self._deliverer.offer([
            Delivery(f"{n.id}:{phone}", n.id, self._url,
                     msgspec.json.encode({"to": phone, "text": text}), self._headers)
            for phone in numbers
        ])

