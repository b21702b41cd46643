"""The service hall: each town's counter is its own department's, with a number taken by the
town's citizen waiting at it."""

from __future__ import annotations

from typing import Any

from tests.api.scope_kinds.base import DEPARTMENT, World
from tests.api.scope_kinds.serve import _citizen_key


class Counters:
    async def make(self, world: World, town: str) -> str:
        counter = DEPARTMENT[town]
        async with world.client(await _citizen_key(world, town)) as c:
            r = await c.post("/api/v1/queue/tickets", json={"counter": counter})
            assert r.status_code in (201, 409), r.text
        return counter

    async def snapshot(self, world: World, rid: str) -> Any:
        from cityops.serve.queue import hall_of

        return await hall_of(world.node).day(rid)

    def move_body(self, world: World, rid: str, town: str) -> dict[str, Any] | None:
        return None


KINDS = {"queue": Counters()}
