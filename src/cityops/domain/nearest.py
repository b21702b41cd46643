"""Proposing the nearest available qualified field person for a work order.

Pure domain code: positions arrive as columns (one row per person) and every filter is a numpy
mask, so ranking a city's whole field staff costs a few array passes, not a Python loop.
Distances are great-circle (haversine); `cityops.routing` can re-rank the closest few by travel
time on the street network.

Offering follows the field-staff rule of the spec: the first candidate gets the order and
`ack_timeout_s` seconds to acknowledge it; when that runs out (or they decline) they join the
order's tried set and the next candidate is offered. `next_offer` is that step as a pure
function; the caller keeps the tried set with the order.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Collection, Iterable, Sequence

import msgspec
import numpy as np
import numpy.typing as npt

EARTH_RADIUS_M = 6_371_008.8  # IUGG mean radius, as elsewhere in cityops

# A device that has not reported for this long is probably off, flat or indoors, and a person
# on foot covers about 800 m in ten minutes: the dot on the map can no longer be trusted to
# say who is closest.
MAX_POSITION_AGE_S = 10 * 60.0

# Long enough to read the order and tap "accept" on a phone in a pocket, short enough that an
# urgent order loses no more than a minute or two per person who does not answer.
ACK_TIMEOUT_S = 90.0


class StaffStatus(enum.StrEnum):
    AVAILABLE = "available"
    EN_ROUTE = "en_route"
    ON_SITE = "on_site"
    OFF_DUTY = "off_duty"


class StaffPosition(msgspec.Struct, frozen=True, omit_defaults=True):
    """The last known state of one field person."""

    staff_id: str
    lat: float
    lon: float
    at: float  # epoch seconds of the position fix
    status: StaffStatus
    department: str
    skills: frozenset[str] = frozenset()


class Candidate(msgspec.Struct, frozen=True, omit_defaults=True):
    staff_id: str
    distance_m: float  # great-circle, from the person to the target
    lat: float
    lon: float
    travel_s: float | None = None  # on the street network, when it was routed


class AssignmentOffer(msgspec.Struct, frozen=True, omit_defaults=True):
    """An order offered to one person, waiting for their acknowledgement until `ack_due`."""

    staff_id: str
    offered_at: float
    ack_due: float
    distance_m: float
    travel_s: float | None = None

    def expired(self, now: float) -> bool:
        return now >= self.ack_due


def haversine_m(lat1: npt.ArrayLike, lon1: npt.ArrayLike, lat2: npt.ArrayLike,
                lon2: npt.ArrayLike) -> np.ndarray:
    """Great-circle distance in metres; broadcasts like numpy."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dp = p2 - p1
    dl = np.radians(np.asarray(lon2, dtype=float) - np.asarray(lon1, dtype=float))
    h = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    # clip: rounding can push h a hair above 1 for antipodal points, and arcsin would return NaN
    distance: np.ndarray = 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0)))
    return distance


def _codes(values: Sequence[str]) -> tuple[dict[str, int], np.ndarray]:
    index = {v: i for i, v in enumerate(sorted(set(values)))}
    return index, np.fromiter((index[v] for v in values), dtype=np.int32, count=len(values))


class StaffTable:
    """Field staff as columns. Strings are coded once here so that each query compares ints."""

    def __init__(self, staff_ids: Sequence[str], lats: npt.ArrayLike, lons: npt.ArrayLike,
                 ats: npt.ArrayLike,
                 statuses: Sequence[str], departments: Sequence[str],
                 skills: Sequence[Iterable[str]]) -> None:
        n = len(staff_ids)
        self.staff_ids = np.asarray(staff_ids, dtype=object)
        self.lat = np.asarray(lats, dtype=float)
        self.lon = np.asarray(lons, dtype=float)
        self.at = np.asarray(ats, dtype=float)
        columns = (self.lat, self.lon, self.at, statuses, departments, skills)
        if any(len(c) != n for c in columns):
            raise ValueError("every staff column needs one value per staff id")
        if len(set(staff_ids)) != n:
            raise ValueError("staff ids must be unique")
        self.available = np.asarray([StaffStatus(s) is StaffStatus.AVAILABLE for s in statuses],
                                    dtype=bool)
        self._departments, self._department = _codes(departments)
        skill_sets = [frozenset(s) for s in skills]
        self._skills = {s: j for j, s in enumerate(sorted(set().union(*skill_sets)))}
        self._skill = np.zeros((n, len(self._skills)), dtype=bool)
        for i, person in enumerate(skill_sets):
            self._skill[i, [self._skills[s] for s in person]] = True
        # ties in distance are broken by id, so equal inputs always give the same proposal
        self.id_rank = np.empty(n, dtype=np.int64)
        self.id_rank[np.argsort(self.staff_ids.astype(str), kind="stable")] = np.arange(n)
        self._row = {sid: i for i, sid in enumerate(staff_ids)}

    @classmethod
    def from_positions(cls, positions: Sequence[StaffPosition]) -> StaffTable:
        return cls([p.staff_id for p in positions], [p.lat for p in positions],
                   [p.lon for p in positions], [p.at for p in positions],
                   [p.status for p in positions], [p.department for p in positions],
                   [p.skills for p in positions])

    def __len__(self) -> int:
        return len(self.staff_ids)

    def _rows(self, staff_ids: Collection[str]) -> np.ndarray:
        return np.fromiter((self._row[s] for s in staff_ids if s in self._row), dtype=np.int64)

    def eligible(self, department: str, skill: str | None, now: float,
                 max_age_s: float, exclude: Collection[str] = ()) -> np.ndarray:
        """Mask of people who may be proposed: available, in the department, with the skill,
        with a fresh position, and not already tried on this order."""
        if department not in self._departments:
            return np.zeros(len(self), dtype=bool)
        mask: np.ndarray = self.available & (self._department == self._departments[department])
        if skill is not None:
            if skill not in self._skills:
                return np.zeros(len(self), dtype=bool)
            mask &= self._skill[:, self._skills[skill]]
        mask &= (now - self.at) <= max_age_s  # a NaN time compares False: no fix, no proposal
        mask &= np.isfinite(self.lat) & np.isfinite(self.lon)
        mask[self._rows(exclude)] = False
        return mask


def nearest_candidates(table: StaffTable, target_lat: float, target_lon: float,
                       department: str, *, now: float, skill: str | None = None,
                       exclude: Collection[str] = (), max_age_s: float = MAX_POSITION_AGE_S,
                       limit: int | None = None) -> list[Candidate]:
    """Eligible people ranked by great-circle distance to the target, nearest first."""
    rows = np.flatnonzero(table.eligible(department, skill, now, max_age_s, exclude))
    dist = haversine_m(table.lat[rows], table.lon[rows], target_lat, target_lon)
    order = np.lexsort((table.id_rank[rows], dist))
    if limit is not None:
        order = order[:limit]
    return [Candidate(staff_id=str(table.staff_ids[r]), distance_m=float(d),
                      lat=float(table.lat[r]), lon=float(table.lon[r]))
            for r, d in zip(rows[order], dist[order], strict=True)]


def next_offer(candidates: Sequence[Candidate], tried_ids: Collection[str], now: float,
               ack_timeout_s: float = ACK_TIMEOUT_S) -> AssignmentOffer | None:
    """The offer to make now: the best-ranked candidate not tried yet, acknowledged by
    `now + ack_timeout_s`; None when everyone has been tried (the order then waits for its
    own escalation clock, which is not this function's business)."""
    if not math.isfinite(ack_timeout_s) or ack_timeout_s <= 0:
        raise ValueError("ack_timeout_s must be a positive number of seconds")
    for c in candidates:
        if c.staff_id not in tried_ids:
            return AssignmentOffer(staff_id=c.staff_id, offered_at=now, ack_due=now + ack_timeout_s,
                                   distance_m=c.distance_m, travel_s=c.travel_s)
    return None


def advance_offer(
    offer: AssignmentOffer | None, candidates: Sequence[Candidate], tried_ids: Collection[str],
    now: float, ack_timeout_s: float = ACK_TIMEOUT_S,
) -> tuple[AssignmentOffer | None, frozenset[str]]:
    """One tick of the offer clock: an offer still within its time stays; an expired one puts
    its person into the tried set and the next candidate gets the order. Returns the offer in
    force and the updated tried set."""
    tried = frozenset(tried_ids)
    if offer is not None and not offer.expired(now):
        return offer, tried
    if offer is not None:
        tried |= {offer.staff_id}
    return next_offer(candidates, tried, now, ack_timeout_s), tried
