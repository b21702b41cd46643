"""Operating states: PUT/GET /api/v1/areas/{code}/state, PUT/GET /api/v1/state (whole city)."""

from __future__ import annotations

import time

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from cityops.api.access import principal
from cityops.api.areas import ANY_KEY
from cityops.api.errors import ApiError, json_response
from cityops.domain.access import Role, can_see_area
from cityops.domain.states import CITY, check_state, state_at
from cityops.store.base import AuditEntry

SET_STATE = frozenset({Role.ADMIN, Role.OPERATOR})


class StateIn(msgspec.Struct, forbid_unknown_fields=True):
    state: str
    reason: str = ""


def _codes_of(node, code: str) -> list[str]:
    return [a.code for a in node.city.ancestors(code)] + [code]


def _answer(node, code: str) -> dict:
    codes = [] if code == CITY else _codes_of(node, code)
    state, source = state_at(node.detect.area_states, codes)
    return {"area": None if code == CITY else code, "state": state,
            "set_on": None if source in ("", CITY) else source,
            "city_wide": source == CITY}


async def _set(request: Request, code: str) -> Response:
    node = request.app.state.node
    who = await principal(request, SET_STATE)
    if code != CITY and who.scope.area is not None and not code.startswith(who.scope.area):
        raise ApiError(403, f"this key's scope {who.scope} does not cover area {code}")
    if code == CITY and (who.scope.area or who.scope.department):
        raise ApiError(403, "only a key without a scope may set the whole city's state")
    try:
        wanted = msgspec.json.decode(await request.body(), type=StateIn)
        check_state(wanted.state)
    except (msgspec.MsgspecError, ValueError) as exc:
        raise ApiError(400, f"invalid state change: {exc}") from None
    before = node.detect.area_states.get(code)
    entry = AuditEntry(actor=who.key_id, action="area.state",
                       subject=f"area:{code}" if code != CITY else "city",
                       before=before, after=wanted.state, reason=wanted.reason, at=time.time())
    await node.store.set_area_state(code, wanted.state, entry)
    node.detect.set_area_state(code, wanted.state)
    return json_response(_answer(node, code))


async def put_area_state(request: Request) -> Response:
    code = request.path_params["code"]
    if code not in request.app.state.node.city:
        raise ApiError(404, f"no area {code!r}")
    return await _set(request, code)


async def put_city_state(request: Request) -> Response:
    return await _set(request, CITY)


async def get_area_state(request: Request) -> Response:
    node = request.app.state.node
    who = await principal(request, ANY_KEY)
    code = request.path_params["code"]
    if code not in node.city or not can_see_area(who, code):
        raise ApiError(404, f"no area {code!r}")
    return json_response(_answer(node, code))


async def get_city_state(request: Request) -> Response:
    await principal(request, ANY_KEY)
    return json_response(_answer(request.app.state.node, CITY))
