"""(being written) Subscribing to other NGSI-LD brokers and taking their notifications in."""

from __future__ import annotations

from typing import Any


class Federation:
    def __init__(self, node: Any) -> None:
        self.node = node

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass
