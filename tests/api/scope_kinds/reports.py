"""Reports: each town's report of last month, made through the API by an unscoped admin."""

from __future__ import annotations

from typing import Any

from tests.api.scope_kinds.base import World


class Reports:
    async def make(self, world: World, town: str) -> str:
        async with world.client() as c:
            r = await c.post("/api/v1/reports", json={"area": town})
            assert r.status_code == 201, r.text
        rid: str = r.json()["id"]
        return rid

    async def snapshot(self, world: World, rid: str) -> Any:
        return await world.node.store.get_record("report", rid)

    def move_body(self, world: World, rid: str, town: str) -> dict[str, Any] | None:
        # Ids are never given by the caller: the nearest to writing into town B is asking for
        # town B's report, which a key scoped to town A must be refused.
        return {"area": "990001002" if town == "990001001" else "990001001"}


KINDS = {"report": Reports()}
