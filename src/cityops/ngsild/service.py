"""The NGSI-LD parts a web node holds: its JSON-LD contexts, its context entities, its
subscriptions and the subscriptions it keeps at other brokers. Started after the serve side,
stopped before it."""

from __future__ import annotations

from typing import Any


class NgsiLd:
    def __init__(self, node: Any) -> None:
        from cityops.ngsild.contexts import Library
        from cityops.ngsild.federation import Federation
        from cityops.ngsild.store import ContextStore
        from cityops.ngsild.subscriptions import Subscriptions

        self.node = node
        self.contexts = Library(getattr(node.settings, "ngsild_context_mirror", None),
                                clock=getattr(node, "clock", None) or _wall)
        self.entities = ContextStore(node)
        self.subscriptions = Subscriptions(node, self.entities)
        self.federation = Federation(node)

    async def start(self) -> None:
        from cityops.ngsild.contexts import using

        # The node's contexts are the ones in force for everything started here, and for the
        # tasks it starts (they copy the context they were created in).
        with using(self.contexts):
            await self.contexts.attach(self.node.store)
            await self.entities.start()
            await self.subscriptions.start()
            await self.federation.start()

    async def stop(self) -> None:
        from cityops.ngsild.contexts import using

        with using(self.contexts):
            await self.federation.stop()
            await self.subscriptions.stop()
            await self.entities.stop()
            await self.contexts.detach()


def _wall() -> float:
    import time

    return time.time()
