"""Helpers shared by the serve side's handlers (citizens, hotline, reviews, cabinets)."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from starlette.requests import Request

from cityops.api.errors import ApiError
from cityops.api.params import cursor_for, cursor_of, flag
from cityops.domain.access import Principal, Role
from cityops.domain.incidents.workflow import Actor

STAFF = frozenset({Role.ADMIN, Role.OPERATOR, Role.DEPARTMENT, Role.STATION})
CENTRE = frozenset({Role.ADMIN, Role.OPERATOR})
__all__ = ["cursor_for", "cursor_of", "flag", "serve_of", "is_citizen",
           "in_area_scope", "covers", "actor_of", "STAFF", "CENTRE", "Limit", "Cursor",
           "Code", "Short", "Note"]

# The query and body vocabulary of the serve side's routes.
Limit = Annotated[int, msgspec.Meta(ge=1, le=1000)]
Cursor = Annotated[str, msgspec.Meta(max_length=200, description="`next` of the previous page")]
Code = Annotated[str, msgspec.Meta(max_length=64)]  # ids, department and area codes
Short = Annotated[str, msgspec.Meta(max_length=200)]  # names, titles, addresses
Note = Annotated[str, msgspec.Meta(max_length=2000)]  # notes, reasons, answers


def serve_of(request: Request):
    side = getattr(request.app.state.node, "serve", None)
    if side is None:
        raise ApiError(503, "this node does not run the citizen services")
    return side


def actor_of(who: Principal) -> Actor:
    return Actor(who.key_id, who.role, who.scope, who.name)


def is_citizen(who: Principal, citizen_id: str) -> bool:
    """The citizen's own key: a citizen key named with their account id."""
    return who.role is Role.CITIZEN and bool(who.name) and who.name == citizen_id


def covers(node: Any, who: Principal, area: str) -> bool:
    """Whether the key's scope covers a thing in `area`: an area key its branch, a department
    key the areas its department serves, an unscoped key everything."""
    if who.scope.department is not None:
        served = node.department_areas.get(who.scope.department, [])
        return bool(area) and any(area.startswith(code) for code in served)
    return in_area_scope(who, area)


def in_area_scope(who: Principal, area: str) -> bool:
    """Area-scoped keys see what lies in their area; things with no area only unscoped keys."""
    if who.scope.area is None:
        return True
    return bool(area) and area.startswith(who.scope.area)
