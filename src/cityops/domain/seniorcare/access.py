"""Who sees and runs which senior-care things. Pure: the caller hands in the key, the thing's
area as stored, the areas each department serves and, for a citizen, where they live.

  * Unscoped admin and operator keys: everything (operators only look; see the routes).
  * The civil-affairs department (elderly care is its business): what lies in the areas it
    serves. Other departments: nothing; a waiting list is personal data, not theirs.
  * A station key named with a home's id is that home's staff: that home only.
  * Other area-scoped keys (a town's or community's station, an operator of a town): what
    lies in their area.
  * A citizen: their own entries and bookings; of homes and caregivers, those of the town they
    live in (to choose one), never other people's entries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from cityops.domain.access import Principal, Role

CARE_DEPARTMENT = "civil_affairs"


def town_of(area: str) -> str:
    return area[:9]


def covers(who: Principal, area: str, served: Mapping[str, Sequence[str]]) -> bool:
    scope = who.scope
    if scope.department is not None:
        if scope.department != CARE_DEPARTMENT:
            return False
        return bool(area) and any(area.startswith(code) for code in
                                  served.get(scope.department, ()))
    if scope.area is None:
        return True
    return bool(area) and area.startswith(scope.area)


def sees_home(who: Principal, home_id: str, area: str, served: Mapping[str, Sequence[str]],
              citizen_area: str | None = None, home_ids: frozenset[str] = frozenset()
              ) -> bool:
    """`home_ids`: the city's home ids, to tell a home's staff key from a station's."""
    if who.role is Role.CITIZEN:
        return bool(citizen_area) and town_of(area) == town_of(citizen_area or "")
    if who.role is Role.STATION and who.name in home_ids:
        return who.name == home_id and covers(who, area, served)
    if who.role not in (Role.ADMIN, Role.OPERATOR, Role.DEPARTMENT, Role.STATION):
        return False
    return covers(who, area, served)


def sees_caregiver(who: Principal, area: str, served: Mapping[str, Sequence[str]],
                   citizen_area: str | None = None) -> bool:
    """A caregiver by the area they serve: staff whose scope holds it, and staff inside it (a
    community's station books the town's caregivers for its residents); a citizen, those of
    their town or serving where they live."""
    if who.role is Role.CITIZEN:
        return bool(citizen_area) and (town_of(area) == town_of(citizen_area or "")
                                       or (citizen_area or "").startswith(area))
    if who.role not in (Role.ADMIN, Role.OPERATOR, Role.DEPARTMENT, Role.STATION):
        return False
    mine = who.scope.area
    if mine is not None and who.scope.department is None and bool(area) \
            and mine.startswith(area):
        return True
    return covers(who, area, served)


def sees_booking(who: Principal, citizen: str, caregiver_area: str, citizen_area: str,
                 served: Mapping[str, Sequence[str]]) -> bool:
    """A visit: the citizen's own; staff whose scope holds the caregiver's area (they run the
    caregiver) or the citizen's home (their resident)."""
    if who.role is Role.CITIZEN:
        return who.name == citizen
    if who.role not in (Role.ADMIN, Role.OPERATOR, Role.DEPARTMENT, Role.STATION):
        return False
    return covers(who, caregiver_area, served) or covers(who, citizen_area, served)
