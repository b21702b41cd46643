"""Who keeps each grid cell, as the city runs it: the city pack's owners with the changes
administrators made since (api/admin.py), which the store keeps (`CellOwnerStore`).

The node's `CityMap.cell_owners` is what the workflow routes new cases by (`Rules.route`, through
`CityMap.owner_of_cell`), so a change is applied there as soon as it is stored: at start from
the store, on this node at once, and on the other nodes of a cluster when they next follow the
store (cluster/compose.py). A change never touches cases already routed: their work orders
stay with the unit that took them.

An owner is a department code, or "" for the local authority of the cell's territory (its
village station): what a cell the pack names no owner for falls to.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Literal

import h3

from cityops.domain.geo import CityMap, local_authority
from cityops.store.protocols import CellOwnerStore
from cityops.store.values import AuditEntry

Source = Literal["override", "pack", "territory"]


class BadCell(ValueError):
    """Not one of this city's grid cells (not H3, another resolution, or outside)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BadOwner(ValueError):
    """An owner that is not one of the city's departments."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CellOwners:
    def __init__(self, city: CityMap, pack_owners: Mapping[str, str]) -> None:
        self.city = city
        self.pack = dict(pack_owners)
        self.overrides: dict[str, str] = {}
        self._territories: dict[str, str] = {}  # a cell's village never changes: kept

    def _apply(self, overrides: Mapping[str, str]) -> None:
        merged = dict(self.pack)
        merged.update(overrides)
        self.overrides = dict(overrides)
        # One assignment: a route made meanwhile reads the old table or the new, never half.
        self.city.cell_owners = merged

    async def load(self, store: CellOwnerStore) -> None:
        self._apply(await store.load_cell_owners())

    async def refresh(self, store: CellOwnerStore) -> bool:
        """Take what other nodes stored; whether anything changed."""
        found = await store.load_cell_owners()
        if found == self.overrides:
            return False
        self._apply(found)
        return True

    def territory(self, cell: str) -> str:
        """The village code of one of the city's cells; BadCell for anything else."""
        if not isinstance(cell, str) or not h3.is_valid_cell(cell):
            raise BadCell(f"{cell!r} is not an H3 cell")
        if h3.get_resolution(cell) != self.city.h3_resolution:
            raise BadCell(f"cell {cell} is of H3 resolution {h3.get_resolution(cell)}; this "
                          f"city's grid is resolution {self.city.h3_resolution}")
        found = self._territories.get(cell)
        if found is None:
            try:
                found = self._territories[cell] = self.city.territory_of_cell(cell)
            except ValueError as exc:
                raise BadCell(str(exc)) from None
        return found

    def owner(self, cell: str) -> tuple[str, Source]:
        """Who keeps the cell now, and where that comes from."""
        found = self.city.owner_of_cell(cell)
        source: Source = ("override" if cell in self.overrides else
                          "pack" if self.pack.get(cell) else "territory")
        return found, source

    def check_owner(self, owner: str) -> None:
        if owner and owner not in self.city.departments:
            known = ", ".join(sorted(self.city.departments)) or "none"
            raise BadOwner(f"owner {owner!r} is not one of the city's departments ({known}); "
                           "\"\" gives the cell to its village station")

    async def assign(self, store: CellOwnerStore, cell: str, owner: str | None, *,
                     actor: str, reason: str, at: float | None = None) -> str:
        """Give the cell to `owner` ("" its station; None: back to the pack's owner), stored
        with its audit entry, and route by it from now on. The owner in force afterwards."""
        self.territory(cell)
        if owner is not None:
            self.check_owner(owner)
        before, _ = self.owner(cell)
        after = (owner if owner is not None else self.pack.get(cell)) or local_authority(
            self.territory(cell))
        entry = AuditEntry(actor=actor, action="cell.owner", subject=f"cell:{cell}",
                           before=before, after=after if owner is not None else
                           f"{after} (the city pack's)", reason=reason,
                           at=time.time() if at is None else at)
        await store.set_cell_owner(cell, owner, entry)
        # Read after the write: another change stored meanwhile on this node is kept.
        overrides = dict(self.overrides)
        if owner is None:
            overrides.pop(cell, None)
        else:
            overrides[cell] = owner
        self._apply(overrides)
        return after
