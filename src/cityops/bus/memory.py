"""The in-process bus: one bounded asyncio queue per subscriber, backpressure on publish."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any


class MemorySubscription:
    def __init__(self, bus: MemoryBus, subject: str, maxsize: int) -> None:
        self.subject = subject
        self._bus = bus
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=maxsize)

    async def get_batch(self, max_items: int = 64, timeout: float | None = None) -> list[Any]:
        try:
            first = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return []
        items = [first]
        while len(items) < max_items:
            try:
                items.append(self._queue.get_nowait())
            except asyncio.QueueEmpty:
                break
        return items

    def depth(self) -> int:
        return self._queue.qsize()

    def full(self) -> bool:
        return self._queue.full()

    async def put(self, message: Any) -> None:
        await self._queue.put(message)

    async def close(self) -> None:
        self._bus._unsubscribe(self)


class MemoryBus:
    def __init__(self) -> None:
        self._subs: dict[str, list[MemorySubscription]] = defaultdict(list)

    async def publish(self, subject: str, message: Any) -> None:
        for sub in list(self._subs.get(subject, ())):
            await sub.put(message)

    def has_room(self, subject: str) -> bool:
        return not any(sub.full() for sub in self._subs.get(subject, ()))

    def subscribe(self, subject: str, *, maxsize: int = 1024) -> MemorySubscription:
        sub = MemorySubscription(self, subject, maxsize)
        self._subs[subject].append(sub)
        return sub

    def _unsubscribe(self, sub: MemorySubscription) -> None:
        subs = self._subs.get(sub.subject, [])
        if sub in subs:
            subs.remove(sub)

    def depths(self) -> dict[str, int]:
        return {
            f"{subject}#{i}": sub.depth()
            for subject, subs in self._subs.items()
            for i, sub in enumerate(subs)
        }

    async def close(self) -> None:
        self._subs.clear()
