"""NGSI-LD context entities: one located in each town (a Building at the town's place).
The batch routes name theirs in a list (`ngsild_batch` writes entities, `ngsild_ids` deletes
by id); a scoped key's batch naming town B's entity is refused whole. A subscription belongs
to the scope of the key that made it, so one made by an operator of a town is that town's."""

from __future__ import annotations

import copy
from typing import Any

import msgspec

from tests.api.scope_kinds.base import PLACE, TOWN_A, TOWN_B, World


def _entity(rid: str, town: str) -> dict[str, Any]:
    place = PLACE[town]
    return {"id": rid, "type": "Building",
            "name": {"type": "Property", "value": f"in {town}"},
            "location": {"type": "GeoProperty",
                         "value": {"type": "Point", "coordinates": [place["lon"],
                                                                    place["lat"]]}}}


class Entities:
    """`as_list`: the body a batch route takes; `ids_only`: a list of ids (batch delete)."""

    def __init__(self, name: str, *, as_list: bool = False, ids_only: bool = False) -> None:
        self.name = name
        self.as_list = as_list
        self.ids_only = ids_only

    async def make(self, world: World, town: str) -> str:
        rid = f"urn:ngsi-ld:Building:{self.name}-{town}"
        async with world.client() as c:
            r = await c.post("/ngsi-ld/v1/entities", json=_entity(rid, town))
            assert r.status_code == 201, r.text
        return rid

    async def snapshot(self, world: World, rid: str) -> Any:
        return copy.deepcopy(world.node.ngsild.entities.peek(rid))

    def move_body(self, world: World, rid: str, town: str) -> Any:
        if self.ids_only:
            return [rid]
        moved = _entity(rid, town if town in (TOWN_A, TOWN_B) else TOWN_A)
        return [moved] if self.as_list else moved


def subscription_body(sub_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "Subscription", "entities": [{"type": "Building"}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/scope-test"}}}
    if sub_id is not None:
        body["id"] = sub_id
    return body


class Subscriptions:
    async def make(self, world: World, town: str) -> str:
        key = await world.live.key("operator", town)
        sub_id = f"urn:ngsi-ld:Subscription:scope-{town}"
        async with world.client(key) as c:
            r = await c.post("/ngsi-ld/v1/subscriptions", json=subscription_body(sub_id))
        assert r.status_code == 201, r.text
        return sub_id

    async def snapshot(self, world: World, rid: str) -> Any:
        rec = await world.node.store.get_record("ngsild_subscription", rid)
        return None if rec is None else (rec.version, msgspec.json.decode(rec.doc))

    def move_body(self, world: World, rid: str, town: str) -> dict[str, Any] | None:
        return subscription_body(rid)


KINDS = {"ngsild_entity": Entities("e"), "ngsild_batch": Entities("b", as_list=True),
         "ngsild_ids": Entities("i", ids_only=True), "ngsild_subscription": Subscriptions()}
