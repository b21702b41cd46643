"""Silences: each town's silences the noise pack in that town for an hour."""

from __future__ import annotations

from typing import Any

from cityops.detect import silences as records
from tests.api.scope_kinds.base import TOWN_A, TOWN_B, World


def _body(town: str) -> dict[str, Any]:
    return {"matchers": {"area": [town], "pack": ["noise"]}, "duration": "1h",
            "comment": f"works in {town}"}


class Silences:
    def __init__(self) -> None:
        self.town_of: dict[str, str] = {}

    async def make(self, world: World, town: str) -> str:
        async with world.client() as c:
            r = await c.post("/api/v1/silences", json=_body(town))
            assert r.status_code == 201, r.text
        rid: str = r.json()["id"]
        self.town_of[rid] = town
        return rid

    async def snapshot(self, world: World, rid: str) -> Any:
        return await world.node.store.get_record(records.KIND, rid)

    def move_body(self, world: World, rid: str, town: str) -> dict[str, Any] | None:
        # Ids are never given by the caller; the nearest to moving one is silencing the
        # town where it lies, which a key that may not see it must not do either.
        return _body(self.town_of.get(rid, TOWN_B if town == TOWN_A else TOWN_A))


KINDS = {"silence": Silences()}
