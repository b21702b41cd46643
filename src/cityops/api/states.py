"""Operating states (daily, special, emergency), which decide the scenario packs in force:

    GET /api/v1/areas/{code}/state   the state in force in an area, and where it was set
    PUT /api/v1/areas/{code}/state   set an area's state (admin, operator whose scope covers it)
    GET /api/v1/state                the whole city's state
    PUT /api/v1/state                set the whole city's state (unscoped keys only)

Every change is audited with the key, the state before and after, and the reason.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, cast

import msgspec

from cityops.api.areas import ANY_KEY, visible_code
from cityops.api.route import Call, Endpoint, Guard, Scope
from cityops.api.serve_util import covers
from cityops.domain.access import Role
from cityops.domain.scenarios.spec import State
from cityops.domain.states import CITY, state_at
from cityops.store.base import AuditEntry

SET_STATE = frozenset({Role.ADMIN, Role.OPERATOR})


class StateIn(msgspec.Struct, forbid_unknown_fields=True):
    state: State
    reason: Annotated[str, msgspec.Meta(max_length=500)] = ""


class StateView(msgspec.Struct):
    area: str | None  # None for the whole city
    state: State
    set_on: str | None  # the area it was set on, None when city-wide or by default
    city_wide: bool


def _codes_of(node: Any, code: str) -> list[str]:
    return [a.code for a in node.city.ancestors(code)] + [code]


def _answer(node: Any, code: str) -> StateView:
    codes = [] if code == CITY else _codes_of(node, code)
    state, source = state_at(node.detect.area_states, codes)
    return StateView(None if code == CITY else code, cast(State, state),
                     None if source in ("", CITY) else source, source == CITY)


async def load_area(call: Call[Any, Any]) -> str | None:
    code = call.path["code"]
    return code if code in call.node.city else None


def sees_area(call: Call[Any, Any], code: str) -> bool:
    """Setting a state reaches every device below the area: the key's scope must cover it
    whole (a department key's, the areas its department serves)."""
    return covers(call.node, call.principal, code)


AREA_STATE = Guard("area_state", "code", load_area, sees_area)


async def _set(call: Call[StateIn, Any], code: str) -> StateView:
    node, who, wanted = call.node, call.principal, call.body
    before = node.detect.area_states.get(code)
    entry = AuditEntry(actor=who.key_id, action="area.state",
                       subject=f"area:{code}" if code != CITY else "city",
                       before=before, after=wanted.state, reason=wanted.reason, at=time.time())
    await node.store.set_area_state(code, wanted.state, entry)
    node.detect.set_area_state(code, wanted.state)
    return _answer(node, code)


async def put_area_state(call: Call[StateIn, Any]) -> StateView:
    return await _set(call, call.record)


async def put_city_state(call: Call[StateIn, Any]) -> StateView:
    return await _set(call, CITY)


async def get_area_state(call: Call[None, Any]) -> StateView:
    return _answer(call.node, visible_code(call))


async def get_city_state(call: Call[None, Any]) -> StateView:
    return _answer(call.node, CITY)


ROUTES = [
    Endpoint("GET", "/api/v1/areas/{code}/state", get_area_state,
             "The operating state in force in an area", ANY_KEY, Scope.NONE,
             response=StateView, errors=(404,)),
    Endpoint("PUT", "/api/v1/areas/{code}/state", put_area_state,
             "Set an area's operating state (audited)", SET_STATE, Scope.RECORD,
             guard=AREA_STATE, body=StateIn, response=StateView),
    Endpoint("GET", "/api/v1/state", get_city_state, "The whole city's operating state",
             ANY_KEY, Scope.NONE, response=StateView),
    Endpoint("PUT", "/api/v1/state", put_city_state,
             "Set the whole city's operating state (audited; unscoped keys only)",
             SET_STATE, Scope.CITY, body=StateIn, response=StateView),
]
