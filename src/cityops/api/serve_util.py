"""Helpers shared by the serve side's handlers (citizens, hotline, reviews, cabinets)."""

from __future__ import annotations

import math

import msgspec
from starlette.requests import Request

from cityops.api.errors import ApiError
from cityops.domain.access import Principal, Role

STAFF = frozenset({Role.ADMIN, Role.OPERATOR, Role.DEPARTMENT, Role.STATION})
CENTRE = frozenset({Role.ADMIN, Role.OPERATOR})


def serve_of(request: Request):
    side = getattr(request.app.state.node, "serve", None)
    if side is None:
        raise ApiError(503, "this node does not run the citizen services")
    return side


async def body_of(request: Request, kind: type, *, empty_ok: bool = False):
    raw = await request.body()
    if not raw.strip() and empty_ok:
        return kind()
    try:
        return msgspec.json.decode(raw, type=kind)
    except msgspec.ValidationError as error:
        raise ApiError(400, f"invalid body: {error}") from None
    except msgspec.DecodeError as error:
        raise ApiError(400, f"body is not JSON: {error}") from None


def is_citizen(who: Principal, citizen_id: str) -> bool:
    """The citizen's own key: a citizen key named with their account id."""
    return who.role is Role.CITIZEN and bool(who.name) and who.name == citizen_id


def in_area_scope(who: Principal, area: str) -> bool:
    """Area-scoped keys see what lies in their area; things with no area only unscoped keys."""
    if who.scope.area is None:
        return True
    return bool(area) and area.startswith(who.scope.area)


def flag(raw: str | None, name: str) -> bool | None:
    if raw is None:
        return None
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise ApiError(400, f"{name}={raw!r} is not true or false")


def cursor_of(raw: str | None) -> tuple[float, str] | None:
    if not raw:
        return None
    at, sep, rid = raw.partition("~")
    try:
        if not sep or not rid or not math.isfinite(float(at)):
            raise ValueError
        return float(at), rid
    except ValueError:
        raise ApiError(400, f"cursor {raw!r} is not a cursor this API gave out") from None


def cursor_for(created: float, rid: str) -> str:
    return f"{created!r}~{rid}"
