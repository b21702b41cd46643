"""Which OSM ways a car may use, in which direction, and how fast.

Pure functions over a way's tags (a plain dict), so the rules are tested without any file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# Used when a way has no usable maxspeed. They are urban free-flow guesses, close to the usual
# limits: the times only rank people against each other, so a uniform error matters little,
# but the ratio between a main road and a residential street does.
DEFAULT_SPEED_KMH: dict[str, float] = {
    "motorway": 100, "motorway_link": 60,
    "trunk": 80, "trunk_link": 50,
    "primary": 50, "primary_link": 40,
    "secondary": 50, "secondary_link": 40,
    "tertiary": 40, "tertiary_link": 30,
    "unclassified": 30, "residential": 30, "road": 30,
    "living_street": 10, "service": 15,
}
DRIVABLE = frozenset(DEFAULT_SPEED_KMH)

# Implicit limits written as "<country>:<zone>", e.g. "FI:urban"; the values hold in most of
# Europe and in China's urban districts closely enough for ranking.
ZONE_SPEED_KMH: dict[str, float] = {
    "urban": 50, "rural": 80, "trunk": 100, "motorway": 120,
    "living_street": 20, "walk": 6, "bicycle_road": 30,
}

_NO_ACCESS = frozenset({"no", "private", "agricultural", "forestry"})
_ACCESS_KEYS = ("motorcar", "motor_vehicle", "vehicle", "access")  # most specific first
_NUMBER = re.compile(r"^(\d+(?:\.\d+)?)\s*(km/h|kmh|kph|mph|knots)?$")
_UNIT_KMH = {None: 1.0, "km/h": 1.0, "kmh": 1.0, "kph": 1.0, "mph": 1.609344, "knots": 1.852}


def parse_maxspeed(value: str | None) -> float | None:
    """A maxspeed tag in km/h, or None when it gives no number ("none", "signals", junk)."""
    if not value:
        return None
    speeds = [s for s in (_one_maxspeed(part) for part in value.split(";")) if s is not None]
    # a list means different limits on parts of the way or at times: the lower one is safe
    return min(speeds) if speeds else None


def _one_maxspeed(text: str) -> float | None:
    text = text.strip().lower()
    m = _NUMBER.match(text)
    if m:
        kmh = float(m.group(1)) * _UNIT_KMH[m.group(2)]
        return kmh if kmh > 0 else None
    if ":" in text:
        zone = text.split(":", 1)[1]
        digits = re.search(r"\d+", zone)  # "DE:zone30", "DE:zone:30"
        if digits:
            return float(digits.group()) or None
        return ZONE_SPEED_KMH.get(zone)
    return ZONE_SPEED_KMH.get(text)  # "walk"


def is_drivable(tags: Mapping[str, str]) -> bool:
    if tags.get("highway") not in DRIVABLE or tags.get("area") == "yes":
        return False
    for key in _ACCESS_KEYS:
        if key in tags:
            return tags[key] not in _NO_ACCESS
    return True


def oneway(tags: Mapping[str, str]) -> int | None:
    """+1 drivable only along the way's node order, -1 only against it, 0 both ways, None
    when the direction changes over the day (reversible lanes): such a way is left out rather
    than guessed."""
    value = tags.get("oneway")
    if value in ("yes", "true", "1"):
        return 1
    if value in ("-1", "reverse"):
        return -1
    if value in ("reversible", "alternating"):
        return None
    if value in ("no", "false", "0"):
        return 0
    # implied by OSM convention when the tag is missing
    if tags.get("junction") in ("roundabout", "circular") or tags.get("highway") == "motorway":
        return 1
    return 0


def speed_kmh(tags: Mapping[str, str]) -> float:
    return parse_maxspeed(tags.get("maxspeed")) or DEFAULT_SPEED_KMH[tags["highway"]]
