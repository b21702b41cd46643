"""The serve side's notices (`domain.tell.Tell`) handed to the node's notifier.

A notice to a citizen's phone carries the number as its recipient: an SMS gateway routes it,
the log notifier logs it, and the log masking (serve/logmask.py) keeps the number out of the
log. Notification ids come from the notice's `ref`, so a retried move sends nothing twice to a
receiver that drops repeats.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from cityops.domain.citizens import mask_phone
from cityops.domain.tell import Tell
from cityops.notify.base import Notification, Notifier, NotifyError, notification_id

log = logging.getLogger(__name__)


async def tell_all(notifier: Notifier | None, tells: Iterable[Tell], now: float,
                   **data: object) -> int:
    """Hand every notice over; a refusal is logged and counted, never raised: the move that
    caused it is saved already, and its timeline says what happened."""
    sent = 0
    for t in tells:
        if notifier is None:
            continue
        # The call's data win over a notice's args: they are the contract receivers read.
        extra = {k: v for k, v in {**t.args, **data}.items() if v not in (None, "")}
        if t.sms:
            extra.update(channel="sms", phone=t.recipient)
        note = Notification(id=notification_id(t.kind, t.recipient, t.ref or t.subject),
                            kind=t.kind, recipient=t.recipient, subject=t.subject, body=t.body,
                            data=extra, created=now, urgency=t.urgency)
        try:
            await notifier.async_send(note)
            sent += 1
        except NotifyError as error:
            who = mask_phone(t.recipient) if t.sms else t.recipient
            log.warning("notice %s to %s not taken: %s", t.kind, who, error)
    return sent
