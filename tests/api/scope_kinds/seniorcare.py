"""Senior care: a nursing home (the town's first care service point, with beds), a caregiver
serving the town, and a visit booked with that caregiver for the town's citizen."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from tests.api.scope_kinds.base import CITIZEN, World
from tests.api.scope_kinds.serve import Citizens

P = "/api/v1/seniorcare"


def _cache(world: World) -> dict[tuple[str, str], str]:
    return world.__dict__.setdefault("_seniorcare", {})


class Homes:
    async def make(self, world: World, town: str) -> str:
        if ("home", town) in _cache(world):
            return _cache(world)[("home", town)]
        from cityops.serve.seniorcare.points import care_points

        points = await care_points(world.node)
        home = min(p for p, point in points.items() if point.area.startswith(town))
        async with world.client() as c:
            r = await c.put(f"{P}/homes/{home}/beds", json={"beds": 2})
            assert r.status_code == 200, r.text
        _cache(world)[("home", town)] = home
        return home

    async def snapshot(self, world: World, rid: str) -> Any:
        rec = await world.node.store.get_record("care_home", rid)
        return rec.doc if rec else None

    def move_body(self, world: World, rid: str, town: str) -> dict[str, Any] | None:
        return None


class Caregivers:
    async def make(self, world: World, town: str) -> str:
        cid = f"cg-{town}"
        if ("caregiver", town) not in _cache(world):
            async with world.client() as c:
                r = await c.post(f"{P}/caregivers", json={
                    "id": cid, "name": f"Carer of {town}", "area": town,
                    "skills": ["personal_care"],
                    "schedule": [{"weekday": d, "start": "00:00", "end": "24:00"}
                                 for d in range(1, 8)]})
                assert r.status_code == 201, r.text
            _cache(world)[("caregiver", town)] = cid
        return cid

    async def snapshot(self, world: World, rid: str) -> Any:
        rec = await world.node.store.get_record("caregiver", rid)
        return rec.doc if rec else None

    def move_body(self, world: World, rid: str, town: str) -> dict[str, Any] | None:
        return {"id": rid, "name": "Moved", "area": town, "skills": ["bathing"],
                "schedule": []}


class Bookings:
    async def make(self, world: World, town: str) -> str:
        if ("booking", town) not in _cache(world):
            carer = await Caregivers().make(world, town)
            await Citizens().make(world, town)
            zone = ZoneInfo(world.node.pack.info.timezone)
            day = (dt.datetime.now(zone).date() + dt.timedelta(days=2)).isoformat()
            async with world.client() as c:
                r = await c.post(f"{P}/bookings", json={
                    "caregiver": carer, "citizen": CITIZEN[town], "day": day,
                    "start": "10:00", "end": "11:00"})
                assert r.status_code == 201, r.text
            _cache(world)[("booking", town)] = r.json()["id"]
        return _cache(world)[("booking", town)]

    async def snapshot(self, world: World, rid: str) -> Any:
        carer, day, _ = rid.split("@")
        rec = await world.node.store.get_record("care_day", f"{carer}@{day}")
        return rec.doc if rec else None

    def move_body(self, world: World, rid: str, town: str) -> dict[str, Any] | None:
        # Another visit in the same caregiver's day: a key that does not see the caregiver
        # may not book them.
        carer, day, _ = rid.split("@")
        return {"caregiver": carer, "citizen": CITIZEN[town], "day": day, "start": "12:00",
                "end": "13:00"}


KINDS = {"care_home": Homes(), "caregiver": Caregivers(), "care_booking": Bookings()}
