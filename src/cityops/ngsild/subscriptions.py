"""(being written) Subscriptions and the notifications they send."""

from __future__ import annotations

from typing import Any


class Subscriptions:
    def __init__(self, node: Any, entities: Any) -> None:
        self.node = node
        self.entities = entities

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass
