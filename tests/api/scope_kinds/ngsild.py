"""NGSI-LD records: a subscription belongs to the scope of the key that made it, so one made
by an operator of a town is that town's."""

from __future__ import annotations

from typing import Any

import msgspec

from tests.api.scope_kinds.base import PLACE, World


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


class DeviceEntities:
    """An entity a town's device stands behind: its noise meter, with one reading, seen as
    `urn:ngsi-ld:NoiseLevelObserved:<device id>`; a key sees it where it sees the device."""

    async def make(self, world: World, town: str) -> str:
        device = f"ngsild-noise-of-{town}"
        async with world.client() as c:
            r = await c.post("/api/v1/devices", json={"id": device, "kind": "noise",
                                                      "name": f"Meter of {town}", **PLACE[town]})
            assert r.status_code == 201, r.text
            r = await c.post("/api/v1/readings", json=[{"device_id": device, "value": 55.0,
                                                        "ts": "2026-01-01T00:00:00Z"}])
            assert r.status_code == 202, r.text
        return f"urn:ngsi-ld:NoiseLevelObserved:{device}"

    async def snapshot(self, world: World, rid: str) -> Any:
        device = rid.rsplit(":", 1)[1]
        node = world.node
        stored = {d.id: d for d in await node.store.load_devices()}
        readings = node.reader.device_readings(node.registry.index[device], 0, 2**62, 100)
        return node.registry.get(device), stored.get(device), readings

    def move_body(self, world: World, rid: str, town: str) -> dict[str, Any] | None:
        return None


KINDS = {"ngsild_subscription": NgsiSubscriptions(), "ngsild_entity": DeviceEntities()}
