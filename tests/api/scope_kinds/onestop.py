"""One-stop services: submissions and the applications they fan out to, e-licences, and
benefits granted by eligibility policies.

Each town's citizen applies for the fire safety inspection (fire serves the whole city, so a
department key of either town's own department sees neither); each holds a licence issued by
their town's own department."""

from __future__ import annotations

from typing import Any

import msgspec

from cityops.serve.onestop import onestop_of
from cityops.serve.onestop.benefits import Grant
from tests.api.scope_kinds.base import CITIZEN, DEPARTMENT, World
from tests.api.scope_kinds.serve import Citizens

FIRE_INSPECTION = {
    "service": "fire_safety_inspection",
    "answers": {"business_name": "Noodles", "business_address": "8 Zhangyang Road",
                "floor_area": 60, "seating_capacity": 24, "opening_date": "2027-01-05"},
    "materials": {"business_licence": "scan-1", "fire_safety_plan": "scan-2"},
}


def _application_body(town: str) -> dict[str, Any]:
    # The same idempotency key each time: the submission and application makers share one.
    return {**FIRE_INSPECTION, "citizen": CITIZEN[town], "key": f"scope-{town}"}


async def _submit(world: World, town: str) -> dict[str, Any]:
    await Citizens().make(world, town)
    async with world.client() as c:
        r = await c.post("/api/v1/applications", json=_application_body(town))
        assert r.status_code in (200, 201), r.text
        return r.json()


class Submissions:
    async def make(self, world: World, town: str) -> str:
        return (await _submit(world, town))["id"]

    async def snapshot(self, world: World, rid: str) -> Any:
        return await onestop_of(world.node).desk.find_submission(rid)

    def move_body(self, world: World, rid: str, town: str) -> dict[str, Any] | None:
        # The other town's submission sent again under its key: a key that may not see it
        # must neither get it back nor make anything for that citizen.
        other = next(t for t, cid in CITIZEN.items() if t != town)
        return _application_body(other)


class Applications:
    async def make(self, world: World, town: str) -> str:
        return (await _submit(world, town))["applications"][0]["id"]

    async def snapshot(self, world: World, rid: str) -> Any:
        return await onestop_of(world.node).desk.find(rid)

    def move_body(self, world: World, rid: str, town: str) -> dict[str, Any] | None:
        return None  # made only through a submission


class Licences:
    async def make(self, world: World, town: str) -> str:
        await Citizens().make(world, town)
        async with world.client() as c:
            r = await c.post("/api/v1/licences", json=self._body(town, CITIZEN[town]))
            assert r.status_code in (200, 201), r.text
            return r.json()["id"]

    @staticmethod
    def _body(town: str, holder: str) -> dict[str, Any]:
        return {"holder": holder, "type": "property_certificate", "number": f"scope-{town}",
                "valid_from": "2020-05-01", "issuer": DEPARTMENT[town]}

    async def snapshot(self, world: World, rid: str) -> Any:
        return await onestop_of(world.node).book.get(rid)

    def move_body(self, world: World, rid: str, town: str) -> dict[str, Any] | None:
        # The other town's licence number, issued again to this town's citizen.
        other = next(t for t in CITIZEN if t != town)
        return {**self._body(other, CITIZEN[town]), "issuer": DEPARTMENT[town]}


class Benefits:
    """Granted straight into the store: the scope test's city runs no eligibility policy."""

    async def make(self, world: World, town: str) -> str:
        await Citizens().make(world, town)
        citizen = CITIZEN[town]
        grant = Grant(id=f"ben-scope-{citizen}", policy="scope", policy_name="Scope",
                      department=DEPARTMENT[town], citizen=citizen, benefit={"kind": "service"},
                      granted_at=world.node.clock(), day="2026-11-23", run="run-scope",
                      audit=[])
        await onestop_of(world.node).benefits._grant(grant)
        return grant.id

    async def snapshot(self, world: World, rid: str) -> Any:
        rec = await world.node.store.get_record("benefit", rid)
        return None if rec is None else msgspec.json.decode(rec.doc)

    def move_body(self, world: World, rid: str, town: str) -> dict[str, Any] | None:
        return None


KINDS = {"submission": Submissions(), "application": Applications(), "licence": Licences(),
         "benefit": Benefits()}
