"""The bus contract: bounded publish/subscribe of batches by subject.

Subjects, and the message each carries, are declared in `subjects.py`. A NATS JetStream
adapter implements the same protocol (cluster mode); the in-process bus is the embedded default
and the test twin.
"""

from __future__ import annotations

from typing import Any, Protocol


class Subscription(Protocol):
    subject: str

    async def get_batch(self, max_items: int = 64, timeout: float | None = None) -> list[Any]:
        """Wait for at least one message (or until `timeout`), then take up to `max_items`."""

    def depth(self) -> int: ...

    async def close(self) -> None: ...


class Bus(Protocol):
    async def publish(self, subject: str, message: Any) -> None:
        """Deliver to every subscriber of `subject`, waiting while any of them is full."""

    def has_room(self, subject: str) -> bool:
        """Whether a publish on `subject` would go through now without waiting."""

    def subscribe(self, subject: str, *, maxsize: int = 1024) -> Subscription: ...

    def depths(self) -> dict[str, int]:
        """Queued messages per subscriber, for metrics and admission control."""

    async def close(self) -> None: ...
