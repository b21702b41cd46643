"""Query parameters: times as RFC 3339 or epoch seconds."""

from __future__ import annotations

import datetime as dt

from cityops.api.errors import ApiError


def time_us(raw: str | None, name: str, default: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        return int(float(raw) * 1_000_000)
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, f"{name}={raw!r} is neither RFC 3339 nor epoch seconds") from None
    if when.tzinfo is None:
        raise ApiError(400, f"{name}={raw!r} has no time zone; add Z or an offset")
    return int(when.timestamp() * 1_000_000)


def iso(ts_us: int) -> str:
    return dt.datetime.fromtimestamp(ts_us / 1_000_000, dt.UTC).isoformat().replace("+00:00", "Z")
