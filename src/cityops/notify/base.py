"""The notifier contract: hand a notification over without waiting for it to be delivered.

"Handed to the notifier" means accepted into its bounded queue; delivery happens later, on the
notifier's own workers, so a slow or dead receiver never holds up dispatch. A full queue is
refused at once with `NotifierFull` rather than waited on, the same backpressure rule as the
store's `StoreBusy`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import msgspec

log = logging.getLogger("cityops.notify")

URGENCIES = ("low", "normal", "high", "critical")


class NotifyError(RuntimeError):
    """A notifier did not take a notification (stopped, failed, or full)."""


class NotifierFull(NotifyError):
    """The bounded queue in front of `target` is full; the notification was not taken.

    Retry after `retry_after` seconds; nothing about it was queued anywhere.
    """

    def __init__(self, target: str, retry_after: float = 1.0) -> None:
        super().__init__(f"notifier queue for {target} is full")
        self.target = target
        self.retry_after = retry_after


class Notification(msgspec.Struct, frozen=True):
    id: str  # idempotency key: the same event always yields the same id (see notification_id)
    kind: str  # "work_order.dispatched", "work_order.escalated", "incident.closed" ...
    recipient: str  # department code, staff id, or supervisor unit
    subject: str
    body: str
    data: dict[str, Any] = {}
    created: float = 0.0  # epoch seconds
    urgency: str = "normal"  # one of URGENCIES
    # What a person reads, in their language (`lang`, a BCP 47 tag): written from kind and
    # data by `notify.texts.Voiced`; empty when no message is known for the kind. The SMS
    # notifier sends it; subject and body stay the English, structured fields they were.
    text: str = ""
    lang: str = ""

    def __post_init__(self) -> None:
        if self.urgency not in URGENCIES:
            raise ValueError(f"urgency {self.urgency!r} is not one of {', '.join(URGENCIES)}")


def notification_id(kind: str, recipient: str, ref: str) -> str:
    """A stable id for "this event, for this recipient": `ref` names the event (a work order
    id and its revision, say), so a replay after a restart produces the same id and receivers
    can drop the repeat."""
    digest = hashlib.sha256(f"{kind}\x1f{recipient}\x1f{ref}".encode()).hexdigest()
    return f"n_{digest[:24]}"


@runtime_checkable
class Notifier(Protocol):
    async def async_send(self, n: Notification) -> None:
        """Take `n` into the queue and return; never waits for delivery. Raises `NotifierFull`
        when the queue is full and `NotifyError` when the notifier is stopped."""

    async def async_start(self) -> None: ...

    async def async_stop(self) -> None:
        """Refuse new notifications, deliver what is queued within a bounded time, release
        connections and workers. What could not be delivered is recorded, not lost silently."""

    def stats(self) -> dict[str, Any]: ...


class FanOut:
    """Hands each notification to every notifier it wraps. One refusing (full, stopped, broken)
    does not keep the notification from the others; the caller hears of a refusal only when
    nobody took it."""

    def __init__(self, notifiers: Sequence[Notifier]) -> None:
        self.notifiers = list(notifiers)
        self._handed = 0
        self._refused = [0] * len(self.notifiers)

    async def async_send(self, n: Notification) -> None:
        # Concurrently, so one misbehaving child that does block cannot delay the rest.
        results = await asyncio.gather(
            *(child.async_send(n) for child in self.notifiers), return_exceptions=True
        )
        errors: list[BaseException] = []
        for i, result in enumerate(results):
            if result is None:
                continue
            if not isinstance(result, Exception):
                raise result
            self._refused[i] += 1
            errors.append(result)
            log.warning("notifier %d refused %s: %s", i, n.id, result)
        if errors and len(errors) == len(self.notifiers):
            if all(isinstance(e, NotifierFull) for e in errors):
                raise errors[0]
            raise NotifyError(f"no notifier took {n.id}: {errors[0]}") from errors[0]
        self._handed += 1

    async def async_start(self) -> None:
        started: list[Notifier] = []
        try:
            for child in self.notifiers:
                await child.async_start()
                started.append(child)
        except BaseException:
            for child in reversed(started):
                await _stop_quietly(child)
            raise

    async def async_stop(self) -> None:
        # Each is stopped whatever happened to the one before: a stop must release everything.
        for child in self.notifiers:
            await _stop_quietly(child)

    def stats(self) -> dict[str, Any]:
        return {
            "kind": "fanout",
            "handed": self._handed,
            "refused": list(self._refused),
            "notifiers": [child.stats() for child in self.notifiers],
        }


async def _stop_quietly(notifier: Notifier) -> None:
    try:
        await notifier.async_stop()
    except Exception:
        log.exception("stopping notifier %r failed", notifier)
