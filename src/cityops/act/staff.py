"""Field staff as the act side sees them: who they are (the city pack), where they are (the
latest fix of the GPS device each carries, read from the history's in-memory latest values,
so no extra bus subscriber slows ingest), and their status (set from the field page).
"""

from __future__ import annotations

from collections.abc import Callable, Collection

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

NEVER_US = np.iinfo(np.int64).min


class StaffBoard:
    """`latest(series) -> (ts_us, value)` reads the latest values of series indices
    (device index * MAX_CHANNELS + channel); `device_index(id)` maps a device id to its index."""

    def __init__(
        self,
        staff: list[Staff],
        device_index: Callable[[str], int | None],
        latest: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
        *,
        max_age_s: float = MAX_POSITION_AGE_S,
        network=None,
    ) -> None:
        self.staff = {s.id: s for s in staff}
        self._ids = [s.id for s in staff]
        self._device_index = device_index
        self._latest = latest
        self.max_age_s = max_age_s
        # A StreetNetwork (cityops.routing), when the city configured one: the nearest few by
        # air are then re-ranked by travel time on the streets.
        self.network = network
        self.status: dict[str, StaffStatus] = {s.id: StaffStatus.AVAILABLE for s in staff}

    def __contains__(self, staff_id: object) -> bool:
        return staff_id in self.staff

    def set_status(self, staff_id: str, status: str) -> None:
        if staff_id not in self.staff:
            raise KeyError(staff_id)
        self.status[staff_id] = StaffStatus(status)

    def table(self) -> StaffTable:
        """Everyone's latest position (lat channel 0, lon channel 1 of their GPS device)."""
        n = len(self._ids)
        found = [self._device_index(self.staff[s].device_id) for s in self._ids]
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
            self._ids, lat, lon, at,
            [self.status[s].value for s in self._ids],
            [self.staff[s].department for s in self._ids],
            [self.staff[s].skills for s in self._ids],
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
        t = self.table()
        out = []
        for i, sid in enumerate(self._ids):
            if np.isfinite(t.lat[i]):
                out.append({"id": sid, "name": self.staff[sid].name,
                            "department": self.staff[sid].department,
                            "status": self.status[sid].value, "lat": float(t.lat[i]),
                            "lon": float(t.lon[i]), "at": float(t.at[i])})
        return out
