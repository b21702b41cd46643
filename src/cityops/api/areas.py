"""Areas: the three-level hierarchy and one area with its polygon.

Areas are the city's public map, read by every key but a device's: their scope policy is
`Scope.NONE`. An area-scoped key is still shown only its own branch and the chain above it
(`can_see_area`), so a village's station is not handed the whole city; codes it is not shown
are left out of the children lists too.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from cityops.api.errors import ApiError
from cityops.api.route import Call, Endpoint, Scope
from cityops.domain.access import Principal, Role, can_see_area

ANY_KEY = frozenset(Role) - {Role.DEVICE}
Level = Literal["district", "town", "village"]
AreaCode = Annotated[str, msgspec.Meta(max_length=12, pattern=r"^\d+$")]


class AreaSummary(msgspec.Struct):
    code: str
    name: str
    level: Level
    parent: str | None
    children: list[str]
    names: dict[str, str] = {}  # the name in other languages ({"zh-CN": ...}), as the pack has


class AreaList(msgspec.Struct):
    items: list[AreaSummary]
    next: str | None


class AreaView(msgspec.Struct):
    code: str
    name: str
    level: Level
    parent: str | None
    children: list[str]
    ancestors: list[str]
    geometry: dict[str, Any]
    names: dict[str, str] = {}  # the name in other languages, as AreaSummary.names


class AreaQuery(msgspec.Struct, forbid_unknown_fields=False):
    level: Level | None = None
    parent: AreaCode | None = None


def children_seen(node: Any, who: Principal, code: str) -> list[str]:
    return [c.code for c in node.city.children(code) if can_see_area(who, c.code)]


def visible_code(call: Call[Any, Any]) -> str:
    """The area in the path, or 404 also when it lies outside the key's branch."""
    code = call.path["code"]
    if code not in call.node.city or not can_see_area(call.principal, code):
        raise ApiError(404, f"no area {code!r}")
    return code


async def list_areas(call: Call[None, AreaQuery]) -> AreaList:
    """The hierarchy without polygons (they are large): `?level=` and `?parent=` filter it."""
    node, who, q = call.node, call.principal, call.query
    items = []
    for area in node.pack.areas:
        if q.level is not None and area.level.value != q.level:
            continue
        if q.parent is not None and area.parent != q.parent:
            continue
        if not can_see_area(who, area.code):
            continue
        items.append(AreaSummary(area.code, area.name, area.level.value, area.parent,
                                 children_seen(node, who, area.code), dict(area.names)))
    return AreaList(items, None)


async def get_area(call: Call[None, Any]) -> AreaView:
    node, who = call.node, call.principal
    code = visible_code(call)
    area = node.city.area(code)
    return AreaView(area.code, area.name, area.level.value, area.parent,
                children_seen(node, who, code), [a.code for a in node.city.ancestors(code)],
                area.geometry, dict(area.names))


ROUTES = [
    Endpoint("GET", "/api/v1/areas", list_areas, "The area hierarchy", ANY_KEY, Scope.NONE,
             query=AreaQuery, response=AreaList),
    Endpoint("GET", "/api/v1/areas/{code}", get_area, "One area with its polygon", ANY_KEY,
             Scope.NONE, response=AreaView, errors=(404,)),
]
