"""Pacing: release readings at a steady rate, with a clock and a sleep that tests can inject."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class Pacer:
    """`await take(n)` returns when the first of the next `n` readings is due.

    Reading i is due at start + i / rate. When the sender falls behind (a slow target, a full
    pipeline) the debt is capped at `max_debt_s`: once the target recovers it gets at most that
    much of a burst, not everything it missed.
    """

    def __init__(
        self,
        rate: float,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        max_debt_s: float = 1.0,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, not {rate}")
        self.rate = float(rate)
        self.clock = clock
        self.sleep = sleep
        self.max_debt_s = max_debt_s
        self.granted = 0  # readings released so far
        self._start: float | None = None
        self._forgiven_s = 0.0

    def due(self, i: int) -> float:
        """Clock time at which reading `i` (counting from 0) is due."""
        assert self._start is not None
        return self._start + self._forgiven_s + i / self.rate

    async def take(self, n: int) -> None:
        now = self.clock()
        if self._start is None:
            self._start = now
        due = self.due(self.granted)
        if now - due > self.max_debt_s:
            self._forgiven_s += now - due - self.max_debt_s
        elif due > now:
            await self.sleep(due - now)
        self.granted += n

    @property
    def behind_s(self) -> float:
        """How far the releases trail the schedule now (0 when on time)."""
        if self._start is None:
            return 0.0
        return max(0.0, self.clock() - self.due(self.granted))


def batch_for_rate(rate: float, batch: int, max_hold_s: float = 0.1) -> int:
    """The batch size to use at `rate`: at most `batch`, and small enough that no reading is
    held back longer than `max_hold_s` waiting for its batch to fill."""
    return max(1, min(int(batch), int(rate * max_hold_s) or 1))
