"""Operating states (daily, special, emergency): set for the whole city or for one area; the
most specific setting covering a place is the one in force there."""

from __future__ import annotations

import numpy as np

from cityops.domain.scenarios.context import STATE_CODES, Places

CITY = "*"  # the key under which a city-wide state is kept
STATES = tuple(STATE_CODES)


def check_state(state: str) -> int:
    try:
        return STATE_CODES[state]
    except KeyError:
        raise ValueError(f"operating state {state!r} is not one of {', '.join(STATES)}") from None


def state_at(area_states: dict[str, str], codes: list[str]) -> tuple[str, str]:
    """The state in force at a place with area codes `codes` (district, town, village; any
    subset), and the code it was set on ("*" for the whole city, "" for the default)."""
    for code in sorted(codes, key=len, reverse=True):
        if code in area_states:
            return area_states[code], code
    if CITY in area_states:
        return area_states[CITY], CITY
    return "daily", ""


def device_states(area_states: dict[str, str], places: Places) -> np.ndarray:
    """The state code in force at each device (0 daily, 1 special, 2 emergency)."""
    n = places.lat.shape[0]
    out = np.full(n, STATE_CODES[area_states.get(CITY, "daily")], np.int8)
    # Broad to narrow, so the most specific setting is written last.
    for level, table in (("district", places.districts), ("town", places.towns),
                         ("village", places.villages)):
        ids = getattr(places, level)
        for i, code in enumerate(table):
            if code in area_states:
                out[ids == i] = STATE_CODES[area_states[code]]
    return out
