"""The world of the scope test: a grid city with two towns, a department and a field person
serving each, a registered citizen in each, and keys of every role scoped to town A. Records
made in town B must stay invisible and unchanged for all of those keys."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

TOWN_A, TOWN_B = "990001001", "990001002"
VILLAGE = {TOWN_A: "990001001001", TOWN_B: "990001002001"}
PLACE = {TOWN_A: {"lat": 31.15, "lon": 121.45}, TOWN_B: {"lat": 31.15, "lon": 121.55}}
DEPARTMENT = {TOWN_A: "sanitation", TOWN_B: "water_affairs"}
STAFF = {TOWN_A: "san-a", TOWN_B: "wat-b"}
CITIZEN = {TOWN_A: "c-town-a", TOWN_B: "c-town-b"}


@dataclass
class World:
    live: Any  # tests.conftest.LiveNode
    admin: str  # an admin key's secret, for making records
    made: dict[tuple[str, str], str] = field(default_factory=dict)  # (kind, town) -> id

    @property
    def node(self) -> Any:
        return self.live.node

    def client(self, secret: str | None = None) -> Any:
        return self.live.client(secret or self.admin)


class Kind(Protocol):
    async def make(self, world: World, town: str) -> str:
        """Make a record of this kind in `town` (as an unscoped admin would), return its id."""

    async def snapshot(self, world: World, rid: str) -> Any:
        """The record as stored: compared before and after each call of a scoped key."""

    def move_body(self, world: World, rid: str, town: str) -> dict[str, Any] | None:
        """For CREATE routes: a body that would write record `rid` into `town` (None when the
        route cannot name an existing record)."""
