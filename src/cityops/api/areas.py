"""Areas: the three-level hierarchy and one area with its polygon."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from cityops.api.access import principal
from cityops.api.errors import ApiError, json_response
from cityops.domain.access import Role, can_see_area

ANY_KEY = frozenset(Role) - {Role.DEVICE}


def _summary(area, children: list[str]) -> dict:
    return {"code": area.code, "name": area.name, "level": area.level.value,
            "parent": area.parent, "children": children}


async def list_areas(request: Request) -> Response:
    """The hierarchy without polygons (they are large): `?level=` and `?parent=` filter it."""
    node = request.app.state.node
    who = await principal(request, ANY_KEY)
    level = request.query_params.get("level")
    parent = request.query_params.get("parent")
    if level is not None and level not in ("district", "town", "village"):
        raise ApiError(400, f"level {level!r} is not one of district, town, village")
    items = []
    for area in node.pack.areas:
        if level is not None and area.level.value != level:
            continue
        if parent is not None and area.parent != parent:
            continue
        if not can_see_area(who, area.code):
            continue
        children = [c.code for c in node.city.children(area.code)]
        items.append(_summary(area, children))
    return json_response({"items": items, "next": None})


async def get_area(request: Request) -> Response:
    node = request.app.state.node
    who = await principal(request, ANY_KEY)
    code = request.path_params["code"]
    if code not in node.city or not can_see_area(who, code):
        raise ApiError(404, f"no area {code!r}")
    area = node.city.area(code)
    body = _summary(area, [c.code for c in node.city.children(code)])
    body["ancestors"] = [a.code for a in node.city.ancestors(code)]
    body["geometry"] = area.geometry
    return json_response(body)
