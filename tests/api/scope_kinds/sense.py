"""Sense and see: devices, alerts, areas and their operating states.

Each town's device is a noise sensor standing in it; its alert was raised there and sent to
the town's own department; its area is the town itself, and so is the record of the town's
operating state (set to special, so a change by a key elsewhere would show)."""

from __future__ import annotations

import time
from typing import Any

from cityops.domain.alerts import Alert
from cityops.domain.city import AreaCodes
from tests.api.scope_kinds.base import DEPARTMENT, PLACE, VILLAGE, World


class Devices:
    async def make(self, world: World, town: str) -> str:
        rid = f"noise-of-{town}"
        async with world.client() as c:
            r = await c.post("/api/v1/devices", json={"id": rid, "kind": "noise",
                                                      "name": f"Sensor of {town}", **PLACE[town]})
            assert r.status_code == 201, r.text
            assert r.json()["areas"]["town"] == town, r.text
        return rid

    async def snapshot(self, world: World, rid: str) -> Any:
        stored = {d.id: d for d in await world.node.store.load_devices()}
        return world.node.registry.get(rid), stored.get(rid)

    def move_body(self, world: World, rid: str, town: str) -> dict[str, Any] | None:
        return {"id": rid, "kind": "noise", "name": "Moved", **PLACE[town]}


class DeviceLifecycles:
    """A device moved with POST /api/v1/devices/lifecycle: the body names town B's device by
    id (a key of town A must get 403/404 and leave it as it was)."""

    async def make(self, world: World, town: str) -> str:
        rid = f"life-of-{town}"
        async with world.client() as c:
            r = await c.post("/api/v1/devices", json={"id": rid, "kind": "noise", **PLACE[town]})
            assert r.status_code == 201, r.text
        return rid

    async def snapshot(self, world: World, rid: str) -> Any:
        stored = {d.id: d for d in await world.node.store.load_devices()}
        return world.node.registry.get(rid), stored.get(rid)

    def move_body(self, world: World, rid: str, town: str) -> dict[str, Any] | None:
        return {"to": "maintenance", "devices": [rid], "reason": "scope test"}


class Alerts:
    async def make(self, world: World, town: str) -> str:
        now = time.time()
        alert = Alert(id=f"scope-alert-{town}", scenario="noise", rule="noise.scope",
                      category="event.environment.noise", severity="major", urgency="normal",
                      departments=[DEPARTMENT[town]], subject=f"noise-of-{town}",
                      title=f"Loud in {town}", areas=AreaCodes(town[:6], town, VILLAGE[town]),
                      first_seen=now, last_seen=now, value=90.0)
        await world.node.store.upsert_alerts([alert])
        return alert.id

    async def snapshot(self, world: World, rid: str) -> Any:
        return await world.node.store.get_alert(rid)

    def move_body(self, world: World, rid: str, town: str) -> dict[str, Any] | None:
        return None  # no route writes an alert


class AreaStates:
    async def make(self, world: World, town: str) -> str:
        async with world.client() as c:
            r = await c.put(f"/api/v1/areas/{town}/state",
                            json={"state": "special", "reason": "scope test"})
            assert r.status_code == 200, r.text
        return town

    async def snapshot(self, world: World, rid: str) -> Any:
        return (world.node.detect.area_states.get(rid),
                (await world.node.store.load_area_states()).get(rid))

    def move_body(self, world: World, rid: str, town: str) -> dict[str, Any] | None:
        return None


class Areas:
    """The town itself: areas do not change through the API, so a list is what is checked
    (a scoped key's figures name no area outside its scope)."""

    async def make(self, world: World, town: str) -> str:
        assert town in world.node.city
        return town

    async def snapshot(self, world: World, rid: str) -> Any:
        return world.node.city.area(rid)

    def move_body(self, world: World, rid: str, town: str) -> dict[str, Any] | None:
        return None


KINDS = {"device": Devices(), "device_lifecycle": DeviceLifecycles(), "alert": Alerts(), "area_state": AreaStates(), "area": Areas()}
