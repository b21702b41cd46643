"""NGSI-LD records: a subscription belongs to the scope of the key that made it, so one made
by an operator of a town is that town's."""

from __future__ import annotations

from typing import Any

import msgspec

from tests.api.scope_kinds.base import World


def subscription_body(sub_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "Subscription", "entities": [{"type": "Building"}],
        "notification": {"endpoint": {"uri": "http://127.0.0.1:9/scope-test"}}}
    if sub_id is not None:
        body["id"] = sub_id
    return body


class NgsiSubscriptions:
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


KINDS = {"ngsild_subscription": NgsiSubscriptions()}
