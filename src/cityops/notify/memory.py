"""The test twin: records what it was handed, and can be told to refuse."""

from __future__ import annotations

import asyncio
from typing import Any

from cityops.notify.base import Notification, NotifyError


class MemoryNotifier:
    """`fail` is how many of the next sends raise (`-1`: every one); `error` is what they
    raise (default `NotifyError`; pass a `NotifierFull` to act out a full queue)."""

    def __init__(self, *, fail: int = 0, error: Exception | None = None) -> None:
        self.sent: list[Notification] = []
        self.refused: list[Notification] = []
        self.started = False
        self.stopped = False
        self._fail = fail
        self._error = error
        self._changed = asyncio.Event()

    def fail_next(self, count: int = 1, error: Exception | None = None) -> None:
        self._fail = count
        self._error = error

    async def async_send(self, n: Notification) -> None:
        if self.stopped:
            raise NotifyError("memory notifier is stopped")
        if self._fail:
            if self._fail > 0:
                self._fail -= 1
            self.refused.append(n)
            raise self._error or NotifyError(f"injected failure for {n.id}")
        self.sent.append(n)
        self._changed.set()

    async def wait_for(self, count: int = 1, timeout: float = 5.0) -> list[Notification]:
        """Wait until at least `count` notifications were taken; raises TimeoutError."""
        async with asyncio.timeout(timeout):
            while len(self.sent) < count:
                self._changed.clear()
                await self._changed.wait()
        return list(self.sent)

    async def async_start(self) -> None:
        self.started = True
        self.stopped = False

    async def async_stop(self) -> None:
        self.stopped = True

    def stats(self) -> dict[str, Any]:
        return {"kind": "memory", "sent": len(self.sent), "refused": len(self.refused)}
