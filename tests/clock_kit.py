"""A clock a test sets by hand: the services, desks and rules take it as their `clock`."""

from __future__ import annotations


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
