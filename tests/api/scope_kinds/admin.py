"""Administration: each town's operator key (made by the unscoped admin), a grid cell in
each town given to that town's department, and each town's field person as the roster holds
them (renamed by the admin, so the store has a row for them)."""

from __future__ import annotations

from typing import Any

from tests.api.scope_kinds.base import DEPARTMENT, PLACE, STAFF, TOWN_A, TOWN_B, VILLAGE, World


def _other(town: str) -> str:
    return TOWN_B if town == TOWN_A else TOWN_A


class ApiKeys:
    async def make(self, world: World, town: str) -> str:
        async with world.client() as c:
            r = await c.post("/api/v1/keys", json={"role": "operator", "scope": town,
                                                   "name": f"operator of {town}"})
            assert r.status_code == 201, r.text
        rid: str = r.json()["key"]["id"]
        return rid

    async def snapshot(self, world: World, rid: str) -> Any:
        return next(k for k in await world.node.store.list_keys() if k.id == rid)

    def move_body(self, world: World, rid: str, town: str) -> dict[str, Any] | None:
        # Keys are never named by the caller: the nearest is minting one for the other town.
        return {"role": "operator", "scope": _other(town)}


class Cells:
    async def make(self, world: World, town: str) -> str:
        cell: str = world.node.city.cell_of(PLACE[town]["lat"], PLACE[town]["lon"])
        async with world.client() as c:
            r = await c.put(f"/api/v1/cells/{cell}/owner",
                            json={"owner": DEPARTMENT[town], "reason": "scope test"})
            assert r.status_code == 200, r.text
        return cell

    async def snapshot(self, world: World, rid: str) -> Any:
        return world.node.cell_owners.owner(rid), (await world.node.store.load_cell_owners()).get(rid)

    def move_body(self, world: World, rid: str, town: str) -> dict[str, Any] | None:
        return None


class Roster:
    async def make(self, world: World, town: str) -> str:
        person = STAFF[town]
        async with world.client() as c:
            r = await c.patch(f"/api/v1/roster/{person}",
                              json={"version": 0, "name": f"field person of {town}"})
            assert r.status_code == 200, r.text
        return person

    async def snapshot(self, world: World, rid: str) -> Any:
        return world.node.roster.get(rid), await world.node.store.load_staff()

    def move_body(self, world: World, rid: str, town: str) -> dict[str, Any] | None:
        # Adding a person under the id town B's person holds, into the caller's town.
        return {"id": rid, "name": "taken over", "department": DEPARTMENT[town],
                "home_area": VILLAGE[town], "device_id": "gps-000000"}


KINDS = {"api_key": ApiKeys(), "cell": Cells(), "roster": Roster()}
