"""Field staff as the act side sees them: who they are (the roster: the city pack with the
administrators' changes, cityops.roster), where they are (the latest fix of the GPS device each
carries, read from the history's in-memory latest values, so no extra bus subscriber slows
ingest), and their status (set from the field page). Only active people are proposed for
work; a change to the roster (a new person, a move to another department) counts from the
next proposal on.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence

import numpy as np

from cityops.domain.city import Staff
from cityops.domain.kinds import MAX_CHANNELS
from cityops.domain.nearest import (
    MAX_POSITION_AGE_S,
    Candidate,
    StaffStatus,
    StaffTable,
    nearest_candidates,
)
from cityops.roster import Roster

NEVER_US = np.iinfo(np.int64).min


class StaffBoard:
    """`latest(series) -> (ts_us, value)` reads the latest values of series indices
    (device index * MAX_CHANNELS + channel); `device_index(id)` maps a device id to its index."""

    def __init__(
        self,
        staff: Roster | Sequence[Staff],
        device_index: Callable[[str], int | None],
        latest: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
        *,
        max_age_s: float = MAX_POSITION_AGE_S,
        network=None,
    ) -> None:
        self.roster = staff if isinstance(staff, Roster) else Roster(staff)
        self._device_index = device_index
        self._latest = latest
        self.max_age_s = max_age_s
        # A StreetNetwork (cityops.routing), when the city configured one: the nearest few by
        # air are then re-ranked by travel time on the streets.
        self.network = network
        # Everyone starts available, people added to the roster later too.
        self.status: defaultdict[str, StaffStatus] = defaultdict(lambda: StaffStatus.AVAILABLE)

    @property
    def staff(self) -> Mapping[str, Staff]:
        """The active people by id."""
        return {s.id: s for s in self.roster.current()}

    def __contains__(self, staff_id: object) -> bool:
        return isinstance(staff_id, str) and self.roster.person(staff_id) is not None

    def set_status(self, staff_id: str, status: str) -> None:
        if staff_id not in self:
            raise KeyError(staff_id)
        self.status[staff_id] = StaffStatus(status)

    def table(self) -> StaffTable:
        """Every active person's latest position (lat channel 0, lon channel 1 of their GPS
        device)."""
        people = self.roster.current()
        n = len(people)
        found = [self._device_index(s.device_id) for s in people]
        index = np.array([-1 if i is None else i for i in found], dtype=np.int64)
        lat = np.full(n, np.nan)
        lon = np.full(n, np.nan)
        at = np.full(n, np.nan)
        known = index >= 0
        if known.any():
            base = index[known] * MAX_CHANNELS
            ts_lat, v_lat = self._latest(base)
            ts_lon, v_lon = self._latest(base + 1)
            fixed = (ts_lat != NEVER_US) & (ts_lon != NEVER_US)
            lat[known] = np.where(fixed, v_lat, np.nan)
            lon[known] = np.where(fixed, v_lon, np.nan)
            at[known] = np.where(fixed, np.minimum(ts_lat, ts_lon) / 1e6, np.nan)
        return StaffTable(
            [s.id for s in people], lat, lon, at,
            [self.status[s.id].value for s in people],
            [s.department for s in people],
            [s.skills for s in people],
        )

    def candidates(self, lat: float, lon: float, department: str, now: float, *,
                   exclude: Collection[str] = (), skill: str | None = None,
                   limit: int = 10) -> list[Candidate]:
        found = nearest_candidates(self.table(), lat, lon, department, now=now, skill=skill,
                                   exclude=exclude, max_age_s=self.max_age_s, limit=limit)
        if self.network is not None and found:
            from cityops.routing.rerank import rerank_by_travel_time

            found = rerank_by_travel_time(self.network, found, lat, lon, k=limit)
        return found

    def positions(self) -> list[dict]:
        """For the screen: every person with a fix, and their status."""
        people = self.roster.current()
        t = self.table()
        out = []
        for i, s in enumerate(people):
            if np.isfinite(t.lat[i]):
                out.append({"id": s.id, "name": s.name, "department": s.department,
                            "status": self.status[s.id].value, "lat": float(t.lat[i]),
                            "lon": float(t.lon[i]), "at": float(t.at[i])})
        return out
