"""Community analytics: a town's sorting inspection (posted by an admin for its community),
its community as the sorting ranking and the elderly-care coverage list it, by its code."""

from __future__ import annotations

from typing import Any

from cityops.analytics import sorting
from tests.api.scope_kinds.base import TOWN_A, TOWN_B, VILLAGE, World


def _body(town: str) -> dict[str, Any]:
    return {"area": VILLAGE[town], "stream": "wet", "checked": 40, "correct": 38}


class Inspections:
    def __init__(self) -> None:
        self.town_of: dict[str, str] = {}

    async def make(self, world: World, town: str) -> str:
        async with world.client() as c:
            r = await c.post("/api/v1/sorting/inspections", json=_body(town))
            assert r.status_code == 201, r.text
        [rid] = r.json()["ids"]
        self.town_of[rid] = town
        return str(rid)

    async def snapshot(self, world: World, rid: str) -> Any:
        return await world.node.store.get_record(sorting.KIND, rid)

    def move_body(self, world: World, rid: str, town: str) -> dict[str, Any] | None:
        # Ids are never given by the caller: the nearest to writing this record is posting
        # for its community, which a key that may not see it must not do.
        return _body(self.town_of.get(rid, TOWN_B if town == TOWN_A else TOWN_A))


class Communities:
    """A town's community, inspected once so that the ranking has a row for it; lists name
    it by its code, which a key scoped elsewhere must not see."""

    async def make(self, world: World, town: str) -> str:
        async with world.client() as c:
            r = await c.post("/api/v1/sorting/inspections", json=_body(town))
            assert r.status_code == 201, r.text
        return VILLAGE[town]

    async def snapshot(self, world: World, rid: str) -> Any:
        return None  # the city's communities do not change through any route

    def move_body(self, world: World, rid: str, town: str) -> dict[str, Any] | None:
        return None


KINDS = {sorting.KIND: Inspections(), "sorting_community": Communities(),
         "care_community": Communities()}
