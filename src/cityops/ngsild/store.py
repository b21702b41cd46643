"""(being written) Context entities: the ones no CityOps record stands behind."""

from __future__ import annotations

from typing import Any


class ContextStore:
    def __init__(self, node: Any) -> None:
        self.node = node

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass
