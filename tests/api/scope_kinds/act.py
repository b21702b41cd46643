"""Act: incidents, work orders and field staff.

Each town's incident is a case reported where the town stands, still waiting for the centre's
check; its work order belongs to another case there, dispatched to the town's own department;
its field person is the one whose beat lies in it. A report's merge into a case is a write to
it, so the body that "moves" an incident is a report of the same kind at the same place."""

from __future__ import annotations

from typing import Any

from tests.api.scope_kinds.base import DEPARTMENT, PLACE, STAFF, World

CASE = "event.greening.maintenance"
ORDERED = "event.street_order.street_vending"  # categories no other kind reports in, so
# that nothing merges into these cases


async def _report(world: World, town: str, category: str) -> dict[str, Any]:
    async with world.client() as c:
        r = await c.post("/api/v1/incidents", json={"category": category, **PLACE[town],
                                                    "key": f"scope-{category}-{town}"})
        assert r.status_code == 201, r.text
        assert r.json()["areas"]["town"] == town, r.text
        doc: dict[str, Any] = r.json()
        return doc


class Incidents:
    async def make(self, world: World, town: str) -> str:
        return str((await _report(world, town, CASE))["id"])

    async def snapshot(self, world: World, rid: str) -> Any:
        return await world.node.store.get_incident(rid)

    def move_body(self, world: World, rid: str, town: str) -> dict[str, Any] | None:
        theirs = next(t for (kind, t), made in world.made.items()
                      if kind == "incident" and made == rid)
        return {"category": CASE, **PLACE[theirs], "key": "scope-merge"}


class WorkOrders:
    async def make(self, world: World, town: str) -> str:
        inc = await _report(world, town, ORDERED)
        path = f"/api/v1/incidents/{inc['id']}"
        async with world.client() as c:
            assert (await c.post(f"{path}/actions/register")).status_code == 200
            r = await c.post(f"{path}/actions/dispatch",
                             json={"departments": [DEPARTMENT[town]]})
            assert r.status_code == 200, r.text
        [order] = r.json()["orders"]
        return str(order["id"])

    async def snapshot(self, world: World, rid: str) -> Any:
        return await world.node.store.get_incident(rid.rsplit("-", 1)[0])

    def move_body(self, world: World, rid: str, town: str) -> dict[str, Any] | None:
        return None  # orders are made by dispatching their case, not by a body


class FieldStaff:
    """The roster comes with the city; what a key could change is a person's status."""

    async def make(self, world: World, town: str) -> str:
        assert STAFF[town] in world.node.act.staff
        return STAFF[town]

    async def snapshot(self, world: World, rid: str) -> Any:
        return world.node.act.staff.status[rid]

    def move_body(self, world: World, rid: str, town: str) -> dict[str, Any] | None:
        return None


KINDS = {"incident": Incidents(), "work_order": WorkOrders(), "staff": FieldStaff()}
