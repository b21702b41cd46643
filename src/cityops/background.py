"""One named background task: started once, stopped by cancelling it and waiting for it;
`cancel_all`, the same for a list of them; and `idle`, for waiting until such a task has
nothing left in hand."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable


class Background:
    def __init__(self, name: str, run: Callable[[], Awaitable[None]]) -> None:
        self.name = name
        self._run = run
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def cancel_all(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel every task of a component's list, wait for each to be gone, and empty the list
    (a component's `stop`)."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task
    tasks.clear()


async def idle(busy: Callable[[], bool], timeout: float = 10.0) -> bool:
    """Wait until `busy()` is false (a queue drained and nothing being worked on), giving the
    loop to the task meanwhile; False if it still is after `timeout` (replays, tests)."""
    deadline = time.monotonic() + timeout
    while busy():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.001)
    return True
