"""The NGSI-LD parts a web node holds: its context entities, its subscriptions and the
subscriptions it keeps at other brokers. Started after the serve side, stopped before it."""

from __future__ import annotations

from typing import Any


class NgsiLd:
    def __init__(self, node: Any) -> None:
        from cityops.ngsild.federation import Federation
        from cityops.ngsild.store import ContextStore
        from cityops.ngsild.subscriptions import Subscriptions

        self.entities = ContextStore(node)
        self.subscriptions = Subscriptions(node, self.entities)
        self.federation = Federation(node)

    async def start(self) -> None:
        await self.entities.start()
        await self.subscriptions.start()
        await self.federation.start()

    async def stop(self) -> None:
        await self.federation.stop()
        await self.subscriptions.stop()
        await self.entities.stop()
