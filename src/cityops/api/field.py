"""The field page's own calls:

    GET  /api/v1/staff/me             the person behind a field key: id, name, status, position
    POST /api/v1/staff/me/position    the phone reports where they are

A field key may not write readings (its person's GPS device is the one that does), but the
field page can read the phone's own position when the person allows it. This turns that into
one reading of the person's GPS device and sends it through the normal intake, so it is stored,
deduplicated, seen by detection and by the staff board exactly as the tracker's fixes are.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

from cityops.api.errors import ApiError
from cityops.api.route import Call, Endpoint, NoQuery, Scope
from cityops.api.staff import Person, person_view
from cityops.domain.access import Role
from cityops.domain.city import Staff
from cityops.domain.nearest import StaffStatus
from cityops.ingest.decode import Reading

FIELD = frozenset({Role.FIELD})
MAX_ACCURACY_M = 500.0  # a fix vaguer than this would put the person in the wrong village


class PositionIn(msgspec.Struct, forbid_unknown_fields=True):
    """As the browser's Geolocation API reports it."""

    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)]
    lon: Annotated[float, msgspec.Meta(ge=-180, le=180)]
    accuracy: Annotated[float, msgspec.Meta(ge=0, le=1e7, description="metres")] | None = None
    speed: Annotated[float, msgspec.Meta(ge=0, le=1000, description="m/s")] | None = None
    heading: Annotated[float, msgspec.Meta(ge=0, le=360,
                                           description="degrees from north")] | None = None


class PositionTaken(msgspec.Struct):
    device_id: str
    accepted: int
    lat: float
    lon: float


def _person(call: Call[Any, Any]) -> Staff:
    who = call.principal
    person: Staff | None = call.node.roster.person(who.name)
    if person is None:  # retired people too: off the roster, their key no longer acts
        raise ApiError(404, f"this key's name {who.name!r} is no field person of this city "
                            "(or is retired)")
    return person


async def get_me(call: Call[None, NoQuery]) -> Person:
    person = _person(call)
    act = call.node.act
    if act is None:
        return Person(person.id, person.name, person.department, person.home_area,
                      list(person.skills), StaffStatus.AVAILABLE, None, None, None)
    where = next((p for p in act.staff.positions() if p["id"] == person.id), None)
    return person_view(act.staff, person, where)


async def post_my_position(call: Call[PositionIn, NoQuery]) -> Any:
    node = call.node
    person = _person(call)
    body = call.body
    if body.accuracy is not None and body.accuracy > MAX_ACCURACY_M:
        raise ApiError(422, f"a fix accurate to {body.accuracy:.0f} m is too vague to use "
                            f"(at most {MAX_ACCURACY_M:.0f} m)")
    values = {"lat": body.lat, "lon": body.lon}
    if body.speed is not None:
        values["speed"] = round(body.speed * 3.6, 2)
    if body.heading is not None:
        values["heading"] = body.heading
    node.ingestor.admit()
    result = await node.ingestor.ingest(
        [(0, Reading(person.device_id, ts=node.clock(), values=values))], source="field")
    if result.rejected:
        raise ApiError(422, result.rejected[0].error)
    return PositionTaken(person.device_id, result.accepted, body.lat, body.lon)


ROUTES = [
    Endpoint("GET", "/api/v1/staff/me", get_me,
             "The field person behind the calling field key: id, name, department, status "
             "and latest position", FIELD, Scope.OWN, response=Person, errors=(404,)),
    Endpoint("POST", "/api/v1/staff/me/position", post_my_position,
             "A field key reports its person's position (from the phone): stored as a "
             "reading of the person's GPS device", FIELD, Scope.OWN, body=PositionIn,
             response=PositionTaken, status=202, errors=(404, 422, 503)),
]
