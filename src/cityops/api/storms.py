"""Storms the storm guard is holding cases in (see `cityops.act.storm`):

    GET  /api/v1/storms                   storms going on, in the key's scope
    POST /api/v1/storms/{id}/release      file the held reports as separate cases (supervisor)

The storm case itself is an incident: a supervisor registers and dispatches it as one job, or
cancels it, with the incident actions. Storms are read from the store, so every node of a
cluster lists the same ones.
"""

from __future__ import annotations

from typing import Any

import msgspec

from cityops.act.storm import StormDoc, StormGuard
from cityops.api.errors import ApiError
from cityops.api.incidents import IncidentOut, desk_of, incident_out
from cityops.api.route import Call, Endpoint, Guard, NoQuery, Scope
from cityops.api.serve_util import actor_of
from cityops.domain.access import Principal, Role, can_see_place
from cityops.domain.city import AreaCodes
from cityops.domain.incidents.workflow import CENTRE

# Whoever watches the big screen or the console.
SEE = frozenset({Role.ADMIN, Role.OPERATOR, Role.DEPARTMENT, Role.STATION, Role.FIELD})


class StormView(msgspec.Struct):
    id: str
    category: str
    category_name: str
    area: str
    area_name: str
    level: str  # village, town or district
    since: float  # the first held report
    held: int  # reports held, every storm case of the storm together
    incident: str  # the storm case waiting for a supervisor now
    cases: list[str]  # every storm case of the storm
    threshold: int  # cases of one category in one area ...
    window_s: float  # ... within this many seconds, above which cases are held
    ends_at: float  # when the storm ends if nothing more arrives


class Storms(msgspec.Struct):
    items: list[StormView]
    threshold: int  # the guard's setting on this node; 0: off
    window_s: float
    level: str


class Released(msgspec.Struct):
    storm: str
    cancelled: str  # the storm case, cancelled with the reason
    incidents: list[IncidentOut]  # the held reports, each now a case of its own


def _guard(call: Call[Any, Any]) -> StormGuard:
    guard: StormGuard | None = desk_of(call.request).storm
    if guard is None:
        raise ApiError(503, "this node's incident desk runs no storm guard")
    return guard


def _areas(doc: StormDoc) -> AreaCodes:
    if doc.level == "district":
        return AreaCodes(doc.district, doc.district, doc.district)
    return AreaCodes(doc.district, doc.area[:9], doc.area)


def _sees(call: Call[Any, Any], who: Principal, doc: StormDoc) -> bool:
    """A storm lies in its area as a whole: keys whose scope covers that area see it (a
    department key, where its department serves)."""
    return can_see_place(who, _areas(doc), None, call.node.department_areas)


def _view(doc: StormDoc) -> StormView:
    fields = msgspec.structs.asdict(doc)
    del fields["district"], fields["ended_at"]
    return StormView(**fields)


async def list_storms(call: Call[None, NoQuery]) -> Storms:
    guard = _guard(call)
    docs = await guard.active(call.node.clock())
    seen = [_view(d) for d in docs if _sees(call, call.principal, d)]
    return Storms(seen, guard.cases, guard.window_s, guard.level)


async def load_storm(call: Call[Any, Any]) -> StormDoc | None:
    storm_id = call.path["storm_id"]
    if len(storm_id) > 64:
        return None
    return await _guard(call).get(storm_id)


def sees_storm(call: Call[Any, Any], doc: StormDoc) -> bool:
    return _sees(call, call.principal, doc)


STORM = Guard("storm", "storm_id", load_storm, sees_storm)


async def release_storm(call: Call[None, NoQuery]) -> Released:
    doc, released = await _guard(call).release(call.record.id, actor_of(call.principal))
    now = call.node.clock()
    return Released(doc.id, doc.incident, [incident_out(i, now) for i in released])


ROUTES = [
    Endpoint("GET", "/api/v1/storms", list_storms,
             "Storms going on: categories whose new cases in an area are held for a "
             "supervisor", SEE, Scope.LIST, kind="storm", response=Storms, errors=(503,)),
    Endpoint("POST", "/api/v1/storms/{storm_id}/release", release_storm,
             "Release a storm case's held reports as separate dispatched cases (the storm "
             "case is cancelled)", CENTRE, Scope.RECORD, guard=STORM, response=Released,
             errors=(409, 503)),
]
