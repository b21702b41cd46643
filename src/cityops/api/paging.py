"""Lists answer `{"items": [...], "next": cursor-or-null}` and take `limit`."""

from __future__ import annotations

from starlette.requests import Request

from cityops.api.errors import ApiError

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def limit_of(request: Request, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"limit {raw!r} is not a whole number") from None
    if not 1 <= value <= maximum:
        raise ApiError(400, f"limit must be between 1 and {maximum}, got {value}")
    return value


def int_cursor(request: Request, name: str = "cursor") -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return 0
    try:
        value = int(raw)
        if value < 0:
            raise ValueError
    except ValueError:
        raise ApiError(400, f"{name} {raw!r} is not a cursor this API gave out") from None
    return value
