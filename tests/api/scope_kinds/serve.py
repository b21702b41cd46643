"""Citizens."""

from __future__ import annotations

from typing import Any

from tests.api.scope_kinds.base import CITIZEN, VILLAGE, World


class Citizens:
    async def make(self, world: World, town: str) -> str:
        cid = CITIZEN[town]
        if world.made.get(("citizen", town)):
            return cid
        async with world.client() as c:
            r = await c.post("/api/v1/citizens", json={
                "id": cid, "name": f"Resident of {town}", "phone": "13812345678",
                "id_number": "31011519800101123" + ("4" if town.endswith("1") else "5"),
                "area": VILLAGE[town]})
            assert r.status_code in (200, 201), r.text
        return cid

    async def snapshot(self, world: World, rid: str) -> Any:
        return await world.node.serve.citizens.get(rid)

    def move_body(self, world: World, rid: str, town: str) -> dict[str, Any] | None:
        return {"id": rid, "name": "Moved", "phone": "13900000000", "area": VILLAGE[town]}


KINDS = {"citizen": Citizens()}
