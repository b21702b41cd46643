"""The serve side: citizens, 12345 hotline orders, reviews and their follow-up tasks, smart
filing cabinets and their items, citizens' report photos.

Each town's records are its own citizen's: an order about a place in the town, assigned to
the town's own department; a review of such an order once answered (a bad one, so it has
follow-up tasks); a cabinet standing in the town with an item waiting for the citizen; a
photo the citizen sent with an Open311 report of a problem in the town."""

from __future__ import annotations

from typing import Any

from cityops.serve.report_photos import ReportPhotos
from tests.api.scope_kinds.base import (
    CITIZEN,
    DEPARTMENT,
    PLACE,
    TOWN_A,
    TOWN_B,
    VILLAGE,
    World,
)
from tests.photo_kit import png


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


SERVICE = {TOWN_A: "event-sanitation-exposed_garbage", TOWN_B: "event-transport-street_condition"}


def _cache(world: World) -> dict[tuple[Any, ...], Any]:
    """What the makers made, shared between them (a review needs an order, a task a review)."""
    found: dict[tuple[Any, ...], Any] | None = getattr(world, "serve_made", None)
    if found is None:
        found = {}
        world.serve_made = found  # type: ignore[attr-defined]
    return found


async def _citizen_key(world: World, town: str) -> str:
    made = _cache(world)
    if ("key", town) not in made:
        await Citizens().make(world, town)
        made[("key", town)] = await world.live.key("citizen", name=CITIZEN[town])
    return made[("key", town)]


def _other(town: str) -> str:
    return next(t for t in VILLAGE if t != town)


async def _order(world: World, town: str, *, answered: bool = False) -> str:
    made = _cache(world)
    if ("order", town, answered) in made:
        return made[("order", town, answered)]
    await Citizens().make(world, town)
    async with world.client() as c:
        r = await c.post("/api/v1/hotline/orders", json={
            "type": "help", "title": f"Lift broken in {town}", "citizen_id": CITIZEN[town],
            "area": VILLAGE[town], "department": DEPARTMENT[town]})
        assert r.status_code == 201, r.text
        number = r.json()["number"]
        if answered:
            path = f"/api/v1/hotline/orders/{number}/actions"
            assert (await c.post(f"{path}/contact")).status_code == 200
            r = await c.post(f"{path}/answer", json={"answer": "repaired"})
            assert r.status_code == 200, r.text
    made[("order", town, answered)] = number
    return number


class HotlineOrders:
    def __init__(self) -> None:
        self.town_of: dict[str, str] = {}

    async def make(self, world: World, town: str) -> str:
        number = await _order(world, town)
        self.town_of[number] = town
        return number

    async def snapshot(self, world: World, rid: str) -> Any:
        return await world.node.serve.hotline.get(rid)

    def move_body(self, world: World, rid: str, town: str) -> dict[str, Any] | None:
        # An order is never named by the caller: the nearest to moving one is taking a call
        # for a place where it lies, which a key that may not see it must not do either.
        return {"type": "help", "title": "Taken for another town", "phone": "13800000000",
                "area": VILLAGE[self.town_of.get(rid, _other(town))]}


async def _rated(world: World, town: str) -> dict[str, Any]:
    made = _cache(world)
    if ("rated", town) not in made:
        number = await _order(world, town, answered=True)
        async with world.client(await _citizen_key(world, town)) as c:
            r = await c.post("/api/v1/reviews", json={
                "subject_kind": "hotline_order", "subject_id": number,
                "grade": "dissatisfied", "comment": "still broken"})
            assert r.status_code == 201, r.text
        made[("rated", town)] = {**r.json(), "subject": number}
    return made[("rated", town)]


class Reviews:
    def __init__(self) -> None:
        self.subject_of: dict[str, str] = {}

    async def make(self, world: World, town: str) -> str:
        rated = await _rated(world, town)
        self.subject_of[rated["id"]] = rated["subject"]
        return rated["id"]

    async def snapshot(self, world: World, rid: str) -> Any:
        return await world.node.serve.reviews.get(rid)

    def move_body(self, world: World, rid: str, town: str) -> dict[str, Any] | None:
        # Rating the other town's order as its caller did: only that citizen may.
        return {"subject_kind": "hotline_order", "subject_id": self.subject_of.get(rid, "x"),
                "grade": "very_dissatisfied", "comment": "not mine to rate"}


class ReviewTasks:
    async def make(self, world: World, town: str) -> str:
        return (await _rated(world, town))["follow_ups_opened"][0]

    async def snapshot(self, world: World, rid: str) -> Any:
        return await world.node.serve.reviews.get_task(rid)

    def move_body(self, world: World, rid: str, town: str) -> dict[str, Any] | None:
        return None


class Cabinets:
    async def make(self, world: World, town: str) -> str:
        cid = f"cab-{town}"
        if ("cabinet", town) in _cache(world):
            return cid
        async with world.client() as c:
            r = await c.post("/api/v1/cabinets", json={
                "id": cid, "name": f"Cabinet of {town}", "centre": f"{town} service centre",
                "area": town, "compartments": 4})
            assert r.status_code == 201, r.text
        _cache(world)[("cabinet", town)] = cid
        return cid

    async def snapshot(self, world: World, rid: str) -> Any:
        return (await world.node.serve.cabinets.get(rid))[0]

    def move_body(self, world: World, rid: str, town: str) -> dict[str, Any] | None:
        return {"id": rid, "name": "Moved", "centre": "Elsewhere", "compartments": 1,
                "area": town}


class CabinetItems:
    async def make(self, world: World, town: str) -> str:
        if ("item", town) not in _cache(world):
            cabinet = await Cabinets().make(world, town)
            await Citizens().make(world, town)
            async with world.client() as c:
                r = await c.post(f"/api/v1/cabinets/{cabinet}/dropoff", json={
                    "recipient_citizen": CITIZEN[town], "description": "signed licence"})
                assert r.status_code == 201, r.text
            _cache(world)[("item", town)] = r.json()["id"]
        return _cache(world)[("item", town)]

    async def snapshot(self, world: World, rid: str) -> Any:
        return (await world.node.serve.cabinets.get_item(rid))[0]

    def move_body(self, world: World, rid: str, town: str) -> dict[str, Any] | None:
        return None


class CitizenPhotos:
    async def make(self, world: World, town: str) -> str:
        if ("photo", town) in _cache(world):
            return _cache(world)[("photo", town)]
        async with world.client(await _citizen_key(world, town)) as c:
            r = await c.post("/api/v1/citizens/me/photos", content=png(
                rgb=(10, 20, 30) if town == TOWN_A else (30, 20, 10)),
                headers={"Content-Type": "image/png"})
            assert r.status_code == 201, r.text
            url = r.json()["url"]
            # Filed with a case in the town: staff covering the town may see it, and the
            # department handling the case (sanitation in town A; town B's case is transport's,
            # which serves the whole city, so sanitation's key has no part in it).
            r = await c.post("/open311/v2/requests.json", data={
                "service_code": SERVICE[town],
                "lat": str(PLACE[town]["lat"]), "long": str(PLACE[town]["lon"]),
                "description": f"Rubbish in {town}", "media_url": url})
            assert r.status_code == 200, r.text
        name = url.rsplit("/", 1)[-1]
        _cache(world)[("photo", town)] = name
        return name

    async def snapshot(self, world: World, rid: str) -> Any:
        return await ReportPhotos(world.node.store, world.node.clock).get(rid)

    def move_body(self, world: World, rid: str, town: str) -> dict[str, Any] | None:
        return None


KINDS = {"citizen": Citizens(), "hotline_order": HotlineOrders(), "review": Reviews(),
         "review_task": ReviewTasks(), "cabinet": Cabinets(), "cabinet_item": CabinetItems(),
         "citizen_photo": CitizenPhotos()}
