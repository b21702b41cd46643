"""Storms of the storm guard: one town's storm is made by filing, as the alert intake would,
one more auto-dispatched case of a category than the guard lets through in a window; the
last one is held in the town's storm case."""

from __future__ import annotations

from typing import Any

from cityops.domain.city import AreaCodes
from cityops.domain.incidents.model import Report
from tests.api.scope_kinds.base import VILLAGE, World

CATEGORY = "event.construction.illegal_construction"  # no other kind reports in it


class Storms:
    async def make(self, world: World, town: str) -> str:
        desk = world.node.act.desk
        areas = AreaCodes(town[:6], town, VILLAGE[town])
        now = world.node.clock()
        result = None
        for i in range(desk.storm.cases + 1):
            # No point given: each report is a case of its own, none merges into another.
            report = Report(f"scope-storm-{town}-{i}", "sensor", now + i / 1000)
            result = await desk.async_report(report, CATEGORY, areas=areas,
                                             auto_register=True)
        assert result is not None and result.incident.id.startswith("storm-"), result
        return result.incident.id

    async def snapshot(self, world: World, rid: str) -> Any:
        doc = await world.node.act.desk.storm.get(rid)
        return doc, await world.node.store.get_incident(doc.incident)

    def move_body(self, world: World, rid: str, town: str) -> dict[str, Any] | None:
        return None


KINDS = {"storm": Storms()}
