"""Cameras: each town's camera is a camera device standing in it; each town's kept snapshot
is one of that camera's, evidence on a case reported in the same town (made through the
evidence records and the image file, as the Frigate evidence fetcher makes them)."""

from __future__ import annotations

from typing import Any

from cityops.act import camera_evidence as ce
from tests.api.scope_kinds.act import _report
from tests.api.scope_kinds.base import PLACE, World
from tests.ingest.frigate_kit import jpeg


async def _camera(world: World, rid: str, town: str) -> None:
    async with world.client() as c:
        r = await c.post("/api/v1/devices", json={"id": rid, "kind": "camera",
                                                  "name": f"Camera of {town}", **PLACE[town]})
        assert r.status_code == 201, r.text
        assert r.json()["areas"]["town"] == town, r.text


class Cameras:
    async def make(self, world: World, town: str) -> str:
        rid = f"camera-of-{town}"
        await _camera(world, rid, town)
        return rid

    async def snapshot(self, world: World, rid: str) -> Any:
        stored = {d.id: d for d in await world.node.store.load_devices()}
        return world.node.registry.get(rid), stored.get(rid)

    def move_body(self, world: World, rid: str, town: str) -> dict[str, Any] | None:
        return None  # cameras are registered as devices


class CameraSnapshots:
    async def make(self, world: World, town: str) -> str:
        device = f"snapshot-camera-of-{town}"
        await _camera(world, device, town)
        # A category no other kind reports in, so that its case is its own.
        case = str((await _report(world, town, "event.street_order.illegal_parking"))["id"])
        node = world.node
        name = ce.name_for(f"frigate-{town}", f"alert-{town}")
        ce.file_of(node.settings.data_dir, name).parent.mkdir(parents=True, exist_ok=True)
        ce.file_of(node.settings.data_dir, name).write_bytes(jpeg())
        await ce.Snapshots(node.store, node.clock).keep(device, name, ce.Snapshot(
            device=device, incident=case, alert=f"alert-{town}", event="illegal_parking",
            taken_at=node.clock(), bytes=len(jpeg())))
        return name

    async def snapshot(self, world: World, rid: str) -> Any:
        return await world.node.store.get_record(ce.SNAPSHOT, rid)

    def move_body(self, world: World, rid: str, town: str) -> dict[str, Any] | None:
        return None


KINDS = {"camera": Cameras(), "camera_snapshot": CameraSnapshots()}
