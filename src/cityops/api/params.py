"""Request parameters: times (RFC 3339 or epoch seconds), flags, page cursors, JSON bodies."""

from __future__ import annotations

import datetime as dt
import math


from cityops.api.errors import ApiError


# Epoch seconds a time may take: those of years 1 to 9999, as RFC 3339 can write them. Past
# them a float is infinite or not a time, and microseconds no longer fit the history's int64.
EARLIEST_S = -62_135_596_800.0
LATEST_S = 253_402_300_799.0


def time_us(raw: str | None, name: str, default: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        seconds = float(raw)
    except ValueError:
        pass
    else:
        if not EARLIEST_S <= seconds <= LATEST_S:  # NaN fails this too
            raise ApiError(400, f"{name}={raw!r} is not a time between the years 1 and 9999")
        return int(seconds * 1_000_000)
    try:
        when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"{name}={raw!r} is neither RFC 3339 nor epoch seconds") from None
    if when.tzinfo is None:
        raise ApiError(400, f"{name}={raw!r} has no time zone; add Z or an offset")
    return int(when.timestamp() * 1_000_000)


def iso(ts_us: int) -> str:
    return dt.datetime.fromtimestamp(ts_us / 1_000_000, dt.UTC).isoformat().replace("+00:00", "Z")


def flag(raw: str | None, name: str) -> bool | None:
    if raw is None:
        return None
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise ApiError(400, f"{name}={raw!r} is not true or false")


def cursor_of(raw: str | None) -> tuple[float, str] | None:
    """A `next` cursor of a list ordered by (time, id), as `cursor_for` wrote it."""
    if not raw:
        return None
    at, sep, rid = raw.partition("~")
    try:
        if not sep or not rid or not math.isfinite(float(at)):
            raise ValueError
        return float(at), rid
    except ValueError:
        raise ApiError(400, f"cursor {raw!r} is not a cursor this API gave out") from None


def cursor_for(at: float, rid: str) -> str:
    return f"{at!r}~{rid}"
